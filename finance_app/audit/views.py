"""The platform operator's audit viewer."""
from __future__ import annotations

from flask import Blueprint, render_template, request

from finance_app import authz
from finance_app.audit import services
from finance_app.extensions import db

bp = Blueprint("audit", __name__, url_prefix="/audit")


@bp.get("/")
@authz.allow(authz.OPERATOR)
def events():
    action = (request.args.get("action") or "").strip()[:80] or None
    object_type = (request.args.get("object_type") or "").strip()[:60] or None
    try:
        org_id = int(request.args["org_id"]) if request.args.get("org_id") else None
    except ValueError:
        org_id = None
    rows = db.session.execute(services.events_query(
        org_id=org_id, action=action, object_type=object_type).limit(200)).scalars().all()
    users, orgs = services.names_for(rows)
    return render_template("audit/events.html", events=rows, action=action or "",
                           object_type=object_type or "", org_id=org_id or "",
                           users=users, orgs=orgs)


@bp.get("/verify")
@authz.allow(authz.OPERATOR)
def verify():
    report = services.verify_chain()
    return render_template("audit/verify.html", report=report)
