"""CSV and JSON documents, turned into the same neutral shape the CEB parser produces.

A problem with the whole file (not CSV, no header, unknown kind) raises ``FormatError``;
a problem with one row or document comes back on that document's ``errors``, so ingest
rejects it alone and the rest of the batch stands.
"""
from __future__ import annotations

import csv
import io
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from flask_babel import gettext

from finance_app.clock import BUSINESS_TZ
from finance_app.errors import ValidationFailed
from finance_app.money import is_currency
from finance_app.trade.services import SimpleDocument
from finance_app.trade.states import Direction, DocumentKind

MAX_DECIMALS = 5

LINE_COLUMNS = ["gnum", "item_no", "item_name", "unit", "qty", "price", "total_price"]
CSV_COLUMNS: dict[str, list[str]] = {
    "order": ["order_no", "order_type", "ebp_code", "ebp_name", "ebc_code", "ebc_name",
              "trade_mode", "currency", "goods_value", "freight", "discount", "tax_total",
              "actual_paid", "buyer_name", "buyer_id_type", "buyer_id_number", "buyer_reg_no",
              "consignee_country", "pay_code", "pay_transaction_id", "consignee",
              "consignee_address", "consignee_telephone", "payment_term_days", "order_date",
              "app_time", "app_type"] + LINE_COLUMNS,
    "payment": ["order_no", "ebp_code", "ebc_code", "pay_code", "pay_name",
                "pay_transaction_id", "payer_name", "payer_id_type", "payer_id_number",
                "amount", "currency", "pay_time", "app_time", "app_type"],
    "waybill": ["logistics_code", "logistics_name", "logistics_no", "order_no", "consignee",
                "consignee_address", "consignee_telephone", "freight", "currency", "weight",
                "pack_no", "goods_info", "ship_time", "app_time", "app_type"],
    "inventory": ["cop_no", "invt_no", "order_no", "ebp_code", "ebc_code", "agent_code",
                  "logistics_code", "logistics_no", "trade_mode", "country", "currency",
                  "total_value", "declare_time", "app_time", "app_type"],
}
DECIMALS = {"goods_value", "freight", "discount", "tax_total", "actual_paid", "amount",
            "weight", "total_value", "qty", "price", "total_price"}
DATETIMES = {"app_time", "pay_time", "declare_time", "ship_time"}
DATES = {"order_date"}
INTEGERS = {"payment_term_days", "pack_no", "gnum"}
CURRENCIES = {"currency"}
COUNTRIES = {"consignee_country", "country"}
MAX_LENGTH = 250


class FormatError(ValidationFailed):
    code = "bad_file"


def _decimal(name: str, raw: str) -> Decimal:
    try:
        value = Decimal(raw.replace(",", ""))
    except InvalidOperation:
        raise ValueError(gettext("%(field)s: '%(value)s' is not a number.", field=name,
                                 value=raw[:40])) from None
    if not value.is_finite():
        raise ValueError(gettext("%(field)s: '%(value)s' is not a number.", field=name,
                                 value=raw[:40]))
    if -value.as_tuple().exponent > MAX_DECIMALS:
        raise ValueError(gettext("%(field)s: at most %(n)s decimal places.", field=name,
                                 n=MAX_DECIMALS))
    if value < 0:
        raise ValueError(gettext("%(field)s: the amount cannot be negative.", field=name))
    return value


def _datetime(name: str, raw: str) -> datetime:
    """A time as stored: naive UTC. Times without an offset are Beijing time, as in the
    customs messages; an ISO time with an offset is taken at its word."""
    try:
        aware = datetime.fromisoformat(raw)
    except ValueError:
        aware = None
    if aware is not None and aware.tzinfo is not None:
        return aware.astimezone(timezone.utc).replace(tzinfo=None)
    return _local(name, raw).replace(tzinfo=BUSINESS_TZ).astimezone(timezone.utc).replace(
        tzinfo=None)


def _local(name: str, raw: str) -> datetime:
    for fmt in ("%Y%m%d%H%M%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M",
                "%Y-%m-%d", "%Y%m%d"):
        try:
            return datetime.strptime(raw, fmt)
        except ValueError:
            continue
    raise ValueError(gettext("%(field)s: '%(value)s' is not a date and time "
                             "(YYYY-MM-DD HH:MM:SS).", field=name, value=raw[:40]))


def _currency(name: str, raw: str) -> str:
    code = raw.strip().upper()
    if code.isdigit():
        try:
            from finance_app.trade.codes import currency_from_customs
            return currency_from_customs(code)
        except (ImportError, ValueError):
            pass
    if is_currency(code):
        return code
    raise ValueError(gettext("%(field)s: '%(value)s' is not a known currency.", field=name,
                             value=raw[:10]))


def _country(name: str, raw: str) -> str:
    code = raw.strip().upper()
    if code.isdigit():
        try:
            from finance_app.trade.codes import country_from_customs
            return country_from_customs(code)
        except (ImportError, ValueError):
            pass
    import pycountry
    if len(code) == 2 and pycountry.countries.get(alpha_2=code):
        return code
    raise ValueError(gettext("%(field)s: '%(value)s' is not a known country.", field=name,
                             value=raw[:10]))


