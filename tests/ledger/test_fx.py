"""Converting between accounts in two currencies: one transaction of four legs through the
platform's FX position accounts, the rate snapshot kept, rounding half to even, retries
booked once, refusals booking nothing; and opposite conversions at once on PostgreSQL."""
from __future__ import annotations

import threading
from datetime import date, timedelta
from decimal import Decimal, localcontext

import pytest
from sqlalchemy import func, select

from finance_app import clock
from finance_app.accounts.states import OrgKind, Role
from finance_app.errors import ValidationFailed
from finance_app.extensions import db
from finance_app.ledger import fx, rates
from finance_app.ledger import services as ledger
from finance_app.ledger.models import ExchangeRate, LedgerAccount, LedgerEntry, LedgerTransaction
from finance_app.ledger.states import AccountType, OwnerKind, RateSource
from finance_app.money import Money
from tests.factories import make_org_user

DAY = date(2025, 6, 2)


def M(amount: str, currency: str) -> Money:
    return Money(Decimal(amount), currency)


def count(model) -> int:
    return db.session.execute(select(func.count()).select_from(model)).scalar_one()


def put(base: str, quote: str, rate: str, day: date = DAY, source=RateSource.CFETS) -> None:
    db.session.add(ExchangeRate(base=base, quote=quote, rate=Decimal(rate), rate_date=day,
                                source=source, note="test"))
    db.session.commit()


def cash(currency: str, n: int = 1) -> LedgerAccount:
    """A platform bank account (an asset) in ``currency``."""
    return ledger.account(owner_kind=OwnerKind.PLATFORM, owner_id=n, purpose="bank",
                          currency=currency, type=AccountType.ASSET)


def legs(transaction: LedgerTransaction) -> list[tuple[str, int, str]]:
    return [(e.account.purpose, e.amount, e.currency) for e in transaction.entries]


@pytest.fixture
def usd_cny(app):
    put("USD", "CNY", "7.1865")
    usd, cny = cash("USD"), cash("CNY")
    db.session.commit()
    return usd, cny


def test_a_conversion_is_one_transaction_of_four_legs_balanced_per_currency(usd_cny):
    usd, cny = usd_cny
    tx = fx.convert(usd, cny, M("100.00", "USD"), key="c1", org_id=None, value_date=DAY)
    db.session.commit()
    assert tx.kind == "fx_conversion" and tx.value_date == DAY and tx.entry_count == 4
    assert legs(tx) == [("bank", -10000, "USD"), ("fx_position", 10000, "USD"),
                        ("fx_position", -71865, "CNY"), ("bank", 71865, "CNY")]
    for currency in ("USD", "CNY"):
        assert sum(e.amount for e in tx.entries if e.currency == currency) == 0
    assert ledger.balance(usd) == M("-100.00", "USD")
    assert ledger.balance(cny) == M("718.65", "CNY")
    assert ledger.balance(fx.position("USD")) == M("100.00", "USD")
    assert ledger.balance(fx.position("CNY")) == M("-718.65", "CNY")
    position = fx.position("CNY")
    assert (position.owner_kind, position.type, position.org_id) == (
        OwnerKind.PLATFORM, AccountType.ASSET, None)


def test_the_rate_snapshot_is_stored_with_the_transaction(usd_cny):
    usd, cny = usd_cny
    tx = fx.convert(cny, usd, M("1000.00", "CNY"), key="c1", org_id=None, value_date=DAY,
                    description="supplier payment")
    db.session.commit()
    snap = fx.snapshot(tx)
    with localcontext(prec=40):
        inverse = Decimal(1) / Decimal("7.1865")
    assert (snap["base"], snap["quote"], Decimal(snap["rate"])) == ("CNY", "USD", inverse)
    assert (snap["rate_date"], snap["source"], snap["via"]) == ("2025-06-02", "cfets", None)
    rate_id = db.session.execute(select(ExchangeRate.id)).scalar_one()
    assert snap["path"] == [{"rate_id": rate_id, "base": "CNY", "quote": "USD",
                             "stored_rate": "7.1865000000", "inverted": True,
                             "rate_date": "2025-06-02", "source": "cfets"}]
    assert snap["rounding"] == "ROUND_HALF_EVEN" and snap["converted"] == "139.15"
    assert snap["exact"].startswith("139.1497947540527")          # 1000 / 7.1865
    assert tx.description == "supplier payment"


def test_a_cross_conversion_through_eur_keeps_both_legs(app):
    put("EUR", "USD", "1.0163", source=RateSource.ECB)
    put("EUR", "BRL", "5.4345", source=RateSource.ECB)
    usd, brl = cash("USD"), cash("BRL")
    tx = fx.convert(usd, brl, M("2500.00", "USD"), key="c1", org_id=None,
                    value_date=DAY + timedelta(days=2))
    db.session.commit()
    snap = fx.snapshot(tx)
    assert snap["via"] == "EUR" and snap["rate_date"] == DAY.isoformat()
    assert [(leg["base"], leg["quote"], leg["inverted"]) for leg in snap["path"]] == [
        ("USD", "EUR", True), ("EUR", "BRL", False)]
    # 2500 / 1.0163 x 5.4345 = 13368.3459608...
    assert ledger.balance(brl) == M("13368.35", "BRL")
    assert tx.value_date == DAY + timedelta(days=2)


