"""Booking money: accounts, transactions, holds, reversals, balances.

Every money movement on the platform is a ``LedgerTransaction`` made here. The rules:

* the postings of a transaction sum to zero in each currency, each in its account's
  currency, in whole minor units (``Money.to_minor`` refuses anything finer);
* the accounts a transaction touches are locked in id order (``SELECT ... FOR UPDATE`` on
  PostgreSQL; SQLite has one writer at a time), so concurrent transfers wait for each
  other and never deadlock, and each balance is read and written under its lock;
* an account with a floor (``min_balance``) refuses a posting that would take its
  available balance (normal balance less pending outflows) below it, and the whole
  transaction is refused with it;
* an idempotency key is unique per scope (an organisation, or the platform): the same
  key with the same content returns the first transaction and books nothing more; with
  other content it is refused. The unique constraint settles a race between two
  requests with one key: the loser's insert skips (ON CONFLICT DO NOTHING, after the
  winner commits) and it answers as a retry;
* everything is checked before anything is written, and the rows are then written with
  one statement each (the transaction, its entries, the accounts' new state), so a
  refusal leaves nothing behind and a transfer costs a handful of round trips;
* a hold (``pending=True``) moves the accounts' pending columns only; ``post_pending``
  or ``void_pending`` resolves it exactly once (a unique ``pending_id`` backs the lock);
* a posted transaction is corrected by ``reverse``, never by an UPDATE.

Services never commit; the caller's request or command does.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Iterable, Sequence

from flask_babel import gettext
from sqlalchemy import bindparam, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from finance_app import clock
from finance_app.accounts.models import User
from finance_app.errors import Conflict, DomainError, NotFound, ValidationFailed
from finance_app.extensions import db
from finance_app.ledger.models import LedgerAccount, LedgerEntry, LedgerTransaction
from finance_app.ledger.states import (
    TRANSACTION_TRANSITIONS, AccountType, EntryPhase, OwnerKind, TransactionAction,
    TransactionStatus,
)
from finance_app.money import Money, minor_units
from finance_app.states import next_status

PLATFORM_SCOPE = "platform"


class InsufficientFunds(ValidationFailed):
    code = "insufficient_funds"


class IdempotencyConflict(Conflict):
    code = "idempotency_key_reused"


@dataclass(frozen=True)
class Posting:
    """One leg: ``amount`` debited to the account when positive, credited when negative."""
    account_id: int
    amount: Money


def debit(account: LedgerAccount | int, amount: Money) -> Posting:
    return Posting(_id(account), amount)


def credit(account: LedgerAccount | int, amount: Money) -> Posting:
    return Posting(_id(account), -amount)


def _id(account: LedgerAccount | int) -> int:
    return account if isinstance(account, int) else account.id


def scope_for(org_id: int | None) -> str:
    return f"org:{org_id}" if org_id is not None else PLATFORM_SCOPE


# --------------------------------------------------------------------------- accounts

def owner_key(owner_kind: OwnerKind, org_id: int | None, owner_id: int | None) -> str:
    return f"{owner_kind.value}:{org_id if org_id is not None else '-'}:" \
           f"{owner_id if owner_id is not None else '-'}"


def account(*, owner_kind: OwnerKind, purpose: str, currency: str, type: AccountType,
            org_id: int | None = None, owner_id: int | None = None, name: str | None = None,
            min_balance: Money | None = None) -> LedgerAccount:
    """The account of this owner, purpose and currency, opened on first use (safe when two
    requests open it at once: the unique constraint keeps one)."""
    minor_units(currency)   # an unknown currency is refused here, by name
    key = owner_key(owner_kind, org_id, owner_id)
    query = select(LedgerAccount).where(LedgerAccount.owner_key == key,
                                        LedgerAccount.purpose == purpose,
                                        LedgerAccount.currency == currency)
    found = db.session.execute(query).scalar_one_or_none()
    if found is not None:
        return found
    if min_balance is not None and min_balance.currency != currency:
        raise ValidationFailed(gettext("The floor must be in the account's currency."),
                               field="min_balance")
    new = LedgerAccount(owner_kind=owner_kind, org_id=org_id, owner_id=owner_id,
                        owner_key=key, type=type, purpose=purpose, currency=currency,
                        name=name or f"{purpose} {currency}",
                        min_balance=min_balance.to_minor() if min_balance else None,
                        balance=0, pending_debits=0, pending_credits=0, entry_count=0)
    try:
        with db.session.begin_nested():
            db.session.add(new)
    except IntegrityError:
        return db.session.execute(query).scalar_one()
    return new


@dataclass(frozen=True)
class AccountSpec:
    """An account ``open_accounts`` finds or opens: what ``account`` takes."""
    owner_kind: OwnerKind
    purpose: str
    currency: str
    type: AccountType
    org_id: int | None = None
    owner_id: int | None = None
    name: str | None = None

    @property
    def ident(self) -> tuple[str, str, str]:
        return owner_key(self.owner_kind, self.org_id, self.owner_id), self.purpose, \
            self.currency


def open_accounts(specs: Iterable[AccountSpec]) -> dict[tuple[str, str, str], LedgerAccount]:
    """``account`` for many at once: the accounts (by owner key, purpose and currency),
    those missing opened with one INSERT that skips any a concurrent request opened
    meanwhile, then read with the rest; a handful of statements whatever their number.
    (An account with a floor is opened with ``account``.)"""
    wanted: dict[tuple[str, str, str], AccountSpec] = {}
    for spec in specs:
        minor_units(spec.currency)
        wanted.setdefault(spec.ident, spec)
    if not wanted:
        return {}

    def read(idents) -> dict[tuple[str, str, str], LedgerAccount]:
        keys = sorted({k for k, _, _ in idents})
        found = {}
        for start in range(0, len(keys), 1000):
            for acc in db.session.execute(select(LedgerAccount).where(
                    LedgerAccount.owner_key.in_(keys[start:start + 1000]),
                    LedgerAccount.purpose.in_(sorted({p for _, p, _ in idents})))).scalars():
                ident = (acc.owner_key, acc.purpose, acc.currency)
                if ident in idents:
                    found[ident] = acc
        return found

    found = read(set(wanted))
    # in one order, so that two requests opening the same accounts wait for each other
    # instead of deadlocking
    missing = [wanted[i] for i in sorted(wanted) if i not in found]
    if missing:
        dialect = postgresql if db.session.get_bind().dialect.name == "postgresql" else sqlite
        now = clock.now()
        rows = [dict(owner_kind=m.owner_kind, org_id=m.org_id, owner_id=m.owner_id,
                     owner_key=m.ident[0], type=m.type, purpose=m.purpose,
                     currency=m.currency, name=m.name or f"{m.purpose} {m.currency}",
                     min_balance=None, balance=0, pending_debits=0, pending_credits=0,
                     entry_count=0, created_at=now) for m in missing]
        db.session.execute(dialect.insert(LedgerAccount.__table__).on_conflict_do_nothing(),
                           rows)
        found.update(read({m.ident for m in missing}))
    return found


def get_account(account_id: int) -> LedgerAccount:
    found = db.session.get(LedgerAccount, account_id)
    if found is None:
        raise NotFound("account", account_id)
    return found


@dataclass
class _Locked:
    """A row-locked account's state while a transaction is worked out (plain values: the
    booking writes with Core statements, not through ORM objects)."""
    id: int
    currency: str
    type: AccountType
    name: str
    min_balance: int | None
    balance: int
    pending_debits: int
    pending_credits: int
    entry_count: int
    changed: bool = False

    normal = LedgerAccount.normal
    normal_balance = LedgerAccount.normal_balance
    available = LedgerAccount.available
    money = LedgerAccount.money


def _lock(account_ids: Iterable[int]) -> dict[int, _Locked]:
    """The accounts, locked in id order (fixed, so no two transfers deadlock), with their
    balances as committed (read after the lock is granted)."""
    found = _lock_known(account_ids)
    ids = sorted(set(account_ids))
    missing = [i for i in ids if i not in found]
    if missing:
        raise ValidationFailed(gettext("No ledger account %(id)s.", id=missing[0]),
                               field="account_id")
    return found


# --------------------------------------------------------------------------- booking

def _validate(postings: Sequence[Posting], value_date: date | None) -> date:
    if len(postings) < 2:
        raise ValidationFailed(gettext("A transaction needs at least two postings."),
                               field="postings")
    totals: dict[str, int] = {}
    for posting in postings:
        if not isinstance(posting.amount, Money):
            raise TypeError("postings carry Money")
        try:
            units = posting.amount.to_minor()
        except ValueError:
            raise ValidationFailed(gettext(
                "%(currency)s amounts have at most %(n)s decimal places.",
                currency=posting.amount.currency, n=minor_units(posting.amount.currency)),
                field="amount") from None
        if units == 0:
            raise ValidationFailed(gettext("A posting cannot be zero."), field="amount")
        totals[posting.amount.currency] = totals.get(posting.amount.currency, 0) + units
    unbalanced = sorted(c for c, total in totals.items() if total != 0)
    if unbalanced:
        raise ValidationFailed(gettext(
            "The postings do not balance in %(currency)s: debits and credits must be equal "
            "in each currency.", currency=", ".join(unbalanced)), field="postings")
    today = clock.today()
    value_date = value_date or today
    if value_date > today:
        raise ValidationFailed(gettext("The value date %(date)s is in the future.",
                                       date=value_date.isoformat()), field="value_date")
    return value_date


def _fingerprint(**content: Any) -> str:
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str,
                                     separators=(",", ":")).encode()).hexdigest()


_BY_KEY = select(LedgerTransaction.id, LedgerTransaction.request_hash).where(
    LedgerTransaction.scope == bindparam("scope"),
    LedgerTransaction.idempotency_key == bindparam("key"))


def _existing(scope: str, key: str, fingerprint: str) -> LedgerTransaction | None:
    row = db.session.execute(_BY_KEY, {"scope": scope, "key": key}).first()
    if row is None:
        return None
    if row.request_hash != fingerprint:
        raise IdempotencyConflict(gettext(
            "The idempotency key %(key)s was already used for a different transaction.",
            key=key), field="idempotency_key")
    return db.session.get(LedgerTransaction, row.id)


@dataclass(frozen=True)
class Request:
    """One transaction to book: what ``book`` takes, so that ``book_many`` takes many."""
    postings: Sequence[Posting]
    key: str
    kind: str
    org_id: int | None = None
    value_date: date | None = None
    description: str = ""
    reference: tuple[str, int] | None = None
    pending: bool = False
    fx: dict | None = None
    reverses_id: int | None = None


@dataclass
class Outcome:
    """What became of one request: its transaction (booked now or before, under its key),
    or the refusal."""
    index: int
    transaction_id: int | None = None
    error: DomainError | None = None
    values: dict | None = field(default=None, repr=False)
    _transaction: LedgerTransaction | None = field(default=None, repr=False)

    @property
    def transaction(self) -> LedgerTransaction | None:
        if self.transaction_id is None:
            return None
        if self._transaction is None:
            self._transaction = (_persistent(self.values, self.transaction_id)
                                 if self.values is not None
                                 else db.session.get(LedgerTransaction, self.transaction_id))
        return self._transaction


def book(postings: Sequence[Posting], *, key: str, kind: str, org_id: int | None = None,
         value_date: date | None = None, description: str = "", actor: User | None = None,
         pending: bool = False, reference: tuple[str, int] | None = None,
         fx: dict | None = None, reverses_id: int | None = None) -> LedgerTransaction:
    """Book a transaction (or a hold, with ``pending``); with a key already used in this
    scope, return what it booked (same content) or refuse (other content)."""
    outcome = _book([Request(postings, key, kind, org_id, value_date, description, reference,
                             pending, fx, reverses_id)], actor=actor, single=True)[0]
    if outcome.error is not None:
        raise outcome.error
    return outcome.transaction


def book_many(requests: Sequence[Request], *, actor: User | None = None) -> list[Outcome]:
    """Book many transactions in the caller's one database transaction (one commit for
    all, as the daily accrual or a fee run books), each booked or refused on its own
    exactly as ``book`` would. Every account the batch touches is locked first, in id
    order, so concurrent batches never deadlock; the batch costs a handful of statements
    whatever its size. If a concurrent request takes one of the batch's keys at the same
    moment, the batch is refused as a whole (Conflict): the caller rolls back and retries."""
    return _book(requests, actor=actor, single=False)


def _book(requests: Sequence[Request], *, actor: User | None, single: bool) -> list[Outcome]:
    outcomes = [Outcome(i) for i in range(len(requests))]
    prepared = []
    for i, r in enumerate(requests):
        try:
            if not r.key or len(r.key) > 200:
                raise ValidationFailed(gettext("An idempotency key of 1 to 200 characters "
                                               "is required."), field="idempotency_key")
            value_date = _validate(r.postings, r.value_date)
        except DomainError as exc:
            outcomes[i].error = exc
            continue
        fingerprint = _fingerprint(
            kind=r.kind, value_date=value_date, description=r.description,
            pending=r.pending, reference=r.reference, fx=r.fx, reverses=r.reverses_id,
            postings=[(p.account_id, str(p.amount.amount), p.amount.currency)
                      for p in r.postings])
        prepared.append((i, r, value_date, scope_for(r.org_id), fingerprint))
    if not prepared:
        return outcomes
    accounts = _lock_known({p.account_id for _, r, *_ in prepared for p in r.postings})
    # One request (``book``) tries its insert first and looks the key up only when that
    # is refused (a retry), saving a round trip on every fresh booking; a batch looks all
    # its keys up at once.
    taken = {} if single else _keys({(scope, r.key) for _, r, _, scope, _ in prepared})
    first: dict[tuple[str, str], tuple[str, int]] = {}   # in this batch: fingerprint, index
    aliases: dict[int, int] = {}   # a key repeated within the batch -> its first request
    inserts = []
    for i, r, value_date, scope, fingerprint in prepared:
        ident = (scope, r.key)
        try:
            if ident in taken:
                request_hash, transaction_id = taken[ident]
                if request_hash != fingerprint:
                    raise _reused(r.key)
                outcomes[i].transaction_id = transaction_id
                continue
            if ident in first:
                if first[ident][0] != fingerprint:
                    raise _reused(r.key)
                aliases[i] = first[ident][1]
                continue
            rows = _checked_moves(r, accounts)
        except InsufficientFunds as exc:
            found = _existing(scope, r.key, fingerprint) if single else None
            if found is None:   # not a retry of a booking the floor no longer allows
                outcomes[i].error = exc
            else:
                outcomes[i].transaction_id, outcomes[i]._transaction = found.id, found
            continue
        except DomainError as exc:
            outcomes[i].error = exc
            continue
        first[ident] = (fingerprint, i)
        values = dict(
            scope=scope, idempotency_key=r.key, request_hash=fingerprint, kind=r.kind,
            description=r.description[:500], value_date=value_date,
            entry_count=len(r.postings),
            status=TransactionStatus.PENDING if r.pending else TransactionStatus.POSTED,
            booked_at=clock.now(), actor_id=actor.id if actor else None,
            reverses_id=r.reverses_id, pending_id=None, resolved_at=None,
            fx=json.dumps(r.fx, sort_keys=True, default=str) if r.fx else None,
            reference_kind=r.reference[0] if r.reference else None,
            reference_id=r.reference[1] if r.reference else None)
        inserts.append((i, values, rows))
    if inserts:
        ids = _insert_transactions([values for _, values, _ in inserts])
        lost = [(i, values) for i, values, _ in inserts
                if (values["scope"], values["idempotency_key"]) not in ids]
        if lost:
            if not single:
                raise Conflict(gettext("Another request booked one of these keys at the same "
                                       "moment; nothing of this batch is kept: retry it."),
                               field="idempotency_key")
            # The key (or the reversal) was taken by a request that committed meanwhile.
            i, values = lost[0]
            found = _existing(values["scope"], values["idempotency_key"],
                              values["request_hash"])
            if found is None:
                outcomes[i].error = Conflict(gettext("This transaction has already been "
                                                     "reversed."), field="transaction_id")
            else:
                outcomes[i].transaction_id, outcomes[i]._transaction = found.id, found
            return outcomes
        entries = []
        for i, values, rows in inserts:
            transaction_id = ids[(values["scope"], values["idempotency_key"])]
            outcomes[i].transaction_id, outcomes[i].values = transaction_id, values
            for row in rows:
                row.update(transaction_id=transaction_id, value_date=values["value_date"])
            entries.extend(rows)
        _write(entries, accounts.values())
    for i, j in aliases.items():   # a key repeated within the batch: the first one's result
        outcomes[i].transaction_id = outcomes[j].transaction_id
    return outcomes


def _reused(key: str) -> IdempotencyConflict:
    return IdempotencyConflict(gettext(
        "The idempotency key %(key)s was already used for a different transaction.",
        key=key), field="idempotency_key")


def _checked_moves(r: Request, accounts: dict[int, _Locked]) -> list[dict]:
    """The entry rows of one request on the batch's locked accounts, or a refusal that
    leaves the accounts' state as it was."""
    for posting in r.postings:
        account = accounts.get(posting.account_id)
        if account is None:
            raise ValidationFailed(gettext("No ledger account %(id)s.", id=posting.account_id),
                                   field="account_id")
        if account.currency != posting.amount.currency:
            raise ValidationFailed(gettext(
                "Account %(id)s holds %(currency)s, not %(other)s.", id=account.id,
                currency=account.currency, other=posting.amount.currency), field="currency")
    moves = [(accounts[p.account_id], p.amount.to_minor()) for p in r.postings]
    saved = {a.id: (a.balance, a.pending_debits, a.pending_credits, a.entry_count, a.changed)
             for a, _ in moves}
    try:
        return _move(moves, EntryPhase.PENDING if r.pending else EntryPhase.POSTED)
    except InsufficientFunds:
        for account, _ in moves:
            (account.balance, account.pending_debits, account.pending_credits,
             account.entry_count, account.changed) = saved[account.id]
        raise


