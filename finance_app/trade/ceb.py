"""Reading China Customs cross-border e-commerce (CEB) messages.

``parse_message(data)`` reads one message (the root element ``ceb:CEBnnnMessage``) and
returns its documents (orders, payments, waybills, inventories) in one neutral shape,
each accepted or rejected on its own. It touches no database.

Filed here: export CEB303 (Order), CEB403 (Receipts, the payment received), CEB505
(Logistics, the waybill), CEB603 (Inventory); import CEB311 (Order), CEB411 (Payment),
CEB511 (Logistics), CEB621 (Inventory). Customs receipts and the other message types are
refused as a whole.

What is refused as a whole (``CebFileError``): more than ``max_bytes``; a DOCTYPE or
ENTITY declaration anywhere (entity bombs, external entities: refused before parsing, so
nothing is expanded or fetched); UTF-16/32 files (CEB messages are UTF-8; a UTF-8 byte
order mark is fine); anything not well-formed; a root outside the CEB namespace; a type
not filed here; a message without documents.

Schemas. Messages are validated against the official schemas shipped in ``trade/xsd``:
the 202205 set first (the current specification); when the message has rejected documents
under 202205, the 2018 set (announcement No. 113) is tried and used if it rejects fewer
documents, so a message written to the older specification (longer codes were allowed, for
example) is judged by it. ``ParsedMessage.schema_version`` says which set was used.

Per document. The whole message is validated once; each schema error is attributed by its
node path to the document (``Order``, ``Receipts``, ...) that contains it. Errors outside
every document (the envelope: ``BaseTransfer``, signature, attributes of the root) are
message warnings, not rejections. When a document is itself out of place (more than 100
in a message, or after ``BaseTransfer``) libxml2 stops checking the siblings that follow,
so those documents are validated again, 100 at a time, inside a copy of the envelope. Every
error names the element, e.g. ``goodsValue: '1.123456' has more than 5 decimals`` or
``price (OrderList 2): must not be negative (got -3)``.

Business checks the schema cannot express: amounts, quantities and weights must not be
negative; currency and country codes must be known (``codes.py``); dates must be real
dates; ``appType`` must be 1, 2 or 3; an inventory's ``ieFlag`` must match the direction.

Values: strings are stripped, empty elements give None; decimals are ``Decimal`` exactly as
written; currencies are ISO 4217, countries ISO 3166 alpha-2; ``YYYYMMDDhhmmss`` times are
China Standard Time in the message and become naive UTC datetimes here (the platform's
convention, see ``clock``); ``YYYYMMDD`` dates stay calendar dates.
"""
from __future__ import annotations

import re
import threading
from copy import deepcopy
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from functools import cache
from typing import Any, Callable

from lxml import etree

from finance_app.trade.codes import UnknownCode, country_from_customs, currency_from_customs

CEB_NS = "http://www.chinaport.gov.cn/ceb"
_C = "{" + CEB_NS + "}"
_CL = len(_C)
DEFAULT_MAX_BYTES = 20 * 1024 * 1024
MAX_DOCUMENTS = 100          # per message, as both schema sets allow
MAX_ERRORS_PER_DOCUMENT = 20
MAX_WARNINGS = 50
_CST = timedelta(hours=8)    # China Standard Time, no daylight saving

XSD_DIR = Path(__file__).parent / "xsd"
SCHEMA_FILES = {
    ("202205", "export"): XSD_DIR / "202205" / "ceb_export_202205.xsd",
    ("202205", "import"): XSD_DIR / "202205" / "ceb_import_202205.xsd",
    ("2018", "export"): XSD_DIR / "2018_113" / "ceb_export_2018.xsd",
    ("2018", "import"): XSD_DIR / "2018_113" / "ceb_import_2018.xsd",
}
PREFERRED_SCHEMA, FALLBACK_SCHEMA = "202205", "2018"


