"""Export credit insurance in the browser: insurers issue policies and decide limits,
claims and assignments; SMEs apply for limits, declare shipments, report overdue
payments, claim and assign indemnities; banks see (and accept) the cover assigned to
them."""
from __future__ import annotations

from decimal import Decimal, InvalidOperation

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from finance_app import authz, outbox
from finance_app.accounts.models import Organisation
from finance_app.accounts.services import organisation_names
from finance_app.accounts.states import FilingStatus, OrgKind
from finance_app.api.schemas import ID
from finance_app.errors import DomainError, ValidationFailed
from finance_app.extensions import db
from finance_app.insurance import documents, forms, queries, services
from finance_app.insurance.models import ShipmentDeclaration
from finance_app.insurance.states import (
    AssignmentStatus, ClaimStatus, DeclarationStatus, PolicyStatus,
)
from finance_app.trade.models import MatchVerdict, Order, Receivable, ReceivableStatus
from finance_app.trade.states import Verdict
from finance_app.web import page_arg

bp = Blueprint("insurance", __name__, url_prefix="/insurance")

INSURANCE, STAFF, INSURED, PARTY = (authz.INSURANCE, authz.INSURANCE_STAFF,
                                    authz.INSURANCE_INSURED, authz.INSURANCE_PARTY)


def _pct(value: Decimal | None, places: int = 2) -> str:
    if value is None:
        return "—"
    return f"{(value * 100).quantize(Decimal(1).scaleb(-places))}%"


@bp.context_processor
def _helpers():
    return {"pct": _pct, "policy_status": forms.POLICY_STATUS, "limit_status": forms.LIMIT_STATUS,
            "declaration_status": forms.DECLARATION_STATUS, "claim_status": forms.CLAIM_STATUS,
            "assignment_status": forms.ASSIGNMENT_STATUS, "causes": forms.CAUSES,
            "modes": forms.MODES}


def _form_error(form, exc: DomainError) -> None:
    target = getattr(form, exc.field or "", None)
    if target is not None and isinstance(getattr(target, "errors", None), list):
        target.errors.append(exc.message)
    else:
        form.form_errors.append(exc.message)


def _done(message: str, endpoint: str, **values):
    db.session.commit()
    outbox.deliver_new()
    flash(message, "success")
    return redirect(url_for(endpoint, **values))


def _refused(render, form, exc: DomainError, form_name: str):
    db.session.rollback()
    if exc.status_code in (401, 403, 404):
        raise exc     # who, not what: the error pages answer it
    _form_error(form, exc)
    return render(409 if exc.status_code == 409 else 422, error=exc.message,
                  **{form_name: form})


def _orgs(kind: OrgKind) -> list[tuple[int, str]]:
    return [(o.id, o.name) for o in db.session.execute(select(Organisation).where(
        Organisation.kind == kind, Organisation.filing_status == FilingStatus.APPROVED)
        .order_by(Organisation.name)).scalars()]


# --------------------------------------------------------------------------- overview

@bp.get("/")
@authz.allow(INSURANCE)
def index():
    user = current_user
    policies = queries.policies(user, page=page_arg())
    limits = queries.limits(user).items
    declarations = queries.declarations(user).items
    claims = queries.claims(user).items
    cover = queries.assigned_cover(user.org_id) \
        if user.organisation.kind is OrgKind.BANK else []
    assignments = queries.assignments(user).items
    names = organisation_names({p.insured_org_id for p in policies.items}
                               | {p.insurer_org_id for p in policies.items}
                               | {a.bank_org_id for a in assignments})
    return render_template("insurance/index.html", policies=policies, limits=limits,
                           declarations=declarations, claims=claims, cover=cover, names=names,
                           assignments=assignments,
                           orders={d.order_id: db.session.get(Order, d.order_id).order_no
                                   for d in declarations},
                           remaining={lim.id: services.limit_remaining(lim) for lim in limits})


# --------------------------------------------------------------------------- policies

def _rates(text: str) -> list[services.RateInput]:
    rates = []
    for line in (text or "").splitlines():
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split(",")]
        try:
            grade, days, rate = int(parts[0]), int(parts[1]), Decimal(parts[2]) / 100
        except (IndexError, ValueError, InvalidOperation):
            raise ValidationFailed(_("Write each rate as grade, days, rate in %%: 5,90,0.80"),
                                   field="rates") from None
        rates.append(services.RateInput(grade, days, rate))
    return rates