def convert(name: str, value: Any) -> Any:
    """One field's raw text (or JSON value) as the typed value ingest stores."""
    if value is None:
        return None
    if isinstance(value, float):
        raise ValueError(gettext("%(field)s: send amounts as strings, not floating-point "
                                 "numbers.", field=name))
    if isinstance(value, bool) or isinstance(value, (dict, list)):
        raise ValueError(gettext("%(field)s: expected text.", field=name))
    raw = str(value).strip()
    if raw == "":
        return None
    if "\x00" in raw:
        raise ValueError(gettext("%(field)s: contains a NUL character.", field=name))
    if name in DECIMALS:
        return _decimal(name, raw)
    if name in DATETIMES:
        return _datetime(name, raw)
    if name in DATES:
        return _local(name, raw).date()
    if name in INTEGERS:
        if not raw.isdigit() or len(raw) > 9:
            raise ValueError(gettext("%(field)s: expected a whole number.", field=name))
        return int(raw)
    if name in CURRENCIES:
        return _currency(name, raw)
    if name in COUNTRIES:
        return _country(name, raw)
    if len(raw) > MAX_LENGTH:
        raise ValueError(gettext("%(field)s: at most %(n)s characters.", field=name,
                                 n=MAX_LENGTH))
    return raw


def _kind(value: Any) -> DocumentKind:
    try:
        return DocumentKind(str(value))
    except ValueError:
        raise FormatError(gettext("Choose the kind of document: order, payment, waybill or "
                                  "inventory."), field="kind") from None


def _document(kind: DocumentKind, raw: dict, index: int, direction: str | None) -> SimpleDocument:
    fields: dict[str, Any] = {}
    errors: list[str] = []
    allowed = set(CSV_COLUMNS[kind.value]) - set(LINE_COLUMNS) - {"app_type"}
    for name, value in raw.items():
        if name in ("lines", "app_type", "direction", "guid"):
            continue
        if name not in allowed:
            errors.append(gettext("%(field)s: not a field of a %(kind)s.", field=str(name)[:40],
                                  kind=kind.value))
            continue
        try:
            fields[name] = convert(name, value)
        except ValueError as exc:
            errors.append(str(exc))
    lines = []
    for n, line in enumerate(raw.get("lines") or [], start=1):
        if not isinstance(line, dict):
            errors.append(gettext("lines: line %(n)s is not an object.", n=n))
            continue
        converted = {}
        for name in LINE_COLUMNS:
            try:
                converted[name] = convert(name, line.get(name))
            except ValueError as exc:
                errors.append(f"{gettext('line %(n)s', n=n)}: {exc}")
        for name in ("item_name", "qty", "price", "total_price"):
            if converted.get(name) is None:
                errors.append(gettext("line %(n)s: %(field)s is required.", n=n, field=name))
        lines.append(converted)
    app_type = str(raw.get("app_type") or "1")
    if app_type not in ("1", "2", "3"):
        errors.append(gettext("app_type: 1 (new), 2 (change) or 3 (delete)."))
    doc_direction = raw.get("direction") or direction
    if doc_direction not in (None, Direction.EXPORT.value, Direction.IMPORT.value):
        errors.append(gettext("direction: export or import."))
    elif doc_direction:
        fields["direction"] = doc_direction
    return SimpleDocument(kind.value, fields, lines, app_type=app_type, index=index,
                          guid=str(raw.get("guid"))[:64] if raw.get("guid") else None,
                          errors=errors)


def documents_from_json(payload: Any) -> list[SimpleDocument]:
    """``{"kind": "order", "direction": "export", "documents": [{...}, ...]}``."""
    if not isinstance(payload, dict):
        raise FormatError(gettext("Send a JSON object with kind and documents."), field=None)
    kind = _kind(payload.get("kind"))
    direction = payload.get("direction")
    documents = payload.get("documents")
    if not isinstance(documents, list) or not documents:
        raise FormatError(gettext("documents: give a list of one or more documents."),
                          field="documents")
    if len(documents) > 10_000:
        raise FormatError(gettext("documents: at most 10,000 in one request."),
                          field="documents")
    result = []
    for index, raw in enumerate(documents):
        if not isinstance(raw, dict):
            result.append(SimpleDocument(kind.value, {}, index=index, errors=[
                gettext("Document %(n)s is not an object.", n=index + 1)]))
            continue
        result.append(_document(kind, raw, index, direction))
    return result


def documents_from_csv(kind: str, text: str, *, direction: str | None = None
                       ) -> list[SimpleDocument]:
    """One row a document; for orders, consecutive rows with the same order number are
    the lines of one order."""
    doc_kind = _kind(kind)
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = reader.fieldnames or []
    if not header:
        raise FormatError(gettext("The CSV file is empty or has no header row."), field="file")
    unknown = [h for h in header if h not in CSV_COLUMNS[doc_kind.value] + ["direction"]]
    if unknown:
        raise FormatError(gettext("Unknown columns for a %(kind)s: %(columns)s. Expected: "
                                  "%(expected)s.", kind=doc_kind.value,
                                  columns=", ".join(unknown[:5]),
                                  expected=", ".join(CSV_COLUMNS[doc_kind.value])),
                          field="file")
    groups: list[dict] = []
    try:
        for row in reader:
            if None in row:  # more cells than header columns
                row.pop(None)
            if not any((v or "").strip() for v in row.values()):
                continue
            head = {k: v for k, v in row.items() if k not in LINE_COLUMNS}
            line = {k: v for k, v in row.items() if k in LINE_COLUMNS and (v or "").strip()}
            if (doc_kind is DocumentKind.ORDER and groups
                    and groups[-1].get("order_no") == head.get("order_no")
                    and groups[-1].get("ebp_code") == head.get("ebp_code")):
                groups[-1]["lines"].append(line)
                continue
            head["lines"] = [line] if line else []
            groups.append(head)
    except csv.Error as exc:
        raise FormatError(gettext("The file is not valid CSV: %(detail)s", detail=str(exc)),
                          field="file") from None
    if not groups:
        raise FormatError(gettext("The CSV file has no rows."), field="file")
    return [_document(doc_kind, raw, index, direction) for index, raw in enumerate(groups)]
