"""Loans: acceptance, disbursement, repayment, overdue handling, collateral release.

* **Acceptance** (the SME, on an approved offer): in one transaction the request is
  locked, the other offers lapse, the loan is made, the facility (if any) is held in the
  ledger, every collateral item is locked in the registry (receipts pledged, receivables
  and orders assigned to the bank), and the contract's terms are fixed and fingerprinted.
  Accepting the same offer again returns the same loan.
* **Disbursement** (the bank): the principal is booked to the loan, the fees to the
  bank's income, the rest paid to the SME (converted if the SME takes another currency)
  with a settlement record; the facility hold is posted; the schedule starts that day.
* **Repayment** (the SME, by bank transfer or card): a settlement record the bank confirms
  (or Stripe pays); once paid it is applied: penalty interest, then overdue interest, then
  interest (to the day), then principal, oldest instalment first. A payment in another
  currency is converted at the day's rate first. Repaid in full, the loan closes and its
  collateral is released.
* **The daily job** marks instalments overdue (and raises alerts), books interest that
  falls due and penalty interest to date, and defaults loans overdue beyond the product's
  limit. It books with keys derived from what it books, so running twice changes nothing.

Every loan amount in the ledger: ``financing.accounts``.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_DOWN, Decimal, localcontext

from flask_babel import gettext
from sqlalchemy import select

from finance_app import authz, clock
from finance_app.accounts.models import Organisation, User
from finance_app.accounts.notifications import notify
from finance_app.audit import services as audit
from finance_app.collateral import services as registry
from finance_app.collateral.models import Encumbrance
from finance_app.collateral.states import AssetKind, EncumbranceStatus
from finance_app.errors import Conflict, NotFound, ValidationFailed
from finance_app.extensions import db
from finance_app.financing import (  # noqa: F401  (notices, reconcile: registered)
    accounts, accrual, contracts, marketplace, notices, reconcile,
)
from finance_app.financing import products as catalogue
from finance_app.financing import review
from finance_app.financing.lookup import visible
from finance_app.financing.models import (
    Allocation, Decision, FinancingProduct, FinancingRequest, Instalment, Loan, Repayment,
)
from finance_app.financing.schedule import build_schedule
from finance_app.financing.states import (
    LIVE_LOAN_STATUSES, Component, DecisionKind, InstalmentAction, InstalmentStatus,
    LoanAction, LoanStatus, OfferAction, OfferStatus, ProductKind, RepaymentAction,
    RepaymentMethod, RepaymentStatus, RequestAction, RequestStatus,
)
from finance_app.ledger import fx
from finance_app.ledger import services as ledger
from finance_app.ledger.rates import find_rate
from finance_app.money import Money, minor_units, round_exact
from finance_app.oversight.services import raise_alert
from finance_app.oversight.states import Severity
from finance_app.settlement import services as settlement
from finance_app.settlement.states import ObligationKind, SettlementMethod

FINANCING_KIND = {
    ProductKind.ORDER: "order_financing",
    ProductKind.RECEIVABLE: "receivable_assignment",
    ProductKind.WAREHOUSE_RECEIPT: "warehouse_receipt_loan",
    ProductKind.POLICY: "policy_financing",
}


def loan_ref(loan: Loan) -> str:
    return f"loan:{loan.id}"


# --------------------------------------------------------------------------- lookups

def get_loan(loan_id: int, *, actor: User | None = None, lock: bool = False) -> Loan:
    return visible(Loan, loan_id, actor=actor, rule="financing.read_loan", what="loan",
                   lock=lock)


def instalments(loan: Loan, *, lock: bool = False) -> list[Instalment]:
    query = select(Instalment).where(Instalment.loan_id == loan.id).order_by(Instalment.number)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    return list(db.session.execute(query).scalars())


def loan_for_request(request_id: int) -> Loan | None:
    return db.session.execute(select(Loan).where(Loan.request_id == request_id)
                              ).scalar_one_or_none()


# --------------------------------------------------------------------------- acceptance

def _shares(total: Money, weights: list[int]) -> list[Money]:
    """``total`` split in proportion to ``weights``, the last share taking the rounding."""
    units, whole = total.to_minor(), sum(weights)
    parts = [units * w // whole if whole else 0 for w in weights[:-1]]
    parts.append(units - sum(parts))
    return [Money.from_minor(p, total.currency) for p in parts]


def _lock_collateral(loan: Loan, decision: Decision, request: FinancingRequest,
                     product: FinancingProduct, actor: User) -> None:
    items = sorted(request.collateral, key=lambda c: (c.asset_kind.value, c.asset_id))
    check = {i.id: i for i in marketplace.collateral(
        request.sme_org_id, request.kind, [c.asset_id for c in items],
        require_verified=product.require_verified)}
    values = []
    for c in items:
        item = check.get(c.asset_id)
        problem = (item.problem or marketplace.bank_problem(item, product)) if item \
            else c.label
        if problem:
            raise ValidationFailed(problem, field="collateral", code="collateral_unavailable")
        values.append(max(item.value.to_minor(), 1))
    shares = _shares(loan.principal, values)
    bank = db.session.get(Organisation, loan.bank_org_id)
    consent = f"offer:{decision.id}"
    for c, share in zip(items, shares):
        if c.asset_kind is AssetKind.WAREHOUSE_RECEIPT:
            from finance_app.warehouse.services import pledge_for_loan
            pledge_for_loan(c.asset_id, bank, actor=actor, principal=share,
                            max_ltv=product.max_advance_rate,
                            margin_call_ltv=product.margin_call_ltv,
                            liquidation_ltv=product.liquidation_ltv,
                            cure_days=product.cure_days, financing_ref=loan_ref(loan),
                            consent=consent)
            continue
        # an insured receivable is financed as its receivable; the indemnity assignment
        # (the bank's lock on the insured receivable) stays as it is
        kind = AssetKind.RECEIVABLE if c.asset_kind is AssetKind.INSURED_RECEIVABLE \
            else c.asset_kind
        registry.encumber(kind, c.asset_id, bank, actor=actor,
                          financing_ref=loan_ref(loan),
                          financing_kind=FINANCING_KIND[product.kind],
                          secured_amount=share if share.amount > 0 else None,
                          consent=consent)
        if kind is AssetKind.ORDER:
            _order_still_unshipped(c.asset_id, c.label)
        elif kind is AssetKind.RECEIVABLE:
            _receivable_order_free(c.asset_id, c.label)
            _indemnity_with(c.asset_id, bank.id, c.label,
                            required=c.asset_kind is AssetKind.INSURED_RECEIVABLE)


def _indemnity_with(receivable_id: int, bank_org_id: int, label: str, *, required: bool
                    ) -> None:
    """Checked with the receivable's row locked: its indemnity, if assigned, is assigned to
    the lending bank (``required``: it must be). An assignment being accepted at the same
    moment waits for the row, then sees this loan's lock and is refused."""
    assignment = registry.active_for(AssetKind.INSURED_RECEIVABLE, receivable_id)
    holder = assignment.holder_org_id if assignment else None
    if holder not in (None, bank_org_id) or (required and holder is None):
        raise ValidationFailed(gettext("%(asset)s: its indemnity is not assigned to the "
                                       "lending bank.", asset=label), field="collateral",
                               code="collateral_unavailable")


