"""The financing marketplace over the JSON API, with bearer tokens: the whole path from two
banks' products to a repaid loan, four eyes, bad input refused with the field and nothing
changed, retries with an Idempotency-Key, and one bank kept out of another's decisions.
Every answer is also checked against the OpenAPI document (status and body)."""
from __future__ import annotations

import hashlib
import re
from datetime import timedelta
from decimal import Decimal

import pytest
import schemathesis
from sqlalchemy import func, select

from finance_app import clock
from finance_app.accounts import services as accounts
from finance_app.accounts.states import Role
from finance_app.extensions import db
from finance_app.financing.models import (
    Decision, FinancingProduct, FinancingRequest, Loan, Repayment,
)
from finance_app.settlement.models import SettlementRecord
from tests.financing.conftest import receivable, second_user

API = "/api/v1/financing"
KEY = "Idempotency-Key"
AMOUNT = re.compile(r"^\d+\.\d{2}$")   # a USD amount as the API writes it


def count(model) -> int:
    return db.session.scalar(select(func.count(model.id)))


class Api:
    """Calls as one of the world's users, each answer held to the OpenAPI document."""

    def __init__(self, client, world):
        self.client = client
        document = client.get("/api/v1/openapi.json").get_json()
        self.document = document
        self.schema = schemathesis.openapi.from_dict(document)
        self.tokens = {}
        self.world = world

    def as_(self, name: str) -> dict:
        if name not in self.tokens:
            _, raw = accounts.create_token(actor=self.world[name], name="tests")
            db.session.commit()
            self.tokens[name] = {"Authorization": f"Bearer {raw}"}
        return self.tokens[name]

    def call(self, method: str, path: str, who: str, json=None, key: str | None = None,
             expect: int | None = None):
        headers = dict(self.as_(who))
        if key is not None:
            headers[KEY] = key
        response = self.client.open(API + path, method=method, json=json, headers=headers)
        operation = self.schema.find_operation_by_path(method, API + path.split("?")[0])
        documented = self.document["paths"][operation.path][method.lower()]["responses"]
        assert str(response.status_code) in documented, (
            f"{method} {path}: {response.status_code} is not documented",
            response.get_data(as_text=True)[:500])
        operation.validate_response(response)
        if expect is not None:
            assert response.status_code == expect, response.get_data(as_text=True)[:1000]
        return response

    def get(self, path, who, **kw):
        return self.call("GET", path, who, **kw)

    def post(self, path, who, json=None, **kw):
        return self.call("POST", path, who, json=json, **kw)


@pytest.fixture
def api(client, world) -> Api:
    return Api(client, world)


def product_body(name="Receivables USD", **overrides) -> dict:
    body = {"name": name, "kind": "receivable", "currencies": ["USD", "CNY"],
            "max_advance_rate": "0.8", "rate_min": "0.04", "rate_max": "0.09",
            "day_count": 360, "max_tenor_days": 180, "repayment_type": "bullet",
            "penalty_rate": "0.18", "default_after_days": 60, "arrangement_fee_rate": "0.005"}
    body.update(overrides)
    return body


def publish(api, bank="bank", **overrides) -> dict:
    return api.post("/products", bank, product_body(**overrides), expect=201).get_json()


def request_body(products, rec, amount="7000.00", **overrides) -> dict:
    body = {"amount": amount, "currency": "USD", "tenor_days": 90,
            "purpose": "Working capital for the next shipment",
            "collateral": [{"kind": "receivable", "id": rec.id}],
            "product_ids": [p["id"] for p in products]}
    body.update(overrides)
    return body


def target_for(api, request_id: int, bank: str) -> int:
    rows = api.get("/review?show=all", bank, expect=200).get_json()["items"]
    return next(r["target_id"] for r in rows if r["request_id"] == request_id)


def offer(api, request_id, bank, rate, amount="7000.00", approve=True, **extra) -> dict:
    target = target_for(api, request_id, bank)
    made = api.post(f"/review/{target}/offer", bank, {
        "amount": amount, "currency": "USD", "annual_rate": rate, "tenor_days": 90,
        **extra}, expect=201).get_json()
    assert made["status"] == "prepared"
    if approve:
        made = api.post(f"/decisions/{made['id']}/approve", f"{bank}_approver",
                        expect=200).get_json()
        assert made["status"] == "approved"
    return made


