"""Oversight in the browser: risk alerts for those concerned (the platform, the
organisation an alert is about, the other party it names), the platform operator's rule
thresholds, and credit ratings (an SME its own with what would improve it; the platform,
and the banks and insurers it deals with, any SME's)."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from finance_app import authz
from finance_app.accounts.models import Organisation
from finance_app.accounts.services import organisation_names
from finance_app.accounts.states import OrgKind
from finance_app.errors import DomainError
from finance_app.extensions import db
from finance_app.oversight import forms, ratings, rules, services
from finance_app.oversight.states import AlertStatus, Severity
from finance_app.web import page_arg

bp = Blueprint("oversight", __name__, url_prefix="/oversight")


@bp.app_context_processor
def _helpers():
    return {"factor_label": ratings.factor_label, "explain_factor": ratings.explain,
            "factor_advice": ratings.advice, "rating_trigger": ratings.trigger_label,
            "alert_status_labels": forms.STATUS_LABELS,
            "alert_severity_labels": forms.SEVERITY_LABELS,
            "alert_rule_labels": forms.RULE_LABELS}


def _enum_arg(name: str, enum_cls):
    try:
        return enum_cls(request.args[name]) if request.args.get(name) else None
    except ValueError:
        return None


# --------------------------------------------------------------------------- alerts

@bp.get("/alerts")
@authz.allow(authz.MEMBER)
def alerts():
    status = _enum_arg("status", AlertStatus)
    severity = _enum_arg("severity", Severity)
    rule = request.args.get("rule") if request.args.get("rule") in forms.RULE_LABELS else None
    page = services.alerts(current_user, status=status, severity=severity, rule=rule,
                           page=page_arg())
    names = organisation_names({a.subject_org_id for a in page.items}
                               | {a.party_org_id for a in page.items if a.party_org_id})
    return render_template("oversight/alerts.html", page=page, names=names, status=status,
                           severity=severity, rule=rule)


def _alert_page(alert, status: int = 200, **extra):
    ack = extra.pop("ack_form", None) or forms.AcknowledgeForm()
    resolve_form = extra.pop("resolve_form", None) or forms.ResolveForm()
    names = organisation_names({alert.subject_org_id, alert.party_org_id} - {None})
    return render_template("oversight/alert_detail.html", alert=alert,
                           evidence=services.evidence_of(alert), names=names,
                           ack_form=ack, resolve_form=resolve_form,
                           may_handle=authz.can(current_user, "oversight.handle_alert", alert),
                           **extra), status


@bp.get("/alerts/<int:alert_id>")
@authz.allow(authz.MEMBER)
def alert_detail(alert_id: int):
    return _alert_page(services.get_alert(alert_id, actor=current_user))


@bp.post("/alerts/<int:alert_id>/acknowledge")
@authz.allow(authz.MEMBER)
def acknowledge(alert_id: int):
    form = forms.AcknowledgeForm()
    alert = services.get_alert(alert_id, actor=current_user)
    if not form.validate_on_submit():
        return _alert_page(alert, 422, ack_form=form)
    try:
        services.acknowledge(alert_id, actor=current_user, note=form.note.data)
    except DomainError as exc:
        db.session.rollback()
        if exc.status_code in (401, 403, 404):
            raise
        return _alert_page(services.get_alert(alert_id), 409, error=exc.message)
    db.session.commit()
    flash(_("Alert acknowledged."), "success")
    return redirect(url_for(".alert_detail", alert_id=alert_id))


@bp.post("/alerts/<int:alert_id>/resolve")
@authz.allow(authz.MEMBER)
def resolve(alert_id: int):
    form = forms.ResolveForm()
    alert = services.get_alert(alert_id, actor=current_user)
    if not form.validate_on_submit():
        return _alert_page(alert, 422, resolve_form=form)
    try:
        services.resolve(alert_id, actor=current_user, note=form.note.data)
    except DomainError as exc:
        db.session.rollback()
        if exc.status_code in (401, 403, 404):
            raise
        form.note.errors = [exc.message]
        return _alert_page(services.get_alert(alert_id), exc.status_code, resolve_form=form,
                           error=exc.message)
    db.session.commit()
    flash(_("Alert resolved."), "success")
    return redirect(url_for(".alert_detail", alert_id=alert_id))


# --------------------------------------------------------------------------- thresholds

def _thresholds_page(status: int = 200, *, entered: dict | None = None,
                     error: str | None = None, field: str | None = None):
    return render_template("oversight/thresholds.html", settings=rules.SETTINGS,
                           values=rules.values(), entered=entered or {}, error=error,
                           error_field=field, form=forms.ThresholdsForm(),
                           may_change=authz.can(current_user, "oversight.configure")), status


@bp.get("/thresholds")
@authz.allow(authz.OPERATOR)
def thresholds():
    return _thresholds_page()


@bp.post("/thresholds")
@authz.allow(authz.OPERATOR_DECIDER)
def save_thresholds():
    form = forms.ThresholdsForm()
    entered = {key: request.form.get(key, "") for key in rules.SETTINGS
               if request.form.get(key) is not None}
    if not form.validate_on_submit():
        return _thresholds_page(422, entered=entered, error=_("The form expired; try again."))
    try:
        rules.set_thresholds(entered, actor=current_user)
    except DomainError as exc:
        db.session.rollback()
        if exc.status_code in (401, 403, 404):
            raise
        return _thresholds_page(422, entered=entered, error=exc.message, field=exc.field)
    db.session.commit()
    flash(_("Thresholds saved; the next daily run uses them."), "success")
    return redirect(url_for(".thresholds"))


# --------------------------------------------------------------------------- ratings

def _rating_page(org: Organisation, *, own: bool):
    return render_template("oversight/rating.html", org=org, own=own,
                           rating=ratings.current(org.id), history=ratings.history(org.id),
                           may_recompute=authz.can(current_user, "oversight.configure"))


@bp.get("/rating")
@authz.allow(authz.MEMBER)
def my_rating():
    kind = current_user.organisation.kind
    if kind is OrgKind.PLATFORM_OPERATOR:
        return redirect(url_for(".ratings_list"))
    if kind is not OrgKind.SME:
        return render_template("oversight/rating.html", org=None, own=True, rating=None,
                               history=[], may_recompute=False)
    return _rating_page(current_user.organisation, own=True)


@bp.get("/ratings")
@authz.allow(authz.OPERATOR)
def ratings_list():
    from sqlalchemy import select
    smes = list(db.session.execute(select(Organisation).where(
        Organisation.kind == OrgKind.SME).order_by(Organisation.name)).scalars())
    grades = ratings.current_grades(o.id for o in smes)
    return render_template("oversight/ratings.html", smes=smes, grades=grades)


@bp.get("/ratings/<int:org_id>")
@authz.allow(authz.MEMBER)
def rating_detail(org_id: int):
    org = ratings.rated_org(org_id, actor=current_user)
    return _rating_page(org, own=org.id == current_user.org_id)


@bp.post("/ratings/<int:org_id>/recompute")
@authz.allow(authz.OPERATOR_DECIDER)
def recompute(org_id: int):
    org = ratings.rated_org(org_id, actor=current_user)
    form = forms.ThresholdsForm()
    if form.validate_on_submit():
        ratings.rate(org.id, trigger="manual", actor=current_user)
        db.session.commit()
        flash(_("Rating recomputed."), "success")
    return redirect(url_for(".rating_detail", org_id=org.id))
