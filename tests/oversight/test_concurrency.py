"""Thresholds under real concurrency (PostgreSQL, twenty threads released together)."""
from __future__ import annotations

import json
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from finance_app.accounts.models import User
from finance_app.accounts.states import Role
from finance_app.audit.models import AuditEvent
from finance_app.extensions import db
from finance_app.oversight import rules
from finance_app.oversight.models import RiskSetting
from tests.financing.conftest import second_user, world  # noqa: F401  (fixture)
from tests.ledger.test_concurrency import THREADS, run_together

pytestmark = pytest.mark.postgres


def test_twenty_operators_saving_a_threshold_for_the_first_time_at_once_take_turns(
        app, world):
    """Each of twenty saves sets a different value; none fails, one row holds the last,
    and the audit trail tells the changes in order, each starting where the last ended."""
    approver_id = second_user(world["platform"], Role.APPROVER).id
    db.session.commit()
    db.session.remove()

    def save(n: int):
        rules.set_thresholds({"payer_min_buyers": str(6 + n)},
                             actor=db.session.get(User, approver_id))
        return n

    results, errors = run_together(app, save)
    assert errors == []
    assert db.session.execute(select(func.count()).select_from(RiskSetting)).scalar_one() == 1
    events = db.session.execute(select(AuditEvent).where(
        AuditEvent.action == "oversight.threshold_changed").order_by(AuditEvent.id)
    ).scalars().all()
    steps = [json.loads(e.changes)["value"] for e in events]
    default = str(rules.SETTINGS["payer_min_buyers"].default)
    assert len(steps) == THREADS and steps[0][0] == default
    assert all(later[0] == earlier[1] for earlier, later in zip(steps, steps[1:]))
    assert rules.values()["payer_min_buyers"] == Decimal(steps[-1][1])
