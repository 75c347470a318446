"""Interest and penalty interest from what was paid when (pure functions)."""
from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from finance_app.financing.accrual import Paid, penalty, period_interest, split_in_order
from finance_app.financing.schedule import build_schedule
from finance_app.money import Money

START = date(2026, 12, 1)


def test_interest_without_payments_is_simple_interest_rounded_once():
    # 10,000.00 at 6.5 % for 90 days on ACT/360: 162.50
    assert period_interest(START, START + timedelta(days=90), 1_000_000, [],
                           Decimal("0.065"), 360, "USD") == 16250


def test_a_payment_stops_interest_on_what_it_repaid_from_its_day():
    # 6,000 for 30 days and 3,000 for 60 days at 7.2 % / 360: 36.00 + 36.00
    paid = [Paid(START + timedelta(days=30), 300_000)]
    assert period_interest(START, START + timedelta(days=90), 600_000, paid,
                           Decimal("0.072"), 360, "USD") == 7200
    # a payment before the period starts counts from its first day
    early = [Paid(START - timedelta(days=1), 300_000)]
    assert period_interest(START, START + timedelta(days=90), 600_000, early,
                           Decimal("0.072"), 360, "USD") == 5400


def test_yen_has_no_minor_units_and_interest_rounds_half_up():
    # 1,000,000 JPY at 1.8 % for 73 days on ACT/365: 3,600 exactly; 10 days: 493.15 -> 493
    assert period_interest(START, START + timedelta(days=73), 1_000_000, [],
                           Decimal("0.018"), 365, "JPY") == 3600
    assert period_interest(START, START + timedelta(days=10), 1_000_000, [],
                           Decimal("0.018"), 365, "JPY") == 493


def test_penalty_runs_from_the_due_date_on_what_is_still_unpaid():
    due = START
    assert penalty(due, due, 100_000, [], Decimal("0.18"), 360, "USD") == 0
    assert penalty(due, due + timedelta(days=1), 100_000, [Paid(due, 100_000)],
                   Decimal("0.18"), 360, "USD") == 0                  # paid on the due date
    assert penalty(due, due + timedelta(days=1), 100_000, [], Decimal("0.18"), 360,
                   "USD") == 50                                       # 1,000 x 18 % / 360
    half = [Paid(due + timedelta(days=10), 50_000)]
    # 10 days on 1,000 then 10 days on 500: 5.00 + 2.50
    assert penalty(due, due + timedelta(days=20), 100_000, half, Decimal("0.18"), 360,
                   "USD") == 750


def test_split_in_order_fills_each_due_in_turn():
    assert split_in_order(150, [100, 80, 30]) == [100, 50, 0]
    assert split_in_order(500, [100, -5, 30]) == [100, 0, 30]


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(units=st.integers(min_value=1, max_value=10**12),
       rate=st.decimals(min_value=Decimal(0), max_value=Decimal("0.3"), places=6),
       tenor=st.integers(min_value=1, max_value=720),
       basis=st.sampled_from([360, 365]),
       kind=st.sampled_from(["bullet", "equal_instalments"]))
def test_without_prepayments_the_accrual_is_the_schedules_interest(units, rate, tenor, basis,
                                                                   kind):
    schedule = build_schedule(Money.from_minor(units, "USD"), rate, basis, START, tenor, kind)
    principal_parts = [i.principal.to_minor() for i in schedule.instalments]
    start = START
    for index, instalment in enumerate(schedule.instalments):
        base = sum(principal_parts[index:])
        assert period_interest(start, instalment.due_date, base, [], rate, basis, "USD") == \
            instalment.interest.to_minor()
        start = instalment.due_date