_LOCK_SQL = ("SELECT id, currency, type, name, min_balance, balance, pending_debits, "
             "pending_credits, entry_count FROM ledger_accounts WHERE id {} ORDER BY id{}")


def _lock_known(account_ids: Iterable[int]) -> dict[int, _Locked]:
    """The accounts that exist among ``account_ids``, locked in id order (with the
    driver's own SQL: this runs for every booking)."""
    ids = sorted(set(account_ids))
    if not ids:
        return {}
    connection = db.session.connection()
    if connection.dialect.name == "postgresql":
        rows = connection.exec_driver_sql(_LOCK_SQL.format("= ANY(%s)", " FOR UPDATE"),
                                          (ids,))
    else:   # one writer at a time: the transaction began with BEGIN IMMEDIATE
        rows = connection.exec_driver_sql(
            _LOCK_SQL.format(f"IN ({', '.join('?' * len(ids))})", ""), tuple(ids))
    found = {}
    for row in rows:
        found[row[0]] = _Locked(row[0], row[1], AccountType(row[2]), *row[3:])
    return found


# The unique index leads with the key, so this is an index lookup per key.
_KEYS = select(LedgerTransaction.scope, LedgerTransaction.idempotency_key,
               LedgerTransaction.id, LedgerTransaction.request_hash).where(
    LedgerTransaction.idempotency_key.in_(bindparam("keys", expanding=True)))


