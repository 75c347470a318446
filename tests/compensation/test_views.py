"""The risk compensation fund through the pages and the API: wiring, refusals with their
field, idempotent POSTs."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from finance_app.accounts import services as accounts
from finance_app.compensation.models import CompensationClaim, CompensationFund
from finance_app.compensation.states import ClaimStatus
from finance_app.extensions import db
from finance_app.ledger.models import LedgerTransaction
from tests.compensation.conftest import claim_for, defaulted_loan, make_fund, terms
from tests.conftest import sign_in

EN = {"Accept-Language": "en"}


def count(model) -> int:
    return db.session.execute(select(func.count()).select_from(model)).scalar_one()


@pytest.fixture
def tokens(world):
    made = {}
    for name in ("platform", "bank", "bank2"):
        _, raw = accounts.create_token(actor=world[name], name="tests")
        made[name] = {"Authorization": f"Bearer {raw}", **EN}
    db.session.commit()
    return made


FUND = {"name": "Pilot fund", "currency": "CNY", "share": "0.5", "cap_per_loan": "20000.00",
        "budget": "100000.00", "start_date": "2026-01-01", "end_date": "2099-12-31"}


def test_the_api_makes_a_fund_once_per_idempotency_key(client, tokens):
    headers = {**tokens["platform"], "Idempotency-Key": "fund-1"}
    first = client.post("/api/v1/compensation/funds", json=FUND, headers=headers)
    assert first.status_code == 201, first.get_json()
    body = first.get_json()
    assert (body["share"], body["budget"], body["remaining"], body["reconciled"]) == (
        "0.5", "100000.00", "100000.00", True)
    again = client.post("/api/v1/compensation/funds", json=FUND, headers=headers)
    assert again.status_code == 201 and again.headers.get("Idempotent-Replayed") == "true"
    assert count(CompensationFund) == 1
    assert count(LedgerTransaction) == 1


@pytest.mark.parametrize("change, field", [({"share": "1.2"}, "share"), ({"share": "0"}, "share"),
                                           ({"budget": "0"}, "budget"),
                                           ({"cap_per_loan": "0.00"}, "cap_per_loan")])
def test_bad_fund_input_over_the_api_is_a_422_with_the_field(client, tokens, change, field):
    response = client.post("/api/v1/compensation/funds", json={**FUND, **change},
                           headers=tokens["platform"])
    assert response.status_code == 422
    assert response.get_json()["error"]["field"] == field
    assert count(CompensationFund) == 0


def test_a_bank_claims_and_the_operator_approves_over_the_api(world, client, tokens):
    fund = make_fund(world)
    loan = defaulted_loan(world)
    refused = client.post("/api/v1/compensation/funds", json=FUND, headers=tokens["bank"])
    assert refused.status_code == 403
    mine = {"fund_id": fund.id, "loan_id": loan.id}
    theirs = client.post("/api/v1/compensation/claims", json=mine, headers=tokens["bank2"])
    assert theirs.status_code == 422 and theirs.get_json()["error"]["field"] == "loan_id"
    headers = {**tokens["bank"], "Idempotency-Key": "claim-1"}
    made = client.post("/api/v1/compensation/claims", json=mine, headers=headers)
    assert made.status_code == 201, made.get_json()
    assert made.get_json()["claimed"] == "20000.00" and made.get_json()["capped_by_loan_cap"]
    again = client.post("/api/v1/compensation/claims", json=mine, headers=headers)
    assert again.headers.get("Idempotent-Replayed") == "true" and count(CompensationClaim) == 1
    twice = client.post("/api/v1/compensation/claims", json=mine, headers=tokens["bank"])
    assert twice.status_code == 409 and twice.get_json()["error"]["field"] == "loan_id"
    claim_id = made.get_json()["id"]
    assert client.get(f"/api/v1/compensation/claims/{claim_id}",
                      headers=tokens["bank2"]).status_code == 404
    decided = client.post(f"/api/v1/compensation/claims/{claim_id}/decisions",
                          json={"action": "approve"}, headers=tokens["platform"])
    assert decided.status_code == 200, decided.get_json()
    assert decided.get_json()["status"] == "approved" and decided.get_json()["settlement_id"]
    fund_body = client.get(f"/api/v1/compensation/funds/{fund.id}",
                           headers=tokens["platform"]).get_json()
    assert (fund_body["approved"], fund_body["remaining"]) == ("20000.00", "80000.00")
    late = client.post(f"/api/v1/compensation/claims/{claim_id}/withdrawal",
                       headers=tokens["bank"])
    assert late.status_code == 409


def test_the_pages_show_the_fund_and_let_a_bank_claim(world, make_client):
    fund = make_fund(world)
    loan = defaulted_loan(world)
    bank, operator = make_client(), make_client()
    sign_in(bank, world["bank"])
    sign_in(operator, world["platform"])
    page = bank.get("/compensation/", headers=EN).get_data(as_text=True)
    assert f'data-loan="{loan.id}"' in page and "Claim compensation" in page
    filed = bank.post("/compensation/claims", data={"fund_id": fund.id,
                                                    "loan_id": loan.id})
    assert filed.status_code == 302
    claim = db.session.execute(select(CompensationClaim)).scalar_one()
    assert claim.status is ClaimStatus.SUBMITTED
    queue = operator.get("/compensation/", headers=EN).get_data(as_text=True)
    assert f'data-claim="{claim.id}"' in queue.split('id="queue"')[1].split("</table>")[0]
    detail = operator.get(f"/compensation/claims/{claim.id}", headers=EN).get_data(as_text=True)
    assert operator.post(f"/compensation/claims/{claim.id}/decide",
                         data={"action": "approve"}).status_code == 302
    shown = operator.get(f"/compensation/funds/{fund.id}", headers=EN).get_data(as_text=True)
    assert "80,000.00" in shown and "20,000.00" in shown and "The ledger agrees" in shown
    zh = operator.get(f"/compensation/funds/{fund.id}", headers={"Accept-Language": "zh-CN"})
    assert "单笔贷款补偿上限" in zh.get_data(as_text=True)


def test_a_page_refusal_shows_the_reason_and_changes_nothing(world, make_client):
    fund = make_fund(world)
    claim = claim_for(world, fund, defaulted_loan(world))
    operator = make_client()
    sign_in(operator, world["platform"])
    detail = operator.get(f"/compensation/claims/{claim.id}", headers=EN).get_data(as_text=True)
    refused = operator.post(f"/compensation/claims/{claim.id}/decide",
                            data={"action": "reject", "reason": ""},
                            headers=EN)
    assert refused.status_code == 422 and "This field is required" in refused.get_data(
        as_text=True)
    db.session.refresh(claim)
    assert claim.status is ClaimStatus.SUBMITTED


