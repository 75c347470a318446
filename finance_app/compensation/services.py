"""The risk compensation fund: the platform operator's approvers make a fund (its share of
principal lost, cap per loan, budget, period and cover), top its budget up, pause, resume
and close it; a bank claims for one of its defaulted loans; the operator's approver
approves (the compensation is booked from the fund's available budget to a payable to the
bank, and a settlement record asks the platform to pay the bank) or rejects it; the claim
is paid when the bank confirms the transfer arrived.

The budget is a ledger balance with a floor of zero (``compensation.accounts``), so the
ledger itself refuses to spend more than it holds. Approvals lock the claim, then the
fund: approvals racing for the last of a budget queue on the fund's row and each reads
what the one before left. When less is left than the claim, the approval pays what is
left and records that the budget capped it. A loan has at most one live claim (a partial
unique index). Services never commit.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_DOWN, Decimal, localcontext
from typing import Any, Iterable

from flask_babel import gettext
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from finance_app import authz, clock
from finance_app.accounts.models import Organisation, User
from finance_app.accounts.notifications import notify
from finance_app.accounts.states import FilingStatus, OrgKind
from finance_app.audit import services as audit
from finance_app.compensation import accounts
from finance_app.compensation.models import (
    CompensationClaim, CompensationFund, CompensationStatusChange, FundBank, FundTopUp,
)
from finance_app.compensation.states import (
    LIVE_CLAIM, ClaimAction, ClaimStatus, FundAction, FundStatus,
)
from finance_app.errors import Conflict, NotFound, ValidationFailed
from finance_app.extensions import db
from finance_app.financing import accounts as loan_accounts
from finance_app.financing.models import FinancingProduct, Loan
from finance_app.financing.states import LoanStatus, ProductKind
from finance_app.ledger import services as ledger
from finance_app.ledger.models import LedgerAccount
from finance_app.ledger.rates import RateMissing, find_rate
from finance_app.money import Money, UnknownCurrency, minor_units, round_exact
from finance_app.settlement import accounts as platform_accounts
from finance_app.settlement import services as settlement
from finance_app.settlement.states import ObligationKind

# The share of the loss and its conversion are rounded down: the fund never pays a
# fraction of a minor unit more than its terms say.
COMPENSATION_ROUNDING = ROUND_DOWN
MAX_UNITS = 2**62


# --------------------------------------------------------------------------- input

def _text(value: Any, field: str, limit: int, *, required: bool = True) -> str | None:
    value = value.strip() if isinstance(value, str) else ""
    if required and not value:
        raise ValidationFailed(gettext("This field is required."), field=field)
    if len(value) > limit:
        raise ValidationFailed(gettext("At most %(n)s characters.", n=limit), field=field)
    return value or None


def _positive(value: Any, currency: str, field: str) -> Money:
    """An amount as typed (a Decimal or a string), exact to the currency's minor units and
    greater than zero."""
    if isinstance(value, Money):
        value = value.amount
    if isinstance(value, (float, bool)) or not isinstance(value, (Decimal, str, int)):
        raise ValidationFailed(gettext("Enter an amount such as 1234.50."), field=field)
    money = Money.of(value, currency, field=field)
    if money.amount <= 0:
        raise ValidationFailed(gettext("The amount must be greater than zero."), field=field)
    if money.to_minor() > MAX_UNITS:
        raise ValidationFailed(gettext("The amount is too large."), field=field)
    return money


def _share(value: Any) -> Decimal:
    """The share of principal lost: a fraction above 0 and at most 1, 4 decimals."""
    if isinstance(value, str):
        try:
            value = Decimal(value.strip())
        except ArithmeticError:
            value = None
    if isinstance(value, bool) or not isinstance(value, Decimal) or not value.is_finite():
        raise ValidationFailed(gettext("Enter the share as a fraction such as 0.5 for 50%%."),
                               field="share")
    if not Decimal(0) < value <= Decimal(1):
        raise ValidationFailed(gettext("The share of principal lost is more than 0%% and at "
                                       "most 100%%."), field="share")
    if value != value.quantize(Decimal("0.0001")):
        raise ValidationFailed(gettext("At most %(n)s decimals.", n=4), field="share")
    return value


def _currency(code: Any) -> str:
    code = code.strip().upper() if isinstance(code, str) else ""
    try:
        minor_units(code)
    except UnknownCurrency:
        raise ValidationFailed(gettext("'%(code)s' is not an ISO 4217 currency code.",
                                       code=code), field="currency") from None
    return code


def _pct(ratio: Decimal) -> str:
    return f"{(ratio * 100).normalize():f}%"


# --------------------------------------------------------------------------- lookups

def _get(model, object_id: Any, what: str, *, lock: bool):
    found = None
    if isinstance(object_id, int) and not isinstance(object_id, bool):
        query = select(model).where(model.id == object_id)
        if lock:
            query = query.with_for_update().execution_options(populate_existing=True)
        found = db.session.execute(query).scalar_one_or_none()
    if found is None:
        raise NotFound(what, object_id)
    return found


def get_fund(fund_id: int, *, actor: User | None = None, lock: bool = False
             ) -> CompensationFund:
    fund = _get(CompensationFund, fund_id, "fund", lock=lock)
    if actor is not None and not authz.can(actor, "compensation.read_fund", fund):
        raise NotFound("fund", fund_id)
    return fund


def get_claim(claim_id: int, *, actor: User | None = None, lock: bool = False
              ) -> CompensationClaim:
    claim = _get(CompensationClaim, claim_id, "claim", lock=lock)
    if actor is not None and not authz.can(actor, "compensation.read_claim", claim):
        raise NotFound("claim", claim_id)
    return claim


def history(subject: str, subject_id: int) -> list[CompensationStatusChange]:
    return list(db.session.execute(select(CompensationStatusChange).where(
        CompensationStatusChange.subject == subject,
        CompensationStatusChange.subject_id == subject_id)
        .order_by(CompensationStatusChange.id)).scalars())


# --------------------------------------------------------------------------- funds

@dataclass(frozen=True)
class FundTerms:
    name: str
    currency: str
    share: Decimal | str               # a fraction: 0.5 is 50 % of the principal lost
    cap_per_loan: Decimal | str
    budget: Decimal | str
    start_date: date
    end_date: date
    bank_org_ids: tuple[int, ...] = ()     # none: every bank
    product_kinds: tuple[str, ...] = ()    # none: every kind of financing


def _banks(ids: Iterable[Any]) -> list[int]:
    checked: list[int] = []
    for org_id in ids or ():
        org = db.session.get(Organisation, org_id) if isinstance(org_id, int) \
            and not isinstance(org_id, bool) else None
        if org is None or org.kind is not OrgKind.BANK \
                or org.filing_status is not FilingStatus.APPROVED:
            raise ValidationFailed(gettext("Choose banks whose filing is approved."),
                                   field="bank_org_ids")
        if org.id not in checked:
            checked.append(org.id)
    return checked


def _kinds(kinds: Iterable[Any]) -> list[str]:
    checked: list[str] = []
    for kind in kinds or ():
        try:
            value = ProductKind(kind).value
        except ValueError:
            raise ValidationFailed(gettext("Choose kinds of financing the platform offers."),
                                   field="product_kinds") from None
        if value not in checked:
            checked.append(value)
    return checked


def create_fund(terms: FundTerms, *, actor: User) -> CompensationFund:
    """The operator's approver makes a fund and funds its budget from the platform."""
    authz.require(actor, "compensation.manage", hide=False)
    name = _text(terms.name, "name", 200)
    if db.session.execute(select(CompensationFund.id).where(
            CompensationFund.name == name)).first():
        raise Conflict(gettext("A fund with that name exists already."), field="name")
    currency = _currency(terms.currency)
    share = _share(terms.share)
    cap = _positive(terms.cap_per_loan, currency, "cap_per_loan")
    budget = _positive(terms.budget, currency, "budget")
    start, end = terms.start_date, terms.end_date
    if not isinstance(start, date):
        raise ValidationFailed(gettext("Enter the date as YYYY-MM-DD."), field="start_date")
    if not isinstance(end, date):
        raise ValidationFailed(gettext("Enter the date as YYYY-MM-DD."), field="end_date")
    if end < start:
        raise ValidationFailed(gettext("The period ends before it starts."), field="end_date")
    if end < clock.today():
        raise ValidationFailed(gettext("The period is over already."), field="end_date")
    banks, kinds = _banks(terms.bank_org_ids), _kinds(terms.product_kinds)
    fund = CompensationFund(
        name=name, operator_org_id=actor.org_id, currency=currency, share=share,
        cap_per_loan_amount=cap.to_minor(), start_date=start, end_date=end,
        product_kinds=",".join(kinds), status=FundStatus.ACTIVE, status_changed_at=clock.now(),
        created_at=clock.now(), created_by_id=actor.id)
    fund.banks = [FundBank(bank_org_id=b) for b in banks]
    db.session.add(fund)
    try:
        with db.session.begin_nested():
            db.session.flush()
    except IntegrityError:
        raise Conflict(gettext("A fund with that name exists already."), field="name") from None
    fund.start(FundAction.CREATE, FundStatus.ACTIVE, actor=actor)
    audit.record("compensation.fund_terms", actor=actor, obj=fund, changes={
        "name": name, "currency": currency, "share": share, "cap_per_loan": str(cap),
        "budget": str(budget), "period": [start, end], "banks": banks, "product_kinds": kinds})
    _fund_budget(fund, budget, actor=actor, note=gettext("Initial budget"))
    return fund


