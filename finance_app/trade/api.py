"""Trade evidence over the API: orders with their verdicts, the documents behind them,
filing documents as JSON or as a CEB XML message, verdicts and receivables.

Amounts are strings ("110.00"), never JSON numbers.  Lists come 50 to a page, in an
envelope that says how many there are.  Another organisation's object answers 404, as a
missing id does.
"""
from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from flask import jsonify, request
from flask.views import MethodView
from flask_babel import gettext
from flask_login import current_user
from marshmallow import Schema, ValidationError, fields, validate

from finance_app import authz
from finance_app.api.schemas import (
    ID, IDEMPOTENCY_KEY, Amount, ApiBlueprint, ErrorSchema, Text, UtcDateTime, documents_errors,
    idempotent,
)
from finance_app.trade import queries, services
from finance_app.trade.models import ReceivableStatus
from finance_app.trade.states import Direction, DocumentKind, DocumentSource, Verdict

blp = ApiBlueprint("trade_api", __name__, url_prefix="/api/v1/trade",
                   description="Trade evidence: orders, payments, waybills, customs "
                               "inventories, three-document matching and receivables")

MAX_PAGE = 100_000
XML_TYPES = ("application/xml", "text/xml")


# --------------------------------------------------------------------------- documents out

class _DocumentSchema(Schema):
    id = fields.Integer(required=True)
    direction = fields.Enum(Direction, by_value=True, required=True)
    version = fields.Integer(required=True)
    source = fields.Enum(DocumentSource, by_value=True, required=True)
    filer_org_id = fields.Integer(required=True)
    batch_id = fields.Integer(allow_none=True)
    guid = fields.String(allow_none=True)
    app_time = UtcDateTime(allow_none=True)
    created_at = UtcDateTime(required=True)
    updated_at = UtcDateTime(required=True)


class PaymentSchema(_DocumentSchema):
    order_no = fields.String(required=True)
    ebp_code = fields.String(allow_none=True)
    ebc_code = fields.String(allow_none=True)
    pay_code = fields.String(required=True)
    pay_name = fields.String(allow_none=True)
    pay_transaction_id = fields.String(required=True)
    payer_id_type = fields.String(allow_none=True)
    payer_id_number = fields.String(allow_none=True)
    payer_name = fields.String(allow_none=True)
    amount = Amount(required=True)
    currency = fields.String(required=True)
    pay_time = UtcDateTime(allow_none=True)


class WaybillSchema(_DocumentSchema):
    logistics_code = fields.String(required=True)
    logistics_name = fields.String(allow_none=True)
    logistics_no = fields.String(required=True)
    order_no = fields.String(allow_none=True)
    consignee = fields.String(allow_none=True)
    consignee_address = fields.String(allow_none=True)
    consignee_telephone = fields.String(allow_none=True)
    freight = Amount(allow_none=True)
    currency = fields.String(allow_none=True)
    weight = Amount(allow_none=True, metadata={"description": "kilograms"})
    pack_no = fields.Integer(allow_none=True)
    goods_info = fields.String(allow_none=True)
    shipped_at = UtcDateTime(allow_none=True)


class InventorySchema(_DocumentSchema):
    cop_no = fields.String(required=True)
    invt_no = fields.String(allow_none=True)
    order_no = fields.String(required=True)
    ebp_code = fields.String(required=True)
    ebc_code = fields.String(allow_none=True)
    agent_code = fields.String(allow_none=True)
    logistics_code = fields.String(allow_none=True)
    logistics_no = fields.String(allow_none=True)
    trade_mode = fields.String(allow_none=True)
    country = fields.String(allow_none=True)
    currency = fields.String(allow_none=True)
    total_value = Amount(allow_none=True)
    declared_at = UtcDateTime(allow_none=True)


REASONS_DOC = {"type": "array", "items": {
    "type": "object", "required": ["code", "message"],
    "properties": {"code": {"type": "string", "example": "payment_amount_mismatch"},
                   "message": {"type": "string"}}}}


