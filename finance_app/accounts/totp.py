"""Time-based one-time passwords (RFC 6238) and single-use recovery codes."""
from __future__ import annotations

import hashlib
import secrets
import time

import pyotp
import segno
from flask import current_app
from sqlalchemy import delete, select

from finance_app import clock
from finance_app.accounts.models import RecoveryCode, User
from finance_app.extensions import db

RECOVERY_CODE_COUNT = 10


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(user: User, secret: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(
        name=user.email, issuer_name=current_app.config.get("TOTP_ISSUER", "Finance"))


def qr_svg(uri: str) -> str:
    """The provisioning URI as an inline SVG QR code (no external service)."""
    return segno.make(uri, error="m").svg_inline(scale=4)


def matching_step(secret: str, code: str, *, at: float | None = None) -> int | None:
    """The time step ``code`` is valid for (allowing one step of drift), else None.

    TOTP follows the real wall clock, as the user's authenticator does, not the business clock.
    """
    code = (code or "").strip().replace(" ", "")
    if not (code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    step = int((time.time() if at is None else at) // totp.interval)
    for candidate in (step, step - 1, step + 1):
        if secrets.compare_digest(totp.at(candidate * totp.interval), code):
            return candidate
    return None


def _hash_code(code: str) -> str:
    return hashlib.sha256(code.replace("-", "").strip().lower().encode()).hexdigest()


def clear_recovery_codes(user: User) -> None:
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))


def issue_recovery_codes(user: User) -> list[str]:
    clear_recovery_codes(user)
    codes = []
    for _ in range(RECOVERY_CODE_COUNT):
        raw = secrets.token_hex(5)
        code = f"{raw[:5]}-{raw[5:]}"
        codes.append(code)
        db.session.add(RecoveryCode(user_id=user.id, code_hash=_hash_code(code)))
    return codes


def use_recovery_code(user: User, code: str) -> bool:
    row = db.session.execute(
        select(RecoveryCode).where(RecoveryCode.user_id == user.id,
                                   RecoveryCode.code_hash == _hash_code(code or ""),
                                   RecoveryCode.used_at.is_(None))
        .with_for_update()).scalar_one_or_none()
    if row is None:
        return False
    row.used_at = clock.now()
    return True


def remaining_recovery_codes(user: User) -> int:
    return len(db.session.execute(
        select(RecoveryCode.id).where(RecoveryCode.user_id == user.id,
                                      RecoveryCode.used_at.is_(None))).all())
