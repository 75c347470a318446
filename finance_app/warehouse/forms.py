"""Forms for warehouses and receipts. Shape only: the services decide. Ratios are typed
as percentages (70 for 70 %) and numbers are read as ``Decimal``, never floats."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import (
    BooleanField, DateField, DecimalField, IntegerField, SelectField, SelectMultipleField,
    StringField, TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length, Optional

from finance_app.ledger.forms import CURRENCY, _upper
from finance_app.warehouse.states import ReceiptStatus, WarehouseKind

KIND_LABELS = {WarehouseKind.BONDED: _l("Bonded warehouse"),
               WarehouseKind.OVERSEAS: _l("Overseas warehouse"),
               WarehouseKind.GENERAL: _l("General warehouse")}
STATUS_LABELS = {ReceiptStatus.ISSUED: _l("Issued"), ReceiptStatus.PLEDGED: _l("Pledged"),
                 ReceiptStatus.RELEASED: _l("Released"), ReceiptStatus.SPLIT: _l("Split"),
                 ReceiptStatus.DELIVERED: _l("Delivered"),
                 ReceiptStatus.CANCELLED: _l("Cancelled"), ReceiptStatus.EXPIRED: _l("Expired")}


def _decimal(label, **kwargs):
    return DecimalField(label, places=None, **kwargs)


class WarehouseForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)])
    kind = SelectField(_l("Kind"), choices=[(k.value, KIND_LABELS[k]) for k in WarehouseKind])
    address = StringField(_l("Address"), validators=[DataRequired(), Length(max=300)])
    country = StringField(_l("Country (ISO code)"), validators=[DataRequired(), Length(2, 2)],
                          filters=[_upper], description=_l("CN, PT, BR, ..."))


class ReceiptForm(FlaskForm):
    warehouse_id = SelectField(_l("Warehouse"), coerce=int, validators=[InputRequired()])
    depositor_org_id = SelectField(_l("Depositor"), coerce=int, validators=[InputRequired()])
    goods_description = StringField(_l("Goods"), validators=[DataRequired(), Length(max=500)])
    hs_code = StringField(_l("HS code"), validators=[DataRequired(), Length(max=12)],
                          description=_l("6 to 10 digits"))
    quantity = _decimal(_l("Quantity"), validators=[InputRequired()])
    unit = StringField(_l("Unit"), validators=[DataRequired(), Length(max=20)],
                       description=_l("pcs, kg, cartons, ..."))
    grade = StringField(_l("Grade or specification"), validators=[Optional(), Length(max=200)])
    storage_location = StringField(_l("Storage location"),
                                   validators=[Optional(), Length(max=100)])
    unit_price = _decimal(_l("Unit price"), validators=[InputRequired()])
    currency = StringField(_l("Currency"), validators=[DataRequired(), CURRENCY],
                           filters=[_upper], default="USD")
    valuation_source = StringField(_l("Valuation source"),
                                   validators=[Optional(), Length(max=200)])
    insured = BooleanField(_l("The goods are insured"))
    expiry_date = DateField(_l("Expires on"), validators=[InputRequired()])


class OfferForm(FlaskForm):
    bank_org_ids = SelectMultipleField(_l("Banks"), coerce=int,
                                       validators=[DataRequired(_l("Choose at least one bank."))])


class PledgeForm(FlaskForm):
    principal = _decimal(_l("Principal it secures"), validators=[InputRequired()])
    currency = StringField(_l("Currency"), validators=[DataRequired(), CURRENCY],
                           filters=[_upper], default="USD")
    max_ltv = _decimal(_l("Loan-to-value limit (%)"), validators=[InputRequired()],
                       default=70)
    margin_call_ltv = _decimal(_l("Margin call above (%)"), validators=[InputRequired()],
                               default=80)
    liquidation_ltv = _decimal(_l("Liquidation above (%)"), validators=[InputRequired()],
                               default=90)
    cure_days = IntegerField(_l("Cure period (days)"), validators=[InputRequired()],
                             default=10)
    financing_ref = StringField(_l("Your financing reference"),
                                validators=[Optional(), Length(max=100)])
    registry_ref = StringField(_l("Movable-property registration number (动产融资统一登记)"),
                               validators=[Optional(), Length(max=40)])


class ReleaseForm(FlaskForm):
    reason = StringField(_l("Reason"), validators=[Optional(), Length(max=500)])


class PartialReleaseForm(FlaskForm):
    quantity = _decimal(_l("Quantity to release"), validators=[InputRequired()])
    reason = StringField(_l("Reason"), validators=[Optional(), Length(max=500)])


class PrincipalForm(FlaskForm):
    principal = _decimal(_l("Principal now outstanding"), validators=[InputRequired()])


class RegistryForm(FlaskForm):
    registry_ref = StringField(_l("Registration number"),
                               validators=[DataRequired(), Length(max=40)])


class SplitForm(FlaskForm):
    quantity = _decimal(_l("Quantity of the first part"), validators=[InputRequired()])


class DeliverForm(FlaskForm):
    note = StringField(_l("Note"), validators=[Optional(), Length(max=500)])


class CancelForm(FlaskForm):
    reason = StringField(_l("Reason"), validators=[DataRequired(), Length(max=500)])


class PriceForm(FlaskForm):
    hs_code = StringField(_l("HS code"), validators=[DataRequired(), Length(max=12)])
    unit = StringField(_l("Unit"), validators=[DataRequired(), Length(max=20)])
    product = StringField(_l("Product or grade (optional)"),
                          validators=[Optional(), Length(max=100)])
    unit_price = _decimal(_l("Unit price"), validators=[InputRequired()])
    currency = StringField(_l("Currency"), validators=[DataRequired(), CURRENCY],
                           filters=[_upper], default="USD")
    valid_from = DateField(_l("Valid from"), validators=[InputRequired()])
    valid_to = DateField(_l("Valid to (optional)"), validators=[Optional()])
    source = StringField(_l("Source"), validators=[Optional(), Length(max=200)])


class PriceUploadForm(FlaskForm):
    file = FileField(_l("CSV file"), validators=[DataRequired()])


class HaircutForm(FlaskForm):
    hs_prefix = StringField(_l("HS chapter or heading"), validators=[DataRequired(),
                                                                    Length(max=10)])
    name = StringField(_l("Goods category"), validators=[DataRequired(), Length(max=200)])
    haircut = _decimal(_l("Haircut (%)"), validators=[InputRequired()])


class VerifyForm(FlaskForm):
    code = StringField(_l("Verification code"), validators=[DataRequired(), Length(max=40)],
                       description=_l("As printed on the certificate, e.g. K7Q2-M9XA-3RTD-VW5P"))
    # the public page takes the code by GET too (the QR code's link): no CSRF there
    class Meta:
        csrf = False


class NoteForm(FlaskForm):
    note = TextAreaField(_l("Note"), validators=[Optional(), Length(max=500)])
