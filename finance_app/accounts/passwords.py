"""Password hashing (argon2id) and the password policy."""
from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from flask import current_app, has_app_context
from flask_babel import gettext

from finance_app.errors import ValidationFailed

MIN_LENGTH = 12
MAX_LENGTH = 128
COMMON = {
    "password1234", "123456789012", "qwertyuiopas", "passwordpassword", "iloveyou1234",
    "administrator", "letmein12345", "welcome12345", "changeme1234", "demo-password1",
}

_hashers: dict[tuple[int, int], PasswordHasher] = {}


def _hasher() -> PasswordHasher:
    time_cost = memory_cost = None
    if has_app_context():
        time_cost = current_app.config.get("ARGON2_TIME_COST")
        memory_cost = current_app.config.get("ARGON2_MEMORY_COST")
    key = (time_cost or 3, memory_cost or 65536)
    if key not in _hashers:
        _hashers[key] = PasswordHasher(time_cost=key[0], memory_cost=key[1])
    return _hashers[key]


def check_policy(password: str | None, *, email: str | None = None,
                 field: str = "password") -> str:
    password = password or ""
    if len(password) < MIN_LENGTH:
        raise ValidationFailed(gettext("Use at least %(min)s characters.", min=MIN_LENGTH),
                               field=field)
    if len(password) > MAX_LENGTH:
        raise ValidationFailed(gettext("Use at most %(max)s characters.", max=MAX_LENGTH),
                               field=field)
    if len(set(password)) < 5:
        raise ValidationFailed(gettext("Use a password with more different characters."),
                               field=field)
    lowered = password.lower()
    if lowered in COMMON:
        raise ValidationFailed(gettext("That password is too common."), field=field)
    if email and email.split("@")[0].lower() in lowered and len(email.split("@")[0]) >= 4:
        raise ValidationFailed(gettext("Do not use your e-mail address in your password."),
                               field=field)
    return password


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    try:
        return _hasher().verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    try:
        return _hasher().check_needs_rehash(stored_hash)
    except InvalidHashError:
        return True


# A hash to verify against when the e-mail is unknown, so timing does not reveal it.
_dummy_hashes: dict[int, str] = {}


def dummy_verify(password: str) -> None:
    hasher = _hasher()
    key = id(hasher)
    if key not in _dummy_hashes:
        _dummy_hashes[key] = hasher.hash(secrets.token_hex(16))
    verify_password(_dummy_hashes[key], password)
