"""Landing page, dashboard, language choice and health check."""
from __future__ import annotations

from flask import Blueprint, jsonify, redirect, render_template, request, session, url_for
from flask_login import current_user
from sqlalchemy import text

from finance_app import authz
from finance_app.accounts.forms import LanguageForm
from finance_app.extensions import db
from finance_app.i18n import normalise_locale

bp = Blueprint("main", __name__)


@bp.get("/")
@authz.allow(authz.PUBLIC)
def index():
    if current_user.is_authenticated:
        return redirect(url_for("main.dashboard"))
    return render_template("main/index.html")


@bp.get("/dashboard")
@authz.allow(authz.SIGNED_IN)
def dashboard():
    from finance_app.accounts import notifications
    notices = notifications.inbox(current_user.org_id, limit=10)
    return render_template("main/dashboard.html", org=current_user.organisation,
                           notices=notices, notice_text=notifications.text,
                           unread=notifications.unread_count(current_user.org_id))


@bp.post("/notices/read")
@authz.allow(authz.SIGNED_IN)
def notices_read():
    from finance_app.accounts import notifications
    notifications.mark_read(current_user.org_id)
    db.session.commit()
    return redirect(url_for("main.dashboard"))


@bp.post("/language")
@authz.allow(authz.PUBLIC)
def set_language():
    form = LanguageForm()
    lang = normalise_locale(form.lang.data) if form.validate_on_submit() else None
    if lang:
        session["lang"] = lang
        if current_user.is_authenticated:
            current_user.locale = lang
            db.session.commit()
    target = request.referrer or url_for("main.index")
    if not target.startswith(request.host_url):
        target = url_for("main.index")
    return redirect(target)


@bp.get("/health")
@authz.allow(authz.PUBLIC)
def health():
    db.session.execute(text("SELECT 1"))
    return jsonify({"status": "ok", "database": db.engine.dialect.name})