def _order_still_unshipped(order_id: int, label: str) -> None:
    """Checked with the order's row locked (by the registry), so an order that ships at the
    same moment either waits for this loan (and its receivable inherits the loan) or has
    shipped already and is refused here."""
    from finance_app.trade.models import Receivable
    if db.session.execute(select(Receivable.id).where(Receivable.order_id == order_id)).first():
        raise ValidationFailed(gettext("%(asset)s has shipped and is now a receivable: finance "
                                       "it as a receivable.", asset=label), field="collateral",
                               code="collateral_unavailable")


def _receivable_order_free(receivable_id: int, label: str) -> None:
    from finance_app.trade.models import Receivable
    order_id = db.session.execute(select(Receivable.order_id).where(
        Receivable.id == receivable_id)).scalar_one()
    if registry.active_for(AssetKind.ORDER, order_id) is not None:
        raise ValidationFailed(gettext("%(asset)s is already financed through its order.",
                                       asset=label), field="collateral",
                               code="collateral_unavailable")


def _hold_facility(loan: Loan, actor: User) -> None:
    facility = catalogue.facility_for(loan.bank_org_id, loan.sme_org_id, loan.currency)
    if facility is None:
        return
    facility = catalogue.get_facility(facility.id, lock=True)
    if facility.expiry_date < clock.today():
        raise ValidationFailed(gettext("Your facility with this bank expired on %(date)s.",
                                       date=facility.expiry_date.isoformat()),
                               field="facility", code="facility_expired")
    available = accounts.facility_account(facility, accounts.FACILITY_AVAILABLE)
    used = accounts.facility_account(facility, accounts.FACILITY_USED)
    try:
        hold = ledger.book([ledger.debit(available, loan.principal),
                            ledger.credit(used, loan.principal)],
                           key=f"loan-{loan.id}-facility-hold", kind="facility_hold",
                           org_id=loan.bank_org_id, actor=actor, pending=True,
                           reference=("loan", loan.id),
                           description=f"Loan {loan.id} held on facility {facility.id}")
    except ledger.InsufficientFunds:
        raise ValidationFailed(gettext(
            "Your facility with this bank has only %(available)s available.",
            available=str(ledger.available(available))), field="amount",
            code="facility_exceeded") from None
    loan.facility_id, loan.facility_hold_id = facility.id, hold.id


def accept_offer(decision_id: int, *, actor: User) -> Loan:
    """The SME accepts an approved offer; see the module notes. ``Conflict`` for a lapsed,
    expired or withdrawn offer, or a request already accepted."""
    authz.require_approved(actor)
    decision = review.get_decision(decision_id, actor=actor)
    request = marketplace.get_request(decision.request_id, lock=True)
    authz.require(actor, "financing.manage_request", request, hide=False)
    decision = review.get_decision(decision_id, lock=True)
    if request.status is RequestStatus.ACCEPTED and request.accepted_offer_id == decision.id:
        return loan_for_request(request.id)
    if decision.kind is not DecisionKind.OFFER:
        raise Conflict(gettext("This is a rejection, not an offer."), code="not_an_offer")
    if decision.status is OfferStatus.LAPSED:
        why = (gettext("This offer lapsed: you accepted another offer.")
               if request.status is RequestStatus.ACCEPTED
               else gettext("This offer lapsed: the request was withdrawn."))
        raise Conflict(why, code="offer_lapsed")
    if decision.status is OfferStatus.EXPIRED or (
            decision.status is OfferStatus.APPROVED and decision.expiry_date < clock.today()):
        raise Conflict(gettext("This offer expired on %(date)s.",
                               date=decision.expiry_date.isoformat()), code="offer_expired")
    if decision.status is OfferStatus.WITHDRAWN:
        raise Conflict(gettext("The bank withdrew this offer."), code="offer_withdrawn")
    if request.status is not RequestStatus.SUBMITTED:
        raise Conflict(gettext("The request is closed: it was withdrawn or another offer was "
                               "accepted."), code="request_closed")
    decision.apply(OfferAction.ACCEPT, actor=actor)   # refuses an offer not yet approved
    request.apply(RequestAction.ACCEPT, actor=actor)
    now = clock.now()
    decision.accepted_at = now
    request.accepted_offer_id = decision.id
    marketplace.lapse_others(request, keep=decision.id, actor=actor,
                             reason="accepted")
    product = decision.target.product
    loan = Loan(decision_id=decision.id, request_id=request.id, product_id=product.id,
                bank_org_id=decision.bank_org_id, sme_org_id=request.sme_org_id,
                principal_amount=decision.amount, currency=decision.currency,
                annual_rate=decision.annual_rate, day_count=product.day_count,
                tenor_days=decision.tenor_days, fees_amount=decision.fees_amount or 0,
                repayment_type=product.repayment_type, penalty_rate=product.penalty_rate,
                default_after_days=product.default_after_days,
                status=LoanStatus.AWAITING_DISBURSEMENT, accepted_at=now,
                accepted_by_id=actor.id, created_at=now)
    db.session.add(loan)
    db.session.flush()
    _hold_facility(loan, actor)
    _lock_collateral(loan, decision, request, product, actor)
    contract = contracts.create_contract(loan, decision, request)
    loan.record_start(actor=actor, note=contract.number)
    audit.record("financing.loan_created", actor=actor, obj=loan,
                 changes={"offer_id": decision.id, "request_id": request.id,
                          "principal": str(loan.principal), "annual_rate": loan.annual_rate,
                          "tenor_days": loan.tenor_days, "contract": contract.number,
                          "terms_sha256": contract.terms_sha256})
    sme = db.session.get(Organisation, loan.sme_org_id)
    notify(loan.bank_org_id, "financing.offer_accepted", dedupe_key=f"loan:{loan.id}:accepted",
           link=f"/financing/loans/{loan.id}", sme=sme.name, amount=str(loan.principal))
    return loan


