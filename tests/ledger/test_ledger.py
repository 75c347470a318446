"""The ledger's rules, called directly: balanced postings, floors, idempotency, holds,
reversals, balances as of a date, and the database refusing what the code must not do."""
from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import DBAPIError

from finance_app import clock
from finance_app.errors import Conflict, IllegalTransition, ValidationFailed
from finance_app.extensions import db
from finance_app.ledger import services as ledger
from finance_app.ledger.models import LedgerAccount, LedgerEntry, LedgerTransaction
from finance_app.ledger.states import AccountType, OwnerKind, TransactionStatus
from finance_app.money import Money


def M(amount: str, currency: str = "CNY") -> Money:
    return Money(Decimal(amount), currency)


def acct(n: int, currency: str = "CNY", type=AccountType.ASSET, floor: str | None = None):
    return ledger.account(owner_kind=OwnerKind.PLATFORM, owner_id=n, purpose="test",
                          currency=currency, type=type,
                          min_balance=M(floor, currency) if floor is not None else None)


def count(model) -> int:
    return db.session.execute(select(func.count()).select_from(model)).scalar_one()


@pytest.fixture
def books(app):
    """Cash (asset, debit-normal), a client's money (liability, floor 0) and equity."""
    cash = acct(1)
    client_money = acct(2, type=AccountType.LIABILITY, floor="0")
    equity = acct(3, type=AccountType.EQUITY)
    db.session.commit()
    return cash, client_money, equity


def deposit(cash, client_money, amount: str, key: str):
    return ledger.book([ledger.debit(cash, M(amount)), ledger.credit(client_money, M(amount))],
                       key=key, kind="deposit")


def test_a_transfer_moves_both_balances_and_records_running_balances(books):
    cash, client_money, _ = books
    deposit(cash, client_money, "100.50", "d1")
    deposit(cash, client_money, "0.25", "d2")
    db.session.commit()
    assert ledger.balance(cash) == M("100.75")
    assert ledger.balance(client_money) == M("100.75")     # a liability, credit-normal
    entries = db.session.execute(select(LedgerEntry).where(
        LedgerEntry.account_id == cash.id).order_by(LedgerEntry.id)).scalars().all()
    assert [(e.sequence, e.amount, e.balance_after) for e in entries] == [
        (1, 10050, 10050), (2, 25, 10075)]
    assert all(e.currency == "CNY" for e in entries)


def test_a_transaction_that_would_breach_a_floor_books_nothing(books):
    cash, client_money, _ = books
    deposit(cash, client_money, "50.00", "d1")
    db.session.commit()
    with pytest.raises(ledger.InsufficientFunds) as refused:
        ledger.book([ledger.debit(client_money, M("50.01")), ledger.credit(cash, M("50.01"))],
                    key="w1", kind="withdrawal")
    assert refused.value.field == "amount" and "below its floor" in refused.value.message
    db.session.commit()
    assert ledger.balance(client_money) == M("50.00") and count(LedgerTransaction) == 1
    assert count(LedgerEntry) == 2
    # exactly to the floor is allowed
    ledger.book([ledger.debit(client_money, M("50.00")), ledger.credit(cash, M("50.00"))],
                key="w2", kind="withdrawal")
    db.session.commit()
    assert ledger.balance(client_money) == M("0.00")


@pytest.mark.parametrize("postings, field, words", [
    (lambda c, m: [ledger.debit(c, M("1.00")), ledger.credit(m, M("0.99"))], "postings",
     "do not balance"),
    (lambda c, m: [ledger.debit(c, M("1.001")), ledger.credit(m, M("1.001"))], "amount",
     "at most 2 decimal"),
    (lambda c, m: [ledger.debit(c, M("0")), ledger.credit(m, M("0"))], "amount", "zero"),
    (lambda c, m: [ledger.debit(c, M("1", "USD")), ledger.credit(m, M("1", "USD"))],
     "currency", "holds CNY"),
    (lambda c, m: [ledger.debit(c, M("1"))], "postings", "at least two"),
    (lambda c, m: [ledger.debit(c, M("1", "JPY")), ledger.credit(m, M("1"))], "postings",
     "do not balance"),
])
def test_bad_postings_are_refused_and_book_nothing(books, postings, field, words):
    cash, client_money, _ = books
    with pytest.raises(ValidationFailed) as refused:
        ledger.book(postings(cash, client_money), key="bad", kind="test")
    assert refused.value.field == field and words in refused.value.message
    db.session.commit()
    assert count(LedgerTransaction) == 0 and count(LedgerEntry) == 0
    assert ledger.balance(cash) == M("0.00")


