"""The ledger loses nothing, whatever is asked of it in whatever order.

A Hypothesis state machine books random transfers and multi-leg transactions between
accounts in three currencies (CNY, USD and yen, which has no minor unit), some of them
with a floor; takes holds and posts or voids them (sometimes twice); reverses whatever it
picks (a transfer, a reversal, a hold, a posting); converts between currencies through the
FX position accounts; retries earlier keys with the same request and with another one;
and sends bad input. A plain in-memory model says what each call must do. After every
step the database is checked against the model and against the ledger's own rules:

* each transaction's entries sum to zero per currency and phase, and there are as many
  as it declares;
* the posted balances of all accounts sum to zero per currency, and so do the pending
  columns;
* each account's balance is the sum of its posted entries and the model's; its
  running-balance chain is unbroken (sequence 1..n, each balance_after the one before
  plus the amount, the last one the balance);
* each account's pending columns are the sums of its unresolved holds, and the model's;
* no account is below its floor;
* each (scope, key) names one transaction, the one the model expects, and nothing was
  booked that the model did not (transactions and entries are counted);
* a hold is resolved at most once, and its status is the model's.

It runs on the real database (SQLite, or PostgreSQL with ``TEST_DATABASE_URL``), each
call committed as a request would be, refusals included (so a refusal that left
something behind would be seen). The database is reset per test, not per example: each
example opens accounts of its own owners and uses keys of its own, and the shared FX
position accounts are read at the start of each example.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine, initialize, invariant, precondition, rule,
    run_state_machine_as_test,
)
from sqlalchemy import select, text

from finance_app import clock
from finance_app.errors import Conflict, IllegalTransition, ValidationFailed
from finance_app.extensions import db
from finance_app.ledger import fx
from finance_app.ledger import services as ledger
from finance_app.ledger.models import ExchangeRate, LedgerAccount, LedgerTransaction
from finance_app.ledger.states import AccountType, OwnerKind, RateSource
from finance_app.money import Money, minor_units

CURRENCIES = ("CNY", "USD", "JPY")
# Per currency: (purpose, type, floor in minor units or None).
ACCOUNTS = (
    ("cash", AccountType.ASSET, None),          # a bank account: no floor
    ("wallet", AccountType.ASSET, 0),           # debit-normal, may not go below zero
    ("client", AccountType.LIABILITY, 0),       # a client's money: credit-normal, floor 0
    ("line", AccountType.LIABILITY, -5000),     # may go 5,000 units overdrawn
    ("equity", AccountType.EQUITY, None),
)
# Rates stored for the test (USD/CNY and JPY/CNY); every other pair is derived through
# CNY. Chosen so that each derived rate is exact, so the model can compute it.
STORED_RATES = (("USD", "CNY", Decimal("6.25")), ("JPY", "CNY", Decimal("0.05")))
RATES = {("USD", "CNY"): Fraction("6.25"), ("CNY", "USD"): Fraction("0.16"),
         ("JPY", "CNY"): Fraction("0.05"), ("CNY", "JPY"): Fraction(20),
         ("USD", "JPY"): Fraction(125), ("JPY", "USD"): Fraction("0.008")}
REASON = "entered twice"

_examples = itertools.count(1)

units = st.one_of(st.integers(1, 3000), st.sampled_from([1, 99, 100, 4999, 5000, 10**7]))
past_days = st.one_of(st.none(), st.integers(0, 5))


# --------------------------------------------------------------------------- the model

@dataclass
class Account:
    id: int
    currency: str
    debit_normal: bool
    floor: int | None
    balance: int = 0            # posted, debit-positive
    pending_debits: int = 0
    pending_credits: int = 0
    posted: list[tuple[int, date]] = field(default_factory=list)   # (amount, value date)
    shared: bool = False        # an FX position account, used by every example

    @property
    def available(self) -> int:
        normal = self.balance if self.debit_normal else -self.balance
        return normal - (self.pending_credits if self.debit_normal else self.pending_debits)

    def normal(self, signed: int) -> int:
        return signed if self.debit_normal else -signed


@dataclass
class Tx:
    id: int
    key: str
    kind: str                   # book, hold, post, void, reversal, convert
    moves: list[tuple[int, int]]   # (account id, debit-positive units) as booked
    request: tuple              # how to ask for it again, the same way
    status: str = "posted"      # a hold: pending, posted or voided
    reversed_by: int | None = None
    resolved_by: int | None = None
    entries: int = 0


class LedgerMachine(RuleBasedStateMachine):

    def __init__(self):
        super().__init__()
        self.ns = f"sm{next(_examples)}"
        self.serial = itertools.count(1)
        self.accounts: dict[int, Account] = {}
        self.by_currency: dict[str, list[int]] = {}
        self.txs: dict[int, Tx] = {}
        self.keys: dict[str, int] = {}
        self.shared_entries: dict[int, int] = {}   # entry count of shared accounts at start

    def key(self, what: str = "t") -> str:
        return f"{self.ns}:{what}{next(self.serial)}"

    # ----------------------------------------------------------------------- set-up

    @initialize()
    def open_accounts(self):
        example = int(self.ns[2:])
        for currency in CURRENCIES:
            for n, (purpose, type_, floor) in enumerate(ACCOUNTS):
                row = ledger.account(
                    owner_kind=OwnerKind.PLATFORM, owner_id=example * 100 + n,
                    purpose=purpose, currency=currency, type=type_,
                    min_balance=Money.from_minor(floor, currency) if floor is not None
                    else None)
                self.accounts[row.id] = Account(row.id, currency, type_.debit_normal, floor)
                self.by_currency.setdefault(currency, []).append(row.id)
            position = fx.position(currency)
            db.session.flush()
            self.accounts[position.id] = Account(
                position.id, currency, True, None, balance=position.balance,
                pending_debits=position.pending_debits,
                pending_credits=position.pending_credits, shared=True)
            self.shared_entries[position.id] = position.entry_count
        db.session.commit()

    # ----------------------------------------------------------------------- helpers

    def _draw_account(self, data, currency: str | None = None, *, shared=False) -> int:
        ids = [i for i in (self.by_currency[currency] if currency else self.accounts)
               if shared or not self.accounts[i].shared]
        return data.draw(st.sampled_from(sorted(ids)))

    def _simulate(self, moves, *, pending=False, release=()) -> dict[int, Account] | None:
        """The accounts after ``moves`` (and ``release``), or None if a floor refuses."""
        touched = {i for i, _ in (*release, *moves)}
        after = {i: replace(self.accounts[i], posted=list(self.accounts[i].posted))
                 for i in touched}
        before = {i: self.accounts[i].available for i in touched}
        for i, amount in release:
            if amount > 0:
                after[i].pending_debits -= amount
            else:
                after[i].pending_credits += amount
        for i, amount in moves:
            if pending:
                if amount > 0:
                    after[i].pending_debits += amount
                else:
                    after[i].pending_credits -= amount
            else:
                after[i].balance += amount
                after[i].posted.append((amount, self.value_date))
        for i, _ in moves:
            account = after[i]
            if account.floor is not None and account.available < before[i] \
                    and account.available < account.floor:
                return None
        return after

    def _expect_refusal(self, call, error=ValidationFailed, field_name=None, exact=True):
        with pytest.raises(error) as refused:
            call()
        if exact:
            assert type(refused.value) is error, refused.value
        if field_name is not None:
            assert refused.value.field == field_name, (refused.value.field, refused.value)
        db.session.commit()   # what a refused request leaves behind would be kept
        return refused.value

    def _record(self, tx: LedgerTransaction, kind, moves, request, after, *, status="posted"):
        assert tx.id not in self.txs, f"transaction {tx.id} returned for a new request"
        self.accounts.update(after)
        self.txs[tx.id] = Tx(tx.id, tx.idempotency_key, kind, moves, request, status=status,
                             entries=len(moves))
        self.keys[tx.idempotency_key] = tx.id
        return self.txs[tx.id]

    def _book(self, postings, *, pending: bool, back: int | None, kind="transfer"):
        value_date = clock.today() - timedelta(days=back) if back is not None else None
        self.value_date = value_date or clock.today()
        moves = [(p.account_id, p.amount.to_minor()) for p in postings]
        key = self.key()
        request = (tuple(postings), kind, pending, value_date)
        after = self._simulate(moves, pending=pending)
        call = lambda: ledger.book(postings, key=key, kind=kind, pending=pending,  # noqa: E731
                                   value_date=value_date)
        if after is None:
            self._expect_refusal(call, ledger.InsufficientFunds, "amount")
            return
        tx = call()
        db.session.commit()
        self._record(tx, "hold" if pending else "book", moves, request, after,
                     status="pending" if pending else "posted")

    def _money(self, account_id: int, amount: int) -> Money:
        return Money.from_minor(amount, self.accounts[account_id].currency)

    # ----------------------------------------------------------------------- rules

    @rule(data=st.data(), amount=units, pending=st.booleans(), back=past_days)
    def transfer(self, data, amount, pending, back):
        currency = data.draw(st.sampled_from(CURRENCIES))
        source = self._draw_account(data, currency)
        target = data.draw(st.sampled_from(
            [i for i in self.by_currency[currency] if i != source]))
        money = Money.from_minor(amount, currency)
        self._book([ledger.debit(target, money), ledger.credit(source, money)],
                   pending=pending, back=back)

    @rule(data=st.data(), pending=st.booleans())
    def multi_leg(self, data, pending):
        """Two to four legs in each of one or two currencies; an account may appear twice."""
        postings = []
        for currency in data.draw(st.lists(st.sampled_from(CURRENCIES), min_size=1,
                                           max_size=2, unique=True)):
            legs = data.draw(st.lists(st.integers(-3000, 3000).filter(bool), min_size=1,
                                      max_size=3))
            while sum(legs) == 0:
                legs[0] += 1 if legs[0] != -1 else 2
            legs.append(-sum(legs))
            for amount in legs:
                postings.append(ledger.Posting(self._draw_account(data, currency),
                                               Money.from_minor(amount, currency)))
        self._book(postings, pending=pending, back=None, kind="split")

    @precondition(lambda self: any(t.kind == "hold" for t in self.txs.values()))
    @rule(data=st.data(), post=st.booleans(), again=st.booleans())
    def resolve_hold(self, data, post, again):
        """Post or void a hold; sometimes one already resolved, with its key or a new one."""
        hold = self.txs[data.draw(st.sampled_from(
            sorted(i for i, t in self.txs.items() if t.kind == "hold")))]
        action = "post" if post else "void"
        done = self.txs.get(hold.resolved_by) if hold.resolved_by else None
        key = done.key if again and done is not None else self.key(action)
        call = (ledger.post_pending if post else ledger.void_pending)
        self.value_date = clock.today()
        if done is not None:
            if done.kind == action and done.key == key:
                assert call(hold.id, key=key).id == done.id     # the same request again
                db.session.commit()
            else:
                self._expect_refusal(lambda: call(hold.id, key=key), IllegalTransition)
            return
        moves = hold.moves if post else []
        after = self._simulate(moves, release=hold.moves)
        assert after is not None, "resolving a hold never breaches a floor"
        tx = call(hold.id, key=key)
        db.session.commit()
        assert tx.pending_id == hold.id and tx.kind == action
        self._record(tx, action, moves, (hold.id,), after)
        hold.status, hold.resolved_by = ("posted" if post else "voided"), tx.id

    @precondition(lambda self: bool(self.txs))
    @rule(data=st.data(), again=st.booleans())
    def reverse(self, data, again):
        original = self.txs[data.draw(st.sampled_from(sorted(self.txs)))]
        done = self.txs.get(original.reversed_by) if original.reversed_by else None
        key = done.key if again and done is not None else self.key("r")
        call = lambda: ledger.reverse(original.id, key=key, reason=REASON)  # noqa: E731
        self.value_date = clock.today()
        if original.kind in ("hold", "void", "reversal"):
            # a hold is posted or voided, not reversed (once posted, its posting is
            # reversed); a void moved nothing; a reversal is not reversed
            self._expect_refusal(call, Conflict, "transaction_id")
            return
        if done is not None:
            if key == done.key:
                assert call().id == done.id
                db.session.commit()
            else:
                self._expect_refusal(call, Conflict, "transaction_id")
            return
        moves = [(i, -amount) for i, amount in original.moves]
        after = self._simulate(moves)
        if after is None:
            self._expect_refusal(call, ledger.InsufficientFunds, "amount")
            return
        tx = call()
        db.session.commit()
        assert tx.reverses_id == original.id
        self._record(tx, "reversal", moves, (original.id,), after)
        original.reversed_by = tx.id

    @rule(data=st.data(), amount=units, back=past_days)
    def convert(self, data, amount, back):
        source = self._draw_account(data)
        source_currency = self.accounts[source].currency
        target = self._draw_account(data, data.draw(st.sampled_from(
            [c for c in CURRENCIES if c != source_currency])))
        target_currency = self.accounts[target].currency
        value_date = clock.today() - timedelta(days=back) if back is not None else None
        self.value_date = value_date or clock.today()
        money = Money.from_minor(amount, source_currency)
        exact = (Fraction(amount, 10 ** minor_units(source_currency))
                 * RATES[source_currency, target_currency] * 10 ** minor_units(target_currency))
        converted = round(exact)      # Python rounds a Fraction half to even
        key = self.key("fx")
        call = lambda: fx.convert(source, target, money, key=key, org_id=None,  # noqa: E731
                                  value_date=value_date)
        if converted == 0:
            self._expect_refusal(call, ValidationFailed, "amount")
            return
        positions = {self.accounts[i].currency: i for i in self.accounts
                     if self.accounts[i].shared}
        leaving, arriving = positions[source_currency], positions[target_currency]
        sign_out = -1 if self.accounts[source].debit_normal else 1
        sign_in = 1 if self.accounts[target].debit_normal else -1
        moves = [(source, sign_out * amount), (leaving, -sign_out * amount),
                 (arriving, -sign_in * converted), (target, sign_in * converted)]
        after = self._simulate(moves)
        if after is None:
            self._expect_refusal(call, ledger.InsufficientFunds, "amount")
            return
        tx = call()
        db.session.commit()
        self._record(tx, "convert", moves, (source, target, money, value_date), after)

    @precondition(lambda self: any(t.kind in ("book", "hold", "convert")
                                   for t in self.txs.values()))
    @rule(data=st.data())
    def retry_same(self, data):
        """The same request under its key again: the first transaction, nothing booked."""
        earlier = self.txs[data.draw(st.sampled_from(sorted(
            i for i, t in self.txs.items() if t.kind in ("book", "hold", "convert"))))]
        if earlier.kind == "convert":
            source, target, money, value_date = earlier.request
            again = fx.convert(source, target, money, key=earlier.key, org_id=None,
                               value_date=value_date)
        else:
            postings, kind, pending, value_date = earlier.request
            again = ledger.book(list(postings), key=earlier.key, kind=kind, pending=pending,
                                value_date=value_date)
        assert again.id == earlier.id
        db.session.commit()

    @precondition(lambda self: bool(self.keys))
    @rule(data=st.data(), amount=units)
    def retry_other_content(self, data, amount):
        """An earlier key (of any kind of transaction) with another request: refused."""
        earlier = self.txs[self.keys[data.draw(st.sampled_from(sorted(self.keys)))]]
        if earlier.kind in ("book", "hold"):
            postings, kind, pending, value_date = earlier.request
            other = [replace(p, amount=p.amount + p.amount) for p in postings]  # doubled
            call = lambda: ledger.book(other, key=earlier.key, kind=kind,  # noqa: E731
                                       pending=pending, value_date=value_date)
        elif earlier.kind == "convert":
            source, target, money, value_date = earlier.request
            other = Money.from_minor(money.to_minor() + amount, money.currency)
            call = lambda: fx.convert(source, target, other, key=earlier.key,  # noqa: E731
                                      org_id=None, value_date=value_date)
        else:
            currency = data.draw(st.sampled_from(CURRENCIES))
            a, b = self.by_currency[currency][:2]
            money = Money.from_minor(amount, currency)
            call = lambda: ledger.book(  # noqa: E731
                [ledger.debit(a, money), ledger.credit(b, money)], key=earlier.key,
                kind="transfer")
        self._expect_refusal(call, ledger.IdempotencyConflict, "idempotency_key")

    @rule(data=st.data(), amount=units,
          mistake=st.sampled_from(["zero", "decimals", "unbalanced", "future", "one leg",
                                   "currency", "no account"]))
    def bad_input(self, data, amount, mistake):
        """Refused with the field at fault; nothing booked (the invariants count)."""
        currency = data.draw(st.sampled_from(CURRENCIES))
        a, b = self.by_currency[currency][:2]
        money = Money.from_minor(amount, currency)
        value_date, fields = None, {}
        postings = [ledger.debit(a, money), ledger.credit(b, money)]
        if mistake == "zero":
            postings, field_name = [ledger.debit(a, Money(Decimal(0), currency)),
                                    ledger.credit(b, Money(Decimal(0), currency))], "amount"
        elif mistake == "decimals":   # one digit finer than the currency's minor unit
            finer = money.amount + Decimal(1).scaleb(-minor_units(currency) - 1)
            postings, field_name = [ledger.debit(a, Money(finer, currency)),
                                    ledger.credit(b, Money(finer, currency))], "amount"
        elif mistake == "unbalanced":
            postings, field_name = [ledger.debit(a, money), ledger.credit(
                b, Money.from_minor(amount + 1, currency))], "postings"
        elif mistake == "future":
            value_date, field_name = clock.today() + timedelta(
                days=data.draw(st.integers(1, 400))), "value_date"
        elif mistake == "one leg":
            postings, field_name = [ledger.debit(a, money)], "postings"
        elif mistake == "currency":   # balanced, but in a currency the accounts do not hold
            other = next(c for c in CURRENCIES if c != currency)
            postings = [ledger.debit(a, Money.from_minor(amount, other)),
                        ledger.credit(b, Money.from_minor(amount, other))]
            field_name = "currency"
        else:
            postings, field_name = [ledger.debit(a, money),
                                    ledger.credit(10**9, money)], "account_id"
        fields = dict(key=self.key("bad"), kind="transfer", value_date=value_date)
        self._expect_refusal(lambda: ledger.book(postings, **fields), ValidationFailed,
                             field_name)

    @rule(data=st.data(), back=st.integers(0, 6))
    def balance_as_of(self, data, back):
        account_id = self._draw_account(data)
        model = self.accounts[account_id]
        row = db.session.get(LedgerAccount, account_id)
        day = clock.today() - timedelta(days=back)
        expected = model.normal(sum(a for a, d in model.posted if d <= day))
        assert ledger.balance(row, as_of=day) == Money.from_minor(expected, model.currency)
        assert ledger.balance(row) == Money.from_minor(model.normal(model.balance),
                                                       model.currency)
        assert ledger.available(row) == Money.from_minor(model.available, model.currency)

    # ----------------------------------------------------------------------- invariants

    def _rows(self, sql: str, **params) -> list:
        return db.session.execute(text(sql), params).all()

    @invariant()
    def every_transaction_balances_per_currency_and_phase(self):
        assert not self._rows(
            "SELECT transaction_id, currency, phase, SUM(amount) FROM ledger_entries "
            "GROUP BY transaction_id, currency, phase HAVING SUM(amount) <> 0")
        assert not self._rows(
            "SELECT t.id FROM ledger_transactions t LEFT JOIN ledger_entries e "
            "ON e.transaction_id = t.id GROUP BY t.id, t.entry_count "
            "HAVING COUNT(e.id) <> t.entry_count")

    @invariant()
    def balances_sum_to_zero_per_currency(self):
        for currency, balances, pending in self._rows(
                "SELECT currency, SUM(balance), SUM(pending_debits) - SUM(pending_credits) "
                "FROM ledger_accounts GROUP BY currency"):
            assert (balances, pending) == (0, 0), currency
        for currency, total in self._rows(
                "SELECT currency, SUM(amount) FROM ledger_entries WHERE phase = 'posted' "
                "GROUP BY currency"):
            assert total == 0, currency

    @invariant()
    def each_account_matches_its_entries_and_the_model(self):
        if not self.accounts:
            return
        ids = sorted(self.accounts)
        marks = ", ".join(str(i) for i in ids)
        rows = {r.id: r for r in self._rows(
            "SELECT id, currency, balance, pending_debits, pending_credits, entry_count, "
            f"min_balance FROM ledger_accounts WHERE id IN ({marks})")}
        chains: dict[int, list] = {i: [] for i in ids}
        for entry in self._rows(
                "SELECT account_id, sequence, amount, balance_after FROM ledger_entries "
                f"WHERE phase = 'posted' AND account_id IN ({marks}) "
                "ORDER BY account_id, sequence"):
            chains[entry.account_id].append(entry)
        pending = {(r.account_id, r.positive): r.total for r in self._rows(
            "SELECT e.account_id, e.amount > 0 AS positive, SUM(e.amount) AS total "
            "FROM ledger_entries e JOIN ledger_transactions t ON t.id = e.transaction_id "
            f"WHERE e.phase = 'pending' AND t.status = 'pending' AND e.account_id IN ({marks}) "
            "GROUP BY e.account_id, e.amount > 0")}
        for i in ids:
            row, model, chain = rows[i], self.accounts[i], chains[i]
            running = 0
            for n, entry in enumerate(chain, start=1):
                assert entry.sequence == n, (i, n, entry)
                running += entry.amount
                assert entry.balance_after == running, (i, entry)
            assert row.balance == running == model.balance, (i, row.balance, model)
            assert row.entry_count == len(chain)
            if not model.shared:
                assert [e.amount for e in chain] == [a for a, _ in model.posted], i
            else:
                assert len(chain) == self.shared_entries[i] + len(model.posted)
            debits = pending.get((i, True), 0) or 0
            credits = -(pending.get((i, False), 0) or 0)
            assert (row.pending_debits, row.pending_credits) == (debits, credits) == \
                (model.pending_debits, model.pending_credits), (i, model)
            if row.min_balance is not None:
                assert row.min_balance == model.floor
                assert model.available >= model.floor, (i, model)

    @invariant()
    def each_key_names_one_transaction_the_models(self):
        assert not self._rows(
            "SELECT scope, idempotency_key FROM ledger_transactions "
            "GROUP BY scope, idempotency_key HAVING COUNT(*) > 1")
        booked = {r.idempotency_key: r for r in self._rows(
            "SELECT id, idempotency_key, status, kind, entry_count, pending_id, reverses_id "
            "FROM ledger_transactions WHERE idempotency_key LIKE :ns", ns=f"{self.ns}:%")}
        assert {k: r.id for k, r in booked.items()} == self.keys
        entries = self._rows(
            "SELECT COUNT(*) FROM ledger_entries e JOIN ledger_transactions t "
            "ON t.id = e.transaction_id WHERE t.idempotency_key LIKE :ns", ns=f"{self.ns}:%")
        assert entries[0][0] == sum(t.entries for t in self.txs.values())
        for key, row in booked.items():
            tx = self.txs[row.id]
            assert row.status == tx.status and row.entry_count == tx.entries, (key, tx)
            assert row.reverses_id == (tx.request[0] if tx.kind == "reversal" else None)

    @invariant()
    def a_hold_resolves_at_most_once(self):
        assert not self._rows(
            "SELECT pending_id FROM ledger_transactions WHERE pending_id IS NOT NULL "
            "GROUP BY pending_id HAVING COUNT(*) > 1")
        for tx in self.txs.values():
            if tx.kind in ("post", "void"):
                hold = self.txs[tx.request[0]]
                assert hold.resolved_by == tx.id and hold.status == \
                    ("posted" if tx.kind == "post" else "voided")

    def teardown(self):
        db.session.rollback()


def _store_rates() -> None:
    day = clock.today() - timedelta(days=30)
    for base, quote, rate in STORED_RATES:
        db.session.add(ExchangeRate(base=base, quote=quote, rate=rate, rate_date=day,
                                    source=RateSource.MANUAL, note="property test"))
    db.session.commit()


def test_the_ledger_loses_nothing(app):
    _store_rates()
    run_state_machine_as_test(LedgerMachine, settings=settings(
        max_examples=40, stateful_step_count=30, deadline=None, database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))
    # the machine did book something, on the same database the test set up
    assert db.session.execute(select(LedgerTransaction.id).limit(1)).first() is not None