# --------------------------------------------------------------------------- cancellation

def cancel_loan(loan_id: int, *, actor: User, reason: str) -> Loan:
    """Called off before disbursement (the bank, or the SME): the facility hold is voided
    and the collateral released."""
    authz.require_approved(actor)
    loan = get_loan(loan_id, actor=actor, lock=True)
    authz.require(actor, "financing.cancel_loan", loan, hide=False)
    reason = (reason or "").strip()
    if not 5 <= len(reason) <= 500:
        raise ValidationFailed(gettext("Say why (5 to 500 characters)."), field="reason")
    if loan.status is LoanStatus.CANCELLED:
        return loan
    loan.apply(LoanAction.CANCEL, actor=actor, note=reason)
    if loan.facility_hold_id:
        ledger.void_pending(loan.facility_hold_id, key=f"loan-{loan.id}-facility-void",
                            actor=actor)
    _release_collateral(loan, actor=actor, reason=f"loan {loan.id} cancelled: {reason}")
    loan.closed_at = clock.now()
    other = loan.sme_org_id if actor.org_id == loan.bank_org_id else loan.bank_org_id
    notify(other, "financing.loan_cancelled", dedupe_key=f"loan:{loan.id}:cancelled",
           link=f"/financing/loans/{loan.id}", loan=loan.id, reason=reason)
    return loan


def _release_collateral(loan: Loan, *, actor: User | None, reason: str) -> int:
    live = db.session.execute(select(Encumbrance).where(
        Encumbrance.financing_ref == loan_ref(loan),
        Encumbrance.holder_org_id == loan.bank_org_id,
        Encumbrance.status == EncumbranceStatus.ACTIVE).order_by(
        Encumbrance.asset_kind, Encumbrance.asset_id)).scalars().all()
    for encumbrance in live:
        registry.release_financed(encumbrance.id, actor=actor, reason=reason[:500],
                                  consent=loan_ref(loan))
    return len(live)


def _release_indemnities(loan: Loan, *, actor: User | None, reason: str) -> int:
    """A policy-financing loan repaid in full gives the indemnity of its insured
    receivables back to the SME: the bank's assignment ends with the loan."""
    ids = [c.asset_id for c in db.session.get(FinancingRequest, loan.request_id).collateral
           if c.asset_kind is AssetKind.INSURED_RECEIVABLE]
    if not ids:
        return 0
    live = db.session.execute(select(Encumbrance).where(
        Encumbrance.asset_kind == AssetKind.INSURED_RECEIVABLE, Encumbrance.asset_id.in_(ids),
        Encumbrance.holder_org_id == loan.bank_org_id,
        Encumbrance.status == EncumbranceStatus.ACTIVE).order_by(Encumbrance.asset_id)
    ).scalars().all()
    for encumbrance in live:
        registry.release_financed(encumbrance.id, actor=actor, reason=reason[:500],
                                  consent=encumbrance.financing_ref)
    return len(live)


# --------------------------------------------------------------------------- disbursement

