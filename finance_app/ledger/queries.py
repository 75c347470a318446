"""Reading the ledger, scoped to who asks: accounts, their entries, transactions,
balances per currency and statements. Nothing here changes the database.

An organisation sees the accounts kept in its name (``org_id``: its own, and those of
its loans, facilities and policies) and the transactions that touch them; the platform
operator sees everything, the platform's own accounts included.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Iterator

from sqlalchemy import Select, func, select

from finance_app import authz
from finance_app.accounts.models import User
from finance_app.accounts.states import OrgKind
from finance_app.extensions import db
from finance_app.ledger.models import LedgerAccount, LedgerEntry, LedgerTransaction
from finance_app.ledger.states import EntryPhase
from finance_app.money import Money
from finance_app.paging import Page, paginate


def _is_operator(user: User) -> bool:
    return user.organisation.kind is OrgKind.PLATFORM_OPERATOR


def visible_accounts(user: User) -> Select:
    query = select(LedgerAccount)
    if not _is_operator(user):
        query = query.where(LedgerAccount.org_id == user.org_id)
    return query


@dataclass(frozen=True)
class AccountFilters:
    currency: str | None = None
    purpose: str | None = None
    owner: str | None = None     # "platform" (operator only) or "organisation"


def accounts(user: User, filters: AccountFilters = AccountFilters(), *, page: int = 1
             ) -> Page[LedgerAccount]:
    query = visible_accounts(user)
    if filters.currency:
        query = query.where(LedgerAccount.currency == filters.currency)
    if filters.purpose:
        query = query.where(LedgerAccount.purpose == filters.purpose)
    if filters.owner == "platform":
        query = query.where(LedgerAccount.org_id.is_(None))
    elif filters.owner == "organisation":
        query = query.where(LedgerAccount.org_id.is_not(None))
    return paginate(query.order_by(LedgerAccount.currency, LedgerAccount.purpose,
                                   LedgerAccount.id), page)


def get_account(account_id: int, *, actor: User) -> LedgerAccount:
    account = db.session.get(LedgerAccount, account_id)
    if account is None:
        from finance_app.errors import NotFound
        raise NotFound("account", account_id)
    authz.require(actor, "ledger.read_account", account)
    return account


@dataclass(frozen=True)
class CurrencyTotal:
    currency: str
    accounts: int
    balance: Money        # sum of normal balances
    pending_in: Money
    pending_out: Money


def totals_by_currency(user: User) -> list[CurrencyTotal]:
    """Per currency, the organisation's accounts and the sum of their balances (each in
    its normal direction: what the organisation holds or owes on that account)."""
    rows: dict[str, list[int]] = {}
    for account in db.session.execute(visible_accounts(user)).scalars():
        row = rows.setdefault(account.currency, [0, 0, 0, 0])
        row[0] += 1
        row[1] += account.normal_balance
        incoming = account.pending_debits if account.type.debit_normal else account.pending_credits
        outgoing = account.pending_credits if account.type.debit_normal else account.pending_debits
        row[2] += incoming
        row[3] += outgoing
    return [CurrencyTotal(c, r[0], Money.from_minor(r[1], c), Money.from_minor(r[2], c),
                          Money.from_minor(r[3], c)) for c, r in sorted(rows.items())]


# --------------------------------------------------------------------------- entries

@dataclass(frozen=True)
class EntryFilters:
    date_from: date | None = None
    date_to: date | None = None
    kind: str | None = None


def _entries_query(account: LedgerAccount, filters: EntryFilters) -> Select:
    query = (select(LedgerEntry, LedgerTransaction)
             .join(LedgerTransaction, LedgerTransaction.id == LedgerEntry.transaction_id)
             .where(LedgerEntry.account_id == account.id,
                    LedgerEntry.phase == EntryPhase.POSTED))
    if filters.date_from:
        query = query.where(LedgerEntry.value_date >= filters.date_from)
    if filters.date_to:
        query = query.where(LedgerEntry.value_date <= filters.date_to)
    if filters.kind:
        query = query.where(LedgerTransaction.kind == filters.kind)
    return query


def entries(account: LedgerAccount, filters: EntryFilters = EntryFilters(), *, page: int = 1
            ) -> Page:
    """Posted entries of the account, newest first, with their transactions."""
    query = _entries_query(account, filters).order_by(LedgerEntry.sequence.desc())
    return paginate(query, page, scalars=False)


def all_entries(account: LedgerAccount, filters: EntryFilters = EntryFilters()
                ) -> Iterator[tuple[LedgerEntry, LedgerTransaction]]:
    """Every matching entry, oldest first, streamed (for CSV export)."""
    query = _entries_query(account, filters).order_by(LedgerEntry.sequence)
    yield from db.session.execute(query.execution_options(yield_per=1000))


def pending_holds(account: LedgerAccount) -> list[tuple[LedgerEntry, LedgerTransaction]]:
    query = (select(LedgerEntry, LedgerTransaction)
             .join(LedgerTransaction, LedgerTransaction.id == LedgerEntry.transaction_id)
             .where(LedgerEntry.account_id == account.id,
                    LedgerEntry.phase == EntryPhase.PENDING,
                    LedgerTransaction.resolved_at.is_(None))
             .order_by(LedgerEntry.id))
    return list(db.session.execute(query))


# --------------------------------------------------------------------------- transactions

def transaction_touches(transaction: LedgerTransaction, org_id: int) -> bool:
    return db.session.execute(
        select(LedgerEntry.id).join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .where(LedgerEntry.transaction_id == transaction.id, LedgerAccount.org_id == org_id)
        .limit(1)).first() is not None


def visible_transactions(user: User) -> Select:
    query = select(LedgerTransaction)
    if not _is_operator(user):
        mine = (select(LedgerEntry.transaction_id)
                .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
                .where(LedgerAccount.org_id == user.org_id))
        query = query.where(LedgerTransaction.id.in_(mine))
    return query


@dataclass(frozen=True)
class TransactionFilters:
    date_from: date | None = None
    date_to: date | None = None
    kind: str | None = None
    currency: str | None = None


def _transactions_query(user: User, filters: TransactionFilters) -> Select:
    query = visible_transactions(user)
    if filters.date_from:
        query = query.where(LedgerTransaction.value_date >= filters.date_from)
    if filters.date_to:
        query = query.where(LedgerTransaction.value_date <= filters.date_to)
    if filters.kind:
        query = query.where(LedgerTransaction.kind == filters.kind)
    if filters.currency:
        query = query.where(LedgerTransaction.id.in_(
            select(LedgerEntry.transaction_id).where(LedgerEntry.currency == filters.currency)))
    return query


def transactions(user: User, filters: TransactionFilters = TransactionFilters(), *,
                 page: int = 1) -> Page[LedgerTransaction]:
    query = _transactions_query(user, filters).order_by(LedgerTransaction.id.desc())
    return paginate(query, page)


def all_transactions(user: User, filters: TransactionFilters = TransactionFilters()
                     ) -> Iterator[LedgerTransaction]:
    query = _transactions_query(user, filters).order_by(LedgerTransaction.id)
    yield from db.session.execute(query.execution_options(yield_per=500)).scalars()


def transaction_kinds(user: User) -> list[str]:
    query = visible_transactions(user).with_only_columns(LedgerTransaction.kind).distinct()
    return sorted(db.session.execute(query).scalars())


def get_transaction(transaction_id: int, *, actor: User) -> LedgerTransaction:
    transaction = db.session.get(LedgerTransaction, transaction_id)
    if transaction is None:
        from finance_app.errors import NotFound
        raise NotFound("transaction", transaction_id)
    authz.require(actor, "ledger.read_transaction", transaction)
    return transaction


def transaction_entries(transaction: LedgerTransaction, user: User
                        ) -> list[tuple[LedgerEntry, LedgerAccount, bool]]:
    """The entries with their accounts, and whether the reader may open each account
    (another organisation's side of a transfer is shown by amount only)."""
    rows = db.session.execute(
        select(LedgerEntry, LedgerAccount).join(LedgerAccount,
                                                LedgerAccount.id == LedgerEntry.account_id)
        .where(LedgerEntry.transaction_id == transaction.id).order_by(LedgerEntry.id))
    return [(e, a, authz.can(user, "ledger.read_account", a)) for e, a in rows]


def related(transaction: LedgerTransaction) -> dict[str, LedgerTransaction | None]:
    """The reversal of this transaction, what it reverses, and a hold's resolution."""
    reversal = db.session.execute(select(LedgerTransaction).where(
        LedgerTransaction.reverses_id == transaction.id)).scalar_one_or_none()
    resolution = db.session.execute(select(LedgerTransaction).where(
        LedgerTransaction.pending_id == transaction.id)).scalar_one_or_none()
    return {"reversed_by": reversal,
            "reverses": db.session.get(LedgerTransaction, transaction.reverses_id)
            if transaction.reverses_id else None,
            "hold": db.session.get(LedgerTransaction, transaction.pending_id)
            if transaction.pending_id else None,
            "resolution": resolution}


# --------------------------------------------------------------------------- statements

@dataclass(frozen=True)
class StatementLine:
    value_date: date
    transaction_id: int
    kind: str
    description: str
    debit: Money | None
    credit: Money | None
    balance: Money


@dataclass(frozen=True)
class Statement:
    account: LedgerAccount
    date_from: date
    date_to: date
    opening: Money
    lines: list[StatementLine]
    closing: Money
    total_debits: Money
    total_credits: Money


def statement(account: LedgerAccount, date_from: date, date_to: date) -> Statement:
    """The account over ``date_from`` .. ``date_to`` (value dates, both included): the
    balance at the start, each posted entry in value-date order with the balance after
    it, and the balance at the end. Debits and credits are shown as booked; balances are
    in the account's normal direction (for a liability, credits raise it)."""
    if date_to < date_from:
        from finance_app.errors import ValidationFailed
        from flask_babel import gettext
        raise ValidationFailed(gettext("The period ends before it starts."), field="date_to")
    opening_units = int(db.session.execute(
        select(func.coalesce(func.sum(LedgerEntry.amount), 0)).where(
            LedgerEntry.account_id == account.id, LedgerEntry.phase == EntryPhase.POSTED,
            LedgerEntry.value_date < date_from)).scalar_one())
    running = account.normal(opening_units)
    lines, debits, credits = [], 0, 0
    query = (select(LedgerEntry, LedgerTransaction)
             .join(LedgerTransaction, LedgerTransaction.id == LedgerEntry.transaction_id)
             .where(LedgerEntry.account_id == account.id,
                    LedgerEntry.phase == EntryPhase.POSTED,
                    LedgerEntry.value_date >= date_from, LedgerEntry.value_date <= date_to)
             .order_by(LedgerEntry.value_date, LedgerEntry.sequence))
    for entry, transaction in db.session.execute(query):
        change = account.normal(entry.amount)
        running += change
        if entry.amount > 0:
            debits += entry.amount
        else:
            credits -= entry.amount
        lines.append(StatementLine(
            value_date=entry.value_date, transaction_id=transaction.id, kind=transaction.kind,
            description=transaction.description,
            debit=account.money(entry.amount) if entry.amount > 0 else None,
            credit=account.money(-entry.amount) if entry.amount < 0 else None,
            balance=account.money(running)))
    return Statement(account=account, date_from=date_from, date_to=date_to,
                     opening=account.money(account.normal(opening_units)), lines=lines,
                     closing=account.money(running), total_debits=account.money(debits),
                     total_credits=account.money(credits))


def default_period(today: date) -> tuple[date, date]:
    """The month so far."""
    return today.replace(day=1), today


def previous_month(today: date) -> tuple[date, date]:
    last = today.replace(day=1) - timedelta(days=1)
    return last.replace(day=1), last
