"""Filing trade documents and judging the trades they prove.

``ingest`` takes documents from any door (CEB XML, CSV, JSON, web form) in one neutral
shape, accepts or rejects each on its own (a savepoint each: nothing half-stored, the rest
of the batch unaffected), and re-evaluates the verdict of every order a document touched.
Services never commit.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Iterable, Protocol

from flask_babel import gettext
from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError, StatementError

from finance_app import authz, clock
from finance_app.accounts.models import Organisation, User
from finance_app.accounts.states import FilingStatus, OrgKind
from finance_app.audit import services as audit
from finance_app.audit.services import canonical_json
from finance_app.db import ExactDecimal
from finance_app.errors import NotFound
from finance_app.extensions import db
from finance_app.trade import matching
from finance_app.trade.models import (
    DocumentVersion, IngestBatch, Inventory, MatchVerdict, Order, OrderLine, Payment,
    Receivable, ReceivableStatus, Waybill,
)
from finance_app.trade.states import (
    B2B_MODES, Direction, DocumentKind, DocumentSource, Verdict,
)


class DocumentInput(Protocol):
    kind: str
    index: int
    guid: str | None
    app_type: str
    fields: dict[str, Any]
    lines: list[dict]
    errors: list[str]


@dataclass
class SimpleDocument:
    """A document from a form, CSV row or JSON body, in the parser's shape."""
    kind: str
    fields: dict[str, Any]
    lines: list[dict] = field(default_factory=list)
    app_type: str = "1"
    index: int = 0
    guid: str | None = None
    errors: list[str] = field(default_factory=list)


MODELS = {DocumentKind.ORDER: Order, DocumentKind.PAYMENT: Payment,
          DocumentKind.WAYBILL: Waybill, DocumentKind.INVENTORY: Inventory}
KEYS = {DocumentKind.ORDER: ("ebp_code", "order_no"),
        DocumentKind.PAYMENT: ("pay_code", "pay_transaction_id"),
        DocumentKind.WAYBILL: ("logistics_code", "logistics_no"),
        DocumentKind.INVENTORY: ("ebp_code", "cop_no")}
# Which code in a document names its filer, in order of preference, and which kinds of
# organisation may file that kind of document.
FILER_FIELDS = {DocumentKind.ORDER: ("ebc_code",),
                DocumentKind.PAYMENT: ("pay_code", "ebc_code"),
                DocumentKind.WAYBILL: ("logistics_code",),
                DocumentKind.INVENTORY: ("agent_code", "ebc_code")}
FILER_KINDS = {DocumentKind.ORDER: {OrgKind.SME},
               DocumentKind.PAYMENT: {OrgKind.PAYMENT_INSTITUTION, OrgKind.SME},
               DocumentKind.WAYBILL: {OrgKind.LOGISTICS},
               DocumentKind.INVENTORY: {OrgKind.SME, OrgKind.LOGISTICS}}
ZERO_DEFAULTS = {"freight": Decimal(0), "discount": Decimal(0), "tax_total": Decimal(0)}
RENAMES = {"consignee_country": "buyer_country", "declare_time": "declared_at",
           "ship_time": "shipped_at"}
# Plain attributes of the matching models that callers may set.
_COLUMNS = {kind: {c.key for c in model.__table__.columns} - {
    "id", "filer_org_id", "direction", "version", "source", "batch_id", "extra",
    "created_at", "updated_at"} for kind, model in MODELS.items()}
REQUIRED = {DocumentKind.ORDER: ("order_no", "ebp_code", "ebc_code", "currency", "goods_value"),
            DocumentKind.PAYMENT: ("order_no", "pay_code", "pay_transaction_id", "amount",
                                   "currency"),
            DocumentKind.WAYBILL: ("logistics_code", "logistics_no"),
            DocumentKind.INVENTORY: ("cop_no", "order_no", "ebp_code")}


@dataclass
class DocumentResult:
    index: int
    kind: str
    key: str
    accepted: bool
    reason: str | None = None
    document_id: int | None = None
    version: int | None = None

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items()}