def disburse(loan_id: int, *, actor: User, reference: str,
             receive_currency: str | None = None) -> Loan:
    """The bank records that it paid the loan out (its transfer's reference): see the
    module notes. The same reference again returns the loan as it is."""
    authz.require_approved(actor)
    loan = get_loan(loan_id, actor=actor, lock=True)
    authz.require(actor, "financing.disburse", loan, hide=False)
    if loan.status is not LoanStatus.AWAITING_DISBURSEMENT and loan.disbursement_record_id:
        record = settlement.get_record(loan.disbursement_record_id)
        if record.bank_reference == (reference or "").strip():
            return loan
    currency = (receive_currency or loan.currency).strip().upper()
    loan.apply(LoanAction.DISBURSE, actor=actor, note=reference)
    today = clock.today()
    schedule = build_schedule(loan.principal, loan.annual_rate, loan.day_count, today,
                              loan.tenor_days, loan.repayment_type)
    start = today
    for i in schedule.instalments:
        db.session.add(Instalment(
            loan_id=loan.id, bank_org_id=loan.bank_org_id, number=i.number,
            period_start=start, due_date=i.due_date, currency=loan.currency,
            principal_due=i.principal.to_minor(), interest_due=i.interest.to_minor(),
            principal_paid=0, interest_paid=0, interest_recognised=0, penalty_accrued=0,
            penalty_paid=0, status=InstalmentStatus.PENDING))
        start = i.due_date
    net = loan.principal - loan.fees
    owed = accounts.loan_account(loan, accounts.DISBURSEMENT)
    postings = [ledger.debit(accounts.loan_account(loan, accounts.PRINCIPAL), loan.principal),
                ledger.credit(owed, net)]
    if loan.fees.amount > 0:
        postings.append(ledger.credit(accounts.bank_account(loan.bank_org_id,
                                                            accounts.FEE_INCOME,
                                                            loan.currency), loan.fees))
    ledger.book(postings, key=f"loan-{loan.id}-booking", kind="loan_disbursement",
                org_id=loan.bank_org_id, actor=actor, reference=("loan", loan.id),
                description=f"Loan {loan.id}: principal {loan.principal}, fees {loan.fees}")
    paid = net
    if currency != loan.currency:
        target = accounts.loan_account(loan, accounts.DISBURSEMENT, currency)
        conversion = fx.convert(owed, target, net, key=f"loan-{loan.id}-disbursement-fx",
                                org_id=loan.bank_org_id, actor=actor,
                                description=f"Loan {loan.id} paid out in {currency}")
        paid = Money(Decimal(fx.snapshot(conversion)["converted"]), currency)
        owed = target
    record = settlement.record_sent_transfer(
        ObligationKind.DISBURSEMENT, payee_org_id=loan.sme_org_id, amount=paid,
        debit_account=owed, credit_account=accounts.bank_account(
            loan.bank_org_id, accounts.LENDING_CASH, currency),
        key=f"loan-{loan.id}-disbursement", reference=reference, actor=actor,
        description=f"Loan {loan.id} disbursement", obligation_ref=loan_ref(loan))
    if loan.facility_hold_id:
        ledger.post_pending(loan.facility_hold_id, key=f"loan-{loan.id}-facility-post",
                            actor=actor)
    loan.disbursement_record_id = record.id
    loan.disbursed_at, loan.disbursed_on, loan.maturity_date = clock.now(), today, \
        schedule.maturity
    notify(loan.sme_org_id, "financing.loan_disbursed", dedupe_key=f"loan:{loan.id}:disbursed",
           link=f"/financing/loans/{loan.id}", amount=str(paid),
           maturity=schedule.maturity.isoformat())
    return loan


# --------------------------------------------------------------------------- figures

@dataclass(frozen=True)
class Position:
    """What the SME owes on a loan on ``on``: every part, to the day."""
    on: date
    penalty: Money
    overdue_interest: Money
    interest: Money          # fallen due today, and accrued in the current period
    principal: Money
    overdue_principal: Money
    unapplied: Money         # paid and not needed (an overpayment)
    principal_due_today: Money   # of instalments falling due today

    @property
    def total(self) -> Money:
        """Everything: what repays the loan in full today."""
        return self.penalty + self.overdue_interest + self.interest + self.principal

    @property
    def due_now(self) -> Money:
        """What is late or due today, with the interest to date: paying it cures an
        overdue loan."""
        return (self.penalty + self.overdue_interest + self.interest + self.overdue_principal
                + self.principal_due_today)


def _principal_paid(rows: list[Instalment], allocations: list[Allocation], start: int
                    ) -> list[accrual.Paid]:
    later = {i.id for i in rows[start:]}
    return [accrual.Paid(a.value_date, a.amount) for a in allocations
            if a.component is Component.PRINCIPAL and a.instalment_id in later]


def _allocations(loan: Loan) -> list[Allocation]:
    return list(db.session.execute(select(Allocation).join(
        Instalment, Instalment.id == Allocation.instalment_id).where(
        Instalment.loan_id == loan.id).order_by(Allocation.id)).scalars())


def _period_interest(loan: Loan, rows: list[Instalment], index: int,
                     allocations: list[Allocation], until: date | None = None) -> int:
    row = rows[index]
    base = sum(r.principal_due for r in rows[index:])
    return accrual.period_interest(row.period_start, min(until or row.due_date, row.due_date),
                                   base, _principal_paid(rows, allocations, index),
                                   loan.annual_rate, loan.day_count, loan.currency)


def _penalty_to(loan: Loan, row: Instalment, allocations: list[Allocation], on: date) -> int:
    paid = [accrual.Paid(a.value_date, a.amount) for a in allocations
            if a.instalment_id == row.id and a.component is not Component.PENALTY]
    return accrual.penalty(row.due_date, on, row.principal_due + row.interest_due, paid,
                           loan.penalty_rate, loan.day_count, loan.currency)


def _current(rows: list[Instalment], on: date) -> int | None:
    for index, row in enumerate(rows):
        if row.due_date > on:
            return index
    return None


def position(loan: Loan, on: date | None = None) -> Position:
    on = on or clock.today()
    zero = Money.from_minor(0, loan.currency)
    if loan.status not in LIVE_LOAN_STATUSES:
        unapplied = ledger.balance(accounts.loan_account(loan, accounts.UNAPPLIED)) \
            if loan.status is LoanStatus.REPAID else zero
        return Position(on, zero, zero, zero, zero, zero, unapplied, zero)
    rows = instalments(loan)
    allocations = _allocations(loan)
    penalty = overdue_interest = interest = overdue_principal = today_principal = 0
    for row in rows:
        if row.due_date < on:
            penalty += max(_penalty_to(loan, row, allocations, on), row.penalty_accrued) \
                - row.penalty_paid
            overdue_interest += row.interest_left
            overdue_principal += row.principal_left
        elif row.due_date == on:
            interest += row.interest_left
            today_principal += row.principal_left
    current = _current(rows, on)
    if current is not None:
        accrued = _period_interest(loan, rows, current, allocations, until=on)
        interest += max(accrued - rows[current].interest_paid, 0)
    principal = sum(r.principal_left for r in rows)
    m = lambda units: Money.from_minor(units, loan.currency)  # noqa: E731
    return Position(on, m(penalty), m(overdue_interest), m(interest), m(principal),
                    m(overdue_principal),
                    ledger.balance(accounts.loan_account(loan, accounts.UNAPPLIED)),
                    m(today_principal))


