"""The dashboard's figures as tables: the same tables the page shows (readable without
JavaScript), the CSV file and the Excel workbook (one sheet a table), with the filters
that made them written first."""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from flask_babel import gettext as _
from openpyxl import Workbook
from openpyxl.styles import Font

from finance_app.financing.forms import KIND_LABELS
from finance_app.financing.states import ProductKind
from finance_app.i18n import country_name
from finance_app.trade.forms import TRADE_MODE_LABELS
from finance_app.trade.states import TradeMode

COUNT, AMOUNT, RATIO, HOURS, TEXT = "count", "amount", "ratio", "hours", "text"


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    kind: str = COUNT


@dataclass(frozen=True)
class Table:
    key: str
    title: str
    columns: list[Column]
    rows: list[dict[str, Any]]


def mode_label(code: str) -> str:
    try:
        return str(TRADE_MODE_LABELS[TradeMode(code)])
    except ValueError:
        return code


def kind_label(code: str) -> str:
    try:
        return str(KIND_LABELS[ProductKind(code)])
    except ValueError:
        return code


def _volume_columns(first: Column, *extra: Column) -> list[Column]:
    return [first, Column("orders", _("Orders")), *extra,
            Column("amount_cny", _("Amount (CNY)"), AMOUNT),
            Column("verified", _("Verified orders")),
            Column("verified_share", _("Share verified"), RATIO)]


def _financing_columns(first: Column, *extra: Column) -> list[Column]:
    return [first, Column("requests", _("Requests")),
            Column("requested_cny", _("Requested (CNY)"), AMOUNT),
            Column("offers", _("Offers")), Column("offered_cny", _("Offered (CNY)"), AMOUNT),
            Column("rejections", _("Rejections")),
            Column("approval_rate", _("Approval rate"), RATIO),
            Column("loans", _("Loans")), Column("lent_cny", _("Lent (CNY)"), AMOUNT), *extra]


def tables(figures: dict) -> list[Table]:
    trade, fin, loans, ins = (figures[k] for k in ("trade", "financing", "loans", "insurance"))
    labelled = lambda rows, label: [{**r, "label": label(r["key"])} for r in rows]  # noqa: E731
    text = lambda key, label: Column(key, label, TEXT)  # noqa: E731
    return [
        Table("volume_by_mode", _("Cross-border e-commerce by trade mode"),
              _volume_columns(text("label", _("Trade mode"))),
              labelled(trade["by_mode"], mode_label)),
        Table("volume_by_month", _("Cross-border e-commerce by month"),
              _volume_columns(text("key", _("Month"))), trade["by_month"]),
        Table("volume_by_country", _("Cross-border e-commerce by destination country"),
              _volume_columns(text("label", _("Destination country"))),
              labelled(trade["by_country"], country_name)),
        Table("volume_by_currency", _("Cross-border e-commerce by currency"),
              _volume_columns(text("key", _("Currency")),
                              Column("amount", _("Amount (in the currency)"), AMOUNT)),
              trade["by_currency"]),
        Table("financing_by_kind", _("Financing by product"),
              _financing_columns(text("label", _("Product"))),
              labelled(fin["by_kind"], kind_label)),
        Table("financing_by_bank", _("Financing by bank"),
              _financing_columns(text("label", _("Bank"))), fin["by_bank"]),
        Table("financing_by_currency", _("Financing by currency"),
              _financing_columns(text("key", _("Currency")),
                                 Column("requested", _("Requested (in the currency)"), AMOUNT),
                                 Column("offered", _("Offered (in the currency)"), AMOUNT),
                                 Column("lent", _("Lent (in the currency)"), AMOUNT)),
              fin["by_currency"]),
        Table("decision_time", _("Time to decision"),
              [Column("decisions", _("Decisions")),
               Column("decision_hours_median", _("Median (hours)"), HOURS),
               Column("decision_hours_mean", _("Mean (hours)"), HOURS)], [fin]),
        Table("loan_quality", _("Loan quality"),
              [text("currency", _("Currency")), Column("loans", _("Live loans")),
               Column("outstanding", _("Outstanding"), AMOUNT),
               Column("overdue", _("Overdue"), AMOUNT),
               Column("npl", _("Non-performing"), AMOUNT),
               Column("outstanding_cny", _("Outstanding (CNY)"), AMOUNT),
               Column("overdue_ratio", _("Overdue ratio"), RATIO),
               Column("npl_ratio", _("Non-performing ratio"), RATIO)],
              [*loans["by_currency"], {**loans, "currency": _("All (CNY)"),
                                       "outstanding": loans["outstanding_cny"],
                                       "overdue": loans["overdue_cny"],
                                       "npl": loans["npl_cny"]}]),
        Table("insurance", _("Export credit insurance"),
              [text("currency", _("Currency")), Column("declarations", _("Declarations")),
               Column("exposure", _("Insured exposure"), AMOUNT),
               Column("premiums", _("Premiums"), AMOUNT),
               Column("claims", _("Claims")), Column("claims_paid", _("Claims paid")),
               Column("indemnity_paid", _("Indemnity paid"), AMOUNT),
               Column("claims_ratio", _("Claims ratio"), RATIO)],
              [*ins["by_currency"], {**ins, "currency": _("All (CNY)"),
                                     "exposure": ins["exposure_cny"],
                                     "premiums": ins["premiums_cny"],
                                     "indemnity_paid": ins["indemnity_paid_cny"]}]),
    ]


def filter_lines(figures: dict) -> list[tuple[str, str]]:
    f = figures["filters"]
    return [(_("From"), f.date_from.isoformat() if f.date_from else _("the beginning")),
            (_("To"), f.date_to.isoformat() if f.date_to else _("today")),
            (_("Area"), f.zone or _("all areas")),
            (_("As of"), figures["as_of"].isoformat()),
            (_("Stocks and financing converted at the rate of"), figures["rate_day"].isoformat()),
            (_("Currencies without a rate (left out of CNY figures)"),
             ", ".join(figures["unconverted"]) or "—")]


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    return value


def to_csv(figures: dict) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    for line in filter_lines(figures):
        writer.writerow(line)
    for table in tables(figures):
        writer.writerow([])
        writer.writerow([table.title])
        writer.writerow([c.label for c in table.columns])
        for row in table.rows:
            writer.writerow([_plain(row.get(c.key)) for c in table.columns])
    return out.getvalue()


def _plain(value: Any) -> str:
    if isinstance(value, Decimal):
        return f"{value:f}"
    return "" if value is None else str(value)


def to_xlsx(figures: dict) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.title = _("Filters")[:31]
    for line in filter_lines(figures):
        sheet.append(list(line))
    sheet.column_dimensions["A"].width = 50
    sheet.column_dimensions["B"].width = 30
    for table in tables(figures):
        sheet = book.create_sheet(table.key[:31])
        sheet.append([table.title])
        sheet["A1"].font = Font(bold=True)
        sheet.append([c.label for c in table.columns])
        for cell in sheet[2]:
            cell.font = Font(bold=True)
        for row in table.rows:
            sheet.append([_cell(row.get(c.key)) for c in table.columns])
        for index, column in enumerate(table.columns, start=1):
            letter = sheet.cell(row=2, column=index).column_letter
            sheet.column_dimensions[letter].width = 40 if column.kind == TEXT else 18
            if column.kind in (RATIO,):
                for (cell,) in sheet.iter_rows(min_row=3, min_col=index, max_col=index):
                    cell.number_format = "0.00%"
            elif column.kind == AMOUNT:
                for (cell,) in sheet.iter_rows(min_row=3, min_col=index, max_col=index):
                    cell.number_format = "#,##0.00"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