def _fund_budget(fund: CompensationFund, amount: Money, *, actor: User, note: str | None
                 ) -> FundTopUp:
    number = db.session.execute(select(func.count(FundTopUp.id)).where(
        FundTopUp.fund_id == fund.id)).scalar_one() + 1
    transaction = ledger.book(
        [ledger.debit(accounts.fund_account(fund, accounts.BUDGET), amount),
         ledger.credit(accounts.fund_account(fund, accounts.AVAILABLE), amount)],
        key=f"compensation-fund-{fund.id}-budget-{number}", kind="compensation_budget",
        org_id=fund.operator_org_id, actor=actor, reference=("compensation_fund", fund.id),
        description=f"Compensation fund {fund.id} budget +{amount}")
    top_up = FundTopUp(fund_id=fund.id, currency=fund.currency, amount=amount.to_minor(),
                       ledger_transaction_id=transaction.id, note=note,
                       created_at=clock.now(), created_by_id=actor.id)
    db.session.add(top_up)
    db.session.flush()
    audit.record("compensation.fund_top_up", actor=actor, obj=fund,
                 changes={"amount": str(amount), "ledger_transaction_id": transaction.id,
                          "note": note})
    return top_up


def top_up(fund_id: int, *, actor: User, amount: Any, note: str | None = None) -> FundTopUp:
    """The platform puts more money into a fund's budget (not once it is closed)."""
    authz.require(actor, "compensation.manage", hide=False)
    fund = get_fund(fund_id, actor=actor, lock=True)
    if fund.status is FundStatus.CLOSED:
        raise Conflict(gettext("The fund is closed."), field="fund_id")
    money = _positive(amount, fund.currency, "amount")
    return _fund_budget(fund, money, actor=actor, note=_text(note, "note", 500, required=False))