# --------------------------------------------------------------------------- keeping up

def bring_up_to_date(loan: Loan, on: date, *, actor: User | None = None) -> list[str]:
    """Book what time has made due on ``on``: interest of instalments due by then, penalty
    interest to date; mark instalments overdue or paid; return what changed. The loan is
    locked by the caller."""
    return bring_many_up_to_date([loan], on, actor=actor)[loan.id]


def bring_many_up_to_date(loans: list[Loan], on: date, *, actor: User | None = None
                          ) -> dict[int, list[str]]:
    """``bring_up_to_date`` for many loans at once (locked by the caller): their
    instalments locked and read, their allocations and accounts looked up, and what they
    book booked, each with one statement for the whole batch. What changed, by loan id."""
    done: dict[int, list[str]] = {loan.id: [] for loan in loans}
    live = [loan for loan in loans if loan.status in LIVE_LOAN_STATUSES]
    if not live:
        return done
    ids = [loan.id for loan in live]
    rows_of: dict[int, list[Instalment]] = {loan_id: [] for loan_id in ids}
    for row in db.session.execute(
            select(Instalment).where(Instalment.loan_id.in_(ids))
            .order_by(Instalment.loan_id, Instalment.number).with_for_update()
            .execution_options(populate_existing=True)).scalars():
        rows_of[row.loan_id].append(row)
    allocations_of: dict[int, list[Allocation]] = {loan_id: [] for loan_id in ids}
    for allocation, loan_id in db.session.execute(
            select(Allocation, Instalment.loan_id).join(
                Instalment, Instalment.id == Allocation.instalment_id)
            .where(Instalment.loan_id.in_(ids)).order_by(Allocation.id)):
        allocations_of[loan_id].append(allocation)
    accruals: list[_Accrual] = []
    for loan in live:
        done[loan.id] = _catch_up(loan, rows_of[loan.id], allocations_of[loan.id], on,
                                  accruals, actor=actor)
    books = accounts.open_for_loans(
        {(a.loan, a.purpose) for a in accruals},
        {(a.loan.bank_org_id, a.income, a.loan.currency) for a in accruals})
    requests = [ledger.Request(
        [ledger.debit(books[(a.loan.id, a.purpose)], a.amount),
         ledger.credit(books[(a.loan.bank_org_id, a.income, a.loan.currency)], a.amount)],
        key=a.key, kind=a.kind, org_id=a.loan.bank_org_id, value_date=a.value_date,
        reference=("loan", a.loan.id), description=a.description) for a in accruals]
    for outcome in ledger.book_many(requests, actor=actor):
        if outcome.error is not None:
            raise outcome.error
    for loan in live:
        if "loan defaulted" in done[loan.id]:
            _rerate(loan.sme_org_id, "default")
    return done


@dataclass(frozen=True)
class _Accrual:
    """Interest or penalty interest to book: the loan's ``purpose`` account debited, the
    bank's ``income`` account credited."""
    loan: Loan
    purpose: str
    income: str
    amount: Money
    key: str
    kind: str
    description: str
    value_date: date | None = None


def _catch_up(loan: Loan, rows: list[Instalment], allocations: list[Allocation], on: date,
              accruals: list[_Accrual], *, actor: User | None) -> list[str]:
    """One loan's part of ``bring_many_up_to_date``: what it books is added to
    ``accruals``; statuses, alerts and notices are done here."""
    done = []
    for row in rows:
        if row.due_date > on:
            break
        if row.status is InstalmentStatus.PENDING and row.interest_recognised == 0:
            recognise = row.interest_due - row.interest_paid
            if recognise > 0:
                accruals.append(_Accrual(
                    loan, accounts.INTEREST, accounts.INTEREST_INCOME, row.money(recognise),
                    key=f"loan-{loan.id}-inst-{row.number}-interest",
                    kind="loan_interest_due",
                    description=f"Loan {loan.id} instalment {row.number} interest",
                    value_date=row.due_date if row.due_date <= on else on))
                row.interest_recognised = recognise
                done.append(f"interest of instalment {row.number} booked")
        if row.due_date < on and row.status is InstalmentStatus.PENDING:
            if row.total_left > 0:
                row.apply(InstalmentAction.FALL_OVERDUE, actor=actor)
                row.overdue_since = row.due_date
                done.append(f"instalment {row.number} overdue")
                raise_alert("instalment_overdue", severity=Severity.MEDIUM,
                            subject_org_id=loan.sme_org_id, party_org_id=loan.bank_org_id,
                            obj=loan, dedupe_key=f"loan:{loan.id}:inst:{row.number}:overdue",
                            message=f"Loan {loan.id}: instalment {row.number} of "
                                    f"{row.money(row.total_left)} was due on "
                                    f"{row.due_date.isoformat()} and is unpaid.",
                            evidence={"loan_id": loan.id, "instalment": row.number,
                                      "due_date": row.due_date, "unpaid":
                                      str(row.money(row.total_left))})
                notify(loan.sme_org_id, "financing.instalment_overdue",
                       dedupe_key=f"loan:{loan.id}:inst:{row.number}:overdue",
                       link=f"/financing/loans/{loan.id}", loan=loan.id, number=row.number,
                       amount=str(row.money(row.total_left)))
            else:
                row.apply(InstalmentAction.PAY, actor=actor)
                row.paid_on = row.paid_on or row.due_date
        if row.status is InstalmentStatus.OVERDUE:
            target = _penalty_to(loan, row, allocations, on)
            if target > row.penalty_accrued:
                accruals.append(_Accrual(
                    loan, accounts.PENALTY, accounts.PENALTY_INCOME,
                    row.money(target - row.penalty_accrued),
                    key=f"loan-{loan.id}-inst-{row.number}-penalty-to-{target}",
                    kind="loan_penalty_interest",
                    description=f"Loan {loan.id} instalment {row.number} penalty "
                                f"interest to {on.isoformat()}"))
                row.penalty_accrued = target
                done.append(f"penalty interest of instalment {row.number} booked")
    overdue = [r for r in rows if r.status is InstalmentStatus.OVERDUE]
    if overdue and loan.status is LoanStatus.DISBURSED:
        loan.apply(LoanAction.FALL_OVERDUE, actor=actor)
        done.append("loan overdue")
    if overdue and loan.status is LoanStatus.OVERDUE:
        late = (on - min(r.due_date for r in overdue)).days
        if late > loan.default_after_days:
            loan.apply(LoanAction.DEFAULT, actor=actor,
                       note=f"{late} days overdue (limit {loan.default_after_days})")
            done.append("loan defaulted")
            raise_alert("loan_defaulted", severity=Severity.SEVERE,
                        subject_org_id=loan.sme_org_id, party_org_id=loan.bank_org_id,
                        obj=loan, dedupe_key=f"loan:{loan.id}:defaulted",
                        message=f"Loan {loan.id} is {late} days overdue and has defaulted.",
                        evidence={"loan_id": loan.id, "days_overdue": late})
            for org_id in (loan.sme_org_id, loan.bank_org_id):
                notify(org_id, "financing.loan_defaulted",
                       dedupe_key=f"loan:{loan.id}:defaulted:{org_id}",
                       link=f"/financing/loans/{loan.id}", loan=loan.id, days=late)
    return done