class VerdictSchema(Schema):
    status = fields.Enum(Verdict, by_value=True, required=True)
    reasons = fields.Method("_reasons", required=True, metadata=REASONS_DOC)
    evaluated_at = UtcDateTime(required=True)
    payment_id = fields.Integer(allow_none=True)
    waybill_id = fields.Integer(allow_none=True)
    inventory_id = fields.Integer(allow_none=True)

    def _reasons(self, verdict) -> list[dict]:
        if isinstance(verdict, dict):
            return services.verdict_reasons(verdict["verdict"])
        return services.verdict_reasons(verdict)


class OrderLineSchema(Schema):
    gnum = fields.Integer(required=True)
    item_no = fields.String(allow_none=True)
    item_name = fields.String(required=True)
    unit = fields.String(allow_none=True)
    qty = Amount(required=True)
    price = Amount(required=True)
    total_price = Amount(required=True)


class OrderSchema(_DocumentSchema):
    order_no = fields.String(required=True)
    order_type = fields.String(allow_none=True)
    ebp_code = fields.String(required=True)
    ebp_name = fields.String(allow_none=True)
    ebc_code = fields.String(required=True)
    ebc_name = fields.String(allow_none=True)
    trade_mode = fields.String(allow_none=True)
    currency = fields.String(required=True)
    goods_value = Amount(required=True)
    freight = Amount(required=True)
    discount = Amount(required=True)
    tax_total = Amount(required=True)
    actual_paid = Amount(allow_none=True)
    payable = Amount(required=True, metadata={
        "description": "goods value + freight + tax - discount"})
    buyer_name = fields.String(allow_none=True)
    buyer_country = fields.String(allow_none=True)
    consignee = fields.String(allow_none=True)
    payment_term_days = fields.Integer(allow_none=True)
    order_date = fields.Date(allow_none=True)
    verdict = fields.Nested(VerdictSchema, allow_none=True, required=True)


class OrderDetailSchema(OrderSchema):
    buyer_reg_no = fields.String(allow_none=True)
    buyer_id_type = fields.String(allow_none=True)
    buyer_id_number = fields.String(allow_none=True)
    pay_code = fields.String(allow_none=True)
    pay_transaction_id = fields.String(allow_none=True)
    consignee_address = fields.String(allow_none=True)
    consignee_telephone = fields.String(allow_none=True)
    lines = fields.List(fields.Nested(OrderLineSchema), required=True)
    payment_ids = fields.List(fields.Integer(), required=True, metadata={
        "description": "Every payment matched to the order"})
    waybill_id = fields.Integer(allow_none=True, required=True)
    inventory_id = fields.Integer(allow_none=True, required=True)
    payments = fields.List(fields.Nested(PaymentSchema), required=True)
    waybill = fields.Nested(WaybillSchema, allow_none=True, required=True)
    inventory = fields.Nested(InventorySchema, allow_none=True, required=True)


def _page_schema(name: str, item: type[Schema]) -> type[Schema]:
    return type(name, (Schema,), {
        "page": fields.Integer(required=True),
        "per_page": fields.Integer(required=True),
        "total": fields.Integer(required=True),
        "items": fields.List(fields.Nested(item), required=True),
    })


OrderPageSchema = _page_schema("OrderPageSchema", OrderSchema)
PaymentPageSchema = _page_schema("PaymentPageSchema", PaymentSchema)
WaybillPageSchema = _page_schema("WaybillPageSchema", WaybillSchema)
InventoryPageSchema = _page_schema("InventoryPageSchema", InventorySchema)


class VerdictItemSchema(VerdictSchema):
    order_id = fields.Integer(required=True)
    order_no = fields.String(required=True)
    ebp_code = fields.String(required=True)


VerdictPageSchema = _page_schema("VerdictPageSchema", VerdictItemSchema)


