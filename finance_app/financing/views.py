"""Financing in the browser. SMEs browse the marketplace (what they could borrow where,
against what), send a request to several banks at once, compare the offers and accept
one, and repay their loans. Banks publish products, grant facilities, review the requests
sent to them (an officer prepares an offer or a rejection, another person approves it),
disburse and, before that, may cancel. The platform operator reads everything.

Each view parses its form, calls one service, commits and redirects; a service's refusal
is shown on the form field it names."""
from __future__ import annotations

import re
import uuid
from datetime import timedelta
from decimal import Decimal

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from finance_app import authz, clock, outbox
from finance_app.accounts.models import Organisation, User
from finance_app.accounts.services import organisation_names
from finance_app.accounts.states import FilingStatus, OrgKind
from finance_app.api.schemas import ID
from finance_app.collateral import services as registry
from finance_app.collateral.states import AssetKind, EncumbranceStatus
from finance_app.errors import Conflict, DomainError, Forbidden, NotFound
from finance_app.extensions import db
from finance_app.financing import contracts, forms, queries
from finance_app.financing import loans as lending
from finance_app.financing import marketplace as market
from finance_app.financing import products as catalogue
from finance_app.financing import review as reviews
from finance_app.financing.states import (
    LIVE_LOAN_STATUSES, DecisionKind, LoanStatus, OfferStatus, ProductKind, ProductStatus,
    RequestStatus,
)
from finance_app.money import Money
from finance_app.settlement.views import register_subject_link
from finance_app.web import page_arg

bp = Blueprint("financing", __name__, url_prefix="/financing")


def _loan_link(ident: str, reader: User) -> tuple[str, str] | None:
    """A disbursement ("loan:12") or a repayment ("repayment:12") links to its loan, for
    those who may read it."""
    if not ident.isdigit():
        return None
    try:
        loan = lending.get_loan(int(ident), actor=reader)
    except NotFound:
        return None
    return _("Loan #%(id)s", id=loan.id), url_for("financing.loan_detail", loan_id=loan.id)


register_subject_link("loan", _loan_link)
register_subject_link("repayment", _loan_link)

READ, SME, BANK = authz.FINANCING, authz.FINANCING_SME, authz.FINANCING_BANK


@bp.context_processor
def _helpers():
    return {"pct": _pct, "kind_labels": forms.KIND_LABELS,
            "product_status_labels": forms.PRODUCT_STATUS_LABELS,
            "request_status_labels": forms.REQUEST_STATUS_LABELS,
            "offer_status_labels": forms.OFFER_STATUS_LABELS,
            "decision_kind_labels": forms.DECISION_KIND_LABELS,
            "rejection_labels": forms.REJECTION_LABELS,
            "loan_status_labels": forms.LOAN_STATUS_LABELS,
            "receipt_kind": AssetKind.WAREHOUSE_RECEIPT,
            "encumbrance_status": EncumbranceStatus,
            "instalment_status_labels": forms.INSTALMENT_STATUS_LABELS,
            "repayment_type_labels": forms.REPAYMENT_TYPE_LABELS,
            "method_labels": forms.METHOD_LABELS,
            "repayment_status_labels": forms.REPAYMENT_STATUS_LABELS,
            "verdict_labels": forms.VERDICT_LABELS,
            "severity_labels": forms.SEVERITY_LABELS,
            "binding_label": market.binding_label, "asset_label": _asset_label,
            "org_kind": _org_kind()}


def _org_kind() -> str | None:
    return current_user.organisation.kind.value if current_user.is_authenticated else None


def _asset_label(item) -> str:
    """A collateral item named in the reader's language (the request keeps the label in the
    SME's language, as it was when the request was sent)."""
    try:
        return registry.asset_label(item.asset_kind, item.asset_id)
    except (KeyError, ValueError):
        return item.label


def _pct(value: Decimal | None) -> str:
    """A fraction as a percentage: 0.065 is 6.50%, 0.06125 is 6.125%."""
    if value is None:
        return "—"
    shown = (value * 100).normalize()
    if shown.as_tuple().exponent > -2:
        shown = shown.quantize(Decimal("0.01"))
    return f"{shown:f}%"


