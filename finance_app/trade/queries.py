"""Reading trade evidence, scoped to who asks.

Every list starts from a ``visible_*`` query, so an organisation sees only its own: an SME
the orders it filed and the documents that name it as the e-commerce company (ebcCode), a
logistics company or payment institution the documents it filed, everyone the upload
batches their organisation made; the platform operator sees everything, mismatches first.
Banks and insurers see nothing here yet.  One object by id goes through ``authz.require``,
so another organisation's answers 404 exactly as a missing id does.

Write logic lives in ``services``; nothing here changes the database.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, Callable, Sequence

from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, case, false, func, or_, select
from sqlalchemy.orm import contains_eager

from finance_app import authz
from finance_app.accounts.models import Organisation, User
from finance_app.accounts.states import OrgKind
from finance_app.audit.services import canonical_json
from finance_app.errors import NotFound
from finance_app.extensions import db
from finance_app.paging import PER_PAGE, Page, paginate
from finance_app.accounts.services import organisation_names  # noqa: F401  (views use it)
from finance_app.trade import services
from finance_app.trade.models import (
    DocumentVersion, IngestBatch, Inventory, MatchVerdict, Order, Payment, Receivable,
    ReceivableStatus, Waybill,
)
from finance_app.trade.states import Direction, DocumentKind, DocumentSource, Verdict


DOCUMENT_MODELS = {DocumentKind.PAYMENT: Payment, DocumentKind.WAYBILL: Waybill,
                   DocumentKind.INVENTORY: Inventory}
# The kinds that read trade documents at all (besides the operator, who reads everything).
READER_KINDS = {OrgKind.SME, OrgKind.LOGISTICS, OrgKind.PAYMENT_INSTITUTION}


def _paginate(query: Select, page: int, *, scalars: bool = True) -> Page:
    return paginate(query, page, scalars=scalars, per_page=PER_PAGE)


def _is_operator(user: User) -> bool:
    return user.organisation.kind is OrgKind.PLATFORM_OPERATOR


def _codes(user: User) -> list[str]:
    org = user.organisation
    return [code for code in (org.customs_code, org.credit_code) if code]


def _contains(column, text: str):
    return func.lower(column).contains(text.lower(), autoescape=True)


def _period(column, date_from: date | None, date_to: date | None) -> list:
    conditions = []
    if date_from is not None:
        conditions.append(column >= datetime.combine(date_from, time.min))
    if date_to is not None:
        conditions.append(column <= datetime.combine(date_to, time.max))
    return conditions


# --------------------------------------------------------------------------- scoping

def order_scope(user: User):
    """The SQL condition for the orders ``user`` may see; None: all of them."""
    if _is_operator(user):
        return None
    if user.organisation.kind is not OrgKind.SME:
        return false()
    conditions = [Order.filer_org_id == user.org_id]
    if _codes(user):
        conditions.append(Order.ebc_code.in_(_codes(user)))
    return or_(*conditions)


def visible_orders(user: User) -> Select:
    scope = order_scope(user)
    query = select(Order)
    return query if scope is None else query.where(scope)


def visible_documents(user: User, kind: DocumentKind) -> Select:
    """Payments, waybills or inventories: those the organisation filed and, for an SME,
    those that name it as the e-commerce company.  Mirrors ``trade.read_document``."""
    model = DOCUMENT_MODELS[kind]
    query = select(model)
    if _is_operator(user):
        return query
    if user.organisation.kind not in READER_KINDS:
        return query.where(false())
    conditions = [model.filer_org_id == user.org_id]
    if user.organisation.kind is OrgKind.SME and _codes(user):
        if hasattr(model, "ebc_code"):
            conditions.append(model.ebc_code.in_(_codes(user)))
        elif model is Waybill:
            conditions.append(_named_by_inventory(_codes(user)))
    return query.where(or_(*conditions))


def _named_by_inventory(codes: Sequence[str]):
    """A waybill that an inventory of one of these e-commerce companies names."""
    return select(Inventory.id).where(
        Inventory.ebc_code.in_(codes), Inventory.logistics_no == Waybill.logistics_no,
        or_(Inventory.logistics_code == Waybill.logistics_code,
            Inventory.logistics_code.is_(None))).exists()


def waybill_named_by(waybill: Waybill, codes: Sequence[str]) -> bool:
    if not codes:
        return False
    return bool(db.session.execute(select(Waybill.id).where(
        Waybill.id == waybill.id, _named_by_inventory(codes))).first())


def visible_batches(user: User) -> Select:
    query = select(IngestBatch)
    if _is_operator(user):
        return query
    if user.organisation.kind not in READER_KINDS:
        return query.where(false())
    return query.where(IngestBatch.org_id == user.org_id)


def visible_receivables(user: User) -> Select:
    query = select(Receivable)
    if _is_operator(user):
        return query
    if user.organisation.kind is not OrgKind.SME:
        return query.where(false())
    return query.where(Receivable.seller_org_id == user.org_id)


# --------------------------------------------------------------------------- orders

@dataclass
class OrderFilters:
    verdict: Verdict | None = None
    trade_mode: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    counterparty: str | None = None
    direction: Direction | None = None
    page: int = 1


VERDICT_RANK = case((MatchVerdict.status == Verdict.MISMATCH, 0),
                    (MatchVerdict.status == Verdict.INCOMPLETE, 1),
                    (MatchVerdict.status == Verdict.VERIFIED, 2), else_=3)


def orders(user: User, filters: OrderFilters) -> Page[Order]:
    """The orders ``user`` may see, filtered; the operator's list puts mismatches first."""
    query = (visible_orders(user).outerjoin(MatchVerdict, MatchVerdict.order_id == Order.id)
             .options(contains_eager(Order.verdict)))
    if filters.verdict is not None:
        query = query.where(MatchVerdict.status == filters.verdict)
    if filters.trade_mode:
        query = query.where(Order.trade_mode == filters.trade_mode)
    if filters.direction is not None:
        query = query.where(Order.direction == filters.direction)
    query = query.where(*_period(Order.app_time, filters.date_from, filters.date_to))
    if filters.counterparty:
        text = filters.counterparty
        query = query.where(or_(_contains(Order.buyer_name, text), _contains(Order.ebp_code, text),
                                _contains(Order.ebp_name, text)))
    newest = (Order.app_time.is_(None), Order.app_time.desc(), Order.id.desc())
    query = query.order_by(VERDICT_RANK, *newest) if _is_operator(user) else query.order_by(*newest)
    return _paginate(query, filters.page)