@pytest.fixture
def market(api, world):
    """Two banks' receivables products, a verified receivable, and a request to both."""
    p1 = publish(api, "bank")
    p2 = publish(api, "bank2", name="Trade receivables", max_advance_rate="0.9")
    rec = receivable("B2B-API-1", amount="10000.00")
    made = api.post("/requests", "sme", request_body([p1, p2], rec), expect=201).get_json()
    return {"p1": p1, "p2": p2, "rec": rec, "request": made}


# --------------------------------------------------------------------------- the whole path

def test_two_banks_offer_the_sme_accepts_the_better_the_bank_lends_and_is_repaid(api, world):
    p1 = publish(api, "bank")
    assert (p1["max_advance_rate"], p1["rate_min"], p1["status"]) == ("0.8", "0.04", "active")
    p2 = publish(api, "bank2", name="Trade receivables", max_advance_rate="0.9")
    rec = receivable("B2B-API-1", amount="10000.00")

    listed = api.get("/products", "sme", expect=200).get_json()
    assert {p["id"] for p in listed["items"]} == {p1["id"], p2["id"]}
    body = api.get("/marketplace?currency=USD", "sme", expect=200).get_json()
    market, sets = body["items"], {c["key"]: c["items"] for c in body["collateral_sets"]}
    by_product = {m["product"]["id"]: m for m in market}
    first = by_product[p1["id"]]
    assert len(sets) == len(body["collateral_sets"])            # each set listed once
    assert first["eligibility"]["amount"] == "8000.00"
    assert first["eligibility"]["collateral_value"] == "10000.00"
    assert first["eligibility"]["binding"] == "advance" and first["eligibility"]["eligible"]
    assert by_product[p2["id"]]["eligibility"]["amount"] == "9000.00"
    assert [(i["kind"], i["id"], i["value"], i["available"])
            for i in sets[first["collateral_set"]]] == [("receivable", rec.id, "10000.00", True)]

    made = api.post("/requests", "sme", request_body([p1, p2], rec), expect=201).get_json()
    assert made["status"] == "submitted" and made["amount"] == "7000.00"
    assert sorted(t["eligible_amount"] for t in made["targets"]) == ["8000.00", "9000.00"]
    assert made["collateral"][0]["value"] == "10000.00" and made["decisions"] == []

    dearer = offer(api, made["id"], "bank", "0.07")
    better = offer(api, made["id"], "bank2", "0.06")
    seen = api.get(f"/requests/{made['id']}", "sme", expect=200).get_json()
    offers = {d["id"]: d for d in seen["decisions"]}
    assert set(offers) == {dearer["id"], better["id"]}
    for d in offers.values():
        assert d["kind"] == "offer" and d["status"] == "approved" and d["tenor_days"] == 90
        assert AMOUNT.match(d["total_cost"]) and AMOUNT.match(d["fees"])
        assert d["fees"] == "35.00" and d["expiry_date"]
    cheapest = min(offers.values(), key=lambda d: Decimal(d["total_cost"]))
    assert cheapest["id"] == better["id"] and cheapest["annual_rate"] == "0.06"
    assert Decimal(cheapest["apr"]) < Decimal(offers[dearer["id"]]["apr"])
    assert Decimal(cheapest["apr"]) > Decimal("0.06")   # the fees count

    loan = api.post(f"/offers/{better['id']}/accept", "sme", expect=201).get_json()
    assert loan["status"] == "awaiting_disbursement" and loan["principal"] == "7000.00"
    assert loan["bank_org_id"] == world["bank2"].org_id and loan["annual_rate"] == "0.06"
    after = api.get(f"/requests/{made['id']}", "sme", expect=200).get_json()
    assert after["status"] == "accepted" and after["loan_id"] == loan["id"]
    assert {d["id"]: d["status"] for d in after["decisions"]} == {
        dearer["id"]: "lapsed", better["id"]: "accepted"}

    paid_out = api.post(f"/loans/{loan['id']}/disburse", "bank2",
                        {"reference": "HX-DISB-0001"}, expect=200).get_json()
    assert paid_out["status"] == "disbursed" and paid_out["maturity_date"]
    assert [(i["number"], i["principal_due"], i["status"]) for i in paid_out["schedule"]] == [
        (1, "7000.00", "pending")]
    owed = api.get(f"/loans/{loan['id']}", "sme", expect=200).get_json()["position"]
    assert owed["principal"] == "7000.00" and owed["total"] == "7000.00"

    repayment = api.post(f"/loans/{loan['id']}/repayments", "sme",
                         {"amount": owed["total"], "currency": "USD"}, key="repay-all-1",
                         expect=201).get_json()
    assert repayment["status"] == "pending" and repayment["method"] == "bank_transfer"
    confirmed = api.client.post(
        f"/api/v1/settlement/records/{repayment['settlement_record_id']}/confirm",
        json={"reference": "SME-PAY-0001"}, headers=api.as_("bank2"))
    assert confirmed.status_code == 200, confirmed.get_json()

    closed = api.get(f"/loans/{loan['id']}", "sme", expect=200).get_json()
    assert closed["status"] == "repaid" and closed["closed_at"]
    assert closed["position"]["total"] == "0.00"
    assert [i["status"] for i in closed["schedule"]] == ["paid"]
    [paid] = closed["repayments"]
    assert paid["status"] == "applied" and paid["applied_amount"] == "7000.00"
    assert [(a["component"], a["amount"]) for a in paid["allocations"]] == [
        ("principal", "7000.00")]
    assert [x["status"] for x in api.get("/loans", "bank2", expect=200).get_json()["items"]] \
        == ["repaid"]
    assert api.get("/loans", "bank", expect=200).get_json()["items"] == []