def _fraction(value: Decimal | None) -> Decimal | None:
    """A percentage as typed (6.5) as the fraction the services take (0.065)."""
    return None if value is None else value / 100


def _status(exc: DomainError) -> int:
    if isinstance(exc, Conflict):
        return 409
    if isinstance(exc, Forbidden):
        return 403
    return 422


def _form_error(form, exc: DomainError, aliases: dict[str, str] | None = None) -> None:
    """The service's message on the field it names (hidden fields: above the form)."""
    name = (aliases or {}).get(exc.field or "", exc.field or "")
    target = getattr(form, name, None) if name else None
    if target is not None and hasattr(target, "errors") and target.type != "HiddenField":
        target.errors = [*target.errors, exc.message]
    else:
        form.form_errors.append(exc.message)


def _refused(exc: DomainError) -> None:
    """Roll back what the refused service did; a missing object stays a 404."""
    db.session.rollback()
    if isinstance(exc, NotFound):
        raise exc


def _done(message: str) -> None:
    db.session.commit()
    outbox.deliver_new()
    flash(message, "success")


def _people(ids) -> dict[int, str]:
    return {i: db.session.get(User, i).name for i in {i for i in ids if i}}


# --------------------------------------------------------------------------- marketplace

@bp.get("/")
@authz.allow(SME)
def marketplace():
    currency = (request.args.get("currency") or "").strip().upper() or None
    views = market.offers_for_sme(current_user, currency=currency)
    currencies = sorted({c for v in views for c in v.product.currency_list})
    return render_template("financing/marketplace.html", views=views, currency=currency,
                           currencies=currencies)


def _product_arg():
    product_id = request.args.get("product", type=int)
    if product_id is None:
        return None
    try:
        product = catalogue.get_product(product_id, actor=current_user)
    except NotFound:
        return None
    return product if product.status is ProductStatus.ACTIVE else None


def _request_choices(form, product):
    """The SME's collateral of the product's kind (those it cannot use too, each with its
    problem: a service refusal names them) and the active products of that kind, the
    request going to several banks at once."""
    items = market.collateral(current_user.org_id, product.kind,
                              require_verified=product.require_verified)
    form.collateral.choices = [(i.key, i.label) for i in items]
    form.currency.choices = [(c, c) for c in product.currency_list]
    others = market.visible_products(kind=product.kind)
    form.product_ids.choices = [(p.id, p.name) for p in others]
    return items, others


def _request_page(form, product, status: int = 200):
    sme = current_user.org_id
    items, others = _request_choices(form, product)
    if request.method == "GET" and form.collateral.data is None:
        form.collateral.data = [i.key for i in items if i.available]
    currency = form.currency.data if form.currency.data in product.currency_list \
        else product.currency_list[0]
    usable = [i for i in items if i.available]
    chosen = set(form.collateral.data or []) or {i.key for i in usable}
    basis = [i for i in usable if i.key in chosen]
    rows = []
    for p in others:
        result = market.eligibility(p, sme, basis, currency if currency in p.currency_list
                                    else None)
        rows.append((p, result))
    names = organisation_names({p.bank_org_id for p in others})
    return render_template("financing/new_request.html", form=form, product=product,
                           items=items, rows=rows, names=names, currency=currency), status


def _collateral_ref(key: str) -> tuple[str, int]:
    kind, _sep, ident = key.partition(":")
    return kind, int(ident) if ident.isdigit() else 0


