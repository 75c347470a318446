"""The JSON API under /api/v1: bearer-token auth, one commit per request, idempotent POSTs,
errors as ``{"error": {"code", "message", "field"}}`` and an OpenAPI document generated from
the endpoints' marshmallow schemas (flask-smorest)."""
from __future__ import annotations

from flask import Flask, g, request



def register_api(app: Flask) -> None:
    from finance_app.api import idempotency
    from finance_app.extensions import api, db
    from finance_app.accounts.api import blp as accounts_blp
    from finance_app.audit.api import blp as audit_blp
    from finance_app.trade.api import blp as trade_blp
    from finance_app.ledger.api import blp as ledger_blp
    from finance_app.settlement.api import blp as settlement_blp
    from finance_app.warehouse.api import blp as warehouse_blp
    from finance_app.financing.api import blp as financing_blp
    from finance_app.insurance.api import blp as insurance_blp
    from finance_app.oversight.api import blp as oversight_blp
    from finance_app.compensation.api import blp as compensation_blp
    from finance_app.statistics.api import blp as statistics_blp

    api.spec.components.security_scheme(
        "bearerAuth", {"type": "http", "scheme": "bearer",
                       "description": "An API token created by an organisation admin."})
    api.spec.options["security"] = [{"bearerAuth": []}]
    from finance_app.extensions import csrf
    for blp in (accounts_blp, audit_blp, trade_blp, ledger_blp, settlement_blp,
                warehouse_blp, financing_blp, insurance_blp, compensation_blp, oversight_blp,
                statistics_blp):
        csrf.exempt(blp)  # the API accepts bearer tokens only, never the session cookie
        api.register_blueprint(blp)

    @app.before_request
    def _api_idempotency():
        if request.path.startswith("/api/") and request.method == "POST":
            return idempotency.begin()
        return None

    @app.after_request
    def _api_commit(response):
        if not request.path.startswith("/api/"):
            return response
        if response.status_code < 400:
            idempotency.finish(response)
            try:
                db.session.commit()
            except Exception:  # noqa: BLE001 - turned into a JSON error, nothing stored
                db.session.rollback()
                from finance_app.web import error_response
                return error_response(409, "conflict",
                                      "The change conflicted with another one; retry.")
        else:
            db.session.rollback()
        return response
