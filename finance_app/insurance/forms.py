"""Forms for export credit insurance. Shape only: the services decide. Coverages and
premium rates are typed as percentages (90 for 90 %) and read as ``Decimal``."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, DecimalField, HiddenField, IntegerField, SelectField, StringField
from wtforms import TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, Optional

from finance_app.insurance.states import (
    AssignmentStatus, ClaimCause, ClaimStatus, DeclarationMode, DeclarationStatus,
    LimitStatus, PolicyStatus,
)
from finance_app.ledger.forms import CURRENCY, _upper

POLICY_STATUS = {PolicyStatus.ISSUED: _l("In force"), PolicyStatus.EXPIRED: _l("Expired"),
                 PolicyStatus.CANCELLED: _l("Cancelled")}
LIMIT_STATUS = {LimitStatus.REQUESTED: _l("Requested"), LimitStatus.APPROVED: _l("Approved"),
                LimitStatus.REFUSED: _l("Refused"), LimitStatus.CANCELLED: _l("Cancelled"),
                LimitStatus.WITHDRAWN: _l("Withdrawn")}
DECLARATION_STATUS = {
    DeclarationStatus.DECLARED: _l("Declared"), DeclarationStatus.SETTLED: _l("Paid by the buyer"),
    DeclarationStatus.OVERDUE: _l("Overdue"), DeclarationStatus.CLAIMED: _l("Claimed"),
    DeclarationStatus.CLOSED: _l("Closed"), DeclarationStatus.VOIDED: _l("Cover voided"),
    DeclarationStatus.CANCELLED: _l("Cancelled")}
CLAIM_STATUS = {ClaimStatus.FILED: _l("Filed"), ClaimStatus.UNDER_ASSESSMENT: _l("Under assessment"),
                ClaimStatus.APPROVED: _l("Approved"), ClaimStatus.PAID: _l("Paid"),
                ClaimStatus.REJECTED: _l("Rejected"), ClaimStatus.WITHDRAWN: _l("Withdrawn")}
ASSIGNMENT_STATUS = {
    AssignmentStatus.REQUESTED: _l("Requested"),
    AssignmentStatus.ACKNOWLEDGED: _l("Acknowledged by the insurer"),
    AssignmentStatus.ACTIVE: _l("Active"), AssignmentStatus.REFUSED: _l("Refused"),
    AssignmentStatus.WITHDRAWN: _l("Withdrawn"), AssignmentStatus.RELEASED: _l("Released")}
CAUSES = {ClaimCause.NON_PAYMENT: _l("Non-payment (protracted default)"),
          ClaimCause.INSOLVENCY: _l("Buyer insolvency"),
          ClaimCause.POLITICAL: _l("Political risk")}
MODES = {DeclarationMode.AFTER_SHIPMENT: _l("Within N days after each shipment"),
         DeclarationMode.MONTHLY: _l("Monthly, by day N of the next month")}


def _decimal(label, **kwargs):
    return DecimalField(label, places=None, **kwargs)


class PolicyForm(FlaskForm):
    insured_org_id = SelectField(_l("Insured SME"), coerce=int, validators=[InputRequired()])
    start_date = DateField(_l("Starts on"), validators=[InputRequired()])
    end_date = DateField(_l("Ends on"), validators=[InputRequired()])
    currency = StringField(_l("Policy currency"), validators=[DataRequired(), CURRENCY],
                           filters=[_upper], default="USD")
    currencies = StringField(_l("Other invoice currencies"), validators=[Optional(),
                                                                         Length(max=60)],
                             filters=[_upper], description=_l("EUR, BRL, ... separated by commas"))
    max_liability = _decimal(_l("Maximum liability"), validators=[InputRequired()])
    commercial_coverage = _decimal(_l("Coverage, commercial risk (%)"), default=90,
                                   validators=[InputRequired()])
    political_coverage = _decimal(_l("Coverage, political risk (%)"), default=95,
                                  validators=[InputRequired()])
    declaration_mode = SelectField(_l("Shipment declarations"),
                                   choices=[(m.value, MODES[m]) for m in DeclarationMode])
    declaration_days = IntegerField(_l("Declaration days (N)"), default=15,
                                    validators=[InputRequired()])
    overdue_report_days = IntegerField(_l("Overdue report within (days after due date)"),
                                       default=60, validators=[InputRequired()])
    waiting_days = IntegerField(_l("Waiting period, non-payment (days)"), default=120,
                                validators=[InputRequired()])
    insolvency_waiting_days = IntegerField(_l("Waiting period, insolvency (days)"), default=30,
                                           validators=[InputRequired()])
    rates = TextAreaField(_l("Premium rates"), validators=[DataRequired(), Length(max=4000)],
                          default="0,90,0.30\n0,180,0.45\n4,90,0.60\n5,90,0.80\n5,180,1.10",
                          description=_l("One a line: country risk grade (0-7), payment term "
                                         "up to (days), rate as a percentage of the insured amount"))


class LimitForm(FlaskForm):
    buyer_name = StringField(_l("Buyer"), validators=[DataRequired(), Length(max=200)])
    buyer_country = StringField(_l("Country (ISO code)"), validators=[DataRequired(),
                                                                      Length(2, 2)],
                                filters=[_upper], description=_l("BR, PT, MX, ..."))
    buyer_registration_no = StringField(_l("Registration number"),
                                        validators=[DataRequired(), Length(max=60)])
    amount = _decimal(_l("Limit asked for"), validators=[InputRequired()])
    payment_term_days = IntegerField(_l("Longest payment term (days)"), default=90,
                                     validators=[InputRequired()])


class DecisionForm(FlaskForm):
    """The decisions on a limit, a claim or an assignment: which one, and its figures."""
    action = HiddenField(validators=[DataRequired()])
    amount = _decimal(_l("Amount"), validators=[Optional()])
    reason = StringField(_l("Reason"), validators=[Optional(), Length(max=1000)])


class DeclareForm(FlaskForm):
    buyer_limit_id = SelectField(_l("Buyer limit"), coerce=int, validators=[InputRequired()])
    order_id = SelectField(_l("Verified order on payment terms"), coerce=int,
                           validators=[InputRequired()])
    shipment_date = DateField(_l("Shipment date"), validators=[Optional()],
                              description=_l("Leave empty to take the waybill's date"))


class DeclarationActionForm(FlaskForm):
    action = HiddenField(validators=[DataRequired()])
    note = StringField(_l("Note"), validators=[Optional(), Length(max=2000)])
    reason = StringField(_l("Reason"), validators=[Optional(), Length(max=1000)])


class ClaimForm(FlaskForm):
    cause = SelectField(_l("Cause of loss"), choices=[(c.value, CAUSES[c]) for c in ClaimCause])
    loss_amount = _decimal(_l("Insured loss claimed"), validators=[InputRequired()])


class AssignForm(FlaskForm):
    bank_org_id = SelectField(_l("Bank"), coerce=int, validators=[InputRequired()])


class RecoveryForm(FlaskForm):
    amount = _decimal(_l("Amount recovered from the buyer"), validators=[InputRequired()])