@bp.route("/requests/new", methods=["GET", "POST"])
@authz.allow(SME)
def new_request():
    product = _product_arg()
    if product is None:
        flash(_("Choose a product in the marketplace first."), "warning")
        return redirect(url_for(".marketplace"))
    form = forms.RequestForm()
    if request.method == "GET":
        form.product_ids.data = [product.id]
        wanted = (request.args.get("currency") or "").upper()
        form.currency.data = wanted if wanted in product.currency_list \
            else product.currency_list[0]
        return _request_page(form, product)
    _request_choices(form, product)   # what the form is checked against
    if not form.validate_on_submit():
        return _request_page(form, product, 422)
    try:
        made = market.submit_request(market.RequestInput(
            amount=Money.of(form.amount.data, form.currency.data),
            tenor_days=form.tenor_days.data, purpose=form.purpose.data,
            collateral=[_collateral_ref(k) for k in form.collateral.data],
            product_ids=list(form.product_ids.data)), actor=current_user)
    except DomainError as exc:
        _refused(exc)
        _form_error(form, exc)
        return _request_page(form, product, _status(exc))
    banks = organisation_names({t.bank_org_id for t in made.targets})
    _done(_("Request sent to %(banks)s.", banks=", ".join(
        banks[t.bank_org_id] for t in made.targets)))
    return redirect(url_for(".request_detail", request_id=made.id))


# --------------------------------------------------------------------------- requests

@bp.get("/requests")
@authz.allow(READ)
def requests():
    raw = request.args.get("status") or ""
    status = RequestStatus(raw) if raw in {s.value for s in RequestStatus} else None
    page = queries.requests(current_user, status=status, page=page_arg())
    banks = {r.id: [t for t in r.targets if _sees_target(t)] for r in page.items}
    names = organisation_names({r.sme_org_id for r in page.items}
                               | {t.bank_org_id for ts in banks.values() for t in ts})
    return render_template("financing/requests.html", page=page, status=status,
                           statuses=list(RequestStatus), banks=banks, names=names,
                           args={k: v for k, v in request.args.items() if k != "page" and v})


def _sees_target(target) -> bool:
    """A bank sees only its own part of a request sent to several banks."""
    return current_user.organisation.kind is not OrgKind.BANK \
        or target.bank_org_id == current_user.org_id


def _request_detail(req, status: int = 200, error: str | None = None):
    decisions = queries.decisions_visible(req, current_user)
    offers = [d for d in decisions if d.kind is DecisionKind.OFFER]
    rejections = [d for d in decisions if d.kind is DecisionKind.REJECTION]
    targets = [t for t in req.targets if _sees_target(t)]
    latest = {}
    for d in decisions:
        latest[d.target_id] = d
    names = organisation_names({req.sme_org_id} | {t.bank_org_id for t in targets})
    products = {t.id: t.product for t in targets}
    costs = {d.id: reviews.decision_cost(d) for d in offers}
    open_offers = [d for d in offers if d.status is OfferStatus.APPROVED]
    lowest = min(open_offers, key=lambda d: costs[d.id].apr).id \
        if len(open_offers) > 1 else None
    return render_template(
        "financing/request_detail.html", req=req, offers=offers, rejections=rejections,
        costs=costs, lowest=lowest, targets=targets,
        latest=latest, names=names, products=products,
        eligible={t.id: Money.from_minor(t.eligible_amount, req.currency) for t in targets},
        loan=lending.loan_for_request(req.id), error=error,
        may_manage=authz.can(current_user, "financing.manage_request", req),
        button=forms.EmptyForm(), today=clock.today()), status


@bp.get(f"/requests/<{ID}:request_id>")
@authz.allow(READ)
def request_detail(request_id: int):
    return _request_detail(market.get_request(request_id, actor=current_user))


@bp.post(f"/requests/<{ID}:request_id>/withdraw")
@authz.allow(SME)
def withdraw_request(request_id: int):
    try:
        market.withdraw_request(request_id, actor=current_user)
    except DomainError as exc:
        _refused(exc)
        return _request_detail(market.get_request(request_id, actor=current_user),
                               _status(exc), error=exc.message)
    _done(_("Request withdrawn; the banks' offers on it lapsed."))
    return redirect(url_for(".request_detail", request_id=request_id))


@bp.post(f"/offers/<{ID}:decision_id>/accept")
@authz.allow(SME)
def accept_offer(decision_id: int):
    try:
        loan = lending.accept_offer(decision_id, actor=current_user)
    except DomainError as exc:
        _refused(exc)
        decision = reviews.get_decision(decision_id, actor=current_user)
        return _request_detail(market.get_request(decision.request_id, actor=current_user),
                               _status(exc), error=exc.message)
    _done(_("Offer accepted: the loan awaits disbursement by the bank."))
    return redirect(url_for(".loan_detail", loan_id=loan.id))


