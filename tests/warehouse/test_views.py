"""Warehouse receipts through the pages, the API and the public verification page."""
from __future__ import annotations

import re
import shutil
import subprocess
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from finance_app import clock
from finance_app.collateral.models import Encumbrance
from finance_app.extensions import db
from finance_app.warehouse import services
from finance_app.warehouse.models import WarehouseReceipt
from finance_app.warehouse.states import ReceiptStatus
from tests.conftest import sign_in
from tests.warehouse.conftest import pledge

EN = {"Accept-Language": "en"}


def text(response) -> str:
    return response.get_data(as_text=True)


def count(model) -> int:
    return db.session.execute(select(func.count()).select_from(model)).scalar_one()


@pytest.fixture
def clients(world, make_client):
    made = {}
    for name in ("operator", "sme", "bank", "other_bank", "platform"):
        made[name] = make_client()
        sign_in(made[name], world[name])
    return made


def test_the_operator_issues_a_receipt_and_bad_input_is_explained(world, clients):
    form = {"warehouse_id": world["warehouse"].id, "depositor_org_id": world["sme"].org_id,
            "goods_description": "LED desk lamps", "hs_code": "940521", "quantity": "3000",
            "unit": "pcs", "unit_price": "9.40", "currency": "USD",
            "expiry_date": str(clock.today() + timedelta(days=90))}
    for change, words in (({"quantity": "-3"}, "greater than zero"),
                          ({"hs_code": "9405"}, "6 to 10 digits"),
                          ({"currency": "QQQ"}, "ISO 4217"),
                          ({"expiry_date": str(clock.today() - timedelta(days=1))},
                           "after the issue date")):
        refused = clients["operator"].post("/warehouse/receipts/new", data={**form, **change},
                                           headers=EN)
        assert refused.status_code == 422 and words in text(refused), words
    assert count(WarehouseReceipt) == 0
    done = clients["operator"].post("/warehouse/receipts/new", data=form, headers=EN)
    assert done.status_code == 302
    receipt = db.session.execute(select(WarehouseReceipt)).scalar_one()
    page = text(clients["operator"].get(f"/warehouse/receipts/{receipt.id}", headers=EN))
    assert receipt.number in page and "$28,200.00" in page
    # the SME sees it in its list; another bank does not see it at all
    assert f'data-receipt="{receipt.id}"' in text(clients["sme"].get("/warehouse/"))
    assert clients["bank"].get(f"/warehouse/receipts/{receipt.id}").status_code == 404


def test_offer_pledge_and_a_second_bank_refused_on_the_page(world, clients, receipt):
    offered = clients["sme"].post(f"/warehouse/receipts/{receipt.id}/offer", headers=EN,
                                  data={"bank_org_ids": [world["bank"].org_id,
                                                         world["other_bank"].org_id]})
    assert offered.status_code == 302
    terms = {"principal": "15000.00", "currency": "USD", "max_ltv": "70",
             "margin_call_ltv": "80", "liquidation_ltv": "90", "cure_days": "10",
             "registry_ref": "0412345678901234567"}
    assert clients["bank"].post(f"/warehouse/receipts/{receipt.id}/pledge", data=terms,
                                headers=EN).status_code == 302
    second = clients["other_bank"].post(f"/warehouse/receipts/{receipt.id}/pledge",
                                        data=terms, headers=EN)
    assert second.status_code == 409 and "already pledged" in text(second)
    assert count(Encumbrance) == 1
    page = text(clients["operator"].get(f"/warehouse/receipts/{receipt.id}", headers=EN))
    assert 'id="pledged-note"' in page and "until the bank releases the pledge" in page
    refused = clients["operator"].post(f"/warehouse/receipts/{receipt.id}/deliver", data={},
                                       headers=EN)
    assert refused.status_code == 409 and "cannot be delivered out" in text(refused)
    bank_page = text(clients["bank"].get(f"/warehouse/receipts/{receipt.id}", headers=EN))
    assert 'id="ltv"' in bank_page and "69.21%" in bank_page   # 15,000 / 21,672


def test_a_partial_release_over_the_limit_shows_the_figures(world, clients, offered):
    pledge(world, offered)
    refused = clients["bank"].post(f"/warehouse/receipts/{offered.id}/release-part",
                                   data={"quantity": "100"}, headers=EN)
    assert refused.status_code == 422 and "75.51%" in text(refused)
    done = clients["bank"].post(f"/warehouse/receipts/{offered.id}/release-part",
                                data={"quantity": "10"}, headers=EN)
    assert done.status_code == 302
    db.session.refresh(offered)
    assert offered.status is ReceiptStatus.SPLIT


