"""Forms for filing trade documents: an upload (CEB XML or CSV) and one document at a time.

Forms check shape only; ``services.ingest`` decides whether a document is accepted.  Amounts
are ``Decimal`` read from the text as typed, never through a float.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import (
    DateField, DateTimeLocalField, DecimalField, FieldList, Form, FormField, IntegerField,
    SelectField, StringField,
)
from wtforms.validators import (
    DataRequired, InputRequired, Length, NumberRange, Optional, Regexp, ValidationError,
)
from wtforms.widgets import TextInput

from finance_app import clock
from finance_app.accounts.models import Organisation
from finance_app.accounts.states import OrgKind
from finance_app.clock import BUSINESS_TZ
from finance_app.money import is_currency
from finance_app.trade import services
from finance_app.trade.states import Direction, DocumentKind, DocumentSource, TradeMode

UPLOAD_LIMIT = 20 * 1024 * 1024  # bytes: one file, CEB XML or CSV
LINES = 5                        # order lines on the web form

KIND_LABELS = {DocumentKind.ORDER: _l("Order"), DocumentKind.PAYMENT: _l("Payment"),
               DocumentKind.WAYBILL: _l("Waybill"), DocumentKind.INVENTORY: _l("Customs inventory")}
DIRECTION_LABELS = {Direction.EXPORT: _l("Export"), Direction.IMPORT: _l("Import")}
TRADE_MODE_LABELS = {
    TradeMode.B2C_DIRECT: _l("9610 Cross-border e-commerce, parcels (B2C)"),
    TradeMode.B2B_DIRECT: _l("9710 Cross-border e-commerce B2B direct export"),
    TradeMode.B2B_OVERSEAS_WH: _l("9810 Cross-border e-commerce export to an overseas warehouse"),
    TradeMode.BONDED: _l("1210 Bonded cross-border e-commerce"),
}
TRADE_MODES = [("", "—")] + [(m.value, TRADE_MODE_LABELS[m]) for m in TradeMode]
ID_TYPES = [("", "—"), ("1", _l("Resident identity card")), ("2", _l("Other"))]

# What the database can store (see api.schemas.STORABLE), for every text field.
STORABLE = Regexp(r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]*$",
                  message=_l("Remove control characters."))


def allowed_kinds(org: Organisation) -> list[DocumentKind]:
    """The kinds of document this organisation may file (the operator files any)."""
    if org.kind is OrgKind.PLATFORM_OPERATOR:
        return list(DocumentKind)
    return [kind for kind in DocumentKind if org.kind in services.FILER_KINDS[kind]]


class AmountField(DecimalField):
    """A non-negative amount with at most five decimals, read from the text as typed."""
    PATTERN = re.compile(r"\d{1,14}(\.\d{1,5})?")

    widget = TextInput()

    def __init__(self, label=None, validators=None, **kwargs):
        render_kw = {"inputmode": "decimal", "autocomplete": "off", **kwargs.pop("render_kw", {})}
        super().__init__(label, validators, places=None, render_kw=render_kw, **kwargs)

    def process_formdata(self, valuelist):
        if not valuelist:
            return
        raw = (valuelist[0] or "").strip()
        if raw == "":
            self.data = None
            return
        if not self.PATTERN.fullmatch(raw):
            self.data = None
            raise ValueError(_("Enter an amount such as 1234.50: digits and a point, at most "
                               "5 decimals."))
        self.data = Decimal(raw)


def _text(label, max_length: int, *, required: bool = False, **kwargs) -> StringField:
    first = DataRequired() if required else Optional()
    return StringField(label, validators=[first, Length(max=max_length), STORABLE],
                       filters=[lambda v: v.strip() if isinstance(v, str) else v], **kwargs)


def _currency_check(form, field):
    if field.data and not is_currency(field.data.upper()):
        raise ValidationError(_("Enter an ISO 4217 currency code such as CNY, USD or EUR."))


def _currency(required: bool = True) -> StringField:
    first = DataRequired() if required else Optional()
    return StringField(_l("Currency"), validators=[first, Length(max=3), _currency_check],
                       filters=[lambda v: v.strip().upper() if isinstance(v, str) else v],
                       description=_l("ISO 4217, e.g. USD"))


class _DocumentForm(FlaskForm):
    """Fields every document has; subclasses add the document's own."""
    KIND: DocumentKind
    META = ("csrf_token", "app_type", "direction", "lines")

    app_type = SelectField(_l("Filing type"), choices=[("1", _l("New document")),
                                                  ("2", _l("Correction of a filed document"))])
    direction = SelectField(_l("Direction"),
                            choices=[(d.value, DIRECTION_LABELS[d]) for d in Direction])

    def document_fields(self) -> dict[str, Any]:
        """The document's elements, named as ingest names them; blanks left out."""
        values = {}
        for name, f in self._fields.items():
            if name in self.META or f.data in (None, ""):
                continue
            value = f.data
            if isinstance(value, datetime):  # typed in China Standard Time; stored as UTC
                value = value.replace(tzinfo=BUSINESS_TZ).astimezone(timezone.utc).replace(
                    tzinfo=None)
            values[name] = value
        values["direction"] = self.direction.data
        values["app_time"] = clock.now()
        return values

    def document(self) -> services.SimpleDocument:
        return services.SimpleDocument(self.KIND.value, self.document_fields(),
                                       app_type=self.app_type.data)