class ReceivableSchema(Schema):
    id = fields.Integer(required=True)
    order_id = fields.Integer(required=True)
    order_no = fields.String(required=True)
    seller_org_id = fields.Integer(required=True)
    buyer_name = fields.String(allow_none=True)
    buyer_country = fields.String(allow_none=True)
    amount = Amount(required=True)
    currency = fields.String(required=True)
    outstanding = Amount(required=True, metadata={
        "description": "The amount less the payments matched to the order"})
    due_date = fields.Date(required=True)
    status = fields.Enum(ReceivableStatus, by_value=True, required=True)
    created_at = UtcDateTime(required=True)


ReceivablePageSchema = _page_schema("ReceivablePageSchema", ReceivableSchema)


# --------------------------------------------------------------------------- filing

class DocumentResultSchema(Schema):
    index = fields.Integer(required=True, metadata={
        "description": "The document's place: its index in `documents` (from 0) for JSON, "
                       "its position in the message (from 1) for CEB XML"})
    kind = fields.String(required=True)
    key = fields.String(required=True, metadata={
        "description": "What identifies the document, e.g. platform / order number"})
    accepted = fields.Boolean(required=True)
    reason = fields.String(allow_none=True, metadata={
        "description": "Why it was rejected, naming the element at fault"})
    document_id = fields.Integer(allow_none=True)
    version = fields.Integer(allow_none=True)


class BatchResultSchema(Schema):
    batch_id = fields.Integer(required=True)
    source = fields.Enum(DocumentSource, by_value=True, required=True)
    message_type = fields.String(allow_none=True, metadata={"example": "CEB303"})
    accepted = fields.Integer(required=True)
    rejected = fields.Integer(required=True)
    warnings = fields.List(fields.String(), required=True)
    results = fields.List(fields.Nested(DocumentResultSchema), required=True)


class NothingAcceptedSchema(ErrorSchema):
    """A 422: the body was invalid, or no document in it was accepted (then with results)."""
    results = fields.List(fields.Nested(DocumentResultSchema))
    warnings = fields.List(fields.String())


_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")


