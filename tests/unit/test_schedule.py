"""Repayment schedules: bullet and equal monthly instalments, exact to the minor unit in
currencies of 0, 2 and 3 decimals; the cost of credit and its APR. Expected figures are
worked out by hand in the comments, not by the code under test."""
from __future__ import annotations

import calendar
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, localcontext
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from finance_app.financing.schedule import (
    Instalment, RepaymentType, Schedule, apr, build_schedule, total_cost,
)
from finance_app.money import ACT_360, ACT_365, CurrencyMismatch, Money, minor_units

BULLET, EQUAL = RepaymentType.BULLET, RepaymentType.EQUAL_INSTALMENTS

# The project's autouse fixture only pushes an app context; nothing in it is per example.
PROPERTY_SETTINGS = settings(deadline=None, max_examples=300,
                             suppress_health_check=[HealthCheck.function_scoped_fixture])


def USD(amount: str) -> Money:
    return Money(Decimal(amount), "USD")


def JPY(amount: str) -> Money:
    return Money(Decimal(amount), "JPY")


def KWD(amount: str) -> Money:
    return Money(Decimal(amount), "KWD")


def rows(schedule: Schedule) -> list[tuple]:
    return [(i.due_date, i.days, i.principal, i.interest, i.outstanding_after)
            for i in schedule.instalments]


# --------------------------------------------------------------------------- bullet

def test_bullet_act_360():
    start = date(2026, 3, 2)
    schedule = build_schedule(USD("100000.00"), Decimal("0.0650"), ACT_360, start, 90, BULLET)
    # 100000 * 0.065 * 90 / 360 = 1625 exactly
    assert rows(schedule) == [(date(2026, 5, 31), 90, USD("100000.00"), USD("1625.00"),
                               USD("0.00"))]
    assert schedule.maturity == start + timedelta(days=90) == date(2026, 5, 31)
    assert schedule.total_interest == USD("1625.00")
    assert schedule.total_repaid == USD("101625.00")
    assert schedule.instalments[0].total == USD("101625.00")
    assert schedule.instalments[0].number == 1


def test_bullet_act_365():
    schedule = build_schedule(USD("100000.00"), Decimal("0.0650"), ACT_365, date(2026, 3, 2),
                              90, BULLET)
    # 100000 * 0.065 * 90 / 365 = 585000 / 365 = 1602.739726... -> 1602.74
    assert schedule.total_interest == USD("1602.74")
    assert len(schedule.instalments) == 1


def test_a_bullet_over_several_months_is_still_one_instalment():
    schedule = build_schedule(USD("5000.00"), Decimal("0.0800"), ACT_360, date(2026, 1, 1),
                              365, "bullet")
    # 5000 * 0.08 * 365 / 360 = 146000 / 360 = 405.5555... -> 405.56
    assert rows(schedule) == [(date(2027, 1, 1), 365, USD("5000.00"), USD("405.56"),
                               USD("0.00"))]


def test_interest_ties_round_half_up():
    schedule = build_schedule(USD("100.00"), Decimal("0.018"), ACT_360, date(2026, 1, 1), 1,
                              BULLET)
    # 100 * 0.018 / 360 = 0.005 exactly: half up gives 0.01 (half even would give 0.00)
    assert schedule.total_interest == USD("0.01")


def test_zero_rate_charges_no_interest():
    schedule = build_schedule(USD("900.00"), Decimal("0"), ACT_365, date(2026, 1, 10), 100,
                              EQUAL)
    assert all(i.interest == USD("0.00") for i in schedule.instalments)
    assert schedule.total_repaid == USD("900.00")


# --------------------------------------------------------------------------- equal instalments

def test_equal_instalments_usd_from_the_end_of_january():
    # 2026-01-31 + 89 days = 2026-04-30 (0 in Jan, 28 in Feb, 31 in Mar, 30 in Apr)
    schedule = build_schedule(USD("10000.00"), Decimal("0.12"), ACT_365, date(2026, 1, 31),
                              89, EQUAL)
    assert rows(schedule) == [
        # 10000.00 * 0.12 * 28 / 365 = 33600 / 365 = 92.0547... -> 92.05
        (date(2026, 2, 28), 28, USD("3333.33"), USD("92.05"), USD("6666.67")),
        # 6666.67 * 0.12 * 31 / 365 = 24800.0124 / 365 = 67.9452... -> 67.95
        (date(2026, 3, 31), 31, USD("3333.33"), USD("67.95"), USD("3333.34")),
        # 3333.34 * 0.12 * 30 / 365 = 12000.024 / 365 = 32.8767... -> 32.88
        (date(2026, 4, 30), 30, USD("3333.34"), USD("32.88"), USD("0.00")),
    ]
    assert [i.number for i in schedule.instalments] == [1, 2, 3]
    assert schedule.total_interest == USD("192.88")          # 92.05 + 67.95 + 32.88
    assert schedule.total_repaid == USD("10192.88")
    assert schedule.instalments[0].total == USD("3425.38")   # 3333.33 + 92.05
    assert schedule.maturity == date(2026, 4, 30)


