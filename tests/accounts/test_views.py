"""Sign-up, filing and user management through the web forms."""
from __future__ import annotations

import re

from sqlalchemy import func, select

from finance_app.accounts.models import ApiToken, Organisation, User
from finance_app.accounts.states import FilingStatus, OrgKind, Role
from finance_app.extensions import db
from tests.conftest import sign_in
from tests.factories import PASSWORD, credit_code, make_org_user

SIGNUP = {
    "kind": "sme", "name": "东莞样例贸易有限公司", "name_en": "Dongguan Sample Trading",
    "country": "CN", "credit_code": credit_code(7001), "customs_code": "4419960701",
    "address": "东莞市虎门镇", "zone": "Dongguan Humen", "contact_name": "王芳",
    "contact_email": "wang@sample.test", "contact_phone": "+86 769 1234 5678",
    "admin_name": "王芳", "email": "wang@sample.test", "password": PASSWORD,
    "password_confirm": PASSWORD,
}


def _count(model):
    return db.session.execute(select(func.count()).select_from(model)).scalar_one()


def test_sign_up_files_signs_in_and_shows_pending(client):
    response = client.post("/signup", data=SIGNUP)
    assert response.status_code == 302
    page = client.get("/dashboard").get_data(as_text=True)
    assert "pending review" in page.lower()
    org = db.session.execute(select(Organisation)).scalar_one()
    assert org.filing_status is FilingStatus.PENDING and org.credit_code == SIGNUP["credit_code"]


def test_bad_credit_code_is_shown_on_its_field_and_nothing_is_stored(client):
    bad = dict(SIGNUP, credit_code=SIGNUP["credit_code"][:-1] + ("0" if SIGNUP["credit_code"][-1] != "0" else "1"))
    response = client.post("/signup", data=bad)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert re.search(r'data-field="credit_code">[^<]*check character', page)
    assert _count(Organisation) == 0 and _count(User) == 0


def test_mismatched_passwords_and_bad_email_are_named(client):
    response = client.post("/signup", data=dict(SIGNUP, password_confirm="something-else-1"))
    assert 'data-field="password_confirm"' in response.get_data(as_text=True)
    response = client.post("/signup", data=dict(SIGNUP, email="not an email"))
    assert response.status_code == 422
    assert 'data-field="email"' in response.get_data(as_text=True)
    assert _count(User) == 0


def test_pending_organisation_can_read_but_not_act(client):
    client.post("/signup", data=SIGNUP)
    assert client.get("/organisation").status_code == 200
    assert client.get("/account/security").status_code == 200
    refused = client.get("/organisation/users")
    assert refused.status_code == 403
    assert "pending review" in refused.get_data(as_text=True)
    refused = client.post("/organisation/tokens", data={"name": "erp"})
    assert refused.status_code == 403
    assert _count(ApiToken) == 0


def test_rejected_filing_shows_the_reason_and_can_be_resubmitted(client, app):
    operator = make_org_user(OrgKind.PLATFORM_OPERATOR, roles=(Role.ADMIN, Role.APPROVER))
    client.post("/signup", data=SIGNUP)
    org = db.session.execute(select(Organisation).where(
        Organisation.kind == OrgKind.SME)).scalar_one()
    op_client = app.test_client()
    sign_in(op_client, operator)
    response = op_client.post(f"/operator/filings/{org.id}/decide",
                              data={"action": "reject", "reason": ""})
    assert response.status_code == 422 and 'data-field="reason"' in response.get_data(as_text=True)
    op_client.post(f"/operator/filings/{org.id}/decide",
                   data={"action": "reject", "reason": "营业执照扫描件不清晰"})
    page = client.get("/dashboard").get_data(as_text=True)
    assert "营业执照扫描件不清晰" in page
    response = client.post("/organisation/filing", data=dict(SIGNUP, address="东莞市虎门镇 2 号"))
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Organisation, org.id).filing_status is FilingStatus.PENDING


def test_admin_manages_users_and_tokens(client):
    admin = make_org_user()
    sign_in(client, admin)
    response = client.post("/organisation/users/new", data={
        "name": "Clerk", "email": "clerk@x.test", "roles": ["officer"], "password": PASSWORD})
    assert response.status_code == 302
    clerk = db.session.execute(select(User).where(User.email == "clerk@x.test")).scalar_one()
    response = client.post(f"/organisation/users/{clerk.id}", data={"roles": ["officer", "approver"]})
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(User, clerk.id).roles == {Role.OFFICER, Role.APPROVER}
    page = client.post("/organisation/tokens", data={"name": "ERP"}).get_data(as_text=True)
    raw = re.search(r'<code class="token">(sfp_[^<]+)</code>', page).group(1)
    assert "Copy this token now" in page
    listing = client.get("/organisation/tokens").get_data(as_text=True)
    assert raw not in listing and raw[:12] in listing
    api = client.get("/api/v1/me", headers={"Authorization": f"Bearer {raw}"})
    assert api.status_code == 200 and api.json["user"]["email"] == admin.email


def test_officer_cannot_manage_users(client):
    officer = make_org_user(roles=(Role.OFFICER,))
    sign_in(client, officer)
    assert client.get("/organisation/users").status_code == 403
    assert client.post("/organisation/users/new", data={}).status_code == 403


def test_unknown_pages_and_methods_are_clean_errors(client):
    assert client.get("/no/such/page").status_code == 404
    assert client.get("/signout").status_code == 405
    sign_in(client, make_org_user())
    assert client.get("/organisation/users/99999").status_code == 404


def test_csrf_is_required_on_every_form(app, client):
    app.config["WTF_CSRF_ENABLED"] = True
    try:
        response = client.post("/signin", data={"email": "a@b.test", "password": PASSWORD})
        assert response.status_code == 400
        assert "reload the page" in response.get_data(as_text=True)
        page = client.get("/signin").get_data(as_text=True)
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
        response = client.post("/signin", data={"email": "a@b.test", "password": PASSWORD,
                                                "csrf_token": token})
        assert response.status_code == 422  # got past CSRF to the credential check
    finally:
        app.config["WTF_CSRF_ENABLED"] = False


def test_every_html_post_route_refuses_a_missing_csrf_token(app):
    """Walk the URL map: no HTML form accepts a POST without the token."""
    app.config["WTF_CSRF_ENABLED"] = True
    try:
        client = app.test_client()
        checked = 0
        for rule in app.url_map.iter_rules():
            if "POST" not in rule.methods or rule.rule.startswith("/api/"):
                continue
            url = re.sub(r"<[^>]+>", "1", rule.rule)
            response = client.post(url, data={"anything": "x"})
            assert response.status_code == 400, (rule.rule, response.status_code)
            if rule.endpoint == "stripe_webhook.stripe_webhook":
                # Stripe's webhook has no form and no cookie: its signature stands in for
                # the token, and a request without one is refused the same way
                assert response.get_json()["error"]["code"] == "bad_signature"
            checked += 1
        assert checked >= 10
    finally:
        app.config["WTF_CSRF_ENABLED"] = False