def _storable(value: Any, path: str = "") -> None:
    """Every key and string in a document must be text the database can store."""
    if isinstance(value, str):
        if _UNSTORABLE.search(value):
            raise ValidationError(f"{path or 'value'}: remove NUL and unpaired surrogate "
                                  "characters.")
    elif isinstance(value, dict):
        for key, item in value.items():
            _storable(str(key), path)
            _storable(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for n, item in enumerate(value):
            _storable(item, f"{path}.{n}")


DOCUMENT_DESCRIPTION = (
    "One document's elements, named as the CSV columns are: for an order `order_no`, "
    "`ebp_code`, `ebc_code`, `currency`, `goods_value`, `freight`, ..., with `lines` "
    "(`gnum`, `item_name`, `qty`, `price`, `total_price`); for a payment `order_no`, "
    "`pay_code`, `pay_transaction_id`, `amount`, `currency`, ...; for a waybill "
    "`logistics_code`, `logistics_no`, ...; for an inventory `cop_no`, `order_no`, "
    "`ebp_code`, `logistics_code`, `logistics_no`, .... Amounts are strings (\"110.00\"); "
    "times are \"YYYY-MM-DD HH:MM:SS\"; `app_type` is \"1\" (new) or \"2\" (a correction "
    "of a filed document).")


class DocumentsBodySchema(Schema):
    kind = fields.Enum(DocumentKind, by_value=True, required=True)
    direction = fields.Enum(Direction, by_value=True, load_default=None)
    documents = fields.List(
        fields.Dict(keys=fields.String(), validate=_storable,
                    metadata={"description": DOCUMENT_DESCRIPTION,
                              "example": {"order_no": "ORD-1", "ebp_code": "PLATFORM01",
                                          "ebc_code": "4404930001", "currency": "USD",
                                          "goods_value": "100.00", "freight": "10.00",
                                          "lines": [{"gnum": 1, "item_name": "LED lamp",
                                                     "qty": "4", "price": "25.00",
                                                     "total_price": "100.00"}]}}),
        required=True, validate=validate.Length(min=1, max=10_000))


FIELD_IN_REASON = re.compile(r"^([a-z][A-Za-z_]*)(?=:| \()")


def _error_field(result: dict, source: DocumentSource) -> str:
    """Where in the request the first rejection points: ``documents.2.currency``."""
    reason = result.get("reason") or ""
    match = FIELD_IN_REASON.match(reason)
    if source is not DocumentSource.JSON:
        return match.group(1) if match else "body"
    place = f"documents.{result.get('index', 0)}"
    if reason.startswith("line"):
        return f"{place}.lines"
    return f"{place}.{match.group(1)}" if match else place


def _batch_response(batch, source: DocumentSource):
    """201 with each document's outcome, or 422 (nothing stored) if none was accepted."""
    results = queries.batch_results(batch)
    for result in results:
        result.pop("position", None)
    warnings = queries.batch_warnings(batch)
    if batch.accepted:
        return {"batch_id": batch.id, "source": batch.source,
                "message_type": batch.message_type, "accepted": batch.accepted,
                "rejected": batch.rejected, "warnings": warnings, "results": results}
    first = next((r for r in results if not r["accepted"]), None)
    message = (first or {}).get("reason") or gettext("No documents to file.")
    response = jsonify({"error": {"code": "nothing_accepted",
                                  "message": message,
                                  "field": _error_field(first or {}, source)},
                        "results": results, "warnings": warnings})
    response.status_code = 422  # the request's transaction is rolled back: nothing stored
    return response


def _filing_errors(func):
    func = blp.alt_response(422, schema=NothingAcceptedSchema, description=(
        "The body is invalid (`field` names it), or no document was accepted: then "
        "`results` gives each document's reason and nothing is stored."))(func)
    return documents_errors(blp, 400, 409, 413, 415)(func)


# --------------------------------------------------------------------------- queries in

class _PageQuerySchema(Schema):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=MAX_PAGE))


class _PeriodQuerySchema(_PageQuerySchema):
    direction = fields.Enum(Direction, by_value=True)
    date_from = fields.Date(metadata={"description": "Filed (appTime) on or after this day"})
    date_to = fields.Date(metadata={"description": "Filed (appTime) on or before this day"})


class OrderQuerySchema(_PeriodQuerySchema):
    verdict = fields.Enum(Verdict, by_value=True)
    trade_mode = Text(validate=validate.Length(max=4), metadata={"example": "9610"})
    counterparty = Text(validate=validate.Length(max=100), metadata={
        "description": "Part of the buyer's name or the platform's code or name"})


class DocumentQuerySchema(_PeriodQuerySchema):
    q = Text(validate=validate.Length(max=100), metadata={
        "description": "Part of a document or order number, or a name"})


class VerdictQuerySchema(_PageQuerySchema):
    status = fields.Enum(Verdict, by_value=True)


class ReceivableQuerySchema(_PageQuerySchema):
    status = fields.Enum(ReceivableStatus, by_value=True)


def _page(page: queries.Page) -> dict:
    return {"page": page.page, "per_page": page.per_page, "total": page.total,
            "items": page.items}


# --------------------------------------------------------------------------- endpoints

@blp.route("/orders")
class Orders(MethodView):
    @blp.arguments(OrderQuerySchema, location="query")
    @blp.response(200, OrderPageSchema)
    @documents_errors(blp, 422)
    @authz.allow(authz.TRADE_ORDERS)
    def get(self, args):
        """Your orders with their verdicts (the platform operator: every order, mismatches
        first), 50 a page."""
        filters = queries.OrderFilters(
            verdict=args.get("verdict"), trade_mode=args.get("trade_mode"),
            date_from=args.get("date_from"), date_to=args.get("date_to"),
            counterparty=args.get("counterparty"), direction=args.get("direction"),
            page=args["page"])
        return _page(queries.orders(current_user, filters))