def change_fund_status(fund_id: int, action: FundAction | str, *, actor: User,
                       note: str | None = None) -> CompensationFund:
    """Pause (no new claims), resume or close a fund; a fund with claims awaiting a
    decision is not closed."""
    authz.require(actor, "compensation.manage", hide=False)
    try:
        action = FundAction(action)
    except ValueError:
        raise ValidationFailed(gettext("Choose pause, resume or close."),
                               field="action") from None
    if action is FundAction.CREATE:
        raise ValidationFailed(gettext("Choose pause, resume or close."), field="action")
    fund = get_fund(fund_id, actor=actor, lock=True)
    note = _text(note, "note", 1000, required=False)
    if action is FundAction.CLOSE and db.session.execute(select(CompensationClaim.id).where(
            CompensationClaim.fund_id == fund.id,
            CompensationClaim.status == ClaimStatus.SUBMITTED)).first():
        raise Conflict(gettext("Decide the claims awaiting a decision before closing the "
                               "fund."), field="action")
    fund.apply(action, actor=actor, note=note)
    return fund


# --------------------------------------------------------------------------- figures

@dataclass(frozen=True)
class FundFigures:
    budget: Money            # what the platform has put in (the budget account)
    topped_up: Money         # the sum of the top-ups
    approved: Money          # approved compensation not yet paid
    paid: Money              # compensation paid to banks
    remaining: Money         # the available account
    payable: Money           # the payable account

    @property
    def spent(self) -> Money:
        return self.approved + self.paid

    @property
    def problems(self) -> list[str]:
        found = []
        if self.remaining != self.budget - self.spent:
            found.append(f"remaining {self.remaining} is not budget {self.budget} less "
                         f"approved and paid {self.spent}")
        if self.budget != self.topped_up:
            found.append(f"budget {self.budget} is not the top-ups' {self.topped_up}")
        if self.payable != self.approved:
            found.append(f"payable {self.payable} is not the approved, unpaid "
                         f"{self.approved}")
        return found

    @property
    def reconciled(self) -> bool:
        return not self.problems