class LineForm(Form):
    item_no = _text(_l("Item no."), 30)
    item_name = _text(_l("Goods"), 250)
    unit = _text(_l("Unit"), 3)
    qty = AmountField(_l("Quantity"), validators=[Optional()])
    price = AmountField(_l("Unit price"), validators=[Optional()])
    total_price = AmountField(_l("Line total"), validators=[Optional()])

    def is_blank(self) -> bool:
        return not any(self[name].data not in (None, "") for name in
                       ("item_no", "item_name", "qty", "price", "total_price"))

    def validate(self, extra_validators=None) -> bool:
        ok = super().validate(extra_validators)
        if ok and not self.is_blank():
            for name in ("item_name", "qty", "price", "total_price"):
                if self[name].data in (None, ""):
                    self[name].errors.append(_("Fill this in, or leave the whole line empty."))
                    ok = False
        return ok


class OrderForm(_DocumentForm):
    KIND = DocumentKind.ORDER
    order_no = _text(_l("Order number"), 60, required=True)
    ebp_code = _text(_l("E-commerce platform code"), 18, required=True)
    ebp_name = _text(_l("E-commerce platform name"), 100)
    ebc_code = _text(_l("E-commerce company code"), 18, required=True,
                     description=_l("Your customs registration code"))
    ebc_name = _text(_l("E-commerce company name"), 100)
    trade_mode = SelectField(_l("Trade mode"), choices=TRADE_MODES, validators=[Optional()])
    currency = _currency()
    goods_value = AmountField(_l("Goods value"), validators=[InputRequired()])
    freight = AmountField(_l("Freight"), validators=[Optional()])
    tax_total = AmountField(_l("Tax"), validators=[Optional()])
    discount = AmountField(_l("Discount"), validators=[Optional()])
    actual_paid = AmountField(_l("Amount actually paid"), validators=[Optional()],
                              description=_l("If it differs from goods + freight + tax − "
                                             "discount"))
    buyer_name = _text(_l("Buyer"), 100)
    buyer_id_type = SelectField(_l("Buyer's ID type"), choices=ID_TYPES, validators=[Optional()])
    buyer_id_number = _text(_l("Buyer's ID number"), 60)
    buyer_country = SelectField(_l("Buyer's country"), choices=[], validate_choice=False,
                                validators=[Optional()])
    pay_code = _text(_l("Payment company code"), 18)
    pay_transaction_id = _text(_l("Payment transaction number"), 60)
    consignee = _text(_l("Consignee"), 100)
    consignee_address = _text(_l("Consignee address"), 200)
    consignee_telephone = _text(_l("Consignee telephone"), 50)
    payment_term_days = IntegerField(_l("Payment term (days)"),
                                     validators=[Optional(), NumberRange(min=1, max=3650)],
                                     description=_l("B2B exports sold on credit"))
    order_date = DateField(_l("Order date"), validators=[Optional()])
    lines = FieldList(FormField(LineForm), min_entries=LINES, max_entries=LINES)

    def document(self) -> services.SimpleDocument:
        lines = []
        for n, entry in enumerate(self.lines.entries, start=1):
            line = entry.form
            if line.is_blank():
                continue
            lines.append({"gnum": len(lines) + 1, "item_no": line.item_no.data or None,
                          "item_name": line.item_name.data, "unit": line.unit.data or None,
                          "qty": line.qty.data, "price": line.price.data,
                          "total_price": line.total_price.data})
        return services.SimpleDocument(self.KIND.value, self.document_fields(), lines,
                                       app_type=self.app_type.data)


