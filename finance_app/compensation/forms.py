"""Forms for the risk compensation fund. Shape only: the services decide. The share of
principal lost is typed as a percentage (50 for 50 %) and read as ``Decimal``."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, DecimalField, HiddenField, IntegerField, SelectField
from wtforms import SelectMultipleField, StringField
from wtforms.validators import DataRequired, InputRequired, Length, Optional

from finance_app.compensation.states import ClaimStatus, FundStatus
from finance_app.financing.forms import KIND_LABELS as PRODUCT_KINDS
from finance_app.ledger.forms import CURRENCY, _upper

FUND_STATUS = {FundStatus.ACTIVE: _l("Active"), FundStatus.PAUSED: _l("Paused"),
               FundStatus.CLOSED: _l("Closed")}
CLAIM_STATUS = {ClaimStatus.SUBMITTED: _l("Submitted"), ClaimStatus.APPROVED: _l("Approved"),
                ClaimStatus.PAID: _l("Paid"), ClaimStatus.REJECTED: _l("Rejected"),
                ClaimStatus.WITHDRAWN: _l("Withdrawn")}



def _decimal(label, **kwargs):
    return DecimalField(label, places=None, **kwargs)


class FundForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)])
    currency = StringField(_l("Currency"), validators=[DataRequired(), CURRENCY],
                           filters=[_upper], default="CNY")
    share = _decimal(_l("Share of principal lost (%)"), default=50,
                     validators=[InputRequired()])
    cap_per_loan = _decimal(_l("Cap per loan"), validators=[InputRequired()])
    budget = _decimal(_l("Budget"), validators=[InputRequired()])
    start_date = DateField(_l("Starts on"), validators=[InputRequired()])
    end_date = DateField(_l("Ends on"), validators=[InputRequired()])
    bank_org_ids = SelectMultipleField(_l("Banks covered"), coerce=int,
                                       description=_l("None chosen: every bank"))
    product_kinds = SelectMultipleField(
        _l("Kinds of financing covered"), choices=[(k.value, v) for k, v in PRODUCT_KINDS.items()],
        description=_l("None chosen: every kind"))


class TopUpForm(FlaskForm):
    amount = _decimal(_l("Amount"), validators=[InputRequired()])
    note = StringField(_l("Note"), validators=[Optional(), Length(max=500)])


class ActionForm(FlaskForm):
    """A decision on a fund or a claim: which one, and its reason or note."""
    action = HiddenField(validators=[DataRequired()])
    reason = StringField(_l("Reason"), validators=[Optional(), Length(max=1000)])


class ClaimForm(FlaskForm):
    fund_id = SelectField(_l("Fund"), coerce=int, validators=[InputRequired()])
    loan_id = IntegerField(validators=[InputRequired()])
