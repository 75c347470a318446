"""Forms for payments. Shape only: the services decide."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, HiddenField, SelectField, StringField
from wtforms.validators import DataRequired, InputRequired, Length, Optional, Regexp

from finance_app.ledger.forms import CURRENCY, _upper
from finance_app.settlement.states import ObligationKind, SettlementStatus

STATUS_LABELS = {SettlementStatus.PENDING: _l("To pay"), SettlementStatus.PAID: _l("Paid"),
                 SettlementStatus.FAILED: _l("Failed"),
                 SettlementStatus.CANCELLED: _l("Cancelled")}
KIND_LABELS = {ObligationKind.DISBURSEMENT: _l("Loan disbursement"),
               ObligationKind.REPAYMENT: _l("Loan repayment"),
               ObligationKind.INTEREST: _l("Interest"), ObligationKind.FEE: _l("Fee"),
               ObligationKind.PREMIUM: _l("Insurance premium"),
               ObligationKind.CLAIM: _l("Claim payment"),
               ObligationKind.COMPENSATION: _l("Compensation"),
               ObligationKind.RECOVERY: _l("Recovery")}


class ConfirmTransferForm(FlaskForm):
    reference = StringField(_l("Bank transfer reference"),
                            validators=[DataRequired(), Length(min=4, max=80)],
                            description=_l("As shown on your bank statement"))
    value_date = DateField(_l("Received on"), validators=[Optional()])


class CancelForm(FlaskForm):
    reason = StringField(_l("Reason"), validators=[DataRequired(), Length(max=500)])


class RemitForm(FlaskForm):
    reference = StringField(_l("Payout reference"),
                            validators=[DataRequired(), Length(min=4, max=80)])


class CardTokenForm(FlaskForm):
    token = HiddenField(validators=[DataRequired(message=_l(
        "The card details did not reach the card payment service; enter them again."))])


class EmptyForm(FlaskForm):
    """A button that posts: CSRF only."""


class FeeForm(FlaskForm):
    payer_org_id = SelectField(_l("Organisation"), coerce=int, validators=[InputRequired()])
    amount = StringField(_l("Amount"), validators=[DataRequired(), Length(max=24),
                                                   Regexp(r"^\d+(\.\d+)?$", message=_l(
                                                       "Enter an amount such as 1234.50."))])
    currency = StringField(_l("Currency"), validators=[DataRequired(), CURRENCY],
                           filters=[_upper], default="USD")
    description = StringField(_l("What the fee is for"),
                              validators=[DataRequired(), Length(max=300)])
    due_date = DateField(_l("Due on"), validators=[Optional()])
