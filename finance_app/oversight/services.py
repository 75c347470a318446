"""Raising risk alerts, once each (a dedupe key), and reading the open ones."""
from __future__ import annotations

import json

from sqlalchemy import or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from finance_app import clock
from finance_app.audit import services as audit
from finance_app.extensions import db
from finance_app.oversight.models import RiskAlert
from finance_app.oversight.states import AlertStatus, Severity


def raise_alert(rule: str, *, severity: Severity, subject_org_id: int, message: str,
                dedupe_key: str, party_org_id: int | None = None,
                obj: object | None = None, evidence: dict | None = None) -> bool:
    """Raise an alert unless one with ``dedupe_key`` exists (safe when two runs raise it
    at once); True if this call raised it."""
    values = dict(rule=rule[:60], severity=Severity(severity), subject_org_id=subject_org_id,
                  party_org_id=party_org_id,
                  object_type=type(obj).__name__ if obj is not None else None,
                  object_id=getattr(obj, "id", None), message=message[:500],
                  evidence=json.dumps(evidence or {}, sort_keys=True, default=str),
                  status=AlertStatus.OPEN, dedupe_key=dedupe_key[:200], raised_at=clock.now())
    insert = pg_insert if db.session.get_bind().dialect.name == "postgresql" else sqlite_insert
    result = db.session.execute(insert(RiskAlert).values(**values)
                                .on_conflict_do_nothing(index_elements=["dedupe_key"]))
    if not result.rowcount:
        return False
    audit.record("oversight.alert_raised", org_id=subject_org_id, object_type="RiskAlert",
                 object_id=dedupe_key[:60], changes={"rule": rule, "severity": severity,
                                                     "message": message[:500]})
    return True


def open_alerts_for(org_id: int, *, party_org_id: int | None = None) -> list[RiskAlert]:
    """Open or acknowledged alerts about ``org_id``."""
    query = select(RiskAlert).where(RiskAlert.subject_org_id == org_id,
                                    RiskAlert.status != AlertStatus.RESOLVED)
    if party_org_id is not None:
        query = query.where(or_(RiskAlert.party_org_id.is_(None),
                                RiskAlert.party_org_id == party_org_id))
    return list(db.session.execute(query.order_by(RiskAlert.id.desc()).limit(50)).scalars())
