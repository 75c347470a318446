"""Export credit insurance through the pages and the API: wiring, refusals, idempotency."""
from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from finance_app import clock
from finance_app.accounts import services as accounts
from finance_app.extensions import db
from finance_app.insurance.models import BuyerLimit, Policy, ShipmentDeclaration
from tests.conftest import sign_in
from tests.insurance.conftest import START, approved_limit, declare, shipped

EN = {"Accept-Language": "en"}


def text(response) -> str:
    return response.get_data(as_text=True)


def count(model) -> int:
    return db.session.execute(select(func.count()).select_from(model)).scalar_one()


@pytest.fixture
def clients(world, make_client):
    made = {}
    with clock.frozen_at(START):
        for name in ("insurer", "sme", "bank", "other_sme"):
            made[name] = make_client()
            sign_in(made[name], world[name])
    return made


@pytest.fixture
def tokens(world):
    made = {}
    for name in ("insurer", "sme", "bank", "other_sme"):
        _, raw = accounts.create_token(actor=world[name], name="tests")
        made[name] = {"Authorization": f"Bearer {raw}", **EN}
    db.session.commit()
    return made


POLICY_FORM = {"start_date": "2026-10-01", "end_date": "2027-09-30", "currency": "USD",
               "currencies": "EUR", "max_liability": "500000", "commercial_coverage": "90",
               "political_coverage": "95", "declaration_mode": "after_shipment",
               "declaration_days": "15", "overdue_report_days": "60", "waiting_days": "120",
               "insolvency_waiting_days": "30", "rates": "5,90,0.80\n5,180,1.10"}


def test_pages_issue_a_policy_decide_a_limit_and_declare_a_shipment(world, clients):
    form = {**POLICY_FORM, "insured_org_id": world["sme"].org_id}
    refused = clients["insurer"].post("/insurance/policies/new",
                                      data={**form, "commercial_coverage": "105"}, headers=EN)
    assert refused.status_code == 422 and "at most 100%" in text(refused)
    assert count(Policy) == 0
    done = clients["insurer"].post("/insurance/policies/new", data=form, headers=EN)
    assert done.status_code == 302, text(done)[:3000]
    policy = db.session.execute(select(Policy)).scalar_one()
    page = text(clients["sme"].get(f"/insurance/policies/{policy.id}", headers=EN))
    assert policy.number in page and "$500,000.00" in page and "Apply for a buyer" in page
    applied = clients["sme"].post(f"/insurance/policies/{policy.id}/limits", headers=EN, data={
        "buyer_name": "Comercial Paulista Ltda", "buyer_country": "BR",
        "buyer_registration_no": "BR-CNPJ-1", "amount": "50000", "payment_term_days": "120"})
    assert applied.status_code == 302
    limit = db.session.execute(select(BuyerLimit)).scalar_one()
    assert clients["sme"].post(f"/insurance/limits/{limit.id}/decide", headers=EN,
                               data={"action": "approve", "amount": "50000"}).status_code == 403
    approved = clients["insurer"].post(f"/insurance/limits/{limit.id}/decide", headers=EN,
                                       data={"action": "approve", "amount": "50000"})
    assert approved.status_code == 302
    with clock.frozen_at(START):
        order = shipped("ORD-1", goods="60000.00")
        form_page = text(clients["sme"].get("/insurance/declarations/new", headers=EN))
        assert "ORD-1" in form_page
        declared = clients["sme"].post("/insurance/declarations/new", headers=EN, data={
            "buyer_limit_id": limit.id, "order_id": order.id})
        assert declared.status_code == 302, text(declared)[:3000]
        declaration = db.session.execute(select(ShipmentDeclaration)).scalar_one()
        page = text(clients["sme"].get(f"/insurance/declarations/{declaration.id}", headers=EN))
    assert "$50,000.00" in page and "$10,000.00" in page      # insured, and uninsured
    pdf = clients["sme"].get(f"/insurance/policies/{policy.id}/policy.pdf?lang=en")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    assert len(pdf.headers["X-Content-SHA256"]) == 64
    overview = text(clients["insurer"].get("/insurance/", headers=EN))
    assert "ORD-1" in overview and policy.number in overview


def test_others_are_refused_or_see_nothing(world, clients, policy):
    assert clients["sme"].get("/insurance/policies/new").status_code == 403
    assert clients["other_sme"].get(f"/insurance/policies/{policy.id}").status_code == 404
    assert clients["bank"].get(f"/insurance/policies/{policy.id}").status_code == 404


