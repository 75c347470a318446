"""``Idempotency-Key`` for API POSTs.

The first request with a key inserts a record in its own transaction; a concurrent request
with the same key waits on the unique index and then replays the stored response.  A
request that fails (4xx) is rolled back together with its record, so a retry acts afresh.
The same key with a different body or path is refused.
"""
from __future__ import annotations

import hashlib

from flask import Response, g, request
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from finance_app.accounts.auth import enforce_second_factor_enrolment
from finance_app import authz  # noqa: I001  (after accounts: authz <-> accounts import cycle)
from finance_app.api.models import IdempotencyRecord
from finance_app.api.schemas import IDEMPOTENCY_KEY as HEADER
from finance_app.extensions import db
from finance_app.web import error_response


def _fingerprint() -> str:
    digest = hashlib.sha256()
    digest.update(request.method.encode())
    digest.update(b"\0")
    digest.update(request.path.encode())
    digest.update(b"\0")
    digest.update(request.get_data(cache=True))
    return digest.hexdigest()


def _replay(record: IdempotencyRecord):
    if record.status_code is None:
        return error_response(409, "idempotency_in_progress",
                              "A request with this Idempotency-Key is still being processed.",
                              HEADER)
    response = Response(record.response_body or b"", status=record.status_code,
                        content_type=record.content_type or "application/json")
    response.headers["Idempotent-Replayed"] = "true"
    return response


def begin():
    key = request.headers.get(HEADER)
    if key is None or not current_user.is_authenticated:
        return None
    # This hook runs before the app's access checks: a stored answer is replayed only to
    # someone who may make the request (not, say, to a colleague without the admin role).
    authz.enforce_endpoint_policy()
    refused = enforce_second_factor_enrolment()
    if refused is not None:
        return refused
    key = key.strip()
    if not key or len(key) > 255 or not key.isprintable():
        return error_response(422, "invalid_idempotency_key",
                              "An Idempotency-Key has 1 to 255 printable characters.", HEADER)
    fingerprint = _fingerprint()
    org_id = current_user.org_id

    def existing() -> IdempotencyRecord | None:
        return db.session.execute(select(IdempotencyRecord).where(
            IdempotencyRecord.org_id == org_id, IdempotencyRecord.key == key)).scalar_one_or_none()

    record = existing()
    if record is None:
        record = IdempotencyRecord(org_id=org_id, key=key, method=request.method,
                                   path=request.path[:500], request_hash=fingerprint)
        db.session.add(record)
        try:
            db.session.flush()  # waits here while a concurrent twin holds the key
        except IntegrityError:
            db.session.rollback()
            record = existing()
            if record is None:
                return error_response(409, "idempotency_in_progress",
                                      "Retry: a request with this key was just rolled back.",
                                      HEADER)
        else:
            g.idempotency_record = record
            return None
    if record.request_hash != fingerprint:
        return error_response(422, "idempotency_key_reused",
                              "This Idempotency-Key was used for a different request.", HEADER)
    return _replay(record)


def finish(response: Response) -> None:
    record: IdempotencyRecord | None = g.pop("idempotency_record", None)
    if record is None:
        return
    record.status_code = response.status_code
    record.response_body = response.get_data()
    record.content_type = response.content_type


def abandon() -> None:
    """For an endpoint that had to commit part-way (to hand work to the outbox) and then
    failed: forget its key, so a retry acts afresh instead of waiting for an answer that
    will never be stored."""
    record: IdempotencyRecord | None = g.pop("idempotency_record", None)
    if record is None:
        return
    db.session.rollback()
    stored = db.session.get(IdempotencyRecord, record.id)
    if stored is not None and stored.status_code is None:
        db.session.delete(stored)
        db.session.commit()
