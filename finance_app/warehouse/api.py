"""Warehouse receipts over the API: receipts (issue, read, offer, split, deliver, cancel),
pledges (register, release whole or in part, restate the principal), margin calls and
goods prices (JSON or CSV). Quantities, prices and ratios are decimal strings."""
from __future__ import annotations

from decimal import Decimal

from flask import request
from flask.views import MethodView
from flask_login import current_user
from marshmallow import Schema, fields, validate

from finance_app import authz
from finance_app.api.schemas import (
    ID, ApiBlueprint, ExactAmount, Text, UtcDateTime, documents_errors, idempotent, page_body,
)
from finance_app.errors import ValidationFailed
from finance_app.money import Money
from finance_app.warehouse import queries, services
from finance_app.warehouse.states import MarginCallStatus, ReceiptStatus, WarehouseKind

blp = ApiBlueprint("warehouse_api", __name__, url_prefix="/api/v1/warehouse",
                   description="Warehouse receipts, the pledge registry, margin calls and "
                               "goods prices")

DECIMAL_TEXT = validate.Regexp(r"^\d{1,13}(\.\d{1,6})?$",
                               error="A decimal number as a string, such as \"1200.5\".")
CURRENCY = validate.Regexp(r"^[A-Z]{3}$", error="A three-letter ISO 4217 code.")


def _dec(text: str) -> Decimal:
    return Decimal(text)


class DecimalText(fields.String):
    """A decimal as a string in and out ("1200.5"), never a JSON number."""

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else f"{Decimal(value).normalize():f}"


class ReceiptSchema(Schema):
    id = fields.Integer(required=True)
    number = fields.String(required=True)
    warehouse_id = fields.Integer(required=True)
    operator_org_id = fields.Integer(required=True)
    depositor_org_id = fields.Integer(required=True)
    goods_description = fields.String(required=True)
    hs_code = fields.String(required=True)
    quantity = DecimalText(required=True)
    unit = fields.String(required=True)
    grade = fields.String(allow_none=True)
    storage_location = fields.String(allow_none=True)
    unit_price = DecimalText(required=True)
    currency = fields.String(required=True)
    value = ExactAmount(required=True)
    valuation_date = fields.Date(required=True)
    valuation_source = fields.String(required=True)
    insured = fields.Boolean(required=True)
    issue_date = fields.Date(required=True)
    expiry_date = fields.Date(required=True)
    status = fields.Enum(ReceiptStatus, by_value=True, required=True)
    parent_id = fields.Integer(allow_none=True)
    pledged_to_org_id = fields.Integer(allow_none=True)
    created_at = UtcDateTime(required=True)


def _receipt(r) -> dict:
    data = {c.key: getattr(r, c.key) for c in r.__table__.columns}
    data["value"] = r.value.amount
    encumbrance = services.active_pledge(r)
    data["pledged_to_org_id"] = encumbrance.holder_org_id if encumbrance else None
    return data


class ReceiptPageSchema(Schema):
    page = fields.Integer(required=True)
    per_page = fields.Integer(required=True)
    total = fields.Integer(required=True)
    items = fields.List(fields.Nested(ReceiptSchema), required=True)


class ReceiptQuerySchema(Schema):
    status = fields.Enum(ReceiptStatus, by_value=True)
    q = Text(validate=validate.Length(max=60))
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=100_000))


class IssueSchema(Schema):
    warehouse_id = fields.Integer(required=True, validate=validate.Range(min=1, max=2**31 - 1))
    depositor_org_id = fields.Integer(required=True,
                                      validate=validate.Range(min=1, max=2**31 - 1))
    goods_description = Text(required=True, validate=validate.Length(min=1, max=500))
    hs_code = fields.String(required=True, validate=validate.Length(max=12))
    quantity = fields.String(required=True, validate=DECIMAL_TEXT)
    unit = Text(required=True, validate=validate.Length(min=1, max=20))
    unit_price = fields.String(required=True, validate=DECIMAL_TEXT)
    currency = fields.String(required=True, validate=CURRENCY)
    grade = Text(validate=validate.Length(max=200), allow_none=True)
    storage_location = Text(validate=validate.Length(max=100), allow_none=True)
    valuation_source = Text(validate=validate.Length(max=200), allow_none=True)
    insured = fields.Boolean(load_default=False)
    expiry_date = fields.Date(required=True)


