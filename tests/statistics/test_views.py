"""The dashboard page, its CSV and Excel exports, the charting library it loads, and the
same figures through the API: wiring, filters applied, and refusals."""
from __future__ import annotations

import csv
import io

import pytest
from openpyxl import load_workbook

from finance_app import clock
from finance_app.accounts import services as accounts
from tests.conftest import sign_in
from tests.statistics.conftest import NOW
from tests.statistics.test_queries import trade_world


@pytest.fixture
def operator(world, make_client):
    client = make_client()
    with clock.frozen_at(NOW):
        trade_world()
        sign_in(client, world["platform"])
        yield client


def text(response) -> str:
    return response.get_data(as_text=True)


def test_the_operator_sees_the_figures_as_tables_with_the_charts_library(operator):
    page = operator.get("/statistics/")
    assert page.status_code == 200
    body = text(page)
    assert 'href="/statistics/"' in body                       # the nav link
    assert 'id="table-volume_by_country"' in body and "8,000.00" in body
    assert "/statistics/plotly-" in body and "cdn" not in body.lower()
    library = operator.get(body.split('<script src="')[1].split('"')[0])
    assert library.status_code == 200
    assert "max-age=31536000" in library.headers["Cache-Control"]
    assert b"plotly" in library.get_data()[:2000].lower()


def test_a_bad_filter_is_explained_on_the_page(operator):
    page = operator.get("/statistics/?from=2026-13")
    assert page.status_code == 422
    assert 'data-field="from"' in text(page) and "2026-13" in text(page)
    assert operator.get("/statistics/export.csv?zone=Atlantis").status_code == 422


def csv_tables(response) -> dict[str, list[list[str]]]:
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    tables, current = {}, None
    for row in rows:
        if len(row) == 1:
            current = tables.setdefault(row[0], [])
        elif row and current is not None:
            current.append(row)
    return tables


def test_the_csv_export_has_the_filtered_figures(operator):
    response = operator.get("/statistics/export.csv?zone=Dongguan%20Humen")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    tables = csv_tables(response)
    countries = tables["Cross-border e-commerce by destination country"]
    assert countries[0][:3] == ["Destination country", "Orders", "Amount (CNY)"]
    assert [r[:3] for r in countries[1:]] == [["Mexico", "1", "1440.00"]]
    assert "Dongguan Humen" in response.get_data(as_text=True).split("\n")[2]


def test_the_excel_export_has_a_sheet_a_table(operator):
    response = operator.get("/statistics/export.xlsx?from=2026-10&to=2026-11")
    assert response.status_code == 200
    book = load_workbook(io.BytesIO(response.get_data()))
    assert {"volume_by_mode", "financing_by_bank", "loan_quality", "insurance"} <= set(
        book.sheetnames)
    rows = list(book["volume_by_mode"].iter_rows(min_row=3, values_only=True))
    parcels = next(r for r in rows if str(r[0]).startswith("9610"))
    assert (parcels[1], parcels[2], parcels[3]) == (2, 2210, 1)
    filters = dict(book.worksheets[0].iter_rows(values_only=True))
    assert (filters["From"], filters["To"]) == ("2026-10-01", "2026-11-30")


def test_the_api_answers_the_same_figures_and_refuses_bad_filters(world, client):
    with clock.frozen_at(NOW):
        trade_world()
        _, raw = accounts.create_token(actor=world["platform"], name="tests")
        headers = {"Authorization": f"Bearer {raw}"}
        body = client.get("/api/v1/statistics?zone=Zhuhai%20Hengqin", headers=headers).get_json()
        assert body["filters"] == {"from": None, "to": None, "zone": "Zhuhai Hengqin"}
        assert body["trade"]["totals"]["amount_cny"] == "8770.00"
        assert body["trade"]["by_mode"][1] == {
            "key": "9710", "orders": 1, "verified": 0, "verified_share": "0.0000",
            "amount_cny": "8000.00"}
        refused = client.get("/api/v1/statistics?from=2026-05&to=2026-04", headers=headers)
        assert refused.status_code == 422
        assert refused.get_json()["error"]["field"] == "to"
        _, sme_raw = accounts.create_token(actor=world["sme"], name="tests")
        assert client.get("/api/v1/statistics", headers={
            "Authorization": f"Bearer {sme_raw}"}).status_code == 403
    assert "/api/v1/statistics" in client.get("/api/v1/openapi.json").get_json()["paths"]