def test_the_contract_gives_its_terms_their_fingerprint_and_the_pdf(api, market):
    offered = offer(api, market["request"]["id"], "bank2", "0.06")
    loan = api.post(f"/offers/{offered['id']}/accept", "sme", expect=201).get_json()
    contract = api.get(f"/loans/{loan['id']}/contract", "bank2", expect=200).get_json()
    text = contract["terms_json"]
    assert hashlib.sha256(text.encode()).hexdigest() == contract["terms_sha256"]
    assert contract["terms_verified"] is True
    assert contract["terms"]["amount"] == "7000.00" and contract["terms"]["annual_rate"] == "0.06"
    assert contract["pdf_url"] == f"/financing/loans/{loan['id']}/contract.pdf"
    body = api.client.get(contract["pdf_api_url"], headers=api.as_("sme"))
    assert body.status_code == 200 and body.mimetype == "application/pdf"
    assert hashlib.sha256(body.data).hexdigest() == contract["pdf_sha256"]
    again = api.get(f"/loans/{loan['id']}/contract", "sme", expect=200).get_json()
    assert again["pdf_sha256"] == contract["pdf_sha256"]      # rendered once, kept
    api.get(f"/loans/{loan['id']}/contract", "bank", expect=404)


def test_a_facility_binds_what_the_sme_can_borrow_and_holds_the_loan(api, world):
    p1 = publish(api, "bank")
    receivable("B2B-API-F", amount="10000.00")
    expiry = (clock.today() + timedelta(days=365)).isoformat()
    body = {"sme_org_id": world["sme"].org_id, "limit": "6000.00", "currency": "USD",
            "expiry_date": expiry}
    refused = api.post("/facilities", "bank", body, expect=403)   # an officer, not approver
    assert refused.get_json()["error"]["code"] == "forbidden"
    granted = api.post("/facilities", "bank_approver", body, expect=201).get_json()
    assert (granted["limit"], granted["available"], granted["used"]) == (
        "6000.00", "6000.00", "0.00")
    market = api.get("/marketplace?currency=USD", "sme", expect=200).get_json()["items"]
    entry = next(m for m in market if m["product"]["id"] == p1["id"])
    assert entry["eligibility"]["amount"] == "6000.00"
    assert entry["eligibility"]["binding"] == "facility"
    assert entry["eligibility"]["advance_limit"] == "8000.00"
    [seen] = api.get("/facilities", "sme", expect=200).get_json()["items"]
    assert seen["id"] == granted["id"] and seen["bank_name"]
    assert api.get("/facilities", "bank2", expect=200).get_json()["items"] == []


# --------------------------------------------------------------------------- four eyes

