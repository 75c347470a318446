"""The ledger's pages and API as their users see them: who sees which accounts and
transactions, CSV export, the PDF statement (read back as text), exchange rates."""
from __future__ import annotations

import csv
import io
import shutil
import subprocess
from datetime import timedelta
from decimal import Decimal

import pytest

from finance_app import clock
from finance_app.accounts.states import OrgKind, Role
from finance_app.extensions import db
from finance_app.ledger import services as ledger
from finance_app.ledger.models import ExchangeRate
from finance_app.money import Money
from finance_app.settlement import accounts, services
from tests.api.builders import make_caller
from tests.conftest import sign_in
from tests.factories import make_org_user

EN = {"Accept-Language": "en"}
ZH = {"Accept-Language": "zh-CN,zh;q=0.9"}


def text(response) -> str:
    return response.get_data(as_text=True)


@pytest.fixture
def world(app, make_client):
    """An SME charged two fees (one paid), another SME, the operator; signed-in clients."""
    sme = make_org_user(OrgKind.SME, roles=(Role.ADMIN, Role.OFFICER), name="Zhuhai Coastline")
    other = make_org_user(OrgKind.SME, roles=(Role.ADMIN, Role.OFFICER))
    operator = make_org_user(OrgKind.PLATFORM_OPERATOR, roles=(Role.OFFICER, Role.APPROVER))
    with clock.frozen_at(clock.now() - timedelta(days=40)):
        first = services.invoice_fee(payer_org_id=sme.org_id,
                                     amount=Money(Decimal("300.00"), "USD"),
                                     description="Service fee, October", actor=operator,
                                     key="oct")
        db.session.commit()
        services.confirm_transfer(first.id, reference="BOC-20261022-01", actor=operator)
        db.session.commit()
    services.invoice_fee(payer_org_id=sme.org_id, amount=Money(Decimal("120.50"), "USD"),
                         description="Service fee, November", actor=operator, key="nov")
    services.invoice_fee(payer_org_id=other.org_id, amount=Money(Decimal("99.00"), "USD"),
                         description="Someone else's fee", actor=operator, key="other")
    db.session.commit()
    clients = {}
    for name, user in (("sme", sme), ("other", other), ("operator", operator)):
        clients[name] = make_client()
        sign_in(clients[name], user)
    return sme, other, operator, clients


def test_an_sme_sees_its_own_fee_account_and_balance(world):
    sme, other, _, c = world
    page = text(c["sme"].get("/ledger/accounts", headers=EN))
    due = accounts.fees_due(sme.org_id, "USD")
    assert f'data-account="{due.id}"' in page and "$120.50" in page
    assert f'data-account="{accounts.fees_due(other.org_id, "USD").id}"' not in page
    assert f'data-account="{accounts.fee_income("USD").id}"' not in page
    # the operator sees the platform's own accounts too
    listing = text(c["operator"].get("/ledger/accounts?owner=platform", headers=EN))
    assert f'data-account="{accounts.fee_income("USD").id}"' in listing
    assert f'data-account="{due.id}"' not in listing


def test_another_organisations_account_and_transaction_are_404(world):
    sme, other, _, c = world
    theirs = accounts.fees_due(other.org_id, "USD")
    assert c["sme"].get(f"/ledger/accounts/{theirs.id}").status_code == 404
    transaction = ledger.transaction_for("settlement", 1)[0]
    assert c["other"].get(f"/ledger/transactions/{transaction.id}").status_code == 404
    assert c["sme"].get(f"/ledger/transactions/{transaction.id}").status_code == 200


def test_entries_export_as_csv(world):
    sme, _, _, c = world
    due = accounts.fees_due(sme.org_id, "USD")
    response = c["sme"].get(f"/ledger/accounts/{due.id}?format=csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    body = response.get_data(as_text=True)
    assert body.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(body.lstrip("\ufeff"))))
    assert [(r["kind"], r["amount"], r["balance_after"]) for r in rows] == [
        ("fee_invoiced", "300.00", "300.00"), ("settlement_fee", "-300.00", "0.00"),
        ("fee_invoiced", "120.50", "120.50")]
    # the transactions list narrows by kind, and exports too
    listing = c["sme"].get("/ledger/transactions?kind=settlement_fee&format=csv")
    assert len(list(csv.reader(io.StringIO(listing.get_data(as_text=True))))) == 2


def _pdf_text(data: bytes, tmp_path) -> str:
    if not shutil.which("pdftotext"):
        pytest.skip("pdftotext (poppler-utils) is not installed")
    path = tmp_path / "statement.pdf"
    path.write_bytes(data)
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True,
                          check=True, text=True).stdout


