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
                obj: object | None = None, evidence: dict | None = None,
                object_type: str | None = None, object_id: int | None = None) -> bool:
    """Raise an alert unless one with ``dedupe_key`` exists (safe when two runs raise it
    at once); True if this call raised it. The object it is about: ``obj``, or its
    ``object_type`` and ``object_id``."""
    if obj is not None:
        object_type, object_id = type(obj).__name__, getattr(obj, "id", None)
    values = dict(rule=rule[:60], severity=Severity(severity), subject_org_id=subject_org_id,
                  party_org_id=party_org_id, object_type=object_type,
                  object_id=object_id if isinstance(object_id, int) else None,
                  message=message[:500],
                  evidence=json.dumps(evidence or {}, sort_keys=True, default=str),
                  status=AlertStatus.OPEN, dedupe_key=dedupe_key[:200], raised_at=clock.now())
    insert = pg_insert if db.session.get_bind().dialect.name == "postgresql" else sqlite_insert
    # RETURNING says whether a row went in (an ORM insert's rowcount does not, on PostgreSQL)
    inserted = db.session.execute(insert(RiskAlert).values(**values)
                                  .on_conflict_do_nothing(index_elements=["dedupe_key"])
                                  .returning(RiskAlert.id)).first()
    if inserted is None:
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


# --------------------------------------------------------------------------- the alert's life

def visible_alerts(user):
    """The alerts ``user`` may see: the platform operator all; an organisation those about
    it and those it is the other party to."""
    from finance_app.accounts.states import OrgKind
    query = select(RiskAlert)
    if user.organisation.kind is OrgKind.PLATFORM_OPERATOR:
        return query
    return query.where(or_(RiskAlert.subject_org_id == user.org_id,
                           RiskAlert.party_org_id == user.org_id))


def alerts(user, *, status: AlertStatus | None = None, severity: Severity | None = None,
           rule: str | None = None, subject_org_id: int | None = None, page: int = 1):
    from finance_app.paging import paginate
    query = visible_alerts(user)
    if status is not None:
        query = query.where(RiskAlert.status == status)
    if severity is not None:
        query = query.where(RiskAlert.severity == severity)
    if rule:
        query = query.where(RiskAlert.rule == rule)
    if subject_org_id is not None:
        query = query.where(RiskAlert.subject_org_id == subject_org_id)
    return paginate(query.order_by(RiskAlert.id.desc()), page)


def get_alert(alert_id: int, *, actor=None, lock: bool = False) -> RiskAlert:
    from finance_app import authz
    from finance_app.errors import NotFound
    found = None
    if isinstance(alert_id, int) and not isinstance(alert_id, bool):
        query = select(RiskAlert).where(RiskAlert.id == alert_id)
        if lock:
            query = query.with_for_update().execution_options(populate_existing=True)
        found = db.session.execute(query).scalar_one_or_none()
    if found is None or (actor is not None and not authz.can(actor, "oversight.read_alert",
                                                             found)):
        raise NotFound("risk alert", alert_id)
    return found


def _move(alert: RiskAlert, action, *, actor, note: str | None) -> None:
    from finance_app.oversight.states import ALERT_TRANSITIONS
    from finance_app.states import next_status
    before = alert.status
    alert.status = next_status(ALERT_TRANSITIONS, before, action, what="risk alert")
    audit.record(f"oversight.alert_{action.value}", actor=actor, org_id=alert.subject_org_id,
                 obj=alert, changes={"status": [before.value, alert.status.value],
                                     **({"note": note} if note else {})})


def acknowledge(alert_id: int, *, actor, note: str | None = None) -> RiskAlert:
    """Someone concerned has seen the alert and is looking into it."""
    from finance_app import authz
    from finance_app.oversight.states import AlertAction
    alert = get_alert(alert_id, actor=actor, lock=True)
    authz.require(actor, "oversight.handle_alert", alert, hide=False)
    if alert.status is AlertStatus.ACKNOWLEDGED:
        return alert
    _move(alert, AlertAction.ACKNOWLEDGE, actor=actor, note=(note or "").strip()[:500] or None)
    alert.acknowledged_at, alert.acknowledged_by_id = clock.now(), actor.id
    return alert


def resolve(alert_id: int, *, actor, note: str) -> RiskAlert:
    """The alert is dealt with; the note says how (it is required)."""
    from flask_babel import gettext

    from finance_app import authz
    from finance_app.errors import ValidationFailed
    from finance_app.oversight.states import AlertAction
    alert = get_alert(alert_id, actor=actor, lock=True)
    authz.require(actor, "oversight.handle_alert", alert, hide=False)
    note = (note or "").strip() if isinstance(note, str) else ""
    if not 3 <= len(note) <= 500:
        raise ValidationFailed(gettext("Say how the alert was dealt with (3 to 500 "
                                       "characters)."), field="note")
    _move(alert, AlertAction.RESOLVE, actor=actor, note=note)
    alert.resolved_at, alert.resolved_by_id, alert.resolution_note = clock.now(), actor.id, note
    return alert


def evidence_of(alert: RiskAlert) -> dict:
    try:
        return json.loads(alert.evidence or "{}")
    except ValueError:
        return {}
