"""Named domain errors, mapped to HTTP responses in one place (``register_error_handlers``)."""
from __future__ import annotations

from flask_babel import gettext

# The object kinds a NotFound can name, translated; unknown kinds fall back to a neutral noun.
_KINDS = {
    "organisation": lambda: gettext("organisation"),
    "user": lambda: gettext("user"),
    "API token": lambda: gettext("API token"),
    "apitoken": lambda: gettext("API token"),
    "order": lambda: gettext("order"),
    "payment": lambda: gettext("payment"),
    "waybill": lambda: gettext("waybill"),
    "inventory": lambda: gettext("inventory"),
    "ingestbatch": lambda: gettext("upload"),
    "receivable": lambda: gettext("receivable"),
    "warehouse": lambda: gettext("warehouse"),
    "warehouse receipt": lambda: gettext("warehouse receipt"),
    "encumbrance": lambda: gettext("pledge"),
    "settlement": lambda: gettext("payment"),
    "settlementrecord": lambda: gettext("payment"),
    "ledgeraccount": lambda: gettext("account"),
    "ledgertransaction": lambda: gettext("transaction"),
    "account": lambda: gettext("account"),
    "transaction": lambda: gettext("transaction"),
    "policy": lambda: gettext("policy"),
    "buyer limit": lambda: gettext("buyer limit"),
    "buyerlimit": lambda: gettext("buyer limit"),
    "declaration": lambda: gettext("declaration"),
    "shipmentdeclaration": lambda: gettext("declaration"),
    "claim": lambda: gettext("claim"),
    "assignment": lambda: gettext("assignment"),
    "indemnityassignment": lambda: gettext("assignment"),
    "fund": lambda: gettext("fund"),
    "compensationfund": lambda: gettext("fund"),
    "compensationclaim": lambda: gettext("claim"),
}


def _kind(what: str) -> str:
    label = _KINDS.get(what)
    return label() if label else gettext("object")


class DomainError(Exception):
    """A business rule refused the request. ``field`` names the input at fault, if any."""

    status_code = 422
    code = "invalid"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        if code:
            self.code = code

    def to_dict(self) -> dict:
        return {"error": {"code": self.code, "message": self.message, "field": self.field}}


class ValidationFailed(DomainError):
    status_code = 422
    code = "validation_failed"


class NotFound(DomainError):
    status_code = 404
    code = "not_found"

    def __init__(self, what: str, ident: object | None = None):
        # One wording whether the object is missing or belongs to someone else.
        super().__init__(gettext("No %(what)s with that id, or it is not yours to see.",
                                 what=_kind(what)) if ident is not None
                         else gettext("No such %(what)s.", what=_kind(what)))


class Conflict(DomainError):
    status_code = 409
    code = "conflict"


class IllegalTransition(Conflict):
    code = "illegal_transition"

    def __init__(self, what: str, status: str, action: str):
        super().__init__(f"Cannot {action.replace('_', ' ')} a {what} that is {status.replace('_', ' ')}.")
        self.status = status
        self.action = action


class Forbidden(DomainError):
    status_code = 403
    code = "forbidden"

    def __init__(self, message: str | None = None, *, code: str | None = None):
        super().__init__(message or gettext("You are not allowed to do this."), code=code)


class Unauthenticated(DomainError):
    status_code = 401
    code = "unauthenticated"
