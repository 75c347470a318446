"""Notices to organisations, delivered through the outbox.

``notify`` queues a notice in the current transaction (so it exists only if the change it
reports commits); the outbox handler files it in the organisation's inbox. Each kind of
notice has its sentence here, translated when it is read.
"""
from __future__ import annotations

import json

from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, update

from finance_app import clock, outbox
from finance_app.accounts.models import Notification
from finance_app.extensions import db

TOPIC = "notify"

MESSAGES = {
    "settlement.created": _l("%(payer)s owes %(payee)s %(amount)s: %(description)s."),
    "settlement.paid": _l("%(amount)s from %(payer)s has been paid (%(description)s)."),
    "settlement.card_failed": _l("The card payment of %(amount)s failed: %(reason)s"),
    "settlement.cancelled": _l("The payment of %(amount)s (%(description)s) was cancelled."),
    "settlement.refund_needed": _l("A card payment of %(amount)s arrived for cancelled "
                                   "payment %(record)s: refund it."),
    "outbox.failed": _l("An external instruction could not be carried out: %(topic)s."),
}


def register_messages(messages: dict) -> None:
    """A domain's notices: kind -> a lazily translated sentence with %(name)s fields."""
    MESSAGES.update(messages)


def notify(org_id: int, kind: str, *, dedupe_key: str, link: str | None = None,
           **params: object) -> None:
    """Queue a notice for ``org_id``; the same ``dedupe_key`` is delivered once."""
    if kind not in MESSAGES:
        raise ValueError(f"unknown notice {kind}")
    outbox.enqueue(TOPIC, {"org_id": org_id, "kind": kind, "link": link,
                           "params": {k: str(v) for k, v in params.items()},
                           "dedupe_key": dedupe_key}, dedupe_key=f"notify:{dedupe_key}")


@outbox.handler(TOPIC)
def _file_notice(payload: dict) -> None:
    exists = db.session.execute(select(Notification.id).where(
        Notification.dedupe_key == payload["dedupe_key"])).first()
    if exists:
        return
    db.session.add(Notification(org_id=payload["org_id"], kind=payload["kind"],
                                params=json.dumps(payload["params"], ensure_ascii=False),
                                link=payload.get("link"), dedupe_key=payload["dedupe_key"],
                                created_at=clock.now()))
    db.session.flush()


def text(notice: Notification) -> str:
    template = MESSAGES.get(notice.kind)
    params = json.loads(notice.params or "{}")
    if template is None:
        return notice.kind
    try:
        return str(template) % params
    except (KeyError, TypeError, ValueError):
        return gettext("A notice could not be shown.")


def inbox(org_id: int, *, limit: int = 50) -> list[Notification]:
    return list(db.session.execute(select(Notification).where(Notification.org_id == org_id)
                                   .order_by(Notification.id.desc()).limit(limit)).scalars())


def unread_count(org_id: int) -> int:
    return db.session.execute(select(func.count(Notification.id)).where(
        Notification.org_id == org_id, Notification.read_at.is_(None))).scalar_one()


def mark_read(org_id: int) -> int:
    result = db.session.execute(update(Notification).where(
        Notification.org_id == org_id, Notification.read_at.is_(None))
        .values(read_at=clock.now()))
    return result.rowcount or 0