def get_order(order_id: int, *, actor: User) -> Order:
    order = db.session.get(Order, order_id)
    if order is None:
        raise NotFound("order", order_id)
    authz.require(actor, "trade.read_document", order)
    return order


@dataclass
class Evidence:
    """An order and the documents matched to it, as the verdict sees them."""
    order: Order
    verdict: MatchVerdict | None
    payments: list[Payment]
    waybill: Waybill | None
    inventory: Inventory | None

    @property
    def reasons(self) -> list[dict]:
        return services.verdict_reasons(self.verdict) if self.verdict else []

    @property
    def reason_codes(self) -> set[str]:
        return {r["code"] for r in self.reasons}


def evidence(order: Order) -> Evidence:
    """The documents behind an order the reader may see (reading the order entitles one
    to the evidence for it, whoever filed it)."""
    payments, waybill, inventory = services.documents_for(order)
    return Evidence(order, order.verdict, payments, waybill, inventory)


def verdicts(user: User, *, status: Verdict | None = None, page: int = 1) -> Page:
    """(verdict, order) pairs the user may see; mismatches first for the operator."""
    query = (select(MatchVerdict, Order).join(Order, MatchVerdict.order_id == Order.id))
    scope = order_scope(user)
    if scope is not None:
        query = query.where(scope)
    if status is not None:
        query = query.where(MatchVerdict.status == status)
    query = query.order_by(VERDICT_RANK, MatchVerdict.evaluated_at.desc(), MatchVerdict.id.desc())
    return _paginate(query, page, scalars=False)


# --------------------------------------------------------------------------- documents

@dataclass
class DocumentFilters:
    direction: Direction | None = None
    date_from: date | None = None
    date_to: date | None = None
    q: str | None = None
    page: int = 1


SEARCHABLE = {DocumentKind.PAYMENT: ("order_no", "pay_transaction_id", "payer_name"),
              DocumentKind.WAYBILL: ("logistics_no", "order_no", "consignee"),
              DocumentKind.INVENTORY: ("cop_no", "invt_no", "order_no", "logistics_no")}


def documents(user: User, kind: DocumentKind, filters: DocumentFilters) -> Page:
    model = DOCUMENT_MODELS[kind]
    query = visible_documents(user, kind)
    if filters.direction is not None:
        query = query.where(model.direction == filters.direction)
    query = query.where(*_period(model.app_time, filters.date_from, filters.date_to))
    if filters.q:
        query = query.where(or_(*(_contains(getattr(model, name), filters.q)
                                  for name in SEARCHABLE[kind])))
    query = query.order_by(model.id.desc())
    return _paginate(query, filters.page)


