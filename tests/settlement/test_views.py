"""Payments in the browser (test client): the payee confirms a transfer with a clear error
for a bad reference, the payer pays by card through the local Stripe server, the card
page lets Stripe.js in, an unreachable Stripe is explained, the operator charges fees and
reads the reconciliation page; and the same over the API."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from finance_app.accounts.states import OrgKind, Role
from finance_app.extensions import db
from finance_app.ledger.models import LedgerEntry, LedgerTransaction
from finance_app.settlement.models import SettlementRecord
from finance_app.settlement.states import SettlementStatus
from tests.api.builders import make_caller
from tests.conftest import sign_in
from tests.factories import make_org_user
from tests.settlement.builders import owed

EN = {"Accept-Language": "en"}


def text(response) -> str:
    return response.get_data(as_text=True)


def count(model) -> int:
    return db.session.execute(select(func.count()).select_from(model)).scalar_one()


@pytest.fixture
def signed_in(app, make_client):
    sme = make_org_user(OrgKind.SME, roles=(Role.ADMIN, Role.OFFICER))
    bank = make_org_user(OrgKind.BANK, roles=(Role.OFFICER, Role.APPROVER))
    operator = make_org_user(OrgKind.PLATFORM_OPERATOR, roles=(Role.OFFICER, Role.APPROVER))
    clients = {}
    for name, user in (("sme", sme), ("bank", bank), ("operator", operator)):
        clients[name] = make_client()
        sign_in(clients[name], user)
    return sme, bank, operator, clients


def test_the_payee_confirms_a_transfer_from_the_page(signed_in):
    sme, bank, _, c = signed_in
    record, _, _ = owed(sme, bank)
    page = text(c["bank"].get(f"/settlement/{record.id}", headers=EN))
    assert 'id="confirm"' in page and "Instalment 1 of loan 7" in page
    assert 'id="confirm"' not in text(c["sme"].get(f"/settlement/{record.id}", headers=EN))
    refused = c["bank"].post(f"/settlement/{record.id}/confirm",
                             data={"reference": "bad;ref"}, headers=EN)
    assert refused.status_code == 422
    assert "4 to 80 letters, digits" in text(refused) and count(LedgerTransaction) == 0
    done = c["bank"].post(f"/settlement/{record.id}/confirm",
                          data={"reference": "ICBC 2026-12-01 998"}, headers=EN,
                          follow_redirects=True)
    assert "Payment confirmed and booked." in text(done)
    db.session.refresh(record)
    assert record.status is SettlementStatus.PAID and count(LedgerEntry) == 2
    # the payer's list shows it paid
    listing = text(c["sme"].get("/settlement/?side=pay&status=paid", headers=EN))
    assert f'data-record="{record.id}"' in listing


def test_a_stranger_gets_404(signed_in, make_client):
    sme, bank, _, _ = signed_in
    record, _, _ = owed(sme, bank)
    stranger = make_client()
    sign_in(stranger, make_org_user(OrgKind.SME))
    assert stranger.get(f"/settlement/{record.id}").status_code == 404
    assert stranger.post(f"/settlement/{record.id}/confirm",
                         data={"reference": "REF-1234"}).status_code == 404


def test_the_payer_pays_by_card_through_the_pages(signed_in, local_stripe):
    sme, bank, _, c = signed_in
    record, _, _ = owed(sme, bank, amount="480.00", currency="EUR", key="web-card")
    start = c["sme"].post(f"/settlement/{record.id}/card")
    assert start.status_code == 302 and start.headers["Location"].endswith(
        f"/settlement/{record.id}/card")
    card_page = c["sme"].get(f"/settlement/{record.id}/card", headers=EN)
    csp = card_page.headers["Content-Security-Policy"]
    assert "script-src 'self' https://js.stripe.com" in csp and "frame-src https://js.stripe.com" in csp
    assert 'id="card-element"' in text(card_page) and "data-key=\"pk_test_local\"" in text(card_page)
    declined = c["sme"].post(f"/settlement/{record.id}/card/pay", headers=EN,
                             data={"token": local_stripe.card_token("4000000000000341")})
    assert declined.status_code == 422 and "declined" in text(declined)
    assert count(LedgerTransaction) == 0
    paid = c["sme"].post(f"/settlement/{record.id}/card/pay", headers=EN,
                         data={"token": local_stripe.card_token()}, follow_redirects=True)
    assert "Paid by card. Thank you." in text(paid)
    db.session.refresh(record)
    assert record.status is SettlementStatus.PAID and count(LedgerEntry) == 2
    assert {pi.status for pi in local_stripe.intents(settlement_id=record.id)} == {
        "canceled", "succeeded"}


def test_three_d_secure_sends_the_client_secret_to_the_page(signed_in, local_stripe):
    sme, bank, _, c = signed_in
    record, _, _ = owed(sme, bank, amount="60.00", key="web-3ds")
    c["sme"].post(f"/settlement/{record.id}/card")
    page = c["sme"].post(f"/settlement/{record.id}/card/pay", headers=EN,
                         data={"token": local_stripe.card_token("4000002760003184")})
    secret = re.search(r'data-client-secret="([^"]+)"', text(page)).group(1)
    assert secret.startswith("pi_") and 'id="refresh-form"' in text(page)
    local_stripe.authenticate(secret.split("_secret_")[0], secret)
    done = c["sme"].post(f"/settlement/{record.id}/card/refresh", follow_redirects=True,
                         headers=EN)
    assert "Paid by card" in text(done)


def test_an_unreachable_stripe_is_explained_and_nothing_is_booked(app, signed_in, local_stripe):
    from tests.stripe_server import closed_port_url
    sme, bank, _, c = signed_in
    record, _, _ = owed(sme, bank, key="web-down")
    app.config["STRIPE_API_BASE"] = closed_port_url()
    response = c["sme"].post(f"/settlement/{record.id}/card", follow_redirects=True, headers=EN)
    assert response.status_code == 200
    assert "cannot be reached right now; nothing has been charged or booked" in text(response)
    db.session.refresh(record)
    assert record.payment_intent_id is None and count(LedgerTransaction) == 0


def test_rmb_is_refused_by_card_with_the_reason(signed_in, local_stripe):
    sme, bank, _, c = signed_in
    record, _, _ = owed(sme, bank, currency="CNY", key="web-rmb")
    page = text(c["sme"].get(f"/settlement/{record.id}", headers=EN))
    assert "RMB payments within the mainland go by bank transfer." in page
    assert 'id="pay-card"' not in page
    refused = c["sme"].post(f"/settlement/{record.id}/card", follow_redirects=True, headers=EN)
    assert "bank transfer" in text(refused)
    assert local_stripe.intents(settlement_id=record.id) == []


def test_the_operator_charges_a_fee_and_bad_input_is_explained(signed_in):
    sme, _, _, c = signed_in
    form = text(c["operator"].get("/settlement/fees/new", headers=EN))
    key = re.search(r'name="key" value="([0-9a-f]+)"', form).group(1)
    refused = c["operator"].post("/settlement/fees/new", headers=EN, data={
        "payer_org_id": sme.org_id, "amount": "10.123", "currency": "USD",
        "description": "Fee", "key": key})
    assert refused.status_code == 422 and "at most 2 decimal places" in text(refused)
    refused = c["operator"].post("/settlement/fees/new", headers=EN, data={
        "payer_org_id": sme.org_id, "amount": "10", "currency": "ABC",
        "description": "Fee", "key": key})
    assert refused.status_code == 422 and count(SettlementRecord) == 0
    done = c["operator"].post("/settlement/fees/new", headers=EN, follow_redirects=True, data={
        "payer_org_id": sme.org_id, "amount": "250.00", "currency": "USD",
        "description": "Onboarding fee", "key": key})
    assert "Fee charged: 250.00 USD." in text(done)
    # the form posted again (a double submit) charges nothing more
    c["operator"].post("/settlement/fees/new", headers=EN, data={
        "payer_org_id": sme.org_id, "amount": "250.00", "currency": "USD",
        "description": "Onboarding fee", "key": key})
    assert count(SettlementRecord) == 1 and count(LedgerTransaction) == 1
    assert "no breaks" in text(c["operator"].get("/settlement/reconciliation", headers=EN)).lower()
    assert c["sme"].get("/settlement/reconciliation").status_code == 403


def test_the_api_pays_by_card_and_confirms(app, client, local_stripe):
    payer = make_caller(OrgKind.SME)
    bank = make_caller(OrgKind.BANK, roles=(Role.OFFICER,))
    from finance_app.accounts.models import User
    record, _, _ = owed(db.session.get(User, payer.user_id), db.session.get(User, bank.user_id),
                        amount="99.90", key="api-card")
    started = client.post(f"/api/v1/settlement/records/{record.id}/card-payment",
                          headers=payer.headers)
    assert started.status_code == 201
    body = started.get_json()
    assert body["client_secret"].startswith(body["payment_intent_id"])
    again = client.post(f"/api/v1/settlement/records/{record.id}/card-payment",
                        headers=payer.headers).get_json()
    assert again["payment_intent_id"] == body["payment_intent_id"]
    paid = client.post(f"/api/v1/settlement/records/{record.id}/card-payment/pay",
                       headers=payer.headers, json={"token": local_stripe.card_token()})
    assert paid.status_code == 200 and paid.get_json()["status"] == "succeeded"
    assert paid.get_json()["record"]["status"] == "paid"
    assert paid.get_json()["record"]["amount"] == "99.90"
    refused = client.post(f"/api/v1/settlement/records/{record.id}/confirm",
                          headers=bank.headers, json={"reference": "REF-0001"})
    assert refused.status_code == 409
    assert count(LedgerEntry) == 2
    listing = client.get("/api/v1/settlement/records?side=pay", headers=payer.headers).get_json()
    assert [r["id"] for r in listing["items"]] == [record.id]
    assert client.get("/api/v1/settlement/records?side=pay",
                      headers=bank.headers).get_json()["total"] == 0


def test_the_api_says_503_when_stripe_is_down_and_a_retry_works(app, client, local_stripe):
    from tests.stripe_server import closed_port_url
    payer = make_caller(OrgKind.SME)
    bank = make_caller(OrgKind.BANK, roles=(Role.OFFICER,))
    from finance_app.accounts.models import User
    record, _, _ = owed(db.session.get(User, payer.user_id), db.session.get(User, bank.user_id),
                        key="api-down")
    app.config["STRIPE_API_BASE"] = closed_port_url()
    headers = {**payer.headers, "Idempotency-Key": "start-1"}
    down = client.post(f"/api/v1/settlement/records/{record.id}/card-payment", headers=headers)
    assert down.status_code == 503
    assert down.get_json()["error"]["code"] == "payment_gateway_unavailable"
    app.config["STRIPE_API_BASE"] = local_stripe.url
    retry = client.post(f"/api/v1/settlement/records/{record.id}/card-payment", headers=headers)
    assert retry.status_code == 201 and "Idempotent-Replayed" not in retry.headers
    assert len(local_stripe.intents(settlement_id=record.id)) == 1