class CebFileError(ValueError):
    """The file as a whole cannot be read as a CEB message filed on this platform."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class ParsedDocument:
    kind: str                    # "order" | "payment" | "waybill" | "inventory"
    index: int                   # 1-based position among the message's documents
    guid: str | None
    app_type: str | None         # "1" new, "2" change, "3" delete
    fields: dict[str, Any]
    lines: list[dict]
    errors: list[str]            # empty: accepted
    filer_codes: dict[str, str | None]

    @property
    def accepted(self) -> bool:
        return not self.errors


@dataclass(frozen=True)
class ParsedMessage:
    message_type: str            # "CEB303"
    direction: str               # "export" | "import"
    documents: list[ParsedDocument]
    warnings: list[str]
    schema_version: str = PREFERRED_SCHEMA   # "202205" or "2018"
    message_guid: str | None = None
    sender_code: str | None = None           # BaseTransfer/copCode

    @property
    def accepted(self) -> list[ParsedDocument]:
        return [d for d in self.documents if d.accepted]

    @property
    def rejected(self) -> list[ParsedDocument]:
        return [d for d in self.documents if not d.accepted]


# --------------------------------------------------------------------------- field maps

S, DEC, INT, TIME, DATE, CUR, CTY = "str", "dec", "int", "time", "date", "cur", "cty"

_RENAMES = {
    "acturalPaid": "actual_paid",        # sic in the specification
    "amountPaid": "amount", "charge": "amount",
    "payNo": "pay_transaction_id",
    "accountingDate": "pay_time",        # receipts: when the money arrived
    "telephone": "payer_telephone",
    "grossWeight": "weight",             # waybills only; inventories keep gross_weight
    "declTime": "declare_date",
    "fCurrency": "freight_currency", "fFlag": "freight_flag",
    "iCurrency": "insured_fee_currency", "iFlag": "insured_fee_flag",
    "POD": "pod",
}


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def _fields(conversions: dict[str, str], **renames: str) -> dict[str, tuple[str, str]]:
    """XML element name -> (field name, conversion)."""
    return {name: (renames.get(name) or _RENAMES.get(name) or _snake(name), conv)
            for name, conv in conversions.items()}


_DOC_COMMON = {"guid": S, "appType": S, "appTime": TIME, "appStatus": S, "note": S}

_ORDER_HEAD = _fields(_DOC_COMMON | {
    "orderType": S, "orderNo": S, "ebpCode": S, "ebpName": S, "ebcCode": S, "ebcName": S,
    "goodsValue": DEC, "freight": DEC, "discount": DEC, "taxTotal": DEC, "acturalPaid": DEC,
    "currency": CUR, "buyerRegNo": S, "buyerName": S, "buyerTelephone": S, "buyerIdType": S,
    "buyerIdNumber": S, "payCode": S, "payName": S, "payTransactionId": S,
    "batchNumbers": S, "consignee": S, "consigneeTelephone": S, "consigneeAddress": S,
    "consigneeDistrict": S})
_ORDER_LINE = _fields({
    "gnum": INT, "itemNo": S, "itemName": S, "gmodel": S, "itemDescribe": S, "barCode": S,
    "unit": S, "qty": DEC, "price": DEC, "totalPrice": DEC, "currency": CUR, "country": CTY,
    "note": S})
_PAYMENT = _fields(_DOC_COMMON | {
    "orderNo": S, "ebpCode": S, "ebpName": S, "ebcCode": S, "ebcName": S, "payCode": S,
    "payName": S, "payNo": S, "payTransactionId": S, "payerIdType": S, "payerIdNumber": S,
    "payerName": S, "telephone": S, "amountPaid": DEC, "charge": DEC, "currency": CUR,
    "payTime": TIME, "accountingDate": TIME})
_WAYBILL = _fields(_DOC_COMMON | {
    "logisticsCode": S, "logisticsName": S, "logisticsNo": S, "billNo": S, "orderNo": S,
    "freight": DEC, "insuredFee": DEC, "currency": CUR, "weight": DEC, "grossWeight": DEC,
    "packNo": INT, "goodsInfo": S, "consignee": S, "consigneeAddress": S,
    "consigneeTelephone": S, "ebcCode": S, "ebcName": S, "ebcTelephone": S})
_INVENTORY_HEAD = _fields(_DOC_COMMON | {
    "customsCode": S, "ebpCode": S, "ebpName": S, "orderNo": S, "logisticsCode": S,
    "logisticsName": S, "logisticsNo": S, "copNo": S, "preNo": S, "invtNo": S, "ieFlag": S,
    "portCode": S, "ieDate": DATE, "declTime": DATE, "statisticsFlag": S, "agentCode": S,
    "agentName": S, "ebcCode": S, "ebcName": S, "ownerCode": S, "ownerName": S,
    "iacCode": S, "iacName": S, "areaCode": S, "areaName": S, "assureCode": S, "emsNo": S,
    "buyerIdType": S, "buyerIdNumber": S, "buyerName": S, "buyerTelephone": S,
    "consigneeAddress": S, "tradeMode": S, "trafMode": S, "trafName": S, "trafNo": S,
    "voyageNo": S, "billNo": S, "totalPackageNo": S, "loctNo": S, "licenseNo": S,
    "country": CTY, "POD": S, "freight": DEC, "fCurrency": CUR, "fFlag": S,
    "insuredFee": DEC, "iCurrency": CUR, "iFlag": S, "currency": CUR, "wrapType": S,
    "packNo": INT, "grossWeight": DEC, "netWeight": DEC}, grossWeight="gross_weight")
_INVENTORY_LINE = _fields({
    "gnum": INT, "itemNo": S, "itemRecordNo": S, "itemName": S, "gcode": S, "gname": S,
    "gmodel": S, "barCode": S, "country": CTY, "tradeCountry": CTY, "currency": CUR,
    "qty": DEC, "qty1": DEC, "qty2": DEC, "unit": S, "unit1": S, "unit2": S, "price": DEC,
    "totalPrice": DEC, "note": S})

# guid and appType are attributes of the document, not fields.
_NOT_FIELDS = {"guid", "app_type"}


@dataclass(frozen=True)
class _Spec:
    message_type: str
    direction: str
    kind: str
    doc_tag: str
    head_tag: str | None                 # None: the document element holds the fields
    line_tag: str | None
    head_map: dict[str, tuple[str, str]]
    line_map: dict[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def field_names(self) -> list[str]:
        names = dict.fromkeys(name for name, _ in self.head_map.values())
        return [n for n in names if n not in _NOT_FIELDS] + list(_DERIVED[self.kind])

    @property
    def line_names(self) -> list[str]:
        return list(dict.fromkeys(name for name, _ in self.line_map.values()))


# Fields every document of a kind has besides its elements, filled in by ``_derive``.
_DERIVED = {
    "order": ("consignee_country", "trade_mode"),
    "payment": (),
    "waybill": (),
    "inventory": ("declare_time", "total_value"),
}
FILER_FIELDS = {
    "order": ("ebc_code",),
    "payment": ("pay_code", "ebc_code"),
    "waybill": ("logistics_code",),
    "inventory": ("agent_code", "ebc_code"),
}

SPECS = {spec.message_type: spec for spec in (
    _Spec("CEB303", "export", "order", "Order", "OrderHead", "OrderList",
          _ORDER_HEAD, _ORDER_LINE),
    _Spec("CEB403", "export", "payment", "Receipts", None, None, _PAYMENT),
    _Spec("CEB505", "export", "waybill", "Logistics", None, None, _WAYBILL),
    _Spec("CEB603", "export", "inventory", "Inventory", "InventoryHead", "InventoryList",
          _INVENTORY_HEAD, _INVENTORY_LINE),
    _Spec("CEB311", "import", "order", "Order", "OrderHead", "OrderList",
          _ORDER_HEAD, _ORDER_LINE),
    _Spec("CEB411", "import", "payment", "Payment", "PaymentHead", None, _PAYMENT),
    _Spec("CEB511", "import", "waybill", "Logistics", "LogisticsHead", None, _WAYBILL),
    _Spec("CEB621", "import", "inventory", "Inventory", "InventoryHead", "InventoryList",
          _INVENTORY_HEAD, _INVENTORY_LINE),
)}

_NUMERIC_ELEMENTS = {name: conv for mapping in (
    _ORDER_HEAD, _ORDER_LINE, _PAYMENT, _WAYBILL, _INVENTORY_HEAD, _INVENTORY_LINE)
    for name, (_, conv) in mapping.items() if conv in (DEC, INT)}



# --------------------------------------------------------------------------- conversions

class _Bad(ValueError):
    """A value the business rules refuse; ``value`` is kept in the fields regardless."""

    def __init__(self, message: str, value: Any = None):
        super().__init__(message)
        self.value = value


def _decimal(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise _Bad(f"'{text}' is not a number") from None
    if not value.is_finite():
        raise _Bad(f"'{text}' is not a number")
    if value < 0:
        raise _Bad(f"must not be negative (got {text})", value)
    return value


def _int(text: str) -> int:
    if text.isascii() and text.isdigit():
        return int(text)
    digits = text[1:] if text[:1] in ("+", "-") else text
    if not digits or not digits.isascii() or not digits.isdigit():
        raise _Bad(f"'{text}' is not a whole number")
    value = int(text)
    if value < 0:
        raise _Bad(f"must not be negative (got {text})", value)
    return value


def _time(text: str) -> datetime:
    if len(text) != 14 or not text.isascii() or not text.isdigit():
        raise _Bad(f"'{text}' is not a date and time in the form YYYYMMDDhhmmss")
    try:
        local = datetime(int(text[:4]), int(text[4:6]), int(text[6:8]),
                         int(text[8:10]), int(text[10:12]), int(text[12:14]))
    except ValueError:
        raise _Bad(f"'{text}' is not a real date and time (YYYYMMDDhhmmss)") from None
    return local - _CST


def _date(text: str) -> date:
    if len(text) != 8 or not text.isascii() or not text.isdigit():
        raise _Bad(f"'{text}' is not a date in the form YYYYMMDD")
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        raise _Bad(f"'{text}' is not a real date (YYYYMMDD)") from None


def _currency(text: str) -> str:
    try:
        return currency_from_customs(text)
    except UnknownCode as exc:
        raise _Bad(str(exc).rstrip(".")) from None


def _country(text: str) -> str:
    try:
        return country_from_customs(text)
    except UnknownCode as exc:
        raise _Bad(str(exc).rstrip(".")) from None


_CONVERT: dict[str, Callable[[str], Any]] = {
    DEC: _decimal, INT: _int, TIME: _time, DATE: _date, CUR: _currency, CTY: _country}


# --------------------------------------------------------------------------- parsing

_local = threading.local()   # lxml parsers and schemas are not shared between threads


def _parser() -> etree.XMLParser:
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = _local.parser = etree.XMLParser(
            resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
            remove_blank_text=True)
    return parser


def _schema(version: str, direction: str) -> etree.XMLSchema:
    schemas = getattr(_local, "schemas", None)
    if schemas is None:
        schemas = _local.schemas = {}
    key = (version, direction)
    if key not in schemas:
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
        schemas[key] = etree.XMLSchema(etree.parse(str(SCHEMA_FILES[key]), parser))
    return schemas[key]


_XS = "{http://www.w3.org/2001/XMLSchema}"


@cache
def _shape(version: str, direction: str) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """From the schema: element name -> the children it may hold, and those it must hold.
    Lets an error say "required element is missing" only when it is."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    tree = etree.parse(str(SCHEMA_FILES[(version, direction)]), parser)
    allowed: dict[str, set[str]] = {}
    required: dict[str, set[str]] = {}
    for parent in tree.iter(_XS + "element"):
        name = parent.get("name")
        sequence = parent.find(f"{_XS}complexType/{_XS}sequence")
        if name is None or sequence is None:
            continue
        for child in sequence.iterchildren(_XS + "element"):
            child_name = (child.get("name") or child.get("ref", "")).rpartition(":")[2]
            allowed.setdefault(name, set()).add(child_name)
            if child.get("minOccurs", "1") != "0":
                required.setdefault(name, set()).add(child_name)
    return allowed, required


