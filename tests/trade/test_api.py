"""Trade evidence over the API: filing JSON and CEB XML, orders with verdicts, scoping,
money as strings, and 422s that name the field."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from finance_app.accounts.states import OrgKind
from finance_app.extensions import db
from finance_app.trade.models import IngestBatch, Order, Payment
from tests.api.builders import make_caller
from tests.trade.builders import EBP, LOGISTICS_CODE, PAY_CODE, SME_CODE
from tests.trade.test_views import ceb_message, ceb_order

NEVER_USED_ID = 987654

ORDER = {"order_no": "ORD-1", "ebp_code": EBP, "ebp_name": "Marketplace", "ebc_code": SME_CODE,
         "trade_mode": "9610", "currency": "USD", "goods_value": "100.00", "freight": "10.00",
         "buyer_name": "Maria Silva", "consignee": "Maria Silva", "consignee_country": "BR",
         "app_time": "2026-11-01 10:00:00",
         "lines": [{"gnum": 1, "item_name": "LED lamp", "qty": "4", "price": "25",
                    "total_price": "100.00"}]}
PAYMENT = {"order_no": "ORD-1", "ebp_code": EBP, "ebc_code": SME_CODE, "pay_code": PAY_CODE,
           "pay_transaction_id": "TXN-1", "payer_name": "Maria Silva", "amount": "110.00",
           "currency": "USD", "pay_time": "2026-11-01 11:00:00"}
INVENTORY = {"cop_no": "COP-1", "order_no": "ORD-1", "ebp_code": EBP, "ebc_code": SME_CODE,
             "agent_code": SME_CODE, "logistics_code": LOGISTICS_CODE, "logistics_no": "WB-1",
             "trade_mode": "9610", "country": "BR", "currency": "USD"}
WAYBILL = {"logistics_code": LOGISTICS_CODE, "logistics_no": "WB-1", "consignee": "Maria Silva",
           "freight": "10.00", "currency": "USD"}


@pytest.fixture
def callers(app):
    from tests.factories import OrganisationFactory
    sme = make_caller(org=OrganisationFactory(kind=OrgKind.SME, customs_code=SME_CODE))
    logistics = make_caller(org=OrganisationFactory(kind=OrgKind.LOGISTICS,
                                                    customs_code=LOGISTICS_CODE))
    payer = make_caller(org=OrganisationFactory(kind=OrgKind.PAYMENT_INSTITUTION,
                                                customs_code=PAY_CODE))
    return sme, logistics, payer


def post(client, caller, kind, documents, **extra):
    return client.post("/api/v1/trade/documents", headers=caller.headers,
                       json={"kind": kind, "documents": documents, **extra})


def count(model) -> int:
    db.session.expire_all()
    return db.session.execute(select(func.count()).select_from(model)).scalar_one()


def file_trade(client, callers, payment_amount="110.00", *, with_order=True):
    sme, logistics, payer = callers
    documents = [(sme, "inventory", INVENTORY),
                 (payer, "payment", {**PAYMENT, "amount": payment_amount}),
                 (logistics, "waybill", WAYBILL)]
    if with_order:
        documents.insert(0, (sme, "order", ORDER))
    for caller, kind, doc in documents:
        response = post(client, caller, kind, [doc], direction="export")
        assert response.status_code == 201, response.get_json()


# --------------------------------------------------------------------------- filing

def test_filing_a_trade_as_json_gives_a_verified_order(client, callers):
    sme, logistics, payer = callers
    response = post(client, sme, "order", [ORDER], direction="export")
    assert response.status_code == 201
    body = response.get_json()
    assert (body["accepted"], body["rejected"], body["source"]) == (1, 0, "json")
    (result,) = body["results"]
    assert result["accepted"] and result["version"] == 1 and result["kind"] == "order"
    assert result["key"] == f"{EBP} / ORD-1" and result["reason"] is None
    file_trade(client, callers, with_order=False)
    listing = client.get("/api/v1/trade/orders", headers=sme.headers).get_json()
    assert (listing["total"], listing["page"], listing["per_page"]) == (1, 1, 50)
    (item,) = listing["items"]
    assert item["verdict"]["status"] == "verified" and item["verdict"]["reasons"] == []
    assert item["goods_value"] == "100.00" and item["payable"] == "110.00"

    detail = client.get(f"/api/v1/trade/orders/{item['id']}", headers=sme.headers)
    assert detail.status_code == 200
    order = detail.get_json()
    # money is always a string, never a JSON number
    assert order["freight"] == "10.00" and order["discount"] == "0.00"
    assert order["lines"] == [{"gnum": 1, "item_no": None, "item_name": "LED lamp",
                               "unit": None, "qty": "4.00", "price": "25.00",
                               "total_price": "100.00"}]
    assert order["payments"][0]["amount"] == "110.00"
    assert order["payment_ids"] == [order["payments"][0]["id"]]
    assert order["waybill"]["logistics_no"] == "WB-1" == order["inventory"]["logistics_no"]
    assert order["waybill_id"] == order["verdict"]["waybill_id"] == order["waybill"]["id"]
    assert order["inventory_id"] == order["inventory"]["id"]
    assert order["buyer_country"] == "BR" and order["app_time"].endswith("+00:00")


def test_a_mismatch_comes_with_its_reasons(client, callers):
    sme, logistics, payer = callers
    file_trade(client, callers, payment_amount="105.00")
    verdicts = client.get("/api/v1/trade/verdicts?status=mismatch", headers=sme.headers)
    assert verdicts.status_code == 200
    (item,) = verdicts.get_json()["items"]
    assert item["order_no"] == "ORD-1" and item["status"] == "mismatch"
    assert [r["code"] for r in item["reasons"]] == ["payment_amount_mismatch"]
    assert "105.00" in item["reasons"][0]["message"]
    assert client.get("/api/v1/trade/verdicts?status=verified",
                      headers=sme.headers).get_json()["total"] == 0
    orders = client.get("/api/v1/trade/orders?verdict=mismatch&counterparty=maria",
                        headers=sme.headers).get_json()
    assert orders["total"] == 1


def test_each_document_is_accepted_or_rejected_on_its_own(client, callers):
    sme, logistics, payer = callers
    documents = [ORDER, {**ORDER, "order_no": "ORD-2", "currency": None},
                 {**ORDER, "order_no": "ORD-3", "goods_value": 100.5}]
    response = post(client, sme, "order", documents)
    assert response.status_code == 201
    results = response.get_json()["results"]
    assert [r["accepted"] for r in results] == [True, False, False]
    assert [r["index"] for r in results] == [0, 1, 2]
    assert "currency" in results[1]["reason"]
    assert "goods_value" in results[2]["reason"] and "strings" in results[2]["reason"]
    assert count(Order) == 1


@pytest.mark.parametrize("documents, field, reason", [
    ([{**ORDER, "currency": None}], "documents.0.currency", "currency"),
    ([{**ORDER, "goods_value": "-1"}], "documents.0.goods_value", "negative"),
    ([{**ORDER, "colour": "red"}], "documents.0.colour", "not a field of a order"),
    ([{**ORDER, "order_no": "x" * 61}], "documents.0.order_no", "at most 60 characters"),
    ([{**ORDER, "goods_value": "1" * 20}], "documents.0.goods_value", "cannot be stored"),
    ([ORDER, {**ORDER, "ebc_code": "9999999999", "order_no": "ORD-9"}], "documents.0",
     "already filed"),
])
def test_nothing_accepted_is_422_with_field_and_reason(client, callers, documents, field,
                                                       reason):
    sme, logistics, payer = callers
    if "already" in reason:
        assert post(client, sme, "order", [ORDER]).status_code == 201
    before = (count(Order), count(IngestBatch))
    response = post(client, sme, "order", documents)
    assert response.status_code == 422
    body = response.get_json()
    assert body["error"]["code"] == "nothing_accepted"
    assert body["error"]["field"] == field
    assert reason in body["error"]["message"]
    assert all(not r["accepted"] for r in body["results"])
    assert (count(Order), count(IngestBatch)) == before  # nothing stored, not even the batch


@pytest.mark.parametrize("body, field", [
    ({"kind": "invoice", "documents": [ORDER]}, "kind"),
    ({"kind": "order", "documents": []}, "documents"),
    ({"kind": "order", "documents": "ORD-1"}, "documents"),
    ({"kind": "order", "direction": "sideways", "documents": [ORDER]}, "direction"),
    ({"kind": "order", "documents": [{**ORDER, "buyer_name": "Ma\x00ria"}]}, "documents.0"),
    ({"documents": [ORDER]}, "kind"),
])
def test_an_invalid_body_is_422_naming_the_field(client, callers, body, field):
    sme, logistics, payer = callers
    response = client.post("/api/v1/trade/documents", headers=sme.headers, json=body)
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["field"] == field and error["message"]
    assert count(Order) == 0


def test_only_the_filer_files_and_banks_file_nothing(client, callers):
    sme, logistics, payer = callers
    response = post(client, logistics, "order", [ORDER])
    assert response.status_code == 422
    assert "may not file this order" in response.get_json()["error"]["message"]
    bank = make_caller(OrgKind.BANK)
    assert post(client, bank, "order", [ORDER]).status_code == 403
    assert client.get("/api/v1/trade/orders", headers=bank.headers).status_code == 403


def test_a_retry_with_the_same_idempotency_key_files_once(client, callers):
    sme, logistics, payer = callers
    headers = {**sme.headers, "Idempotency-Key": "erp-sync-42"}
    body = {"kind": "order", "documents": [ORDER]}
    first = client.post("/api/v1/trade/documents", headers=headers, json=body)
    again = client.post("/api/v1/trade/documents", headers=headers, json=body)
    assert first.status_code == again.status_code == 201
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.get_json() == first.get_json()
    assert count(Order) == 1 and count(IngestBatch) == 1


# --------------------------------------------------------------------------- CEB XML

def test_a_ceb_message_is_filed_from_its_xml(client, callers):
    sme, logistics, payer = callers
    xml = ceb_message("CEB303", [ceb_order("ORD-1"), ceb_order("ORD-2", goodsValue="-5")])
    response = client.post("/api/v1/trade/ceb?filename=orders.xml", data=xml,
                           headers={**sme.headers, "Content-Type": "application/xml"})
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["message_type"] == "CEB303" and body["source"] == "ceb_xml"
    assert [r["accepted"] for r in body["results"]] == [True, False]
    assert [r["index"] for r in body["results"]] == [1, 2]
    assert "goodsValue" in body["results"][1]["reason"]
    batch = db.session.get(IngestBatch, body["batch_id"])
    assert batch.filename == "orders.xml"
    order = client.get("/api/v1/trade/orders", headers=sme.headers).get_json()["items"][0]
    assert (order["goods_value"], order["currency"]) == ("100.00", "USD")
    assert order["app_time"] == "2026-11-01T10:00:00+00:00"  # 18:00 in Beijing


@pytest.mark.parametrize("data, content_type, status, code", [
    (b"not xml at all", "application/xml", 422, "invalid_ceb"),
    (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "a">]><x>&a;</x>', "application/xml", 422,
     "invalid_ceb"),
    (b"", "application/xml", 422, "invalid_ceb"),
    (b'{"kind": "order"}', "application/json", 415, "unsupported_media_type"),
])
def test_a_file_that_is_no_ceb_message_is_refused_whole(client, callers, data, content_type,
                                                       status, code):
    sme, logistics, payer = callers
    response = client.post("/api/v1/trade/ceb", data=data,
                           headers={**sme.headers, "Content-Type": content_type})
    assert response.status_code == status
    assert response.get_json()["error"]["code"] == code
    assert count(IngestBatch) == 0


def test_a_ceb_message_with_nothing_accepted_is_422(client, callers):
    sme, logistics, payer = callers
    xml = ceb_message("CEB303", [ceb_order("ORD-1", ebcCode="9999999999")])
    response = client.post("/api/v1/trade/ceb", data=xml,
                           headers={**sme.headers, "Content-Type": "application/xml"})
    assert response.status_code == 422
    body = response.get_json()
    assert body["error"]["code"] == "nothing_accepted" and body["error"]["field"] == "ebc_code"
    assert count(IngestBatch) == 0
    xml = ceb_message("CEB303", [ceb_order("ORD-1", goodsValue="-5")])
    response = client.post("/api/v1/trade/ceb", data=xml,
                           headers={**sme.headers, "Content-Type": "application/xml"})
    assert response.status_code == 422
    assert response.get_json()["error"]["field"] == "goodsValue"  # the element, as in the XML


# --------------------------------------------------------------------------- scoping

def test_another_organisations_order_answers_404(client, callers):
    sme, logistics, payer = callers
    file_trade(client, callers)
    order_id = db.session.execute(select(Order.id)).scalar_one()
    payment_id = db.session.execute(select(Payment.id)).scalar_one()
    stranger = make_caller(OrgKind.SME)
    for path in (f"/api/v1/trade/orders/{order_id}", f"/api/v1/trade/payments/{payment_id}"):
        refused = client.get(path, headers=stranger.headers)
        missing = client.get(path.rsplit("/", 1)[0] + f"/{NEVER_USED_ID}",
                             headers=stranger.headers)
        assert refused.status_code == missing.status_code == 404
        assert refused.get_json() == missing.get_json()
        assert "ORD-1" not in refused.get_data(as_text=True)
    assert client.get("/api/v1/trade/orders", headers=stranger.headers).get_json()["total"] == 0
    assert client.get("/api/v1/trade/payments",
                      headers=stranger.headers).get_json()["items"] == []
    assert client.get("/api/v1/trade/verdicts", headers=stranger.headers).get_json()["total"] == 0


def test_each_filer_lists_what_it_filed(client, callers):
    sme, logistics, payer = callers
    file_trade(client, callers)
    other = make_caller(OrgKind.LOGISTICS)
    waybills = client.get("/api/v1/trade/waybills", headers=logistics.headers).get_json()
    assert [w["logistics_no"] for w in waybills["items"]] == ["WB-1"]
    assert waybills["items"][0]["freight"] == "10.00"
    assert client.get("/api/v1/trade/waybills", headers=other.headers).get_json()["total"] == 0
    waybill_id = waybills["items"][0]["id"]
    assert client.get(f"/api/v1/trade/waybills/{waybill_id}",
                      headers=logistics.headers).status_code == 200
    assert client.get(f"/api/v1/trade/waybills/{waybill_id}",
                      headers=other.headers).status_code == 404
    # the SME reads the waybill its inventory names; another SME does not
    assert client.get(f"/api/v1/trade/waybills/{waybill_id}",
                      headers=sme.headers).get_json()["logistics_no"] == "WB-1"
    assert [w["id"] for w in client.get("/api/v1/trade/waybills",
                                        headers=sme.headers).get_json()["items"]] == [waybill_id]
    stranger = make_caller(OrgKind.SME)
    assert client.get(f"/api/v1/trade/waybills/{waybill_id}",
                      headers=stranger.headers).status_code == 404
    assert client.get("/api/v1/trade/waybills", headers=stranger.headers).get_json()["total"] == 0
    # logistics companies and payment institutions see no orders
    assert client.get("/api/v1/trade/orders", headers=logistics.headers).status_code == 403
    assert client.get("/api/v1/trade/orders", headers=payer.headers).status_code == 403
    payments = client.get("/api/v1/trade/payments", headers=payer.headers).get_json()["items"]
    assert [p["pay_transaction_id"] for p in payments] == ["TXN-1"]
    # the SME sees the payment slip that names it, and its own inventory
    assert client.get("/api/v1/trade/payments", headers=sme.headers).get_json()["total"] == 1
    assert client.get("/api/v1/trade/inventories",
                      headers=sme.headers).get_json()["total"] == 1
    assert client.get("/api/v1/trade/inventories",
                      headers=logistics.headers).get_json()["total"] == 0


def test_the_operator_sees_everything_mismatches_first(client, callers):
    from finance_app.accounts.states import Role
    sme, logistics, payer = callers
    file_trade(client, callers)
    assert post(client, sme, "order", [{**ORDER, "order_no": "ORD-2",
                                        "app_time": "2026-10-01 10:00:00"}]).status_code == 201
    assert post(client, payer, "payment", [{**PAYMENT, "order_no": "ORD-2",
                                            "pay_transaction_id": "TXN-2",
                                            "amount": "1.00"}]).status_code == 201
    operator = make_caller(OrgKind.PLATFORM_OPERATOR, roles=(Role.OFFICER,))
    listing = client.get("/api/v1/trade/orders", headers=operator.headers).get_json()
    assert [o["order_no"] for o in listing["items"]] == ["ORD-2", "ORD-1"]
    assert listing["items"][0]["verdict"]["status"] == "mismatch"
    sme_listing = client.get("/api/v1/trade/orders", headers=sme.headers).get_json()
    assert [o["order_no"] for o in sme_listing["items"]] == ["ORD-1", "ORD-2"]


def test_filters_and_pages(client, callers):
    sme, logistics, payer = callers
    documents = [{**ORDER, "order_no": f"P-{n:03d}", "lines": []} for n in range(55)]
    assert post(client, sme, "order", documents).status_code == 201
    first = client.get("/api/v1/trade/orders", headers=sme.headers).get_json()
    second = client.get("/api/v1/trade/orders?page=2", headers=sme.headers).get_json()
    assert first["total"] == 55 and len(first["items"]) == 50 and len(second["items"]) == 5
    assert client.get("/api/v1/trade/orders?page=0", headers=sme.headers).status_code == 422
    assert client.get("/api/v1/trade/orders?date_from=2026-11-02",
                      headers=sme.headers).get_json()["total"] == 0
    assert client.get("/api/v1/trade/orders?date_to=2026-11-01&direction=export",
                      headers=sme.headers).get_json()["total"] == 55
    bad = client.get("/api/v1/trade/orders?verdict=maybe", headers=sme.headers)
    assert bad.status_code == 422 and bad.get_json()["error"]["field"] == "verdict"


# --------------------------------------------------------------------------- receivables

def test_a_verified_b2b_export_on_terms_is_a_receivable(client, callers):
    sme, logistics, payer = callers
    b2b = {**ORDER, "trade_mode": "9710", "order_type": "B", "payment_term_days": "90",
           "goods_value": "1000.00", "freight": "0", "lines": [],
           "buyer_name": "Lisboa Imports Lda"}
    assert post(client, sme, "order", [b2b]).status_code == 201
    assert post(client, sme, "inventory", [{**INVENTORY, "trade_mode": "9710"}]).status_code \
        == 201
    assert post(client, logistics, "waybill", [WAYBILL]).status_code == 201
    assert post(client, payer, "payment", [{**PAYMENT, "amount": "400.00"}]).status_code == 201
    listing = client.get("/api/v1/trade/receivables", headers=sme.headers)
    assert listing.status_code == 200
    (receivable,) = listing.get_json()["items"]
    assert receivable["amount"] == "1000.00" and receivable["outstanding"] == "600.00"
    assert receivable["status"] == "open" and receivable["order_no"] == "ORD-1"
    assert receivable["due_date"] == "2027-01-30"
    stranger = make_caller(OrgKind.SME)
    assert client.get("/api/v1/trade/receivables",
                      headers=stranger.headers).get_json()["items"] == []
    assert client.get("/api/v1/trade/receivables?status=settled",
                      headers=sme.headers).get_json()["total"] == 0