@bp.route("/policies/new", methods=["GET", "POST"])
@authz.allow(STAFF)
def policy_new():
    form = forms.PolicyForm()
    form.insured_org_id.choices = _orgs(OrgKind.SME)

    def render(status: int = 200, **given):
        return render_template("insurance/policy_new.html", form=form,
                               error=given.get("error")), status
    if not form.validate_on_submit():
        return render(422 if request.method == "POST" else 200)
    try:
        policy = services.issue_policy(services.PolicyTerms(
            insured_org_id=form.insured_org_id.data, start_date=form.start_date.data,
            end_date=form.end_date.data, currency=form.currency.data,
            currencies=[c for c in (form.currencies.data or "").replace(" ", "").split(",")
                        if c],
            max_liability=form.max_liability.data,
            commercial_coverage=form.commercial_coverage.data / 100,
            political_coverage=form.political_coverage.data / 100,
            declaration_mode=form.declaration_mode.data,
            declaration_days=form.declaration_days.data,
            overdue_report_days=form.overdue_report_days.data,
            waiting_days=form.waiting_days.data,
            insolvency_waiting_days=form.insolvency_waiting_days.data,
            rates=_rates(form.rates.data)), actor=current_user)
    except DomainError as exc:
        return _refused(render, form, exc, "form")
    return _done(_("Policy %(number)s issued.", number=policy.number),
                 ".policy_detail", policy_id=policy.id)


def _policy_page(policy_id: int, status: int = 200, **given):
    policy = services.get_policy(policy_id, actor=current_user)
    limits = queries.limits_of(policy)
    names = organisation_names({policy.insurer_org_id, policy.insured_org_id})
    return render_template(
        "insurance/policy_detail.html", policy=policy, limits=limits, names=names,
        remaining={lim.id: services.limit_remaining(lim) for lim in limits},
        used={lim.id: services.limit_used(lim) for lim in limits},
        liability_left=services.remaining_liability(policy),
        history=queries.history("policy", policy.id),
        may_apply=(authz.can(current_user, "insurance.act_for_insured", policy)
                   and policy.status is PolicyStatus.ISSUED),
        may_manage=authz.can(current_user, "insurance.manage", policy),
        limit_form=given.get("limit_form") or forms.LimitForm(),
        cancel_form=given.get("cancel_form") or forms.DecisionForm(action="cancel"),
        error=given.get("error")), status


@bp.get(f"/policies/<{ID}:policy_id>")
@authz.allow(INSURANCE)
def policy_detail(policy_id: int):
    return _policy_page(policy_id)


@bp.get(f"/policies/<{ID}:policy_id>/policy.pdf")
@authz.allow(INSURANCE)
def policy_document(policy_id: int):
    """The policy document, rendered once per language and kept with its SHA-256."""
    policy = services.get_policy(policy_id, actor=current_user)
    from finance_app.i18n import select_locale
    lang = request.args.get("lang") or ("zh_CN" if select_locale().startswith("zh") else "en")
    document = documents.policy_document(policy, lang)
    db.session.commit()
    return Response(document.content, mimetype="application/pdf", headers={
        "Content-Disposition": f'inline; filename="{policy.number}-{document.lang}.pdf"',
        "X-Content-SHA256": document.sha256})


@bp.post(f"/policies/<{ID}:policy_id>/cancel")
@authz.allow(STAFF)
def policy_cancel(policy_id: int):
    form = forms.DecisionForm()
    if not form.validate_on_submit():
        return _policy_page(policy_id, 422, cancel_form=form)
    try:
        services.cancel_policy(policy_id, actor=current_user, reason=form.reason.data)
    except DomainError as exc:
        return _refused(lambda s, **g: _policy_page(policy_id, s, **g), form, exc,
                        "cancel_form")
    return _done(_("Policy cancelled."), ".policy_detail", policy_id=policy_id)


@bp.post(f"/policies/<{ID}:policy_id>/limits")
@authz.allow(INSURED)
def limit_apply(policy_id: int):
    form = forms.LimitForm()
    if not form.validate_on_submit():
        return _policy_page(policy_id, 422, limit_form=form)
    try:
        limit = services.apply_for_limit(
            policy_id, actor=current_user, buyer_name=form.buyer_name.data,
            buyer_country=form.buyer_country.data,
            buyer_registration_no=form.buyer_registration_no.data, amount=form.amount.data,
            payment_term_days=form.payment_term_days.data)
    except DomainError as exc:
        return _refused(lambda s, **g: _policy_page(policy_id, s, **g), form, exc,
                        "limit_form")
    return _done(_("Credit limit asked for."), ".limit_detail", limit_id=limit.id)


