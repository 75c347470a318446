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
  requests with one key: the loser's savepoint is rolled back and it answers as a retry;
* a hold (``pending=True``) moves the accounts' pending columns only; ``post_pending``
  or ``void_pending`` resolves it exactly once (a unique ``pending_id`` backs the lock);
* a posted transaction is corrected by ``reverse``, never by an UPDATE.

Services never commit; the caller's request or command does.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date
from typing import Any, Iterable, Sequence

from flask_babel import gettext
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from finance_app import clock
from finance_app.accounts.models import User
from finance_app.errors import Conflict, NotFound, ValidationFailed
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


def get_account(account_id: int) -> LedgerAccount:
    found = db.session.get(LedgerAccount, account_id)
    if found is None:
        raise NotFound("account", account_id)
    return found


def _lock(account_ids: Iterable[int]) -> dict[int, LedgerAccount]:
    """The accounts, locked in id order (fixed, so no two transfers deadlock), with their
    balances as committed (populate_existing: not a stale copy from this session)."""
    ids = sorted(set(account_ids))
    query = (select(LedgerAccount).where(LedgerAccount.id.in_(ids)).order_by(LedgerAccount.id)
             .with_for_update().execution_options(populate_existing=True))
    found = {a.id: a for a in db.session.execute(query).scalars()}
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


def _existing(scope: str, key: str, fingerprint: str) -> LedgerTransaction | None:
    found = db.session.execute(select(LedgerTransaction).where(
        LedgerTransaction.scope == scope, LedgerTransaction.idempotency_key == key)
    ).scalar_one_or_none()
    if found is not None and found.request_hash != fingerprint:
        raise IdempotencyConflict(gettext(
            "The idempotency key %(key)s was already used for a different transaction.",
            key=key), field="idempotency_key")
    return found


def book(postings: Sequence[Posting], *, key: str, kind: str, org_id: int | None = None,
         value_date: date | None = None, description: str = "", actor: User | None = None,
         pending: bool = False, reference: tuple[str, int] | None = None,
         fx: dict | None = None, reverses_id: int | None = None) -> LedgerTransaction:
    """Book a transaction (or a hold, with ``pending``); with a key already used in this
    scope, return what it booked (same content) or refuse (other content)."""
    if not key or len(key) > 200:
        raise ValidationFailed(gettext("An idempotency key of 1 to 200 characters is "
                                       "required."), field="idempotency_key")
    value_date = _validate(postings, value_date)
    scope = scope_for(org_id)
    fingerprint = _fingerprint(
        kind=kind, value_date=value_date, description=description, pending=pending,
        reference=reference, fx=fx, reverses=reverses_id,
        postings=[(p.account_id, str(p.amount.amount), p.amount.currency) for p in postings])
    found = _existing(scope, key, fingerprint)
    if found is not None:
        return found
    accounts = _lock(p.account_id for p in postings)
    found = _existing(scope, key, fingerprint)   # a twin committed while we waited
    if found is not None:
        return found
    for posting in postings:
        account = accounts[posting.account_id]
        if account.currency != posting.amount.currency:
            raise ValidationFailed(gettext(
                "Account %(id)s holds %(currency)s, not %(other)s.", id=account.id,
                currency=account.currency, other=posting.amount.currency), field="currency")
    transaction = LedgerTransaction(
        scope=scope, idempotency_key=key, request_hash=fingerprint, kind=kind,
        description=description[:500], value_date=value_date, entry_count=len(postings),
        status=TransactionStatus.PENDING if pending else TransactionStatus.POSTED,
        booked_at=clock.now(), actor_id=actor.id if actor else None, reverses_id=reverses_id,
        fx=json.dumps(fx, sort_keys=True, default=str) if fx else None,
        reference_kind=reference[0] if reference else None,
        reference_id=reference[1] if reference else None)
    phase = EntryPhase.PENDING if pending else EntryPhase.POSTED
    try:
        with db.session.begin_nested():   # all or nothing, whatever the caller does next
            db.session.add(transaction)
            db.session.flush()
            _apply(transaction, [(accounts[p.account_id], p.amount.to_minor())
                                 for p in postings], phase, value_date)
    except IntegrityError:
        # The key (or the reversal) was taken by a request that committed meanwhile.
        found = _existing(scope, key, fingerprint)
        if found is not None:
            return found
        raise Conflict(gettext("This transaction has already been reversed."),
                       field="transaction_id") from None
    return transaction


def _apply(transaction: LedgerTransaction, moves: list[tuple[LedgerAccount, int]],
           phase: EntryPhase, value_date: date, *,
           release: Sequence[tuple[LedgerAccount, int]] = ()) -> None:
    """Write the entries and move the (locked) accounts; refuse a breached floor.
    ``release``: the pending amounts of a hold being resolved, taken off first."""
    before = {a.id: a.available for a, _ in (*release, *moves)}
    for account, units in release:
        if units > 0:
            account.pending_debits -= units
        else:
            account.pending_credits += units
    rows = []
    for account, units in moves:
        row = dict(transaction_id=transaction.id, account_id=account.id, amount=units,
                   currency=account.currency, phase=phase, value_date=value_date,
                   balance_after=None, sequence=None)
        if phase is EntryPhase.POSTED:
            account.balance += units
            account.entry_count += 1
            row.update(balance_after=account.balance, sequence=account.entry_count)
        elif units > 0:
            account.pending_debits += units
        else:
            account.pending_credits -= units
        rows.append(row)
    for account, _ in moves:   # the floor holds on each account's net result
        after = account.available
        if account.min_balance is not None and after < before[account.id] \
                and after < account.min_balance:
            raise InsufficientFunds(gettext(
                "%(name)s would fall to %(after)s, below its floor of %(floor)s.",
                name=account.name, after=str(account.money(after)),
                floor=str(account.money(account.min_balance))), field="amount")
    if rows:
        db.session.execute(LedgerEntry.__table__.insert(), rows)
    db.session.flush()


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
    resolution = LedgerTransaction(
        scope=hold.scope, idempotency_key=key, kind=action.value,
        request_hash=_fingerprint(kind=action.value, hold=hold.id),
        description=hold.description, value_date=value_date, entry_count=len(moves),
        status=TransactionStatus.POSTED, booked_at=clock.now(),
        actor_id=actor.id if actor else None, pending_id=hold.id,
        reference_kind=hold.reference_kind, reference_id=hold.reference_id, fx=hold.fx)
    try:
        with db.session.begin_nested():
            db.session.add(resolution)
            db.session.flush()
            _apply(resolution, moves, EntryPhase.POSTED, value_date, release=release)
            hold.status, hold.resolved_at = status, clock.now()
            db.session.flush()
    except IntegrityError:
        raise Conflict(gettext("This hold has already been resolved."),
                       field="transaction_id") from None
    return resolution


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
    postings = [Posting(e.account_id, -e.money)
                for e in _entries(original.id, EntryPhase.POSTED)]
    return book(postings, key=key or f"reverse:{original.id}", kind="reversal",
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