# --------------------------------------------------------------------------- loans

@bp.get("/loans")
@authz.allow(READ)
def loans():
    raw = request.args.get("status") or ""
    status = LoanStatus(raw) if raw in {s.value for s in LoanStatus} else None
    page = queries.loans(current_user, status=status, page=page_arg())
    names = organisation_names({x.sme_org_id for x in page.items}
                               | {x.bank_org_id for x in page.items})
    return render_template("financing/loans.html", page=page, status=status,
                           statuses=list(LoanStatus), names=names,
                           args={k: v for k, v in request.args.items() if k != "page" and v})


def _loan_detail(loan, status: int = 200, error: str | None = None, **given):
    live = loan.status in LIVE_LOAN_STATUSES
    owed = lending.position(loan) if live else None
    awaiting = loan.status is LoanStatus.AWAITING_DISBURSEMENT
    repay_form = given.get("repay_form") or forms.RepaymentForm(formdata=None)
    if not repay_form.idempotency_key.data:
        repay_form.idempotency_key.data = uuid.uuid4().hex
    if not repay_form.currency.data:
        repay_form.currency.data = loan.currency
    if repay_form.amount.data is None and owed is not None and owed.total.amount > 0:
        repay_form.amount.data = owed.total.amount
    disburse_form = given.get("disburse_form") or forms.DisburseForm(formdata=None)
    if not disburse_form.receive_currency.data:
        disburse_form.receive_currency.data = loan.currency
    repayments = queries.repayments(loan)
    is_bank = current_user.org_id == loan.bank_org_id
    return render_template(
        "financing/loan_detail.html", loan=loan, owed=owed, schedule=queries.schedule(loan),
        repayments=repayments, contract=queries.contract_for(loan), is_bank=is_bank,
        collateral=_loan_collateral(loan),
        product=catalogue.get_product(loan.product_id), history=queries.history(loan),
        names=organisation_names({loan.sme_org_id, loan.bank_org_id}), error=error,
        may_repay=live and authz.can(current_user, "financing.repay", loan),
        may_disburse=awaiting and authz.can(current_user, "financing.disburse", loan),
        may_cancel=awaiting and is_bank and authz.can(current_user, "financing.cancel_loan",
                                                      loan),
        repay_form=repay_form, disburse_form=disburse_form,
        cancel_form=given.get("cancel_form") or forms.CancelLoanForm(formdata=None)), status


def _loan_collateral(loan) -> list[tuple]:
    """Each item the loan is secured by, with its pledge or assignment to this loan (the
    registry's row, if any): active while the loan lives, released when it closes."""
    req = market.get_request(loan.request_id)
    ref = lending.loan_ref(loan)
    rows = []
    for c in sorted(req.collateral, key=lambda c: (c.asset_kind.value, c.asset_id)):
        mine = [e for e in registry.history_for(c.asset_kind, c.asset_id)
                if e.financing_ref == ref and e.holder_org_id == loan.bank_org_id]
        rows.append((c, mine[-1] if mine else None))
    return rows


@bp.get(f"/loans/<{ID}:loan_id>")
@authz.allow(READ)
def loan_detail(loan_id: int):
    return _loan_detail(lending.get_loan(loan_id, actor=current_user))


def _loan_action(loan_id: int, form_name: str, form, action, done: str,
                 aliases: dict[str, str] | None = None):
    if not form.validate_on_submit():
        return _loan_detail(lending.get_loan(loan_id, actor=current_user), 422,
                            **{form_name: form})
    try:
        result = action(form)
    except DomainError as exc:
        _refused(exc)
        _form_error(form, exc, aliases)
        return _loan_detail(lending.get_loan(loan_id, actor=current_user), _status(exc),
                            error=exc.message, **{form_name: form})
    _done(done)
    return result


