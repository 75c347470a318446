"""What the platform operator checks to know that the books and the business agree.

* **Clearing accounts** that should come back to zero: each with its balance and what
  explains it (for the Stripe clearing account: the card payments taken but not yet paid
  out to their payees); any difference is a break.
* **Business records without their ledger transaction** (a paid settlement record with no
  booking, or a booking with no paid record), from every domain that registers a check.
* **The ledger itself**: every currency sums to zero over all accounts, and each account's
  stored balance equals the sum of its entries.
* **External instructions** the outbox gave up on.

Domains add their own checks with ``@check``; each returns ``Break`` rows.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, func, select

from finance_app.extensions import db
from finance_app.ledger.models import LedgerAccount, LedgerEntry, LedgerTransaction
from finance_app.ledger.states import EntryPhase
from finance_app.money import Money
from finance_app.outbox import OutboxMessage, OutboxStatus
from finance_app.settlement import accounts
from finance_app.settlement.models import SettlementRecord
from finance_app.settlement.states import SettlementMethod, SettlementStatus


@dataclass(frozen=True)
class ClearingRow:
    account: LedgerAccount
    balance: Money
    explained: Money
    explanation: str

    @property
    def difference(self) -> Money:
        return self.balance - self.explained


@dataclass(frozen=True)
class Break:
    area: str
    subject: str          # e.g. "settlement 12"
    problem: str
    link: str | None = None


CHECKS: list[Callable[[], list[Break]]] = []


def check(fn: Callable[[], list[Break]]) -> Callable[[], list[Break]]:
    CHECKS.append(fn)
    return fn


def clearing() -> list[ClearingRow]:
    rows = []
    query = select(LedgerAccount).where(LedgerAccount.purpose.in_(accounts.CLEARING_PURPOSES),
                                        LedgerAccount.org_id.is_(None)).order_by(
        LedgerAccount.purpose, LedgerAccount.currency)
    for account in db.session.execute(query).scalars():
        awaiting = db.session.execute(select(func.coalesce(func.sum(SettlementRecord.amount), 0))
                                      .where(SettlementRecord.currency == account.currency,
                                             SettlementRecord.method == SettlementMethod.CARD,
                                             SettlementRecord.status == SettlementStatus.PAID,
                                             SettlementRecord.remittance_transaction_id.is_(None))
                                      ).scalar_one()
        rows.append(ClearingRow(account, account.balance_money,
                                Money.from_minor(int(awaiting), account.currency),
                                str(_l("card payments taken, not yet paid out"))))
    return rows


@check
def _settlements() -> list[Break]:
    breaks = []
    paid_without = select(SettlementRecord.id).where(
        SettlementRecord.status == SettlementStatus.PAID,
        SettlementRecord.ledger_transaction_id.is_(None))
    for record_id in db.session.execute(paid_without).scalars():
        breaks.append(Break("settlement", f"payment {record_id}",
                            str(_l("paid, but no ledger transaction books it")),
                            f"/settlement/{record_id}"))
    booked_unpaid = (select(LedgerTransaction.id, LedgerTransaction.reference_id)
                     .join(SettlementRecord, and_(
                         LedgerTransaction.reference_kind == "settlement",
                         SettlementRecord.id == LedgerTransaction.reference_id))
                     .where(LedgerTransaction.idempotency_key.like("settlement-%-payment"),
                            SettlementRecord.status != SettlementStatus.PAID))
    for transaction_id, record_id in db.session.execute(booked_unpaid):
        breaks.append(Break("settlement", f"payment {record_id}",
                            str(_l("booked by transaction %(id)s, but not paid", id=transaction_id)),
                            f"/settlement/{record_id}"))
    orphan = (select(LedgerTransaction.id, LedgerTransaction.reference_id)
              .outerjoin(SettlementRecord, SettlementRecord.id == LedgerTransaction.reference_id)
              .where(LedgerTransaction.reference_kind == "settlement",
                     SettlementRecord.id.is_(None)))
    for transaction_id, record_id in db.session.execute(orphan):
        breaks.append(Break("settlement", f"transaction {transaction_id}",
                            str(_l("points at payment %(id)s, which does not exist", id=record_id)),
                            f"/ledger/transactions/{transaction_id}"))
    return breaks


@check
def _ledger() -> list[Break]:
    breaks = []
    sums = db.session.execute(select(LedgerAccount.currency, func.sum(LedgerAccount.balance))
                              .group_by(LedgerAccount.currency)
                              .having(func.sum(LedgerAccount.balance) != 0))
    for currency, total in sums:
        breaks.append(Break("ledger", currency, str(_l(
            "all balances together come to %(total)s, not zero",
            total=str(Money.from_minor(int(total), currency))))))
    entry_sums = (select(LedgerEntry.account_id, func.sum(LedgerEntry.amount).label("total"))
                  .where(LedgerEntry.phase == EntryPhase.POSTED)
                  .group_by(LedgerEntry.account_id).subquery())
    off = (select(LedgerAccount.id, LedgerAccount.balance, entry_sums.c.total)
           .outerjoin(entry_sums, entry_sums.c.account_id == LedgerAccount.id)
           .where(LedgerAccount.balance != func.coalesce(entry_sums.c.total, 0)))
    for account_id, balance, total in db.session.execute(off):
        breaks.append(Break("ledger", f"account {account_id}", str(_l(
            "stored balance %(balance)s, entries sum to %(total)s", balance=balance,
            total=int(total or 0))), f"/ledger/accounts/{account_id}"))
    return breaks


@check
def _outbox() -> list[Break]:
    query = select(OutboxMessage).where(OutboxMessage.status == OutboxStatus.FAILED)
    return [Break("outbox", f"{m.topic} {m.id}",
                  str(_l("given up after %(n)s attempts: %(error)s", n=m.attempts,
                         error=m.last_error or "")))
            for m in db.session.execute(query.order_by(OutboxMessage.id)).scalars()]


def breaks() -> list[Break]:
    return [b for fn in CHECKS for b in fn()]


def pending_outbox() -> int:
    return db.session.execute(select(func.count(OutboxMessage.id)).where(
        OutboxMessage.status == OutboxStatus.PENDING)).scalar_one()