class OfferSchema(Schema):
    bank_org_ids = fields.List(fields.Integer(validate=validate.Range(min=1, max=2**31 - 1)),
                               required=True, validate=validate.Length(min=1, max=20))


class PledgeSchema(Schema):
    principal = fields.String(required=True, validate=DECIMAL_TEXT)
    currency = fields.String(required=True, validate=CURRENCY)
    max_ltv = fields.String(required=True, validate=DECIMAL_TEXT,
                            metadata={"description": "A fraction: 0.70 for 70 %"})
    margin_call_ltv = fields.String(required=True, validate=DECIMAL_TEXT)
    liquidation_ltv = fields.String(required=True, validate=DECIMAL_TEXT)
    cure_days = fields.Integer(required=True, validate=validate.Range(min=-1000, max=1000))
    financing_ref = Text(validate=validate.Length(max=100), allow_none=True)
    registry_ref = Text(validate=validate.Length(max=40), allow_none=True)


class PledgeOutSchema(Schema):
    id = fields.Integer(required=True)
    receipt_id = fields.Integer(required=True, attribute="asset_id")
    holder_org_id = fields.Integer(required=True)
    principal = ExactAmount(required=True)
    currency = fields.String(required=True, attribute="secured_currency")
    max_ltv = DecimalText(required=True)
    financing_ref = fields.String(allow_none=True)
    registry_ref = fields.String(allow_none=True)
    since = UtcDateTime(required=True)


def _pledge(e) -> dict:
    data = {c.key: getattr(e, c.key) for c in e.__table__.columns}
    data["principal"] = e.secured.amount if e.secured else None
    return data


class QuantitySchema(Schema):
    quantity = fields.String(required=True, validate=DECIMAL_TEXT)
    reason = Text(validate=validate.Length(max=500), allow_none=True)


class ReasonSchema(Schema):
    reason = Text(validate=validate.Length(max=500), allow_none=True)


class RequiredReasonSchema(Schema):
    reason = Text(required=True, validate=validate.Length(min=1, max=500))


class PrincipalSchema(Schema):
    principal = fields.String(required=True, validate=DECIMAL_TEXT)
    currency = fields.String(required=True, validate=CURRENCY)


class SplitResultSchema(Schema):
    first = fields.Nested(ReceiptSchema, required=True)
    second = fields.Nested(ReceiptSchema, required=True)


class MarginCallSchema(Schema):
    id = fields.Integer(required=True)
    receipt_id = fields.Integer(required=True)
    bank_org_id = fields.Integer(required=True)
    depositor_org_id = fields.Integer(required=True)
    status = fields.Enum(MarginCallStatus, by_value=True, required=True)
    ltv_at_open = DecimalText(required=True)
    last_ltv = DecimalText(required=True)
    threshold = DecimalText(required=True)
    target_ltv = DecimalText(required=True)
    cure_deadline = fields.Date(required=True)
    opened_at = UtcDateTime(required=True)
    escalation_reason = fields.String(allow_none=True)


class MarginCallListSchema(Schema):
    items = fields.List(fields.Nested(MarginCallSchema), required=True)


class PriceInSchema(Schema):
    hs_code = fields.String(required=True, validate=validate.Length(max=12))
    unit = Text(required=True, validate=validate.Length(min=1, max=20))
    product = Text(validate=validate.Length(max=100), allow_none=True)
    unit_price = fields.String(required=True, validate=DECIMAL_TEXT)
    currency = fields.String(required=True, validate=CURRENCY)
    valid_from = fields.Date(required=True)
    valid_to = fields.Date(allow_none=True)
    source = Text(validate=validate.Length(max=200), allow_none=True)


