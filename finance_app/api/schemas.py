"""Schemas shared by every API module."""
from __future__ import annotations

from functools import wraps

from marshmallow import Schema, fields


class ApiErrorDetailSchema(Schema):
    code = fields.String(required=True)
    message = fields.String(required=True)
    field = fields.String(required=True, allow_none=True)


class ApiErrorSchema(Schema):
    error = fields.Nested(ApiErrorDetailSchema, required=True)


ErrorSchema = ApiErrorSchema


ERROR_DESCRIPTIONS = {
    401: "No valid API token.",
    403: "This organisation or role may not do this.",
    404: "No such object, or it is not yours to see.",
    409: "The object's state does not allow this, or a concurrent change won.",
    422: "The input is invalid; `field` names it.",
}


def documents_errors(blp, *codes: int):
    """Declare the JSON error responses an endpoint can give (for the OpenAPI document)."""
    def decorate(func):
        for code in codes:
            func = blp.alt_response(code, schema=ErrorSchema,
                                    description=ERROR_DESCRIPTIONS[code])(func)
        return func
    return decorate
