"""The demo command and the other CLI tools."""
from __future__ import annotations

import pyotp
from sqlalchemy import func, select

from finance_app.accounts.models import Organisation, User
from finance_app.accounts.states import FilingStatus, OrgKind
from finance_app.extensions import db
from tests.conftest import sign_in


def test_demo_is_safe_to_run_twice_and_every_demo_user_can_sign_in(app):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["demo"])
    assert first.exit_code == 0, first.output
    second = runner.invoke(args=["demo"])
    assert second.exit_code == 0, second.output
    orgs = db.session.execute(select(Organisation)).scalars().all()
    assert len(orgs) == 9
    assert {o.kind for o in orgs} == set(OrgKind)
    assert all(o.filing_status is FilingStatus.APPROVED for o in orgs)
    kinds = [o.kind for o in orgs]
    assert kinds.count(OrgKind.SME) == 2 and kinds.count(OrgKind.BANK) == 2
    users = db.session.execute(select(User)).scalars().all()
    assert len(users) == 9
    for user in users:
        assert user.email in first.output
        client = app.test_client()
        sign_in(client, user, app.config["DEMO_PASSWORD"])
        assert client.get("/dashboard").status_code == 200, user.email


def test_demo_code_prints_the_operators_current_code(app):
    runner = app.test_cli_runner()
    runner.invoke(args=["demo"])
    result = runner.invoke(args=["demo-code", "operator@demo.test"])
    operator = db.session.execute(select(User).where(User.email == "operator@demo.test")).scalar_one()
    assert pyotp.TOTP(operator.totp_secret).verify(result.output.strip(), valid_window=1)
    refused = runner.invoke(args=["demo-code", "sme1@demo.test"])
    assert refused.exit_code != 0


def test_create_token_prints_a_working_token(app):
    runner = app.test_cli_runner()
    runner.invoke(args=["demo"])
    result = runner.invoke(args=["create-token", "bank1@demo.test"])
    assert result.exit_code == 0
    token = result.output.strip().splitlines()[-1]
    response = app.test_client().get("/api/v1/organisations",
                                     headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert len(response.json) == 9
    missing = runner.invoke(args=["create-token", "nobody@demo.test"])
    assert missing.exit_code != 0 and "No such user" in missing.output
    count = db.session.execute(select(func.count(User.id))).scalar_one()
    assert count == 9


def test_demo_trades_have_verified_and_mismatched_verdicts(app):
    import json as _json
    from finance_app.trade.models import Receivable
    runner = app.test_cli_runner()
    runner.invoke(args=["demo"])
    runner.invoke(args=["demo"])  # a second run files nothing twice
    rows = [_json.loads(line) for line in
            runner.invoke(args=["verdicts", "--json"]).output.splitlines()]
    verdicts = {r["order_no"]: (r["verdict"], [x["code"] for x in r["reasons"]]) for r in rows}
    assert verdicts == {
        "MLB-2026-0001": ("verified", []),
        "LPT-2026-0107": ("mismatch", ["payment_amount_mismatch"]),
        "B2B-MX-0042": ("verified", []),
        "OW-PT-0009": ("incomplete", ["waybill_missing"]),
        "AMX-2026-5531": ("verified", []),
        "MLB-2026-0877": ("mismatch", ["line_total_mismatch"]),
        "TM-1210-7781": ("verified", []),
        "TM-1210-7790": ("mismatch", ["payer_not_buyer", "consignee_mismatch"]),
    }
    receivable = db.session.execute(select(Receivable)).scalar_one()
    assert receivable.order.order_no == "B2B-MX-0042" and receivable.currency == "USD"