def _fresh(account: LedgerAccount) -> LedgerAccount:
    return db.session.execute(select(LedgerAccount).where(LedgerAccount.id == account.id)
                              .execution_options(populate_existing=True)).scalar_one()


def figures(fund: CompensationFund) -> FundFigures:
    """The fund's budget, what is approved, paid and left, from the ledger and the claims,
    and whether they agree."""
    def total(model, column, *where) -> Money:
        units = db.session.execute(select(func.coalesce(func.sum(column), 0)).where(
            model.fund_id == fund.id, *where)).scalar_one()
        return Money.from_minor(int(units), fund.currency)

    def balance(purpose: str) -> Money:
        return ledger.balance(_fresh(accounts.fund_account(fund, purpose)))

    return FundFigures(
        budget=balance(accounts.BUDGET), topped_up=total(FundTopUp, FundTopUp.amount),
        approved=total(CompensationClaim, CompensationClaim.compensation_amount,
                       CompensationClaim.status == ClaimStatus.APPROVED),
        paid=total(CompensationClaim, CompensationClaim.compensation_amount,
                   CompensationClaim.status == ClaimStatus.PAID),
        remaining=balance(accounts.AVAILABLE), payable=balance(accounts.PAYABLE))


def reconcile() -> dict[int, list[str]]:
    """Every fund whose ledger and claims disagree, with what disagrees."""
    found = {}
    for fund in db.session.execute(select(CompensationFund).order_by(
            CompensationFund.id)).scalars():
        problems = figures(fund).problems
        if problems:
            found[fund.id] = problems
    return found


# --------------------------------------------------------------------------- claims

@dataclass(frozen=True)
class Assessment:
    principal_lost: Money    # the loan's currency
    share_amount: Money      # share x principal lost, rounded down
    converted: Money         # that in the fund's currency, rounded down
    claimed: Money           # within the cap per loan
    capped_by_loan_cap: bool
    fx_note: str | None


def principal_lost(loan: Loan) -> Money:
    """The loan's principal outstanding: the balance of its principal account."""
    return ledger.balance(_fresh(loan_accounts.loan_account(loan, loan_accounts.PRINCIPAL)))