def test_the_officer_who_prepared_an_offer_cannot_approve_it(api, world, market):
    world["both"] = second_user(world["bank"], Role.OFFICER, Role.APPROVER)
    target = target_for(api, market["request"]["id"], "bank")
    made = api.post(f"/review/{target}/offer", "both", {
        "amount": "7000.00", "currency": "USD", "annual_rate": "0.065",
        "tenor_days": 90}, expect=201).get_json()
    own = api.post(f"/decisions/{made['id']}/approve", "both", expect=403).get_json()
    assert own["error"]["code"] == "four_eyes"
    officer = api.post(f"/decisions/{made['id']}/approve", "bank", expect=403).get_json()
    assert officer["error"]["code"] == "forbidden"
    assert api.get(f"/requests/{market['request']['id']}", "sme").get_json()["decisions"] == []
    assert db.session.get(Decision, made["id"]).status.value == "prepared"
    approved = api.post(f"/decisions/{made['id']}/approve", "bank_approver",
                        expect=200).get_json()
    assert approved["approved_by_id"] == world["bank_approver"].id


def test_a_rejection_reaches_the_sme_with_its_reasons_once_approved(api, market):
    target = target_for(api, market["request"]["id"], "bank")
    made = api.post(f"/review/{target}/rejection", "bank", {
        "reasons": ["outside_appetite", "credit_history"],
        "text": "We do not finance this buyer's country at present."}, expect=201).get_json()
    api.post(f"/decisions/{made['id']}/approve", "bank_approver", expect=200)
    [seen] = api.get(f"/requests/{market['request']['id']}", "sme").get_json()["decisions"]
    assert seen["kind"] == "rejection" and seen["reasons"] == ["outside_appetite",
                                                               "credit_history"]
    assert seen["amount"] is None and seen["apr"] is None and seen["reason_text"]
    accept = api.post(f"/offers/{made['id']}/accept", "sme", expect=409).get_json()
    assert accept["error"]["code"] == "not_an_offer"


# --------------------------------------------------------------------------- bad input

def _error(response, status: int, field: str | None, code: str | None = None) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    error = response.get_json()["error"]
    assert error["field"] == field, error
    assert error["message"]
    if code is not None:
        assert error["code"] == code, error
    return error


@pytest.mark.parametrize("change, status, field, code", [
    ({"amount": "8000.01"}, 422, "amount", "above_eligible_amount"),
    ({"tenor_days": 181}, 422, "tenor_days", None),
    ({"currency": "EUR", "amount": "100.00"}, 422, "currency", None),
    ({"currency": "XYZ"}, 422, "currency", "unknown_currency"),
    ({"amount": "7,000.00"}, 422, "amount", "validation_failed"),
    ({"amount": "7000.001"}, 422, "amount", "validation_failed"),
    ({"amount": "1e3"}, 422, "amount", "validation_failed"),
    ({"amount": 7000}, 422, "amount", "validation_failed"),
    ({"collateral": [{"kind": "car", "id": 1}]}, 422, "collateral.0.kind", None),
    ({"collateral": [{"kind": "warehouse_receipt", "id": 1}]}, 422, "collateral", None),
    ({"product_ids": [2147483647]}, 422, "product_ids", None),
])
def test_a_request_with_bad_input_names_the_field_and_makes_nothing(
        api, world, change, status, field, code):
    p1 = publish(api, "bank")
    rec = receivable("B2B-API-BAD", amount="10000.00")
    response = api.post("/requests", "sme", request_body([p1], rec, **change))
    _error(response, status, field, code)
    assert count(FinancingRequest) == 0 and count(Decision) == 0


def test_collateral_of_another_sme_is_refused(api, world):
    p1 = publish(api, "bank")
    rec = receivable("B2B-API-THEIRS", amount="10000.00")   # the world's SME's
    response = api.post("/requests", "other_sme", request_body([p1], rec, amount="100.00"))
    error = _error(response, 422, "collateral")
    assert str(rec.id) in error["message"]
    assert count(FinancingRequest) == 0


