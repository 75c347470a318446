"""Interest accrual without drift: exact day-count arithmetic, rounded once; daily postings
that add up to the rounded total where rounding each day on its own would not."""
from __future__ import annotations

from datetime import date
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, ROUND_HALF_UP, ROUND_UP, Decimal
from fractions import Fraction

import pytest

from finance_app.money import (
    ACT_360, ACT_365, CurrencyMismatch, Money, accrual_days, accrual_to_post,
    accrued_interest, round_exact,
)


def CNY(amount: str) -> Money:
    return Money(Decimal(amount), "CNY")


def post_daily(principal: Money, rate: Decimal, basis: int, days: int) -> list[Money]:
    """What a daily job posts: each day, the cumulative accrual less what is posted."""
    posted, postings = CNY("0.00"), []
    for day in range(1, days + 1):
        posting = accrual_to_post(principal, rate, day, basis, posted)
        postings.append(posting)
        posted += posting
    return postings


def naive_daily(principal: Money, rate: Decimal, basis: int, days: int) -> Money:
    """Rounding each day's interest on its own, the way that drifts."""
    one_day = accrued_interest(principal, rate, 1, basis)
    return Money(one_day.amount * days, principal.currency)


def test_a_year_of_daily_postings_adds_up_to_the_rounded_total_act_360():
    principal, rate = CNY("1000000.00"), Decimal("0.0365")
    total = accrued_interest(principal, rate, 365, ACT_360)
    assert total == CNY("37006.94")                        # 37006.9444...
    postings = post_daily(principal, rate, ACT_360, 365)
    assert sum(p.amount for p in postings) == total.amount
    assert {p.amount for p in postings} == {Decimal("101.39"), Decimal("101.38")}
    assert naive_daily(principal, rate, ACT_360, 365) == CNY("37007.35")   # 0.41 too much


def test_a_daily_interest_of_exactly_half_a_fen_does_not_drift():
    # 4562.50 at 1 % ACT/365 earns exactly 0.125 a day
    principal, rate = CNY("4562.50"), Decimal("0.01")
    assert round_exact(Fraction(4562_50, 100) * Fraction(1, 100) / 365, "CNY",
                       ROUND_HALF_UP) == CNY("0.13")
    total = accrued_interest(principal, rate, 365, ACT_365)
    assert total == CNY("45.63")                           # 45.625, half up
    postings = post_daily(principal, rate, ACT_365, 365)
    assert sum(p.amount for p in postings) == Decimal("45.63")
    assert {p.amount for p in postings} == {Decimal("0.12"), Decimal("0.13")}
    assert naive_daily(principal, rate, ACT_365, 365) == CNY("47.45")      # 1.82 too much
    # at every day of the year, what was posted is the rounded accrual to date
    running = Decimal(0)
    for day, posting in enumerate(postings, start=1):
        running += posting.amount
        assert running == accrued_interest(principal, rate, day, ACT_365).amount


def test_day_count_bases():
    principal, rate = CNY("1000000.00"), Decimal("0.0365")
    assert accrued_interest(principal, rate, 30, ACT_365) == CNY("3000.00")
    assert accrued_interest(principal, rate, 30, ACT_360) == CNY("3041.67")   # 3041.666...
    assert accrued_interest(principal, rate, 0, ACT_360) == CNY("0.00")
    assert accrual_days(date(2024, 2, 1), date(2024, 3, 1)) == 29            # a leap year
    assert accrual_days(date(2025, 2, 1), date(2025, 3, 1)) == 28
    with pytest.raises(ValueError):
        accrual_days(date(2025, 3, 1), date(2025, 2, 1))


def test_interest_is_rounded_in_the_currency_with_the_mode_asked():
    yen = Money(Decimal("36500"), "JPY")
    assert accrued_interest(yen, Decimal("0.05"), 1, ACT_365) == Money(Decimal("5"), "JPY")
    dinar = Money(Decimal("1000.000"), "KWD")
    assert accrued_interest(dinar, Decimal("0.0365"), 1, ACT_365) == Money(
        Decimal("0.100"), "KWD")
    half = CNY("4562.50")
    assert accrued_interest(half, Decimal("0.01"), 1, ACT_365,
                            rounding=ROUND_HALF_EVEN) == CNY("0.12")


@pytest.mark.parametrize("value, mode, expected", [
    ("2.345", ROUND_HALF_UP, "2.35"), ("2.345", ROUND_HALF_EVEN, "2.34"),
    ("2.355", ROUND_HALF_EVEN, "2.36"), ("-2.345", ROUND_HALF_UP, "-2.35"),
    ("-2.345", ROUND_HALF_EVEN, "-2.34"), ("2.3449999999999999999999999999999", ROUND_HALF_UP,
                                           "2.34"),
    ("2.341", ROUND_UP, "2.35"), ("2.349", ROUND_DOWN, "2.34"), ("-2.341", ROUND_UP, "-2.35"),
])
def test_exact_rounding_looks_at_every_digit(value, mode, expected):
    assert round_exact(Decimal(value), "CNY", mode) == CNY(expected)


def test_a_third_of_a_fen_is_not_a_tie():
    assert round_exact(Fraction(1, 300), "CNY", ROUND_HALF_UP) == CNY("0.00")
    assert round_exact(Fraction(1, 200), "CNY", ROUND_HALF_UP) == CNY("0.01")
    assert round_exact(Fraction(1, 200), "CNY", ROUND_HALF_EVEN) == CNY("0.00")


def test_what_is_posted_must_be_in_the_principal_currency_and_overposting_shows():
    principal, rate = CNY("1000000.00"), Decimal("0.0365")
    with pytest.raises(CurrencyMismatch):
        accrual_to_post(principal, rate, 10, ACT_360, Money(Decimal("1.00"), "USD"))
    assert accrual_to_post(principal, rate, 1, ACT_360, CNY("102.00")) == CNY("-0.61")


@pytest.mark.parametrize("args, error", [
    ((CNY("100.00"), Decimal("0.05"), 10, 364), ValueError),
    ((CNY("100.00"), Decimal("0.05"), -1, ACT_360), ValueError),
    ((CNY("100.00"), Decimal("-0.05"), 10, ACT_360), ValueError),
    ((CNY("100.00"), 0.05, 10, ACT_360), TypeError),
    ((Decimal("100.00"), Decimal("0.05"), 10, ACT_360), TypeError),
])
def test_nonsense_accrual_arguments_are_refused(args, error):
    with pytest.raises(error):
        accrued_interest(*args)