def test_a_future_value_date_is_refused(books):
    cash, client_money, _ = books
    with pytest.raises(ValidationFailed) as refused:
        ledger.book([ledger.debit(cash, M("1")), ledger.credit(client_money, M("1"))],
                    key="f", kind="deposit", value_date=clock.today() + timedelta(days=1))
    assert refused.value.field == "value_date"


def test_the_same_key_books_once_and_other_content_is_refused(books):
    cash, client_money, _ = books
    first = deposit(cash, client_money, "10.00", "k")
    again = deposit(cash, client_money, "10.00", "k")
    assert again.id == first.id
    with pytest.raises(Conflict) as refused:
        deposit(cash, client_money, "11.00", "k")
    assert refused.value.field == "idempotency_key"
    db.session.commit()
    assert count(LedgerTransaction) == 1 and ledger.balance(cash) == M("10.00")
    # keys are per organisation: another scope may use the same key
    ledger.book([ledger.debit(cash, M("1")), ledger.credit(client_money, M("1"))], key="k",
                kind="deposit", org_id=None if False else _org())
    db.session.commit()
    assert count(LedgerTransaction) == 2


def _org() -> int:
    from tests.factories import make_org_user
    from finance_app.accounts.states import OrgKind
    return make_org_user(OrgKind.SME).org_id


def test_a_hold_counts_against_the_floor_and_is_posted_or_voided_once(books):
    cash, client_money, _ = books
    deposit(cash, client_money, "100.00", "d")
    hold = ledger.book([ledger.debit(client_money, M("70.00")), ledger.credit(cash, M("70.00"))],
                       key="h1", kind="withdrawal", pending=True)
    db.session.commit()
    assert ledger.balance(client_money) == M("100.00")          # not yet booked
    assert ledger.available(client_money) == M("30.00")         # but held
    with pytest.raises(ledger.InsufficientFunds):
        ledger.book([ledger.debit(client_money, M("40.00")), ledger.credit(cash, M("40.00"))],
                    key="h2", kind="withdrawal", pending=True)
    posted = ledger.post_pending(hold.id)
    assert ledger.post_pending(hold.id).id == posted.id          # a retry: the same
    with pytest.raises(IllegalTransition):
        ledger.void_pending(hold.id)
    db.session.commit()
    db.session.refresh(client_money)
    assert ledger.balance(client_money) == M("30.00") and ledger.available(client_money) == \
        M("30.00")
    assert db.session.get(LedgerTransaction, hold.id).status is TransactionStatus.POSTED

    second = ledger.book([ledger.debit(client_money, M("30.00")),
                          ledger.credit(cash, M("30.00"))], key="h3", kind="w", pending=True)
    voided = ledger.void_pending(second.id)
    db.session.commit()
    db.session.refresh(client_money)
    assert voided.entry_count == 0 and ledger.available(client_money) == M("30.00")
    with pytest.raises(IllegalTransition):
        ledger.post_pending(second.id)


def test_a_posted_hold_is_not_reversed_its_posting_is(books):
    cash, client_money, _ = books
    hold = ledger.book([ledger.debit(cash, M("5.00")), ledger.credit(client_money, M("5.00"))],
                       key="h-rev", kind="deposit", pending=True)
    posting = ledger.post_pending(hold.id)
    db.session.commit()
    with pytest.raises(Conflict) as refused:
        ledger.reverse(hold.id)
    assert refused.value.field == "transaction_id"
    db.session.rollback()
    reversal = ledger.reverse(posting.id)
    db.session.commit()
    assert reversal.reverses_id == posting.id and ledger.balance(cash) == M("0.00")


def test_a_reversal_undoes_a_transaction_once_and_points_at_it(books):
    cash, client_money, _ = books
    original = deposit(cash, client_money, "25.00", "d")
    reversal = ledger.reverse(original.id, reason="entered twice")
    assert ledger.reverse(original.id, reason="entered twice").id == reversal.id
    db.session.commit()
    assert reversal.reverses_id == original.id and ledger.balance(cash) == M("0.00")
    with pytest.raises(Conflict):
        ledger.reverse(reversal.id)
    with pytest.raises(Conflict):   # a second reversal under another key
        ledger.reverse(original.id, key="again")