def assess(fund: CompensationFund, loan: Loan, on: date | None = None) -> Assessment:
    """What the fund would pay for this loan today: min(share x principal lost, the cap
    per loan), in the fund's currency at the day's rate (a missing rate is an error)."""
    lost = principal_lost(loan)
    with localcontext(prec=60):
        share_amount = round_exact(lost.amount * fund.share, loan.currency,
                                   COMPENSATION_ROUNDING)
    converted, note = share_amount, None
    if loan.currency != fund.currency:
        try:
            quote = find_rate(loan.currency, fund.currency, on or clock.today())
        except RateMissing:
            raise RateMissing(gettext(
                "There is no %(base)s/%(quote)s exchange rate for %(day)s, so the loan's loss "
                "cannot be converted into the fund's currency.", base=loan.currency,
                quote=fund.currency, day=(on or clock.today()).isoformat()),
                field="fund_id") from None
        with localcontext(prec=60):
            converted = round_exact(share_amount.amount * quote.rate, fund.currency,
                                    COMPENSATION_ROUNDING)
        note = (f"1 {quote.base} = {quote.rate.normalize():f} {quote.quote} "
                f"({quote.rate_date})")
    capped = converted > fund.cap_per_loan
    return Assessment(lost, share_amount, converted, fund.cap_per_loan if capped else converted,
                      capped, note)


def covers(fund: CompensationFund, loan: Loan) -> str | None:
    """Why the fund does not cover this loan (``None``: it does)."""
    if fund.bank_org_ids and loan.bank_org_id not in fund.bank_org_ids:
        return gettext("The fund does not cover loans of this bank.")
    if fund.kinds:
        kind = db.session.execute(select(FinancingProduct.kind).where(
            FinancingProduct.id == loan.product_id)).scalar_one()
        if kind.value not in fund.kinds:
            return gettext("The fund does not cover this kind of financing.")
    return None


def live_claim(loan_id: int) -> CompensationClaim | None:
    return db.session.execute(select(CompensationClaim).where(
        CompensationClaim.loan_id == loan_id,
        CompensationClaim.status.in_(LIVE_CLAIM))).scalar_one_or_none()


def _duplicate() -> Conflict:
    return Conflict(gettext("This loan already has a compensation claim."), field="loan_id")


