"""Recording and verifying the audit trail.

``record`` only queues an event on the session; the queue is appended to the chain just
before the transaction commits (``_append_pending``), under a lock on the single
``audit_head`` row.  Taking that lock last keeps lock order fixed (business rows first,
then the head), and a rolled-back transaction leaves no event behind.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from finance_app import clock
from finance_app.audit.models import GENESIS_HASH, AuditEvent, AuditHead
from finance_app.extensions import db

_PENDING = "audit_pending"


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (set, frozenset)):
        return sorted(_default(v) if not isinstance(v, str) else v for v in value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=_default)


def record(action: str, *, actor: Any = None, org_id: int | None = None,
           obj: Any = None, object_type: str | None = None, object_id: Any = None,
           changes: dict | None = None, session: Session | None = None) -> None:
    """Queue an audit event for the current transaction.

    ``obj`` may be a model instance not yet flushed; its id is read at commit time.
    """
    session = session or db.session()
    pending = session.info.setdefault(_PENDING, [])
    pending.append({
        "action": action,
        "actor_user_id": getattr(actor, "id", None),
        "org_id": org_id if org_id is not None else getattr(actor, "org_id", None),
        "obj": obj,
        "object_type": object_type or (type(obj).__name__ if obj is not None else "system"),
        "object_id": object_id,
        "changes": changes or {},
        "at": clock.now(),
    })


def content_hash(prev_hash: str, event_id: int, created_at: datetime, actor_user_id: int | None,
                 org_id: int | None, action: str, object_type: str, object_id: str | None,
                 changes: str) -> str:
    payload = canonical_json({
        "id": event_id, "created_at": created_at.isoformat(timespec="microseconds"),
        "actor_user_id": actor_user_id, "org_id": org_id, "action": action,
        "object_type": object_type, "object_id": object_id, "changes": changes,
        "prev_hash": prev_hash,
    })
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _lock_head(session: Session) -> AuditHead:
    query = select(AuditHead).where(AuditHead.id == 1).with_for_update()
    head = session.execute(query).scalar_one_or_none()
    if head is None:
        # The first append ever: create the head row, tolerating a concurrent first append.
        dialect = session.get_bind().dialect.name
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        session.execute(insert(AuditHead).values(id=1, last_event_id=0, last_hash=GENESIS_HASH)
                        .on_conflict_do_nothing(index_elements=["id"]))
        head = session.execute(query).scalar_one()
    return head


def _append_pending(session: Session) -> None:
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return
    session.flush()  # assigns ids to objects created in this transaction
    head = _lock_head(session)
    rows = []
    for item in pending:
        obj = item["obj"]
        object_id = item["object_id"]
        if object_id is None and obj is not None:
            object_id = getattr(obj, "id", None)
        object_id = None if object_id is None else str(object_id)
        changes = canonical_json(item["changes"])
        created_at = item["at"].replace(microsecond=item["at"].microsecond)
        event_id = head.last_event_id + 1
        digest = content_hash(head.last_hash, event_id, created_at, item["actor_user_id"],
                              item["org_id"], item["action"], item["object_type"],
                              object_id, changes)
        rows.append(dict(
            id=event_id, created_at=created_at, actor_user_id=item["actor_user_id"],
            org_id=item["org_id"], action=item["action"], object_type=item["object_type"],
            object_id=object_id, changes=changes, prev_hash=head.last_hash, hash=digest))
        head.last_event_id, head.last_hash = event_id, digest
    session.execute(AuditEvent.__table__.insert(), rows)   # one statement for the lot
    session.flush()


@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    _append_pending(session)


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_PENDING, None)


@dataclass
class ChainReport:
    ok: bool
    checked: int
    broken_id: int | None = None
    problem: str | None = None

    def __str__(self) -> str:
        if self.ok:
            return f"Audit chain intact: {self.checked} events verified."
        return (f"Audit chain BROKEN at event {self.broken_id}: {self.problem} "
                f"({self.checked} events verified before it).")


def verify_chain(batch_size: int = 2000) -> ChainReport:
    """Recompute every hash in order; name the first row that does not fit."""
    expected_prev, expected_id, checked = GENESIS_HASH, 1, 0
    last_id = 0
    while True:
        table = AuditEvent.__table__
        rows = db.session.execute(
            select(table).where(table.c.id > last_id).order_by(table.c.id)
            .limit(batch_size)).all()
        if not rows:
            break
        for row in rows:
            if row.id != expected_id:
                return ChainReport(False, checked, expected_id,
                                   f"event {expected_id} is missing (next is {row.id})")
            if row.prev_hash != expected_prev:
                return ChainReport(False, checked, row.id,
                                   "its previous-hash does not match the event before it")
            digest = content_hash(row.prev_hash, row.id, row.created_at, row.actor_user_id,
                                  row.org_id, row.action, row.object_type, row.object_id,
                                  row.changes)
            if digest != row.hash:
                return ChainReport(False, checked, row.id,
                                   "its content does not match its hash (the row was altered)")
            expected_prev, expected_id, checked = row.hash, row.id + 1, checked + 1
            last_id = row.id
    head = db.session.get(AuditHead, 1)
    if head is not None and (head.last_event_id != last_id or head.last_hash != expected_prev):
        return ChainReport(False, checked, head.last_event_id,
                           "the chain head names events that are missing (rows were deleted)")
    return ChainReport(True, checked)


def events_query(*, org_id: int | None = None, action: str | None = None,
                 object_type: str | None = None, object_id: str | None = None,
                 actor_user_id: int | None = None, since=None, until=None, viewer=None):
    """Audit events, newest first. ``viewer``: an organisation other than the platform
    operator sees only the events about itself (those filed under its id). ``action``
    ending in a dot is a prefix ("financing." is every financing event); ``since`` and
    ``until`` are dates, both included."""
    from datetime import datetime, time
    query = select(AuditEvent).order_by(AuditEvent.id.desc())
    if viewer is not None:
        from finance_app.accounts.states import OrgKind
        if viewer.organisation.kind is not OrgKind.PLATFORM_OPERATOR:
            org_id = viewer.org_id
    if org_id is not None:
        query = query.where(AuditEvent.org_id == org_id)
    if action:
        query = query.where(AuditEvent.action.startswith(action) if action.endswith(".")
                            else AuditEvent.action == action)
    if object_type:
        query = query.where(AuditEvent.object_type == object_type)
    if object_id:
        query = query.where(AuditEvent.object_id == str(object_id))
    if actor_user_id is not None:
        query = query.where(AuditEvent.actor_user_id == actor_user_id)
    if since is not None:
        query = query.where(AuditEvent.created_at >= datetime.combine(since, time.min))
    if until is not None:
        query = query.where(AuditEvent.created_at <= datetime.combine(until, time.max))
    return query


def names_for(events) -> tuple[dict[int, str], dict[int, str]]:
    """E-mail of each actor and name of each organisation named by ``events``."""
    from finance_app.accounts.models import Organisation, User
    user_ids = {e.actor_user_id for e in events if e.actor_user_id}
    org_ids = {e.org_id for e in events if e.org_id}
    users = dict(db.session.execute(
        select(User.id, User.email).where(User.id.in_(user_ids))).all()) if user_ids else {}
    orgs = dict(db.session.execute(
        select(Organisation.id, Organisation.name).where(Organisation.id.in_(org_ids))).all()
    ) if org_ids else {}
    return users, orgs