# --------------------------------------------------------------------------- limits

def _limit_page(limit_id: int, status: int = 200, **given):
    limit = services.get_limit(limit_id, actor=current_user)
    declarations = queries.declarations_of(limit)
    return render_template(
        "insurance/limit_detail.html", limit=limit, policy=limit.policy,
        used=services.limit_used(limit), remaining=services.limit_remaining(limit),
        declarations=declarations,
        orders={d.order_id: db.session.get(Order, d.order_id).order_no for d in declarations},
        history=queries.history("limit", limit.id),
        may_decide=authz.can(current_user, "insurance.manage", limit),
        is_insured=authz.can(current_user, "insurance.act_for_insured", limit),
        form=given.get("form") or forms.DecisionForm(), error=given.get("error")), status


@bp.get(f"/limits/<{ID}:limit_id>")
@authz.allow(INSURANCE)
def limit_detail(limit_id: int):
    return _limit_page(limit_id)


@bp.post(f"/limits/<{ID}:limit_id>/decide")
@authz.allow(PARTY)
def limit_decide(limit_id: int):
    form = forms.DecisionForm()
    if not form.validate_on_submit():
        return _limit_page(limit_id, 422, form=form)
    action, amount, reason = form.action.data, form.amount.data, form.reason.data
    try:
        if action == "approve":
            services.approve_limit(limit_id, actor=current_user, amount=amount, reason=reason)
        elif action == "reduce":
            services.reduce_limit(limit_id, actor=current_user, amount=amount, reason=reason)
        elif action == "refuse":
            services.refuse_limit(limit_id, actor=current_user, reason=reason)
        elif action == "cancel":
            services.cancel_limit(limit_id, actor=current_user, reason=reason)
        elif action == "withdraw":
            services.withdraw_limit(limit_id, actor=current_user)
        else:
            raise ValidationFailed(_("Choose what to do."), field="action")
    except DomainError as exc:
        return _refused(lambda s, **g: _limit_page(limit_id, s, **g), form, exc, "form")
    return _done(_("Limit updated."), ".limit_detail", limit_id=limit_id)


# --------------------------------------------------------------------------- declarations

def _declarable_orders() -> list[tuple[int, str]]:
    """The SME's verified orders on payment terms, still unpaid and not declared."""
    declared = select(ShipmentDeclaration.order_id).where(
        ShipmentDeclaration.status != DeclarationStatus.CANCELLED)
    rows = db.session.execute(
        select(Order.id, Order.order_no, Order.buyer_name, Receivable.amount,
               Receivable.currency)
        .join(Receivable, Receivable.order_id == Order.id)
        .join(MatchVerdict, MatchVerdict.order_id == Order.id)
        .where(Order.filer_org_id == current_user.org_id,
               MatchVerdict.status == Verdict.VERIFIED,
               Receivable.status == ReceivableStatus.OPEN, Order.id.not_in(declared))
        .order_by(Order.id.desc()).limit(200)).all()
    return [(r.id, f"{r.order_no} · {r.buyer_name or ''} · {r.amount.normalize():f} "
                   f"{r.currency}") for r in rows]


@bp.route("/declarations/new", methods=["GET", "POST"])
@authz.allow(INSURED)
def declare():
    form = forms.DeclareForm()
    form.buyer_limit_id.choices = [
        (lim.id, f"{lim.buyer_name} ({lim.buyer_country}) · {lim.policy.number}")
        for lim in queries.open_limits_for(current_user)]
    form.order_id.choices = _declarable_orders()

    def render(status: int = 200, **given):
        return render_template("insurance/declare.html", form=form,
                               error=given.get("error")), status
    if not form.validate_on_submit():
        return render(422 if request.method == "POST" else 200)
    try:
        declaration = services.declare_shipment(
            actor=current_user, buyer_limit_id=form.buyer_limit_id.data,
            order_id=form.order_id.data, shipment_date=form.shipment_date.data)
    except DomainError as exc:
        return _refused(render, form, exc, "form")
    return _done(_("Shipment declared."), ".declaration_detail",
                 declaration_id=declaration.id)