def test_the_statement_pdf_has_opening_each_entry_and_closing(world, tmp_path):
    sme, _, _, c = world
    due = accounts.fees_due(sme.org_id, "USD")
    today = clock.today()
    start = today - timedelta(days=20)
    response = c["sme"].get(f"/ledger/accounts/{due.id}/statement.pdf?date_from={start}"
                            f"&date_to={today}&lang=en")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert response.data.startswith(b"%PDF")
    content = _pdf_text(response.data, tmp_path)
    assert "Account statement" in content and "Zhuhai Coastline" in content
    assert "Opening balance" in content and "$0.00" in content   # October was paid
    assert "Service fee, November" in content and "$120.50" in content
    assert "October" not in content.split("Opening balance", 1)[1].split("Closing")[0]
    # in Chinese, with CJK text that a font actually drew
    chinese = c["sme"].get(f"/ledger/accounts/{due.id}/statement.pdf?date_from={start}"
                           f"&date_to={today}&lang=zh_CN")
    assert "账户对账单" in _pdf_text(chinese.data, tmp_path) and "期末余额" in _pdf_text(
        chinese.data, tmp_path)


def test_a_statement_with_a_bad_period_is_refused(world):
    sme, _, _, c = world
    due = accounts.fees_due(sme.org_id, "USD")
    response = c["sme"].get(f"/ledger/accounts/{due.id}/statement.pdf?date_from=2026-11-30"
                            "&date_to=2026-11-01", headers=EN)
    assert response.status_code == 422 and "ends before it starts" in text(response)
    missing = c["sme"].get(f"/ledger/accounts/{due.id}/statement.pdf?date_from=yesterday",
                           headers=EN)
    assert missing.status_code == 422


def test_the_operator_enters_a_rate_and_a_bad_one_is_explained(world):
    _, _, operator, c = world
    page = c["operator"].post("/ledger/rates", data={
        "base": "usd", "quote": "CNY", "rate": "7.1865", "rate_date": str(clock.today())},
        headers=EN)
    assert page.status_code == 302
    row = db.session.query(ExchangeRate).one()
    assert (row.base, row.quote, row.rate) == ("USD", "CNY", Decimal("7.1865"))
    refused = c["operator"].post("/ledger/rates", data={
        "base": "USD", "quote": "CNY", "rate": "0", "rate_date": str(clock.today())},
        headers=EN)
    assert refused.status_code == 422 and "greater than zero" in text(refused)
    future = c["operator"].post("/ledger/rates", data={
        "base": "USD", "quote": "XXX", "rate": "7", "rate_date": str(clock.today())},
        headers=EN)
    assert future.status_code == 422 and "ISO 4217" in text(future)
    assert db.session.query(ExchangeRate).count() == 1
    lookup = text(c["sme"].get(f"/ledger/rates?from=USD&to=CNY&on={clock.today()}",
                               headers=EN))
    assert "7.1865" in lookup


def test_pages_read_in_chinese(world):
    _, _, _, c = world
    assert "分币种余额" in text(c["sme"].get("/ledger/accounts", headers=ZH))
    assert "待支付" in text(c["sme"].get("/settlement/", headers=ZH))


def test_the_api_gives_balances_now_and_as_of_a_past_date(app, client):
    caller = make_caller(OrgKind.SME)
    operator = make_org_user(OrgKind.PLATFORM_OPERATOR, roles=(Role.OFFICER,))
    with clock.frozen_at(clock.now() - timedelta(days=10)):
        services.invoice_fee(payer_org_id=caller.org_id, amount=Money(Decimal("50"), "JPY"),
                             description="Fee", actor=operator, key="jpy")
        db.session.commit()
    services.invoice_fee(payer_org_id=caller.org_id, amount=Money(Decimal("70"), "JPY"),
                         description="Fee", actor=operator, key="jpy2")
    db.session.commit()
    listing = client.get("/api/v1/ledger/accounts", headers=caller.headers).get_json()
    assert [(a["purpose"], a["currency"], a["balance"]) for a in listing["items"]] == [
        ("platform_fees", "JPY", "120")]
    account_id = listing["items"][0]["id"]
    past = (clock.today() - timedelta(days=5)).isoformat()
    then = client.get(f"/api/v1/ledger/accounts/{account_id}/balance?as_of={past}",
                      headers=caller.headers).get_json()
    assert then == {"account_id": account_id, "currency": "JPY", "balance": "50",
                    "as_of": past}
    future = (clock.today() + timedelta(days=1)).isoformat()
    refused = client.get(f"/api/v1/ledger/accounts/{account_id}/balance?as_of={future}",
                         headers=caller.headers)
    assert refused.status_code == 422 and refused.get_json()["error"]["field"] == "as_of"
    entries = client.get(f"/api/v1/ledger/accounts/{account_id}/entries",
                         headers=caller.headers).get_json()
    assert [e["amount"] for e in entries["items"]] == ["70", "50"]
    stranger = make_caller(OrgKind.BANK)
    assert client.get(f"/api/v1/ledger/accounts/{account_id}",
                      headers=stranger.headers).status_code == 404
