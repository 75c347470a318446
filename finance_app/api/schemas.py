"""Schemas and building blocks shared by every API module.

What the OpenAPI document says an endpoint answers is what it answers: there is no catch-all
``default`` response, so each endpoint lists its error status codes (``documents_errors``),
and the fuzz tests (tests/api/test_schemathesis.py) hold the API to that list.
"""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate
from webargs.flaskparser import FlaskParser, abort, is_json_request

# Ids are INTEGER columns: a path or query id beyond this cannot exist (and PostgreSQL would
# refuse to compare with it), so the route does not match and the answer is a 404.
DB_INT_MAX = 2**31 - 1
ID = f"int(min=1, max={DB_INT_MAX})"  # URL converter: "/users/<{ID}:user_id>"

# Text the database can store: PostgreSQL refuses NUL in text, and an unpaired UTF-16
# surrogate (JSON "\ud800") cannot be encoded for either database or for argon2.
STORABLE = validate.Regexp(r"^[^\x00\ud800-\udfff]*$",
                           error="Remove NUL and unpaired surrogate characters.")


def Text(*, validate: Any = (), **kwargs: Any) -> fields.String:  # noqa: N802
    """A string field whose value the database can store (see ``STORABLE``)."""
    extra = [validate] if callable(validate) else list(validate)
    return fields.String(validate=[STORABLE, *extra], **kwargs)


class UtcDateTime(fields.DateTime):
    """A stored (naive UTC, see ``clock``) time as RFC 3339 with its offset: a date-time
    without one is not valid in the OpenAPI document and is ambiguous to clients."""

    def _serialize(self, value: datetime | None, attr: Any, obj: Any, **kwargs: Any):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return super()._serialize(value, attr, obj, **kwargs)


class Amount(fields.Decimal):
    """An exact amount as a string: "110.00", "0.12345"; never a JSON number."""

    def __init__(self, **kwargs: Any):
        metadata = {"type": "string", "pattern": r"^-?\d+(\.\d+)?$", "example": "110.00",
                    **kwargs.pop("metadata", {})}
        super().__init__(as_string=True, metadata=metadata, **kwargs)

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        value = Decimal(value)
        cents = value.quantize(Decimal("0.01")) if value == value.quantize(Decimal("0.01")) \
            else value.normalize()
        return f"{cents:f}"


class ExactAmount(fields.Decimal):
    """A ``Money`` amount as a string with exactly its currency's minor units ("1234.50",
    "500" for yen, "1.250" for dinars), never a JSON number."""

    def __init__(self, **kwargs: Any):
        metadata = {"type": "string", "pattern": r"^-?\d+(\.\d+)?$", "example": "1234.50",
                    **kwargs.pop("metadata", {})}
        super().__init__(as_string=True, metadata=metadata, **kwargs)

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else f"{Decimal(value):f}"


def page_body(page, items=None) -> dict:
    """A page of a list as the API answers it: where it is, how many in all, the items."""
    return {"page": page.page, "per_page": page.per_page, "total": page.total,
            "items": page.items if items is None else list(items)}


IDEMPOTENCY_KEY = "Idempotency-Key"


def idempotent(blp):
    """Document the optional ``Idempotency-Key`` header of a POST (see api/idempotency.py).

    A POST that takes it can also answer 409 (the first request with the key is still being
    processed) and 422 (an invalid key, or one already used for a different request).
    """
    return blp.doc(parameters=[{
        "in": "header", "name": IDEMPOTENCY_KEY, "required": False,
        "schema": {"type": "string", "minLength": 1, "maxLength": 255},
        "description": "Send the same key to retry safely: the first response is replayed "
                       "(with 'Idempotent-Replayed: true') and the request never acts twice.",
    }])


class ApiErrorDetailSchema(Schema):
    code = fields.String(required=True)
    message = fields.String(required=True)
    field = fields.String(required=True, allow_none=True)


class ApiErrorSchema(Schema):
    error = fields.Nested(ApiErrorDetailSchema, required=True)


ErrorSchema = ApiErrorSchema


ERROR_DESCRIPTIONS = {
    400: "The body is not valid JSON.",
    401: "No valid API token.",
    403: "This organisation or role may not do this (or the user must turn on the second "
         "factor first).",
    404: "No such object, or it is not yours to see.",
    409: "The object's state does not allow this, a concurrent change won, or a request with "
         "the same Idempotency-Key is still being processed.",
    413: "The body is larger than the server accepts (MAX_CONTENT_LENGTH).",
    415: "The body is not sent as JSON (Content-Type: application/json).",
    422: "The input is invalid; `field` names it.",
    502: "The card payment service refused the request.",
    503: "The card payment service cannot be reached; nothing was charged or booked.",
}
ALWAYS = (401, 403)  # every endpoint needs a token, and may refuse its user


def documents_errors(blp, *codes: int):
    """Declare the JSON error responses an endpoint can give (for the OpenAPI document).

    401 and 403 are always declared: every endpoint needs a token, and every one refuses a
    user who must turn on the second factor first (403 ``second_factor_required``).
    """
    def decorate(func):
        for code in sorted(set(codes) | set(ALWAYS), reverse=True):
            func = blp.alt_response(code, schema=ErrorSchema,
                                    description=ERROR_DESCRIPTIONS[code])(func)
        return func
    return decorate


class ApiParser(FlaskParser):
    """webargs, refusing a body that is not JSON instead of reading it as "no fields"."""

    def _raw_load_json(self, req):
        if req.get_data(cache=True) and not is_json_request(req):
            abort(415, messages={"json": [
                "Send the body as JSON, with 'Content-Type: application/json'."]})
        return super()._raw_load_json(req)


class ApiBlueprint(Blueprint):
    ARGUMENTS_PARSER = ApiParser()