@pytest.mark.parametrize("amount, rate, converted", [
    ("1.00", "1.125", "1.12"),      # 1.125: a tie, to the even cent
    ("3.00", "1.125", "3.38"),      # 3.375: a tie, to the even cent
    ("1.01", "1.125", "1.14"),      # 1.13625: no tie, nearest
])
def test_the_converted_amount_is_rounded_half_to_even(app, amount, rate, converted):
    put("EUR", "USD", rate, source=RateSource.ECB)
    eur, usd = cash("EUR"), cash("USD")
    fx.convert(eur, usd, M(amount, "EUR"), key="c", org_id=None, value_date=DAY)
    db.session.commit()
    assert ledger.balance(usd) == M(converted, "USD")


def test_the_rounding_residual_stays_in_the_position_accounts(usd_cny):
    usd, cny = usd_cny
    amounts = ["10.01", "33.33", "0.07", "1234.57"]
    for n, amount in enumerate(amounts):
        fx.convert(usd, cny, M(amount, "USD"), key=f"c{n}", org_id=None, value_date=DAY)
    db.session.commit()
    exact = sum(Decimal(a) * Decimal("7.1865") for a in amounts)          # 9553.25...
    rounded = sum(round(Decimal(a) * Decimal("7.1865"), 2) for a in amounts)
    assert ledger.balance(cny) == M(str(rounded), "CNY")
    usd_position = ledger.balance(fx.position("USD")).amount
    cny_position = ledger.balance(fx.position("CNY")).amount
    assert usd_position == sum(Decimal(a) for a in amounts)
    # what the positions hold, valued at the rate, is exactly the rounding residual
    assert usd_position * Decimal("7.1865") + cny_position == exact - rounded != 0


def test_client_money_accounts_get_the_mirror_legs_and_keep_their_floor(app):
    put("USD", "CNY", "7.1865")
    sme = make_org_user(OrgKind.SME, roles=(Role.OFFICER,))
    wallets = {c: ledger.account(owner_kind=OwnerKind.ORGANISATION, org_id=sme.org_id,
                                 purpose="client_money", currency=c,
                                 type=AccountType.LIABILITY, min_balance=M("0", c))
               for c in ("USD", "CNY")}
    bank = cash("USD")
    ledger.book([ledger.debit(bank, M("500.00", "USD")),
                 ledger.credit(wallets["USD"], M("500.00", "USD"))], key="in", kind="deposit")
    db.session.commit()
    tx = fx.convert(wallets["USD"], wallets["CNY"], M("200.00", "USD"), key="c1",
                    org_id=sme.org_id, value_date=DAY, actor=sme)
    db.session.commit()
    assert legs(tx) == [("client_money", 20000, "USD"), ("fx_position", -20000, "USD"),
                        ("fx_position", 143730, "CNY"), ("client_money", -143730, "CNY")]
    assert ledger.balance(wallets["USD"]) == M("300.00", "USD")
    assert ledger.balance(wallets["CNY"]) == M("1437.30", "CNY")
    assert tx.actor_id == sme.id and tx.scope == f"org:{sme.org_id}"
    with pytest.raises(ledger.InsufficientFunds):
        fx.convert(wallets["USD"], wallets["CNY"], M("300.01", "USD"), key="c2",
                   org_id=sme.org_id, value_date=DAY)
    db.session.commit()
    assert count(LedgerTransaction) == 2 and ledger.balance(wallets["USD"]) == M("300.00", "USD")


def test_a_retry_with_the_same_key_books_once_even_after_a_rate_correction(usd_cny):
    usd, cny = usd_cny
    first = fx.convert(usd, cny, M("100.00", "USD"), key="k", org_id=None, value_date=DAY)
    db.session.commit()
    again = fx.convert(usd, cny, M("100.00", "USD"), key="k", org_id=None, value_date=DAY)
    put("USD", "CNY", "7.2000", source=RateSource.MANUAL)          # overrides the day
    later = fx.convert(usd, cny, M("100.00", "USD"), key="k", org_id=None, value_date=DAY)
    db.session.commit()
    assert first.id == again.id == later.id
    assert count(LedgerTransaction) == 1 and count(LedgerEntry) == 4
    with pytest.raises(ledger.IdempotencyConflict):
        fx.convert(usd, cny, M("100.01", "USD"), key="k", org_id=None, value_date=DAY)
    # a new key books at the corrected rate
    fresh = fx.convert(usd, cny, M("100.00", "USD"), key="k2", org_id=None, value_date=DAY)
    assert fx.snapshot(fresh)["source"] == "manual"
    assert ledger.balance(cny) == M("1438.65", "CNY")