@bp.post(f"/loans/<{ID}:loan_id>/repay")
@authz.allow(SME)
def repay(loan_id: int):
    def run(f):
        repayment = lending.start_repayment(
            loan_id, actor=current_user, amount=Money.of(f.amount.data, f.currency.data),
            method=f.method.data, key=f.idempotency_key.data)
        return redirect(url_for("settlement.record_detail",
                                record_id=repayment.settlement_record_id))
    return _loan_action(loan_id, "repay_form", forms.RepaymentForm(), run,
                        _("Repayment started: pay it on this page."))


@bp.post(f"/loans/<{ID}:loan_id>/disburse")
@authz.allow(BANK)
def disburse(loan_id: int):
    def run(f):
        lending.disburse(loan_id, actor=current_user, reference=f.reference.data,
                         receive_currency=f.receive_currency.data)
        return redirect(url_for(".loan_detail", loan_id=loan_id))
    return _loan_action(loan_id, "disburse_form", forms.DisburseForm(), run,
                        _("Loan disbursed: its schedule starts today."),
                        {"currency": "receive_currency"})


@bp.post(f"/loans/<{ID}:loan_id>/cancel")
@authz.allow(BANK)
def cancel_loan(loan_id: int):
    def run(f):
        lending.cancel_loan(loan_id, actor=current_user, reason=f.reason.data)
        return redirect(url_for(".loan_detail", loan_id=loan_id))
    return _loan_action(loan_id, "cancel_form", forms.CancelLoanForm(), run,
                        _("Loan cancelled; its collateral was released."))


@bp.get(f"/loans/<{ID}:loan_id>/contract.pdf")
@authz.allow(READ)
def contract(loan_id: int):
    """The loan's contract (its SME, its bank and the operator)."""
    loan = lending.get_loan(loan_id, actor=current_user)
    found = queries.contract_for(loan)
    if found is None:
        raise NotFound("contract", loan_id)
    body = contracts.ensure_pdf(found)
    db.session.commit()
    return Response(body, mimetype="application/pdf", headers={
        "Content-Disposition": f'inline; filename="{found.number}.pdf"'})


# --------------------------------------------------------------------------- products

def _products_page(status: int = 200, error: str | None = None):
    page = queries.products(current_user, page=page_arg())
    return render_template("financing/products.html", page=page, error=error,
                           button=forms.ProductStatusForm(formdata=None),
                           names=organisation_names({p.bank_org_id for p in page.items}),
                           may_manage=authz.can(current_user, "financing.manage_products",
                                                current_user.organisation),
                           args={}), status


@bp.get("/products")
@authz.allow(READ)
def products():
    return _products_page()


def _product_page(form, status: int = 200):
    guidance = [(k, catalogue.advance_guidance(k)) for k in ProductKind]
    return render_template("financing/new_product.html", form=form,
                           guidance=guidance), status


@bp.route("/products/new", methods=["GET", "POST"])
@authz.allow(BANK)
def new_product():
    form = forms.ProductForm()
    if request.method == "GET":
        return _product_page(form)
    if not form.validate_on_submit():
        return _product_page(form, 422)
    try:
        made = catalogue.create_product(catalogue.ProductTerms(
            name=form.name.data, kind=form.kind.data,
            currencies=[c for c in re.split(r"[\s,;]+", form.currencies.data or "") if c],
            max_advance_rate=_fraction(form.max_advance_rate.data),
            rate_min=_fraction(form.rate_min.data), rate_max=_fraction(form.rate_max.data),
            day_count=form.day_count.data, max_tenor_days=form.max_tenor_days.data,
            repayment_type=form.repayment_type.data,
            penalty_rate=_fraction(form.penalty_rate.data),
            default_after_days=form.default_after_days.data,
            arrangement_fee_rate=_fraction(form.arrangement_fee_rate.data),
            margin_call_ltv=_fraction(form.margin_call_ltv.data),
            liquidation_ltv=_fraction(form.liquidation_ltv.data),
            cure_days=form.cure_days.data, min_rating=form.min_rating.data or None,
            require_verified=form.require_verified.data,
            require_insurance=form.require_insurance.data,
            description=form.description.data), actor=current_user)
    except DomainError as exc:
        _refused(exc)
        _form_error(form, exc, {"max_ltv": "max_advance_rate"})
        return _product_page(form, _status(exc))
    _done(_("Product %(name)s published.", name=made.name))
    return redirect(url_for(".products"))