# --------------------------------------------------------------------------- repayments

def get_repayment(repayment_id: int, *, actor: User | None = None) -> Repayment:
    found = db.session.get(Repayment, repayment_id) if isinstance(repayment_id, int) else None
    if found is None or (actor is not None and not authz.can(
            actor, "financing.read_loan", db.session.get(Loan, found.loan_id))):
        raise NotFound("repayment", repayment_id)
    return found


def _in_loan_currency(amount: Money, loan: Loan, on: date) -> Money:
    if amount.currency == loan.currency:
        return amount
    quote = find_rate(amount.currency, loan.currency, on)   # RateMissing: a clear 422
    with localcontext(prec=80):
        return round_exact(amount.amount * quote.rate, loan.currency, ROUND_DOWN)


def start_repayment(loan_id: int, *, actor: User, amount: Money,
                    method: RepaymentMethod | str = RepaymentMethod.BANK_TRANSFER,
                    key: str) -> Repayment:
    """The SME says it pays ``amount`` (by transfer, the bank confirms it arrived; by card,
    Stripe takes it). Refused above what is owed today. The same key returns the same
    repayment."""
    authz.require_approved(actor)
    loan = get_loan(loan_id, actor=actor, lock=True)
    authz.require(actor, "financing.repay", loan, hide=False)
    try:
        method = RepaymentMethod(method)
    except ValueError:
        raise ValidationFailed(gettext("Pay by bank transfer or card."), field="method") \
            from None
    key = (key or "").strip()
    if not 1 <= len(key) <= 100:
        raise ValidationFailed(gettext("An idempotency key of 1 to 100 characters is "
                                       "required."), field="idempotency_key")
    existing = db.session.execute(select(Repayment).where(
        Repayment.loan_id == loan.id, Repayment.idempotency_key == key)).scalar_one_or_none()
    if existing is not None:
        if (existing.amount, existing.currency, existing.method) != (
                _units(amount), amount.currency, method):
            raise Conflict(gettext("The idempotency key %(key)s was already used for a "
                                   "different repayment.", key=key), field="idempotency_key",
                           code="idempotency_key_reused")
        return existing
    if loan.status not in LIVE_LOAN_STATUSES:
        raise Conflict(gettext("The loan is closed (repaid or cancelled); there is nothing to "
                               "repay."), code="loan_closed")
    units = _units(amount)
    today = clock.today()
    in_loan = _in_loan_currency(amount, loan, today)
    owed = position(loan, today)
    pending = sum(_pending_in_loan_currency(r, loan, today) for r in db.session.execute(
        select(Repayment).where(Repayment.loan_id == loan.id,
                                Repayment.status == RepaymentStatus.PENDING)).scalars())
    left = owed.total.to_minor() - pending
    if in_loan.to_minor() > left:
        after_pending = gettext(" (after the repayments already on their way)")
        raise ValidationFailed(gettext(
            "That is more than you owe today: %(owed)s%(pending)s.",
            owed=str(Money.from_minor(max(left, 0), loan.currency)),
            pending=after_pending if pending else ""), field="amount", code="above_amount_owed")
    bank = db.session.get(Organisation, loan.bank_org_id)
    record = settlement.create_record(
        ObligationKind.REPAYMENT, payer_org_id=loan.sme_org_id, payee_org_id=loan.bank_org_id,
        amount=amount, debit_account=accounts.bank_account(loan.bank_org_id,
                                                           accounts.LENDING_CASH,
                                                           amount.currency),
        credit_account=accounts.loan_account(loan, accounts.UNAPPLIED, amount.currency),
        key=f"loan-{loan.id}-repayment-{key}", reference=f"repayment:{loan.id}",
        description=f"Repayment of loan {loan.id} to {bank.name}",
        method=SettlementMethod.CARD if method is RepaymentMethod.CARD
        else SettlementMethod.BANK_TRANSFER, actor=actor)
    repayment = Repayment(loan_id=loan.id, sme_org_id=loan.sme_org_id,
                          bank_org_id=loan.bank_org_id, amount=units, currency=amount.currency,
                          method=method, status=RepaymentStatus.PENDING,
                          settlement_record_id=record.id, idempotency_key=key,
                          created_at=clock.now(), created_by_id=actor.id)
    db.session.add(repayment)
    db.session.flush()
    audit.record("financing.repayment_started", actor=actor, obj=repayment,
                 changes={"loan_id": loan.id, "amount": str(amount), "method": method.value,
                          "settlement_id": record.id})
    if method is RepaymentMethod.CARD:
        refusal = settlement.card_allowed(record)
        if refusal:
            raise ValidationFailed(refusal, field="method")
        settlement.start_card_payment(record.id, actor=actor)
    else:
        notify(loan.bank_org_id, "financing.repayment_announced",
               dedupe_key=f"repayment:{repayment.id}:announced",
               link=f"/settlement/{record.id}", loan=loan.id, amount=str(amount))
    return repayment