def test_the_rate_of_the_value_date_applies(usd_cny):
    usd, cny = usd_cny
    put("USD", "CNY", "7.2000", DAY + timedelta(days=7))
    fx.convert(usd, cny, M("10.00", "USD"), key="old", org_id=None,
               value_date=DAY + timedelta(days=6))
    fx.convert(usd, cny, M("10.00", "USD"), key="today", org_id=None)    # today by default
    db.session.commit()
    old, today = db.session.execute(select(LedgerTransaction).order_by(
        LedgerTransaction.id)).scalars().all()
    # 71.865 CNY: a tie, to the even fen
    assert fx.snapshot(old)["rate_date"] == DAY.isoformat() and old.entries[3].amount == 7186
    assert today.value_date == clock.today() and today.entries[3].amount == 7200


@pytest.mark.parametrize("case, field", [
    ("same currency", "currency"),
    ("zero", "amount"),
    ("negative", "amount"),
    ("too many decimals", "amount"),
    ("amount in another currency", "currency"),
    ("future value date", "value_date"),
    ("no rate", "currency"),
    ("no rate that early", "value_date"),
    ("below one minor unit", "amount"),
])
def test_a_refused_conversion_books_nothing(usd_cny, case, field):
    usd, cny = usd_cny
    put("USD", "KRW", "1400")
    args = {
        "same currency": (usd, cash("USD", 2), M("1.00", "USD"), DAY),
        "zero": (usd, cny, M("0.00", "USD"), DAY),
        "negative": (usd, cny, M("-5.00", "USD"), DAY),
        "too many decimals": (usd, cny, M("1.005", "USD"), DAY),
        "amount in another currency": (usd, cny, M("1.00", "EUR"), DAY),
        "future value date": (usd, cny, M("1.00", "USD"), clock.today() + timedelta(days=1)),
        "no rate": (usd, cash("NGN"), M("1.00", "USD"), DAY),
        "no rate that early": (usd, cny, M("1.00", "USD"), DAY - timedelta(days=1)),
        "below one minor unit": (cash("KRW"), usd, M("1", "KRW"), DAY),   # 0.0007 USD
    }[case]
    db.session.commit()
    accounts = count(LedgerAccount)
    with pytest.raises(ValidationFailed) as refused:
        fx.convert(*args[:3], key="c", org_id=None, value_date=args[3])
    assert refused.value.field == field, refused.value.message
    db.session.commit()
    assert count(LedgerTransaction) == 0 and count(LedgerEntry) == 0
    assert count(LedgerAccount) == accounts          # no position account opened either
    if case.startswith("no rate"):
        assert isinstance(refused.value, rates.RateMissing)


# --------------------------------------------------------------------------- concurrency

@pytest.mark.postgres
def test_opposite_conversions_at_once_all_book_without_deadlock(app):
    """Ten USD->CNY and ten CNY->USD conversions between the same two accounts, all at
    once, with the position accounts not yet opened: every one is booked, each once, and
    the positions hold exactly the sum of their legs."""
    put("USD", "CNY", "7.1865")
    usd, cny = cash("USD"), cash("CNY")
    db.session.commit()
    usd_id, cny_id = usd.id, cny.id
    start = threading.Barrier(20, timeout=30)
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            with app.app_context():
                start.wait()
                if n % 2:
                    fx.convert(usd_id, cny_id, M("10.01", "USD"), key=f"u{n}", org_id=None,
                               value_date=DAY)
                else:
                    fx.convert(cny_id, usd_id, M("100.00", "CNY"), key=f"c{n}",
                               org_id=None, value_date=DAY)
                db.session.commit()
        except BaseException as exc:   # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    db.session.expire_all()
    assert count(LedgerTransaction) == 20 and count(LedgerEntry) == 80
    # 10.01 USD -> 71.94 CNY (71.936865); 100.00 CNY -> 13.91 USD (13.9149794...)
    assert ledger.balance(fx.position("USD")) == M("-39.00", "USD")      # 10x10.01 - 10x13.91
    assert ledger.balance(fx.position("CNY")) == M("280.60", "CNY")      # 10x100 - 10x71.94
    assert ledger.balance(ledger.get_account(usd_id)) == M("39.00", "USD")
    assert ledger.balance(ledger.get_account(cny_id)) == M("-280.60", "CNY")
    for account in (fx.position("USD"), fx.position("CNY")):
        entries = db.session.execute(select(LedgerEntry).where(
            LedgerEntry.account_id == account.id).order_by(LedgerEntry.sequence)
        ).scalars().all()
        assert [e.sequence for e in entries] == list(range(1, 21))
        assert entries[-1].balance_after == account.balance == sum(e.amount for e in entries)
    assert count(LedgerAccount) == 4
