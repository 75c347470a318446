"""Export credit insurance: issue policies, decide buyer credit limits, declare shipments
(insured within the buyer's remaining limit, premium settled through the ledger), report
overdue payments, file, assess and pay claims, share recoveries, and assign a receivable's
indemnity to a bank.

A buyer limit's used part is never stored: it is the insured amount (in the limit's
currency) of the declarations under it whose receivable the buyer has not paid yet, read
under the limit's row lock, so two declarations racing for the last of a limit queue and
the second is insured only for what the first left. Paying the buyer's invoice (a payment
slip matched to the order settles the receivable) frees the limit at once.

An indemnity assignment accepted by the bank is the insured receivable's lock in the
collateral registry (asset kind ``insured_receivable``, one live lock per receivable);
the bank releases it there, which ends the assignment.

Services never commit.
"""
from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, localcontext
from typing import Any

from flask_babel import gettext
from sqlalchemy import func, select

from finance_app import authz, clock
from finance_app.accounts.models import Organisation, User
from finance_app.accounts.notifications import notify
from finance_app.accounts.states import FilingStatus, OrgKind
from finance_app.audit import services as audit
from finance_app.collateral import services as registry
from finance_app.collateral.models import Encumbrance
from finance_app.collateral.states import AssetKind
from finance_app.errors import Conflict, Forbidden, NotFound, ValidationFailed
from finance_app.extensions import db
from finance_app.insurance import accounts
from finance_app.insurance.models import (
    BuyerLimit, Claim, IndemnityAssignment, OverdueReport, Policy, PolicyCounter, PolicyRate,
    Recovery, ShipmentDeclaration,
)
from finance_app.insurance.risk import grade_of
from finance_app.insurance.states import (
    LIVE_ASSIGNMENT, USES_LIMIT, AssignmentAction, AssignmentStatus, ClaimAction, ClaimCause,
    ClaimStatus, DeclarationAction, DeclarationMode, DeclarationStatus, LimitAction,
    LimitStatus, PolicyAction, PolicyStatus,
)
from finance_app.ledger import services as ledger
from finance_app.money import Money, UnknownCurrency, minor_units, round_exact
from finance_app.settlement import services as settlement
from finance_app.settlement.states import ObligationKind, SettlementStatus
from finance_app.trade.models import MatchVerdict, Order, Receivable, ReceivableStatus, Waybill
from finance_app.trade.states import Verdict

PREMIUM_ROUNDING = ROUND_HALF_UP
INDEMNITY_ROUNDING = ROUND_HALF_UP
MAX_UNITS = 2**62


# --------------------------------------------------------------------------- input

def _text(value: str | None, field: str, limit: int, *, required: bool = True) -> str | None:
    value = (value or "").strip()
    if required and not value:
        raise ValidationFailed(gettext("This field is required."), field=field)
    if len(value) > limit:
        raise ValidationFailed(gettext("At most %(n)s characters.", n=limit), field=field)
    return value or None


def _currency(code: str | None, field: str = "currency") -> str:
    code = (code or "").strip().upper()
    try:
        minor_units(code)
    except UnknownCurrency:
        raise ValidationFailed(gettext("'%(code)s' is not an ISO 4217 currency code.",
                                       code=code), field=field) from None
    return code


def _amount(value: Any, currency: str, field: str, *, zero: bool = False) -> Money:
    """An amount as typed (a Decimal or a string of digits), exact to the currency's minor
    units, greater than zero (or zero when ``zero``)."""
    if isinstance(value, (float, bool)) or not isinstance(value, (Decimal, str, int)):
        raise ValidationFailed(gettext("Enter an amount such as 1234.50."), field=field)
    money = Money.of(value, currency, field=field)
    if money.amount < 0 or (money.amount == 0 and not zero):
        raise ValidationFailed(gettext("The amount must be greater than zero."), field=field)
    if money.to_minor() > MAX_UNITS:
        raise ValidationFailed(gettext("The amount is too large."), field=field)
    return money


def _fraction(value: Any, field: str, places: int = 4) -> Decimal:
    """A fraction above 0 and at most 1 (0.9 for 90 %)."""
    if isinstance(value, (float, bool)) or not isinstance(value, Decimal) \
            or not value.is_finite():
        raise ValidationFailed(gettext("Enter a fraction such as 0.90 for 90%%."), field=field)
    if not Decimal(0) < value <= Decimal(1):
        raise ValidationFailed(gettext("A coverage is more than 0%% and at most 100%% "
                                       "(a fraction from 0 to 1)."), field=field)
    if value != value.quantize(Decimal(1).scaleb(-places)):
        raise ValidationFailed(gettext("At most %(n)s decimals.", n=places), field=field)
    return value


