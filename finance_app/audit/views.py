"""The audit viewer: the platform operator browses the whole trail, filters it and runs
the chain verification; every other organisation sees the events about itself."""
from __future__ import annotations

from datetime import date

from flask import Blueprint, render_template, request
from flask_babel import gettext as _
from flask_login import current_user

from finance_app import authz
from finance_app.accounts.states import OrgKind
from finance_app.audit import services
from finance_app.paging import paginate
from finance_app.web import page_arg

bp = Blueprint("audit", __name__, url_prefix="/audit")


def _text(name: str, limit: int) -> str | None:
    return (request.args.get(name) or "").strip()[:limit] or None


def _number(name: str) -> tuple[int | None, str | None]:
    raw = _text(name, 12)
    if raw is None:
        return None, None
    if not raw.isdigit() or not 0 < int(raw) < 2**31:
        return None, _("%(name)s must be a positive whole number.", name=name)
    return int(raw), None


def _day(name: str) -> tuple[date | None, str | None]:
    raw = _text(name, 10)
    if raw is None:
        return None, None
    try:
        return date.fromisoformat(raw), None
    except ValueError:
        return None, _("%(name)s must be a date (YYYY-MM-DD).", name=name)


@bp.get("/")
@authz.allow(authz.MEMBER)
def events():
    operator = current_user.organisation.kind is OrgKind.PLATFORM_OPERATOR
    org_id, bad_org = _number("org_id")
    actor_id, bad_actor = _number("actor")
    since, bad_since = _day("since")
    until, bad_until = _day("until")
    errors = [e for e in (bad_org, bad_actor, bad_since, bad_until) if e]
    if since and until and since > until:
        errors.append(_("The first date is after the last."))
    filters = dict(action=_text("action", 80), object_type=_text("object_type", 60),
                   object_id=_text("object_id", 64), org_id=org_id if operator else None,
                   actor_user_id=actor_id, since=since, until=until)
    page = paginate(services.events_query(viewer=current_user, **filters), page_arg()) \
        if not errors else None
    users, orgs = services.names_for(page.items if page else [])
    args = {k: request.args.get(k, "") for k in ("action", "object_type", "object_id",
                                                  "org_id", "actor", "since", "until")}
    return render_template("audit/events.html", page=page, args=args, errors=errors,
                           operator=operator, users=users, orgs=orgs), 422 if errors else 200


@bp.get("/verify")
@authz.allow(authz.OPERATOR)
def verify():
    report = services.verify_chain()
    return render_template("audit/verify.html", report=report)