def _keys(idents: set[tuple[str, str]]) -> dict[tuple[str, str], tuple[str, int]]:
    """(scope, key) -> (request hash, transaction id) for the keys already booked."""
    found = {}
    for scope, key, transaction_id, request_hash in db.session.execute(
            _KEYS, {"keys": sorted({key for _, key in idents})}):
        if (scope, key) in idents:
            found[(scope, key)] = (request_hash, transaction_id)
    return found


_INSERTS: dict[Any, Any] = {}


def _driver_value(value: Any, sqlite_db: bool) -> Any:
    if isinstance(value, StrEnum):
        return value.value
    if sqlite_db and isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")   # as SQLAlchemy stores it
    if sqlite_db and isinstance(value, date):
        return value.isoformat()
    return value


def _insert_transaction(values: dict) -> int | None:
    """Insert the transaction row; None when a unique key (the idempotency key, the one
    reversal or resolution per original) is already taken. ON CONFLICT DO NOTHING waits
    for a concurrent twin and then skips, so the enclosing transaction stays usable."""
    connection = db.session.connection()
    sqlite_db = connection.dialect.name != "postgresql"
    mark = "?" if sqlite_db else "%s"
    sql = (f"INSERT INTO ledger_transactions ({', '.join(_TRANSACTION_COLUMNS)}) VALUES "
           f"({', '.join([mark] * len(_TRANSACTION_COLUMNS))}) "
           "ON CONFLICT DO NOTHING RETURNING id")
    row = connection.exec_driver_sql(sql, tuple(
        _driver_value(values[c], sqlite_db) for c in _TRANSACTION_COLUMNS)).first()
    return row[0] if row else None


