"""The risk compensation fund in the browser: the operator's funds (budget, paid,
remaining), its claims queue and decisions; a bank's defaulted loans with their "claim
compensation" action and its claims."""
from __future__ import annotations

from decimal import Decimal

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from finance_app import authz, outbox
from finance_app.accounts.models import Organisation
from finance_app.accounts.services import organisation_names
from finance_app.accounts.states import FilingStatus, OrgKind
from finance_app.api.schemas import ID
from finance_app.compensation import forms, services
from finance_app.compensation.models import FundTopUp
from finance_app.compensation.states import ClaimStatus, FundStatus
from finance_app.errors import DomainError, ValidationFailed
from finance_app.extensions import db
from finance_app.settlement.forms import STATUS_LABELS as PAYMENT_STATUS
from finance_app.settlement.models import SettlementRecord

bp = Blueprint("compensation", __name__, url_prefix="/compensation")

READ, BANK, DECIDER = authz.COMPENSATION, authz.COMPENSATION_BANK, authz.OPERATOR_DECIDER


def _pct(value: Decimal | None) -> str:
    return "—" if value is None else f"{(value * 100).normalize():f}%"


@bp.context_processor
def _helpers():
    return {"pct": _pct, "fund_status": forms.FUND_STATUS, "claim_status": forms.CLAIM_STATUS,
            "product_kinds": forms.PRODUCT_KINDS, "payment_status": PAYMENT_STATUS}


def _commit(message: str, endpoint: str, **values):
    db.session.commit()
    outbox.deliver_new()
    flash(message, "success")
    return redirect(url_for(endpoint, **values))


def _refused(exc: DomainError, form, page):
    """Roll back; who-errors go to the error pages, what-errors back to the form."""
    db.session.rollback()
    if exc.status_code in (401, 403, 404):
        raise exc
    target = getattr(form, exc.field or "", None)
    if target is not None and isinstance(getattr(target, "errors", None), list):
        target.errors.append(exc.message)
    else:
        form.form_errors.append(exc.message)
    return page(409 if exc.status_code == 409 else 422, error=exc.message)


def _invalid(form) -> str:
    return next((f"{getattr(form, name).label.text}: {errors[0]}"
                 for name, errors in form.errors.items() if errors and hasattr(form, name)),
                _("Check the form."))


# --------------------------------------------------------------------------- overview

@bp.get("/")
@authz.allow(READ)
def index():
    user = current_user
    funds = services.funds(user)
    claims = services.claims(user)
    loans = services.defaulted_loans(user.org_id) \
        if user.organisation.kind is OrgKind.BANK else []
    live = {loan.id: services.live_claim(loan.id) for loan in loans}
    open_funds = [f for f in funds if f.status is FundStatus.ACTIVE]
    claim_form = forms.ClaimForm()
    claim_form.fund_id.choices = [(f.id, f.name) for f in open_funds]
    names = organisation_names({c.bank_org_id for c in claims} | {c.sme_org_id for c in claims}
                               | {loan.sme_org_id for loan in loans})
    return render_template(
        "compensation/index.html", funds=funds, figures={f.id: services.figures(f)
                                                         for f in funds},
        queue=[c for c in claims if c.status is ClaimStatus.SUBMITTED], claims=claims,
        loans=loans, live=live, open_funds=open_funds, claim_form=claim_form, names=names,
        fund_names={f.id: f.name for f in funds},
        may_claim=authz.can(user, "compensation.file"),
        may_manage=authz.can(user, "compensation.manage"))


# --------------------------------------------------------------------------- funds

def _banks() -> list[tuple[int, str]]:
    return [(o.id, o.name) for o in db.session.execute(select(Organisation).where(
        Organisation.kind == OrgKind.BANK, Organisation.filing_status == FilingStatus.APPROVED)
        .order_by(Organisation.name)).scalars()]


@bp.route("/funds/new", methods=["GET", "POST"])
@authz.allow(DECIDER)
def fund_new():
    form = forms.FundForm()
    form.bank_org_ids.choices = _banks()

    def page(status: int = 200, error: str | None = None):
        return render_template("compensation/fund_new.html", form=form, error=error), status

    if not form.is_submitted():
        return page()
    if not form.validate():
        return page(422, _invalid(form))
    try:
        fund = services.create_fund(services.FundTerms(
            name=form.name.data, currency=form.currency.data, share=form.share.data / 100,
            cap_per_loan=form.cap_per_loan.data, budget=form.budget.data,
            start_date=form.start_date.data, end_date=form.end_date.data,
            bank_org_ids=tuple(form.bank_org_ids.data or ()),
            product_kinds=tuple(form.product_kinds.data or ())), actor=current_user)
    except DomainError as exc:
        return _refused(exc, form, page)
    return _commit(_("Fund created and funded."), ".fund_detail", fund_id=fund.id)