def get_document(kind: DocumentKind, document_id: int, *, actor: User) -> Any:
    model = DOCUMENT_MODELS[kind]
    document = db.session.get(model, document_id)
    if document is None:
        raise NotFound(kind.value, document_id)
    authz.require(actor, "trade.read_document", document)
    return document


def orders_for_documents(docs: Sequence[Any], kind: DocumentKind) -> dict[int, Order]:
    """The order each payment or inventory (by platform and order number) or waybill (by
    the verdict that links it) belongs to, for showing them side by side."""
    found: dict[int, Order] = {}
    if not docs:
        return found
    if kind is DocumentKind.WAYBILL:
        rows = db.session.execute(select(MatchVerdict.waybill_id, Order).join(
            Order, MatchVerdict.order_id == Order.id).where(
            MatchVerdict.waybill_id.in_([d.id for d in docs]))).all()
        return {waybill_id: order for waybill_id, order in rows}
    numbers = {d.order_no for d in docs}
    rows = db.session.execute(select(Order).where(Order.order_no.in_(numbers))).scalars()
    by_key = {(o.ebp_code, o.order_no): o for o in rows}
    for d in docs:
        order = by_key.get((d.ebp_code, d.order_no))
        if order is not None:
            found[d.id] = order
    return found


# --------------------------------------------------------------------------- history

HIDDEN_IN_HISTORY = {"id", "version", "batch_id", "source", "created_at", "updated_at", "guid",
                     "filer_org_id", "extra"}


def _plain(obj: Any) -> dict:
    data = {c.key: getattr(obj, c.key) for c in obj.__table__.columns}
    if isinstance(obj, Order):
        data["lines"] = [{c.key: getattr(line, c.key) for c in line.__table__.columns
                          if c.key not in ("id", "order_id")} for line in obj.lines]
    return json.loads(canonical_json(data))


@dataclass
class VersionEntry:
    version: int
    filed_at: datetime | None
    batch_id: int | None               # the upload that filed this version
    replaced_at: datetime | None       # None: the version on record now
    changes: list[tuple[str, Any, Any]] = field(default_factory=list)  # field, before, after


