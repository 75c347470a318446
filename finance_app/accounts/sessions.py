"""Server-side sessions: revocable at once, with idle and absolute timeouts.

The browser's signed cookie holds a random session token; the database holds its SHA-256.
A session is valid only while its row is live, younger than the absolute timeout and used
within the idle timeout, and its user is active.
"""
from __future__ import annotations

import hashlib
import secrets

from flask import current_app
from sqlalchemy import select, update

from finance_app import clock
from finance_app.accounts.models import User, UserSession
from finance_app.extensions import db


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def start_session(user: User, *, ip_address: str | None = None,
                  user_agent: str | None = None) -> str:
    raw = secrets.token_urlsafe(32)
    now = clock.now()
    db.session.add(UserSession(token_hash=_digest(raw), user_id=user.id, created_at=now,
                               last_seen_at=now, ip_address=ip_address,
                               user_agent=(user_agent or "")[:300]))
    return raw


def validate_session(raw: str | None) -> UserSession | None:
    """Return the live session for ``raw`` and mark it used, or None (expiring it if stale)."""
    if not raw:
        return None
    row = db.session.execute(
        select(UserSession).where(UserSession.token_hash == _digest(raw))).scalar_one_or_none()
    if row is None or row.revoked_at is not None:
        return None
    now = clock.now()
    idle = current_app.config["SESSION_IDLE_TIMEOUT"]
    absolute = current_app.config["SESSION_ABSOLUTE_TIMEOUT"]
    if now - row.last_seen_at > idle:
        _revoke(row, "idle_timeout")
        return None
    if now - row.created_at > absolute:
        _revoke(row, "absolute_timeout")
        return None
    if not row.user.active:
        _revoke(row, "user_deactivated")
        return None
    # Write the last-seen time at most once a minute to spare the database.
    if (now - row.last_seen_at).total_seconds() > 60:
        row.last_seen_at = now
    return row


def _revoke(row: UserSession, reason: str) -> None:
    row.revoked_at = clock.now()
    row.revoked_reason = reason


def end_session(raw: str | None) -> None:
    if not raw:
        return
    row = db.session.execute(
        select(UserSession).where(UserSession.token_hash == _digest(raw))).scalar_one_or_none()
    if row is not None and row.revoked_at is None:
        _revoke(row, "signed_out")


def revoke_all(user_id: int, reason: str) -> int:
    result = db.session.execute(
        update(UserSession)
        .where(UserSession.user_id == user_id, UserSession.revoked_at.is_(None))
        .values(revoked_at=clock.now(), revoked_reason=reason))
    return result.rowcount or 0


def live_sessions(user_id: int) -> list[UserSession]:
    return list(db.session.execute(
        select(UserSession).where(UserSession.user_id == user_id,
                                  UserSession.revoked_at.is_(None))
        .order_by(UserSession.last_seen_at.desc())).scalars())
