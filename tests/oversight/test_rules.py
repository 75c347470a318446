"""The risk rules on trade evidence: each raises its alert with the evidence behind it,
only past its threshold, once (a second daily run raises nothing new); the operator's
thresholds are checked against their ranges."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from finance_app import clock, daily
from finance_app.accounts.states import Role
from finance_app.errors import Forbidden, ValidationFailed
from finance_app.extensions import db
from finance_app.oversight import rules, services
from finance_app.oversight.models import RiskAlert, RiskSetting
from finance_app.oversight.states import Severity
from tests.financing.conftest import file, second_user, world  # noqa: F401  (fixture)
from tests.trade.builders import inventory, order, payment, waybill


def retail(no, *, buyer="Maria Silva", payer=None, goods="100.00", day=None, **extra):
    """A 9610 retail export: order, payment (by ``payer``), inventory and waybill."""
    day = day or clock.today()
    docs = [order(no, goods=goods, freight="0", buyer_name=buyer, consignee=buyer,
                  order_date=day, **extra),
            inventory(no, waybill=f"WB-{no}", cop=f"COP-{no}"),
            waybill(f"WB-{no}", consignee=buyer)]
    if payer is not False:
        docs.append(payment(no, amount=goods, txn=f"TXN-{no}", payer_name=payer or buyer))
    file(docs)


def alerts(rule=None):
    query = select(RiskAlert).order_by(RiskAlert.id)
    if rule:
        query = query.where(RiskAlert.rule == rule)
    return db.session.execute(query).scalars().all()


def run():
    done = rules.run_rules(clock.today())
    db.session.commit()
    return done


@pytest.fixture
def approver(world):
    return second_user(world["platform"], Role.APPROVER)


def test_a_payer_who_is_not_the_buyer_raises_a_high_alert_once(world):
    retail("ORD-1", buyer="Maria Silva", payer="Carlos Mendes")
    retail("ORD-2")                                   # agrees: no alert
    run()
    [alert] = alerts("document_mismatch")
    assert alert.severity is Severity.HIGH and alert.subject_org_id == world["sme"].org_id
    assert "ORD-1" in alert.message and "payer is not the buyer" in alert.message
    evidence = services.evidence_of(alert)
    assert evidence["order_no"] == "ORD-1"
    assert "payer_not_buyer" in [r["code"] for r in evidence["reasons"]]
    assert "0 risk alerts raised" in run()           # the second run: nothing new
    assert len(alerts()) == 1


def test_one_payer_for_many_buyers(world, approver):
    rules.set_thresholds({"payer_min_buyers": "3"}, actor=approver)
    db.session.commit()
    for n, buyer in enumerate(("Ana Costa", "Rui Lopes")):
        retail(f"ORD-{n}", buyer=buyer, payer="Shell Trading Ltd")
    run()
    assert alerts("payer_many_buyers") == []         # two buyers: under the threshold
    retail("ORD-2", buyer="Luis Gomes", payer="shell trading ltd ")   # the same payer
    run()
    [alert] = alerts("payer_many_buyers")
    assert alert.severity is Severity.HIGH
    assert services.evidence_of(alert)["buyers"] == 3


def test_orders_split_just_under_the_threshold(world):
    # 5,000 CNY at 7.1865 is 695.75 USD; 10 % under it starts at 626.17 USD
    for n in range(3):
        retail(f"ORD-{n}", buyer="Maria Silva", goods="690.00")
    retail("ORD-X", buyer="Maria Silva", goods="600.00")   # not "just under"
    retail("ORD-Y", buyer="Ana Costa", goods="690.00")     # another buyer
    run()
    [alert] = alerts("split_orders")
    evidence = services.evidence_of(alert)
    assert evidence["orders"] == 3 and evidence["buyer"] == "maria silva"
    assert Decimal(evidence["total"]) == Decimal("2070.00")


def test_two_orders_under_the_threshold_are_not_a_split(world):
    for n in range(2):
        retail(f"ORD-{n}", buyer="Maria Silva", goods="690.00")
    run()
    assert alerts("split_orders") == []


def test_the_seller_paying_its_own_order_is_round_tripping(world):
    seller = world["sme"].organisation
    retail("ORD-1", buyer="Maria Silva", payer=seller.name)
    run()
    [alert] = alerts("round_tripping")
    assert alert.severity is Severity.SEVERE and alert.object_type == "Order"
    assert seller.name in alert.message


def test_a_sudden_volume_spike(world):
    with clock.frozen_at(clock.now() - timedelta(days=100)):
        retail("OLD-1", goods="1000.00")
    for n in range(3):
        retail(f"NEW-{n}", goods="6000.00")           # 18,000 USD: about 129,000 CNY
    run()
    [alert] = alerts("volume_spike")
    evidence = services.evidence_of(alert)
    assert Decimal(evidence["recent_cny"]) == Decimal("129357.00")
    assert Decimal(evidence["monthly_average_cny"]) == Decimal("1197.75")


def test_steady_trade_is_no_spike(world):
    for days in (150, 120, 90, 60, 40):
        with clock.frozen_at(clock.now() - timedelta(days=days)):
            retail(f"OLD-{days}", goods="6000.00")
    retail("NEW-1", goods="6000.00")
    run()
    assert alerts("volume_spike") == []


def test_the_daily_run_raises_the_alerts_and_a_second_run_does_nothing(world):
    retail("ORD-1", payer="Carlos Mendes")
    first = daily.run(clock.today())
    assert any(line.startswith("risk_rules: 1 risk alerts raised") for line in first)
    second = daily.run(clock.today())
    assert any(line.startswith("risk_rules: already done") for line in second)
    assert len(alerts()) == 1


# --------------------------------------------------------------------------- thresholds

def settings_count() -> int:
    return db.session.execute(select(func.count()).select_from(RiskSetting)).scalar_one()


@pytest.mark.parametrize("changes, field", [
    ({"split_margin": "0.9"}, "split_margin"),            # above its range
    ({"concentration_max_share": "1.5"}, "concentration_max_share"),
    ({"payer_min_buyers": "2.5"}, "payer_min_buyers"),    # not a whole number
    ({"spike_factor": "lots"}, "spike_factor"),
    ({"spike_factor": "NaN"}, "spike_factor"),
    ({"no_such_rule": "1"}, "no_such_rule"),
    ({"payer_min_buyers": "4", "split_margin": "-0.1"}, "split_margin"),   # one bad: none
])
def test_a_threshold_outside_its_range_is_refused_and_nothing_changes(world, approver,
                                                                      changes, field):
    before = rules.values()
    with pytest.raises(ValidationFailed) as refused:
        rules.set_thresholds(changes, actor=approver)
    db.session.rollback()
    assert refused.value.field == field
    assert rules.values() == before and settings_count() == 0


def test_only_the_platforms_approvers_change_thresholds(world, approver):
    officer = second_user(world["platform"], Role.OFFICER)
    for someone in (officer, world["bank_approver"], world["sme"]):
        with pytest.raises(Forbidden):
            rules.set_thresholds({"payer_min_buyers": "4"}, actor=someone)
        db.session.rollback()
    assert rules.set_thresholds({"payer_min_buyers": "4"}, actor=approver)[
        "payer_min_buyers"] == Decimal("4")
    db.session.commit()
    assert rules.values()["payer_min_buyers"] == Decimal("4")
