"""The platform operator's filing queue: approve, reject, suspend, reinstate."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from finance_app import authz
from finance_app.accounts import services
from finance_app.accounts.forms import DecisionForm, attach_error
from finance_app.accounts.states import FILING_TRANSITIONS, FilingAction, FilingStatus
from finance_app.errors import DomainError
from finance_app.extensions import db
from finance_app.states import allowed_actions

bp = Blueprint("admin", __name__, url_prefix="/operator")

DECISION_LABELS = {FilingAction.APPROVE: _l("Approve"), FilingAction.REJECT: _l("Reject"),
                   FilingAction.SUSPEND: _l("Suspend"), FilingAction.REINSTATE: _l("Reinstate")}


def _decision_form(org, formdata=True) -> DecisionForm:
    form = DecisionForm() if formdata else DecisionForm(formdata=None)
    form.action.choices = [(a.value, str(DECISION_LABELS[a]))
                           for a in allowed_actions(FILING_TRANSITIONS, org.filing_status)
                           if a in DECISION_LABELS]
    return form


@bp.get("/filings")
@authz.allow(authz.OPERATOR)
def filings():
    raw = request.args.get("status", "pending")
    try:
        status = FilingStatus(raw) if raw != "all" else None
    except ValueError:
        status = FilingStatus.PENDING
    return render_template("admin/filings.html", orgs=services.filings(current_user, status=status),
                           status=status.value if status else "all")


@bp.get("/filings/<int:org_id>")
@authz.allow(authz.OPERATOR)
def filing_detail(org_id: int):
    org = services.get_organisation(org_id, actor=current_user)
    return render_template("admin/filing_detail.html", org=org, form=_decision_form(org, False))


@bp.post("/filings/<int:org_id>/decide")
@authz.allow(authz.OPERATOR_DECIDER)
def filing_decide(org_id: int):
    org = services.get_organisation(org_id, actor=current_user)
    form = _decision_form(org)
    if form.validate_on_submit():
        try:
            services.decide_filing(org_id, form.action.data, actor=current_user,
                                   reason=form.reason.data)
        except DomainError as exc:
            db.session.rollback()
            attach_error(form, exc)
        else:
            db.session.commit()
            flash(_("Decision recorded for %(name)s.", name=org.name), "success")
            return redirect(url_for("admin.filings"))
    return render_template("admin/filing_detail.html", org=org, form=form), 422