@blp.route(f"/orders/<{ID}:order_id>")
class OrderDetail(MethodView):
    @blp.response(200, OrderDetailSchema)
    @documents_errors(blp, 404)
    @authz.allow(authz.TRADE_ORDERS)
    def get(self, order_id: int):
        """One order: its lines, verdict and reasons, and the payments, customs inventory
        and waybill matched to it."""
        order = queries.get_order(order_id, actor=current_user)
        evidence = queries.evidence(order)
        return {**{c.key: getattr(order, c.key) for c in order.__table__.columns},
                "payable": order.payable, "lines": order.lines, "verdict": order.verdict,
                "payment_ids": [p.id for p in evidence.payments],
                "waybill_id": evidence.waybill.id if evidence.waybill else None,
                "inventory_id": evidence.inventory.id if evidence.inventory else None,
                "payments": evidence.payments, "waybill": evidence.waybill,
                "inventory": evidence.inventory}


def _document_routes(kind: DocumentKind, path: str, schema: type[Schema],
                     page_schema: type[Schema], noun: str, list_name: str) -> None:
    detail_name = f"{noun.title()}Detail"

    class DocumentList(MethodView):
        @blp.arguments(DocumentQuerySchema, location="query")
        @blp.response(200, page_schema)
        @documents_errors(blp, 422)
        @authz.allow(authz.TRADE)
        def get(self, args):
            filters = queries.DocumentFilters(
                direction=args.get("direction"), date_from=args.get("date_from"),
                date_to=args.get("date_to"), q=args.get("q"), page=args["page"])
            return _page(queries.documents(current_user, kind, filters))

    class DocumentDetail(MethodView):
        @blp.response(200, schema)
        @documents_errors(blp, 404)
        @authz.allow(authz.TRADE)
        def get(self, document_id: int):
            return queries.get_document(kind, document_id, actor=current_user)

    DocumentList.get.__doc__ = (
        f"The {noun}s your organisation filed (an SME: also those naming it as the "
        f"e-commerce company; the platform operator: all), newest first, 50 a page.")
    DocumentDetail.get.__doc__ = f"One {noun} you may see."
    DocumentList.__name__ = DocumentList.__qualname__ = list_name
    DocumentDetail.__name__ = DocumentDetail.__qualname__ = detail_name
    blp.route(f"/{path}", endpoint=list_name)(DocumentList)
    blp.route(f"/{path}/<{ID}:document_id>", endpoint=detail_name)(DocumentDetail)


_document_routes(DocumentKind.PAYMENT, "payments", PaymentSchema, PaymentPageSchema, "payment",
                 "Payments")
_document_routes(DocumentKind.WAYBILL, "waybills", WaybillSchema, WaybillPageSchema, "waybill",
                 "Waybills")
_document_routes(DocumentKind.INVENTORY, "inventories", InventorySchema, InventoryPageSchema,
                 "inventory", "Inventories")


@blp.route("/documents")
class Documents(MethodView):
    @blp.arguments(DocumentsBodySchema)
    @blp.response(201, BatchResultSchema)
    @_filing_errors
    @idempotent(blp)
    @authz.allow(authz.TRADE_FILER)
    def post(self, data):
        """File documents of one kind; each is accepted or rejected on its own.

        201 with each document's outcome when at least one was accepted; 422 with the same
        outcomes (and nothing stored) when none was.
        """
        from finance_app.trade.formats import documents_from_json
        payload = {"kind": data["kind"].value, "documents": data["documents"]}
        if data.get("direction") is not None:
            payload["direction"] = data["direction"].value
        documents = documents_from_json(payload)  # FormatError: 422 naming the field
        batch = services.ingest(documents, actor=current_user, source=DocumentSource.JSON,
                                direction=data.get("direction"))
        return _batch_response(batch, DocumentSource.JSON)