def _insert_transactions(rows: list[dict]) -> dict[tuple[str, str], int]:
    """Insert the transaction rows with one statement; (scope, key) -> id of each row
    inserted (a row whose unique key is taken meanwhile is skipped, not an error)."""
    name = db.session.get_bind().dialect.name
    statement = _INSERTS.get(("many", name))
    if statement is None:
        dialect = postgresql if name == "postgresql" else sqlite
        table = LedgerTransaction.__table__
        statement = _INSERTS[("many", name)] = (
            dialect.insert(table).values({c: bindparam(c) for c in _TRANSACTION_COLUMNS})
            .on_conflict_do_nothing()
            .returning(table.c.id, table.c.scope, table.c.idempotency_key))
    if len(rows) == 1:
        transaction_id = _insert_transaction(rows[0])
        return {} if transaction_id is None else {
            (rows[0]["scope"], rows[0]["idempotency_key"]): transaction_id}
    if name == "postgresql":   # arrays: one statement text whatever the batch's size
        columns = [[_driver_value(row[c], False) for row in rows] for c in _TRANSACTION_COLUMNS]
        result = db.session.connection().exec_driver_sql(_PG_INSERT_MANY, tuple(columns))
    else:
        result = db.session.execute(statement, rows)
    return {(scope, key): transaction_id for transaction_id, scope, key in result}