def submit_claim(*, actor: User, fund_id: int, loan_id: int) -> CompensationClaim:
    """A bank claims against an active fund for one of its defaulted loans: the principal
    lost is the loan's principal outstanding now."""
    authz.require(actor, "compensation.file", hide=False)
    loan = db.session.get(Loan, loan_id) if isinstance(loan_id, int) \
        and not isinstance(loan_id, bool) else None
    if loan is None or not authz.can(actor, "compensation.claim", loan):
        # one answer whether the loan is missing or another bank's
        raise ValidationFailed(gettext("No loan of your bank with that id."), field="loan_id")
    try:
        fund = get_fund(fund_id, actor=actor)
    except NotFound:
        raise ValidationFailed(gettext("No such fund."), field="fund_id") from None
    if fund.status is not FundStatus.ACTIVE:
        raise Conflict(gettext("The fund is %(status)s and takes no claims.",
                               status=fund.status.value), field="fund_id")
    today = clock.today()
    if not fund.start_date <= today <= fund.end_date:
        raise Conflict(gettext("The fund takes claims from %(start)s to %(end)s.",
                               start=fund.start_date.isoformat(),
                               end=fund.end_date.isoformat()), field="fund_id")
    if loan.status is not LoanStatus.DEFAULTED:
        raise ValidationFailed(gettext("Only a defaulted loan can be claimed for; this one is "
                                       "%(status)s.", status=loan.status.value.replace("_", " ")),
                               field="loan_id")
    why = covers(fund, loan)
    if why:
        raise ValidationFailed(why, field="fund_id")
    if live_claim(loan.id) is not None:
        raise _duplicate()
    assessment = assess(fund, loan, today)
    if assessment.principal_lost.amount <= 0:
        raise ValidationFailed(gettext("No principal is outstanding on this loan."),
                               field="loan_id")
    if assessment.claimed.amount <= 0:
        raise ValidationFailed(gettext("The compensation would be less than the smallest "
                                       "unit of the fund's currency."), field="loan_id")
    claim = CompensationClaim(
        fund_id=fund.id, operator_org_id=fund.operator_org_id, loan_id=loan.id,
        bank_org_id=loan.bank_org_id, sme_org_id=loan.sme_org_id, loan_currency=loan.currency,
        principal_lost_amount=assessment.principal_lost.to_minor(), share=fund.share,
        share_amount=assessment.share_amount.to_minor(), currency=fund.currency,
        converted_amount=assessment.converted.to_minor(),
        claimed_amount=assessment.claimed.to_minor(),
        capped_by_loan_cap=assessment.capped_by_loan_cap, fx_note=assessment.fx_note,
        filed_on=today, status=ClaimStatus.SUBMITTED, status_changed_at=clock.now(),
        created_at=clock.now(), created_by_id=actor.id)
    try:
        with db.session.begin_nested():
            db.session.add(claim)
            db.session.flush()
    except IntegrityError:
        raise _duplicate() from None
    claim.start(ClaimAction.SUBMIT, ClaimStatus.SUBMITTED, actor=actor,
                note=f"principal lost {assessment.principal_lost}")
    notify(fund.operator_org_id, "compensation.claim_submitted",
           dedupe_key=f"compensation:{claim.id}:submitted", link=f"/compensation/claims/{claim.id}",
           bank=actor.organisation.name, loan=loan.id, amount=str(assessment.claimed),
           fund=fund.name)
    return claim


def _decide(claim_id: int, actor: User) -> CompensationClaim:
    authz.require(actor, "compensation.manage", hide=False)
    return get_claim(claim_id, actor=actor, lock=True)


def approve_claim(claim_id: int, *, actor: User, note: str | None = None) -> CompensationClaim:
    """In one transaction: the compensation is booked from the fund's available budget to
    the payable to the bank, and a settlement record asks the platform to pay the bank.
    With less left than claimed it pays what is left (``capped_by_budget``)."""
    claim = _decide(claim_id, actor)
    fund = get_fund(claim.fund_id, lock=True)
    if claim.status is not ClaimStatus.SUBMITTED:
        claim.apply(ClaimAction.APPROVE, actor=actor)     # refuses, by name
    if fund.status is FundStatus.CLOSED:
        raise Conflict(gettext("The fund is closed."), field="claim_id")
    note = _text(note, "note", 1000, required=False)
    available = _fresh(accounts.fund_account(fund, accounts.AVAILABLE))
    left = ledger.available(available)
    if left.amount <= 0:
        raise Conflict(gettext("The fund's budget is used up."), field="claim_id")
    amount, capped = claim.claimed, False
    if amount > left:
        amount, capped = left, True
    payable = accounts.fund_account(fund, accounts.PAYABLE)
    transaction = ledger.book(
        [ledger.debit(available, amount), ledger.credit(payable, amount)],
        key=f"compensation-claim-{claim.id}", kind="compensation", org_id=fund.operator_org_id,
        actor=actor, reference=("compensation_claim", claim.id),
        description=f"Compensation, fund {fund.id}, loan {claim.loan_id}")
    record = settlement.create_record(
        ObligationKind.COMPENSATION, payer_org_id=fund.operator_org_id,
        payee_org_id=claim.bank_org_id, amount=amount, debit_account=payable,
        credit_account=platform_accounts.platform_bank(fund.currency),
        key=f"compensation:claim:{claim.id}",
        description=f"Risk compensation, {fund.name}, loan {claim.loan_id}",
        reference=f"compensation:{claim.id}", actor=actor)
    claim.compensation_amount, claim.capped_by_budget = amount.to_minor(), capped
    claim.ledger_transaction_id, claim.settlement_id = transaction.id, record.id
    claim.reason, claim.decided_by_id = note, actor.id
    claim.apply(ClaimAction.APPROVE, actor=actor, note=note or (
        f"capped by the remaining budget {left}" if capped else None))
    db.session.flush()
    notify(claim.bank_org_id, "compensation.claim_approved",
           dedupe_key=f"compensation:{claim.id}:approved",
           link=f"/compensation/claims/{claim.id}", loan=claim.loan_id, amount=str(amount),
           fund=fund.name)
    return claim


