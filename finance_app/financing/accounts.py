"""The ledger accounts financing books through, opened on first use.

A loan's accounts belong to the loan (kept in its bank's books): the principal the SME
owes, interest and penalty interest fallen due and unpaid, repayments received and not yet
applied, and the disbursement owed to the SME until it is paid. The bank's own accounts
per currency: its lending settlement account (money lent out and repaid), and its interest,
penalty and fee income. A facility has three: its limit, what is available of it (never
below zero, so a loan beyond it is refused by the ledger), and what is used.
"""
from __future__ import annotations

from sqlalchemy import select

from finance_app.extensions import db
from finance_app.ledger import services as ledger
from finance_app.ledger.models import LedgerAccount
from finance_app.ledger.states import AccountType, OwnerKind
from finance_app.money import Money

PRINCIPAL = "loan_principal"
INTEREST = "loan_interest"
PENALTY = "loan_penalty"
UNAPPLIED = "loan_unapplied"
DISBURSEMENT = "loan_disbursement"
LENDING_CASH = "lending_cash"
INTEREST_INCOME = "interest_income"
PENALTY_INCOME = "penalty_income"
FEE_INCOME = "lending_fee_income"
FACILITY_LIMIT = "facility_limit"
FACILITY_AVAILABLE = "facility_available"
FACILITY_USED = "facility_used"

_LOAN = {
    PRINCIPAL: (AccountType.ASSET, "Loan {id} principal outstanding"),
    INTEREST: (AccountType.ASSET, "Loan {id} interest due"),
    PENALTY: (AccountType.ASSET, "Loan {id} penalty interest due"),
    UNAPPLIED: (AccountType.LIABILITY, "Loan {id} repayments received, not yet applied"),
    DISBURSEMENT: (AccountType.LIABILITY, "Loan {id} disbursement owed to the borrower"),
}
_BANK = {
    LENDING_CASH: (AccountType.ASSET, "Lending settlement account"),
    INTEREST_INCOME: (AccountType.INCOME, "Interest income"),
    PENALTY_INCOME: (AccountType.INCOME, "Penalty interest income"),
    FEE_INCOME: (AccountType.INCOME, "Lending fee income"),
}


def _loan_spec(loan, purpose: str, currency: str | None = None) -> ledger.AccountSpec:
    type_, name = _LOAN[purpose]
    currency = currency or loan.currency
    return ledger.AccountSpec(owner_kind=OwnerKind.LOAN, org_id=loan.bank_org_id,
                              owner_id=loan.id, purpose=purpose, currency=currency,
                              type=type_, name=f"{name.format(id=loan.id)} {currency}")


def _bank_spec(bank_org_id: int, purpose: str, currency: str) -> ledger.AccountSpec:
    type_, name = _BANK[purpose]
    return ledger.AccountSpec(owner_kind=OwnerKind.ORGANISATION, org_id=bank_org_id,
                              purpose=purpose, currency=currency, type=type_,
                              name=f"{name} {currency}")


def loan_account(loan, purpose: str, currency: str | None = None) -> LedgerAccount:
    spec = _loan_spec(loan, purpose, currency)
    return ledger.account(owner_kind=spec.owner_kind, org_id=spec.org_id,
                          owner_id=spec.owner_id, purpose=purpose, currency=spec.currency,
                          type=spec.type, name=spec.name)


def bank_account(bank_org_id: int, purpose: str, currency: str) -> LedgerAccount:
    spec = _bank_spec(bank_org_id, purpose, currency)
    return ledger.account(owner_kind=spec.owner_kind, org_id=bank_org_id, purpose=purpose,
                          currency=currency, type=spec.type, name=spec.name)


def open_for_loans(loan_purposes, bank_purposes) -> dict[tuple, LedgerAccount]:
    """The accounts of many loans at once, opened where missing (``ledger.open_accounts``):
    by ``(loan id, purpose)`` for the ``(loan, purpose)`` pairs of ``loan_purposes``, and
    by ``(bank org id, purpose, currency)`` for the triples of ``bank_purposes``."""
    specs = {(loan.id, purpose): _loan_spec(loan, purpose) for loan, purpose in loan_purposes}
    specs.update({key: _bank_spec(*key) for key in bank_purposes})
    opened = ledger.open_accounts(specs.values())
    return {key: opened[spec.ident] for key, spec in specs.items()}


def open_facility_accounts(facilities) -> dict[tuple[int, str], LedgerAccount]:
    """The facility accounts already open for these facilities, in one query, by
    (facility id, purpose); ``facility_account`` opens one that is missing."""
    by_key = {ledger.owner_key(OwnerKind.FACILITY, f.bank_org_id, f.id): f for f in facilities}
    if not by_key:
        return {}
    found = db.session.execute(select(LedgerAccount).where(
        LedgerAccount.owner_key.in_(by_key),
        LedgerAccount.purpose.in_([FACILITY_LIMIT, FACILITY_AVAILABLE, FACILITY_USED])
    )).scalars()
    return {(by_key[a.owner_key].id, a.purpose): a for a in found
            if a.currency == by_key[a.owner_key].currency}


def facility_account(facility, purpose: str) -> LedgerAccount:
    currency = facility.currency
    if purpose == FACILITY_LIMIT:
        type_, name, floor = AccountType.ASSET, "limit", None
    elif purpose == FACILITY_AVAILABLE:
        type_, name, floor = AccountType.LIABILITY, "available", Money.from_minor(0, currency)
    else:
        type_, name, floor = AccountType.LIABILITY, "used", None
    return ledger.account(owner_kind=OwnerKind.FACILITY, org_id=facility.bank_org_id,
                          owner_id=facility.id, purpose=purpose, currency=currency,
                          type=type_, min_balance=floor,
                          name=f"Facility {facility.id} {name} {currency}")