_PG_TYPES = ("varchar", "varchar", "varchar", "varchar", "varchar", "varchar", "date",
             "integer", "timestamp", "integer", "integer", "integer", "timestamp", "text",
             "varchar", "integer")


_TRANSACTION_COLUMNS = (
    "scope", "idempotency_key", "request_hash", "kind", "description", "status",
    "value_date", "entry_count", "booked_at", "actor_id", "reverses_id", "pending_id",
    "resolved_at", "fx", "reference_kind", "reference_id")
_PG_INSERT_MANY = (
    f"INSERT INTO ledger_transactions ({', '.join(_TRANSACTION_COLUMNS)}) SELECT * FROM unnest("
    + ", ".join(f"%s::{t}[]" for t in _PG_TYPES) + ") ON CONFLICT DO NOTHING "
    "RETURNING id, scope, idempotency_key")


def _persistent(values: dict, transaction_id: int) -> LedgerTransaction:
    """The inserted row as an ORM object of the session, without reading it back."""
    transaction = LedgerTransaction(id=transaction_id, **values)
    make_transient_to_detached(transaction)
    db.session.add(transaction)
    return transaction


def _move(moves: list[tuple[_Locked, int]], phase: EntryPhase, *,
          release: Sequence[tuple[_Locked, int]] = ()) -> list[dict]:
    """Work the entries out on the locked accounts' state and refuse a breached floor,
    before anything is written. ``release``: the pending amounts of a hold being
    resolved, taken off first. Returns the entry rows (their transaction id left out)."""
    before = {a.id: a.available for a, _ in (*release, *moves)}
    for account, units in release:
        if units > 0:
            account.pending_debits -= units
        else:
            account.pending_credits += units
        account.changed = True
    rows = []
    for account, units in moves:
        row = dict(account_id=account.id, amount=units, currency=account.currency, phase=phase,
                   balance_after=None, sequence=None)
        if phase is EntryPhase.POSTED:
            account.balance += units
            account.entry_count += 1
            row.update(balance_after=account.balance, sequence=account.entry_count)
        elif units > 0:
            account.pending_debits += units
        else:
            account.pending_credits -= units
        account.changed = True
        rows.append(row)
    for account, _ in moves:   # the floor holds on each account's net result
        after = account.available
        if account.min_balance is not None and after < before[account.id] \
                and after < account.min_balance:
            raise InsufficientFunds(gettext(
                "%(name)s would fall to %(after)s, below its floor of %(floor)s.",
                name=account.name, after=str(account.money(after)),
                floor=str(account.money(account.min_balance))), field="amount")
    return rows