def _declaration_page(declaration_id: int, status: int = 200, **given):
    declaration = services.get_declaration(declaration_id, actor=current_user)
    assignments = queries.assignments_of(declaration)
    claims = queries.claims_of(declaration)
    names = organisation_names({declaration.insurer_org_id, declaration.insured_org_id}
                               | {a.bank_org_id for a in assignments})
    assign_form = given.get("assign_form") or forms.AssignForm()
    assign_form.bank_org_id.choices = _orgs(OrgKind.BANK)
    is_insured = authz.can(current_user, "insurance.act_for_insured", declaration)
    live = [a for a in assignments if a.status in (
        AssignmentStatus.REQUESTED, AssignmentStatus.ACKNOWLEDGED, AssignmentStatus.ACTIVE)]
    return render_template(
        "insurance/declaration_detail.html", declaration=declaration,
        policy=declaration.policy, limit=declaration.buyer_limit,
        order=db.session.get(Order, declaration.order_id), report=queries.report_of(declaration),
        report_deadline=services.report_deadline(declaration),
        outstanding=services.outstanding(declaration),
        premium_status=services.premium_status(declaration), claims=claims,
        assignments=assignments, live_assignment=live[0] if live else None, names=names,
        history=queries.history("declaration", declaration.id),
        is_insured=is_insured,
        is_insurer=authz.can(current_user, "insurance.manage", declaration),
        may_claim=authz.can(current_user, "insurance.claim", declaration)
        and declaration.status is DeclarationStatus.OVERDUE,
        action_form=given.get("action_form") or forms.DeclarationActionForm(),
        claim_form=given.get("claim_form") or forms.ClaimForm(),
        assign_form=assign_form, decision_form=given.get("decision_form")
        or forms.DecisionForm(), user_org_id=current_user.org_id,
        error=given.get("error")), status


@bp.get(f"/declarations/<{ID}:declaration_id>")
@authz.allow(INSURANCE)
def declaration_detail(declaration_id: int):
    return _declaration_page(declaration_id)


@bp.post(f"/declarations/<{ID}:declaration_id>/act")
@authz.allow(PARTY)
def declaration_act(declaration_id: int):
    form = forms.DeclarationActionForm()
    if not form.validate_on_submit():
        return _declaration_page(declaration_id, 422, action_form=form)
    try:
        if form.action.data == "report_overdue":
            services.report_overdue(declaration_id, actor=current_user, note=form.note.data)
        elif form.action.data == "cancel":
            services.cancel_declaration(declaration_id, actor=current_user,
                                        reason=form.reason.data)
        elif form.action.data == "void":
            services.void_cover(declaration_id, actor=current_user, reason=form.reason.data)
        else:
            raise ValidationFailed(_("Choose what to do."), field="action")
    except DomainError as exc:
        return _refused(lambda s, **g: _declaration_page(declaration_id, s, **g), form, exc,
                        "action_form")
    return _done(_("Declaration updated."), ".declaration_detail",
                 declaration_id=declaration_id)


@bp.post(f"/declarations/<{ID}:declaration_id>/claim")
@authz.allow(PARTY)
def claim_file(declaration_id: int):
    form = forms.ClaimForm()
    if not form.validate_on_submit():
        return _declaration_page(declaration_id, 422, claim_form=form)
    try:
        claim = services.file_claim(declaration_id, actor=current_user, cause=form.cause.data,
                                    loss_amount=form.loss_amount.data)
    except DomainError as exc:
        return _refused(lambda s, **g: _declaration_page(declaration_id, s, **g), form, exc,
                        "claim_form")
    return _done(_("Claim filed."), ".claim_detail", claim_id=claim.id)


@bp.post(f"/declarations/<{ID}:declaration_id>/assign")
@authz.allow(INSURED)
def assign(declaration_id: int):
    form = forms.AssignForm()
    form.bank_org_id.choices = _orgs(OrgKind.BANK)
    if not form.validate_on_submit():
        return _declaration_page(declaration_id, 422, assign_form=form)
    try:
        services.request_assignment(declaration_id, actor=current_user,
                                    bank_org_id=form.bank_org_id.data)
    except DomainError as exc:
        return _refused(lambda s, **g: _declaration_page(declaration_id, s, **g), form, exc,
                        "assign_form")
    return _done(_("Assignment asked for: the insurer acknowledges it, then the bank "
                   "accepts it."), ".declaration_detail", declaration_id=declaration_id)