def _pdf_text(data: bytes, tmp_path) -> str:
    if not shutil.which("pdftotext"):
        pytest.skip("pdftotext (poppler-utils) is not installed")
    path = tmp_path / "certificate.pdf"
    path.write_bytes(data)
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True,
                          check=True, text=True).stdout


def test_the_certificate_carries_the_code_and_the_depositor_may_print_it(world, clients,
                                                                         receipt, tmp_path):
    code = services.verification_code(receipt)
    response = clients["sme"].get(f"/warehouse/receipts/{receipt.id}/certificate.pdf?lang=en")
    assert response.status_code == 200 and response.data.startswith(b"%PDF")
    content = _pdf_text(response.data, tmp_path)
    assert receipt.number in content and code in content and "Verification code" in content
    assert "1,200 pcs" in content
    chinese = clients["operator"].get(f"/warehouse/receipts/{receipt.id}/certificate.pdf"
                                      "?lang=zh_CN")
    assert "电子仓单" in _pdf_text(chinese.data, tmp_path)
    # a bank it was offered to reads the receipt, but not the certificate with the code
    services.offer_to_banks(receipt.id, [world["bank"].org_id], actor=world["sme"])
    db.session.commit()
    assert clients["bank"].get(f"/warehouse/receipts/{receipt.id}").status_code == 200
    assert clients["bank"].get(f"/warehouse/receipts/{receipt.id}/certificate.pdf"
                               ).status_code == 403


def test_the_public_page_verifies_without_sign_in_and_tells_nothing_more(app, client, world,
                                                                         receipt, monkeypatch):
    monkeypatch.setitem(app.config, "VERIFY_MIN_SECONDS", 0.05)
    code = services.verification_code(receipt)
    genuine = text(client.get(f"/verify?code={code}", headers=EN))
    assert 'id="genuine"' in genuine and receipt.number in genuine
    assert "not pledged" in genuine and "Bluetooth earphones" in genuine
    assert world["sme"].organisation.name not in genuine   # nothing about the depositor
    assert "30,960" not in genuine                          # nor the goods' value
    wrong = text(client.post("/verify", data={"code": "AAAA-BBBB-CCCC-DDDD"}, headers=EN))
    assert 'id="not-genuine"' in wrong
    # the same answer time whatever the code: a near miss, a wrong one, a genuine one
    timings = {}
    for label, guess in (("genuine", code), ("near", code[:-1] + ("A" if code[-1] != "A" else "B")),
                         ("wrong", "ZZZZ")):
        started = time.perf_counter()
        client.get(f"/verify?code={guess}")
        timings[label] = time.perf_counter() - started
    assert all(0.05 <= t < 2.0 for t in timings.values()), timings


def test_wrong_codes_are_rate_limited(app, client, world, receipt, monkeypatch):
    monkeypatch.setitem(app.config, "VERIFY_MIN_SECONDS", 0)
    monkeypatch.setitem(app.config, "VERIFY_RATE_LIMIT", "5 per minute")
    statuses = [client.get(f"/verify?code=AAAA-{n:04d}").status_code for n in range(7)]
    assert statuses[:5] == [200] * 5 and statuses[5:] == [429, 429]


def test_the_api_pledges_once_and_explains_a_refused_release(world, client, offered):
    from tests.api.builders import Caller
    from finance_app.accounts import services as accounts
    callers = {}
    for name in ("bank", "other_bank", "sme"):
        _, raw = accounts.create_token(actor=world[name], name="tests")
        callers[name] = {"Authorization": f"Bearer {raw}"}
    db.session.commit()
    body = {"principal": "15000.00", "currency": "USD", "max_ltv": "0.70",
            "margin_call_ltv": "0.80", "liquidation_ltv": "0.90", "cure_days": 10}
    first = client.post(f"/api/v1/warehouse/receipts/{offered.id}/pledge", json=body,
                        headers=callers["bank"])
    assert first.status_code == 201 and first.get_json()["principal"] == "15000.00"
    second = client.post(f"/api/v1/warehouse/receipts/{offered.id}/pledge", json=body,
                         headers=callers["other_bank"])
    assert second.status_code == 409
    assert second.get_json()["error"]["code"] == "already_pledged"
    refused = client.post(f"/api/v1/warehouse/receipts/{offered.id}/partial-release",
                          json={"quantity": "100"}, headers=callers["bank"])
    assert refused.status_code == 422
    error = refused.get_json()["error"]
    assert error["code"] == "ltv_limit_exceeded" and error["field"] == "quantity"
    assert "75.51%" in error["message"]
    listing = client.get("/api/v1/warehouse/receipts", headers=callers["sme"]).get_json()
    assert listing["items"][0]["status"] == "pledged"
    assert listing["items"][0]["pledged_to_org_id"] == world["bank"].org_id
    assert re.fullmatch(r"\d+(\.\d+)?", listing["items"][0]["quantity"])