_ACCOUNT_STATE = ("balance", "pending_debits", "pending_credits", "entry_count")


_ENTRY_COLUMNS = ("transaction_id", "account_id", "amount", "currency", "phase",
                  "balance_after", "sequence", "value_date")
# PostgreSQL: the entries and the accounts' new state in one statement, whatever their
# number (arrays, so the text never changes and the server can keep its plan).
_PG_WRITE = (
    "WITH entries AS (INSERT INTO ledger_entries (" + ", ".join(_ENTRY_COLUMNS) + ") "
    "SELECT * FROM unnest(%s::integer[], %s::integer[], %s::bigint[], %s::varchar[], "
    "%s::varchar[], %s::bigint[], %s::integer[], %s::date[])) "
    "UPDATE ledger_accounts AS a SET balance = v.balance, pending_debits = v.pending_debits, "
    "pending_credits = v.pending_credits, entry_count = v.entry_count "
    "FROM unnest(%s::integer[], %s::bigint[], %s::bigint[], %s::bigint[], %s::integer[]) "
    "AS v(id, balance, pending_debits, pending_credits, entry_count) WHERE a.id = v.id")
# SQLite: the same as two statements run many times (the database is in the process).
_SQLITE_WRITE = (
    "INSERT INTO ledger_entries (" + ", ".join(_ENTRY_COLUMNS) + ") VALUES ("
    + ", ".join("?" * len(_ENTRY_COLUMNS)) + ")",
    "UPDATE ledger_accounts SET balance = ?, pending_debits = ?, pending_credits = ?, "
    "entry_count = ? WHERE id = ?")


