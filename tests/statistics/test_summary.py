"""The per-day order summary: the dashboard's trade figures read from it are the orders' own
figures, before and after each refresh, whatever was filed, re-filed or re-matched since."""
from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import partial

import pytest
from sqlalchemy import func, select

from finance_app import clock, daily
from finance_app.errors import ValidationFailed
from finance_app.extensions import db
from finance_app.statistics import queries, summary
from finance_app.statistics.models import FinancingDay, FinancingFigure, OrderDay, SummaryState
from tests.financing.conftest import file, make_product, receivable, request_for
from tests.statistics.test_queries import _loan, by_key, financing_world, trade_world
from tests.trade.builders import order, payment

D = Decimal
FILTERS = [{}, {"zone": "Zhuhai Hengqin"}, {"zone": "Dongguan Humen"}, {"from": "2026-11"},
           {"to": "2026-10"}, {"from": "2026-11-06", "to": "2026-11-30"},
           {"from": "2026-11-20"}]
LATER = timedelta(hours=2)          # past the watermark's settling time


def figures(world, **filters):
    return queries.dashboard(queries.parse_filters(filters), actor=world["platform"])


def trade(world, **filters):
    return figures(world, **filters)["trade"]


def assert_as_live(world, monkeypatch, filters_list=FILTERS, part="trade"):
    """Every filter's figures equal those grouped from the orders (financing rows) alone."""
    for filters in filters_list:
        read = figures(world, **filters)[part]
        with monkeypatch.context() as live:
            live.setattr(summary, "order_groups", summary.live_groups)
            live.setattr(summary, "financing_groups",
                         partial(summary.financing_groups, from_rows=True))
            expected = figures(world, **filters)[part]
        assert read == expected, filters


def refresh():
    line = summary.refresh()
    db.session.commit()
    return line


def state() -> SummaryState:
    return db.session.get(SummaryState, summary.STATE_ID)


def test_figures_stay_the_orders_own_through_refreshes_and_later_filings(world, monkeypatch):
    trade_world()
    file([order("U-1", goods="20.00", freight="0", order_date=None)])    # app time 1 Nov
    assert state() is None
    assert_as_live(world, monkeypatch)               # no summary yet: the orders' own
    clock.advance(LATER)
    assert refresh().endswith(" s") and state().covered_until == date(2026, 11, 20)
    assert summary.changed_days(state().changes_until) == set()   # all read from it
    stored = db.session.execute(select(func.sum(OrderDay.orders))).scalar_one()
    assert stored == 4
    assert_as_live(world, monkeypatch)
    before = trade(world)

    clock.advance(LATER)
    # the October parcel's payment re-filed a dollar short: verified becomes mismatch
    file([payment("P-1", amount="109.00", app_type="2")])
    # a late filing on an older day, the B2B order re-filed with another date, and
    # today's first order
    file([order("X-1", goods="30.00", freight="0", order_date=date(2026, 11, 3))])
    file([order("B-1", trade_mode="9710", order_type="B", payment_term_days=60,
                goods="1000.00", freight="0", currency="EUR", lines=[],
                consignee_country="PT", order_date=date(2026, 11, 6), app_type="2")])
    file([order("T-1", goods="40.00", freight="0", order_date=date(2026, 11, 20))])
    assert summary.changed_days(state().changes_until) >= {
        date(2026, 10, 15), date(2026, 11, 3), date(2026, 11, 5), date(2026, 11, 6),
        date(2026, 11, 20)}
    now = trade(world)
    assert now["totals"]["orders"] == before["totals"]["orders"] + 2
    assert by_key(now["by_month"])["2026-10"]["verified"] == 0      # was 1
    assert now["totals"]["verified"] == before["totals"]["verified"] - 1
    assert_as_live(world, monkeypatch)

    clock.advance(LATER)
    assert "4 days recomputed (4 changed since the last refresh)" in refresh()
    assert summary.changed_days(state().changes_until) == set()
    assert trade(world) == now
    assert_as_live(world, monkeypatch)

    clock.advance(timedelta(days=1))                 # today's order becomes yesterday's
    assert "1 days recomputed (0 changed" in refresh()
    assert db.session.execute(select(func.sum(OrderDay.orders))).scalar_one() == 6
    assert trade(world) == now
    assert_as_live(world, monkeypatch)


def test_an_sme_moving_area_moves_its_orders_at_once_and_the_refresh_rebuilds(world,
                                                                                monkeypatch):
    trade_world()
    clock.advance(LATER)
    refresh()
    world["sme2"].organisation.zone = "Zhuhai Hengqin"
    db.session.commit()
    assert trade(world, zone="Zhuhai Hengqin")["totals"]["orders"] == 3
    with pytest.raises(ValidationFailed):
        trade(world, zone="Dongguan Humen")
    remaining = [f for f in FILTERS if f.get("zone") != "Dongguan Humen"]
    assert_as_live(world, monkeypatch, remaining)
    assert "rebuilt, 3 days" in refresh()
    assert db.session.execute(select(OrderDay.zone).distinct()).scalars().all() == [
        "Zhuhai Hengqin"]
    assert_as_live(world, monkeypatch, remaining)