@pytest.mark.parametrize("change, field", [
    ({"kind": "mortgage"}, "kind"),
    ({"rate_min": "6.5%"}, "rate_min"),
    ({"rate_min": 0.04}, "rate_min"),
    ({"rate_max": "0.0900001"}, "rate_max"),
    ({"rate_min": "0.10"}, "rate_min"),              # above the highest rate
    ({"max_advance_rate": "1.2"}, "max_advance_rate"),
    ({"currencies": ["usd"]}, "currencies.0"),
    ({"day_count": 364}, "day_count"),
    ({"repayment_type": "balloon"}, "repayment_type"),
])
def test_a_product_with_bad_terms_names_the_field_and_makes_nothing(api, change, field):
    response = api.post("/products", "bank", product_body(**change))
    _error(response, 422, field)
    assert count(FinancingProduct) == 0


def test_unknown_kinds_and_statuses_in_a_query_are_422(api):
    _error(api.get("/products?kind=mortgage", "sme"), 422, "kind")
    _error(api.get("/loans?status=lost", "bank"), 422, "status")
    _error(api.get("/review?show=mine", "bank"), 422, "show")
    _error(api.get("/marketplace?currency=usd", "sme"), 422, "currency")


def test_an_offer_beyond_the_product_or_the_eligible_amount_is_refused(api, market):
    target = target_for(api, market["request"]["id"], "bank")
    base = {"amount": "7000.00", "currency": "USD", "annual_rate": "0.065", "tenor_days": 90}
    for change, field in (({"amount": "8000.01"}, "amount"), ({"tenor_days": 181}, "tenor_days"),
                          ({"annual_rate": "0.095"}, "annual_rate"),
                          ({"annual_rate": "six"}, "annual_rate"),
                          ({"currency": "CNY"}, "currency"),
                          ({"fees": "800.00"}, "fees")):
        _error(api.post(f"/review/{target}/offer", "bank", {**base, **change}), 422, field)
    assert count(Decision) == 0


def test_accepting_a_lapsed_or_an_expired_offer_is_refused(api, market):
    request_id = market["request"]["id"]
    first = offer(api, request_id, "bank", "0.07")
    second = offer(api, request_id, "bank2", "0.06")
    api.post(f"/offers/{second['id']}/accept", "sme", expect=201)
    lapsed = api.post(f"/offers/{first['id']}/accept", "sme")
    assert "another offer" in _error(lapsed, 409, None, "offer_lapsed")["message"]
    assert count(Loan) == 1

    rec = receivable("B2B-API-EXP", amount="10000.00")
    later = api.post("/requests", "sme", request_body([market["p1"]], rec),
                     expect=201).get_json()
    short = offer(api, later["id"], "bank", "0.07", expiry_date=clock.today().isoformat())
    clock.advance(timedelta(days=2))
    _error(api.post(f"/offers/{short['id']}/accept", "sme"), 409, None, "offer_expired")
    assert count(Loan) == 1
    assert db.session.get(FinancingRequest, later["id"]).status.value == "submitted"


def _disbursed_loan(api, market) -> dict:
    offered = offer(api, market["request"]["id"], "bank2", "0.06")
    loan = api.post(f"/offers/{offered['id']}/accept", "sme", expect=201).get_json()
    api.post(f"/loans/{loan['id']}/disburse", "bank2", {"reference": "HX-DISB-0002"},
             expect=200)
    return loan


def test_a_repayment_that_cannot_be_made_is_refused_and_nothing_is_recorded(api, market):
    loan = _disbursed_loan(api, market)
    path = f"/loans/{loan['id']}/repayments"
    _error(api.post(path, "sme", {"amount": "100.00", "currency": "JPY"}, key="jpy-1"),
           422, "currency", "rate_missing")
    _error(api.post(path, "sme", {"amount": "7000.01", "currency": "USD"}, key="over-1"),
           422, "amount", "above_amount_owed")
    _error(api.post(path, "sme", {"amount": "12.345", "currency": "USD"}, key="dec-1"),
           422, "amount")
    _error(api.post(path, "sme", {"amount": "100.00", "currency": "USD"}), 422, KEY)
    _error(api.post(path, "sme", {"amount": "100.00", "currency": "USD", "method": "cash"},
                    key="cash-1"), 422, "method")
    _error(api.post(path, "bank2", {"amount": "100.00", "currency": "USD"}, key="b-1"),
           403, None, "forbidden")
    assert count(Repayment) == 0
    assert db.session.scalar(select(func.count(SettlementRecord.id)).where(
        SettlementRecord.obligation_kind == "repayment")) == 0
    # in CNY, converted at the day's rate: accepted
    paid = api.post(path, "sme", {"amount": "719.00", "currency": "CNY"}, key="cny-1",
                    expect=201).get_json()
    assert paid["currency"] == "CNY" and paid["amount"] == "719.00"
    by_card = api.post(path, "sme", {"amount": "100.00", "currency": "USD", "method": "card"},
                       key="card-1", expect=201).get_json()
    record = db.session.get(SettlementRecord, by_card["settlement_record_id"])
    assert by_card["method"] == "card" and record.method.value == "card"
    assert record.payer_org_id == market["rec"].seller_org_id