class PaymentForm(_DocumentForm):
    KIND = DocumentKind.PAYMENT
    order_no = _text(_l("Order number"), 60, required=True)
    ebp_code = _text(_l("E-commerce platform code"), 18)
    ebc_code = _text(_l("E-commerce company code"), 18)
    pay_code = _text(_l("Payment company code"), 18, required=True)
    pay_name = _text(_l("Payment company name"), 100)
    pay_transaction_id = _text(_l("Payment transaction number"), 60, required=True)
    payer_name = _text(_l("Payer"), 100)
    payer_id_type = SelectField(_l("Payer's ID type"), choices=ID_TYPES, validators=[Optional()])
    payer_id_number = _text(_l("Payer's ID number"), 60)
    amount = AmountField(_l("Amount paid"), validators=[InputRequired()])
    currency = _currency()
    pay_time = DateTimeLocalField(_l("Paid at"), validators=[Optional()])


class WaybillForm(_DocumentForm):
    KIND = DocumentKind.WAYBILL
    logistics_code = _text(_l("Logistics company code"), 18, required=True)
    logistics_name = _text(_l("Logistics company name"), 100)
    logistics_no = _text(_l("Waybill number"), 60, required=True)
    order_no = _text(_l("Order number"), 60)
    consignee = _text(_l("Consignee"), 100)
    consignee_address = _text(_l("Consignee address"), 200)
    consignee_telephone = _text(_l("Consignee telephone"), 50)
    freight = AmountField(_l("Freight"), validators=[Optional()])
    currency = _currency(required=False)
    weight = AmountField(_l("Weight (kg)"), validators=[Optional()])
    pack_no = IntegerField(_l("Packages"), validators=[Optional(), NumberRange(min=0,
                                                                               max=1_000_000)])
    goods_info = _text(_l("Goods description"), 200)
    shipped_at = DateTimeLocalField(_l("Shipped at"), validators=[Optional()])


class InventoryForm(_DocumentForm):
    KIND = DocumentKind.INVENTORY
    cop_no = _text(_l("Enterprise inventory number"), 60, required=True)
    invt_no = _text(_l("Customs inventory number"), 60)
    order_no = _text(_l("Order number"), 60, required=True)
    ebp_code = _text(_l("E-commerce platform code"), 18, required=True)
    ebc_code = _text(_l("E-commerce company code"), 18)
    agent_code = _text(_l("Declaring agent code"), 18)
    logistics_code = _text(_l("Logistics company code"), 18)
    logistics_no = _text(_l("Waybill number"), 60)
    trade_mode = SelectField(_l("Trade mode"), choices=TRADE_MODES, validators=[Optional()])
    country = SelectField(_l("Destination country"), choices=[], validate_choice=False,
                          validators=[Optional()])
    currency = _currency(required=False)
    total_value = AmountField(_l("Total value"), validators=[Optional()])
    declared_at = DateTimeLocalField(_l("Declared at"), validators=[Optional()])