def test_balances_as_of_a_past_date(books):
    cash, client_money, _ = books
    today = clock.today()
    for days, amount in ((10, "1.00"), (5, "2.00"), (0, "4.00")):
        ledger.book([ledger.debit(cash, M(amount)), ledger.credit(client_money, M(amount))],
                    key=f"d{days}", kind="deposit", value_date=today - timedelta(days=days))
    db.session.commit()
    assert ledger.balance(cash, as_of=today - timedelta(days=11)) == M("0.00")
    assert ledger.balance(cash, as_of=today - timedelta(days=6)) == M("1.00")
    assert ledger.balance(cash, as_of=today - timedelta(days=1)) == M("3.00")
    assert ledger.balance(cash, as_of=today) == ledger.balance(cash) == M("7.00")
    assert ledger.balance(client_money, as_of=today - timedelta(days=5)) == M("3.00")


def test_large_amounts_keep_every_digit(books):
    cash, client_money, _ = books
    big = "92233720368547.75"    # near the 64-bit limit of minor units
    deposit(cash, client_money, big, "big")
    deposit(cash, client_money, "0.01", "cent")
    db.session.commit()
    db.session.expire_all()
    assert ledger.balance(cash) == M("92233720368547.76")
    total = db.session.execute(select(func.sum(LedgerEntry.amount)).where(
        LedgerEntry.account_id == cash.id)).scalar_one()
    assert total == 9223372036854776


def test_zero_decimal_and_three_decimal_currencies(app):
    yen_a, yen_b = acct(10, "JPY"), acct(11, "JPY")
    dinar_a, dinar_b = acct(12, "KWD"), acct(13, "KWD")
    ledger.book([ledger.debit(yen_a, M("1500", "JPY")), ledger.credit(yen_b, M("1500", "JPY"))],
                key="jpy", kind="t")
    ledger.book([ledger.debit(dinar_a, M("1.234", "KWD")),
                 ledger.credit(dinar_b, M("1.234", "KWD"))], key="kwd", kind="t")
    with pytest.raises(ValidationFailed):
        ledger.book([ledger.debit(yen_a, M("0.5", "JPY")),
                     ledger.credit(yen_b, M("0.5", "JPY"))], key="half-yen", kind="t")
    db.session.commit()
    assert ledger.balance(yen_a) == M("1500", "JPY")
    assert ledger.balance(dinar_a) == M("1.234", "KWD")


# --------------------------------------------------------------------------- the database

def _refused(statement, params=None):
    with pytest.raises(DBAPIError):
        with db.session.begin_nested():
            db.session.execute(text(statement), params or {})
            db.session.flush()


def test_the_database_refuses_changes_to_committed_entries(books):
    cash, client_money, _ = books
    deposit(cash, client_money, "10.00", "d")
    db.session.commit()
    _refused("UPDATE ledger_entries SET amount = amount + 1")
    _refused("DELETE FROM ledger_entries")
    _refused("DELETE FROM ledger_transactions")
    _refused("UPDATE ledger_transactions SET description = 'edited'")
    _refused("UPDATE ledger_transactions SET status = 'voided'")   # not a pending hold
    db.session.rollback()
    assert count(LedgerEntry) == 2


def test_the_database_refuses_an_unbalanced_transaction(books):
    cash, client_money, _ = books
    conn = db.session.connection()
    conn.execute(text(
        "INSERT INTO ledger_transactions (id, scope, idempotency_key, request_hash, kind, "
        "description, status, value_date, entry_count, booked_at) VALUES (900, 'platform', "
        "'raw', 'x', 'raw', '', 'posted', :d, 2, :now)"), {"d": clock.today(),
                                                           "now": clock.now()})
    insert = ("INSERT INTO ledger_entries (transaction_id, account_id, amount, currency, phase, "
              "balance_after, sequence, value_date) VALUES (900, :a, :amount, 'CNY', "
              "'posted', :amount, :seq, :d)")
    conn.execute(text(insert), {"a": cash.id, "amount": 100, "seq": 1, "d": clock.today()})
    with pytest.raises(DBAPIError) as refused:
        conn.execute(text(insert), {"a": client_money.id, "amount": -99, "seq": 1,
                                    "d": clock.today()})
        db.session.commit()     # PostgreSQL checks at commit (a deferred trigger)
    db.session.rollback()
    assert "zero" in str(refused.value)
    assert count(LedgerTransaction) == 0 and count(LedgerEntry) == 0


def test_the_database_refuses_an_entry_in_another_currency_or_beyond_the_declared(books):
    cash, client_money, _ = books
    deposit(cash, client_money, "10.00", "d")
    db.session.commit()
    tx = db.session.execute(select(LedgerTransaction)).scalar_one()
    _refused("INSERT INTO ledger_entries (transaction_id, account_id, amount, currency, phase, "
             "value_date) VALUES (:t, :a, 5, 'CNY', 'pending', :d)",
             {"t": tx.id, "a": cash.id, "d": clock.today()})
    usd = acct(20, "USD")
    db.session.commit()
    _refused("INSERT INTO ledger_entries (transaction_id, account_id, amount, currency, phase, "
             "value_date) VALUES (:t, :a, 5, 'CNY', 'pending', :d)",
             {"t": tx.id, "a": usd.id, "d": clock.today()})


