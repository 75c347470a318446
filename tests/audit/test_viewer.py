"""The audit viewer: the platform operator filters the whole trail and verifies the chain
from the page; every other organisation sees only the events about itself."""
from __future__ import annotations

import pytest

from finance_app.accounts.states import OrgKind, Role
from finance_app.audit import services as audit
from finance_app.extensions import db
from tests.conftest import sign_in
from tests.factories import make_org_user


@pytest.fixture
def trail(app):
    bank = make_org_user(OrgKind.BANK, roles=(Role.OFFICER,))
    sme = make_org_user(OrgKind.SME, roles=(Role.ADMIN,))
    platform = make_org_user(OrgKind.PLATFORM_OPERATOR, roles=(Role.OFFICER,))
    audit.record("financing.product_published", actor=bank, org_id=bank.org_id,
                 object_type="FinancingProduct", object_id=11, changes={"name": "Bank-only"})
    audit.record("financing.request_submitted", actor=sme, org_id=sme.org_id,
                 object_type="FinancingRequest", object_id=12, changes={"amount": "5000"})
    audit.record("insurance.policy_issued", actor=None, org_id=sme.org_id,
                 object_type="Policy", object_id=13, changes={"number": "ECI-1"})
    db.session.commit()
    return dict(bank=bank, sme=sme, platform=platform)


def client_for(make_client, user):
    client = make_client()
    sign_in(client, user)
    return client


def test_an_organisation_sees_only_the_events_about_itself(trail, make_client):
    sme = client_for(make_client, trail["sme"])
    page = sme.get("/audit/")
    assert page.status_code == 200
    assert "financing.request_submitted" in page.text and "insurance.policy_issued" in page.text
    assert "financing.product_published" not in page.text
    # asking for another organisation's events changes nothing
    other = sme.get(f"/audit/?org_id={trail['bank'].org_id}")
    assert "financing.product_published" not in other.text
    assert 'id="verify"' not in page.text
    assert sme.get("/audit/verify").status_code == 403


def test_the_operator_filters_and_verifies(trail, make_client):
    platform = client_for(make_client, trail["platform"])
    prefix = platform.get("/audit/?action=financing.")
    assert "financing.product_published" in prefix.text
    assert "financing.request_submitted" in prefix.text
    assert "insurance.policy_issued" not in prefix.text
    by_org = platform.get(f"/audit/?org_id={trail['bank'].org_id}&action=financing.")
    assert "financing.product_published" in by_org.text
    assert "financing.request_submitted" not in by_org.text
    by_object = platform.get("/audit/?object_type=Policy&object_id=13")
    assert "ECI-1" in by_object.text and "Bank-only" not in by_object.text
    verify = platform.get("/audit/verify")
    assert verify.status_code == 200 and "intact" in verify.text.lower()


@pytest.mark.parametrize("query", ["since=2026-13-01", "org_id=abc", "actor=-4",
                                   "since=2026-12-02&until=2026-12-01"])
def test_bad_filters_get_a_message_not_an_error(trail, make_client, query):
    platform = client_for(make_client, trail["platform"])
    response = platform.get(f"/audit/?{query}")
    assert response.status_code == 422 and 'id="filter-errors"' in response.text


def test_the_api_scopes_the_trail_the_same_way(app, trail):
    from tests.oversight.test_alerts import Api
    sme = Api(app, trail["sme"]).get("/api/v1/audit/events?action=financing.").get_json()
    assert [e["action"] for e in sme] == ["financing.request_submitted"]
    bad = Api(app, trail["sme"]).get("/api/v1/audit/events?since=2026-12-02&until=2026-12-01")
    assert bad.status_code == 422
    everything = Api(app, trail["platform"]).get("/api/v1/audit/events?action=financing.")
    assert len(everything.get_json()) == 2