# --------------------------------------------------------------------------- retries

def test_a_retried_post_with_the_same_key_returns_the_same_answer_and_acts_once(api, world):
    p1 = publish(api, "bank")
    rec = receivable("B2B-API-RETRY", amount="10000.00")
    body = request_body([p1], rec)
    first = api.post("/requests", "sme", body, key="req-1", expect=201)
    again = api.post("/requests", "sme", body, key="req-1", expect=201)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_data() == first.get_data()
    assert count(FinancingRequest) == 1
    other = api.post("/requests", "sme", {**body, "amount": "10.00"}, key="req-1")
    _error(other, 422, KEY, "idempotency_key_reused")

    request_id = first.get_json()["id"]
    offered = offer(api, request_id, "bank", "0.065")
    loan = api.post(f"/offers/{offered['id']}/accept", "sme", key="acc-1",
                    expect=201).get_json()
    api.post(f"/loans/{loan['id']}/disburse", "bank", {"reference": "HX-DISB-0003"},
             key="disb-1", expect=200)
    payment = {"amount": "1000.00", "currency": "USD"}
    one = api.post(f"/loans/{loan['id']}/repayments", "sme", payment, key="pay-1",
                   expect=201)
    two = api.post(f"/loans/{loan['id']}/repayments", "sme", payment, key="pay-1",
                   expect=201)
    assert two.get_data() == one.get_data()
    assert count(Repayment) == 1 and count(Loan) == 1
    assert db.session.scalar(select(Repayment.idempotency_key)) == "pay-1"


# --------------------------------------------------------------------------- scoping

def test_a_bank_sees_neither_another_banks_decisions_nor_its_evidence_pack(api, world, market):
    request_id = market["request"]["id"]
    theirs = offer(api, request_id, "bank", "0.07")
    draft = offer(api, request_id, "bank2", "0.06", approve=False)
    target = target_for(api, request_id, "bank")
    pack = api.get(f"/review/{target}", "bank", expect=200).get_json()
    assert [d["id"] for d in pack["decisions"]] == [theirs["id"]]
    assert pack["items"][0]["verdict"] == "verified" and pack["eligibility"]["amount"]
    assert pack["sme"]["id"] == world["sme"].org_id

    _error(api.get(f"/review/{target}", "bank2"), 404, None, "not_found")
    _error(api.post(f"/decisions/{theirs['id']}/approve", "bank2_approver"), 404, None)
    _error(api.post(f"/decisions/{theirs['id']}/withdraw", "bank2"), 404, None)
    seen = api.get(f"/requests/{request_id}", "bank2", expect=200).get_json()
    assert [d["id"] for d in seen["decisions"]] == [draft["id"]]
    assert [t["bank_org_id"] for t in seen["targets"]] == [world["bank2"].org_id]
    queue = api.get("/review?show=all", "bank2", expect=200).get_json()["items"]
    assert [row["decision"]["id"] for row in queue] == [draft["id"]]
    # the SME sees the approved offer, never the other bank's draft
    sme = api.get(f"/requests/{request_id}", "sme", expect=200).get_json()
    assert [d["id"] for d in sme["decisions"]] == [theirs["id"]]
    assert len(sme["targets"]) == 2
    _error(api.get(f"/requests/{request_id}", "other_sme"), 404, None)
    _error(api.post(f"/offers/{theirs['id']}/accept", "other_sme"), 404, None)