@bp.post(f"/products/<{ID}:product_id>/status")
@authz.allow(BANK)
def product_status(product_id: int):
    form = forms.ProductStatusForm()
    if not form.validate_on_submit():
        return _products_page(422, _("Pause or resume."))
    try:
        product = catalogue.set_product_status(product_id, form.action.data,
                                               actor=current_user, note=form.note.data)
    except DomainError as exc:
        _refused(exc)
        return _products_page(_status(exc), exc.message)
    _done(_("%(name)s paused: it takes no new requests.", name=product.name)
          if product.status is ProductStatus.PAUSED
          else _("%(name)s resumed.", name=product.name))
    return redirect(url_for(".products"))


# --------------------------------------------------------------------------- facilities

def _facilities_page(form, status: int = 200):
    listed = queries.facilities(current_user)
    rows = [(f, catalogue.figures(f)) for f in listed]
    may_grant = authz.can(current_user, "financing.grant_facility", current_user.organisation)
    if may_grant:
        form.sme_org_id.choices = [(o.id, o.name) for o in db.session.execute(
            select(Organisation).where(Organisation.kind == OrgKind.SME,
                                       Organisation.filing_status == FilingStatus.APPROVED)
            .order_by(Organisation.name)).scalars()]
        if form.expiry_date.data is None:
            form.expiry_date.data = clock.today() + timedelta(days=365)
    names = organisation_names({f.sme_org_id for f in listed} | {f.bank_org_id for f in listed})
    return render_template("financing/facilities.html", rows=rows, form=form, names=names,
                           may_grant=may_grant), status


@bp.get("/facilities")
@authz.allow(READ)
def facilities():
    return _facilities_page(forms.FacilityForm(formdata=None))


@bp.post("/facilities")
@authz.allow(BANK)
def grant_facility():
    form = forms.FacilityForm()
    form.sme_org_id.choices = [(o.id, o.name) for o in db.session.execute(
        select(Organisation).where(Organisation.kind == OrgKind.SME)).scalars()]
    if not form.validate_on_submit():
        return _facilities_page(form, 422)
    try:
        catalogue.grant_facility(actor=current_user, sme_org_id=form.sme_org_id.data,
                                 limit=Money.of(form.limit.data, form.currency.data,
                                                field="limit"),
                                 expiry_date=form.expiry_date.data, note=form.note.data)
    except DomainError as exc:
        _refused(exc)
        _form_error(form, exc)
        return _facilities_page(form, _status(exc))
    _done(_("Facility granted."))
    return redirect(url_for(".facilities"))


# --------------------------------------------------------------------------- review

@bp.get("/review")
@authz.allow(BANK)
def review_queue():
    show = request.args.get("show") or "to_decide"
    show = show if show in queries.QUEUE_FILTERS else "to_decide"
    page = queries.review_queue(current_user, show=show, page=page_arg())
    names = organisation_names({row.request.sme_org_id for row in page.items})
    return render_template("financing/review_queue.html", page=page, show=show, names=names,
                           tabs=[(k, forms.QUEUE_LABELS[k]) for k in queries.QUEUE_FILTERS],
                           args={"show": show})


def _offer_form(target, req):
    form = forms.OfferForm(formdata=None)
    form.amount.data = req.money.amount
    form.tenor_days.data = min(req.tenor_days, target.product.max_tenor_days)
    form.fees.data = reviews.default_fees(target.product, req.money).amount
    form.expiry_date.data = clock.today() + timedelta(days=reviews.OFFER_DAYS)
    return form