def _whole(value: Any, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationFailed(gettext("Enter a whole number from %(low)s to %(high)s.",
                                       low=low, high=high), field=field)
    return value


def _day(value: Any, field: str) -> date:
    if not isinstance(value, date):
        raise ValidationFailed(gettext("Enter the date as YYYY-MM-DD."), field=field)
    return value


def _country(value: str | None, field: str) -> str:
    import pycountry
    code = (value or "").strip().upper()
    if len(code) != 2 or pycountry.countries.get(alpha_2=code) is None:
        raise ValidationFailed(gettext("Choose the country (ISO 3166 code such as BR or PT)."),
                               field=field)
    return code


def _approved_org(org_id: Any, kind: OrgKind, field: str) -> Organisation:
    org = db.session.get(Organisation, org_id) if isinstance(org_id, int) \
        and not isinstance(org_id, bool) else None
    if org is None or org.kind is not kind:
        raise ValidationFailed(gettext("No such organisation of that kind."), field=field)
    if org.filing_status is not FilingStatus.APPROVED:
        raise ValidationFailed(gettext("%(name)s's filing is not approved.", name=org.name),
                               field=field)
    return org


def _minor(value: Decimal, currency: str) -> int:
    """A trade amount (five decimals) in the currency's minor units, half up."""
    return round_exact(value, currency, ROUND_HALF_UP).to_minor()


def _pct(ratio: Decimal) -> str:
    return f"{(ratio * 100).quantize(Decimal('0.01'))}%"


def convert(money: Money, currency: str, on: date, *, rounding: str = ROUND_HALF_UP
            ) -> tuple[Money, str | None]:
    """``money`` in ``currency`` at the ledger's rate of ``on`` (a missing rate is an error,
    never a guess), with a note of the rate used."""
    if money.currency == currency:
        return money, None
    from finance_app.ledger.rates import find_rate
    quote = find_rate(money.currency, currency, min(on, clock.today()))
    with localcontext(prec=60):
        converted = round_exact(money.amount * quote.rate, currency, rounding)
    return converted, (f"1 {quote.base} = {quote.rate.normalize():f} {quote.quote} "
                       f"({quote.rate_date})")


# --------------------------------------------------------------------------- lookups

def _get(model, object_id: Any, what: str, *, actor: User | None, lock: bool):
    if isinstance(object_id, bool) or not isinstance(object_id, int):
        raise NotFound(what, object_id)
    query = select(model).where(model.id == object_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    found = db.session.execute(query).scalar_one_or_none()
    if found is None:
        raise NotFound(what, object_id)
    if actor is not None:
        authz.require(actor, "insurance.read", found)
    return found


def get_policy(policy_id: int, *, actor: User | None = None, lock: bool = False) -> Policy:
    return _get(Policy, policy_id, "policy", actor=actor, lock=lock)


def get_limit(limit_id: int, *, actor: User | None = None, lock: bool = False) -> BuyerLimit:
    return _get(BuyerLimit, limit_id, "buyer limit", actor=actor, lock=lock)


def get_declaration(declaration_id: int, *, actor: User | None = None, lock: bool = False
                    ) -> ShipmentDeclaration:
    return _get(ShipmentDeclaration, declaration_id, "declaration", actor=actor, lock=lock)


def get_claim(claim_id: int, *, actor: User | None = None, lock: bool = False) -> Claim:
    return _get(Claim, claim_id, "claim", actor=actor, lock=lock)


def get_assignment(assignment_id: int, *, actor: User | None = None, lock: bool = False
                   ) -> IndemnityAssignment:
    return _get(IndemnityAssignment, assignment_id, "assignment", actor=actor, lock=lock)


# --------------------------------------------------------------------------- policies

@dataclass(frozen=True)
class RateInput:
    risk_grade: int
    max_term_days: int
    rate: Decimal          # a fraction of the insured amount: 0.0045 is 0.45 %


@dataclass(frozen=True)
class PolicyTerms:
    insured_org_id: int
    start_date: date
    end_date: date
    currency: str
    max_liability: Decimal | str
    rates: list[RateInput]
    currencies: list[str] = field(default_factory=list)   # invoice currencies (+ currency)
    commercial_coverage: Decimal = Decimal("0.90")
    political_coverage: Decimal = Decimal("0.95")
    declaration_mode: DeclarationMode | str = DeclarationMode.AFTER_SHIPMENT
    declaration_days: int = 15
    overdue_report_days: int = 60
    waiting_days: int = 120
    insolvency_waiting_days: int = 30


def _next_number(year: int) -> str:
    counter = db.session.execute(select(PolicyCounter).where(
        PolicyCounter.year == year).with_for_update()).scalar_one_or_none()
    if counter is None:
        from sqlalchemy.dialects import postgresql, sqlite
        dialect = postgresql if db.session.get_bind().dialect.name == "postgresql" else sqlite
        db.session.execute(dialect.insert(PolicyCounter).values(year=year, last_seq=0)
                           .on_conflict_do_nothing())
        counter = db.session.execute(select(PolicyCounter).where(
            PolicyCounter.year == year).with_for_update()).scalar_one()
    counter.last_seq += 1
    return f"ECI-{year}-{counter.last_seq:06d}"


def _rates(rates: Any) -> list[RateInput]:
    if not rates or not isinstance(rates, (list, tuple)):
        raise ValidationFailed(gettext("Give at least one premium rate."), field="rates")
    seen, checked = set(), []
    for rate in rates:
        grade = _whole(getattr(rate, "risk_grade", None), "rates", 0, 7)
        term = _whole(getattr(rate, "max_term_days", None), "rates", 1, 360)
        value = getattr(rate, "rate", None)
        if isinstance(value, (float, bool)) or not isinstance(value, Decimal) \
                or not value.is_finite() or not Decimal(0) < value < Decimal(1) \
                or value != value.quantize(Decimal("0.000001")):
            raise ValidationFailed(gettext("A premium rate is a fraction above 0 and below 1 "
                                           "(0.0045 for 0.45%%), with at most 6 decimals."),
                                   field="rates")
        if (grade, term) in seen:
            raise ValidationFailed(gettext("Grade %(grade)s has two rates for %(days)s days.",
                                           grade=grade, days=term), field="rates")
        seen.add((grade, term))
        checked.append(RateInput(grade, term, value))
    return checked


def issue_policy(terms: PolicyTerms, *, actor: User) -> Policy:
    """The insurer issues a short-term export credit insurance policy to an SME."""
    authz.require(actor, "insurance.issue", hide=False)
    insured = _approved_org(terms.insured_org_id, OrgKind.SME, "insured_org_id")
    start = _day(terms.start_date, "start_date")
    end = _day(terms.end_date, "end_date")
    if end <= start:
        raise ValidationFailed(gettext("The policy period ends after it starts."),
                               field="end_date")
    if end > start + timedelta(days=2 * 366):
        raise ValidationFailed(gettext("A short-term policy runs for at most two years."),
                               field="end_date")
    if end < clock.today():
        raise ValidationFailed(gettext("The policy period is over already."), field="end_date")
    currency = _currency(terms.currency)
    currencies = [currency]
    for code in terms.currencies or []:
        code = _currency(code, "currencies")
        if code not in currencies:
            currencies.append(code)
    if len(currencies) > 10:
        raise ValidationFailed(gettext("At most 10 currencies."), field="currencies")
    max_liability = _amount(terms.max_liability, currency, "max_liability")
    commercial = _fraction(terms.commercial_coverage, "commercial_coverage")
    political = _fraction(terms.political_coverage, "political_coverage")
    try:
        mode = DeclarationMode(terms.declaration_mode)
    except ValueError:
        raise ValidationFailed(gettext("Choose after each shipment or monthly."),
                               field="declaration_mode") from None
    declaration_days = _whole(terms.declaration_days, "declaration_days", 1,
                              28 if mode is DeclarationMode.MONTHLY else 90)
    overdue_days = _whole(terms.overdue_report_days, "overdue_report_days", 1, 365)
    waiting = _whole(terms.waiting_days, "waiting_days", 0, 720)
    insolvency_waiting = _whole(terms.insolvency_waiting_days, "insolvency_waiting_days",
                                0, 720)
    rates = _rates(terms.rates)
    policy = Policy(
        number=_next_number(start.year), insurer_org_id=actor.org_id, insured_org_id=insured.id,
        status=PolicyStatus.ISSUED, status_changed_at=clock.now(), currency=currency,
        currencies=",".join(currencies), start_date=start, end_date=end,
        commercial_coverage=commercial, political_coverage=political,
        max_liability_amount=max_liability.to_minor(), declaration_mode=mode,
        declaration_days=declaration_days, overdue_report_days=overdue_days,
        waiting_days=waiting, insolvency_waiting_days=insolvency_waiting,
        created_at=clock.now(), created_by_id=actor.id)
    policy.rates = [PolicyRate(risk_grade=r.risk_grade, max_term_days=r.max_term_days,
                               rate=r.rate) for r in rates]
    db.session.add(policy)
    db.session.flush()
    policy.start(PolicyAction.ISSUE, PolicyStatus.ISSUED, actor=actor)
    audit.record("insurance.policy_terms", actor=actor, obj=policy, changes={
        "number": policy.number, "insured_org_id": insured.id,
        "period": [start, end], "currency": currency, "currencies": currencies,
        "commercial_coverage": commercial, "political_coverage": political,
        "max_liability": str(max_liability), "rates": [
            [r.risk_grade, r.max_term_days, str(r.rate)] for r in rates]})
    notify(insured.id, "insurance.policy_issued", dedupe_key=f"policy:{policy.id}:issued",
           link=f"/insurance/policies/{policy.id}", number=policy.number,
           insurer=actor.organisation.name)
    return policy


def cancel_policy(policy_id: int, *, actor: User, reason: str) -> Policy:
    policy = get_policy(policy_id, actor=actor, lock=True)
    authz.require(actor, "insurance.manage", policy, hide=False)
    reason = _text(reason, "reason", 1000)
    policy.apply(PolicyAction.CANCEL, actor=actor, note=reason)
    notify(policy.insured_org_id, "insurance.policy_cancelled",
           dedupe_key=f"policy:{policy.id}:cancelled", link=f"/insurance/policies/{policy.id}",
           number=policy.number, reason=reason)
    return policy


def premium_rate(policy: Policy, grade: int, term_days: int) -> Decimal | None:
    """The rate of the smallest term band at or above ``term_days`` for ``grade``."""
    bands = sorted((r for r in policy.rates if r.risk_grade == grade),
                   key=lambda r: r.max_term_days)
    for band in bands:
        if band.max_term_days >= term_days:
            return band.rate
    return None


def declaration_deadline(policy: Policy, shipment_date: date) -> date:
    """Within N days after the shipment, or by day N of the month after it."""
    if policy.declaration_mode is DeclarationMode.MONTHLY:
        year, month = (shipment_date.year + 1, 1) if shipment_date.month == 12 \
            else (shipment_date.year, shipment_date.month + 1)
        return date(year, month, min(policy.declaration_days,
                                     calendar.monthrange(year, month)[1]))
    return shipment_date + timedelta(days=policy.declaration_days)


def _policy_in_force(policy: Policy, field: str) -> None:
    today = clock.today()
    if policy.status is not PolicyStatus.ISSUED or policy.end_date < today:
        raise ValidationFailed(gettext("Policy %(number)s is not in force (it has expired or "
                                       "was cancelled).", number=policy.number), field=field)


# --------------------------------------------------------------------------- buyer limits

def apply_for_limit(policy_id: int, *, actor: User, buyer_name: str, buyer_country: str,
                    buyer_registration_no: str, amount: Any, payment_term_days: int
                    ) -> BuyerLimit:
    """The SME asks for a credit limit on an overseas buyer under its policy."""
    policy = get_policy(policy_id, actor=actor, lock=True)
    authz.require(actor, "insurance.act_for_insured", policy, hide=False)
    _policy_in_force(policy, "policy_id")
    name = _text(buyer_name, "buyer_name", 200)
    country = _country(buyer_country, "buyer_country")
    if country == "CN":
        raise ValidationFailed(gettext("Export credit insurance covers buyers abroad."),
                               field="buyer_country")
    registration = _text(buyer_registration_no, "buyer_registration_no", 60)
    requested = _amount(amount, policy.currency, "amount")
    if requested > policy.max_liability:
        raise ValidationFailed(gettext("A buyer limit cannot exceed the policy's maximum "
                                       "liability (%(max)s).", max=str(policy.max_liability)),
                               field="amount")
    term = _whole(payment_term_days, "payment_term_days", 1, 360)
    if db.session.execute(select(BuyerLimit.id).where(
            BuyerLimit.policy_id == policy.id, BuyerLimit.buyer_country == country,
            BuyerLimit.buyer_registration_no == registration,
            BuyerLimit.status.in_([LimitStatus.REQUESTED, LimitStatus.APPROVED]))).first():
        raise Conflict(gettext("This buyer already has a limit (or a request) under the "
                               "policy; ask to change that one."),
                       field="buyer_registration_no")
    limit = BuyerLimit(policy_id=policy.id, insurer_org_id=policy.insurer_org_id,
                       insured_org_id=policy.insured_org_id, buyer_name=name,
                       buyer_country=country, buyer_registration_no=registration,
                       currency=policy.currency, requested_amount=requested.to_minor(),
                       payment_term_days=term, status=LimitStatus.REQUESTED,
                       status_changed_at=clock.now(), created_at=clock.now(),
                       created_by_id=actor.id)
    db.session.add(limit)
    db.session.flush()
    limit.start(LimitAction.APPLY, LimitStatus.REQUESTED, actor=actor,
                note=f"{name} ({country}) {requested}, {term} days")
    notify(policy.insurer_org_id, "insurance.limit_requested",
           dedupe_key=f"limit:{limit.id}:requested", link=f"/insurance/limits/{limit.id}",
           insured=actor.organisation.name, buyer=name, country=country,
           amount=str(requested))
    return limit


def _decide(limit_id: int, actor: User) -> BuyerLimit:
    limit = get_limit(limit_id, actor=actor, lock=True)
    authz.require(actor, "insurance.manage", limit, hide=False)
    return limit


def _notify_limit(limit: BuyerLimit, what: str) -> None:
    notify(limit.insured_org_id, "insurance.limit_decided",
           dedupe_key=f"limit:{limit.id}:{what}:{limit.status_changed_at.isoformat()}",
           link=f"/insurance/limits/{limit.id}", buyer=limit.buyer_name,
           decision=what, amount=str(limit.approved or limit.requested),
           reason=limit.reason or "")


def approve_limit(limit_id: int, *, actor: User, amount: Any, reason: str | None = None
                  ) -> BuyerLimit:
    """Approve the limit, for the amount asked or less."""
    limit = _decide(limit_id, actor)
    approved = _amount(amount, limit.currency, "amount")
    if approved > limit.requested:
        raise ValidationFailed(gettext("Approve at most the amount asked for (%(asked)s).",
                                       asked=str(limit.requested)), field="amount")
    reason = _text(reason, "reason", 1000, required=approved < limit.requested)
    limit.apply(LimitAction.APPROVE, actor=actor, note=f"{approved}; {reason or ''}".strip("; "))
    limit.approved_amount, limit.reason = approved.to_minor(), reason
    _notify_limit(limit, "approved")
    return limit


def refuse_limit(limit_id: int, *, actor: User, reason: str) -> BuyerLimit:
    limit = _decide(limit_id, actor)
    reason = _text(reason, "reason", 1000)
    limit.apply(LimitAction.REFUSE, actor=actor, note=reason)
    limit.reason = reason
    _notify_limit(limit, "refused")
    return limit


def reduce_limit(limit_id: int, *, actor: User, amount: Any, reason: str) -> BuyerLimit:
    """Lower an approved limit; shipments insured already stay insured."""
    limit = _decide(limit_id, actor)
    reason = _text(reason, "reason", 1000)
    new = _amount(amount, limit.currency, "amount", zero=True)
    if limit.approved is not None and new >= limit.approved:
        raise ValidationFailed(gettext("A reduced limit is below the current one (%(now)s).",
                                       now=str(limit.approved)), field="amount")
    limit.apply(LimitAction.REDUCE, actor=actor, note=f"{limit.approved} -> {new}; {reason}")
    limit.approved_amount, limit.reason = new.to_minor(), reason
    _notify_limit(limit, "reduced")
    return limit


def cancel_limit(limit_id: int, *, actor: User, reason: str) -> BuyerLimit:
    """No new shipments to this buyer are insured; those insured already stay insured."""
    limit = _decide(limit_id, actor)
    reason = _text(reason, "reason", 1000)
    limit.apply(LimitAction.CANCEL, actor=actor, note=reason)
    limit.reason = reason
    _notify_limit(limit, "cancelled")
    return limit


def withdraw_limit(limit_id: int, *, actor: User) -> BuyerLimit:
    limit = get_limit(limit_id, actor=actor, lock=True)
    authz.require(actor, "insurance.act_for_insured", limit, hide=False)
    limit.apply(LimitAction.WITHDRAW, actor=actor)
    return limit


def limit_used(limit: BuyerLimit) -> Money:
    """The insured amount of the buyer's shipments not yet paid, in the limit's currency."""
    used = db.session.execute(
        select(func.coalesce(func.sum(ShipmentDeclaration.limit_used_amount), 0))
        .join(Receivable, Receivable.id == ShipmentDeclaration.receivable_id)
        .where(ShipmentDeclaration.buyer_limit_id == limit.id,
               ShipmentDeclaration.status.in_(list(USES_LIMIT)),
               Receivable.status == ReceivableStatus.OPEN)).scalar_one()
    return Money.from_minor(int(used), limit.currency)


def limit_remaining(limit: BuyerLimit) -> Money:
    if limit.status is not LimitStatus.APPROVED or limit.approved is None:
        return Money.from_minor(0, limit.currency)
    left = limit.approved - limit_used(limit)
    return left if left.amount > 0 else Money.from_minor(0, limit.currency)


# --------------------------------------------------------------------------- declarations

def declare_shipment(*, actor: User, buyer_limit_id: int, order_id: int,
                     shipment_date: date | None = None) -> ShipmentDeclaration:
    """Declare a shipment of a verified export order on payment terms: insured up to the
    buyer's remaining limit, the rest visibly uninsured; the premium on the insured part
    is booked and a payment record asks the SME to pay it."""
    if isinstance(buyer_limit_id, bool) or not isinstance(buyer_limit_id, int):
        raise ValidationFailed(gettext("Choose the buyer's limit."), field="buyer_limit_id")
    limit = db.session.execute(select(BuyerLimit).where(BuyerLimit.id == buyer_limit_id)
                               .with_for_update().execution_options(populate_existing=True)
                               ).scalar_one_or_none()
    if limit is None or not authz.can(actor, "insurance.read", limit):
        raise ValidationFailed(gettext("Choose one of your buyers' limits."),
                               field="buyer_limit_id")
    authz.require(actor, "insurance.act_for_insured", limit, hide=False)
    if limit.status is not LimitStatus.APPROVED:
        raise ValidationFailed(gettext("%(buyer)s has no approved credit limit (the limit is "
                                       "%(status)s): the shipment cannot be insured.",
                                       buyer=limit.buyer_name, status=limit.status.value),
                               field="buyer_limit_id")
    policy = db.session.get(Policy, limit.policy_id)
    _policy_in_force(policy, "buyer_limit_id")
    order = db.session.get(Order, order_id) if isinstance(order_id, int) \
        and not isinstance(order_id, bool) else None
    if order is None or order.filer_org_id != actor.org_id:
        raise ValidationFailed(gettext("Choose one of your orders."), field="order_id")
    verdict = db.session.execute(select(MatchVerdict).where(
        MatchVerdict.order_id == order.id)).scalar_one_or_none()
    if verdict is None or verdict.status is not Verdict.VERIFIED:
        raise ValidationFailed(gettext("Order %(no)s is not verified: its order, payment or "
                                       "waybill and inventory do not match yet.",
                                       no=order.order_no), field="order_id")
    receivable = db.session.execute(select(Receivable).where(
        Receivable.order_id == order.id)).scalar_one_or_none()
    if receivable is None:
        raise ValidationFailed(gettext("Order %(no)s is not sold on payment terms: there is "
                                       "no receivable to insure.", no=order.order_no),
                               field="order_id")
    if receivable.status is not ReceivableStatus.OPEN:
        raise ValidationFailed(gettext("The buyer has paid order %(no)s already.",
                                       no=order.order_no), field="order_id")
    waybill = db.session.get(Waybill, verdict.waybill_id) if verdict.waybill_id else None
    if waybill is None:
        raise ValidationFailed(gettext("Order %(no)s has no waybill.", no=order.order_no),
                               field="order_id")
    if (receivable.buyer_country or order.buyer_country or "").upper() != limit.buyer_country:
        raise ValidationFailed(gettext("Order %(no)s goes to a buyer in another country than "
                                       "%(buyer)s.", no=order.order_no, buyer=limit.buyer_name),
                               field="order_id")
    if order.buyer_reg_no and order.buyer_reg_no != limit.buyer_registration_no:
        raise ValidationFailed(gettext("Order %(no)s names another buyer than %(buyer)s.",
                                       no=order.order_no, buyer=limit.buyer_name),
                               field="order_id")
    currency = receivable.currency
    if currency not in policy.currency_list:
        raise ValidationFailed(gettext("Policy %(number)s insures invoices in %(list)s, not "
                                       "%(currency)s.", number=policy.number,
                                       list=", ".join(policy.currency_list), currency=currency),
                               field="order_id")
    if shipment_date is None and waybill.shipped_at is not None:
        shipment_date = waybill.shipped_at.date()
    shipment_date = _day(shipment_date, "shipment_date")
    today = clock.today()
    if shipment_date > today:
        raise ValidationFailed(gettext("The shipment date is in the future."),
                               field="shipment_date")
    if not policy.start_date <= shipment_date <= policy.end_date:
        raise ValidationFailed(gettext("The shipment on %(date)s is outside the policy period "
                                       "(%(start)s to %(end)s).", date=shipment_date.isoformat(),
                                       start=policy.start_date.isoformat(),
                                       end=policy.end_date.isoformat()), field="shipment_date")
    deadline = declaration_deadline(policy, shipment_date)
    if today > deadline:
        raise ValidationFailed(gettext("The shipment of %(date)s had to be declared by "
                                       "%(deadline)s.", date=shipment_date.isoformat(),
                                       deadline=deadline.isoformat()), field="shipment_date")
    term = order.payment_term_days or (receivable.due_date - shipment_date).days
    if term > limit.payment_term_days:
        raise ValidationFailed(gettext("A payment term of %(days)s days is longer than the "
                                       "limit covers (%(max)s days).", days=term,
                                       max=limit.payment_term_days), field="payment_term_days")
    due_date = max(receivable.due_date, shipment_date)
    grade = grade_of(limit.buyer_country)
    rate = premium_rate(policy, grade, term)
    if rate is None:
        raise ValidationFailed(gettext("The policy has no premium rate for grade %(grade)s "
                                       "buyers at %(days)s days.", grade=grade, days=term),
                               field="payment_term_days")
    if db.session.execute(select(ShipmentDeclaration.id).where(
            ShipmentDeclaration.order_id == order.id,
            ShipmentDeclaration.status != DeclarationStatus.CANCELLED)).first():
        raise Conflict(gettext("Order %(no)s is declared already.", no=order.order_no),
                       field="order_id")
    invoice = Money.from_minor(_minor(receivable.amount, currency), currency)
    # What of the invoice the limit still covers (under the limit's lock).
    remaining = limit_remaining(limit)
    in_limit_currency, _ = convert(invoice, limit.currency, shipment_date)
    if in_limit_currency <= remaining:
        insured, used = invoice, in_limit_currency
    else:
        used = remaining
        if currency == limit.currency:
            insured = remaining
        else:
            back, _ = convert(remaining, currency, shipment_date, rounding=ROUND_DOWN)
            insured = back if back < invoice else invoice
    with localcontext(prec=60):
        premium = round_exact(insured.amount * rate, currency, PREMIUM_ROUNDING)
    declaration = ShipmentDeclaration(
        policy_id=policy.id, buyer_limit_id=limit.id, insurer_org_id=policy.insurer_org_id,
        insured_org_id=policy.insured_org_id, order_id=order.id, receivable_id=receivable.id,
        waybill_id=waybill.id, currency=currency, invoice_amount=invoice.to_minor(),
        insured_amount=insured.to_minor(), uninsured_amount=(invoice - insured).to_minor(),
        limit_used_amount=used.to_minor(), shipment_date=shipment_date,
        payment_term_days=term, due_date=due_date, declared_on=today, deadline=deadline,
        risk_grade=grade, premium_rate=rate, premium_amount=premium.to_minor(),
        status=DeclarationStatus.DECLARED, status_changed_at=clock.now(),
        created_at=clock.now(), created_by_id=actor.id)
    db.session.add(declaration)
    db.session.flush()
    declaration.start(DeclarationAction.DECLARE, DeclarationStatus.DECLARED, actor=actor,
                      note=f"insured {insured}, uninsured {invoice - insured}")
    if premium.amount > 0:
        due = accounts.premium_due(policy, currency)
        ledger.book([ledger.debit(due, premium),
                     ledger.credit(accounts.premium_income(policy.insurer_org_id, currency),
                                   premium)],
                    key=f"premium-declaration-{declaration.id}", kind="insurance_premium",
                    actor=actor, reference=("insurance_declaration", declaration.id),
                    description=f"Premium {policy.number} order {order.order_no}")
        record = settlement.create_record(
            ObligationKind.PREMIUM, payer_org_id=policy.insured_org_id,
            payee_org_id=policy.insurer_org_id, amount=premium,
            debit_account=accounts.bank(policy.insurer_org_id, currency), credit_account=due,
            key=f"premium:declaration:{declaration.id}",
            description=f"Premium, policy {policy.number}, order {order.order_no}",
            reference=f"declaration:{declaration.id}", actor=actor)
        declaration.premium_settlement_id = record.id
    notify(policy.insurer_org_id, "insurance.shipment_declared",
           dedupe_key=f"declaration:{declaration.id}:declared",
           link=f"/insurance/declarations/{declaration.id}", insured=actor.organisation.name,
           order=order.order_no, buyer=limit.buyer_name, insured_amount=str(insured),
           uninsured=str(invoice - insured))
    return declaration


def cancel_declaration(declaration_id: int, *, actor: User, reason: str) -> ShipmentDeclaration:
    """The SME withdraws a declaration made in error, while its premium is unpaid: the
    premium is reversed and its payment record cancelled."""
    declaration = get_declaration(declaration_id, actor=actor, lock=True)
    authz.require(actor, "insurance.act_for_insured", declaration, hide=False)
    reason = _text(reason, "reason", 1000)
    record = settlement.get_record(declaration.premium_settlement_id, lock=True) \
        if declaration.premium_settlement_id else None
    if record is not None and record.status is SettlementStatus.PAID:
        raise Conflict(gettext("The premium is paid: the declaration cannot be cancelled."),
                       field="declaration_id")
    declaration.apply(DeclarationAction.CANCEL, actor=actor, note=reason)
    if record is not None:
        from finance_app.ledger.models import LedgerTransaction
        booked = db.session.execute(select(LedgerTransaction).where(
            LedgerTransaction.reference_kind == "insurance_declaration",
            LedgerTransaction.reference_id == declaration.id,
            LedgerTransaction.kind == "insurance_premium")).scalar_one_or_none()
        if booked is not None:
            ledger.reverse(booked.id, key=f"premium-declaration-{declaration.id}-reversal",
                           actor=actor, reason=f"Declaration cancelled: {reason}"[:500])
        # the premium is no longer owed: its record ends with the declaration
        settlement.withdraw_obligation(record.id, actor=actor, reason=reason)
    return declaration


def sync_declaration(declaration: ShipmentDeclaration, *, actor: User | None = None) -> bool:
    """Mark the declaration settled when its buyer has paid (the limit is free already).
    Returns whether it changed."""
    if declaration.status not in (DeclarationStatus.DECLARED, DeclarationStatus.OVERDUE):
        return False
    receivable = db.session.get(Receivable, declaration.receivable_id)
    if receivable.status is not ReceivableStatus.SETTLED:
        return False
    declaration.apply(DeclarationAction.SETTLE, actor=actor, note="the buyer paid")
    return True


def void_cover(declaration_id: int, *, actor: User, reason: str) -> ShipmentDeclaration:
    """The insurer voids cover (a late overdue report, a breach of the policy's terms)."""
    declaration = get_declaration(declaration_id, actor=actor, lock=True)
    authz.require(actor, "insurance.manage", declaration, hide=False)
    reason = _text(reason, "reason", 1000)
    declaration.apply(DeclarationAction.VOID, actor=actor, note=reason)
    notify(declaration.insured_org_id, "insurance.cover_voided",
           dedupe_key=f"declaration:{declaration.id}:voided",
           link=f"/insurance/declarations/{declaration.id}", order=_order_no(declaration),
           reason=reason)
    return declaration


def _order_no(declaration: ShipmentDeclaration) -> str:
    return db.session.get(Order, declaration.order_id).order_no


def outstanding(declaration: ShipmentDeclaration) -> Money:
    """What the buyer still owes on the invoice, in the declaration's currency."""
    from finance_app.trade.services import outstanding as trade_outstanding
    receivable = db.session.get(Receivable, declaration.receivable_id)
    left = Money.from_minor(_minor(trade_outstanding(receivable), declaration.currency),
                            declaration.currency)
    return left if left < declaration.invoice else declaration.invoice


def insured_outstanding(declaration: ShipmentDeclaration) -> Money:
    """The insured part of what the buyer still owes: payments reduce the uninsured part
    last, so it is the smaller of the insured amount and the outstanding amount."""
    left = outstanding(declaration)
    return left if left < declaration.insured else declaration.insured


# --------------------------------------------------------------------------- overdue

def report_deadline(declaration: ShipmentDeclaration, policy: Policy | None = None) -> date:
    policy = policy or db.session.get(Policy, declaration.policy_id)
    return declaration.due_date + timedelta(days=policy.overdue_report_days)


def report_overdue(declaration_id: int, *, actor: User, note: str | None = None
                   ) -> OverdueReport:
    """The buyer has not paid by the due date: the SME reports it, within the policy's
    period or flagged late."""
    declaration = get_declaration(declaration_id, actor=actor, lock=True)
    authz.require(actor, "insurance.act_for_insured", declaration, hide=False)
    today = clock.today()
    if sync_declaration(declaration, actor=actor):
        raise Conflict(gettext("The buyer has paid this invoice."), field="declaration_id")
    if today <= declaration.due_date:
        raise ValidationFailed(gettext("The invoice is due on %(date)s: it is not overdue yet.",
                                       date=declaration.due_date.isoformat()),
                               field="declaration_id")
    left = outstanding(declaration)
    if left.amount <= 0:
        raise Conflict(gettext("The buyer has paid this invoice."), field="declaration_id")
    policy = db.session.get(Policy, declaration.policy_id)
    deadline = report_deadline(declaration, policy)
    note = _text(note, "note", 2000, required=False)
    declaration.apply(DeclarationAction.REPORT_OVERDUE, actor=actor,
                      note=f"late: reported {today}, due by {deadline}"
                      if today > deadline else note)
    report = OverdueReport(declaration_id=declaration.id, insurer_org_id=declaration.insurer_org_id,
                           overdue_amount=left.to_minor(), currency=left.currency,
                           reported_on=today, report_deadline=deadline, late=today > deadline,
                           note=note, reported_by_id=actor.id, created_at=clock.now())
    db.session.add(report)
    db.session.flush()
    audit.record("insurance.overdue_reported", actor=actor, obj=report, changes={
        "declaration_id": declaration.id, "overdue": str(left), "late": report.late,
        "deadline": deadline})
    notify(declaration.insurer_org_id, "insurance.overdue_reported",
           dedupe_key=f"declaration:{declaration.id}:overdue",
           link=f"/insurance/declarations/{declaration.id}", insured=actor.organisation.name,
           order=_order_no(declaration), amount=str(left),
           late=gettext("late") if report.late else gettext("on time"))
    return report


def overdue_report(declaration: ShipmentDeclaration) -> OverdueReport | None:
    return db.session.execute(select(OverdueReport).where(
        OverdueReport.declaration_id == declaration.id)).scalar_one_or_none()


# --------------------------------------------------------------------------- claims

def waiting_period(policy: Policy, cause: ClaimCause) -> int:
    return policy.insolvency_waiting_days if cause is ClaimCause.INSOLVENCY \
        else policy.waiting_days


def coverage_for(policy: Policy, cause: ClaimCause) -> Decimal:
    return policy.political_coverage if cause is ClaimCause.POLITICAL \
        else policy.commercial_coverage


def active_assignment(declaration_id: int) -> IndemnityAssignment | None:
    return db.session.execute(select(IndemnityAssignment).where(
        IndemnityAssignment.declaration_id == declaration_id,
        IndemnityAssignment.status == AssignmentStatus.ACTIVE)).scalar_one_or_none()


def file_claim(declaration_id: int, *, actor: User, cause: ClaimCause | str, loss_amount: Any
               ) -> Claim:
    """The SME (or the bank the indemnity is assigned to) claims the insured loss once the
    waiting period after the due date has passed."""
    declaration = get_declaration(declaration_id, actor=actor, lock=True)
    authz.require(actor, "insurance.claim", declaration, hide=False)
    try:
        cause = ClaimCause(cause)
    except ValueError:
        raise ValidationFailed(gettext("Choose non-payment, insolvency or political risk."),
                               field="cause") from None
    policy = db.session.get(Policy, declaration.policy_id)
    loss = _amount(loss_amount, declaration.currency, "loss_amount")
    if declaration.status is DeclarationStatus.DECLARED:
        raise Conflict(gettext("Report the overdue payment before claiming."),
                       field="declaration_id", code="overdue_not_reported")
    if declaration.status is not DeclarationStatus.OVERDUE:
        declaration.apply(DeclarationAction.CLAIM, actor=actor)   # refuses, by name
    claimable_from = declaration.due_date + timedelta(days=waiting_period(policy, cause))
    today = clock.today()
    if today < claimable_from:
        raise ValidationFailed(gettext("The waiting period for a %(cause)s claim ends on "
                                       "%(date)s: claim from then on.", cause=_cause(cause),
                                       date=claimable_from.isoformat()), field="cause")
    if declaration.insured_amount == 0:
        raise ValidationFailed(gettext("This shipment is wholly uninsured: it was beyond the "
                                       "buyer's limit."), field="loss_amount")
    covered = insured_outstanding(declaration)
    if loss > covered:
        raise ValidationFailed(gettext("The claim is for %(loss)s, but only %(covered)s of what "
                                       "the buyer owes is insured; the rest is uninsured.",
                                       loss=str(loss), covered=str(covered)),
                               field="loss_amount")
    declaration.apply(DeclarationAction.CLAIM, actor=actor)
    claim = Claim(declaration_id=declaration.id, policy_id=policy.id,
                  insurer_org_id=policy.insurer_org_id, insured_org_id=policy.insured_org_id,
                  filed_by_org_id=actor.org_id, cause=cause, currency=declaration.currency,
                  loss_amount=loss.to_minor(), claimable_from=claimable_from, filed_on=today,
                  indemnity_currency=policy.currency, status=ClaimStatus.FILED,
                  status_changed_at=clock.now(), created_at=clock.now(), created_by_id=actor.id)
    db.session.add(claim)
    db.session.flush()
    claim.start(ClaimAction.FILE, ClaimStatus.FILED, actor=actor, note=f"{cause.value} {loss}")
    notify(policy.insurer_org_id, "insurance.claim_filed", dedupe_key=f"claim:{claim.id}:filed",
           link=f"/insurance/claims/{claim.id}", claimant=actor.organisation.name,
           order=_order_no(declaration), amount=str(loss))
    _rerate(claim.insured_org_id)
    return claim


def _cause(cause: ClaimCause) -> str:
    return {ClaimCause.NON_PAYMENT: gettext("non-payment"),
            ClaimCause.INSOLVENCY: gettext("insolvency"),
            ClaimCause.POLITICAL: gettext("political risk")}[cause]


def _manage_claim(claim_id: int, actor: User) -> Claim:
    claim = get_claim(claim_id, actor=actor, lock=True)
    authz.require(actor, "insurance.manage", claim, hide=False)
    return claim


def start_assessment(claim_id: int, *, actor: User) -> Claim:
    claim = _manage_claim(claim_id, actor)
    claim.apply(ClaimAction.ASSESS, actor=actor)
    return claim


def indemnity_paid_so_far(policy: Policy) -> Money:
    """Indemnities booked under the policy (its indemnity expense in the ledger)."""
    account = accounts.existing_policy_account(policy.id, policy.insurer_org_id,
                                               accounts.INDEMNITY_EXPENSE, policy.currency)
    if account is None:
        return Money.from_minor(0, policy.currency)
    return ledger.balance(account)


def remaining_liability(policy: Policy) -> Money:
    left = policy.max_liability - indemnity_paid_so_far(policy)
    return left if left.amount > 0 else Money.from_minor(0, policy.currency)


def approve_claim(claim_id: int, *, actor: User, reason: str | None = None) -> Claim:
    """Indemnity = coverage x insured loss, in the policy currency, within what is left of
    the policy's maximum liability: booked as the insurer's expense and payable, with a
    payment record to the insured, or to the bank the indemnity is assigned to."""
    claim = _manage_claim(claim_id, actor)
    declaration = get_declaration(claim.declaration_id, lock=True)
    policy = db.session.get(Policy, claim.policy_id)
    if claim.status is not ClaimStatus.UNDER_ASSESSMENT:
        claim.apply(ClaimAction.APPROVE, actor=actor)   # refuses, by name
    coverage = coverage_for(policy, claim.cause)
    with localcontext(prec=60):
        in_claim_currency = round_exact(claim.loss.amount * coverage, claim.currency,
                                        INDEMNITY_ROUNDING)
    indemnity, note = convert(in_claim_currency, policy.currency, clock.today())
    left = remaining_liability(policy)
    if left.amount <= 0:
        raise Conflict(gettext("Policy %(number)s's maximum liability (%(max)s) is used up.",
                               number=policy.number, max=str(policy.max_liability)),
                       field="claim_id")
    if indemnity > left:
        note = "; ".join(filter(None, [note, f"capped at the remaining maximum liability {left}"]))
        indemnity = left
    assignment = active_assignment(declaration.id)
    payee = assignment.bank_org_id if assignment else policy.insured_org_id
    reason = _text(reason, "reason", 1000, required=False)
    claim.apply(ClaimAction.APPROVE, actor=actor, note=reason)
    claim.coverage, claim.indemnity_amount = coverage, indemnity.to_minor()
    claim.fx_note, claim.payee_org_id, claim.reason = note, payee, reason
    payable = accounts.indemnity_payable(policy, policy.currency)
    ledger.book([ledger.debit(accounts.indemnity_expense(policy, policy.currency), indemnity),
                 ledger.credit(payable, indemnity)],
                key=f"indemnity-claim-{claim.id}", kind="insurance_indemnity", actor=actor,
                reference=("insurance_claim", claim.id),
                description=f"Indemnity {policy.number}, claim {claim.id}")
    record = settlement.create_record(
        ObligationKind.CLAIM, payer_org_id=policy.insurer_org_id, payee_org_id=payee,
        amount=indemnity, debit_account=payable,
        credit_account=accounts.bank(policy.insurer_org_id, policy.currency),
        key=f"indemnity:claim:{claim.id}",
        description=f"Indemnity, policy {policy.number}, order {_order_no(declaration)}",
        reference=f"claim:{claim.id}", actor=actor)
    claim.settlement_id = record.id
    declaration.apply(DeclarationAction.CLOSE, actor=actor, note=f"claim {claim.id} approved")
    for org_id in {claim.insured_org_id, payee}:
        notify(org_id, "insurance.claim_approved", dedupe_key=f"claim:{claim.id}:approved:{org_id}",
               link=f"/insurance/claims/{claim.id}", order=_order_no(declaration),
               indemnity=str(indemnity), coverage=_pct(coverage))
    return claim


def reject_claim(claim_id: int, *, actor: User, reason: str) -> Claim:
    claim = _manage_claim(claim_id, actor)
    reason = _text(reason, "reason", 1000)
    claim.apply(ClaimAction.REJECT, actor=actor, note=reason)
    claim.reason = reason
    declaration = get_declaration(claim.declaration_id, lock=True)
    declaration.apply(DeclarationAction.CLOSE, actor=actor, note=f"claim {claim.id} rejected")
    notify(claim.filed_by_org_id, "insurance.claim_rejected",
           dedupe_key=f"claim:{claim.id}:rejected", link=f"/insurance/claims/{claim.id}",
           order=_order_no(declaration), reason=reason)
    return claim


def withdraw_claim(claim_id: int, *, actor: User) -> Claim:
    claim = get_claim(claim_id, actor=actor, lock=True)
    declaration = get_declaration(claim.declaration_id, lock=True)
    authz.require(actor, "insurance.claim", declaration, hide=False)
    claim.apply(ClaimAction.WITHDRAW, actor=actor)
    declaration.apply(DeclarationAction.REOPEN, actor=actor, note=f"claim {claim.id} withdrawn")
    return claim


@settlement.on_paid("claim")
def _indemnity_paid(record, actor: User | None) -> None:
    claim = db.session.execute(select(Claim).where(Claim.settlement_id == record.id)
                               .with_for_update()).scalar_one_or_none()
    if claim is not None and claim.status is ClaimStatus.APPROVED:
        claim.apply(ClaimAction.PAY, actor=actor, note=record.bank_reference)
        _rerate(claim.insured_org_id)


def _rerate(insured_org_id: int) -> None:
    from finance_app.oversight import ratings
    ratings.rate(insured_org_id, trigger="claim")


def record_recovery(claim_id: int, *, actor: User, amount: Any,
                    recovered_on: date | None = None) -> Recovery:
    """The buyer paid (part of) the debt after the claim was paid: the insurer's share, in
    the claim's coverage proportion, is booked and the insured asked to pay it."""
    claim = get_claim(claim_id, actor=actor, lock=True)
    if not (authz.can(actor, "insurance.act_for_insured", claim)
            or authz.can(actor, "insurance.manage", claim)):
        raise Forbidden()
    if claim.status is not ClaimStatus.PAID:
        raise Conflict(gettext("Recoveries are shared once the claim is paid."),
                       field="claim_id")
    recovered = _amount(amount, claim.currency, "amount")
    recovered_on = _day(recovered_on or clock.today(), "recovered_on")
    if recovered_on > clock.today():
        raise ValidationFailed(gettext("The date is in the future."), field="recovered_on")
    already = db.session.execute(select(func.coalesce(func.sum(Recovery.amount), 0)).where(
        Recovery.claim_id == claim.id)).scalar_one()
    if recovered.to_minor() + int(already) > claim.loss_amount:
        raise ValidationFailed(gettext("The recoveries would exceed the loss claimed "
                                       "(%(loss)s).", loss=str(claim.loss)), field="amount")
    policy = db.session.get(Policy, claim.policy_id)
    with localcontext(prec=60):
        share = round_exact(recovered.amount * claim.coverage, claim.currency, ROUND_HALF_UP)
    share_in_policy, _ = convert(share, policy.currency, recovered_on)
    recovery = Recovery(claim_id=claim.id, insurer_org_id=claim.insurer_org_id,
                        currency=claim.currency, amount=recovered.to_minor(),
                        insurer_share_currency=policy.currency,
                        insurer_share=share_in_policy.to_minor(),
                        insured_share=(recovered - share).to_minor(), recovered_on=recovered_on,
                        recorded_by_id=actor.id, created_at=clock.now())
    db.session.add(recovery)
    db.session.flush()
    if share_in_policy.amount > 0:
        due = accounts.recovery_due(policy, policy.currency)
        ledger.book([ledger.debit(due, share_in_policy),
                     ledger.credit(accounts.recovery_income(policy.insurer_org_id,
                                                            policy.currency), share_in_policy)],
                    key=f"recovery-{recovery.id}", kind="insurance_recovery", actor=actor,
                    reference=("insurance_recovery", recovery.id),
                    description=f"Recovery share, policy {policy.number}, claim {claim.id}")
        record = settlement.create_record(
            ObligationKind.RECOVERY, payer_org_id=claim.insured_org_id,
            payee_org_id=claim.insurer_org_id, amount=share_in_policy,
            debit_account=accounts.bank(policy.insurer_org_id, policy.currency),
            credit_account=due, key=f"recovery:{recovery.id}",
            description=f"Insurer's share of a recovery, claim {claim.id}",
            reference=f"recovery:{recovery.id}", actor=actor)
        recovery.settlement_id = record.id
    audit.record("insurance.recovery_recorded", actor=actor, obj=recovery, changes={
        "claim_id": claim.id, "recovered": str(recovered), "insurer_share": str(share_in_policy),
        "insured_share": str(recovered - share)})
    return recovery


# --------------------------------------------------------------------------- assignment

def _label(receivable_id: int) -> str:
    receivable = db.session.get(Receivable, receivable_id)
    order = db.session.get(Order, receivable.order_id) if receivable else None
    return gettext("Insured receivable of order %(no)s",
                   no=order.order_no if order else receivable_id)


def _lock_receivable(receivable_id: int) -> None:
    db.session.execute(select(Receivable.id).where(Receivable.id == receivable_id)
                       .with_for_update())


def _on_released(encumbrance: Encumbrance, actor: User | None) -> None:
    assignment = db.session.execute(select(IndemnityAssignment).where(
        IndemnityAssignment.encumbrance_id == encumbrance.id).with_for_update()
        .execution_options(populate_existing=True)).scalar_one_or_none()
    if assignment is not None and assignment.status is AssignmentStatus.ACTIVE:
        assignment.apply(AssignmentAction.RELEASE, actor=actor,
                         note=encumbrance.release_reason)
        notify(assignment.insured_org_id, "insurance.assignment_released",
               dedupe_key=f"assignment:{assignment.id}:released",
               link=f"/insurance/declarations/{assignment.declaration_id}",
               bank=db.session.get(Organisation, assignment.bank_org_id).name)


registry.register_asset_type(AssetKind.INSURED_RECEIVABLE, registry.AssetType(
    describe=_label, lock=_lock_receivable, on_released=_on_released))


def request_assignment(declaration_id: int, *, actor: User, bank_org_id: int
                       ) -> IndemnityAssignment:
    """The SME asks to assign the indemnity of an insured receivable to a bank."""
    declaration = get_declaration(declaration_id, actor=actor, lock=True)
    authz.require(actor, "insurance.act_for_insured", declaration, hide=False)
    bank = _approved_org(bank_org_id, OrgKind.BANK, "bank_org_id")
    if declaration.status not in USES_LIMIT or declaration.insured_amount == 0:
        raise ValidationFailed(gettext("Only an insured, unpaid shipment's indemnity can be "
                                       "assigned."), field="declaration_id")
    _financed_elsewhere(declaration.receivable_id, bank.id)
    if db.session.execute(select(IndemnityAssignment.id).where(
            IndemnityAssignment.declaration_id == declaration.id,
            IndemnityAssignment.status.in_(list(LIVE_ASSIGNMENT)))).first():
        raise Conflict(gettext("This indemnity is assigned already (or an assignment is being "
                               "agreed)."), field="declaration_id", code="already_assigned")
    assignment = IndemnityAssignment(
        declaration_id=declaration.id, receivable_id=declaration.receivable_id,
        policy_id=declaration.policy_id, insurer_org_id=declaration.insurer_org_id,
        insured_org_id=declaration.insured_org_id, bank_org_id=bank.id,
        status=AssignmentStatus.REQUESTED, status_changed_at=clock.now(),
        created_at=clock.now(), created_by_id=actor.id)
    db.session.add(assignment)
    db.session.flush()
    assignment.start(AssignmentAction.REQUEST, AssignmentStatus.REQUESTED, actor=actor,
                     note=bank.name)
    notify(declaration.insurer_org_id, "insurance.assignment_requested",
           dedupe_key=f"assignment:{assignment.id}:requested",
           link=f"/insurance/declarations/{declaration.id}", insured=actor.organisation.name,
           bank=bank.name, order=_order_no(declaration))
    return assignment


def acknowledge_assignment(assignment_id: int, *, actor: User) -> IndemnityAssignment:
    assignment = get_assignment(assignment_id, actor=actor, lock=True)
    authz.require(actor, "insurance.manage", assignment, hide=False)
    assignment.apply(AssignmentAction.ACKNOWLEDGE, actor=actor)
    notify(assignment.bank_org_id, "insurance.assignment_acknowledged",
           dedupe_key=f"assignment:{assignment.id}:acknowledged",
           link=f"/insurance/declarations/{assignment.declaration_id}",
           insured=db.session.get(Organisation, assignment.insured_org_id).name,
           order=_order_no(assignment.declaration))
    return assignment


def accept_assignment(assignment_id: int, *, actor: User) -> IndemnityAssignment:
    """The bank accepts: the insured receivable is locked to it in the collateral registry
    (one live lock per receivable, whoever the bank) and it becomes the claim payee."""
    assignment = get_assignment(assignment_id, actor=actor, lock=True)
    authz.require(actor, "insurance.accept_assignment", assignment, hide=False)
    if assignment.status is not AssignmentStatus.ACKNOWLEDGED:
        assignment.apply(AssignmentAction.ACCEPT, actor=actor)   # refuses, by name
    declaration = get_declaration(assignment.declaration_id)
    policy = db.session.get(Policy, declaration.policy_id)
    encumbrance = registry.encumber(
        AssetKind.INSURED_RECEIVABLE, assignment.receivable_id, actor.organisation,
        actor=actor, financing_kind="indemnity_assignment",
        financing_ref=f"{policy.number}/assignment-{assignment.id}",
        secured_amount=declaration.insured)
    _financed_elsewhere(assignment.receivable_id, actor.org_id)
    assignment.encumbrance_id = encumbrance.id
    assignment.apply(AssignmentAction.ACCEPT, actor=actor)
    for org_id in (assignment.insured_org_id, assignment.insurer_org_id):
        notify(org_id, "insurance.assignment_active",
               dedupe_key=f"assignment:{assignment.id}:active:{org_id}",
               link=f"/insurance/declarations/{assignment.declaration_id}",
               bank=actor.organisation.name, order=_order_no(declaration))
    return assignment


def _financed_elsewhere(receivable_id: int, bank_org_id: int) -> None:
    """Checked with the receivable's row locked (by the registry): a receivable financed by
    one bank (as a receivable, or through its order before it shipped) cannot have its
    indemnity assigned to another; the claim would not reach the bank that lent on it."""
    order_id = db.session.execute(select(Receivable.order_id).where(
        Receivable.id == receivable_id)).scalar_one()
    for kind, asset_id in ((AssetKind.RECEIVABLE, receivable_id), (AssetKind.ORDER, order_id)):
        held = registry.active_for(kind, asset_id)
        if held is not None and held.holder_org_id != bank_org_id:
            raise Conflict(gettext("The receivable already backs financing from another "
                                   "bank; its indemnity can only be assigned to that bank."),
                           field="assignment", code="financed_elsewhere")


def refuse_assignment(assignment_id: int, *, actor: User, reason: str) -> IndemnityAssignment:
    """The insurer (before acknowledging) or the bank (before accepting) says no."""
    assignment = get_assignment(assignment_id, actor=actor, lock=True)
    insurer = authz.can(actor, "insurance.manage", assignment)
    bank = authz.can(actor, "insurance.accept_assignment", assignment)
    if not (insurer or bank):
        raise Forbidden()
    reason = _text(reason, "reason", 1000)
    turn = AssignmentStatus.REQUESTED if insurer else AssignmentStatus.ACKNOWLEDGED
    if assignment.status in (AssignmentStatus.REQUESTED, AssignmentStatus.ACKNOWLEDGED) \
            and assignment.status is not turn:
        raise Forbidden(gettext("The insurer refuses an assignment before acknowledging it; "
                                "the bank before accepting it."))
    assignment.apply(AssignmentAction.REFUSE, actor=actor, note=reason)
    assignment.reason = reason
    notify(assignment.insured_org_id, "insurance.assignment_refused",
           dedupe_key=f"assignment:{assignment.id}:refused",
           link=f"/insurance/declarations/{assignment.declaration_id}",
           by=actor.organisation.name, reason=reason)
    return assignment


def withdraw_assignment(assignment_id: int, *, actor: User) -> IndemnityAssignment:
    assignment = get_assignment(assignment_id, actor=actor, lock=True)
    authz.require(actor, "insurance.act_for_insured", assignment, hide=False)
    assignment.apply(AssignmentAction.WITHDRAW, actor=actor)
    return assignment


def release_assignment(assignment_id: int, *, actor: User, reason: str | None = None
                       ) -> IndemnityAssignment:
    """The bank lets the assignment go (its approvers, through the collateral registry)."""
    assignment = get_assignment(assignment_id, actor=actor, lock=True)
    if assignment.status is not AssignmentStatus.ACTIVE:
        assignment.apply(AssignmentAction.RELEASE, actor=actor)   # refuses, by name
    registry.release(assignment.encumbrance_id, actor=actor, reason=reason)
    return assignment


# --------------------------------------------------------------------------- premium

@settlement.on_paid("declaration")
def _premium_paid(record, actor: User | None) -> None:
    declaration = db.session.execute(select(ShipmentDeclaration).where(
        ShipmentDeclaration.premium_settlement_id == record.id)).scalar_one_or_none()
    if declaration is not None:
        audit.record("insurance.premium_paid", actor=actor, org_id=declaration.insurer_org_id,
                     obj=declaration, changes={"settlement_id": record.id,
                                               "premium": str(record.money)})


def premium_status(declaration: ShipmentDeclaration) -> SettlementStatus | None:
    if declaration.premium_settlement_id is None:
        return None
    return db.session.execute(select(settlement.SettlementRecord.status).where(
        settlement.SettlementRecord.id == declaration.premium_settlement_id)).scalar_one()


# --------------------------------------------------------------------------- daily

def daily(today: date) -> str:
    """Expire policies past their end; mark declarations whose buyer paid as settled; tell
    SMEs of overdue invoices not yet reported (and of report deadlines passed); tell
    claimants when a claim can be filed."""
    expired = 0
    for policy in db.session.execute(select(Policy).where(
            Policy.status == PolicyStatus.ISSUED, Policy.end_date < today)
            .with_for_update()).scalars():
        policy.apply(PolicyAction.EXPIRE, actor=None)
        expired += 1
    settled = 0
    live = list(db.session.execute(select(ShipmentDeclaration).where(
        ShipmentDeclaration.status.in_([DeclarationStatus.DECLARED, DeclarationStatus.OVERDUE]))
        .order_by(ShipmentDeclaration.id).with_for_update()).scalars())
    for declaration in live:
        if sync_declaration(declaration):
            settled += 1
    reminders = missed = claimable = 0
    for declaration in live:
        if declaration.status is DeclarationStatus.DECLARED and today > declaration.due_date:
            deadline = report_deadline(declaration)
            key = "missed" if today > deadline else "due"
            notify(declaration.insured_org_id, f"insurance.overdue_{key}",
                   dedupe_key=f"declaration:{declaration.id}:overdue_{key}",
                   link=f"/insurance/declarations/{declaration.id}",
                   order=_order_no(declaration), due=declaration.due_date.isoformat(),
                   deadline=deadline.isoformat())
            if key == "missed":
                missed += 1
            else:
                reminders += 1
        elif declaration.status is DeclarationStatus.OVERDUE:
            policy = db.session.get(Policy, declaration.policy_id)
            if today >= declaration.due_date + timedelta(days=policy.waiting_days):
                notify(declaration.insured_org_id, "insurance.claim_possible",
                       dedupe_key=f"declaration:{declaration.id}:claimable",
                       link=f"/insurance/declarations/{declaration.id}",
                       order=_order_no(declaration))
                claimable += 1
    return (f"{expired} policies expired, {settled} declarations settled, {reminders} overdue "
            f"reports due, {missed} report deadlines missed, {claimable} claims possible")


def _register_daily() -> None:
    from finance_app import daily as daily_run
    daily_run.duty("insurance")(daily)


_register_daily()


def _register_messages() -> None:
    from flask_babel import lazy_gettext as _l

    from finance_app.accounts.notifications import register_messages
    register_messages({
        "insurance.policy_issued": _l("%(insurer)s issued export credit insurance policy "
                                      "%(number)s to you."),
        "insurance.policy_cancelled": _l("Policy %(number)s was cancelled: %(reason)s"),
        "insurance.limit_requested": _l("%(insured)s asks for a credit limit of %(amount)s on "
                                        "%(buyer)s (%(country)s)."),
        "insurance.limit_decided": _l("The credit limit on %(buyer)s was %(decision)s "
                                      "(%(amount)s). %(reason)s"),
        "insurance.shipment_declared": _l("%(insured)s declared order %(order)s to %(buyer)s: "
                                          "%(insured_amount)s insured, %(uninsured)s "
                                          "uninsured."),
        "insurance.cover_voided": _l("Cover for order %(order)s was voided: %(reason)s"),
        "insurance.overdue_reported": _l("%(insured)s reports order %(order)s overdue "
                                         "(%(amount)s), %(late)s."),
        "insurance.overdue_due": _l("Order %(order)s was due on %(due)s and is unpaid: report "
                                    "it overdue by %(deadline)s."),
        "insurance.overdue_missed": _l("Order %(order)s was due on %(due)s; the overdue report "
                                       "was due by %(deadline)s and is late: cover may be "
                                       "void."),
        "insurance.claim_possible": _l("The waiting period for order %(order)s has passed: "
                                       "you can claim."),
        "insurance.claim_filed": _l("%(claimant)s claims %(amount)s for order %(order)s."),
        "insurance.claim_approved": _l("The claim for order %(order)s is approved: indemnity "
                                       "%(indemnity)s (%(coverage)s of the insured loss)."),
        "insurance.claim_rejected": _l("The claim for order %(order)s was rejected: "
                                       "%(reason)s"),
        "insurance.assignment_requested": _l("%(insured)s asks to assign the indemnity of "
                                             "order %(order)s to %(bank)s."),
        "insurance.assignment_acknowledged": _l("The insurer acknowledged %(insured)s's "
                                                "assignment of the indemnity of order "
                                                "%(order)s to you: accept it to hold it."),
        "insurance.assignment_active": _l("The indemnity of order %(order)s is assigned to "
                                          "%(bank)s."),
        "insurance.assignment_refused": _l("%(by)s refused the assignment: %(reason)s"),
        "insurance.assignment_released": _l("%(bank)s released the assignment of an "
                                            "indemnity to it."),
    })


_register_messages()