def test_a_batch_books_each_transaction_or_refuses_it_on_its_own(books):
    cash, client_money, equity = books
    deposit(cash, client_money, "50.00", "seed")
    db.session.commit()
    batch = [
        ledger.Request([ledger.debit(client_money, M("20.00")), ledger.credit(cash, M("20.00"))],
                       key="b1", kind="withdrawal"),
        ledger.Request([ledger.debit(client_money, M("40.00")), ledger.credit(cash, M("40.00"))],
                       key="b2", kind="withdrawal"),          # 30.00 left: refused
        ledger.Request([ledger.debit(cash, M("5.00")), ledger.credit(equity, M("5.00"))],
                       key="seed", kind="deposit"),           # a key used for other content
        ledger.Request([ledger.debit(client_money, M("30.00")), ledger.credit(cash, M("30.00"))],
                       key="b3", kind="withdrawal"),
    ]
    outcomes = ledger.book_many(batch)
    db.session.commit()
    assert [o.transaction is not None for o in outcomes] == [True, False, False, True]
    assert isinstance(outcomes[1].error, ledger.InsufficientFunds)
    assert isinstance(outcomes[2].error, ledger.IdempotencyConflict)
    assert ledger.balance(client_money) == M("0.00") and ledger.balance(cash) == M("0.00")
    assert count(LedgerTransaction) == 3 and count(LedgerEntry) == 6
    # the same batch again books nothing more
    again = ledger.book_many(batch)
    db.session.commit()
    assert [o.transaction.id if o.transaction else None for o in again] == [
        o.transaction.id if o.transaction else None for o in outcomes[:1]] + [None, None] + [
        outcomes[3].transaction.id]
    assert count(LedgerTransaction) == 3


def test_a_retry_is_answered_even_when_its_floor_no_longer_allows_it(books):
    cash, client_money, _ = books
    deposit(cash, client_money, "10.00", "in")
    out = ledger.book([ledger.debit(client_money, M("10.00")), ledger.credit(cash, M("10.00"))],
                      key="out", kind="withdrawal")
    db.session.commit()
    again = ledger.book([ledger.debit(client_money, M("10.00")), ledger.credit(cash, M("10.00"))],
                        key="out", kind="withdrawal")
    assert again.id == out.id and count(LedgerTransaction) == 2
    with pytest.raises(ledger.InsufficientFunds):
        ledger.book([ledger.debit(client_money, M("10.00")), ledger.credit(cash, M("10.00"))],
                    key="out-2", kind="withdrawal")


def test_many_accounts_are_opened_at_once_and_found_again(app):
    def spec(owner_id, purpose="loan_penalty", currency="USD"):
        return ledger.AccountSpec(owner_kind=OwnerKind.LOAN, purpose=purpose,
                                  currency=currency, type=AccountType.ASSET,
                                  owner_id=owner_id, name=f"Loan {owner_id} {purpose}")
    before = ledger.account(owner_kind=OwnerKind.LOAN, purpose="loan_penalty", currency="USD",
                            type=AccountType.ASSET, owner_id=1)
    db.session.commit()
    wanted = [spec(1), spec(2), spec(2, "loan_interest"), spec(3, currency="EUR"), spec(2)]
    opened = ledger.open_accounts(wanted)
    db.session.commit()
    assert len(opened) == 4 and count(LedgerAccount) == 4
    assert opened[spec(1).ident].id == before.id                # found, not opened again
    assert opened[spec(3, currency="EUR").ident].currency == "EUR"
    assert opened[spec(2, "loan_interest").ident].name == "Loan 2 loan_interest"
    assert opened[spec(2).ident].balance == 0 and opened[spec(2).ident].owner_id == 2
    # they book like any account, and asking again opens nothing
    ledger.book([ledger.debit(opened[spec(2).ident], M("1.00", "USD")),
                 ledger.credit(opened[spec(1).ident], M("1.00", "USD"))], key="k", kind="t")
    again = ledger.open_accounts(wanted)
    assert count(LedgerAccount) == 4 and {a.id for a in again.values()} == {
        a.id for a in opened.values()}
    with pytest.raises(ValidationFailed):
        ledger.open_accounts([spec(4, currency="XYZ")])