def _evidence(target_id: int, status: int = 200, error: str | None = None, **given):
    pack = reviews.evidence_pack(target_id, actor=current_user)
    target, req = pack.target, pack.request
    live = reviews.live_decision(target)
    may_prepare = (live is None and req.status is RequestStatus.SUBMITTED
                   and authz.can(current_user, "financing.prepare", target))
    offers = [d for d in pack.decisions if d.kind is DecisionKind.OFFER]
    return render_template(
        "financing/evidence.html", pack=pack, target=target, req=req, product=target.product,
        live=live, may_prepare=may_prepare, error=error,
        may_withdraw=live is not None and authz.can(current_user, "financing.prepare", target),
        costs={d.id: reviews.decision_cost(d) for d in offers},
        people=_people({d.prepared_by_id for d in pack.decisions}
                       | {d.approved_by_id for d in pack.decisions}),
        is_approver=authz.can(current_user, "financing.approve", live) if live else False,
        offer_form=given.get("offer_form") or _offer_form(target, req),
        rejection_form=given.get("rejection_form") or forms.RejectionForm(formdata=None),
        withdraw_form=given.get("withdraw_form") or forms.WithdrawDecisionForm(formdata=None),
        button=forms.EmptyForm(), today=clock.today(),
        receipt_labels=_receipt_labels()), status


def _receipt_labels():
    from finance_app.warehouse.forms import STATUS_LABELS
    return STATUS_LABELS


@bp.get(f"/review/<{ID}:target_id>")
@authz.allow(BANK)
def evidence(target_id: int):
    return _evidence(target_id)


def _decide(target_id: int, form_name: str, form, action, done: str):
    if not form.validate_on_submit():
        return _evidence(target_id, 422, **{form_name: form})
    try:
        action(form)
    except DomainError as exc:
        _refused(exc)
        _form_error(form, exc)
        return _evidence(target_id, _status(exc), error=exc.message, **{form_name: form})
    _done(done)
    return redirect(url_for(".evidence", target_id=target_id))


@bp.post(f"/review/<{ID}:target_id>/offer")
@authz.allow(BANK)
def prepare_offer(target_id: int):
    def run(f):
        currency = reviews.get_target(target_id, actor=current_user).request.currency
        reviews.prepare_offer(target_id, reviews.OfferTerms(
            amount=Money.of(f.amount.data, currency),
            annual_rate=_fraction(f.annual_rate.data), tenor_days=f.tenor_days.data,
            fees=None if f.fees.data is None else Money.of(f.fees.data, currency,
                                                           field="fees"),
            conditions=f.conditions.data, expiry_date=f.expiry_date.data),
            actor=current_user)
    return _decide(target_id, "offer_form", forms.OfferForm(), run,
                   _("Offer prepared: another person approves it before the SME sees it."))


@bp.post(f"/review/<{ID}:target_id>/reject")
@authz.allow(BANK)
def prepare_rejection(target_id: int):
    return _decide(target_id, "rejection_form", forms.RejectionForm(),
                   lambda f: reviews.prepare_rejection(target_id, reasons=f.reasons.data,
                                                       text=f.text.data, actor=current_user),
                   _("Rejection prepared: another person approves it before the SME sees "
                     "it."))


def _on_decision(decision_id: int, action, done: str, form=None):
    decision = reviews.get_decision(decision_id, actor=current_user)
    target_id = decision.target_id
    if form is not None and not form.validate_on_submit():
        return _evidence(target_id, 422, withdraw_form=form)
    try:
        action()
    except DomainError as exc:
        _refused(exc)
        return _evidence(target_id, _status(exc), error=exc.message)
    _done(done)
    return redirect(url_for(".evidence", target_id=target_id))


@bp.post(f"/decisions/<{ID}:decision_id>/approve")
@authz.allow(BANK)
def approve_decision(decision_id: int):
    return _on_decision(decision_id, lambda: reviews.approve(decision_id, actor=current_user),
                        _("Approved: the SME sees it now."))


@bp.post(f"/decisions/<{ID}:decision_id>/withdraw")
@authz.allow(BANK)
def withdraw_decision(decision_id: int):
    form = forms.WithdrawDecisionForm()
    return _on_decision(decision_id, lambda: reviews.withdraw_decision(
        decision_id, actor=current_user, note=form.note.data), _("Withdrawn."), form)