def _write(rows: list[dict], accounts: Iterable[_Locked]) -> None:
    """The entry rows (with their transaction ids and value dates) and the accounts' new
    state. The values were all worked out and checked here, so they go to the driver as
    they are: this is the hot path of every booking. Account objects the session holds
    are brought up to date."""
    connection = db.session.connection()
    entries = [(r["transaction_id"], r["account_id"], r["amount"], r["currency"],
                r["phase"].value, r["balance_after"], r["sequence"], r["value_date"])
               for r in rows]
    changed = [a for a in accounts if a.changed]
    states = [(a.id, a.balance, a.pending_debits, a.pending_credits, a.entry_count)
              for a in changed]
    if connection.dialect.name == "postgresql":
        if entries or states:
            columns = [list(c) for c in zip(*entries)] if entries else [[]] * 8
            state_columns = [list(c) for c in zip(*states)] if states else [[]] * 5
            connection.exec_driver_sql(_PG_WRITE, tuple(columns + state_columns))
    else:
        if entries:
            connection.exec_driver_sql(_SQLITE_WRITE[0], [e[:7] + (e[7].isoformat(),)
                                                          for e in entries])
        if states:
            connection.exec_driver_sql(_SQLITE_WRITE[1], [s[1:] + s[:1] for s in states])
    for account in changed:
        held = db.session.identity_map.get(db.session.identity_key(LedgerAccount, account.id))
        if held is not None:
            for name in _ACCOUNT_STATE:
                set_committed_value(held, name, getattr(account, name))


# --------------------------------------------------------------------------- holds

def _hold(hold_id: int) -> LedgerTransaction:
    """The hold, locked (so two resolutions take turns and the second sees the first)."""
    found = db.session.execute(
        select(LedgerTransaction).where(LedgerTransaction.id == hold_id).with_for_update()
        .execution_options(populate_existing=True)).scalar_one_or_none()
    if found is None:
        raise NotFound("transaction", hold_id)
    return found


def _resolve(hold_id: int, action: TransactionAction, *, key: str | None,
             actor: User | None, value_date: date | None) -> LedgerTransaction:
    hold = _hold(hold_id)
    key = key or f"{action.value}:{hold.id}"
    if hold.status is not TransactionStatus.PENDING:
        # Resolved already: the same request again returns what it did; anything else
        # (the other resolution, or a second one with another key) is refused.
        done = db.session.execute(select(LedgerTransaction).where(
            LedgerTransaction.pending_id == hold.id)).scalar_one_or_none()
        if done is not None and done.idempotency_key == key and done.kind == action.value:
            return done
        next_status(TRANSACTION_TRANSITIONS, hold.status, action, what="hold")
    status = next_status(TRANSACTION_TRANSITIONS, hold.status, action, what="hold")
    entries = _entries(hold.id, EntryPhase.PENDING)
    value_date = value_date or clock.today()
    if value_date > clock.today():
        raise ValidationFailed(gettext("The value date %(date)s is in the future.",
                                       date=value_date.isoformat()), field="value_date")
    accounts = _lock(e.account_id for e in entries)
    release = [(accounts[e.account_id], e.amount) for e in entries]
    moves = release if action is TransactionAction.POST else []
    rows = _move(moves, EntryPhase.POSTED, release=release)
    values = dict(
        scope=hold.scope, idempotency_key=key, kind=action.value,
        request_hash=_fingerprint(kind=action.value, hold=hold.id),
        description=hold.description, value_date=value_date, entry_count=len(moves),
        status=TransactionStatus.POSTED, booked_at=clock.now(),
        actor_id=actor.id if actor else None, reverses_id=None, pending_id=hold.id,
        resolved_at=None, reference_kind=hold.reference_kind,
        reference_id=hold.reference_id, fx=hold.fx)
    resolution_id = _insert_transaction(values)
    if resolution_id is None:
        raise Conflict(gettext("This hold has already been resolved."),
                       field="transaction_id")
    for row in rows:
        row.update(transaction_id=resolution_id, value_date=value_date)
    _write(rows, accounts.values())
    hold.status, hold.resolved_at = status, clock.now()
    db.session.flush()
    return _persistent(values, resolution_id)


