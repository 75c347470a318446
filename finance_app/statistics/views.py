"""The statistics dashboard in the browser: figures as tables and charts, filtered by period
and pilot-zone area, exported as CSV or Excel; and the charting library, served by the app
itself (the platform may run without internet)."""
from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import plotly
from flask import Blueprint, Response, render_template, request, send_file
from flask_login import current_user

from finance_app import authz, clock
from finance_app.errors import ValidationFailed
from finance_app.i18n import country_name
from finance_app.statistics import export, queries

bp = Blueprint("statistics", __name__, url_prefix="/statistics")

PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
YEAR = 365 * 24 * 3600


def _figures():
    filters = queries.parse_filters(request.args)
    return queries.dashboard(filters, actor=current_user)


def _json_default(value):
    if isinstance(value, Decimal):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(type(value).__name__)


def _charts(figures: dict) -> str:
    """What the charts draw, as JSON for statistics.js: labels and plain numbers."""
    trade, fin, loans, ins = (figures[k] for k in ("trade", "financing", "loans", "insurance"))
    months = [r["key"] for r in trade["by_month"]]
    data = {
        "months": months,
        "by_mode": [{"name": export.mode_label(m["key"]), "x": months,
                     "y": [r["by_mode"].get(m["key"], 0) for r in trade["by_month"]]}
                    for m in trade["by_mode"] if m["orders"]],
        "countries": {"x": [country_name(r["key"]) for r in trade["by_country"]],
                      "y": [r["amount_cny"] for r in trade["by_country"]]},
        "verified": {"x": months, "y": [r["verified_share"] for r in trade["by_month"]]},
        "financing_kind": {"x": [export.kind_label(r["key"]) for r in fin["by_kind"]],
                           "requested": [r["requested_cny"] for r in fin["by_kind"]],
                           "offered": [r["offered_cny"] for r in fin["by_kind"]],
                           "lent": [r["lent_cny"] for r in fin["by_kind"]]},
        "financing_bank": {"x": [r["label"] for r in fin["by_bank"]],
                           "requested": [r["requested_cny"] for r in fin["by_bank"]],
                           "offered": [r["offered_cny"] for r in fin["by_bank"]],
                           "lent": [r["lent_cny"] for r in fin["by_bank"]]},
        "loans": {"y": [loans["outstanding_cny"], loans["overdue_cny"], loans["npl_cny"]]},
        "insurance": {"y": [ins["exposure_cny"], ins["premiums_cny"],
                            ins["indemnity_paid_cny"]]},
    }
    return json.dumps(data, default=_json_default).replace("</", "<\\/")


@bp.get("/")
@authz.allow(authz.STATISTICS)
def dashboard():
    try:
        figures = _figures()
    except ValidationFailed as exc:
        return render_template("statistics/dashboard.html", figures=None, error=exc,
                               args=request.args, zones=queries.zones()), 422
    return render_template("statistics/dashboard.html", figures=figures, error=None,
                           tables=export.tables(figures), charts=_charts(figures),
                           args=request.args, zones=queries.zones(),
                           filter_args=figures["filters"].as_args())


def _download(body: bytes | str, mimetype: str, extension: str) -> Response:
    name = f"statistics-{clock.today().isoformat()}.{extension}"
    response = Response(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/export.csv")
@authz.allow(authz.STATISTICS)
def export_csv():
    return _download("\ufeff" + export.to_csv(_figures()), "text/csv", "csv")


@bp.get("/export.xlsx")
@authz.allow(authz.STATISTICS)
def export_xlsx():
    return _download(export.to_xlsx(_figures()),
                     "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx")


@bp.get(f"/plotly-{plotly.__version__}.min.js")
@authz.allow(authz.PUBLIC)
def plotly_js():
    """The charting library, from the installed package: versioned URL, cached a year."""
    response = send_file(PLOTLY_JS, mimetype="text/javascript", max_age=YEAR,
                         conditional=True)
    response.headers["Cache-Control"] = f"public, max-age={YEAR}, immutable"
    return response