def _when(text: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(text) if text else None
    except ValueError:
        return None


def history(kind: DocumentKind, document: Any) -> list[VersionEntry]:
    """Every version of a document, newest first, each with what it changed."""
    rows = db.session.execute(select(DocumentVersion).where(
        DocumentVersion.kind == kind, DocumentVersion.document_id == document.id)
        .order_by(DocumentVersion.version)).scalars().all()
    states = [(row.version, json.loads(row.data), row.replaced_at) for row in rows]
    states.append((document.version, _plain(document), None))
    entries = []
    for i, (version, data, replaced_at) in enumerate(states):
        before = states[i - 1][1] if i else None
        changes = [] if before is None else [
            (name, before.get(name), data.get(name)) for name in sorted(set(before) | set(data))
            if name not in HIDDEN_IN_HISTORY and before.get(name) != data.get(name)]
        entries.append(VersionEntry(version, _when(data.get("updated_at")), data.get("batch_id"),
                                    replaced_at, changes))
    return list(reversed(entries))


# --------------------------------------------------------------------------- batches

def batches(user: User, *, page: int = 1) -> Page[IngestBatch]:
    return _paginate(visible_batches(user).order_by(IngestBatch.id.desc()), page)


def get_batch(batch_id: int, *, actor: User) -> IngestBatch:
    batch = db.session.get(IngestBatch, batch_id)
    if batch is None:
        raise NotFound("ingestbatch", batch_id)
    authz.require(actor, "trade.read_batch", batch)
    return batch


def batch_results(batch: IngestBatch) -> list[dict]:
    """Each document's outcome, with ``position`` counted from 1 as a person counts."""
    results = json.loads(batch.results or "[]")
    offset = 0 if batch.source is DocumentSource.CEB_XML else 1
    for result in results:
        result["position"] = (result.get("index") or 0) + offset
    return results


def batch_warnings(batch: IngestBatch) -> list[str]:
    return json.loads(batch.warnings or "[]")


# --------------------------------------------------------------------------- receivables

def receivables(user: User, *, status: ReceivableStatus | None = None,
                page: int = 1) -> Page[Receivable]:
    query = visible_receivables(user)
    if status is not None:
        query = query.where(Receivable.status == status)
    return _paginate(query.order_by(Receivable.due_date, Receivable.id), page)


def outstanding(receivable: Receivable) -> Decimal:
    return services.outstanding(receivable)


# --------------------------------------------------------------------------- side by side

@dataclass
class Cell:
    value: Any = None
    fmt: str = "text"                # text | code | money | datetime | date | country | id
    currency: str | None = None
    note: str | None = None          # e.g. a company's name under its code
    applicable: bool = True          # False: this document has no such element
    flagged: bool = False


@dataclass
class Column:
    kind: DocumentKind
    title: Any
    document: Any | None
    missing: bool = False            # the verdict is waiting for this document


@dataclass
class Row:
    key: str
    label: Any
    cells: list[Cell]

    @property
    def flagged(self) -> bool:
        return any(c.flagged for c in self.cells)


O, P, I, W = (DocumentKind.ORDER, DocumentKind.PAYMENT, DocumentKind.INVENTORY,
              DocumentKind.WAYBILL)

Getter = Callable[[Any], Cell]


def _text(attr: str, fmt: str = "text", note: str | None = None) -> Getter:
    return lambda doc: Cell(getattr(doc, attr), fmt, note=getattr(doc, note) if note else None)


def _money(attr: str) -> Getter:
    return lambda doc: Cell(getattr(doc, attr), "money", currency=doc.currency)


def _order_amount(order: Order) -> Cell:
    stated = order.actual_paid if order.actual_paid is not None else order.payable
    return Cell(stated, "money", currency=order.currency)


def _inventory_no(inventory: Inventory) -> Cell:
    return Cell(inventory.invt_no or inventory.cop_no, "code",
                note=inventory.cop_no if inventory.invt_no else None)


# (row key, label, {document kind: how to read the cell}); rows in the order a reader
# follows a trade: who, what it is worth, who paid, where it goes, when.
ROWS: list[tuple[str, Any, dict[DocumentKind, Getter]]] = [
    ("number", _l("Document number"), {
        O: _text("order_no", "code"), P: _text("pay_transaction_id", "code"),
        I: _inventory_no, W: _text("logistics_no", "code")}),
    ("order_no", _l("Order number"), {
        O: _text("order_no", "code"), P: _text("order_no", "code"),
        I: _text("order_no", "code"), W: _text("order_no", "code")}),
    ("platform", _l("E-commerce platform"), {
        O: _text("ebp_code", "code", "ebp_name"), P: _text("ebp_code", "code"),
        I: _text("ebp_code", "code")}),
    ("seller", _l("E-commerce company (seller)"), {
        O: _text("ebc_code", "code", "ebc_name"), P: _text("ebc_code", "code"),
        I: _text("ebc_code", "code")}),
    ("trade_mode", _l("Trade mode"), {O: _text("trade_mode", "code"),
                                      I: _text("trade_mode", "code")}),
    ("currency", _l("Currency"), {O: _text("currency", "code"), P: _text("currency", "code"),
                                  I: _text("currency", "code"), W: _text("currency", "code")}),
    ("goods_value", _l("Goods value"), {O: _money("goods_value"), I: _money("total_value")}),
    ("freight", _l("Freight"), {O: _money("freight"), W: _money("freight")}),
    ("tax_total", _l("Tax"), {O: _money("tax_total")}),
    ("discount", _l("Discount"), {O: _money("discount")}),
    ("amount", _l("Amount payable / paid"), {O: _order_amount, P: _money("amount")}),
    ("buyer", _l("Buyer / payer"), {O: _text("buyer_name"), P: _text("payer_name")}),
    ("buyer_id", _l("Buyer / payer ID number"), {O: _text("buyer_id_number", "id"),
                                                 P: _text("payer_id_number", "id")}),
    ("pay_code", _l("Payment company"), {O: _text("pay_code", "code"),
                                         P: _text("pay_code", "code", "pay_name")}),
    ("pay_txn", _l("Payment transaction"), {O: _text("pay_transaction_id", "code"),
                                            P: _text("pay_transaction_id", "code")}),
    ("consignee", _l("Consignee"), {O: _text("consignee"), W: _text("consignee")}),
    ("consignee_address", _l("Consignee address"), {O: _text("consignee_address"),
                                                    W: _text("consignee_address")}),
    ("country", _l("Destination country"), {O: _text("buyer_country", "country"),
                                            I: _text("country", "country")}),
    ("logistics", _l("Logistics company"), {I: _text("logistics_code", "code"),
                                            W: _text("logistics_code", "code",
                                                     "logistics_name")}),
    ("waybill_no", _l("Waybill number"), {I: _text("logistics_no", "code"),
                                          W: _text("logistics_no", "code")}),
    ("weight", _l("Weight (kg) / packages"), {
        W: lambda w: Cell(w.weight, "number", note=w.pack_no)}),
    ("order_date", _l("Order date"), {O: _text("order_date", "date")}),
    ("pay_time", _l("Paid at"), {P: _text("pay_time", "datetime")}),
    ("declared_at", _l("Declared to customs at"), {I: _text("declared_at", "datetime")}),
    ("shipped_at", _l("Shipped at"), {W: _text("shipped_at", "datetime")}),
    ("app_time", _l("Filed (application time)"), {
        O: _text("app_time", "datetime"), P: _text("app_time", "datetime"),
        I: _text("app_time", "datetime"), W: _text("app_time", "datetime")}),
    ("version", _l("Version"), {k: _text("version") for k in (O, P, I, W)}),
]

# Which cells each reason of the verdict puts in doubt: (row key, document kind).
REASON_CELLS: dict[str, set[tuple[str, DocumentKind]]] = {
    "order_total_inconsistent": {("amount", O), ("goods_value", O), ("freight", O),
                                 ("tax_total", O), ("discount", O)},
    "buyer_id_invalid": {("buyer_id", O)},
    "payment_currency_mismatch": {("currency", O), ("currency", P)},
    "payment_amount_mismatch": {("amount", O), ("amount", P)},
    "payment_reference_mismatch": {("pay_txn", O), ("pay_txn", P)},
    "payment_company_mismatch": {("pay_code", O), ("pay_code", P)},
    "payer_not_buyer": {("buyer", O), ("buyer", P), ("buyer_id", O), ("buyer_id", P)},
    "payer_id_invalid": {("buyer_id", P)},
    "inventory_without_waybill": {("waybill_no", I)},
    "consignee_mismatch": {("consignee", O), ("consignee", W)},
    "payment_after_declaration": {("pay_time", P), ("declared_at", I)},
}
# Reasons that compare the order with another document, cell by cell.
COMPARED = {"payment_currency_mismatch", "payment_reference_mismatch", "payment_company_mismatch",
            "payer_not_buyer", "consignee_mismatch"}
MISSING = {"payment_missing": P, "inventory_missing": I, "waybill_missing": W}


def _same(a: Cell, b: Cell) -> bool:
    def norm(value: Any) -> Any:
        return "".join(value.split()).casefold() if isinstance(value, str) else value
    return a.value is not None and norm(a.value) == norm(b.value)


@dataclass
class SideBySide:
    columns: list[Column]
    rows: list[Row]
    flagged_lines: set[int]          # gnum of order lines whose total is not price x qty


def side_by_side(ev: Evidence) -> SideBySide:
    """The order and its documents in one table, the cells the verdict doubts flagged."""
    codes = ev.reason_codes
    missing = {MISSING[c] for c in codes if c in MISSING}
    columns = [Column(O, _l("Order"), ev.order)]
    if ev.payments:
        for n, payment in enumerate(ev.payments, start=1):
            title = _l("Payment %(n)s", n=n) if len(ev.payments) > 1 else _l("Payment")
            columns.append(Column(P, title, payment))
    else:
        columns.append(Column(P, _l("Payment"), None, P in missing))
    columns.append(Column(I, _l("Customs inventory"), ev.inventory, I in missing))
    columns.append(Column(W, _l("Waybill"), ev.waybill, W in missing))

    doubted = set().union(*(REASON_CELLS.get(c, set()) for c in codes)) if codes else set()
    compared = {cell for c in codes if c in COMPARED for cell in REASON_CELLS[c]}
    rows = []
    for key, label, getters in ROWS:
        cells = []
        for column in columns:
            getter = getters.get(column.kind)
            if getter is None:
                cells.append(Cell(applicable=False))
            elif column.document is None:
                cells.append(Cell(None))
            else:
                cells.append(getter(column.document))
        order_cell = cells[0]
        for cell, column in zip(cells[1:], columns[1:]):
            if (key, column.kind) not in doubted or column.document is None:
                continue
            # A comparison flags only the documents that disagree with the order (the payer's
            # ID when only the name differs is not in doubt); several payments likewise.
            if ((key, column.kind) in compared or (column.kind is P and len(ev.payments) > 1
                                                    and key != "pay_time")) \
                    and _same(order_cell, cell):
                continue
            cell.flagged = True
        if (key, O) in doubted:
            order_cell.flagged = ((key, O) not in compared
                                  or any(c.flagged for c in cells[1:]))
        rows.append(Row(key, label, cells))

    flagged_lines = set()
    if "line_total_mismatch" in codes:
        flagged_lines = {line.gnum for line in ev.order.lines
                         if line.qty * line.price != line.total_price}
    return SideBySide(columns, rows, flagged_lines)
