"""The ledger under real concurrent transactions (PostgreSQL, threads released together by
a barrier). Side effects are counted, not only final balances: a lost update would show
as duplicated entries or a broken running-balance chain."""
from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from finance_app.errors import DomainError
from finance_app.extensions import db
from finance_app.ledger import services as ledger
from finance_app.ledger.models import LedgerAccount, LedgerEntry, LedgerTransaction
from finance_app.ledger.states import AccountType, OwnerKind
from finance_app.money import Money

pytestmark = pytest.mark.postgres
THREADS = 20


def M(amount: str) -> Money:
    return Money(Decimal(amount), "USD")


def count(model, *where) -> int:
    query = select(func.count()).select_from(model)
    for condition in where:
        query = query.where(condition)
    return db.session.execute(query).scalar_one()


def run_together(app, work) -> tuple[list, list[BaseException]]:
    start = threading.Barrier(THREADS, timeout=30)
    results, errors = [None] * THREADS, []

    def worker(n: int) -> None:
        with app.app_context():
            try:
                start.wait()
                results[n] = work(n)
                db.session.commit()
            except BaseException as exc:  # noqa: BLE001 - reported by the test
                db.session.rollback()
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    db.session.expire_all()
    return results, errors


@pytest.fixture
def wallet(app):
    """An SME's client money (a liability, floor 0) holding 100.00 USD, and the bank."""
    bank = ledger.account(owner_kind=OwnerKind.PLATFORM, purpose="bank", currency="USD",
                          type=AccountType.ASSET)
    client = ledger.account(owner_kind=OwnerKind.ORGANISATION, purpose="client_money",
                            currency="USD", type=AccountType.LIABILITY, min_balance=M("0"))
    ledger.book([ledger.debit(bank, M("100.00")), ledger.credit(client, M("100.00"))],
                key="deposit", kind="deposit")
    db.session.commit()
    return bank.id, client.id


def test_twenty_withdrawals_at_once_never_take_the_account_below_its_floor(app, wallet):
    """Twenty withdrawals of 7.00 from 100.00: exactly fourteen fit, six are refused."""
    bank_id, client_id = wallet

    def withdraw(n: int):
        return ledger.book([ledger.debit(client_id, M("7.00")), ledger.credit(bank_id, M("7.00"))],
                           key=f"w{n}", kind="withdrawal").id

    results, errors = run_together(app, withdraw)
    assert len([r for r in results if r]) == 14
    assert len(errors) == 6 and all(isinstance(e, ledger.InsufficientFunds) for e in errors)
    client = db.session.get(LedgerAccount, client_id)
    assert ledger.balance(client) == M("2.00")
    assert count(LedgerTransaction) == 15 and count(LedgerEntry) == 30
    entries = db.session.execute(select(LedgerEntry).where(
        LedgerEntry.account_id == client_id).order_by(LedgerEntry.sequence)).scalars().all()
    assert [e.sequence for e in entries] == list(range(1, 16))
    running = 0
    for entry in entries:
        running += entry.amount
        assert entry.balance_after == running
        assert client.normal(entry.balance_after) >= 0
    assert running == client.balance


def test_twenty_retries_with_one_key_book_once(app, wallet):
    bank_id, client_id = wallet

    def retry(n: int):
        return ledger.book([ledger.debit(client_id, M("30.00")), ledger.credit(bank_id, M("30.00"))],
                           key="the-same-key", kind="withdrawal").id

    results, errors = run_together(app, retry)
    assert errors == []
    assert len(set(results)) == 1, "every retry answers with the one transaction"
    assert count(LedgerTransaction, LedgerTransaction.idempotency_key == "the-same-key") == 1
    assert count(LedgerEntry) == 4
    assert ledger.balance(db.session.get(LedgerAccount, client_id)) == M("70.00")


def test_a_key_raced_with_different_content_books_one_and_refuses_the_rest(app, wallet):
    bank_id, client_id = wallet

    def race(n: int):
        amount = M(f"{n + 1}.00")
        return ledger.book([ledger.debit(client_id, amount), ledger.credit(bank_id, amount)],
                           key="contested", kind="withdrawal").id

    results, errors = run_together(app, race)
    assert len([r for r in results if r]) == 1
    assert len(errors) == THREADS - 1
    assert all(isinstance(e, ledger.IdempotencyConflict) for e in errors), errors
    assert count(LedgerEntry) == 4


def test_a_hold_resolved_twenty_times_at_once_posts_once(app, wallet):
    bank_id, client_id = wallet
    hold = ledger.book([ledger.debit(client_id, M("40.00")), ledger.credit(bank_id, M("40.00"))],
                       key="hold", kind="disbursement_hold", pending=True)
    db.session.commit()
    hold_id = hold.id

    def resolve(n: int):
        if n % 2:
            return ledger.post_pending(hold_id, key=f"post-{n}").id
        return ledger.void_pending(hold_id, key=f"void-{n}").id

    results, errors = run_together(app, resolve)
    assert len([r for r in results if r]) == 1, "exactly one resolution wins"
    assert len(errors) == THREADS - 1
    assert all(isinstance(e, DomainError) for e in errors)
    assert count(LedgerTransaction, LedgerTransaction.pending_id == hold_id) == 1
    client = db.session.get(LedgerAccount, client_id)
    assert client.pending_debits == 0 and client.pending_credits == 0
    assert ledger.balance(client) in (M("60.00"), M("100.00"))


def test_concurrent_batches_over_the_same_accounts_never_deadlock(app):
    """Twenty batches, each moving money around the same five accounts in its own order:
    every transfer books, each once, and the accounts' chains stay whole."""
    ids = [ledger.account(owner_kind=OwnerKind.PLATFORM, owner_id=n, purpose="ring",
                          currency="USD", type=AccountType.ASSET).id for n in range(5)]
    db.session.commit()

    def batch(n: int):
        order = ids[n % 5:] + ids[:n % 5]
        if n % 2:
            order.reverse()
        requests = [ledger.Request([ledger.debit(order[i], M("1.00")),
                                    ledger.credit(order[(i + 1) % 5], M("1.00"))],
                                   key=f"ring-{n}-{i}", kind="ring") for i in range(5)]
        return [o.transaction.id for o in ledger.book_many(requests)]

    results, errors = run_together(app, batch)
    assert errors == []
    assert count(LedgerTransaction) == THREADS * 5 and count(LedgerEntry) == THREADS * 10
    for account_id in ids:
        account = db.session.get(LedgerAccount, account_id)
        entries = db.session.execute(select(LedgerEntry).where(
            LedgerEntry.account_id == account_id).order_by(LedgerEntry.sequence)).scalars().all()
        assert [e.sequence for e in entries] == list(range(1, len(entries) + 1))
        assert account.balance == sum(e.amount for e in entries) == 0


def test_accounts_opened_at_once_by_twenty_requests_exist_once(app):
    """Twenty requests open the same fifty accounts at the same moment: each gets the same
    fifty, and there are fifty."""
    specs = [ledger.AccountSpec(owner_kind=OwnerKind.LOAN, purpose="loan_penalty",
                                currency="USD", type=AccountType.ASSET, owner_id=n)
             for n in range(1, 51)]

    def open_them(n: int):
        found = ledger.open_accounts(specs[n % 7:] + specs[:n % 7])
        return sorted(a.id for a in found.values())

    results, errors = run_together(app, open_them)
    assert errors == []
    assert all(r == results[0] for r in results) and len(results[0]) == 50
    assert count(LedgerAccount) == 50
