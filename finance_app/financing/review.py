"""A bank's review of the requests sent to it: the evidence pack, and its decision.

An officer prepares an offer (amount up to what the SME can borrow there, a rate within
the product's range, a tenor within its maximum, fees, conditions, an expiry date) or a
rejection (reason codes and a sentence); an approver of the same bank, another person,
approves it, and only then does the SME see it. A bank sees only its own decisions.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal, localcontext

from flask_babel import gettext
from sqlalchemy import func, select

from finance_app import authz, clock
from finance_app.accounts.models import Organisation, User
from finance_app.accounts.notifications import notify
from finance_app.collateral import services as registry
from finance_app.collateral.states import AssetKind
from finance_app.errors import Conflict, Forbidden, NotFound, ValidationFailed
from finance_app.extensions import db
from finance_app.financing import marketplace
from finance_app.financing.lookup import visible
from finance_app.financing.models import (
    Decision, FinancingProduct, FinancingRequest, Loan, RequestCollateral, RequestTarget,
)
from finance_app.financing.schedule import apr, build_schedule, total_cost
from finance_app.financing.states import (
    DecisionKind, LoanStatus, OfferAction, OfferStatus, RejectionReason, RequestStatus,
)
from finance_app.money import Money, minor_units, round_exact
from finance_app.trade.models import MatchVerdict, Order, Receivable

OFFER_DAYS = 14          # an offer's default life
MAX_OFFER_DAYS = 90
VISIBLE_TO_SME = (OfferStatus.APPROVED, OfferStatus.ACCEPTED, OfferStatus.EXPIRED)


@dataclass(frozen=True)
class OfferTerms:
    amount: Money
    annual_rate: Decimal
    tenor_days: int
    fees: Money | None = None           # default: the product's arrangement fee
    conditions: str | None = None
    expiry_date: date | None = None     # default: OFFER_DAYS from today


# --------------------------------------------------------------------------- lookups

def get_target(target_id: int, *, actor: User) -> RequestTarget:
    target = db.session.get(RequestTarget, target_id) if isinstance(target_id, int) else None
    if target is None or not authz.can(actor, "financing.review", target):
        raise NotFound("financing request", target_id)
    return target


def get_decision(decision_id: int, *, actor: User | None = None, lock: bool = False
                 ) -> Decision:
    return visible(Decision, decision_id, actor=actor, rule="financing.read_decision",
                   what="offer", lock=lock)


def live_decision(target: RequestTarget) -> Decision | None:
    return db.session.execute(select(Decision).where(
        Decision.target_id == target.id,
        Decision.status.in_([OfferStatus.PREPARED, OfferStatus.APPROVED]))
    ).scalar_one_or_none()


def decisions_for_target(target: RequestTarget) -> list[Decision]:
    return list(db.session.execute(select(Decision).where(Decision.target_id == target.id)
                                   .order_by(Decision.id)).scalars())


# --------------------------------------------------------------------------- offer terms

def default_fees(product: FinancingProduct, amount: Money) -> Money:
    with localcontext(prec=60):
        return round_exact(amount.amount * product.arrangement_fee_rate, amount.currency,
                           ROUND_HALF_UP)


@dataclass(frozen=True)
class Cost:
    """What an offer costs the SME, on a schedule starting today (the disbursement date
    sets the real one)."""
    interest: Money
    fees: Money
    total: Money
    apr: Decimal
    net_disbursed: Money
    repaid: Money


def cost_of(amount: Money, annual_rate: Decimal, day_count: int, tenor_days: int,
            repayment_type, fees: Money, start: date | None = None) -> Cost:
    schedule = build_schedule(amount, annual_rate, day_count, start or clock.today(),
                              tenor_days, repayment_type)
    return Cost(interest=schedule.total_interest, fees=fees,
                total=total_cost(schedule, fees), apr=apr(schedule, fees),
                net_disbursed=amount - fees, repaid=schedule.total_repaid)


def decision_cost(decision: Decision) -> Cost | None:
    if decision.kind is not DecisionKind.OFFER:
        return None
    product = decision.target.product
    return cost_of(decision.money, decision.annual_rate, product.day_count,
                   decision.tenor_days, product.repayment_type, decision.fees)


def _check_offer(target: RequestTarget, request: FinancingRequest, terms: OfferTerms
                 ) -> tuple[Money, Decimal, int, Money, date, str | None]:
    product = target.product
    amount = terms.amount
    if not isinstance(amount, Money) or amount.amount <= 0:
        raise ValidationFailed(gettext("The amount must be greater than zero."), field="amount")
    if amount.currency != request.currency:
        raise ValidationFailed(gettext("The request is in %(currency)s; offer in it.",
                                       currency=request.currency), field="currency")
    try:
        amount.to_minor()
    except ValueError:
        raise ValidationFailed(gettext("%(currency)s amounts have at most %(n)s decimal "
                                       "places.", currency=amount.currency,
                                       n=minor_units(amount.currency)), field="amount") from None
    eligible = current_eligible(target, request)
    if amount > eligible.amount:
        raise ValidationFailed(gettext(
            "%(amount)s is more than the SME can borrow here: at most %(eligible)s "
            "(%(binding)s).", amount=str(amount), eligible=str(eligible.amount),
            binding=marketplace.binding_label(eligible.binding)), field="amount",
            code="above_eligible_amount")
    rate = terms.annual_rate
    if isinstance(rate, (float, bool)) or not isinstance(rate, Decimal) or not rate.is_finite():
        raise ValidationFailed(gettext("Enter the annual rate."), field="annual_rate")
    if rate != rate.quantize(Decimal("0.000001")) or not product.rate_min <= rate <= product.rate_max:
        raise ValidationFailed(gettext(
            "The rate is within the product's range, %(low)s%% to %(high)s%%.",
            low=_pct(product.rate_min), high=_pct(product.rate_max)), field="annual_rate")
    tenor = terms.tenor_days
    if isinstance(tenor, bool) or not isinstance(tenor, int) \
            or not 1 <= tenor <= product.max_tenor_days:
        raise ValidationFailed(gettext("The tenor is 1 to %(n)s days for this product.",
                                       n=product.max_tenor_days), field="tenor_days")
    fees = terms.fees if terms.fees is not None else default_fees(product, amount)
    if not isinstance(fees, Money) or fees.currency != amount.currency or fees.amount < 0:
        raise ValidationFailed(gettext("Fees are zero or more, in the offer's currency."),
                               field="fees")
    try:
        fees.to_minor()
    except ValueError:
        raise ValidationFailed(gettext("%(currency)s amounts have at most %(n)s decimal "
                                       "places.", currency=fees.currency,
                                       n=minor_units(fees.currency)), field="fees") from None
    if fees.amount * 10 > amount.amount:
        raise ValidationFailed(gettext("Fees are at most a tenth of the amount."), field="fees")
    today = clock.today()
    expiry = terms.expiry_date or today + timedelta(days=OFFER_DAYS)
    if not isinstance(expiry, date) or not today <= expiry <= today + timedelta(
            days=MAX_OFFER_DAYS):
        raise ValidationFailed(gettext("The offer expires between today and %(n)s days from "
                                       "now.", n=MAX_OFFER_DAYS), field="expiry_date")
    conditions = (terms.conditions or "").strip() or None
    if conditions and len(conditions) > 2000:
        raise ValidationFailed(gettext("At most 2,000 characters."), field="conditions")
    return amount, rate, tenor, fees, expiry, conditions


def _pct(value: Decimal) -> str:
    return f"{(value * 100).normalize():f}"


def current_eligible(target: RequestTarget, request: FinancingRequest,
                     items: list[marketplace.Item] | None = None
                     ) -> marketplace.Eligibility:
    """What the SME can borrow at this bank now, against the request's collateral
    (``items``: those items as the caller just read them for this product)."""
    product = target.product
    ids = [c.asset_id for c in request.collateral]
    if items is None:
        items = marketplace.collateral(request.sme_org_id, request.kind, ids,
                                       require_verified=product.require_verified)
    result = marketplace.eligibility(product, request.sme_org_id, items, request.currency)
    # an item unavailable now (pledged elsewhere since) is named when the offer is made
    return result


def _open_target(target_id: int, actor: User) -> tuple[RequestTarget, FinancingRequest]:
    target = get_target(target_id, actor=actor)
    request = marketplace.get_request(target.request_id, lock=True)
    if request.status is not RequestStatus.SUBMITTED:
        raise Conflict(gettext("The request is closed (withdrawn, or an offer was accepted); "
                               "it takes no more decisions."), field="request",
                       code="request_closed")
    if live_decision(target) is not None:
        raise Conflict(gettext("There is already an offer or rejection on this request; "
                               "withdraw it to make another."), code="decision_exists")
    return target, request


def _unavailable_items(request: FinancingRequest, product: FinancingProduct) -> list[str]:
    items = marketplace.collateral(request.sme_org_id, request.kind,
                                   [c.asset_id for c in request.collateral],
                                   require_verified=product.require_verified)
    return [i.problem or marketplace.bank_problem(i, product) for i in items
            if i.problem or marketplace.bank_problem(i, product)]


def prepare_offer(target_id: int, terms: OfferTerms, *, actor: User) -> Decision:
    authz.require_approved(actor)
    target = get_target(target_id, actor=actor)
    authz.require(actor, "financing.prepare", target, hide=False)
    target, request = _open_target(target_id, actor)
    problems = _unavailable_items(request, target.product)
    if problems:
        raise ValidationFailed(problems[0], field="collateral", code="collateral_unavailable")
    amount, rate, tenor, fees, expiry, conditions = _check_offer(target, request, terms)
    decision = Decision(request_id=request.id, target_id=target.id,
                        bank_org_id=target.bank_org_id, kind=DecisionKind.OFFER,
                        status=OfferStatus.PREPARED, amount=amount.to_minor(),
                        currency=amount.currency, annual_rate=rate, tenor_days=tenor,
                        fees_amount=fees.to_minor(), conditions=conditions,
                        expiry_date=expiry, prepared_by_id=actor.id, prepared_at=clock.now())
    return _add_decision(decision, actor)


def prepare_rejection(target_id: int, *, reasons: list[str], text: str, actor: User
                      ) -> Decision:
    authz.require_approved(actor)
    target = get_target(target_id, actor=actor)
    authz.require(actor, "financing.prepare", target, hide=False)
    target, request = _open_target(target_id, actor)
    codes = []
    for reason in reasons or []:
        try:
            code = RejectionReason(reason)
        except ValueError:
            raise ValidationFailed(gettext("'%(code)s' is not a rejection reason.",
                                           code=reason), field="reasons") from None
        if code not in codes:
            codes.append(code)
    if not codes:
        raise ValidationFailed(gettext("Give at least one reason."), field="reasons")
    text = (text or "").strip()
    if not 10 <= len(text) <= 1000:
        raise ValidationFailed(gettext("Explain the rejection in a sentence (10 to 1,000 "
                                       "characters)."), field="text")
    decision = Decision(request_id=request.id, target_id=target.id,
                        bank_org_id=target.bank_org_id, kind=DecisionKind.REJECTION,
                        status=OfferStatus.PREPARED, currency=request.currency,
                        reason_codes=",".join(c.value for c in codes), reason_text=text,
                        prepared_by_id=actor.id, prepared_at=clock.now())
    return _add_decision(decision, actor)


def _add_decision(decision: Decision, actor: User) -> Decision:
    db.session.add(decision)
    db.session.flush()
    from finance_app.audit import services as audit
    audit.record(f"financing.{decision.kind.value}_prepared", actor=actor, obj=decision,
                 changes={"request_id": decision.request_id,
                          "amount": str(decision.money) if decision.money else None,
                          "annual_rate": decision.annual_rate,
                          "tenor_days": decision.tenor_days,
                          "fees": str(decision.fees) if decision.amount else None,
                          "expiry_date": decision.expiry_date,
                          "reasons": decision.reason_codes})
    approvers_notice(decision)
    return decision


def approvers_notice(decision: Decision) -> None:
    kind = "offer" if decision.kind is DecisionKind.OFFER else "rejection"
    notify(decision.bank_org_id, f"financing.{kind}_prepared",
           dedupe_key=f"decision:{decision.id}:prepared",
           link=f"/financing/review/{decision.target_id}", request=decision.request_id)


def approve(decision_id: int, *, actor: User) -> Decision:
    """An approver of the bank, not the officer who prepared it, approves the decision;
    the SME sees it from now on."""
    authz.require_approved(actor)
    decision = get_decision(decision_id, actor=actor)
    authz.require(actor, "financing.approve", decision, hide=False)
    request = marketplace.get_request(decision.request_id, lock=True)
    decision = get_decision(decision_id, lock=True)
    if decision.status is OfferStatus.APPROVED:
        return decision
    if decision.prepared_by_id == actor.id:
        raise Forbidden(gettext("Another person approves what you prepared (four eyes)."),
                        code="four_eyes")
    if decision.status is OfferStatus.PREPARED and request.status is not RequestStatus.SUBMITTED:
        raise Conflict(gettext("The request is closed (withdrawn, or an offer was accepted); "
                               "it takes no more decisions."), code="request_closed")
    if decision.kind is DecisionKind.OFFER:
        if decision.expiry_date < clock.today():
            raise Conflict(gettext("The offer expired on %(date)s; prepare a new one.",
                                   date=decision.expiry_date.isoformat()), code="offer_expired")
        problems = _unavailable_items(request, decision.target.product)
        if problems:
            raise ValidationFailed(problems[0], field="collateral",
                                   code="collateral_unavailable")
        eligible = current_eligible(decision.target, request)
        if decision.money > eligible.amount:
            raise ValidationFailed(gettext(
                "The SME can now borrow at most %(eligible)s here (%(binding)s); withdraw "
                "the offer and prepare another.", eligible=str(eligible.amount),
                binding=marketplace.binding_label(eligible.binding)), field="amount",
                code="above_eligible_amount")
    decision.apply(OfferAction.APPROVE, actor=actor)
    decision.approved_by_id, decision.approved_at = actor.id, clock.now()
    decision.seconds_to_decision = round((decision.approved_at - request.created_at)
                                         .total_seconds())
    db.session.flush()
    bank = db.session.get(Organisation, decision.bank_org_id)
    if decision.kind is DecisionKind.OFFER:
        notify(request.sme_org_id, "financing.offer_received",
               dedupe_key=f"decision:{decision.id}:approved",
               link=f"/financing/requests/{request.id}", bank=bank.name,
               amount=str(decision.money), rate=_pct(decision.annual_rate),
               expiry=decision.expiry_date.isoformat())
    else:
        notify(request.sme_org_id, "financing.request_rejected",
               dedupe_key=f"decision:{decision.id}:approved",
               link=f"/financing/requests/{request.id}", bank=bank.name,
               reason=decision.reason_text)
    return decision


def withdraw_decision(decision_id: int, *, actor: User, note: str | None = None) -> Decision:
    """The bank takes back an offer or rejection the SME has not accepted."""
    authz.require_approved(actor)
    decision = get_decision(decision_id, actor=actor)
    authz.require(actor, "financing.prepare", decision.target, hide=False)
    marketplace.get_request(decision.request_id, lock=True)
    decision = get_decision(decision_id, lock=True)
    if decision.status is OfferStatus.WITHDRAWN:
        return decision
    visible = decision.status is OfferStatus.APPROVED
    decision.apply(OfferAction.WITHDRAW, actor=actor, note=note)
    if visible:
        request = db.session.get(FinancingRequest, decision.request_id)
        bank = db.session.get(Organisation, decision.bank_org_id)
        notify(request.sme_org_id, "financing.offer_withdrawn",
               dedupe_key=f"decision:{decision.id}:withdrawn",
               link=f"/financing/requests/{request.id}", bank=bank.name)
    return decision


# --------------------------------------------------------------------------- evidence pack

@dataclass
class EvidenceItem:
    collateral: RequestCollateral
    item: marketplace.Item
    verdict: str | None = None
    verdict_reasons: list[dict] = field(default_factory=list)
    pledge: str | None = None           # who holds it now: "you", "another bank", None
    receipt: object | None = None
    insured: bool = False
    cover: object | None = None         # insurance.queries.Cover, when assigned to this bank


@dataclass
class History:
    member_since: date
    orders: int
    verified: int
    mismatched: int
    loans: dict[str, int]
    repaid_late: int
    max_days_late: int


@dataclass
class EvidencePack:
    target: RequestTarget
    request: FinancingRequest
    sme: Organisation
    rating: str | None
    items: list[EvidenceItem]
    history: History
    alerts: list
    eligibility: marketplace.Eligibility
    decisions: list[Decision]
    rating_record: object | None = None    # oversight.models.CreditRating, with its factors


def evidence_pack(target_id: int, *, actor: User) -> EvidencePack:
    target = get_target(target_id, actor=actor)
    request = db.session.get(FinancingRequest, target.request_id)
    sme = db.session.get(Organisation, request.sme_org_id)
    product = target.product
    found = marketplace.collateral(sme.id, request.kind,
                                   [c.asset_id for c in request.collateral],
                                   require_verified=product.require_verified)
    items = {i.id: i for i in found}
    verdicts = {}
    order_ids = []
    receivables = {}
    if request.kind.value in ("receivable", "policy"):
        receivables = {r.id: r for r in db.session.execute(select(Receivable).where(
            Receivable.id.in_([c.asset_id for c in request.collateral]))).scalars()}
        order_ids = [r.order_id for r in receivables.values()]
    elif request.kind.value == "order":
        order_ids = [c.asset_id for c in request.collateral]
    if order_ids:
        verdicts = {v.order_id: v for v in db.session.execute(select(MatchVerdict).where(
            MatchVerdict.order_id.in_(order_ids))).scalars()}
    from finance_app.insurance.queries import cover_for_receivable, insured_receivable_ids
    from finance_app.trade.services import verdict_reasons
    # one query says which receivables have cover; only those are looked up
    insured = insured_receivable_ids(
        c.asset_id for c in request.collateral
        if c.asset_kind in (AssetKind.RECEIVABLE, AssetKind.INSURED_RECEIVABLE))
    evidence = []
    for c in request.collateral:
        item = items.get(c.asset_id) or marketplace.Item(c.asset_kind, c.asset_id, c.label,
                                                         c.value, problem="?")
        if not item.problem:
            item.problem = marketplace.bank_problem(item, product)
        row = EvidenceItem(collateral=c, item=item)
        order_id = receivables[c.asset_id].order_id if c.asset_id in receivables \
            else c.asset_id if request.kind.value == "order" else None
        verdict = verdicts.get(order_id) if order_id else None
        if verdict is not None:
            row.verdict, row.verdict_reasons = verdict.status.value, verdict_reasons(verdict)
        financed_as = AssetKind.RECEIVABLE if c.asset_kind is AssetKind.INSURED_RECEIVABLE \
            else c.asset_kind
        encumbrance = registry.active_for(financed_as, c.asset_id)
        if encumbrance is not None:
            row.pledge = "you" if encumbrance.holder_org_id == actor.org_id else "another bank"
        if c.asset_kind is AssetKind.WAREHOUSE_RECEIPT:
            from finance_app.warehouse.models import WarehouseReceipt
            row.receipt = db.session.get(WarehouseReceipt, c.asset_id)
            row.insured = bool(row.receipt and row.receipt.insured)
        elif c.asset_kind in (AssetKind.RECEIVABLE, AssetKind.INSURED_RECEIVABLE):
            cover = item.cover if item.cover is not None else \
                cover_for_receivable(c.asset_id) if c.asset_id in insured else None
            if cover is not None:
                row.insured = True
                if cover.assigned_bank_org_id == actor.org_id:
                    row.cover = cover
        evidence.append(row)
    from finance_app.oversight import ratings
    rating = ratings.current(sme.id)
    return EvidencePack(target=target, request=request, sme=sme,
                        rating=rating.grade if rating else None, rating_record=rating,
                        items=evidence,
                        history=history(sme), alerts=open_alerts(sme.id),
                        eligibility=current_eligible(target, request, found),
                        decisions=decisions_for_target(target))


def history(sme: Organisation) -> History:
    orders, verified, mismatched = db.session.execute(select(
        func.count(Order.id),
        func.count(MatchVerdict.id).filter(MatchVerdict.status == "verified"),
        func.count(MatchVerdict.id).filter(MatchVerdict.status == "mismatch"))
        .select_from(Order).outerjoin(MatchVerdict, MatchVerdict.order_id == Order.id)
        .where(Order.filer_org_id == sme.id)).one()
    loans = dict(db.session.execute(select(Loan.status, func.count(Loan.id)).where(
        Loan.sme_org_id == sme.id).group_by(Loan.status)).all())
    from finance_app.financing.models import Instalment
    late = db.session.execute(select(Instalment.paid_on, Instalment.due_date).join(
        Loan, Loan.id == Instalment.loan_id).where(
        Loan.sme_org_id == sme.id, Instalment.overdue_since.is_not(None))).all()
    today = clock.today()
    days = [((paid or today) - due).days for paid, due in late]
    return History(member_since=(sme.decided_at or sme.created_at).date(), orders=orders,
                   verified=verified, mismatched=mismatched,
                   loans={LoanStatus(k).value: v for k, v in loans.items()},
                   repaid_late=len(days), max_days_late=max(days, default=0))


def open_alerts(org_id: int) -> list:
    from finance_app.oversight.services import open_alerts_for
    return open_alerts_for(org_id)
