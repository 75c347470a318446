"""Risk rules on collateral and insurance: a refused attempt to pledge pledged collateral,
a pledged receipt's loan-to-value above the margin-call threshold, and one buyer holding
most of an SME's insured exposure."""
from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from finance_app import clock
from finance_app.collateral.services import AlreadyEncumbered
from finance_app.extensions import db
from finance_app.oversight import rules, services
from finance_app.oversight.models import RiskAlert
from finance_app.oversight.states import Severity
from finance_app.warehouse import services as warehouse
from tests.warehouse.conftest import offered, pledge, receipt, world  # noqa: F401
from tests.warehouse.test_services import price


def alerts(rule):
    return db.session.execute(select(RiskAlert).where(RiskAlert.rule == rule)
                              .order_by(RiskAlert.id)).scalars().all()


def run():
    rules.run_rules(clock.today())
    db.session.commit()


def test_pledging_a_pledged_receipt_again_is_an_alert_about_its_owner(world, offered):
    pledge(world, offered)
    with pytest.raises(AlreadyEncumbered):
        pledge(world, offered, bank="other_bank")
    db.session.rollback()
    run()
    [alert] = alerts("double_pledge")
    assert alert.severity is Severity.HIGH
    assert alert.subject_org_id == world["sme"].org_id
    assert alert.party_org_id == world["other_bank"].org_id
    assert services.evidence_of(alert)["asset"] == f"warehouse_receipt:{offered.id}"
    run()
    assert len(alerts("double_pledge")) == 1


def test_a_loan_to_value_above_the_margin_call_threshold(world, offered):
    pledge(world, offered, principal="15000.00")                  # LTV 69.2 %
    run()
    assert alerts("ltv_breach") == []
    warehouse.enter_price(price(amount="22.00"), actor=world["platform"])   # 81.2 %
    db.session.commit()
    run()
    [alert] = alerts("ltv_breach")
    assert alert.severity is Severity.HIGH and alert.party_org_id == world["bank"].org_id
    assert "81.17%" in alert.message and "80.00%" in alert.message
    assert Decimal(services.evidence_of(alert)["ltv"]) == Decimal("0.8117")