DOCUMENT_FORMS: dict[DocumentKind, type[_DocumentForm]] = {
    DocumentKind.ORDER: OrderForm, DocumentKind.PAYMENT: PaymentForm,
    DocumentKind.WAYBILL: WaybillForm, DocumentKind.INVENTORY: InventoryForm}
# The form field that names the filer, pre-filled with the organisation's code.
FILER_FIELD = {DocumentKind.ORDER: "ebc_code", DocumentKind.PAYMENT: "pay_code",
               DocumentKind.WAYBILL: "logistics_code", DocumentKind.INVENTORY: "agent_code"}


def document_form(kind: DocumentKind, org: Organisation, locale: str) -> _DocumentForm:
    from finance_app.accounts.identifiers import country_choices
    form = DOCUMENT_FORMS[kind]()
    countries = [("", "—")] + country_choices(locale)
    for name in ("buyer_country", "country"):
        if hasattr(form, name):
            form[name].choices = countries
    code = org.customs_code or org.credit_code
    filer = form[FILER_FIELD[kind]]
    if not form.is_submitted() and code and org.kind is not OrgKind.PLATFORM_OPERATOR:
        filer.data = code
        if kind is DocumentKind.PAYMENT and org.kind is OrgKind.SME:
            filer.data, form.ebc_code.data = None, code
    return form


# --------------------------------------------------------------------------- upload

class UploadForm(FlaskForm):
    file = FileField(_l("File"), description=_l("A CEB XML message, or a CSV file; at most "
                                                 "20 MB"))
    kind = SelectField(_l("What the file holds"), choices=[], validate_choice=False)
    direction = SelectField(_l("Direction (CSV)"),
                            choices=[(d.value, DIRECTION_LABELS[d]) for d in Direction],
                            validators=[Optional()])

    def set_kind_choices(self, kinds: list[DocumentKind]) -> None:
        self.kind.choices = [("", _("A CEB XML message (kind and direction read from it)"))] + [
            (k.value, _("%(kind)s (CSV)", kind=KIND_LABELS[k])) for k in kinds]

    def validate_file(self, field) -> None:
        if not field.data or not getattr(field.data, "filename", None):
            raise ValidationError(_("Choose a file to upload."))

    def validate_kind(self, field) -> None:
        if field.data and field.data not in {value for value, _label in field.choices}:
            raise ValidationError(_("Your organisation does not file this kind of document."))


class UploadError(Exception):
    """The file as a whole cannot be filed; the message names it."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass
class Upload:
    documents: list
    source: DocumentSource
    direction: Direction | None
    filename: str
    message_type: str | None = None
    warnings: list[str] = field(default_factory=list)


def clean_filename(name: str | None) -> str:
    """The file's own name, as something we can show and store."""
    name = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    return name[:255] or _("the file")


def _looks_like_xml(data: bytes) -> bool:
    head = data[:200].lstrip(b"\xef\xbb\xbf \t\r\n")
    return head.startswith(b"<")


def _decode(data: bytes, filename: str) -> str:
    if b"\x00" in data[:8192]:
        raise UploadError(_("%(file)s is not a text file: a CSV file is text, in UTF-8.",
                            file=filename))
    for encoding in ("utf-8-sig", "gb18030"):  # Excel in China saves CSV as GB18030
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise UploadError(_("%(file)s is neither UTF-8 nor GB18030 text.", file=filename))


