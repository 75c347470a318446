"""The concentration rule: one buyer above the set share of an SME's insured exposure."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from finance_app import clock
from finance_app.accounts.states import OrgKind, Role
from finance_app.errors import NotFound
from finance_app.extensions import db
from finance_app.oversight import rules, services
from finance_app.oversight.models import RiskAlert
from finance_app.oversight.states import AlertStatus
from tests.factories import make_org_user
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
    # the insurer of the limit is the party: it sees the alert and handles it; another
    # insurer sees nothing
    assert alert.party_org_id == world["insurer"].org_id
    assert services.get_alert(alert.id, actor=world["insurer"]).id == alert.id
    other = make_org_user(OrgKind.INSURER, roles=(Role.OFFICER, Role.APPROVER))
    with pytest.raises(NotFound):
        services.get_alert(alert.id, actor=other)
    services.acknowledge(alert.id, actor=world["insurer"])
    db.session.commit()
    assert db.session.get(RiskAlert, alert.id).status is AlertStatus.ACKNOWLEDGED


def test_exposure_spread_below_the_share_raises_nothing(world, policy):
    one = approved_limit(world, policy, amount="100000.00")
    two = approved_limit(world, policy, amount="100000.00", country="MX", reg="MX-1",
                         name="Distribuidora Azteca")
    declare(world, one, shipped("ORD-1", goods="55000.00"))
    declare(world, two, shipped("ORD-2", goods="45000.00", country="MX"))
    assert concentration() == []          # 55 % is within the default 60 %