def test_a_monthly_date_a_day_before_the_final_date_makes_a_one_day_last_period():
    # 2026-01-31 + 90 days = 2026-05-01; 2026-04-30 is strictly before it, so it counts
    schedule = build_schedule(USD("10000.00"), Decimal("0.12"), ACT_365, date(2026, 1, 31),
                              90, EQUAL)
    assert [(i.due_date, i.days) for i in schedule.instalments] == [
        (date(2026, 2, 28), 28), (date(2026, 3, 31), 31), (date(2026, 4, 30), 30),
        (date(2026, 5, 1), 1)]
    # 10000.00 / 4 = 2500.00 exactly, so no rounding is left for the last one
    assert [i.principal for i in schedule.instalments] == [USD("2500.00")] * 4


@pytest.mark.parametrize("tenor, count", [(1, 1), (30, 1), (31, 1), (32, 2), (59, 2),
                                          (60, 3)])
def test_months_strictly_before_the_final_date_count(tenor, count):
    # from 2026-01-15: Feb 15 is day 31, Mar 15 is day 59
    schedule = build_schedule(USD("1000.00"), Decimal("0.05"), ACT_360, date(2026, 1, 15),
                              tenor, EQUAL)
    assert len(schedule.instalments) == count
    assert schedule.maturity == date(2026, 1, 15) + timedelta(days=tenor)


@pytest.mark.parametrize("start, tenor, february", [
    (date(2027, 1, 31), 120, date(2027, 2, 28)),   # 2027-01-31 + 120 = 2027-05-31
    (date(2028, 1, 31), 121, date(2028, 2, 29)),   # leap year: 2028-01-31 + 121 = 2028-05-31
])
def test_month_end_clamping(start, tenor, february):
    schedule = build_schedule(USD("4000.00"), Decimal("0.06"), ACT_360, start, tenor, EQUAL)
    year = start.year
    assert [i.due_date for i in schedule.instalments] == [
        february, date(year, 3, 31), date(year, 4, 30), date(year, 5, 31)]
    assert [i.days for i in schedule.instalments] == [
        (february - start).days, 31, 30, 31]   # 28 or 29, then Mar, Apr, May
    assert [i.principal for i in schedule.instalments] == [USD("1000.00")] * 4


def test_jpy_keeps_whole_yen():
    # 2026-01-15 + 90 days = 2026-04-15: Feb 15 (31 days), Mar 15 (28), Apr 15 (31)
    schedule = build_schedule(JPY("10000000"), Decimal("0.03"), ACT_365, date(2026, 1, 15),
                              90, EQUAL)
    assert rows(schedule) == [
        # 10000000 * 0.03 * 31 / 365 = 9300000 / 365 = 25479.45... -> 25479
        (date(2026, 2, 15), 31, JPY("3333333"), JPY("25479"), JPY("6666667")),
        # 6666667 * 0.03 * 28 / 365 = 5600000.28 / 365 = 15342.466... -> 15342
        (date(2026, 3, 15), 28, JPY("3333333"), JPY("15342"), JPY("3333334")),
        # 3333334 * 0.03 * 31 / 365 = 3100000.62 / 365 = 8493.15... -> 8493
        (date(2026, 4, 15), 31, JPY("3333334"), JPY("8493"), JPY("0")),
    ]
    for instalment in schedule.instalments:
        assert instalment.interest.amount == instalment.interest.amount.to_integral_value()


def test_a_hundred_yen_in_three():
    schedule = build_schedule(JPY("100"), Decimal("0.05"), ACT_365, date(2026, 1, 15), 90,
                              EQUAL)
    assert [i.principal for i in schedule.instalments] == [JPY("33"), JPY("33"), JPY("34")]
    assert [i.outstanding_after for i in schedule.instalments] == [JPY("67"), JPY("34"),
                                                                   JPY("0")]
    # 100 * 0.05 * 31 / 365 = 0.42 yen -> 0
    assert schedule.total_interest == JPY("0")