class PricesInSchema(Schema):
    prices = fields.List(fields.Nested(PriceInSchema), required=True,
                         validate=validate.Length(min=1, max=1000))


class PriceSchema(Schema):
    id = fields.Integer(required=True)
    hs_code = fields.String(required=True)
    unit = fields.String(required=True)
    product = fields.String(required=True)
    unit_price = DecimalText(required=True)
    currency = fields.String(required=True)
    valid_from = fields.Date(required=True)
    valid_to = fields.Date(allow_none=True)
    source = fields.String(required=True)


class PriceListSchema(Schema):
    items = fields.List(fields.Nested(PriceSchema), required=True)


class WarehouseSchema(Schema):
    id = fields.Integer(required=True)
    operator_org_id = fields.Integer(required=True)
    name = fields.String(required=True)
    kind = fields.Enum(WarehouseKind, by_value=True, required=True)
    address = fields.String(required=True)
    country = fields.String(required=True)


class WarehouseInSchema(Schema):
    name = Text(required=True, validate=validate.Length(min=1, max=200))
    kind = fields.Enum(WarehouseKind, by_value=True, required=True)
    address = Text(required=True, validate=validate.Length(min=1, max=300))
    country = fields.String(required=True, validate=validate.Regexp(r"^[A-Z]{2}$"))


class WarehouseListSchema(Schema):
    items = fields.List(fields.Nested(WarehouseSchema), required=True)


def _ratio(text: str, field: str) -> Decimal:
    value = Decimal(text)
    if value != value.quantize(Decimal("0.0001")):
        raise ValidationFailed("At most 4 decimals.", field=field)
    return value


# --------------------------------------------------------------------------- endpoints

@blp.route("/warehouses")
class Warehouses(MethodView):
    @blp.response(200, WarehouseListSchema)
    @documents_errors(blp)
    @authz.allow(authz.WAREHOUSE)
    def get(self):
        """Your warehouses (the platform operator: all)."""
        return {"items": queries.warehouses(current_user)}

    @blp.arguments(WarehouseInSchema)
    @blp.response(201, WarehouseSchema)
    @documents_errors(blp, 400, 409, 413, 415, 422)
    @idempotent(blp)
    @authz.allow(authz.WAREHOUSE_STAFF)
    def post(self, data):
        """Register a warehouse (a warehouse operator)."""
        return services.register_warehouse(actor=current_user, **data)


@blp.route("/receipts")
class Receipts(MethodView):
    @blp.arguments(ReceiptQuerySchema, location="query")
    @blp.response(200, ReceiptPageSchema)
    @documents_errors(blp, 422)
    @authz.allow(authz.WAREHOUSE)
    def get(self, args):
        """Receipts you issued, deposited, were offered or hold a pledge of (the platform
        operator: all), newest first."""
        page = queries.receipts(current_user, queries.ReceiptFilters(
            status=args.get("status"), q=args.get("q")), page=args["page"])
        return page_body(page, [_receipt(r) for r in page.items])

    @blp.arguments(IssueSchema)
    @blp.response(201, ReceiptSchema)
    @documents_errors(blp, 400, 409, 413, 415, 422)
    @idempotent(blp)
    @authz.allow(authz.WAREHOUSE_STAFF)
    def post(self, data):
        """Issue a receipt to a depositor SME for goods held in one of your warehouses."""
        receipt = services.issue_receipt(
            actor=current_user, warehouse_id=data["warehouse_id"],
            depositor_org_id=data["depositor_org_id"], expiry_date=data["expiry_date"],
            goods=services.Goods(
                description=data["goods_description"], hs_code=data["hs_code"],
                quantity=_dec(data["quantity"]), unit=data["unit"],
                unit_price=_dec(data["unit_price"]), currency=data["currency"],
                grade=data.get("grade"), storage_location=data.get("storage_location"),
                valuation_source=data.get("valuation_source"), insured=data["insured"]))
        return _receipt(receipt)


