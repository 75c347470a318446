"""The concentration rule: one buyer above the set share of an SME's insured exposure."""
from __future__ import annotations

from sqlalchemy import select

from finance_app import clock
from finance_app.extensions import db
from finance_app.oversight import rules, services
from finance_app.oversight.models import RiskAlert
from tests.insurance.conftest import approved_limit, declare, policy, shipped, world  # noqa: F401


def concentration():
    rules.run_rules(clock.today())
    db.session.commit()
    return db.session.execute(select(RiskAlert).where(
        RiskAlert.rule == "buyer_concentration")).scalars().all()


def test_one_buyer_above_the_share_of_insured_exposure(world, policy):
    big = approved_limit(world, policy, amount="100000.00")
    small = approved_limit(world, policy, amount="50000.00", country="MX", reg="MX-1",
                           name="Distribuidora Azteca")
    declare(world, big, shipped("ORD-1", goods="70000.00"))
    declare(world, small, shipped("ORD-2", goods="30000.00", country="MX"))
    [alert] = concentration()                   # 70 % > 60 %
    assert alert.subject_org_id == world["sme"].org_id and alert.object_id == big.id
    assert services.evidence_of(alert)["share"] == "0.7000"
    assert "Comercial Paulista" in alert.message


def test_exposure_spread_below_the_share_raises_nothing(world, policy):
    one = approved_limit(world, policy, amount="100000.00")
    two = approved_limit(world, policy, amount="100000.00", country="MX", reg="MX-1",
                         name="Distribuidora Azteca")
    declare(world, one, shipped("ORD-1", goods="55000.00"))
    declare(world, two, shipped("ORD-2", goods="45000.00", country="MX"))
    assert concentration() == []          # 55 % is within the default 60 %
