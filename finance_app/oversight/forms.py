"""Oversight forms: a note on an alert, the rule thresholds, the alert list's filters."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from finance_app.oversight.states import AlertStatus, Severity

STATUS_LABELS = {AlertStatus.OPEN: _l("Open"), AlertStatus.ACKNOWLEDGED: _l("Acknowledged"),
                 AlertStatus.RESOLVED: _l("Resolved")}
SEVERITY_LABELS = {Severity.LOW: _l("Low"), Severity.MEDIUM: _l("Medium"),
                   Severity.HIGH: _l("High"), Severity.SEVERE: _l("Severe")}
RULE_LABELS = {
    "document_mismatch": _l("Documents disagree"),
    "payer_many_buyers": _l("One payer, many buyers"),
    "split_orders": _l("Orders split under a threshold"),
    "round_tripping": _l("Seller paid its own order"),
    "volume_spike": _l("Sudden volume spike"),
    "double_pledge": _l("Pledged or financed collateral offered again"),
    "ltv_breach": _l("Loan-to-value above the margin-call threshold"),
    "buyer_concentration": _l("One buyer dominates insured exposure"),
    "instalment_overdue": _l("Instalment overdue"),
    "loan_defaulted": _l("Loan defaulted"),
}


class AcknowledgeForm(FlaskForm):
    note = StringField(_l("Note (optional)"), validators=[Optional(), Length(max=500)])


class ResolveForm(FlaskForm):
    note = TextAreaField(_l("How it was dealt with"),
                         validators=[DataRequired(), Length(min=3, max=500)])


class ThresholdsForm(FlaskForm):
    """The CSRF token; the thresholds themselves are read by key (one input each)."""