def _units(amount: Money) -> int:
    if not isinstance(amount, Money) or amount.amount <= 0:
        raise ValidationFailed(gettext("The amount must be greater than zero."), field="amount")
    try:
        return amount.to_minor()
    except ValueError:
        raise ValidationFailed(gettext("%(currency)s amounts have at most %(n)s decimal "
                                       "places.", currency=amount.currency,
                                       n=minor_units(amount.currency)), field="amount") from None


def _pending_in_loan_currency(repayment: Repayment, loan: Loan, on: date) -> int:
    try:
        return _in_loan_currency(repayment.money, loan, on).to_minor()
    except ValidationFailed:
        return 0


@settlement.on_paid("repayment")
def _repayment_paid(record, actor: User | None) -> None:
    repayment = db.session.execute(select(Repayment).where(
        Repayment.settlement_record_id == record.id).with_for_update()).scalar_one_or_none()
    if repayment is not None:
        apply_repayment(repayment, actor=actor)


@settlement.on_cancelled("repayment")
def _repayment_cancelled(record, actor: User | None) -> None:
    repayment = db.session.execute(select(Repayment).where(
        Repayment.settlement_record_id == record.id).with_for_update()).scalar_one_or_none()
    if repayment is not None and repayment.status is RepaymentStatus.PENDING:
        repayment.apply(RepaymentAction.CANCEL, actor=actor)


def apply_repayment(repayment: Repayment, *, actor: User | None) -> Repayment:
    """Apply a paid repayment (its settlement record just paid, in this transaction)."""
    if repayment.status is not RepaymentStatus.PENDING:
        return repayment
    loan = get_loan(repayment.loan_id, lock=True)
    today = clock.today()
    unapplied = accounts.loan_account(loan, accounts.UNAPPLIED)
    amount = repayment.money
    if amount.currency != loan.currency:
        conversion = fx.convert(accounts.loan_account(loan, accounts.UNAPPLIED, amount.currency),
                                unapplied, amount, key=f"repayment-{repayment.id}-fx",
                                org_id=loan.bank_org_id, actor=actor,
                                description=f"Repayment {repayment.id} of loan {loan.id}")
        repayment.fx_transaction_id = conversion.id
        amount = Money(Decimal(fx.snapshot(conversion)["converted"]), loan.currency)
    bring_up_to_date(loan, today, actor=actor)
    available = min(amount, ledger.balance(unapplied)) if loan.status in LIVE_LOAN_STATUSES \
        else Money.from_minor(0, loan.currency)
    applied = _allocate(loan, repayment, available, today, actor=actor)
    repayment.apply(RepaymentAction.APPLY, actor=actor)
    repayment.applied_amount, repayment.applied_on = applied.to_minor(), today
    for org_id in (loan.sme_org_id, loan.bank_org_id):
        notify(org_id, "financing.repayment_applied",
               dedupe_key=f"repayment:{repayment.id}:applied:{org_id}",
               link=f"/financing/loans/{loan.id}", loan=loan.id, amount=str(applied))
    _rerate(loan.sme_org_id, "repayment")
    return repayment


def _rerate(sme_org_id: int, trigger: str) -> None:
    from finance_app.oversight import ratings
    ratings.rate(sme_org_id, trigger=trigger)