@bp.post(f"/assignments/<{ID}:assignment_id>/decide")
@authz.allow(PARTY)
def assignment_decide(assignment_id: int):
    assignment = services.get_assignment(assignment_id, actor=current_user)
    declaration_id = assignment.declaration_id
    form = forms.DecisionForm()
    if not form.validate_on_submit():
        return _declaration_page(declaration_id, 422, decision_form=form)
    action = form.action.data
    try:
        if action == "acknowledge":
            services.acknowledge_assignment(assignment_id, actor=current_user)
        elif action == "accept":
            services.accept_assignment(assignment_id, actor=current_user)
        elif action == "refuse":
            services.refuse_assignment(assignment_id, actor=current_user,
                                       reason=form.reason.data)
        elif action == "withdraw":
            services.withdraw_assignment(assignment_id, actor=current_user)
        elif action == "release":
            services.release_assignment(assignment_id, actor=current_user,
                                        reason=form.reason.data)
        else:
            raise ValidationFailed(_("Choose what to do."), field="action")
    except DomainError as exc:
        return _refused(lambda s, **g: _declaration_page(declaration_id, s, **g), form, exc,
                        "decision_form")
    return _done(_("Assignment updated."), ".declaration_detail",
                 declaration_id=declaration_id)


# --------------------------------------------------------------------------- claims

def _claim_page(claim_id: int, status: int = 200, **given):
    claim = services.get_claim(claim_id, actor=current_user)
    return render_template(
        "insurance/claim_detail.html", claim=claim, declaration=claim.declaration,
        order=db.session.get(Order, claim.declaration.order_id),
        names=organisation_names({claim.insurer_org_id, claim.insured_org_id,
                                  claim.filed_by_org_id, claim.payee_org_id}),
        recoveries=queries.recoveries_of(claim), history=queries.history("claim", claim.id),
        may_decide=authz.can(current_user, "insurance.manage", claim),
        may_withdraw=authz.can(current_user, "insurance.claim", claim.declaration)
        and claim.status in (ClaimStatus.FILED, ClaimStatus.UNDER_ASSESSMENT),
        may_recover=claim.status is ClaimStatus.PAID and (
            authz.can(current_user, "insurance.act_for_insured", claim)
            or authz.can(current_user, "insurance.manage", claim)),
        form=given.get("form") or forms.DecisionForm(),
        recovery_form=given.get("recovery_form") or forms.RecoveryForm(),
        error=given.get("error")), status


@bp.get(f"/claims/<{ID}:claim_id>")
@authz.allow(INSURANCE)
def claim_detail(claim_id: int):
    return _claim_page(claim_id)


@bp.post(f"/claims/<{ID}:claim_id>/decide")
@authz.allow(PARTY)
def claim_decide(claim_id: int):
    form = forms.DecisionForm()
    if not form.validate_on_submit():
        return _claim_page(claim_id, 422, form=form)
    action = form.action.data
    try:
        if action == "assess":
            services.start_assessment(claim_id, actor=current_user)
        elif action == "approve":
            services.approve_claim(claim_id, actor=current_user, reason=form.reason.data)
        elif action == "reject":
            services.reject_claim(claim_id, actor=current_user, reason=form.reason.data)
        elif action == "withdraw":
            services.withdraw_claim(claim_id, actor=current_user)
        else:
            raise ValidationFailed(_("Choose what to do."), field="action")
    except DomainError as exc:
        return _refused(lambda s, **g: _claim_page(claim_id, s, **g), form, exc, "form")
    return _done(_("Claim updated."), ".claim_detail", claim_id=claim_id)


@bp.post(f"/claims/<{ID}:claim_id>/recoveries")
@authz.allow(PARTY)
def recovery(claim_id: int):
    form = forms.RecoveryForm()
    if not form.validate_on_submit():
        return _claim_page(claim_id, 422, recovery_form=form)
    try:
        services.record_recovery(claim_id, actor=current_user, amount=form.amount.data)
    except DomainError as exc:
        return _refused(lambda s, **g: _claim_page(claim_id, s, **g), form, exc,
                        "recovery_form")
    return _done(_("Recovery recorded: the insurer's share is to be paid to it."),
                 ".claim_detail", claim_id=claim_id)
