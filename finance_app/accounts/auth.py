"""How a request gets its user: the session cookie for pages, a bearer token for the API."""
from __future__ import annotations

from flask import current_app, jsonify, redirect, request, session, url_for
from flask_login import current_user, logout_user

from finance_app.accounts import services, sessions
from finance_app.accounts.models import User
from finance_app.extensions import db, login_manager


def _is_api_request() -> bool:
    return request.path.startswith("/api/")


@login_manager.user_loader
def load_user_from_session(user_id: str) -> User | None:
    if _is_api_request():
        return None  # the API authenticates by token only, so cookies cannot be ridden (CSRF)
    row = sessions.validate_session(session.get("sid"))
    if row is None or str(row.user_id) != user_id:
        db.session.commit()  # persist an expiry the check may have recorded
        session.pop("sid", None)
        return None
    if db.session.dirty:
        db.session.commit()
    return row.user


@login_manager.request_loader
def load_user_from_token(req) -> User | None:
    if not _is_api_request():
        return None
    header = req.headers.get("Authorization", "")
    if not header.lower().startswith("bearer "):
        return None
    user = services.authenticate_token(header[7:].strip())
    if db.session.dirty:
        db.session.commit()
    return user


@login_manager.unauthorized_handler
def _unauthorized():
    if _is_api_request():
        response = jsonify({"error": {"code": "unauthenticated",
                                      "message": "Send a valid API token as 'Authorization: Bearer ...'.",
                                      "field": None}})
        response.status_code = 401
        return response
    return redirect(url_for("accounts.signin", next=request.full_path.rstrip("?")))


# Endpoints a user who must enrol a second factor may still reach.
ENROLMENT_OPEN = {"accounts.totp_setup", "accounts.signout", "main.set_language", "static",
                  "main.health", "main.index"}


def enforce_second_factor_enrolment():
    """Approvers and platform operators cannot act until they have turned the second factor on."""
    if not current_user.is_authenticated or request.endpoint in ENROLMENT_OPEN:
        return None
    if request.endpoint and request.endpoint.startswith("api-docs."):
        return None
    if current_user.second_factor_required and not current_user.totp_enabled:
        if _is_api_request():
            response = jsonify({"error": {
                "code": "second_factor_required",
                "message": "This user must turn on the second factor in the web app first.",
                "field": None}})
            response.status_code = 403
            return response
        return redirect(url_for("accounts.totp_setup"))
    return None


def sign_out_current() -> None:
    sessions.end_session(session.get("sid"))
    db.session.commit()
    logout_user()
    session.clear()