@blp.route(f"/receipts/<{ID}:receipt_id>")
class ReceiptDetail(MethodView):
    @blp.response(200, ReceiptSchema)
    @documents_errors(blp, 404)
    @authz.allow(authz.WAREHOUSE)
    def get(self, receipt_id: int):
        """One receipt."""
        return _receipt(services.get_receipt(receipt_id, actor=current_user))


@blp.route(f"/receipts/<{ID}:receipt_id>/offers")
class Offers(MethodView):
    @blp.arguments(OfferSchema)
    @blp.response(200, ReceiptSchema)
    @documents_errors(blp, 400, 404, 409, 413, 415, 422)
    @idempotent(blp)
    @authz.allow(authz.WAREHOUSE)
    def post(self, data, receipt_id: int):
        """The depositor offers the receipt to banks as collateral."""
        services.offer_to_banks(receipt_id, data["bank_org_ids"], actor=current_user)
        return _receipt(services.get_receipt(receipt_id, actor=current_user))


@blp.route(f"/receipts/<{ID}:receipt_id>/pledge")
class Pledge(MethodView):
    @blp.arguments(PledgeSchema)
    @blp.response(201, PledgeOutSchema)
    @documents_errors(blp, 400, 404, 409, 413, 415, 422)
    @idempotent(blp)
    @authz.allow(authz.WAREHOUSE)
    def post(self, data, receipt_id: int):
        """A bank registers its pledge of a receipt offered to it. 409 ``already_pledged``
        when any bank already holds one."""
        return _pledge(services.pledge_receipt(
            receipt_id, actor=current_user,
            principal=Money.of(_dec(data["principal"]), data["currency"], field="principal"),
            max_ltv=_ratio(data["max_ltv"], "max_ltv"),
            margin_call_ltv=_ratio(data["margin_call_ltv"], "margin_call_ltv"),
            liquidation_ltv=_ratio(data["liquidation_ltv"], "liquidation_ltv"),
            cure_days=data["cure_days"], financing_ref=data.get("financing_ref"),
            registry_ref=data.get("registry_ref")))


@blp.route(f"/receipts/<{ID}:receipt_id>/release")
class Release(MethodView):
    @blp.arguments(ReasonSchema)
    @blp.response(200, ReceiptSchema)
    @documents_errors(blp, 400, 404, 409, 413, 415, 422)
    @idempotent(blp)
    @authz.allow(authz.WAREHOUSE)
    def post(self, data, receipt_id: int):
        """The pledgee releases its whole pledge (its approvers only)."""
        return _receipt(services.release_pledge(receipt_id, actor=current_user,
                                                reason=data.get("reason")))


@blp.route(f"/receipts/<{ID}:receipt_id>/partial-release")
class PartialRelease(MethodView):
    @blp.arguments(QuantitySchema)
    @blp.response(200, SplitResultSchema)
    @documents_errors(blp, 400, 404, 409, 413, 415, 422)
    @idempotent(blp)
    @authz.allow(authz.WAREHOUSE)
    def post(self, data, receipt_id: int):
        """Release part of the goods: ``first`` is the released part, ``second`` stays
        pledged. 422 ``ltv_limit_exceeded`` with the figures when what stays would exceed
        the limit; 409 ``margin_call_open`` while a margin call is open."""
        first, second = services.release_part(receipt_id, _dec(data["quantity"]),
                                              actor=current_user, reason=data.get("reason"))
        return {"first": _receipt(first), "second": _receipt(second)}


@blp.route(f"/receipts/<{ID}:receipt_id>/principal")
class Principal(MethodView):
    @blp.arguments(PrincipalSchema)
    @blp.response(200, PledgeOutSchema)
    @documents_errors(blp, 400, 404, 409, 413, 415, 422)
    @idempotent(blp)
    @authz.allow(authz.WAREHOUSE)
    def post(self, data, receipt_id: int):
        """The pledgee states the principal now outstanding (the LTV is looked at again)."""
        return _pledge(services.restate_principal(
            receipt_id, Money.of(_dec(data["principal"]), data["currency"], field="principal"),
            actor=current_user))


