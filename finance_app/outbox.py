"""The transactional outbox: external effects queued with the change that needs them.

A service that must call something outside the database (Stripe, a notice to a party)
writes an ``OutboxMessage`` in the same database transaction as the change itself, and
never makes the call there. After the commit, ``deliver`` (right away, for a user who is
waiting) or ``run_due`` (the worker, ``flask --app finance_app outbox-run``) carries it
out. So a crash can lose neither half: a committed change always has its instruction
queued, and an instruction exists only for a committed change.

Delivery is at least once. Each message is taken under a row lock (``SKIP LOCKED`` on
PostgreSQL, so two workers never take the same one); its handler runs and the message is
marked done in one transaction, so what the handler writes to the database commits with
the "done". A handler that fails leaves its changes rolled back and the message pending,
tried again later with a growing delay, and marked failed after ``MAX_ATTEMPTS``. Since a
message can be delivered twice (the call succeeded, the commit did not), handlers make
their calls idempotent: Stripe requests carry an idempotency key derived from the record.

``dedupe_key`` is unique: queueing the same effect twice keeps one message.
"""
from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Callable

from sqlalchemy import Enum, Index, Integer, String, Text, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from finance_app import clock
from finance_app.extensions import db
from finance_app.states import enum_values

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8


class OutboxStatus(StrEnum):
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"     # gave up after the last attempt; the operator sees it


class OutboxMessage(db.Model):
    """An external effect, written in the same database transaction as the change that
    needs it and carried out after commit."""
    __tablename__ = "outbox_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    topic: Mapped[str] = mapped_column(String(60))
    payload: Mapped[str] = mapped_column(Text)   # JSON
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    status: Mapped[OutboxStatus] = mapped_column(
        Enum(OutboxStatus, native_enum=False, create_constraint=True, name="outbox_status",
             values_callable=enum_values, length=20, validate_strings=True),
        default=OutboxStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    available_at: Mapped[datetime] = mapped_column(default=clock.now)
    last_error: Mapped[str | None] = mapped_column(String(1000))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    done_at: Mapped[datetime | None] = mapped_column()

    __table_args__ = (Index("ix_outbox_messages_due", "status", "available_at"),)

    @property
    def data(self) -> dict:
        return json.loads(self.payload)


class RetryLater(Exception):
    """A handler's way to say: not now (the other side is unreachable); try again."""


Handler = Callable[[dict], Any]
HANDLERS: dict[str, Handler] = {}


def handler(topic: str) -> Callable[[Handler], Handler]:
    """Register the function that carries out messages of ``topic``."""
    def register(fn: Handler) -> Handler:
        HANDLERS[topic] = fn
        return fn
    return register


def enqueue(topic: str, payload: dict, *, dedupe_key: str) -> OutboxMessage:
    """Queue an effect in the current transaction; the same ``dedupe_key`` again returns
    the message already queued."""
    query = select(OutboxMessage).where(OutboxMessage.dedupe_key == dedupe_key)
    found = db.session.execute(query).scalar_one_or_none()
    if found is not None:
        return found
    message = OutboxMessage(topic=topic, dedupe_key=dedupe_key,
                            payload=json.dumps(payload, sort_keys=True, default=str),
                            status=OutboxStatus.PENDING, attempts=0,
                            available_at=clock.now(), created_at=clock.now())
    try:
        with db.session.begin_nested():
            db.session.add(message)
    except IntegrityError:
        return db.session.execute(query).scalar_one()
    db.session.info.setdefault(_NEW, []).append(message.id)
    return message


_NEW = "outbox_new"


def deliver_new() -> int:
    """After the request's commit: deliver what it queued (those still pending; what a
    rolled-back transaction queued never existed). Returns how many are done."""
    ids = db.session.info.pop(_NEW, [])
    return sum(1 for message_id in ids if deliver(message_id))


def _take(message_id: int) -> OutboxMessage | None:
    query = (select(OutboxMessage).where(OutboxMessage.id == message_id,
                                         OutboxMessage.status == OutboxStatus.PENDING)
             .execution_options(populate_existing=True))
    if db.session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return db.session.execute(query).scalar_one_or_none()


def deliver(message_id: int) -> bool:
    """Carry out one pending message now and commit; True when it is done (now or
    before). Never raises for a handler's failure: the message stays pending (or is
    marked failed after the last attempt) with the error kept."""
    db.session.commit()   # what queued it is committed first
    message = _take(message_id)
    if message is None:
        db.session.rollback()
        done = db.session.get(OutboxMessage, message_id)
        return done is not None and done.status is OutboxStatus.DONE
    topic, payload = message.topic, message.data
    try:
        fn = HANDLERS[topic]
        fn(payload)
        message.status, message.done_at = OutboxStatus.DONE, clock.now()
        message.attempts += 1
        db.session.commit()
        return True
    except Exception as exc:  # noqa: BLE001 - recorded on the message, tried again later
        db.session.rollback()
        retry = isinstance(exc, RetryLater)
        if not retry:
            log.exception("outbox message %s (%s) failed", message_id, topic)
        _record_failure(message_id, exc)
        return False


def _record_failure(message_id: int, exc: Exception) -> None:
    message = db.session.get(OutboxMessage, message_id, populate_existing=True)
    if message is None or message.status is not OutboxStatus.PENDING:
        db.session.rollback()
        return
    message.attempts += 1
    message.last_error = f"{type(exc).__name__}: {exc}"[:1000]
    if message.attempts >= MAX_ATTEMPTS:
        message.status = OutboxStatus.FAILED
    else:
        message.available_at = clock.now() + timedelta(minutes=2 ** (message.attempts - 1))
    db.session.commit()


def run_due(limit: int = 100) -> tuple[int, int]:
    """Deliver up to ``limit`` messages whose time has come; (done, not done)."""
    ids = list(db.session.execute(
        select(OutboxMessage.id).where(OutboxMessage.status == OutboxStatus.PENDING,
                                       OutboxMessage.available_at <= clock.now())
        .order_by(OutboxMessage.available_at, OutboxMessage.id).limit(limit)).scalars())
    db.session.rollback()
    done = sum(1 for message_id in ids if deliver(message_id))
    return done, len(ids) - done