def test_kwd_keeps_three_decimals():
    schedule = build_schedule(KWD("1000.000"), Decimal("0.05"), ACT_360, date(2026, 1, 15),
                              90, EQUAL)
    assert rows(schedule) == [
        # 1000 * 0.05 * 31 / 360 = 1550 / 360 = 4.30555... -> 4.306
        (date(2026, 2, 15), 31, KWD("333.333"), KWD("4.306"), KWD("666.667")),
        # 666.667 * 0.05 * 28 / 360 = 933.3338 / 360 = 2.592594... -> 2.593
        (date(2026, 3, 15), 28, KWD("333.333"), KWD("2.593"), KWD("333.334")),
        # 333.334 * 0.05 * 31 / 360 = 516.6677 / 360 = 1.435188... -> 1.435
        (date(2026, 4, 15), 31, KWD("333.334"), KWD("1.435"), KWD("0.000")),
    ]
    assert schedule.total_interest == KWD("8.334")            # 4.306 + 2.593 + 1.435


def test_a_principal_smaller_than_the_instalment_count():
    # 2 yen over 3 instalments: 2/3 rounds down to 0, the last one repays both
    schedule = build_schedule(JPY("2"), Decimal("0.10"), ACT_365, date(2026, 1, 15), 90,
                              EQUAL)
    assert [i.principal for i in schedule.instalments] == [JPY("0"), JPY("0"), JPY("2")]
    assert schedule.instalments[-1].outstanding_after == JPY("0")


def test_schedules_are_frozen():
    schedule = build_schedule(USD("100.00"), Decimal("0.05"), ACT_360, date(2026, 1, 1), 30,
                              BULLET)
    with pytest.raises(AttributeError):
        schedule.principal = USD("1.00")  # type: ignore[misc]
    with pytest.raises(AttributeError):
        schedule.instalments[0].interest = USD("0.00")  # type: ignore[misc]
    assert isinstance(schedule.instalments, tuple)
    assert isinstance(schedule.instalments[0], Instalment)


# --------------------------------------------------------------------------- properties

CURRENCIES = st.sampled_from(["USD", "JPY", "KWD"])
RATES = st.integers(0, 3000).map(lambda basis_points: Decimal(basis_points).scaleb(-4))
STARTS = st.dates(min_value=date(2000, 1, 1), max_value=date(2090, 12, 31))


def _monthly(start: date, months: int) -> date:
    """start + months calendar months, clamped to the month's end, worked out on its own."""
    year = start.year + (start.month - 1 + months) // 12
    month = (start.month - 1 + months) % 12 + 1
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


@PROPERTY_SETTINGS
@given(units=st.integers(1, 10 ** 12), currency=CURRENCIES, rate=RATES,
       day_count=st.sampled_from([ACT_360, ACT_365]), tenor=st.integers(1, 1000),
       start=STARTS, kind=st.sampled_from(list(RepaymentType)))
def test_schedules_are_exact(units, currency, rate, day_count, tenor, start, kind):
    principal = Money.from_minor(units, currency)
    zero = Money.from_minor(0, currency)
    schedule = build_schedule(principal, rate, day_count, start, tenor, kind)
    instalments = schedule.instalments
    final = start + timedelta(days=tenor)

    assert [i.number for i in instalments] == list(range(1, len(instalments) + 1))
    assert instalments[-1].due_date == schedule.maturity == final
    assert sum(i.days for i in instalments) == tenor
    if kind is BULLET:
        assert len(instalments) == 1
    else:
        for month, instalment in enumerate(instalments[:-1], start=1):
            assert instalment.due_date == _monthly(start, month)
        assert _monthly(start, len(instalments)) >= final        # no monthly date missed
    assert [i.due_date for i in instalments] == sorted({i.due_date for i in instalments})

    # principal parts: exact, equal but for the last, in whole minor units
    assert sum(i.principal.to_minor() for i in instalments) == units
    equal = units // len(instalments)
    assert [i.principal.to_minor() for i in instalments[:-1]] == [equal] * (len(instalments) - 1)
    assert instalments[-1].outstanding_after == zero

    outstanding, previous = principal, start
    scale = 10 ** minor_units(currency)
    for instalment in instalments:
        assert instalment.days == (instalment.due_date - previous).days > 0
        exact = (Fraction(outstanding.amount) * Fraction(rate) * instalment.days / day_count
                 * scale)
        # rounded once, half up: the whole minor units of exact + 1/2
        assert instalment.interest.to_minor() == int(exact + Fraction(1, 2))
        assert instalment.interest >= zero
        assert instalment.outstanding_after == outstanding - instalment.principal
        assert instalment.outstanding_after <= outstanding
        assert instalment.total == instalment.principal + instalment.interest
        outstanding, previous = instalment.outstanding_after, instalment.due_date

    assert schedule.total_repaid == principal + schedule.total_interest
    assert sum(i.total.to_minor() for i in instalments) == schedule.total_repaid.to_minor()