@blp.route(f"/receipts/<{ID}:receipt_id>/split")
class Split(MethodView):
    @blp.arguments(QuantitySchema)
    @blp.response(200, SplitResultSchema)
    @documents_errors(blp, 400, 404, 409, 413, 415, 422)
    @idempotent(blp)
    @authz.allow(authz.WAREHOUSE_STAFF)
    def post(self, data, receipt_id: int):
        """The operator splits a free receipt in two."""
        first, second = services.split_receipt(receipt_id, _dec(data["quantity"]),
                                               actor=current_user)
        return {"first": _receipt(first), "second": _receipt(second)}


@blp.route(f"/receipts/<{ID}:receipt_id>/deliver")
class Deliver(MethodView):
    @blp.arguments(ReasonSchema)
    @blp.response(200, ReceiptSchema)
    @documents_errors(blp, 400, 404, 409, 413, 415, 422)
    @idempotent(blp)
    @authz.allow(authz.WAREHOUSE_STAFF)
    def post(self, data, receipt_id: int):
        """The goods leave the warehouse (refused while pledged)."""
        return _receipt(services.deliver(receipt_id, actor=current_user,
                                         note=data.get("reason")))


@blp.route(f"/receipts/<{ID}:receipt_id>/cancel")
class Cancel(MethodView):
    @blp.arguments(RequiredReasonSchema)
    @blp.response(200, ReceiptSchema)
    @documents_errors(blp, 400, 404, 409, 413, 415, 422)
    @idempotent(blp)
    @authz.allow(authz.WAREHOUSE_STAFF)
    def post(self, data, receipt_id: int):
        """The operator withdraws a receipt issued in error (refused while pledged)."""
        return _receipt(services.cancel(receipt_id, actor=current_user,
                                        reason=data["reason"]))


@blp.route("/margin-calls")
class MarginCalls(MethodView):
    @blp.response(200, MarginCallListSchema)
    @documents_errors(blp)
    @authz.allow(authz.WAREHOUSE)
    def get(self):
        """Open and escalated margin calls on your pledges or receipts."""
        return {"items": queries.margin_calls(current_user)}


@blp.route("/prices")
class Prices(MethodView):
    @blp.arguments(PricesInSchema)
    @blp.response(201, PriceListSchema)
    @documents_errors(blp, 400, 409, 413, 415, 422)
    @idempotent(blp)
    @authz.allow(authz.OPERATOR_DECIDER)
    def post(self, data):
        """Enter goods prices (all or none); receipts of those goods are revalued."""
        prices = [services.PriceInput(
            hs_code=p["hs_code"], unit=p["unit"], product=p.get("product"),
            unit_price=_dec(p["unit_price"]), currency=p["currency"],
            valid_from=p["valid_from"], valid_to=p.get("valid_to"), source=p.get("source"))
            for p in data["prices"]]
        return {"items": services.import_prices(prices, actor=current_user)}


@blp.route("/prices/csv")
class PricesCsv(MethodView):
    @blp.doc(requestBody={"required": True, "description": "CSV with a header row: "
                          + ", ".join(services.PRICE_COLUMNS),
                          "content": {"text/csv": {"schema": {"type": "string"}}}})
    @blp.response(201, PriceListSchema)
    @documents_errors(blp, 400, 409, 413, 415, 422)
    @idempotent(blp)
    @authz.allow(authz.OPERATOR_DECIDER)
    def post(self):
        """Import prices from CSV (``Content-Type: text/csv``), all rows or none."""
        if request.mimetype != "text/csv":
            from finance_app.errors import DomainError
            error = DomainError("Send the prices as the body, with 'Content-Type: text/csv'.",
                                field="body", code="unsupported_media_type")
            error.status_code = 415
            raise error
        return {"items": services.import_prices(
            services.parse_price_csv(request.get_data(cache=True)), actor=current_user)}