def read_upload(filename: str, data: bytes, kind: str | None,
                direction: str | None) -> Upload:
    """Turn an uploaded file into documents for ``services.ingest``, or raise UploadError."""
    from finance_app.trade.ceb import CebFileError, parse_message
    from finance_app.trade.formats import FormatError, documents_from_csv

    if len(data) > UPLOAD_LIMIT:
        raise UploadError(_("%(file)s is %(size)s MB; a file may be at most 20 MB.",
                            file=filename, size=f"{len(data) / 1024 / 1024:.1f}"))
    if not data.strip():
        raise UploadError(_("%(file)s is empty.", file=filename))
    if not kind or _looks_like_xml(data):
        try:
            message = parse_message(data, max_bytes=UPLOAD_LIMIT)
        except CebFileError as exc:
            raise UploadError(_("%(file)s is not a CEB message we can file: %(reason)s",
                                file=filename, reason=str(exc))) from None
        return Upload(list(message.documents), DocumentSource.CEB_XML,
                      Direction(message.direction), filename, message.message_type,
                      list(message.warnings))
    text = _decode(data, filename)
    try:
        documents = documents_from_csv(kind, text, direction=direction)
    except FormatError as exc:
        raise UploadError(_("%(file)s: %(reason)s", file=filename, reason=exc.message)) from None
    return Upload(documents, DocumentSource.CSV, Direction(direction or Direction.EXPORT.value),
                  filename)


# --------------------------------------------------------------------------- list filters

class _FilterForm(Form):
    """A GET form over the query string; a value that does not parse is ignored."""
    direction = SelectField(_l("Direction"), choices=[], validate_choice=False)
    date_from = DateField(_l("From"), validators=[Optional()])
    date_to = DateField(_l("To"), validators=[Optional()])

    def __init__(self, formdata=None, **kwargs):
        super().__init__(formdata, **kwargs)
        self.direction.choices = [("", _("Both directions"))] + [
            (d.value, DIRECTION_LABELS[d]) for d in Direction]
        self.validate()

    def _value(self, name: str):
        f = self[name]
        return None if f.errors or f.data in (None, "") else f.data

    def _direction(self) -> Direction | None:
        values = {d.value for d in Direction}
        return Direction(self.direction.data) if self.direction.data in values else None


class OrderFilterForm(_FilterForm):
    verdict = SelectField(_l("Verdict"), choices=[], validate_choice=False)
    trade_mode = SelectField(_l("Trade mode"), choices=[], validate_choice=False)
    counterparty = StringField(_l("Buyer or platform"),
                               validators=[Optional(), Length(max=100), STORABLE])

    def __init__(self, formdata=None, **kwargs):
        from finance_app.trade.states import Verdict
        super().__init__(formdata, **kwargs)
        self.verdict.choices = [("", _("Any verdict")), (Verdict.MISMATCH.value, _("Mismatch")),
                                (Verdict.INCOMPLETE.value, _("Incomplete")),
                                (Verdict.VERIFIED.value, _("Verified"))]
        self.trade_mode.choices = [("", _("Any trade mode"))] + [
            (m.value, m.value) for m in TradeMode]

    def filters(self, *, page: int):
        from finance_app.trade.queries import OrderFilters
        from finance_app.trade.states import Verdict
        verdict = self.verdict.data if self.verdict.data in {v.value for v in Verdict} else None
        mode = self.trade_mode.data if self.trade_mode.data in {m.value for m in TradeMode} \
            else None
        return OrderFilters(verdict=Verdict(verdict) if verdict else None, trade_mode=mode,
                            date_from=self._value("date_from"), date_to=self._value("date_to"),
                            counterparty=self._value("counterparty"),
                            direction=self._direction(), page=page)


class DocumentFilterForm(_FilterForm):
    q = StringField(_l("Number or name"), validators=[Optional(), Length(max=100), STORABLE])

    def filters(self, *, page: int):
        from finance_app.trade.queries import DocumentFilters
        return DocumentFilters(direction=self._direction(), date_from=self._value("date_from"),
                               date_to=self._value("date_to"), q=self._value("q"), page=page)