def test_the_evidence_pack_shows_no_alert_about_another_banks_loan(api, world, market):
    from finance_app.oversight.services import raise_alert
    from finance_app.oversight.states import Severity
    sme = world["sme"].org_id
    raise_alert("instalment_overdue", severity=Severity.MEDIUM, subject_org_id=sme,
                party_org_id=world["bank2"].org_id, dedupe_key="t:other-bank",
                message="Loan 99: instalment 1 of 5,000.00 USD is unpaid.")
    raise_alert("filing_changed", severity=Severity.LOW, subject_org_id=sme,
                dedupe_key="t:general", message="The SME changed its bank account.")
    db.session.commit()
    target = target_for(api, market["request"]["id"], "bank")
    alerts = api.get(f"/review/{target}", "bank", expect=200).get_json()["alerts"]
    assert [a["message"] for a in alerts] == ["The SME changed its bank account."]
    other = target_for(api, market["request"]["id"], "bank2")
    alerts = api.get(f"/review/{other}", "bank2", expect=200).get_json()["alerts"]
    assert len(alerts) == 2


def test_a_bank_manages_only_its_own_products(api):
    mine = publish(api, "bank")
    _error(api.post(f"/products/{mine['id']}/pause", "bank2", {}), 403, None, "forbidden")
    paused = api.post(f"/products/{mine['id']}/pause", "bank", {"note": "Book full"},
                      expect=200).get_json()
    assert paused["status"] == "paused"
    _error(api.get(f"/products/{mine['id']}", "sme"), 404, None)
    assert api.get("/products", "sme", expect=200).get_json()["items"] == []
    assert api.get("/products", "bank", expect=200).get_json()["total"] == 1
    _error(api.post(f"/products/{mine['id']}/pause", "bank", {}), 409, None)
    resumed = api.post(f"/products/{mine['id']}/resume", "bank", expect=200).get_json()
    assert resumed["status"] == "active"


def test_a_loan_cancelled_before_disbursement_lets_the_collateral_go(api, market):
    offered = offer(api, market["request"]["id"], "bank", "0.065")
    loan = api.post(f"/offers/{offered['id']}/accept", "sme", expect=201).get_json()
    _error(api.post(f"/loans/{loan['id']}/cancel", "sme", {"reason": "no"}), 422, "reason")
    cancelled = api.post(f"/loans/{loan['id']}/cancel", "sme",
                         {"reason": "The buyer paid early."}, expect=200).get_json()
    assert cancelled["status"] == "cancelled"
    _error(api.post(f"/loans/{loan['id']}/disburse", "bank", {"reference": "HX-DISB-0009"}),
           409, None, "illegal_transition")
    again = api.get("/marketplace?currency=USD", "sme", expect=200).get_json()
    assert again["collateral_sets"] and all(
        i["available"] for c in again["collateral_sets"] for i in c["items"])


# --------------------------------------------------------------------------- the document

def test_the_openapi_document_lists_the_financing_operations(client):
    document = client.get("/api/v1/openapi.json").get_json()
    listed = {(method, path[len(API):]) for path, item in document["paths"].items()
              if path.startswith(API) for method in item if method in ("get", "post")}
    assert listed == {
        ("get", "/products"), ("post", "/products"), ("get", "/products/{product_id}"),
        ("post", "/products/{product_id}/pause"), ("post", "/products/{product_id}/resume"),
        ("get", "/facilities"), ("post", "/facilities"), ("get", "/marketplace"),
        ("get", "/requests"), ("post", "/requests"), ("get", "/requests/{request_id}"),
        ("post", "/requests/{request_id}/withdraw"), ("post", "/offers/{decision_id}/accept"),
        ("get", "/review"), ("get", "/review/{target_id}"),
        ("post", "/review/{target_id}/offer"), ("post", "/review/{target_id}/rejection"),
        ("post", "/decisions/{decision_id}/approve"),
        ("post", "/decisions/{decision_id}/withdraw"),
        ("get", "/loans"), ("get", "/loans/{loan_id}"), ("post", "/loans/{loan_id}/disburse"),
        ("post", "/loans/{loan_id}/cancel"), ("post", "/loans/{loan_id}/repayments"),
        ("get", "/loans/{loan_id}/contract"), ("get", "/loans/{loan_id}/contract.pdf")}
    rate = document["components"]["schemas"]["FinancingProductIn"]["properties"]["rate_min"]
    assert rate["type"] == "string"
