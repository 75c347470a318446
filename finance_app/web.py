"""Error responses, in one place: JSON ``{"error": {code, message, field}}`` for the API,
an HTML page for the browser."""
from __future__ import annotations

import logging

from flask import Flask, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from finance_app.errors import DomainError, Unauthenticated

log = logging.getLogger(__name__)


def wants_json() -> bool:
    return request.path.startswith("/api/") or (
        request.accept_mimetypes.best == "application/json")


def page_arg() -> int:
    """The ``page`` query argument of a list page: 1 when missing or not a number."""
    try:
        return min(max(int(request.args.get("page", 1)), 1), 100_000)
    except ValueError:
        return 1


def error_response(status: int, code: str, message: str, field: str | None = None):
    # A lazily translated message (flask_babel LazyString) becomes a plain, escapable str.
    message = str(message) if message is not None else message
    if wants_json():
        response = jsonify({"error": {"code": code, "message": message, "field": field}})
        response.status_code = status
        if status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="api"'
        return response
    return render_template("errors/error.html", status=status, code=code, message=message,
                           field=field), status


def _first_webargs_error(messages) -> tuple[str | None, str]:
    """flask-smorest/webargs nest errors by location then field; return the first leaf."""
    if isinstance(messages, dict):
        for key, value in messages.items():
            if key in ("json", "query", "form", "headers", "files", "path", "view_args"):
                return _first_webargs_error(value)
            sub_field, text = _first_webargs_error(value)
            if isinstance(key, int) or (isinstance(key, str) and key.isdigit()):
                return (f"{key}.{sub_field}" if sub_field else str(key)), text
            return (f"{key}.{sub_field}" if sub_field else key), text
    if isinstance(messages, list) and messages:
        if all(isinstance(m, str) for m in messages):
            return None, " ".join(messages)
        return _first_webargs_error(messages[0])
    return None, str(messages)


def register_error_handlers(app: Flask) -> None:
    from finance_app.extensions import db

    @app.errorhandler(DomainError)
    def _domain_error(exc: DomainError):
        db.session.rollback()
        if isinstance(exc, Unauthenticated) and not wants_json() and exc.code == "unauthenticated":
            return redirect(url_for("accounts.signin", next=request.full_path.rstrip("?")))
        return error_response(exc.status_code, exc.code, exc.message, exc.field)

    @app.errorhandler(CSRFError)
    def _csrf(exc: CSRFError):
        return error_response(400, "csrf_failed",
                              gettext("The form expired or was not sent from this site; "
                                      "reload the page and try again."), "csrf_token")

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        db.session.rollback()
        status = exc.code or 500
        data = getattr(exc, "data", None) or {}
        if status == 422 and "messages" in data:
            field, message = _first_webargs_error(data["messages"])
            if field == "_schema":  # marshmallow's name for "the body as a whole"
                field = None
            return error_response(422, "validation_failed", message, field)
        if status in (400, 415) and "messages" in data:  # webargs: not JSON, or not valid JSON
            message = _first_webargs_error(data["messages"])[1]
            return error_response(status, "unsupported_media_type" if status == 415
                                  else "invalid_json", message)
        codes = {400: "bad_request", 401: "unauthenticated", 403: "forbidden", 404: "not_found",
                 405: "method_not_allowed", 409: "conflict", 413: "too_large",
                 415: "unsupported_media_type", 422: "validation_failed",
                 429: "too_many_requests"}
        message = exc.description or exc.name
        if status == 404:
            message = gettext("Nothing here: the page or object does not exist or is not "
                              "yours to see.")
        if status == 429:
            message = gettext("Too many attempts; wait a minute and try again.")
        if status == 413:
            message = gettext("The upload is too large.")
        response = error_response(status, codes.get(status, "error"), message,
                                  data.get("field") if isinstance(data, dict) else None)
        if status == 405 and hasattr(exc, "valid_methods") and exc.valid_methods:
            resp = response[0] if isinstance(response, tuple) else response
            if hasattr(resp, "headers"):
                resp.headers["Allow"] = ", ".join(exc.valid_methods)
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        db.session.rollback()
        log.exception("Unhandled error on %s %s", request.method, request.path)
        if app.testing and app.config.get("PROPAGATE_UNEXPECTED", True):
            raise exc
        return error_response(500, "internal_error",
                              gettext("Something went wrong on our side; nothing was changed."))
