"""Forms of the financing pages. Shape only: the services decide. Rates and ratios are
typed as percentages (6.5 for 6.5 %) and numbers are read as ``Decimal``, never floats;
the views turn the percentages into the fractions the services take."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField, DateField, DecimalField, HiddenField, IntegerField, SelectField,
    StringField, TextAreaField,
)
from wtforms.validators import AnyOf, DataRequired, InputRequired, Length, Optional

from finance_app.accounts.forms import MultiCheckboxField
from finance_app.financing.products import RATINGS
from finance_app.financing.states import (
    DecisionKind, InstalmentStatus, LoanStatus, OfferStatus, ProductKind, ProductStatus,
    RejectionReason, RepaymentMethod, RepaymentStatus, RepaymentType, RequestStatus,
)
from finance_app.ledger.forms import CURRENCY, _upper

KIND_LABELS = {ProductKind.ORDER: _l("Order financing"),
               ProductKind.RECEIVABLE: _l("Receivables financing"),
               ProductKind.WAREHOUSE_RECEIPT: _l("Warehouse-receipt loan"),
               ProductKind.POLICY: _l("Export credit insurance policy financing")}
PRODUCT_STATUS_LABELS = {ProductStatus.ACTIVE: _l("Active"), ProductStatus.PAUSED: _l("Paused")}
REQUEST_STATUS_LABELS = {RequestStatus.SUBMITTED: _l("Submitted"),
                         RequestStatus.ACCEPTED: _l("Offer accepted"),
                         RequestStatus.WITHDRAWN: _l("Withdrawn")}
DECISION_KIND_LABELS = {DecisionKind.OFFER: _l("Financing offer"),
                        DecisionKind.REJECTION: _l("Rejection")}
OFFER_STATUS_LABELS = {OfferStatus.PREPARED: _l("Prepared, awaiting approval"),
                       OfferStatus.APPROVED: _l("Approved"),
                       OfferStatus.ACCEPTED: _l("Accepted"), OfferStatus.LAPSED: _l("Lapsed"),
                       OfferStatus.EXPIRED: _l("Expired"),
                       OfferStatus.WITHDRAWN: _l("Withdrawn by the bank")}
REJECTION_LABELS = {
    RejectionReason.INSUFFICIENT_COLLATERAL: _l("Insufficient collateral"),
    RejectionReason.CREDIT_HISTORY: _l("Credit history"),
    RejectionReason.UNVERIFIED_TRADE: _l("Trade not verified"),
    RejectionReason.OUTSIDE_APPETITE: _l("Outside our risk appetite"),
    RejectionReason.INCOMPLETE_INFORMATION: _l("Incomplete information"),
    RejectionReason.OTHER: _l("Other"),
}
LOAN_STATUS_LABELS = {LoanStatus.AWAITING_DISBURSEMENT: _l("Awaiting disbursement"),
                      LoanStatus.DISBURSED: _l("Disbursed"), LoanStatus.OVERDUE: _l("Overdue"),
                      LoanStatus.DEFAULTED: _l("Defaulted"), LoanStatus.REPAID: _l("Repaid"),
                      LoanStatus.CANCELLED: _l("Cancelled")}
INSTALMENT_STATUS_LABELS = {InstalmentStatus.PENDING: _l("Not yet due"),
                            InstalmentStatus.OVERDUE: _l("Overdue"),
                            InstalmentStatus.PAID: _l("Paid")}
REPAYMENT_TYPE_LABELS = {RepaymentType.BULLET: _l("Bullet (all at maturity)"),
                         RepaymentType.EQUAL_INSTALMENTS: _l("Equal monthly instalments")}
METHOD_LABELS = {RepaymentMethod.BANK_TRANSFER: _l("Bank transfer"),
                 RepaymentMethod.CARD: _l("Card")}
REPAYMENT_STATUS_LABELS = {RepaymentStatus.PENDING: _l("Awaiting payment"),
                           RepaymentStatus.APPLIED: _l("Applied"),
                           RepaymentStatus.CANCELLED: _l("Cancelled")}
VERDICT_LABELS = {"verified": _l("Verified"), "mismatch": _l("Mismatch"),
                  "incomplete": _l("Incomplete")}
SEVERITY_LABELS = {"low": _l("Low"), "medium": _l("Medium"), "high": _l("High"),
                   "severe": _l("Severe")}
QUEUE_LABELS = {"to_decide": _l("To decide"), "to_approve": _l("To approve"),
                "decided": _l("Decided"), "all": _l("All")}


def _decimal(label, **kwargs):
    return DecimalField(label, places=None, **kwargs)


_percent = _decimal    # a percentage as typed: 6.5 for 6.5 %


class EmptyForm(FlaskForm):
    """A button that posts (its CSRF token only)."""


# --------------------------------------------------------------------------- SME

class RequestForm(FlaskForm):
    amount = _decimal(_l("Amount"), validators=[InputRequired()])
    currency = SelectField(_l("Currency"), choices=[], validators=[DataRequired()])
    tenor_days = IntegerField(_l("Tenor (days)"), validators=[InputRequired()])
    purpose = TextAreaField(_l("What the money is for"),
                            validators=[DataRequired(), Length(max=500)])
    collateral = MultiCheckboxField(_l("Collateral"), choices=[],
                                    validators=[DataRequired(_l("Choose the collateral."))])
    product_ids = MultiCheckboxField(_l("Send the request to"), coerce=int, choices=[],
                                     validators=[DataRequired(_l("Choose at least one bank."))])


class RepaymentForm(FlaskForm):
    amount = _decimal(_l("Amount"), validators=[InputRequired()])
    currency = StringField(_l("Currency"), validators=[DataRequired(), CURRENCY],
                           filters=[_upper])
    method = SelectField(_l("Pay by"), choices=[(m.value, METHOD_LABELS[m])
                                                for m in RepaymentMethod])
    idempotency_key = HiddenField(validators=[DataRequired(), Length(max=100)])


# --------------------------------------------------------------------------- bank

class ProductForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)])
    kind = SelectField(_l("What it finances"), choices=[(k.value, KIND_LABELS[k])
                                                        for k in ProductKind])
    currencies = StringField(_l("Currencies"), validators=[DataRequired(), Length(max=80)],
                             filters=[_upper], default="USD, CNY",
                             description=_l("ISO 4217 codes separated by commas"))
    max_advance_rate = _percent(_l("Maximum advance (percentage of the collateral's value)"),
                                validators=[InputRequired()])
    rate_min = _percent(_l("Lowest annual rate (%)"), validators=[InputRequired()])
    rate_max = _percent(_l("Highest annual rate (%)"), validators=[InputRequired()])
    day_count = SelectField(_l("Day count"), coerce=int, default=360,
                            choices=[(360, "ACT/360"), (365, "ACT/365")])
    arrangement_fee_rate = _percent(_l("Arrangement fee (percentage of the amount)"),
                                    validators=[InputRequired()], default=0)
    max_tenor_days = IntegerField(_l("Longest tenor (days)"), validators=[InputRequired()])
    repayment_type = SelectField(_l("How it is repaid"), choices=[(t.value, REPAYMENT_TYPE_LABELS[t])
                                                           for t in RepaymentType])
    penalty_rate = _percent(_l("Penalty rate on overdue amounts (% a year)"),
                            validators=[InputRequired()])
    default_after_days = IntegerField(_l("Default after (days overdue)"),
                                      validators=[InputRequired()], default=60)
    margin_call_ltv = _percent(_l("Margin call above loan-to-value (%)"),
                               validators=[Optional()])
    liquidation_ltv = _percent(_l("Liquidation above loan-to-value (%)"),
                               validators=[Optional()])
    cure_days = IntegerField(_l("Cure period (days)"), validators=[Optional()])
    min_rating = SelectField(_l("Lowest credit rating accepted"),
                             choices=[("", _l("Any, or not rated"))] + [(r, r) for r in RATINGS],
                             default="")
    require_verified = BooleanField(_l("Only trade verified by three-document matching"),
                                    default=True)
    require_insurance = BooleanField(_l("Only receivables insured by an export credit policy"))
    description = TextAreaField(_l("Description"), validators=[Optional(), Length(max=2000)])


class ProductStatusForm(FlaskForm):
    action = HiddenField(validators=[AnyOf(["pause", "resume"])])
    note = StringField(_l("Note"), validators=[Optional(), Length(max=500)])


class FacilityForm(FlaskForm):
    sme_org_id = SelectField(_l("SME"), coerce=int, choices=[], validators=[InputRequired()])
    limit = _decimal(_l("Limit"), validators=[InputRequired()])
    currency = StringField(_l("Currency"), validators=[DataRequired(), CURRENCY],
                           filters=[_upper], default="USD")
    expiry_date = DateField(_l("Expires on"), validators=[InputRequired()])
    note = StringField(_l("Note"), validators=[Optional(), Length(max=500)])


class OfferForm(FlaskForm):
    amount = _decimal(_l("Amount"), validators=[InputRequired()])
    annual_rate = _percent(_l("Annual rate (%)"), validators=[InputRequired()])
    tenor_days = IntegerField(_l("Tenor (days)"), validators=[InputRequired()])
    fees = _decimal(_l("Fees"), validators=[Optional()],
                    description=_l("Deducted from the amount paid out"))
    conditions = TextAreaField(_l("Conditions"), validators=[Optional(), Length(max=2000)])
    expiry_date = DateField(_l("Offer open until"), validators=[Optional()])


class RejectionForm(FlaskForm):
    reasons = MultiCheckboxField(_l("Reasons"), choices=[(r.value, REJECTION_LABELS[r])
                                                         for r in RejectionReason],
                                 validators=[DataRequired(_l("Give at least one reason."))])
    text = TextAreaField(_l("Explanation for the SME"),
                         validators=[DataRequired(), Length(max=1000)])


class WithdrawDecisionForm(FlaskForm):
    note = StringField(_l("Note"), validators=[Optional(), Length(max=500)])


class DisburseForm(FlaskForm):
    reference = StringField(_l("Transfer reference"), validators=[DataRequired(),
                                                                 Length(max=100)])
    receive_currency = StringField(_l("The SME receives it in"),
                                   validators=[DataRequired(), CURRENCY], filters=[_upper])


class CancelLoanForm(FlaskForm):
    reason = StringField(_l("Reason"), validators=[DataRequired(), Length(max=500)])