def post_pending(hold_id: int, *, key: str | None = None, actor: User | None = None,
                 value_date: date | None = None) -> LedgerTransaction:
    """Book a hold for real, once: its amounts leave the pending columns for the balances."""
    return _resolve(hold_id, TransactionAction.POST, key=key, actor=actor,
                    value_date=value_date)


def void_pending(hold_id: int, *, key: str | None = None, actor: User | None = None
                 ) -> LedgerTransaction:
    """Release a hold without booking it, once."""
    return _resolve(hold_id, TransactionAction.VOID, key=key, actor=actor, value_date=None)


# --------------------------------------------------------------------------- corrections

def reverse(transaction_id: int, *, key: str | None = None, actor: User | None = None,
            reason: str = "", value_date: date | None = None) -> LedgerTransaction:
    """A transaction that undoes a posted one, pointing at it; at most one per original."""
    original = db.session.get(LedgerTransaction, transaction_id)
    if original is None:
        raise NotFound("transaction", transaction_id)
    # A hold is never reversed, even once posted (its status then says posted, but its
    # entries stay pending): its posting is the transaction to reverse.
    if original.status is not TransactionStatus.POSTED or original.kind == "void" \
            or original.resolved_at is not None:
        raise Conflict(gettext("Only a posted transaction can be reversed; a hold is "
                               "voided instead."), field="transaction_id")
    if original.reverses_id is not None:
        raise Conflict(gettext("A reversal is not reversed; book the movement again."),
                       field="transaction_id")
    key = key or f"reverse:{original.id}"
    done = db.session.execute(select(LedgerTransaction).where(
        LedgerTransaction.reverses_id == original.id)).scalar_one_or_none()
    if done is not None and done.idempotency_key != key:
        raise Conflict(gettext("This transaction has already been reversed."),
                       field="transaction_id")
    postings = [Posting(e.account_id, -e.money)
                for e in _entries(original.id, EntryPhase.POSTED)]
    return book(postings, key=key, kind="reversal",
                org_id=_scope_org(original.scope), value_date=value_date,
                description=(reason or f"Reversal of transaction {original.id}")[:500],
                actor=actor, reverses_id=original.id,
                reference=(original.reference_kind, original.reference_id)
                if original.reference_kind else None)


def _entries(transaction_id: int, phase: EntryPhase) -> list[LedgerEntry]:
    return list(db.session.execute(select(LedgerEntry).where(
        LedgerEntry.transaction_id == transaction_id, LedgerEntry.phase == phase)
        .order_by(LedgerEntry.id)).scalars())


def _scope_org(scope: str) -> int | None:
    return int(scope.split(":", 1)[1]) if scope.startswith("org:") else None


# --------------------------------------------------------------------------- balances

def balance(account: LedgerAccount, *, as_of: date | None = None) -> Money:
    """The account's posted balance in its normal direction, now or at the end of
    ``as_of`` (by value date)."""
    if as_of is None:
        return account.money(account.normal(account.balance))
    total = db.session.execute(select(func.coalesce(func.sum(LedgerEntry.amount), 0)).where(
        LedgerEntry.account_id == account.id, LedgerEntry.phase == EntryPhase.POSTED,
        LedgerEntry.value_date <= as_of)).scalar_one()
    return account.money(account.normal(int(total)))


def available(account: LedgerAccount) -> Money:
    return account.money(account.available)


def transaction_for(reference_kind: str, reference_id: int) -> list[LedgerTransaction]:
    return list(db.session.execute(select(LedgerTransaction).where(
        LedgerTransaction.reference_kind == reference_kind,
        LedgerTransaction.reference_id == reference_id).order_by(LedgerTransaction.id)
    ).scalars())