@blp.route("/ceb")
class Ceb(MethodView):
    @blp.doc(parameters=[
        {"in": "query", "name": "filename", "required": False,
         "schema": {"type": "string", "maxLength": 255},
         "description": "The file's name, kept with the upload"},
        {"in": "header", "name": IDEMPOTENCY_KEY, "required": False,
         "schema": {"type": "string", "minLength": 1, "maxLength": 255},
         "description": "Send the same key to retry safely: the first response is replayed "
                        "(with 'Idempotent-Replayed: true') and the request never acts twice."},
    ], requestBody={
        "required": True,
        "description": "One CEB message (CEB303, CEB403, CEB505, CEB603, CEB311, CEB411, "
                       "CEB511, CEB621) as UTF-8 XML, at most 20 MB.",
        "content": {"application/xml": {"schema": {"type": "string"}}}})
    @blp.response(201, BatchResultSchema)
    @_filing_errors
    @authz.allow(authz.TRADE_FILER)
    def post(self):
        """File the documents of a China Customs CEB message, sent as the body
        (``Content-Type: application/xml``).

        A file that is not a usable CEB message (not XML, a DOCTYPE or entity declaration,
        another message type, no documents) is refused as a whole with 422; otherwise each
        document is accepted or rejected on its own, as for JSON.
        """
        from finance_app.trade.ceb import CebFileError, parse_message
        from finance_app.errors import DomainError
        if request.mimetype not in XML_TYPES:
            return _error(415, "unsupported_media_type", gettext(
                "Send the CEB message as the body, with 'Content-Type: application/xml'."))
        try:
            message = parse_message(request.get_data(cache=True))
        except CebFileError as exc:
            raise DomainError(str(exc), field="body", code="invalid_ceb") from None
        batch = services.ingest(message.documents, actor=current_user,
                                source=DocumentSource.CEB_XML,
                                direction=Direction(message.direction),
                                filename=_filename(), message_type=message.message_type,
                                warnings=message.warnings)
        return _batch_response(batch, DocumentSource.CEB_XML)


def _filename() -> str | None:
    from finance_app.trade.forms import clean_filename
    name = request.args.get("filename")
    return clean_filename(name) if name else None


def _error(status: int, code: str, message: str, field: str | None = None):
    response = jsonify({"error": {"code": code, "message": message, "field": field}})
    response.status_code = status
    return response


@blp.route("/verdicts")
class Verdicts(MethodView):
    @blp.arguments(VerdictQuerySchema, location="query")
    @blp.response(200, VerdictPageSchema)
    @documents_errors(blp, 422)
    @authz.allow(authz.TRADE_ORDERS)
    def get(self, args):
        """Three-document matching verdicts on your orders (the operator: all), mismatches
        first, 50 a page."""
        page = queries.verdicts(current_user, status=args.get("status"), page=args["page"])
        page.items = [{"order_id": order.id, "order_no": order.order_no,
                       "ebp_code": order.ebp_code, "status": verdict.status,
                       "evaluated_at": verdict.evaluated_at, "payment_id": verdict.payment_id,
                       "waybill_id": verdict.waybill_id, "inventory_id": verdict.inventory_id,
                       "verdict": verdict}
                      for verdict, order in page.items]
        return _page(page)


@blp.route("/receivables")
class Receivables(MethodView):
    @blp.arguments(ReceivableQuerySchema, location="query")
    @blp.response(200, ReceivablePageSchema)
    @documents_errors(blp, 422)
    @authz.allow(authz.TRADE_ORDERS)
    def get(self, args):
        """What overseas buyers owe on verified B2B exports sold on payment terms: your own
        (the operator: all), by due date, 50 a page."""
        page = queries.receivables(current_user, status=args.get("status"), page=args["page"])
        page.items = [{**{c.key: getattr(r, c.key) for c in r.__table__.columns},
                       "order_no": r.order.order_no, "outstanding": queries.outstanding(r)}
                      for r in page.items]
        return _page(page)