class Rejected(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


# --------------------------------------------------------------------------- attribution

def _organisation_for_code(code: str | None, cache: dict) -> Organisation | None:
    if not code:
        return None
    if code not in cache:
        cache[code] = db.session.execute(select(Organisation).where(
            or_(Organisation.customs_code == code, Organisation.credit_code == code),
            Organisation.filing_status == FilingStatus.APPROVED)).scalar_one_or_none()
    return cache[code]


KIND_NAMES = {OrgKind.SME: "an SME", OrgKind.LOGISTICS: "a logistics company",
              OrgKind.PAYMENT_INSTITUTION: "a payment institution", OrgKind.BANK: "a bank",
              OrgKind.INSURER: "an insurer", OrgKind.WAREHOUSE_OPERATOR: "a warehouse operator",
              OrgKind.PLATFORM_OPERATOR: "the platform operator"}


def _filer(kind: DocumentKind, values: dict, actor: User | None, cache: dict) -> Organisation:
    """The filed organisation that files this document, checked against who is filing it."""
    candidates = [(name, values.get(name)) for name in FILER_FIELDS[kind] if values.get(name)]
    if not candidates:
        raise Rejected(gettext("%(field)s: the filer's code is missing.",
                               field=FILER_FIELDS[kind][0]))
    orgs = [(name, code, _organisation_for_code(code, cache)) for name, code in candidates]
    filed = [(name, code, org) for name, code, org in orgs
             if org is not None and org.kind in FILER_KINDS[kind]]
    if not filed:
        name, code, org = orgs[0]
        if org is None:
            raise Rejected(gettext(
                "%(field)s: %(code)s belongs to no filed organisation on this platform.",
                field=name, code=code))
        allowed = " / ".join(gettext(KIND_NAMES[k]) for k in sorted(FILER_KINDS[kind]))
        raise Rejected(gettext(
            "%(field)s: %(code)s is filed as %(org_kind)s, but a %(kind)s is filed by "
            "%(allowed)s.", field=name, code=code, org_kind=gettext(KIND_NAMES[org.kind]),
            kind=kind.value,
            allowed=allowed))
    if actor is not None and actor.organisation.kind is not OrgKind.PLATFORM_OPERATOR:
        mine = [entry for entry in filed if entry[2].id == actor.org_id]
        if not mine:
            raise Rejected(gettext(
                "Your organisation may not file this %(kind)s: it names %(code)s (%(field)s) "
                "as its filer.", kind=kind.value, code=filed[0][1], field=filed[0][0]))
        return mine[0][2]
    return filed[0][2]


# --------------------------------------------------------------------------- ingest

def _values(kind: DocumentKind, document: DocumentInput) -> tuple[dict, dict]:
    values, extra = {}, {}
    for name, value in (document.fields or {}).items():
        if name == "direction":
            continue
        name = RENAMES.get(name, name)
        if name in _COLUMNS[kind]:
            values[name] = value
        elif name == "extra" and isinstance(value, dict):
            extra.update(value)
        elif value not in (None, ""):
            extra[name] = value
    for name in REQUIRED[kind]:
        if values.get(name) in (None, ""):
            raise Rejected(gettext("%(field)s: this element is required.", field=name))
    for name, value in values.items():
        if isinstance(value, Decimal) and value < 0:
            raise Rejected(gettext("%(field)s: the amount cannot be negative.", field=name))
        _check_storable(MODELS[kind], name, value)
    if kind is DocumentKind.ORDER:
        for line in document.lines or []:
            for name, value in line.items():
                _check_storable(OrderLine, name, value)
    return values, extra


def _check_storable(model: Any, name: str, value: Any) -> None:
    """Refuse a value its column cannot hold (too long, too large, too many decimals), so
    the database never has to: PostgreSQL would fail the whole request instead."""
    column = model.__table__.columns.get(name)
    if column is None or value is None:
        return
    length = getattr(column.type, "length", None)
    if isinstance(value, str) and length and len(value) > length:
        raise Rejected(gettext("%(field)s: at most %(n)s characters.", field=name, n=length))
    if isinstance(value, Decimal) and isinstance(column.type, ExactDecimal):
        try:
            column.type.process_bind_param(value, None)
        except (ValueError, TypeError):
            raise Rejected(gettext("%(field)s: %(value)s cannot be stored (at most 5 decimals "
                                   "and 14 digits before the point).", field=name,
                                   value=f"{value:f}"[:40])) from None
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**31 - 1:
        raise Rejected(gettext("%(field)s: the number is too large.", field=name))


def _snapshot(obj: Any) -> dict:
    data = {c.key: getattr(obj, c.key) for c in obj.__table__.columns}
    if isinstance(obj, Order):
        data["lines"] = [{c.key: getattr(line, c.key) for c in line.__table__.columns
                          if c.key not in ("id", "order_id")} for line in obj.lines]
    return data


def _apply_lines(order: Order, lines: list[dict]) -> None:
    order.lines.clear()
    db.session.flush()
    for i, line in enumerate(lines, start=1):
        order.lines.append(OrderLine(
            gnum=int(line.get("gnum") or i), item_no=line.get("item_no"),
            item_name=line.get("item_name") or "", unit=line.get("unit"),
            qty=line["qty"], price=line["price"], total_price=line["total_price"]))


def _store(kind: DocumentKind, document: DocumentInput, values: dict, extra: dict,
           filer: Organisation, direction: Direction, source: DocumentSource,
           batch: IngestBatch) -> tuple[Any, int]:
    model = MODELS[kind]
    key = {name: values[name] for name in KEYS[kind]}
    existing = db.session.execute(
        select(model).filter_by(**key).with_for_update()).scalar_one_or_none()
    app_type = str(document.app_type or "1")
    now = clock.now()
    if app_type == "3":
        raise Rejected(gettext("appType 3 (delete) is not accepted: a filed document stays on "
                               "record; re-file it with appType 2 to correct it."))
    if existing is None:
        obj = model(filer_org_id=filer.id, direction=direction, source=source, batch_id=batch.id,
                    guid=document.guid, version=1, extra=canonical_json(extra) if extra else None,
                    created_at=now, updated_at=now, **values)
        db.session.add(obj)
        if kind is DocumentKind.ORDER:
            db.session.flush()
            _apply_lines(obj, document.lines or [])
        db.session.flush()
        return obj, 1
    if app_type != "2":
        raise Rejected(gettext(
            "This %(kind)s is already filed (%(key)s); re-file it with appType 2 to change it.",
            kind=kind.value, key=" / ".join(str(v) for v in key.values())))
    if existing.filer_org_id != filer.id:
        raise Rejected(gettext("Only the organisation that filed this %(kind)s may change it.",
                               kind=kind.value))
    db.session.add(DocumentVersion(kind=kind, document_id=existing.id, version=existing.version,
                                   data=canonical_json(_snapshot(existing)), replaced_at=now,
                                   replaced_by_batch_id=batch.id))
    for name in _COLUMNS[kind] - set(KEYS[kind]):
        # A re-filing replaces the whole document: what it leaves out is cleared.
        setattr(existing, name, values.get(name, ZERO_DEFAULTS.get(name)))
    existing.extra = canonical_json(extra) if extra else None
    existing.version += 1
    existing.guid = document.guid
    existing.batch_id, existing.source, existing.updated_at = batch.id, source, now
    if kind is DocumentKind.ORDER:
        _apply_lines(existing, document.lines or [])
    db.session.flush()
    return existing, existing.version


def ingest(documents: Iterable[DocumentInput], *, actor: User | None, source: DocumentSource,
           direction: Direction | None = None, filename: str | None = None,
           message_type: str | None = None, warnings: Iterable[str] = ()) -> IngestBatch:
    """File documents; each is accepted or rejected on its own. ``actor`` None is the
    platform itself (the command line)."""
    if actor is not None:
        authz.require_approved(actor)
    batch = IngestBatch(org_id=actor.org_id if actor else None,
                        actor_user_id=actor.id if actor else None, source=source,
                        filename=(filename or "")[:255] or None, message_type=message_type,
                        warnings=json.dumps(list(warnings), ensure_ascii=False))
    db.session.add(batch)
    db.session.flush()
    results: list[DocumentResult] = []
    touched: set[tuple[str, str]] = set()
    waybills_touched: set[tuple[str, str]] = set()
    cache: dict = {}
    for position, document in enumerate(documents):
        index = document.index if document.index is not None else position
        try:
            kind = DocumentKind(document.kind)
        except ValueError:
            results.append(DocumentResult(index, str(document.kind), "", False,
                                          gettext("Unknown document kind.")))
            continue
        key = ""
        try:
            if document.errors:
                raise Rejected("; ".join(document.errors))
            values, extra = _values(kind, document)
            key = " / ".join(str(values.get(n, "")) for n in KEYS[kind])
            doc_direction = Direction(document.fields.get("direction") or direction
                                      or Direction.EXPORT)
            filer = _filer(kind, values, actor, cache)
            with db.session.begin_nested():
                obj, version = _store(kind, document, values, extra, filer, doc_direction,
                                      source, batch)
        except Rejected as exc:
            results.append(DocumentResult(index, kind.value, key, False, exc.reason))
            continue
        except IntegrityError as exc:
            results.append(DocumentResult(index, kind.value, key, False,
                                          _integrity_reason(kind, exc)))
            continue
        except StatementError as exc:  # a value the database refused; the rest stands
            results.append(DocumentResult(index, kind.value, key, False, gettext(
                "The %(kind)s could not be stored: %(detail)s", kind=kind.value,
                detail=str(getattr(exc, "orig", exc)).splitlines()[0][:200])))
            continue
        except (ValueError, TypeError, KeyError) as exc:
            results.append(DocumentResult(index, kind.value, key, False, str(exc)))
            continue
        results.append(DocumentResult(index, kind.value, key, True, None, obj.id, version))
        if kind is DocumentKind.WAYBILL:
            waybills_touched.add((obj.logistics_code, obj.logistics_no))
            if obj.order_no:
                touched.add(("*", obj.order_no))
        else:
            touched.add((obj.ebp_code or "*", obj.order_no))
    batch.accepted = sum(1 for r in results if r.accepted)
    batch.rejected = len(results) - batch.accepted
    batch.results = json.dumps([r.as_dict() for r in results], ensure_ascii=False)
    audit.record("trade.documents_filed", actor=actor, org_id=batch.org_id, obj=batch,
                 changes={"source": source, "filename": filename, "accepted": batch.accepted,
                          "rejected": batch.rejected})
    for order in _orders_for(touched, waybills_touched):
        evaluate_order(order, actor=actor)
    return batch


def _integrity_reason(kind: DocumentKind, exc: IntegrityError) -> str:
    message = str(exc.orig).lower()
    if "unique" in message or "duplicate" in message:
        return gettext("This %(kind)s's number is already filed.", kind=kind.value)
    return gettext("The %(kind)s breaks a rule of the register: %(detail)s", kind=kind.value,
                   detail=str(exc.orig).splitlines()[0][:200])


def _orders_for(keys: set[tuple[str, str]], waybills: set[tuple[str, str]]) -> list[Order]:
    orders: dict[int, Order] = {}
    for ebp_code, order_no in keys:
        query = select(Order).where(Order.order_no == order_no)
        if ebp_code != "*":
            query = query.where(Order.ebp_code == ebp_code)
        for order in db.session.execute(query).scalars():
            orders[order.id] = order
    for logistics_code, logistics_no in waybills:
        for inv in db.session.execute(select(Inventory).where(
                Inventory.logistics_code == logistics_code,
                Inventory.logistics_no == logistics_no)).scalars():
            for order in db.session.execute(select(Order).where(
                    Order.ebp_code == inv.ebp_code, Order.order_no == inv.order_no)).scalars():
                orders[order.id] = order
    return list(orders.values())


# --------------------------------------------------------------------------- matching

def documents_for(order: Order) -> tuple[list[Payment], Waybill | None, Inventory | None]:
    payments = list(db.session.execute(select(Payment).where(
        Payment.order_no == order.order_no,
        or_(Payment.ebp_code == order.ebp_code, Payment.ebp_code.is_(None)))
        .order_by(Payment.id)).scalars())
    inventory = db.session.execute(select(Inventory).where(
        Inventory.ebp_code == order.ebp_code, Inventory.order_no == order.order_no)
        .order_by(Inventory.id.desc()).limit(1)).scalar_one_or_none()
    waybill = None
    if inventory is not None and inventory.logistics_no:
        query = select(Waybill).where(Waybill.logistics_no == inventory.logistics_no)
        if inventory.logistics_code:
            query = query.where(Waybill.logistics_code == inventory.logistics_code)
        waybill = db.session.execute(query.limit(1)).scalar_one_or_none()
    if waybill is None and order.direction is Direction.IMPORT:
        waybill = db.session.execute(select(Waybill).where(
            Waybill.order_no == order.order_no).order_by(Waybill.id).limit(1)).scalar_one_or_none()
    return payments, waybill, inventory


def evaluate_order(order: Order, *, actor: User | None = None) -> MatchVerdict:
    payments, waybill, inventory = documents_for(order)
    status, reasons = matching.evaluate(order, payments, waybill, inventory)
    encoded = json.dumps([r.as_dict() for r in reasons], ensure_ascii=False)
    verdict = order.verdict
    previous = verdict.status if verdict else None
    if verdict is None:
        verdict = MatchVerdict(order=order, status=status, reasons=encoded)
        db.session.add(verdict)
    verdict.status, verdict.reasons, verdict.evaluated_at = status, encoded, clock.now()
    verdict.payment_id = payments[0].id if payments else None
    verdict.waybill_id = waybill.id if waybill else None
    verdict.inventory_id = inventory.id if inventory else None
    if previous != status or verdict.id is None:
        audit.record("trade.verdict_changed", actor=actor, org_id=order.filer_org_id, obj=order,
                     changes={"order_no": order.order_no, "verdict": [previous, status],
                              "reasons": [r.code for r in reasons]})
    _maybe_receivable(order, status, payments)
    return verdict


def _maybe_receivable(order: Order, status: Verdict, payments: list[Payment]) -> None:
    """A verified B2B export order with a payment term becomes a receivable from the buyer;
    the payments matched to the order settle it."""
    if status is not Verdict.VERIFIED or not matching.is_deferred(order):
        return
    receivable = db.session.execute(select(Receivable).where(
        Receivable.order_id == order.id)).scalar_one_or_none()
    if receivable is None:
        start = order.order_date or (order.app_time.date() if order.app_time else clock.today())
        receivable = Receivable(
            order_id=order.id, seller_org_id=order.filer_org_id, buyer_name=order.buyer_name,
            buyer_country=order.buyer_country,
            amount=order.actual_paid if order.actual_paid is not None else order.payable,
            currency=order.currency, due_date=start + timedelta(days=order.payment_term_days))
        db.session.add(receivable)
        audit.record("trade.receivable_created", org_id=order.filer_org_id, obj=receivable,
                     changes={"order_no": order.order_no, "amount": receivable.amount,
                              "currency": receivable.currency, "due_date": receivable.due_date})
    paid = settled_amount(payments, receivable.currency)
    receivable.status = (ReceivableStatus.SETTLED if paid >= receivable.amount
                         else ReceivableStatus.OPEN)


def settled_amount(payments: Iterable[Payment], currency: str) -> Decimal:
    return sum((p.amount for p in payments if p.currency == currency), Decimal(0))


def outstanding(receivable: Receivable) -> Decimal:
    payments, _, _ = documents_for(receivable.order)
    return max(receivable.amount - settled_amount(payments, receivable.currency), Decimal(0))


def verdict_reasons(verdict: MatchVerdict) -> list[dict]:
    return json.loads(verdict.reasons or "[]")