_UTF8_BOM = b"\xef\xbb\xbf"
_WIDE_STARTS = (b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff", b"\x00<", b"<\x00")


def _refuse_unsafe(data: bytes) -> None:
    if data.startswith(_WIDE_STARTS):
        raise CebFileError("The file is UTF-16 or UTF-32 encoded; CEB messages are UTF-8.")
    for marker in (b"<!DOCTYPE", b"<!ENTITY"):
        if marker in data:
            raise CebFileError(
                "The file contains a DOCTYPE or ENTITY declaration. CEB messages never "
                "declare them, and such files are refused unread (entity expansion and "
                "external entities are a security risk).")


def _read_root(data: bytes) -> etree._Element:
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        raise CebFileError(f"The file is not well-formed XML: {exc.msg}.") from None
    docinfo = root.getroottree().docinfo
    if docinfo.internalDTD is not None or docinfo.doctype:
        raise CebFileError("The file contains a DOCTYPE declaration; CEB messages never do.")
    return root


def _spec_for(root: etree._Element) -> _Spec:
    qname = etree.QName(root)
    if qname.namespace != CEB_NS:
        where = f"namespace {qname.namespace}" if qname.namespace else "no namespace"
        raise CebFileError(f"The root element <{qname.localname}> is in {where}; a CEB "
                           f"message must be in the namespace {CEB_NS}.")
    match = re.fullmatch(r"CEB(\d{3})(Message)?", qname.localname)
    if match is None:
        raise CebFileError(f"The root element <{qname.localname}> is not a CEB message "
                           "(CEBnnnMessage).")
    message_type = f"CEB{match[1]}"
    if message_type not in SPECS:
        raise CebFileError(f"Message type {message_type} is not filed on this platform "
                           f"(filed here: {', '.join(sorted(SPECS))}).")
    if not match[2]:
        raise CebFileError(f"The root element must be named {message_type}Message, not "
                           f"{qname.localname}.")
    return SPECS[message_type]


def parse_message(data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> ParsedMessage:
    """Read one CEB message; raise ``CebFileError`` if it cannot be read as a whole."""
    if isinstance(data, (bytearray, memoryview)):
        data = bytes(data)
    if not isinstance(data, bytes):
        raise TypeError("parse_message reads bytes, not text")
    if len(data) > max_bytes:
        raise CebFileError(f"The file is {len(data):,} bytes; a message may be at most "
                           f"{max_bytes:,} bytes.")
    if data.startswith(_UTF8_BOM):
        data = data[len(_UTF8_BOM):]
    if not data.strip():
        raise CebFileError("The file is empty.")
    _refuse_unsafe(data)
    root = _read_root(data)
    spec = _spec_for(root)

    doc_tag = _C + spec.doc_tag
    documents = [el for el in root if el.tag == doc_tag]
    envelope = [el for el in root if isinstance(el.tag, str) and el.tag != doc_tag]
    if not documents:
        raise CebFileError(f"The {spec.message_type} message holds no {spec.doc_tag} "
                           "documents.")

    result = _validate(root, documents, envelope, spec, PREFERRED_SCHEMA)
    if result.doc_errors:
        fallback = _validate(root, documents, envelope, spec, FALLBACK_SCHEMA)
        if len(fallback.doc_errors) < len(result.doc_errors):
            result = fallback

    parsed = [_document(el, i, spec, result.doc_errors.get(i, []), result.flagged)
              for i, el in enumerate(documents, start=1)]
    warnings = result.warnings
    if len(warnings) > MAX_WARNINGS:
        warnings = warnings[:MAX_WARNINGS] + [f"... and {len(warnings) - MAX_WARNINGS} more "
                                              "warnings"]
    sender = None
    for el in envelope:
        if el.tag == _C + "BaseTransfer":
            sender = _text(el.find(_C + "copCode"))
            break
    return ParsedMessage(spec.message_type, spec.direction, parsed, warnings,
                         result.version, root.get("guid"), sender)


def _text(el: etree._Element | None) -> str | None:
    if el is None or not el.text:
        return None
    return el.text.strip() or None


# --------------------------------------------------------------------------- schema errors

@dataclass
class _SchemaResult:
    version: str
    doc_errors: dict[int, list[str]] = field(default_factory=dict)
    # (document index, line position or 0, element name) with a schema error: the
    # business checks stay quiet about them.
    flagged: set[tuple[int, int, str]] = field(default_factory=set)
    warnings: list[str] = field(default_factory=list)


_SEGMENT = re.compile(r"(?:([^:\[\]]+):)?([^:\[\]]+)(?:\[(\d+)\])?")
_NOT_EXPECTED = etree.ErrorTypes.SCHEMAV_ELEMENT_CONTENT


def _localname(el: etree._Element) -> str:
    return el.tag.rpartition("}")[2]


class _PathIndex:
    """Resolves libxml2 node paths (``/ceb:X/ceb:Order[3]/ceb:OrderHead``, or ``/*/*[3]``
    when the namespace is the default one) to elements; the root's children are indexed
    once, so a message full of errors costs no quadratic time."""

    def __init__(self, root: etree._Element):
        self.root = root
        self.children = [el for el in root if isinstance(el.tag, str)]
        self.named: dict[tuple[str | None, str], list[etree._Element]] = {}
        for el in self.children:
            self.named.setdefault((el.prefix, _localname(el)), []).append(el)

    def resolve(self, path: str | None) -> list[etree._Element] | None:
        if not path or not path.startswith("/"):
            return None
        steps = path[1:].split("/")
        chain = [self.root]
        for depth, step in enumerate(steps[1:], start=1):
            match = _SEGMENT.fullmatch(step)
            if match is None:
                return None
            prefix, name, position = match[1], match[2], int(match[3] or 1)
            if depth == 1:
                pool = (self.children if name == "*" and prefix is None
                        else self.named.get((prefix, name), []))
            else:
                pool = [el for el in chain[-1] if isinstance(el.tag, str) and (
                    (name == "*" and prefix is None)
                    or (el.prefix == prefix and _localname(el) == name))]
            if position > len(pool):
                return None
            chain.append(pool[position - 1])
        return chain


def _validate(root: etree._Element, documents: list[etree._Element],
              envelope: list[etree._Element], spec: _Spec, version: str) -> _SchemaResult:
    result = _SchemaResult(version)
    schema = _schema(version, spec.direction)
    if schema.validate(root):
        return result
    index = {el: i for i, el in enumerate(documents, start=1)}
    paths = _PathIndex(root)
    redo_from, why = None, ""   # libxml2 stops checking siblings after a misplaced document
    for entry in schema.error_log:
        chain = paths.resolve(entry.path)
        if chain is not None and len(chain) >= 2 and chain[1] in index:
            i = index[chain[1]]
            if len(chain) == 2 and entry.type == _NOT_EXPECTED and "not expected" in entry.message:
                if redo_from is None or i < redo_from:
                    redo_from, why = i, _expected_phrase(entry.message)
                continue
            _add_doc_error(result, i, entry, chain, spec)
        else:
            result.warnings.append(_envelope_warning(entry, chain))
    if redo_from is not None:
        last = len(documents)
        which = (f"{spec.doc_tag} {redo_from}" if redo_from == last
                 else f"{spec.doc_tag} documents {redo_from} to {last} are")
        result.warnings.append(
            f"Envelope: {which}{' is' if redo_from == last else ''} out of place "
            f"({why or 'not expected'}): a message holds at most {MAX_DOCUMENTS} documents, "
            "all before BaseTransfer")
        for i in range(redo_from, last + 1):
            result.doc_errors.pop(i, None)
        for start in range(redo_from, last + 1, MAX_DOCUMENTS):
            batch = range(start, min(start + MAX_DOCUMENTS, last + 1))
            _revalidate(result, batch, documents, root, envelope, spec, schema)
    return result


def _revalidate(result: _SchemaResult, batch: range, documents: list[etree._Element],
                root: etree._Element, envelope: list[etree._Element], spec: _Spec,
                schema: etree.XMLSchema) -> None:
    """Validate up to 100 documents inside a copy of the message's envelope."""
    wrapper = etree.Element(root.tag, attrib=dict(root.attrib), nsmap=root.nsmap)
    copies = {}
    for i in batch:
        copy = deepcopy(documents[i - 1])
        copies[copy] = i
        wrapper.append(copy)
    for el in envelope:
        wrapper.append(deepcopy(el))
    if schema.validate(wrapper):
        return
    paths = _PathIndex(wrapper)
    for entry in schema.error_log:
        chain = paths.resolve(entry.path)
        if chain is not None and len(chain) >= 2 and chain[1] in copies:
            _add_doc_error(result, copies[chain[1]], entry, chain, spec)


def _add_doc_error(result: _SchemaResult, i: int, entry: Any, chain: list[etree._Element],
                   spec: _Spec) -> None:
    text, names, line = _translate(entry, chain, spec, _shape(result.version, spec.direction))
    result.doc_errors.setdefault(i, []).append(text)
    for name in names:
        result.flagged.add((i, line, name))


def _line_position(chain: list[etree._Element], spec: _Spec) -> int:
    """1-based position of the line (OrderList, InventoryList) the error is in, else 0."""
    if spec.line_tag is None or len(chain) < 3 or chain[2].tag != _C + spec.line_tag:
        return 0
    line = chain[2]
    position = 0
    for el in chain[1]:
        if el.tag == line.tag:
            position += 1
            if el is line:
                return position
    return 0


_NAME_IN_BRACES = re.compile(r"\{[^}]*\}([\w.-]+)")
_EXPECTED = re.compile(r"Expected is (?:one of )?\( ([^)]*) \)")


def _expected_names(message: str) -> list[str]:
    match = _EXPECTED.search(message)
    if match is None:
        return []
    return [_NAME_IN_BRACES.sub(r"\1", name.strip()) for name in match[1].split(",")]


def _expected_phrase(message: str) -> str:
    names = _expected_names(message)
    if not names:
        return ""
    return f"expected {names[0]}" if len(names) == 1 else f"expected one of {', '.join(names)}"


_FACETS: list[tuple[re.Pattern, Callable[[re.Match, str], str]]] = [
    (re.compile(r"\[facet 'fractionDigits'\] The value '(.*)' has more fractional digits "
                r"than are allowed \('(\d+)'\)"),
     lambda m, _: f"'{m[1]}' has more than {m[2]} decimals"),
    (re.compile(r"\[facet 'totalDigits'\] The value '(.*)' has more digits than are "
                r"allowed \('(\d+)'\)"),
     lambda m, _: f"'{m[1]}' has more than {m[2]} digits"),
    (re.compile(r"\[facet 'length'\] The value(?: '.*')? has a length of '(\d+)'; this "
                r"differs from the allowed length of '(\d+)'"),
     lambda m, _: f"must be exactly {m[2]} characters long (it has {m[1]})"),
    (re.compile(r"\[facet 'maxLength'\] The value(?: '.*')? has a length of '(\d+)'; this "
                r"exceeds the allowed maximum length of '(\d+)'"),
     lambda m, _: f"is too long: {m[1]} characters, at most {m[2]} allowed"),
    (re.compile(r"\[facet 'minLength'\] The value(?: '.*')? has a length of '(\d+)'; this "
                r"underruns the allowed minimum length of '(\d+)'"),
     lambda m, _: ("must not be empty" if m[1] == "0"
                   else f"is too short: {m[1]} characters, at least {m[2]} required")),
    (re.compile(r"\[facet 'enumeration'\] The value '(.*)' is not an element of the set "
                r"\{(.*)\}"),
     lambda m, _: f"'{m[1]}' is not one of the allowed values ({m[2]})"),
    (re.compile(r"\[facet 'pattern'\] The value '(.*)' is not accepted by the pattern"),
     lambda m, _: f"'{m[1]}' is not in the required format"),
    (re.compile(r"\[facet '(min|max)(In|Ex)clusive'\] The value '(.*)' is (?:less|greater) "
                r"than (?:or equal to )?the (?:minimum|maximum) value allowed \('(.*)'\)"),
     lambda m, _: (f"'{m[3]}' is {'below the minimum' if m[1] == 'min' else 'above the maximum'}"
                   f" {m[4]}")),
    (re.compile(r"The (?:actual )?value '(.*)' does not match the fixed value constraint "
                r"'(.*)'"),
     lambda m, _: f"must be {m[2]} (got '{m[1]}')"),
    (re.compile(r"'(.*)' is not a valid value of the (?:local )?(?:atomic|union|list) type"),
     lambda m, name: (f"'{m[1]}' is not a number" if _NUMERIC_ELEMENTS.get(name) == DEC
                      else f"'{m[1]}' is not a whole number" if _NUMERIC_ELEMENTS.get(name) == INT
                      else f"'{m[1]}' is not a valid value")),
    (re.compile(r"Character content other than whitespace is not allowed"),
     lambda m, _: "text is not allowed here (this element holds elements only)"),
    (re.compile(r"Element content is not allowed"),
     lambda m, _: "must hold a plain value, not elements"),
]


_PREFIX = re.compile(r"^Element '[^']*'(?:, attribute '[^']*')?: ")


def _plain(message: str) -> str:
    """libxml2's message without the element prefix and namespace URIs."""
    return _NAME_IN_BRACES.sub(r"\1", _PREFIX.sub("", message)).rstrip(".")


def _translate(entry: Any, chain: list[etree._Element], spec: _Spec,
               shape: tuple[dict[str, set[str]], dict[str, set[str]]]
               ) -> tuple[str, list[str], int]:
    """(English sentence naming the element, element names to flag, line position)."""
    leaf = _localname(chain[-1])
    line = _line_position(chain, spec)
    where = f" ({spec.line_tag} {line})" if line else ""
    message = entry.message
    if entry.type == _NOT_EXPECTED:
        expected = _expected_names(message)
        if "Missing child element" in message:
            if len(expected) == 1:
                return f"{expected[0]}{where}: required element is missing", expected, line
            return (f"{leaf}{where}: a required element is missing (one of "
                    f"{', '.join(expected)})", expected, line)
        if "not expected" in message:
            allowed, required = shape
            parent = _localname(chain[-2])
            if leaf not in allowed.get(parent, ()):
                return (f"{leaf}{where}: unknown element, not part of {parent}", [leaf], line)
            siblings = {_localname(el) for el in chain[-2] if isinstance(el.tag, str)}
            if (len(expected) == 1 and expected[0] not in siblings
                    and expected[0] in required.get(parent, ())):
                return (f"{expected[0]}{where}: required element is missing (found {leaf} "
                        "in its place)", [expected[0], leaf], line)
            phrase = _expected_phrase(message)
            return (f"{leaf}{where}: element not allowed at this position"
                    f"{f' ({phrase})' if phrase else ''}", [leaf, *expected], line)
    body = _PREFIX.sub("", message)
    for pattern, render in _FACETS:
        match = pattern.search(body)
        if match:
            return f"{leaf}{where}: {render(match, leaf)}", [leaf], line
    return f"{leaf}{where}: {_plain(message)}", [leaf], line


def _envelope_warning(entry: Any, chain: list[etree._Element] | None) -> str:
    if chain is None:
        return f"Envelope: {_plain(entry.message)}"
    parts = []
    for parent, el in zip(chain, chain[1:]):
        same = [c for c in parent if c.tag == el.tag]
        name = _localname(el)
        parts.append(f"{name} {same.index(el) + 1}" if len(same) > 1 else name)
    subject = "/".join(parts) or _localname(chain[0])
    if entry.type == _NOT_EXPECTED:
        expected = _expected_names(entry.message)
        parent = chain[-2] if "not expected" in entry.message and len(chain) > 1 else chain[-1]
        present = {_localname(el) for el in parent if isinstance(el.tag, str)}
        if len(expected) == 1 and expected[0] not in present:
            return f"Envelope: {expected[0]} is missing"
        if len(chain) == 1 and "BaseTransfer" not in present:
            # libxml2 names the repeatable document as expected; the envelope lacks more
            return "Envelope: BaseTransfer is missing"
        if "not expected" in entry.message:
            phrase = _expected_phrase(entry.message)
            return f"Envelope: {subject} is not allowed here{f' ({phrase})' if phrase else ''}"
    return f"Envelope: {subject}: {_plain(entry.message)}"


# --------------------------------------------------------------------------- documents

@dataclass(frozen=True)
class _Plan:
    """What reading a kind of document needs, worked out once per message type."""
    fields: dict[str, None]              # every field, None until read
    line_fields: dict[str, None]
    head: dict[Any, tuple]               # tag -> (name, field, converter, is_meta)
    line: dict[Any, tuple]


def _tags(mapping: dict[str, tuple[str, str]]) -> dict[Any, tuple]:
    """Element tag -> (element name, field, converter or None, is meta); an element
    counts with or without the CEB namespace, as in ``_fill``'s fallback."""
    tags: dict[Any, tuple] = {}
    for name, (key, conv) in mapping.items():
        entry = (name, key, None if conv == S else _CONVERT[conv], key in _NOT_FIELDS)
        tags[_C + name] = tags[name] = entry
    return tags


_PLANS: dict[str, _Plan] = {}


def _plan(spec: _Spec) -> _Plan:
    plan = _PLANS.get(spec.message_type)
    if plan is None:
        plan = _PLANS[spec.message_type] = _Plan(
            dict.fromkeys(spec.field_names), dict.fromkeys(spec.line_names),
            _tags(spec.head_map), _tags(spec.line_map))
    return plan


def _document(el: etree._Element, i: int, spec: _Spec, schema_errors: list[str],
              flagged: set[tuple[int, int, str]]) -> ParsedDocument:
    plan = _plan(spec)
    errors = list(schema_errors)
    fields: dict[str, Any] = dict(plan.fields)
    extra: dict[str, Any] = {}
    meta: dict[str, Any] = {}
    if spec.head_tag is None:
        head = el
    else:
        head = el.find(_C + spec.head_tag)
    if head is not None:
        _fill(head, plan.head, fields, extra, i, 0, "", flagged, errors, meta)
    lines: list[dict] = []
    if spec.line_tag is not None:
        line_tag = _C + spec.line_tag
        template = plan.line_fields
        position = 0
        for child in el:
            if child.tag != line_tag:
                continue
            position += 1
            line = dict(template)
            line_extra: dict[str, Any] = {}
            _fill(child, plan.line, line, line_extra, i, position,
                  f" ({spec.line_tag} {position})", flagged, errors, None)
            line["extra"] = line_extra
            lines.append(line)
    _derive(spec, fields, lines)
    _check(spec, i, fields, meta, flagged, errors)
    fields["extra"] = extra
    if len(errors) > MAX_ERRORS_PER_DOCUMENT:
        errors = errors[:MAX_ERRORS_PER_DOCUMENT] + [
            f"... and {len(errors) - MAX_ERRORS_PER_DOCUMENT} more problems"]
    return ParsedDocument(
        kind=spec.kind, index=i, guid=meta.get("guid"), app_type=meta.get("app_type"),
        fields=fields, lines=lines, errors=errors,
        filer_codes={name: fields.get(name) for name in FILER_FIELDS[spec.kind]})


def _fill(parent: etree._Element, tags: dict[Any, tuple], out: dict, extra: dict, i: int,
          line: int, where: str, flagged: set, errors: list[str], meta: dict | None) -> None:
    for el in parent:
        tag = el.tag
        entry = tags.get(tag)
        if entry is None:
            if isinstance(tag, str) and len(el) == 0:   # not a comment or instruction
                text = el.text
                extra[tag[_CL:] if tag.startswith(_C) else tag] = (
                    text.strip() if text else "") or None
            continue
        name, key, convert, is_meta = entry
        text = el.text
        value = text.strip() if text else ""
        if is_meta and meta is not None:
            meta[key] = value or None
        elif not value:
            out[key] = None
        elif convert is None:
            out[key] = value
        else:
            try:
                out[key] = convert(value)
            except _Bad as exc:
                out[key] = exc.value
                if (i, line, name) not in flagged:
                    errors.append(f"{name}{where}: {exc}")


def _derive(spec: _Spec, fields: dict, lines: list[dict]) -> None:
    if spec.kind == "order":
        # The consignee of an import order is in China by definition; export orders do not
        # name the destination (the inventory's country does).
        fields["consignee_country"] = "CN" if spec.direction == "import" else None
    elif spec.kind == "inventory":
        fields["declare_time"] = fields.get("app_time")
        currencies = {line.get("currency") for line in lines}
        if fields.get("currency") is None and len(currencies) == 1:
            fields["currency"] = currencies.pop()   # export heads carry no goods currency
        totals = [line.get("total_price") for line in lines]
        if (lines and None not in totals and fields.get("currency") is not None
                and all(line.get("currency") == fields["currency"] for line in lines)):
            fields["total_value"] = sum(totals, Decimal(0))


_IE_FLAG = {"export": "E", "import": "I"}


def _check(spec: _Spec, i: int, fields: dict, meta: dict, flagged: set,
           errors: list[str]) -> None:
    app_type = meta.get("app_type")
    if app_type is not None and app_type not in ("1", "2", "3") \
            and (i, 0, "appType") not in flagged:
        errors.append(f"appType: must be 1 (new), 2 (change) or 3 (delete), not '{app_type}'")
    if spec.kind == "inventory":
        flag = fields.get("ie_flag")
        wanted = _IE_FLAG[spec.direction]
        if flag is not None and flag != wanted and (i, 0, "ieFlag") not in flagged:
            errors.append(f"ieFlag: must be {wanted} in an {spec.direction} inventory, "
                          f"not '{flag}'")