def test_the_api_declares_and_refuses_by_field_and_replays_a_retry(world, tokens, policy,
                                                                   make_client):
    client = make_client()
    with clock.frozen_at(START):
        limit = approved_limit(world, policy, amount="30000.00")
        order = shipped("ORD-1", goods="40000.00")
        pending = client.post(f"/api/v1/insurance/policies/{policy.id}/limits",
                              headers=tokens["sme"], json={
                                  "buyer_name": "Loja Lda", "buyer_country": "BR",
                                  "buyer_registration_no": "BR-77", "amount": "1000.00",
                                  "payment_term_days": 90})
        assert pending.status_code == 201 and pending.get_json()["status"] == "requested"
        refused = client.post("/api/v1/insurance/declarations", headers=tokens["sme"],
                              json={"buyer_limit_id": pending.get_json()["id"],
                                    "order_id": order.id})
        assert refused.status_code == 422
        assert refused.get_json()["error"]["field"] == "buyer_limit_id"
        body = {"buyer_limit_id": limit.id, "order_id": order.id}
        headers = {**tokens["sme"], "Idempotency-Key": "declare-ord-1"}
        first = client.post("/api/v1/insurance/declarations", headers=headers, json=body)
        assert first.status_code == 201, first.get_json()
        data = first.get_json()
        assert (data["insured"], data["uninsured"], data["premium"]) == (
            "30000.00", "10000.00", "240.00")
        again = client.post("/api/v1/insurance/declarations", headers=headers, json=body)
        assert again.headers.get("Idempotent-Replayed") == "true"
        assert count(ShipmentDeclaration) == 1
        listed = client.get("/api/v1/insurance/declarations", headers=tokens["insurer"])
        assert listed.get_json()["total"] == 1
        assert client.get("/api/v1/insurance/declarations",
                          headers=tokens["other_sme"]).get_json()["total"] == 0
        cover = client.get(f"/api/v1/insurance/declarations/{data['id']}/cover",
                           headers=tokens["sme"]).get_json()
        assert (cover["insured"], cover["coverage"], cover["remaining_buyer_limit"],
                cover["assigned_bank_org_id"]) == ("30000.00", "0.9", "0.00", None)


def test_the_api_issues_a_policy_and_refuses_coverage_above_100(world, tokens, make_client):
    client = make_client()
    body = {"insured_org_id": world["sme"].org_id, "start_date": "2026-10-01",
            "end_date": "2027-09-30", "currency": "USD", "max_liability": "100000.00",
            "commercial_coverage": "1.05", "political_coverage": "0.95",
            "rates": [{"risk_grade": 5, "max_term_days": 90, "rate": "0.008"}]}
    refused = client.post("/api/v1/insurance/policies", headers=tokens["insurer"], json=body)
    assert refused.status_code == 422
    assert refused.get_json()["error"]["field"] == "commercial_coverage"
    made = client.post("/api/v1/insurance/policies", headers=tokens["insurer"],
                       json={**body, "commercial_coverage": "0.90"})
    assert made.status_code == 201, made.get_json()
    assert made.get_json()["rates"] == [{"risk_grade": 5, "max_term_days": 90, "rate": "0.008"}]
    assert client.post("/api/v1/insurance/policies", headers=tokens["sme"],
                       json=body).status_code == 403


def test_a_bank_sees_the_cover_assigned_to_it(world, tokens, policy, make_client):
    from finance_app.insurance import services
    client = make_client()
    with clock.frozen_at(START):
        limit = approved_limit(world, policy)
        declaration = declare(world, limit, shipped("ORD-1", goods="40000.00"))
        assignment = client.post(f"/api/v1/insurance/declarations/{declaration.id}/assignments",
                                 headers=tokens["sme"], json={"bank_org_id": world["bank"].org_id})
        assert assignment.status_code == 201, assignment.get_json()
        aid = assignment.get_json()["id"]
        assert client.post(f"/api/v1/insurance/assignments/{aid}/decisions",
                           headers=tokens["insurer"],
                           json={"action": "acknowledge"}).status_code == 200
        accepted = client.post(f"/api/v1/insurance/assignments/{aid}/decisions",
                               headers=tokens["bank"], json={"action": "accept"})
        assert accepted.get_json()["status"] == "active"
        cover = client.get("/api/v1/insurance/assigned-cover", headers=tokens["bank"])
        assert [c["declaration_id"] for c in cover.get_json()["items"]] == [declaration.id]
        assert cover.get_json()["items"][0]["max_indemnity"] == "36000.00"
    assert services.active_assignment(declaration.id).bank_org_id == world["bank"].org_id
    assert Decimal("0.9") == services.get_policy(policy.id).commercial_coverage


@pytest.mark.parametrize("who", ["insurer1", "sme1", "sme2", "bank1", "operator"])
def test_every_insurance_page_of_the_demo_renders_for_its_parties(app, make_client, who):
    from finance_app.accounts.models import User
    from finance_app.insurance.models import Claim
    runner = app.test_cli_runner()
    assert runner.invoke(args=["demo"]).exit_code == 0
    user = db.session.execute(select(User).where(User.email == f"{who}@demo.test")).scalar_one()
    client = make_client()
    sign_in(client, user, app.config["DEMO_PASSWORD"])
    for lang in ("en", "zh"):
        overview = client.get("/insurance/", headers={"Accept-Language": lang})
        assert overview.status_code == 200
    seen = 0
    for model, path in ((Policy, "/insurance/policies/{}"), (BuyerLimit, "/insurance/limits/{}"),
                        (ShipmentDeclaration, "/insurance/declarations/{}"),
                        (Claim, "/insurance/claims/{}")):
        for row in db.session.execute(select(model)).scalars():
            got = client.get(path.format(row.id), headers=EN)
            assert got.status_code in (200, 404), (path, row.id, got.status_code)
            seen += got.status_code == 200
    assert seen > 0
    if who == "bank1":
        assert "Cover assigned to us" in text(client.get("/insurance/", headers=EN))
