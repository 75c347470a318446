"""Filing trade documents and judging the trades they prove.

``ingest`` takes documents from any door (CEB XML, CSV, JSON, web form) in one neutral
shape, accepts or rejects each on its own (nothing half-stored, the rest of the batch
unaffected), and re-evaluates the verdict of every order a document touched.
Services never commit.

Documents are filed ``CHUNK_SIZE`` at a time, so a large batch costs a few statements a
chunk rather than several a document:

* what needs no database is judged in Python: parse errors, values, the filer (each code
  is looked up once a batch) and appType 3;
* one query per kind finds which keys of the chunk are already filed, so a new filing of
  a filed key, or of a key met earlier in the chunk, is refused there and then;
* the chunk's new documents are inserted together, in key order, in one savepoint
  (PostgreSQL: ids drawn from the sequence, then COPY; SQLite: executemany INSERT ...
  RETURNING). If that fails (a concurrent filer took a key first, a rule the checks did
  not foresee) the savepoint is rolled back and the chunk is filed again one document at
  a time, each in its own savepoint, so every document still gets its own outcome;
* re-filings (appType 2 of a filed key), and what the bulk path cannot build, always take
  that per-document path, after the chunk's inserts; one key's documents keep their order.

Matching then loads the touched orders (locked on PostgreSQL, so concurrent filers judge
an order in turn) with their lines, payments, inventories, waybills and verdicts, a few
IN queries at a time, judges each with ``matching.evaluate`` and writes the verdicts in
bulk; the changes are audited as ``trade.verdicts_changed``, one event per batch and
organisation. No ORM object is kept per document, so memory does not grow with the
batch beyond its results.
"""
from __future__ import annotations

import json
import logging
from collections import defaultdict, namedtuple
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from itertools import islice
from types import SimpleNamespace
from typing import Any, Callable, Iterable, Iterator, Protocol, Sequence