def reject_claim(claim_id: int, *, actor: User, reason: str) -> CompensationClaim:
    claim = _decide(claim_id, actor)
    reason = _text(reason, "reason", 1000)
    claim.apply(ClaimAction.REJECT, actor=actor, note=reason)
    claim.reason, claim.decided_by_id = reason, actor.id
    notify(claim.bank_org_id, "compensation.claim_rejected",
           dedupe_key=f"compensation:{claim.id}:rejected",
           link=f"/compensation/claims/{claim.id}", loan=claim.loan_id, reason=reason)
    return claim


def withdraw_claim(claim_id: int, *, actor: User) -> CompensationClaim:
    """The bank takes back a claim not yet decided."""
    claim = get_claim(claim_id, actor=actor, lock=True)
    authz.require(actor, "compensation.withdraw", claim, hide=False)
    claim.apply(ClaimAction.WITHDRAW, actor=actor)
    return claim


@settlement.on_paid("compensation")
def _compensation_paid(record, actor: User | None) -> None:
    claim = db.session.execute(select(CompensationClaim).where(
        CompensationClaim.settlement_id == record.id).with_for_update()).scalar_one_or_none()
    if claim is not None and claim.status is ClaimStatus.APPROVED:
        claim.apply(ClaimAction.PAY, actor=actor, note=record.bank_reference)


# --------------------------------------------------------------------------- lists

def funds(user: User) -> list[CompensationFund]:
    """The funds ``user`` may see: all for the operator, those covering a bank for it."""
    found = db.session.execute(select(CompensationFund).order_by(
        CompensationFund.id.desc())).scalars()
    return [f for f in found if authz.can(user, "compensation.read_fund", f)]


def claims(user: User, *, fund_id: int | None = None, status: ClaimStatus | None = None,
           limit: int = 200) -> list[CompensationClaim]:
    query = select(CompensationClaim).order_by(CompensationClaim.id.desc()).limit(limit)
    if user.organisation.kind is not OrgKind.PLATFORM_OPERATOR:
        query = query.where(CompensationClaim.bank_org_id == user.org_id)
    if fund_id is not None:
        query = query.where(CompensationClaim.fund_id == fund_id)
    if status is not None:
        query = query.where(CompensationClaim.status == status)
    return list(db.session.execute(query).scalars())


def defaulted_loans(bank_org_id: int) -> list[Loan]:
    """A bank's defaulted loans, newest first (with or without a claim)."""
    return list(db.session.execute(select(Loan).where(
        Loan.bank_org_id == bank_org_id, Loan.status == LoanStatus.DEFAULTED)
        .order_by(Loan.id.desc())).scalars())


def _register_messages() -> None:
    from flask_babel import lazy_gettext as _l

    from finance_app.accounts.notifications import register_messages
    register_messages({
        "compensation.claim_submitted": _l("%(bank)s claims %(amount)s from %(fund)s for "
                                           "defaulted loan %(loan)s."),
        "compensation.claim_approved": _l("Your claim for loan %(loan)s is approved: "
                                          "%(amount)s from %(fund)s; confirm the transfer "
                                          "when it arrives."),
        "compensation.claim_rejected": _l("Your compensation claim for loan %(loan)s was "
                                          "rejected: %(reason)s"),
    })


_register_messages()
