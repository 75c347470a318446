"""The ledger accounts a compensation fund books through, opened on first use.

A fund has three, in its currency, kept in the platform operator's books: its budget
(what the platform has put in, debited by each top-up), what is available of it (credited
by top-ups, debited by each approved compensation; never below zero, so the ledger itself
refuses to spend more than the budget) and what is payable to banks (credited by each
approved compensation, debited when the platform's transfer to the bank is confirmed,
which is paid out of the platform's bank account).
"""
from __future__ import annotations

from finance_app.ledger import services as ledger
from finance_app.ledger.models import LedgerAccount
from finance_app.ledger.states import AccountType, OwnerKind
from finance_app.money import Money

BUDGET = "fund_budget"
AVAILABLE = "fund_available"
PAYABLE = "fund_payable"

_FUND = {
    BUDGET: (AccountType.ASSET, "budget"),
    AVAILABLE: (AccountType.LIABILITY, "budget available"),
    PAYABLE: (AccountType.LIABILITY, "compensation payable to banks"),
}


def fund_account(fund, purpose: str) -> LedgerAccount:
    type_, name = _FUND[purpose]
    floor = Money.from_minor(0, fund.currency) if purpose == AVAILABLE else None
    return ledger.account(owner_kind=OwnerKind.FUND, org_id=fund.operator_org_id,
                          owner_id=fund.id, purpose=purpose, currency=fund.currency,
                          type=type_, min_balance=floor,
                          name=f"Compensation fund {fund.id} {name} {fund.currency}")