def _allocate(loan: Loan, repayment: Repayment, amount: Money, on: date, *,
              actor: User | None) -> Money:
    rows = instalments(loan, lock=True)
    allocations = _allocations(loan)
    left = amount.to_minor()
    parts: list[tuple[Instalment, Component, int, bool]] = []   # (row, part, units, due)

    def take(row: Instalment, component: Component, due: int, recognised: bool) -> None:
        nonlocal left
        part = min(max(due, 0), left)
        if part > 0:
            parts.append((row, component, part, recognised))
            left -= part

    for row in rows:                                   # penalty interest, oldest first
        take(row, Component.PENALTY, row.penalty_left, True)
    for row in rows:                                   # interest fallen due
        if row.due_date <= on:
            take(row, Component.INTEREST, row.interest_left, row.interest_recognised > 0)
    current = _current(rows, on)
    if current is not None:                            # interest of the current period
        row = rows[current]
        accrued = _period_interest(loan, rows, current, allocations, until=on)
        take(row, Component.INTEREST, accrued - row.interest_paid, False)
    for row in rows:                                   # principal, oldest first
        take(row, Component.PRINCIPAL, row.principal_left, True)

    totals = {Component.PENALTY: 0, Component.PRINCIPAL: 0}
    interest_due = interest_early = 0
    for row, component, units, recognised in parts:
        db.session.add(Allocation(repayment_id=repayment.id, instalment_id=row.id,
                                  component=component, amount=units, value_date=on))
        if component is Component.PENALTY:
            row.penalty_paid += units
        elif component is Component.INTEREST:
            row.interest_paid += units
            if recognised:
                interest_due += units
            else:
                interest_early += units
        else:
            row.principal_paid += units
        if component is not Component.INTEREST:
            totals[component] += units
    db.session.flush()
    applied = amount.to_minor() - left
    if applied == 0:
        return Money.from_minor(0, loan.currency)
    m = lambda units: Money.from_minor(units, loan.currency)  # noqa: E731
    postings = [ledger.debit(accounts.loan_account(loan, accounts.UNAPPLIED), m(applied))]
    for purpose, units in ((accounts.PENALTY, totals[Component.PENALTY]),
                           (accounts.INTEREST, interest_due),
                           (accounts.PRINCIPAL, totals[Component.PRINCIPAL])):
        if units:
            postings.append(ledger.credit(accounts.loan_account(loan, purpose), m(units)))
    if interest_early:
        postings.append(ledger.credit(accounts.bank_account(
            loan.bank_org_id, accounts.INTEREST_INCOME, loan.currency), m(interest_early)))
    principal = totals[Component.PRINCIPAL]
    if principal and loan.facility_id:
        facility = catalogue.get_facility(loan.facility_id, lock=True)
        postings += [ledger.debit(accounts.facility_account(facility, accounts.FACILITY_USED),
                                  m(principal)),
                     ledger.credit(accounts.facility_account(
                         facility, accounts.FACILITY_AVAILABLE), m(principal))]
    transaction = ledger.book(postings, key=f"repayment-{repayment.id}-applied",
                              kind="loan_repayment", org_id=loan.bank_org_id, actor=actor,
                              reference=("loan", loan.id),
                              description=f"Repayment {repayment.id} of loan {loan.id}")
    repayment.ledger_transaction_id = transaction.id
    # what a prepayment saves: the later periods' interest on what is left
    allocations = _allocations(loan)
    for index, row in enumerate(rows):
        if row.due_date > on:
            row.interest_due = max(_period_interest(loan, rows, index, allocations),
                                   row.interest_paid)
    _settle_statuses(loan, rows, on, actor=actor)
    return m(applied)


def _settle_statuses(loan: Loan, rows: list[Instalment], on: date, *, actor: User | None
                     ) -> None:
    repaid = sum(r.principal_left for r in rows) == 0
    for row in rows:
        if row.status is InstalmentStatus.PAID or row.total_left > 0:
            continue
        if row.due_date <= on or repaid:
            row.apply(InstalmentAction.PAY, actor=actor)
            row.paid_on = on
    if all(r.status is InstalmentStatus.PAID for r in rows):
        loan.apply(LoanAction.REPAY, actor=actor)
        loan.closed_at = clock.now()
        released = _release_collateral(loan, actor=actor,
                                       reason=f"loan {loan.id} repaid in full")
        released += _release_indemnities(loan, actor=actor,
                                         reason=f"loan {loan.id} repaid in full")
        audit.record("financing.loan_closed", actor=actor, org_id=loan.bank_org_id, obj=loan,
                     changes={"released_collateral": released})
        for org_id in (loan.sme_org_id, loan.bank_org_id):
            notify(org_id, "financing.loan_repaid", dedupe_key=f"loan:{loan.id}:repaid:{org_id}",
                   link=f"/financing/loans/{loan.id}", loan=loan.id, released=released)
    elif loan.status is LoanStatus.OVERDUE and not any(
            r.status is InstalmentStatus.OVERDUE and r.total_left > 0 for r in rows):
        loan.apply(LoanAction.CURE, actor=actor)


# --------------------------------------------------------------------------- daily

def expire_offers(today: date) -> int:
    stale = db.session.execute(select(Decision).where(
        Decision.status == OfferStatus.APPROVED, Decision.kind == DecisionKind.OFFER,
        Decision.expiry_date < today).with_for_update()).scalars().all()
    for decision in stale:
        decision.apply(OfferAction.EXPIRE, actor=None,
                       note=f"expired on {decision.expiry_date.isoformat()}")
    return len(stale)


# Loans brought up to date in one go by the daily job: their instalments are read and
# locked together and their bookings made with one ledger batch.
DAILY_BATCH = 500


def daily(today: date) -> str:
    """Every live loan with an instalment due by ``today`` brought up to date. The loans
    are all locked first, in id order, before anything is booked: a repayment that holds
    one of them finishes first (the job holds no account it could wait for), and one that
    comes later waits for the job."""
    expired = expire_offers(today)
    loan_ids = db.session.execute(select(Loan.id).where(
        Loan.status.in_(list(LIVE_LOAN_STATUSES)),
        Loan.id.in_(select(Instalment.loan_id).where(
            Instalment.status != InstalmentStatus.PAID, Instalment.due_date <= today)))
        .order_by(Loan.id).with_for_update()).scalars().all()
    changed = overdue = defaulted = interest = penalty = 0
    for start in range(0, len(loan_ids), DAILY_BATCH):
        batch = db.session.execute(
            select(Loan).where(Loan.id.in_(loan_ids[start:start + DAILY_BATCH]))
            .order_by(Loan.id).execution_options(populate_existing=True)).scalars().all()
        for done in bring_many_up_to_date(list(batch), today).values():
            statuses = [d for d in done if not d.endswith(" booked")]
            changed += bool(statuses)
            overdue += sum(1 for d in statuses if d.startswith("instalment"))
            defaulted += "loan defaulted" in statuses
            interest += sum(1 for d in done if d.startswith("interest of"))
            penalty += sum(1 for d in done if d.startswith("penalty interest of"))
    return (f"{expired} offers expired; {len(loan_ids)} loans with instalments due looked at "
            f"({interest} interest and {penalty} penalty interest bookings), {changed} "
            f"changed: {overdue} instalments fell overdue, {defaulted} loans defaulted.")


def _register() -> None:
    from finance_app.daily import duty
    duty("financing")(daily)


_register()