import psycopg
from flask_babel import gettext
from sqlalchemy import (
    Integer, String, and_, any_, bindparam, cast, func, inspect, or_, select, tuple_,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError, StatementError

from finance_app import authz, clock
from finance_app.accounts.models import Organisation, User
from finance_app.accounts.states import FilingStatus, OrgKind
from finance_app.audit import services as audit
from finance_app.audit.services import canonical_json
from finance_app.collateral import services as registry
from finance_app.collateral.models import Encumbrance
from finance_app.collateral.states import AssetKind, EncumbranceStatus
from finance_app.db import ExactDecimal
from finance_app.extensions import db
from finance_app.trade import matching
from finance_app.trade.models import (
    DocumentVersion, IngestBatch, Inventory, MatchVerdict, Order, OrderLine, Payment,
    Receivable, ReceivableStatus, Waybill,
)
from finance_app.trade.states import Direction, DocumentKind, DocumentSource, Verdict

CHUNK_SIZE = 1000          # documents filed together
MATCH_CHUNK = 1000         # orders judged together
IN_LIST = 500              # values in one IN (...) list
AUDIT_LIST = 1000          # verdict changes in one audit event

log = logging.getLogger(__name__)


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


# --------------------------------------------------------------------------- values

# Per model, each column's limits: (maximum length, the ExactDecimal type or None).
_LIMITS = {model: {c.key: (getattr(c.type, "length", None),
                           c.type if isinstance(c.type, ExactDecimal) else None)
                   for c in model.__table__.columns}
           for model in (*MODELS.values(), OrderLine)}
_LINE_LIMITS = _LIMITS[OrderLine]


def _values(kind: DocumentKind, document: DocumentInput) -> tuple[dict, dict]:
    columns = _COLUMNS[kind]
    values, extra = {}, {}
    for name, value in (document.fields or {}).items():
        if name == "direction":
            continue
        name = RENAMES.get(name, name)
        if name in columns:
            values[name] = value
        elif name == "extra" and isinstance(value, dict):
            extra.update(value)
        elif value not in (None, ""):
            extra[name] = value
    for name in REQUIRED[kind]:
        if values.get(name) in (None, ""):
            raise Rejected(gettext("%(field)s: this element is required.", field=name))
    limits = _LIMITS[MODELS[kind]]
    for name, value in values.items():   # _check_storable, unrolled for the common types
        if value is None:
            continue
        if type(value) is str:
            length = limits[name][0]
            if length and len(value) > length:
                raise Rejected(gettext("%(field)s: at most %(n)s characters.", field=name,
                                       n=length))
            continue
        if isinstance(value, Decimal) and value < 0:
            raise Rejected(gettext("%(field)s: the amount cannot be negative.", field=name))
        _check_storable(MODELS[kind], name, value)
    if kind is DocumentKind.ORDER:
        for line in document.lines or []:
            for name, value in line.items():
                if value is not None and name in _LINE_LIMITS:
                    _check_storable(OrderLine, name, value)
    return values, extra


def _check_storable(model: Any, name: str, value: Any) -> None:
    """Refuse a value its column cannot hold (too long, too large, too many decimals), so
    the database never has to: PostgreSQL would fail the whole request instead."""
    limits = _LIMITS[model].get(name)
    if limits is None or value is None:
        return
    length, exact = limits
    if isinstance(value, str):
        if length and len(value) > length:
            raise Rejected(gettext("%(field)s: at most %(n)s characters.", field=name,
                                   n=length))
        return
    if isinstance(value, Decimal):
        if exact is not None and not _fits(value, exact):
            raise Rejected(gettext("%(field)s: %(value)s cannot be stored (at most 5 decimals "
                                   "and 14 digits before the point).", field=name,
                                   value=f"{value:f}"[:40]))
        return
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**31 - 1:
        raise Rejected(gettext("%(field)s: the number is too large.", field=name))


def _fits(value: Decimal, column_type: ExactDecimal) -> bool:
    exponent = value.as_tuple().exponent
    if (isinstance(exponent, int) and exponent >= -column_type.scale
            and value.adjusted() < 18 - column_type.scale):
        return True   # few enough decimals, and below 10**18 scaled: certainly fits
    try:
        column_type.process_bind_param(value, None)
    except (ValueError, TypeError):
        return False
    return True


# --------------------------------------------------------------------------- one document

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


# --------------------------------------------------------------------------- ingest

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
    filing = _Filing(batch, actor, source, direction)
    results: list[DocumentResult] = []
    numbered = enumerate(documents)
    while chunk := list(islice(numbered, max(1, CHUNK_SIZE))):
        results.extend(_file_chunk(chunk, filing))
    batch.accepted = sum(1 for r in results if r.accepted)
    batch.rejected = len(results) - batch.accepted
    batch.results = json.dumps([r.as_dict() for r in results], ensure_ascii=False)
    audit.record("trade.documents_filed", actor=actor, org_id=batch.org_id, obj=batch,
                 changes={"source": source, "filename": filename, "accepted": batch.accepted,
                          "rejected": batch.rejected})
    changes: dict[int, list[dict]] = {}
    for part in _slices(_touched_orders(filing.orders, filing.waybills), MATCH_CHUNK):
        _evaluate_orders(part, actor, changes, filed_now=filing.new_orders)
    _record_verdict_changes(changes, actor, batch)
    _expire_loaded_documents()
    return batch


@dataclass
class _Filing:
    """One ingest call: its batch, who files, and what it touched."""
    batch: IngestBatch
    actor: User | None
    source: DocumentSource
    direction: Direction | None
    organisations: dict = field(default_factory=dict)   # code -> Organisation | None
    filers: dict = field(default_factory=dict)          # (kind, codes) -> Organisation | Rejected
    orders: set = field(default_factory=set)            # (ebp_code or "*", order_no)
    new_orders: set = field(default_factory=set)        # ids of orders inserted in bulk
    waybills: set = field(default_factory=set)          # (logistics_code, logistics_no)

    def filer(self, kind: DocumentKind, values: dict) -> Organisation:
        memo = (kind, tuple(values.get(name) for name in FILER_FIELDS[kind]))
        found = self.filers.get(memo)
        if found is None:
            try:
                found = _filer(kind, values, self.actor, self.organisations)
            except Rejected as exc:
                found = exc
            self.filers[memo] = found
        if isinstance(found, Rejected):
            raise Rejected(found.reason)
        return found

    def touch(self, kind: DocumentKind, get: Callable[[str], Any]) -> None:
        if kind is DocumentKind.WAYBILL:
            self.waybills.add((_text(get("logistics_code")), _text(get("logistics_no"))))
            if get("order_no"):
                self.orders.add(("*", _text(get("order_no"))))
        else:
            self.orders.add((_text(get("ebp_code")) or "*", _text(get("order_no"))))


def _text(value: Any) -> str | None:
    return value if value is None or isinstance(value, str) else str(value)


@dataclass(eq=False)
class _Pending:
    """A document that passed every check made without the database."""
    slot: int
    index: int
    kind: DocumentKind
    key: str
    key_values: tuple | None       # None: a key the bulk path does not handle
    values: dict
    extra: dict
    filer: Organisation
    direction: Direction
    document: DocumentInput
    app_type: str
    row: dict | None = None
    lines: list[dict] = field(default_factory=list)
    document_id: int | None = None


def _file_chunk(chunk: list[tuple[int, DocumentInput]], filing: _Filing
                ) -> list[DocumentResult]:
    results: list[DocumentResult | None] = []
    pending: list[_Pending] = []
    for position, document in chunk:
        item = _prepare(len(results), position, document, filing)
        results.append(item if isinstance(item, DocumentResult) else None)
        if isinstance(item, _Pending):
            pending.append(item)
    if pending:
        outcome = _file_together(pending, filing)
        if outcome is None:   # the savepoint failed: each document on its own
            outcome = {p.slot: _file_one(p, filing) for p in sorted(pending, key=_lock_order)}
        for slot, result in outcome.items():
            results[slot] = result
    return results  # type: ignore[return-value]


def _prepare(slot: int, position: int, document: DocumentInput, filing: _Filing
             ) -> DocumentResult | _Pending:
    """Every check that needs no database; a rejection, or the document ready to file."""
    index = document.index if document.index is not None else position
    try:
        kind = DocumentKind(document.kind)
    except ValueError:
        return DocumentResult(index, str(document.kind), "", False,
                              gettext("Unknown document kind."))
    key = ""
    try:
        if document.errors:
            raise Rejected("; ".join(document.errors))
        values, extra = _values(kind, document)
        key = " / ".join(str(values.get(n, "")) for n in KEYS[kind])
        doc_direction = Direction(document.fields.get("direction") or filing.direction
                                  or Direction.EXPORT)
        filer = filing.filer(kind, values)
    except Rejected as exc:
        return DocumentResult(index, kind.value, key, False, exc.reason)
    except (ValueError, TypeError, KeyError) as exc:
        return DocumentResult(index, kind.value, key, False, str(exc))
    key_values = tuple(values[n] for n in KEYS[kind])
    if not all(isinstance(v, str) for v in key_values):
        key_values = None
    return _Pending(slot, index, kind, key, key_values, values, extra, filer, doc_direction,
                    document, str(document.app_type or "1"))


def _file_together(pending: list[_Pending], filing: _Filing) -> dict[int, DocumentResult] | None:
    """File a chunk's documents with one existence query per kind and one savepoint for
    the inserts; None when that savepoint failed (nothing of it is kept)."""
    filed = _filed_keys(pending)
    results: dict[int, DocumentResult] = {}
    inserts: dict[DocumentKind, list[_Pending]] = defaultdict(list)
    one_by_one: list[_Pending] = []
    in_chunk: set[tuple] = set()      # keys this chunk inserts
    by_one: set[tuple] = set()        # keys whose documents go one by one, in order
    for p in pending:
        ident = (p.kind, p.key_values)
        if p.app_type == "3":
            results[p.slot] = _rejected(p, _delete_refused())
        elif p.key_values is None or ident in by_one:
            one_by_one.append(p)
            by_one.add(ident)
        elif ident in filed or ident in in_chunk:
            if p.app_type == "2":      # a re-filing: per document, after the inserts
                one_by_one.append(p)
                by_one.add(ident)
            else:
                results[p.slot] = _rejected(p, _already_filed(p.kind, p.key_values))
        elif _build_row(p, filing):
            inserts[p.kind].append(p)
            in_chunk.add(ident)
        else:
            one_by_one.append(p)
            by_one.add(ident)
    if inserts:
        try:
            with db.session.begin_nested():
                for kind in MODELS:
                    if inserts.get(kind):
                        _insert_documents(kind, inserts[kind])
        except (StatementError, psycopg.Error, ValueError, TypeError) as exc:
            # DBAPIError (IntegrityError, a deadlock, ...) is a StatementError; COPY
            # raises psycopg's own errors.
            log.info("bulk insert of %d documents failed, filing them one by one: %s",
                     sum(map(len, inserts.values())), str(exc).splitlines()[0][:200])
            return None
    for items in inserts.values():
        for p in items:
            results[p.slot] = DocumentResult(p.index, p.kind.value, p.key, True, None,
                                             p.document_id, 1)
            if p.kind is DocumentKind.ORDER:
                filing.new_orders.add(p.document_id)
            filing.touch(p.kind, p.row.get)
            p.row = p.lines = None     # type: ignore[assignment]
    for p in sorted(one_by_one, key=_lock_order):
        results[p.slot] = _file_one(p, filing)
    return results


_KIND_RANK = {kind: rank for rank, kind in enumerate(MODELS)}


def _lock_order(p: _Pending) -> tuple:
    """Documents one at a time go in kind and key order, as the bulk inserts do, so two
    filers with keys in common wait for each other rather than deadlock. The sort is
    stable: the documents of one key keep their order, which is all that matters."""
    return (_KIND_RANK[p.kind], p.key_values is None, p.key_values or ())


def _rejected(p: _Pending, reason: str) -> DocumentResult:
    return DocumentResult(p.index, p.kind.value, p.key, False, reason)


def _delete_refused() -> str:
    return gettext("appType 3 (delete) is not accepted: a filed document stays on "
                   "record; re-file it with appType 2 to correct it.")


def _already_filed(kind: DocumentKind, key: Sequence[Any]) -> str:
    return gettext(
        "This %(kind)s is already filed (%(key)s); re-file it with appType 2 to change it.",
        kind=kind.value, key=" / ".join(str(v) for v in key))


def _slices(items: Sequence, size: int) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _filed_keys(pending: list[_Pending]) -> set[tuple]:
    """(kind, key) of each key of these documents that is already filed."""
    wanted: dict[DocumentKind, set[tuple]] = defaultdict(set)
    for p in pending:
        if p.key_values is not None and p.app_type != "3":
            wanted[p.kind].add(p.key_values)
    filed = set()
    for kind, keys in wanted.items():
        for rows in _grouped(_FILED[kind], keys, _pair_lists, tuple).values():
            filed.update((kind, tuple(row)) for row in rows if tuple(row) in keys)
    return filed


_INSERT_COLUMNS = {kind: [c.key for c in model.__table__.columns if c.key != "id"]
                   for kind, model in MODELS.items()}
# Column defaults the ORM would apply to a value left out or None (freight 0, ...).
_SCALAR_DEFAULTS = {kind: {c.key: c.default.arg for c in model.__table__.columns
                           if c.default is not None and c.default.is_scalar}
                    for kind, model in MODELS.items()}
_MAX_INT = 2**31 - 1


def _build_row(p: _Pending, filing: _Filing) -> bool:
    """The row (and order lines) a new document is inserted as, exactly as ``_store``
    would write it; False when it is not plain enough to insert in bulk."""
    guid = p.document.guid
    if guid is not None and (not isinstance(guid, str) or len(guid) > 64):
        return False
    row = dict.fromkeys(_INSERT_COLUMNS[p.kind])
    row.update(p.values)
    for name, default in _SCALAR_DEFAULTS[p.kind].items():
        if row[name] is None:
            row[name] = default
    now = clock.now()
    row.update(filer_org_id=p.filer.id, direction=p.direction, source=filing.source,
               batch_id=filing.batch.id, guid=guid, version=1,
               extra=canonical_json(p.extra) if p.extra else None, created_at=now,
               updated_at=now)
    lines = []
    if p.kind is DocumentKind.ORDER:
        gnums = set()
        try:
            for i, line in enumerate(p.document.lines or [], start=1):
                gnum = int(line.get("gnum") or i)
                qty, price, total = line["qty"], line["price"], line["total_price"]
                if gnum in gnums or abs(gnum) > _MAX_INT or None in (qty, price, total):
                    return False
                gnums.add(gnum)
                lines.append(dict(gnum=gnum, item_no=line.get("item_no"),
                                  item_name=line.get("item_name") or "", unit=line.get("unit"),
                                  qty=qty, price=price, total_price=total))
        except Exception:  # noqa: BLE001 - the per-document path gives the precise outcome
            return False
    p.row, p.lines = row, lines
    return True


def _insert_documents(kind: DocumentKind, items: list[_Pending]) -> None:
    # Every filer inserts in key order, so two chunks with keys in common wait for each
    # other rather than deadlock.
    items.sort(key=lambda p: p.key_values)
    ids = _insert_rows(MODELS[kind].__table__, [p.row for p in items], with_ids=True)
    for p, document_id in zip(items, ids):
        p.document_id = document_id
    if kind is DocumentKind.ORDER:
        lines = [dict(line, order_id=p.document_id) for p in items for line in p.lines]
        _insert_rows(OrderLine.__table__, lines)


def _file_one(p: _Pending, filing: _Filing) -> DocumentResult:
    """One document in its own savepoint: the path every document took before chunks."""
    kind = p.kind
    try:
        with db.session.begin_nested():
            obj, version = _store(kind, p.document, p.values, p.extra, p.filer, p.direction,
                                  filing.source, filing.batch)
    except Rejected as exc:
        return _rejected(p, exc.reason)
    except IntegrityError as exc:
        return _rejected(p, _integrity_reason(kind, exc))
    except StatementError as exc:  # a value the database refused; the rest stands
        return _rejected(p, gettext(
            "The %(kind)s could not be stored: %(detail)s", kind=kind.value,
            detail=str(getattr(exc, "orig", exc)).splitlines()[0][:200]))
    except (ValueError, TypeError, KeyError) as exc:
        return _rejected(p, str(exc))
    filing.touch(kind, lambda name: getattr(obj, name))
    return DocumentResult(p.index, kind.value, p.key, True, None, obj.id, version)


_DOCUMENT_MODELS = (Order, OrderLine, Payment, Waybill, Inventory, MatchVerdict)


def _expire_loaded_documents() -> None:
    """Rows were written past the ORM: objects the session already holds reload them."""
    session = db.session()
    session.flush()
    for obj in list(session.identity_map.values()):
        if isinstance(obj, _DOCUMENT_MODELS) and inspect(obj).persistent:
            session.expire(obj)


def _integrity_reason(kind: DocumentKind, exc: IntegrityError) -> str:
    message = str(exc.orig).lower()
    if "unique" in message or "duplicate" in message:
        return gettext("This %(kind)s's number is already filed.", kind=kind.value)
    return gettext("The %(kind)s breaks a rule of the register: %(detail)s", kind=kind.value,
                   detail=str(exc.orig).splitlines()[0][:200])


# --------------------------------------------------------------------------- bulk SQL

def _is_postgres() -> bool:
    return db.session.get_bind().dialect.name == "postgresql"


_SEPARATOR = "\x1f"   # the ASCII unit separator: no XML 1.0 text can hold it


class _Lookup:
    """A SELECT whose WHERE clause takes lists of values, built once and run many times.

    ``where(q)`` builds the condition from ``q.any(column, name)`` (the column is one of
    list ``name``) and ``q.pairs(first, second, a, b)`` (the two columns are one of the
    pairs that lists ``a`` and ``b`` make, position by position; on SQLite any
    combination of the two, so callers keep only the pairs they asked for).

    On PostgreSQL each list travels as one text parameter split by the server
    (``string_to_array(:p, sep)``): the statement stays short (psycopg parses a long one
    in Python each time) and no array is quoted element by element; it runs straight on
    the psycopg cursor. Pairs are joined through ``unnest`` so that both columns of their
    index are used, whatever the planner believes about either. A list whose strings hold
    the separator goes as an array parameter instead. On SQLite each list is an
    expanding ``IN``.
    """

    def __init__(self, columns: list, where: Callable[[Any], Any], *, from_: Any = None,
                 order_by: Sequence = (), lock: Any = None):
        self.columns, self.where, self.from_ = columns, where, from_
        self.order_by, self.lock = order_by, lock
        self.statements: dict[str, Any] = {}

    def _statement(self, variant: str) -> Any:
        statement = self.statements.get(variant)
        if statement is None:
            statement = select(*self.columns)
            if self.from_ is not None:
                statement = statement.select_from(self.from_)
            statement = statement.where(self.where(_Conditions(variant)))
            statement = statement.order_by(*self.order_by)
            if self.lock is not None:
                statement = statement.with_for_update(of=self.lock, key_share=True)
            statement = self.statements[variant] = statement
        return statement

    def rows(self, **lists: Sequence) -> list:
        params = {name: list(values) for name, values in lists.items()}
        if not _is_postgres():
            return db.session.execute(self._statement("sqlite"), params).all()
        if all(type(v) is int or (type(v) is str and _SEPARATOR not in v)
               for values in params.values() for v in values):
            return self._run_raw({
                name: (",".join(map(str, values)) if values and type(values[0]) is int
                       else _SEPARATOR.join(values)) for name, values in params.items()})
        return db.session.execute(self._statement("array"), params).all()

    def _run_raw(self, params: dict) -> list:
        """The text variant straight through psycopg: compiled once, rows converted by
        the columns' own result processors (ExactDecimal, enums) into named tuples."""
        connection = db.session.connection()
        raw = self.statements.get("raw")
        if raw is None:
            dialect = connection.dialect
            compiled = self._statement("text").compile(dialect=dialect)
            converters = [(i, processor) for i, column in enumerate(self.columns)
                          if (processor := column.type.result_processor(dialect, None))]
            raw = self.statements["raw"] = (
                str(compiled), dict(compiled.params), converters,
                namedtuple("Row", [column.key for column in self.columns]))
        sql, defaults, converters, row_type = raw
        with _cursor() as cursor:
            # Not prepared: a generic plan made while a table was small would scan it
            # whole once it has grown (until the next ANALYZE); planned for its
            # parameters, each lookup uses the index however the tables grow.
            cursor.execute(sql, {**defaults, **params}, prepare=False)
            rows = cursor.fetchall()
        if not converters:
            return [row_type._make(row) for row in rows]
        result = []
        for row in rows:
            values = list(row)
            for i, processor in converters:
                values[i] = processor(values[i])
            result.append(row_type._make(values))
        return result


def _grouped(lookup: _Lookup, values: Iterable, params: Callable[[Sequence], dict],
             key: Callable[[Any], Any]) -> dict[Any, list]:
    """``lookup``'s rows for ``values``, ``IN_LIST`` values a query (``params`` turns a
    slice into the lookup's lists), grouped by ``key(row)``."""
    grouped: dict[Any, list] = defaultdict(list)
    for part in _slices(sorted(values), IN_LIST):
        for row in lookup.rows(**params(part)):
            grouped[key(row)].append(row)
    return grouped


class _Conditions:
    """The conditions a ``_Lookup`` is built from, for one variant of its statement."""

    def __init__(self, variant: str):
        self.variant = variant

    def _list(self, name: str, column: Any) -> Any:
        if self.variant == "array":
            return bindparam(name, type_=ARRAY(column.type))
        text_list = func.string_to_array(bindparam(name, type_=String),
                                         "," if isinstance(column.type, Integer) else _SEPARATOR)
        return cast(text_list, ARRAY(Integer)) if isinstance(column.type, Integer) else text_list

    def any(self, column: Any, name: str) -> Any:
        if self.variant == "sqlite":
            return column.in_(bindparam(name, expanding=True))
        return column == any_(self._list(name, column))

    def pairs(self, first: Any, second: Any, a: str = "a", b: str = "b") -> Any:
        if self.variant == "sqlite":   # SQLite seeks the index for each combination
            return and_(first.in_(bindparam(a, expanding=True)),
                        second.in_(bindparam(b, expanding=True)))
        wanted = func.unnest(self._list(a, first), self._list(b, second)).table_valued(
            "a", "b").render_derived()
        return tuple_(first, second).in_(select(wanted.c.a, wanted.c.b))


def _pair_lists(part: Sequence[tuple]) -> dict:
    """Lists a and b for ``_Conditions.pairs``: the pairs, position by position."""
    return {"a": [a for a, _ in part], "b": [b for _, b in part]}


def _cursor() -> Any:
    """A psycopg cursor on the session's connection, in its transaction (PostgreSQL)."""
    return db.session.connection().connection.driver_connection.cursor()


_BIND_PROCESSORS: dict[tuple, list] = {}


def _insert_rows(table: Any, rows: list[dict], *, with_ids: bool = False) -> list[int]:
    """Insert rows (dicts with every column but ``id``); their new ids if ``with_ids``,
    in the order of the rows. PostgreSQL: ids drawn from the sequence, then COPY.
    SQLite: the ids SQLite would give (the next after the largest: the transaction holds
    the database's write lock, taken at BEGIN), then one executemany INSERT."""
    if not rows:
        return []
    if not _is_postgres():
        ids = []
        if with_ids:
            last = db.session.execute(select(func.max(table.c.id))).scalar() or 0
            ids = list(range(last + 1, last + 1 + len(rows)))
            for row, new_id in zip(rows, ids):
                row["id"] = new_id
        db.session.execute(table.insert(), rows)
        return ids
    ids: list[int] = []
    names = [name for name in rows[0] if name != "id"]
    connection = db.session.connection()
    dialect = connection.dialect
    if with_ids:
        with _cursor() as cursor:
            cursor.execute("SELECT nextval(pg_get_serial_sequence(%s, 'id')) "
                           "FROM generate_series(1, %s)", (table.name, len(rows)))
            ids = [row[0] for row in cursor.fetchall()]
        names.append("id")
    processors = _BIND_PROCESSORS.get((table.name, tuple(names)))
    if processors is None:
        processors = _BIND_PROCESSORS[(table.name, tuple(names))] = [
            table.c[name].type.bind_processor(dialect) for name in names]
    quote = dialect.identifier_preparer.quote
    sql = (f"COPY {quote(table.name)} ({', '.join(quote(table.c[n].name) for n in names)}) "
           "FROM STDIN")
    pairs = list(zip(names, processors))
    with _cursor() as cursor:
        with cursor.copy(sql) as copy:
            for i, row in enumerate(rows):
                if with_ids:
                    row["id"] = ids[i]
                copy.write_row([row[name] if process is None else process(row[name])
                                for name, process in pairs])
    return ids


# --------------------------------------------------------------------------- matching

def _touched_orders(keys: set[tuple[str, str]], waybills: set[tuple[str, str]]) -> list[int]:
    """Ids of the orders named by (ebp_code or "*", order_no), and of those whose
    inventory names one of the waybills, in id order."""
    wanted = {key for key in keys if key[0] != "*"}
    anywhere = {order_no for ebp_code, order_no in keys if ebp_code == "*"}
    for rows in _grouped(_INVENTORIES_BY_WAYBILL, {w for w in waybills if None not in w},
                         _pair_lists, lambda r: (r.logistics_code, r.logistics_no)
                         ).values():
        wanted.update((r.ebp_code, r.order_no) for r in rows
                      if (r.logistics_code, r.logistics_no) in waybills)
    ids = set()
    numbers = ({no for _, no in wanted} | anywhere) - {None}
    for rows in _grouped(_ORDERS_BY_NUMBER, numbers, lambda part: {"n": part},
                         lambda r: r.order_no).values():
        ids.update(r.id for r in rows
                   if r.order_no in anywhere or (r.ebp_code, r.order_no) in wanted)
    return sorted(ids)


_orders, _lines = Order.__table__, OrderLine.__table__
_payments, _inventories = Payment.__table__, Inventory.__table__
_waybills, _verdicts = Waybill.__table__, MatchVerdict.__table__


def _columns(table: Any, *names: str) -> list:
    return [table.c[name] for name in names]


_FILED = {kind: _Lookup(_columns(MODELS[kind].__table__, *KEYS[kind]),
                        lambda q, kind=kind: q.pairs(*_columns(MODELS[kind].__table__,
                                                               *KEYS[kind])))
          for kind in MODELS}
_INVENTORIES_BY_WAYBILL = _Lookup(
    _columns(_inventories, "ebp_code", "order_no", "logistics_code", "logistics_no"),
    lambda q: q.pairs(_inventories.c.logistics_code, _inventories.c.logistics_no))
_ORDERS_BY_NUMBER = _Lookup(_columns(_orders, "id", "ebp_code", "order_no"),
                            lambda q: q.any(_orders.c.order_no, "n"))
# Locked (PostgreSQL) so two filers judging one order take turns: the second sees what
# the first committed, and one verdict row is written. An order this transaction
# inserted is seen by no one else yet, so it needs no lock.
_JUDGE_COLUMNS = [*_orders.c, _verdicts.c.id.label("verdict_id"),
                  _verdicts.c.status.label("verdict")]
_JUDGE_FROM = _orders.outerjoin(_verdicts, _verdicts.c.order_id == _orders.c.id)
_ORDERS_TO_JUDGE = _Lookup(_JUDGE_COLUMNS, lambda q: q.any(_orders.c.id, "ids"),
                           from_=_JUDGE_FROM, order_by=[_orders.c.id], lock=_orders)
_NEW_ORDERS_TO_JUDGE = _Lookup(_JUDGE_COLUMNS, lambda q: q.any(_orders.c.id, "ids"),
                               from_=_JUDGE_FROM, order_by=[_orders.c.id])
_LINES = _Lookup(_columns(_lines, "order_id", "gnum", "qty", "price", "total_price"),
                 lambda q: q.any(_lines.c.order_id, "ids"),
                 order_by=[_lines.c.order_id, _lines.c.gnum])
_PAYMENT_COLUMNS = _columns(_payments, "id", "order_no", "ebp_code", "pay_code",
                            "pay_transaction_id", "payer_id_type", "payer_id_number",
                            "payer_name", "amount", "currency", "pay_time")
_PAYMENTS = _Lookup(_PAYMENT_COLUMNS, lambda q: q.pairs(_payments.c.ebp_code,
                                                        _payments.c.order_no))
_PAYMENTS_ANY_PLATFORM = _Lookup(   # a payment that names no platform
    _PAYMENT_COLUMNS, lambda q: and_(_payments.c.ebp_code.is_(None),
                                     q.any(_payments.c.order_no, "n")))
_INVENTORIES = _Lookup(
    _columns(_inventories, "id", "ebp_code", "order_no", "logistics_code", "logistics_no",
             "declared_at"),
    lambda q: q.pairs(_inventories.c.ebp_code, _inventories.c.order_no))
_WAYBILL_COLUMNS = _columns(_waybills, "id", "logistics_code", "logistics_no", "order_no",
                            "consignee")
_WAYBILLS = _Lookup(_WAYBILL_COLUMNS,
                    lambda q: q.pairs(_waybills.c.logistics_code, _waybills.c.logistics_no))
_WAYBILLS_BY_NUMBER = _Lookup(_WAYBILL_COLUMNS, lambda q: q.any(_waybills.c.logistics_no, "n"),
                              order_by=[_waybills.c.id])
_WAYBILLS_BY_ORDER = _Lookup(_WAYBILL_COLUMNS, lambda q: q.any(_waybills.c.order_no, "n"),
                             order_by=[_waybills.c.id])


def _evaluate_orders(order_ids: Sequence[int], actor: User | None,
                     changes: dict[int, list[dict]], filed_now: set[int] = frozenset()
                     ) -> None:
    """Judge these orders and write their verdicts; each change of verdict is added to
    ``changes`` (filer organisation -> list); receivables as ``_receivables`` says.
    ``filed_now``: ids of orders this transaction inserted."""
    rows = []
    new = [i for i in order_ids if i in filed_now]
    if new:
        rows += _NEW_ORDERS_TO_JUDGE.rows(ids=new)
    if len(new) < len(order_ids):
        rows += _ORDERS_TO_JUDGE.rows(ids=[i for i in order_ids if i not in filed_now])
    orders = [SimpleNamespace(**row._asdict()) for row in rows]
    if not orders:
        return
    ids = [o.id for o in orders]
    keys = {(o.ebp_code, o.order_no) for o in orders}
    lines = _grouped(_LINES, ids, lambda part: {"ids": part}, lambda r: r.order_id)
    payments = _grouped(_PAYMENTS, keys, _pair_lists, lambda r: (r.ebp_code, r.order_no))
    unnamed = _grouped(_PAYMENTS_ANY_PLATFORM, {no for _, no in keys},
                       lambda part: {"n": part}, lambda r: r.order_no)
    inventories = {}
    for key, rows in _grouped(_INVENTORIES, keys, _pair_lists,
                              lambda r: (r.ebp_code, r.order_no)).items():
        inventories[key] = max(rows, key=lambda r: r.id)      # the latest filed
    named = {(i.logistics_code, i.logistics_no) for i in inventories.values()
             if i.logistics_no and i.logistics_code}
    waybills = _grouped(_WAYBILLS, named, _pair_lists,
                        lambda r: (r.logistics_code, r.logistics_no))
    uncoded = {i.logistics_no for i in inventories.values()
               if i.logistics_no and not i.logistics_code}
    by_number = _grouped(_WAYBILLS_BY_NUMBER, uncoded, lambda part: {"n": part},
                         lambda r: r.logistics_no)
    found = []
    for order in orders:
        order.lines = lines.get(order.id, [])
        paid = sorted([*payments.get((order.ebp_code, order.order_no), ()),
                       *unnamed.get(order.order_no, ())], key=lambda r: r.id)
        inventory = inventories.get((order.ebp_code, order.order_no))
        waybill = None
        if inventory is not None and inventory.logistics_no:
            candidates = (waybills.get((inventory.logistics_code, inventory.logistics_no), ())
                          if inventory.logistics_code
                          else by_number.get(inventory.logistics_no, ()))
            waybill = next(iter(candidates), None)
        found.append([order, paid, waybill, inventory])
    unshipped = {o.order_no for o, _, waybill, _ in found
                 if waybill is None and o.direction == Direction.IMPORT}
    if unshipped:   # an import order's waybill names the order itself
        by_order_no = _grouped(_WAYBILLS_BY_ORDER, unshipped, lambda part: {"n": part},
                               lambda r: r.order_no)
        for entry in found:
            if entry[2] is None and entry[0].direction == Direction.IMPORT:
                entry[2] = next(iter(by_order_no.get(entry[0].order_no, ())), None)

    now = clock.now()
    inserts, updates, deferred = [], [], []
    for order, paid, waybill, inventory in found:
        status, reasons = matching.evaluate(order, paid, waybill, inventory)
        row = {"status": status,
               "reasons": json.dumps([r.as_dict() for r in reasons], ensure_ascii=False),
               "payment_id": paid[0].id if paid else None,
               "waybill_id": waybill.id if waybill else None,
               "inventory_id": inventory.id if inventory else None, "evaluated_at": now}
        if order.verdict_id is None:
            inserts.append(dict(row, order_id=order.id))
        else:
            updates.append(dict(row, id=order.verdict_id))
        if order.verdict != status:
            changes.setdefault(order.filer_org_id, []).append(
                {"order_id": order.id, "order_no": order.order_no,
                 "verdict": [order.verdict, status]})
        if status is Verdict.VERIFIED and matching.is_deferred(order):
            deferred.append((order, paid))
    _insert_rows(_verdicts, inserts)
    _update_verdicts(updates)
    if deferred:
        _receivables(deferred)


_VERDICT_FIELDS = ("status", "reasons", "payment_id", "waybill_id", "inventory_id",
                   "evaluated_at")
_VERDICT_UPDATE = _verdicts.update().where(_verdicts.c.id == bindparam("b_id")).values(
    {name: bindparam(f"b_{name}", type_=_verdicts.c[name].type) for name in _VERDICT_FIELDS})
# Every column an array built server-side from one text parameter (see ``_Lookup``); JSON
# reasons never hold a raw control character, so the separator cannot occur in them.
_VERDICT_UPDATE_PG = (
    "UPDATE trade_verdicts AS v SET status = u.status, reasons = u.reasons, "
    "payment_id = u.payment_id::integer, waybill_id = u.waybill_id::integer, "
    "inventory_id = u.inventory_id::integer, evaluated_at = %(evaluated_at)s "
    "FROM unnest(string_to_array(%(id)s, ','), string_to_array(%(status)s, ','), "
    "string_to_array(%(reasons)s, %(separator)s), string_to_array(%(payment_id)s, ',', ''), "
    "string_to_array(%(waybill_id)s, ',', ''), string_to_array(%(inventory_id)s, ',', '')) "
    "AS u(id, status, reasons, payment_id, waybill_id, inventory_id) "
    "WHERE v.id = u.id::integer")


def _update_verdicts(rows: list[dict]) -> None:
    """One UPDATE from arrays on PostgreSQL; an executemany UPDATE on SQLite."""
    if not rows:
        return
    if _is_postgres():
        def joined(name: str) -> str:
            return ",".join("" if row[name] is None else str(row[name]) for row in rows)
        with _cursor() as cursor:
            cursor.execute(_VERDICT_UPDATE_PG, {
                "id": joined("id"), "payment_id": joined("payment_id"),
                "waybill_id": joined("waybill_id"), "inventory_id": joined("inventory_id"),
                "status": ",".join(row["status"].value for row in rows),
                "reasons": _SEPARATOR.join(row["reasons"] for row in rows),
                "separator": _SEPARATOR, "evaluated_at": rows[0]["evaluated_at"]},
                prepare=False)   # planned for its rows, as the lookups are
    else:
        db.session.execute(_VERDICT_UPDATE, [{f"b_{name}": value for name, value in row.items()}
                                             for row in rows])


def _record_verdict_changes(changes: dict[int, list[dict]], actor: User | None,
                            obj: Any) -> None:
    """One ``trade.verdicts_changed`` event per organisation whose orders changed (per
    ``AUDIT_LIST`` orders), naming each order and its old and new verdict."""
    for org_id, items in changes.items():
        for part in _slices(items, AUDIT_LIST):
            audit.record("trade.verdicts_changed", actor=actor, org_id=org_id, obj=obj,
                         changes={"count": len(part), "orders": list(part)})


def _receivables(deferred: list[tuple[Any, list]]) -> None:
    """A verified B2B export order with a payment term becomes a receivable from the buyer;
    the payments matched to the order settle it."""
    existing = {r.order_id: r for r in db.session.execute(select(Receivable).where(
        Receivable.order_id.in_([order.id for order, _ in deferred]))).scalars()}
    created = []
    for order, payments in deferred:
        receivable = existing.get(order.id)
        if receivable is None:
            start = order.order_date or (order.app_time.date() if order.app_time
                                         else clock.today())
            payable = order.goods_value + order.freight + order.tax_total - order.discount
            receivable = Receivable(
                order_id=order.id, seller_org_id=order.filer_org_id,
                buyer_name=order.buyer_name, buyer_country=order.buyer_country,
                amount=order.actual_paid if order.actual_paid is not None else payable,
                currency=order.currency,
                due_date=start + timedelta(days=order.payment_term_days))
            db.session.add(receivable)
            created.append(receivable)
            audit.record("trade.receivable_created", org_id=order.filer_org_id, obj=receivable,
                         changes={"order_no": order.order_no, "amount": receivable.amount,
                                  "currency": receivable.currency,
                                  "due_date": receivable.due_date})
        paid = settled_amount(payments, receivable.currency)
        receivable.status = (ReceivableStatus.SETTLED if paid >= receivable.amount
                             else ReceivableStatus.OPEN)
    if created:
        _inherit_financing(created)


def _inherit_financing(receivables: list[Receivable]) -> None:
    """A financed order that ships becomes a receivable that carries the order's financing
    on, instead of becoming collateral of its own (the order's row is locked by matching,
    so an acceptance financing the order at the same moment is either seen here or waits
    and then finds the receivable)."""
    db.session.flush()
    by_order = {r.order_id: r for r in receivables}
    financed = db.session.execute(select(Encumbrance.asset_id).where(
        Encumbrance.asset_kind == AssetKind.ORDER, Encumbrance.asset_id.in_(list(by_order)),
        Encumbrance.status == EncumbranceStatus.ACTIVE)).scalars().all()
    for order_id in financed:
        registry.carry_forward((AssetKind.ORDER, order_id),
                               (AssetKind.RECEIVABLE, by_order[order_id].id),
                               reason="the financed order shipped and became a receivable")


def _lock_financed_order(order_id: int) -> None:
    db.session.execute(select(Order.id).where(Order.id == order_id).with_for_update())


def _lock_financed_receivable(receivable_id: int) -> None:
    db.session.execute(select(Receivable.id).where(Receivable.id == receivable_id)
                       .with_for_update())


def _order_label(order_id: int) -> str:
    number = db.session.execute(select(Order.order_no).where(Order.id == order_id)).scalar()
    return gettext("Order %(number)s", number=number or order_id)


def _receivable_label(receivable_id: int) -> str:
    number = db.session.execute(select(Order.order_no).join(
        Receivable, Receivable.order_id == Order.id).where(Receivable.id == receivable_id)
    ).scalar()
    return gettext("Receivable of order %(number)s", number=number or receivable_id)


registry.register_asset_type(AssetKind.ORDER, registry.AssetType(
    describe=_order_label, lock=_lock_financed_order))
registry.register_asset_type(AssetKind.RECEIVABLE, registry.AssetType(
    describe=_receivable_label, lock=_lock_financed_receivable))


# --------------------------------------------------------------------------- documents

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
    """Judge one order now (``ingest`` does this for every order a batch touches)."""
    db.session.flush()
    changes: dict[int, list[dict]] = {}
    _evaluate_orders([order.id], actor, changes)
    _record_verdict_changes(changes, actor, order)
    _expire_loaded_documents()
    return db.session.execute(select(MatchVerdict).where(MatchVerdict.order_id == order.id)
                              ).scalar_one()


def settled_amount(payments: Iterable[Payment], currency: str) -> Decimal:
    return sum((p.amount for p in payments if p.currency == currency), Decimal(0))


def outstanding(receivable: Receivable) -> Decimal:
    payments, _, _ = documents_for(receivable.order)
    return max(receivable.amount - settled_amount(payments, receivable.currency), Decimal(0))


def verdict_reasons(verdict: MatchVerdict) -> list[dict]:
    return json.loads(verdict.reasons or "[]")