def _fund_page(fund_id: int, status: int = 200, **given):
    fund = services.get_fund(fund_id, actor=current_user)
    claims = services.claims(current_user, fund_id=fund.id)
    top_ups = db.session.execute(select(FundTopUp).where(
        FundTopUp.fund_id == fund.id).order_by(FundTopUp.id)).scalars().all()
    names = organisation_names({c.bank_org_id for c in claims} | set(fund.bank_org_ids))
    return render_template(
        "compensation/fund_detail.html", fund=fund, figures=services.figures(fund),
        claims=claims, top_ups=top_ups, names=names,
        history=services.history("fund", fund.id),
        may_manage=authz.can(current_user, "compensation.manage"),
        top_up_form=given.get("top_up_form") or forms.TopUpForm(),
        form=given.get("form") or forms.ActionForm(), error=given.get("error")), status


@bp.get(f"/funds/<{ID}:fund_id>")
@authz.allow(READ)
def fund_detail(fund_id: int):
    return _fund_page(fund_id)


@bp.post(f"/funds/<{ID}:fund_id>/top-up")
@authz.allow(DECIDER)
def fund_top_up(fund_id: int):
    form = forms.TopUpForm()
    page = lambda s, **g: _fund_page(fund_id, s, top_up_form=form, **g)  # noqa: E731
    if not form.validate_on_submit():
        return page(422, error=_invalid(form))
    try:
        services.top_up(fund_id, actor=current_user, amount=form.amount.data,
                        note=form.note.data)
    except DomainError as exc:
        return _refused(exc, form, page)
    return _commit(_("Budget topped up."), ".fund_detail", fund_id=fund_id)


@bp.post(f"/funds/<{ID}:fund_id>/act")
@authz.allow(DECIDER)
def fund_act(fund_id: int):
    form = forms.ActionForm()
    page = lambda s, **g: _fund_page(fund_id, s, form=form, **g)  # noqa: E731
    if not form.validate_on_submit():
        return page(422, error=_invalid(form))
    try:
        services.change_fund_status(fund_id, form.action.data, actor=current_user,
                                    note=form.reason.data)
    except DomainError as exc:
        return _refused(exc, form, page)
    return _commit(_("Fund updated."), ".fund_detail", fund_id=fund_id)


# --------------------------------------------------------------------------- claims

@bp.post("/claims")
@authz.allow(BANK)
def claim_file():
    form = forms.ClaimForm()
    form.fund_id.choices = [(f.id, f.name) for f in services.funds(current_user)]
    try:
        if not form.validate_on_submit():
            raise ValidationFailed(_invalid(form), field="fund_id")
        claim = services.submit_claim(actor=current_user, fund_id=form.fund_id.data,
                                      loan_id=form.loan_id.data)
    except DomainError as exc:
        db.session.rollback()
        if exc.status_code in (401, 403, 404):
            raise
        flash(exc.message, "danger")
        return redirect(url_for(".index"))
    return _commit(_("Claim submitted."), ".claim_detail", claim_id=claim.id)


def _claim_page(claim_id: int, status: int = 200, **given):
    claim = services.get_claim(claim_id, actor=current_user)
    record = db.session.get(SettlementRecord, claim.settlement_id) \
        if claim.settlement_id else None
    return render_template(
        "compensation/claim_detail.html", claim=claim, fund=claim.fund, record=record,
        names=organisation_names({claim.bank_org_id, claim.sme_org_id,
                                  claim.operator_org_id}),
        history=services.history("claim", claim.id),
        may_decide=authz.can(current_user, "compensation.manage")
        and claim.status is ClaimStatus.SUBMITTED,
        may_withdraw=authz.can(current_user, "compensation.withdraw", claim)
        and claim.status is ClaimStatus.SUBMITTED,
        may_confirm=record is not None and authz.can(current_user, "settlement.confirm",
                                                     record),
        form=given.get("form") or forms.ActionForm(), error=given.get("error")), status


@bp.get(f"/claims/<{ID}:claim_id>")
@authz.allow(READ)
def claim_detail(claim_id: int):
    return _claim_page(claim_id)


@bp.post(f"/claims/<{ID}:claim_id>/decide")
@authz.allow(DECIDER)
def claim_decide(claim_id: int):
    form = forms.ActionForm()
    page = lambda s, **g: _claim_page(claim_id, s, form=form, **g)  # noqa: E731
    if not form.validate_on_submit():
        return page(422, error=_invalid(form))
    try:
        if form.action.data == "approve":
            services.approve_claim(claim_id, actor=current_user, note=form.reason.data)
        elif form.action.data == "reject":
            services.reject_claim(claim_id, actor=current_user, reason=form.reason.data)
        else:
            raise ValidationFailed(_("Choose what to do."), field="action")
    except DomainError as exc:
        return _refused(exc, form, page)
    return _commit(_("Claim decided."), ".claim_detail", claim_id=claim_id)


@bp.post(f"/claims/<{ID}:claim_id>/withdraw")
@authz.allow(BANK)
def claim_withdraw(claim_id: int):
    form = forms.ActionForm(action="withdraw")
    page = lambda s, **g: _claim_page(claim_id, s, form=form, **g)  # noqa: E731
    if not form.validate_on_submit():
        return page(422, error=_invalid(form))
    try:
        services.withdraw_claim(claim_id, actor=current_user)
    except DomainError as exc:
        return _refused(exc, form, page)
    return _commit(_("Claim withdrawn."), ".claim_detail", claim_id=claim_id)