def test_the_daily_job_refreshes_once_a_day_and_only_what_is_new(world, monkeypatch):
    trade_world()
    clock.advance(LATER)
    first = daily.run()
    assert any(line.startswith("statistics: summary up to 2026-11-19: rebuilt")
               for line in first)
    assert any(line.startswith("statistics: already done") for line in daily.run())
    clock.advance(timedelta(days=1))
    file([order("N-1", goods="5.00", freight="0", order_date=date(2026, 11, 21))])
    clock.advance(timedelta(days=1))
    lines = [line for line in daily.run() if line.startswith("statistics:")]
    assert "up to 2026-11-21: 2 days recomputed (1 changed" in lines[0]
    assert db.session.execute(select(func.max(OrderDay.day))).scalar_one() == date(
        2026, 11, 21)
    assert_as_live(world, monkeypatch)


def test_the_operator_can_rebuild_the_summary_from_the_command_line(app, world, monkeypatch):
    trade_world()
    clock.advance(LATER)
    refresh()
    # a row the orders do not have (as a damaged summary would): the rebuild drops it
    db.session.add(OrderDay(day=date(2026, 10, 1), zone="Zhuhai Hengqin", trade_mode="9610",
                            buyer_country="BR", currency="USD", verdict=None, orders=7,
                            amount=D("700.00000")))
    db.session.commit()
    assert trade(world)["totals"]["orders"] == 10
    result = app.test_cli_runner().invoke(args=["statistics-rebuild"])
    assert result.exit_code == 0, result.output
    assert "rebuilt, 3 days" in result.output
    db.session.expire_all()
    assert trade(world)["totals"]["orders"] == 3
    assert_as_live(world, monkeypatch)


FINANCING_FILTERS = [{}, {"zone": "Zhuhai Hengqin"}, {"from": "2026-11", "to": "2026-11"},
                     {"from": "2026-12"}, {"to": "2026-11-19"}]


def test_financing_figures_stay_the_rows_own_through_refreshes(world, monkeypatch):
    financing_world(world)             # ends with the daily job 41 days on: summary built
    assert state().covered_until == date(2026, 12, 31)
    assert summary.financing_changed_days(state()) == set()
    stored = db.session.execute(select(func.sum(FinancingDay.count)).where(
        FinancingDay.figure == FinancingFigure.LOAN)).scalar_one()
    assert stored == 3
    assert_as_live(world, monkeypatch, FINANCING_FILTERS, "financing")
    before = figures(world)["financing"]["totals"]

    clock.advance(LATER)
    product = make_product(world["bank"], name="Receivables late", max_tenor_days=180)
    _loan(world, "R-9", "1000.00", 30, product, hours_to_offer=1)          # today's
    late = request_for(world, [product], [("receivable", receivable("R-8", days=200).id)],
                       amount="700.00", tenor=30)
    late.created_at = datetime(2026, 11, 25, 3, 0)     # recorded late for an older day
    db.session.commit()
    assert date(2026, 11, 25) in summary.financing_changed_days(state())
    now = figures(world)["financing"]["totals"]
    assert (now["requests"], now["offers"], now["loans"]) == (
        before["requests"] + 2, before["offers"] + 1, before["loans"] + 1)
    assert_as_live(world, monkeypatch, FINANCING_FILTERS, "financing")

    clock.advance(timedelta(days=1))
    assert "financing 2 days (2 changed)" in refresh()
    assert summary.financing_changed_days(state()) == set()
    assert figures(world)["financing"]["totals"] == now
    assert_as_live(world, monkeypatch, FINANCING_FILTERS, "financing")


@pytest.mark.parametrize("data,day", [
    ('{"order_date": "2026-10-15", "app_time": "2026-11-01T10:00:00"}', date(2026, 10, 15)),
    ('{"order_date": null, "app_time": "2026-11-01T16:30:00"}', date(2026, 11, 2)),
    ('{"order_date": null, "app_time": null, "created_at": "2026-11-01T15:59:59"}',
     date(2026, 11, 1)),
])
def test_a_replaced_versions_day_follows_the_same_rule_as_the_orders(data, day):
    assert summary._version_day(data) == day


def test_the_daily_run_refuses_a_business_date_after_today_and_runs_nothing(app):
    later = (clock.today() + timedelta(days=1)).isoformat()
    result = app.test_cli_runner().invoke(args=["run-daily", "--date", later])
    assert result.exit_code == 2 and "is after today" in result.output
    assert db.session.execute(select(func.count()).select_from(daily.DailyRun)).scalar_one() == 0
    done = app.test_cli_runner().invoke(args=["run-daily", "--date", clock.today().isoformat()])
    assert done.exit_code == 0 and "ratings:" in done.output