def _present_value(schedule: Schedule, rate: Decimal) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = 50
        return sum((i.total.amount / (1 + rate) ** (Decimal((i.due_date - schedule.start).days)
                                                    / 365)
                    for i in schedule.instalments), Decimal(0))


@PROPERTY_SETTINGS
@given(units=st.integers(100, 10 ** 12), rate=RATES,
       day_count=st.sampled_from([ACT_360, ACT_365]), tenor=st.integers(30, 1000),
       start=STARTS, kind=st.sampled_from(list(RepaymentType)),
       fee_share=st.integers(0, 500))
def test_the_apr_solves_its_equation(units, rate, day_count, tenor, start, kind, fee_share):
    schedule = build_schedule(Money.from_minor(units, "USD"), rate, day_count, start, tenor,
                              kind)
    fees = Money.from_minor(units * fee_share // 10_000, "USD")      # up to 5 % of principal
    result = apr(schedule, fees)
    assert result == result.quantize(Decimal("0.0001"))
    received = schedule.principal.amount - fees.amount
    # within half a unit of the fourth decimal (and the solver's 1e-10) of the root
    margin = Decimal("0.00005") + Decimal("1e-9")
    assert _present_value(schedule, result - margin) >= received
    assert _present_value(schedule, result + margin) <= received
    assert result >= 0


# --------------------------------------------------------------------------- cost and APR

def test_total_cost_is_interest_plus_fees():
    schedule = build_schedule(USD("10000.00"), Decimal("0.12"), ACT_365, date(2026, 1, 31),
                              89, EQUAL)
    assert total_cost(schedule, USD("150.00")) == USD("342.88")   # 192.88 + 150.00
    assert total_cost(schedule, USD("0.00")) == USD("192.88")


def test_total_cost_refuses_fees_in_another_currency():
    schedule = build_schedule(USD("10000.00"), Decimal("0.12"), ACT_365, date(2026, 1, 31),
                              89, EQUAL)
    with pytest.raises(CurrencyMismatch):
        total_cost(schedule, Money(Decimal("150.00"), "EUR"))
    with pytest.raises(ValueError):
        total_cost(schedule, USD("-1.00"))
    with pytest.raises(TypeError):
        total_cost(schedule, Decimal("150.00"))  # type: ignore[arg-type]


def test_apr_of_a_year_long_act_365_bullet_is_its_rate():
    schedule = build_schedule(USD("100000.00"), Decimal("0.10"), ACT_365, date(2026, 1, 1),
                              365, BULLET)
    # 110000 / (1 + r) = 100000  ->  r = 0.1
    assert apr(schedule, USD("0.00")) == Decimal("0.1000")


def test_fees_raise_the_apr():
    schedule = build_schedule(USD("100000.00"), Decimal("0.10"), ACT_365, date(2026, 1, 1),
                              365, BULLET)
    # 110000 / (1 + r) = 99000  ->  r = 110000 / 99000 - 1 = 0.11111...
    assert apr(schedule, USD("1000.00")) == Decimal("0.1111")


def test_apr_of_a_short_bullet_compounds_to_a_365_day_year():
    schedule = build_schedule(USD("100000.00"), Decimal("0.0650"), ACT_360, date(2026, 1, 1),
                              90, BULLET)
    # 101625 / (1 + r) ** (90 / 365) = 100000  ->  r = 1.01625 ** (365 / 90) - 1 = 0.06756...
    with localcontext() as ctx:
        ctx.prec = 50
        expected = (Decimal("1.01625") ** (Decimal(365) / 90) - 1).quantize(
            Decimal("0.0001"), rounding=ROUND_HALF_UP)
    assert expected == Decimal("0.0676")
    assert apr(schedule, USD("0.00")) == expected


def test_apr_of_monthly_instalments_is_above_the_nominal_rate():
    schedule = build_schedule(USD("12000.00"), Decimal("0.12"), ACT_365, date(2026, 1, 1),
                              365, EQUAL)
    without_fees = apr(schedule, USD("0.00"))
    # interest paid monthly compounds: roughly (1 + 0.12 / 12) ** 12 - 1 = 0.1268
    assert Decimal("0.1250") < without_fees < Decimal("0.1290")
    assert apr(schedule, USD("200.00")) > without_fees


def test_apr_with_no_interest_and_no_fees_is_zero():
    schedule = build_schedule(USD("500.00"), Decimal("0"), ACT_360, date(2026, 1, 1), 60,
                              EQUAL)
    assert apr(schedule, USD("0.00")) == Decimal("0.0000")


@pytest.mark.parametrize("fees", ["1000.00", "1000.01", "-0.01"])
def test_apr_refuses_fees_below_zero_or_not_below_the_principal(fees):
    schedule = build_schedule(USD("1000.00"), Decimal("0.05"), ACT_365, date(2026, 1, 1), 90,
                              BULLET)
    with pytest.raises(ValueError):
        apr(schedule, USD(fees))


def test_apr_refuses_fees_in_another_currency():
    schedule = build_schedule(USD("1000.00"), Decimal("0.05"), ACT_365, date(2026, 1, 1), 90,
                              BULLET)
    with pytest.raises(CurrencyMismatch):
        apr(schedule, Money(Decimal("10.00"), "EUR"))


def test_apr_beyond_a_thousand_percent_is_refused():
    schedule = build_schedule(USD("1000.00"), Decimal("0.05"), ACT_365, date(2026, 1, 1), 1,
                              BULLET)
    # half the loan in fees for one day: (1000.14 / 500) ** 365 - 1, far beyond 10
    with pytest.raises(ValueError, match="APR"):
        apr(schedule, USD("500.00"))


# --------------------------------------------------------------------------- bad input

GOOD = dict(principal=USD("1000.00"), annual_rate=Decimal("0.05"), day_count=ACT_360,
            start=date(2026, 1, 1), tenor_days=90, repayment_type=BULLET)


@pytest.mark.parametrize("field, value, error", [
    ("annual_rate", 0.05, TypeError),
    ("annual_rate", 5, TypeError),
    ("annual_rate", "0.05", TypeError),
    ("annual_rate", Decimal("1.5"), ValueError),
    ("annual_rate", Decimal("1"), ValueError),
    ("annual_rate", Decimal("-0.01"), ValueError),
    ("annual_rate", Decimal("NaN"), ValueError),
    ("annual_rate", Decimal("Infinity"), ValueError),
    ("tenor_days", 0, ValueError),
    ("tenor_days", -5, ValueError),
    ("tenor_days", 3661, ValueError),
    ("tenor_days", True, TypeError),
    ("tenor_days", 90.0, TypeError),
    ("principal", Money(Decimal("100.001"), "USD"), ValueError),
    ("principal", Money(Decimal("100.5"), "JPY"), ValueError),
    ("principal", USD("0.00"), ValueError),
    ("principal", USD("-100.00"), ValueError),
    ("principal", Decimal("100.00"), TypeError),
    ("day_count", 300, ValueError),
    ("day_count", 366, ValueError),
    ("day_count", True, TypeError),
    ("day_count", Decimal(360), TypeError),
    ("start", datetime(2026, 1, 1, 9, 30), TypeError),
    ("start", "2026-01-01", TypeError),
    ("repayment_type", "balloon", ValueError),
    ("repayment_type", None, TypeError),
])
def test_bad_input_is_refused(field, value, error):
    with pytest.raises(error):
        build_schedule(**{**GOOD, field: value})


def test_the_limits_are_accepted():
    assert build_schedule(**{**GOOD, "tenor_days": 1}).maturity == date(2026, 1, 2)
    longest = build_schedule(**{**GOOD, "tenor_days": 3660, "repayment_type": "equal_instalments"})
    assert longest.maturity == date(2026, 1, 1) + timedelta(days=3660)
    assert len(longest.instalments) == 121      # 120 monthly dates before 2036-01-09, then it
    assert build_schedule(**{**GOOD, "annual_rate": Decimal("0.9999")}).total_interest \
        == USD("249.98")                        # 1000 * 0.9999 * 90 / 360 = 249.975 -> 249.98
