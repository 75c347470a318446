"""Row scoping: what one organisation can see and touch of another's, by id.

Asking for another organisation's user, token or unfiled profile answers exactly as if the
id did not exist (404, nothing of the object in the body) and changes nothing.  Banks and
insurers read approved organisations' filed profiles ("file once, shared by all"); other
organisations read only their own; the platform operator reads every filing.  An
organisation whose filing is not approved can sign in and read why, but cannot act.
"""
from __future__ import annotations

import re
from datetime import timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from finance_app import clock
from finance_app.accounts import services
from finance_app.accounts.models import ApiToken, Organisation, User
from finance_app.accounts.states import FilingStatus, OrgKind, Role
from finance_app.audit.models import AuditEvent
from finance_app.extensions import db
from tests.conftest import sign_in
from tests.factories import PASSWORD, OrganisationFactory, UserFactory

NEVER_USED_ID = 987654


def _org(kind: OrgKind, label: str, status: FilingStatus = FilingStatus.APPROVED,
         reason: str | None = None) -> Organisation:
    return OrganisationFactory(kind=kind, filing_status=status, filing_reason=reason,
                               name=f"{label}有限公司", name_en=f"{label} Holdings Ltd",
                               contact_email=f"contact@{label.lower()}.example")


def _user(org: Organisation, label: str, *roles: Role, **kwargs) -> User:
    return UserFactory(organisation=org, roles=list(roles) or [Role.OFFICER],
                       email=f"{label}@{org.name_en.split()[0].lower()}.example",
                       name=f"{label.title()} of {org.name_en}", **kwargs)


@pytest.fixture
def world(app):
    w = SimpleNamespace()
    w.a = _org(OrgKind.SME, "Alpha")
    w.a_admin = _user(w.a, "admin", Role.ADMIN)
    w.a_officer = _user(w.a, "officer")
    w.b = _org(OrgKind.SME, "Bravo")
    w.b_admin = _user(w.b, "admin", Role.ADMIN)
    w.b_officer = _user(w.b, "officer")
    w.b_gone = _user(w.b, "gone", active=False)
    w.b_locked = _user(w.b, "locked", failed_signins=5,
                       locked_until=clock.now() + timedelta(minutes=10))
    w.bank1 = _org(OrgKind.BANK, "Cathay")
    w.bank1_officer = _user(w.bank1, "officer")
    w.bank2 = _org(OrgKind.BANK, "Delta")
    w.bank2_admin = _user(w.bank2, "admin", Role.ADMIN, Role.APPROVER)
    w.insurer = _org(OrgKind.INSURER, "Echo")
    w.insurer_officer = _user(w.insurer, "officer")
    w.operator = _org(OrgKind.PLATFORM_OPERATOR, "Foxtrot")
    w.operator_admin = _user(w.operator, "admin", Role.ADMIN)
    w.logistics = _org(OrgKind.LOGISTICS, "Golf")
    w.logistics_officer = _user(w.logistics, "officer")
    w.payment = _org(OrgKind.PAYMENT_INSTITUTION, "Hotel")
    w.payment_officer = _user(w.payment, "officer")
    w.warehouse = _org(OrgKind.WAREHOUSE_OPERATOR, "India")
    w.warehouse_officer = _user(w.warehouse, "officer")
    # filings that are not (or no longer) approved
    w.pending = _org(OrgKind.SME, "Juliet", FilingStatus.PENDING)
    w.pending_admin = _user(w.pending, "admin", Role.ADMIN)
    w.rejected = _org(OrgKind.SME, "Kilo", FilingStatus.REJECTED, "Business licence unreadable")
    w.rejected_admin = _user(w.rejected, "admin", Role.ADMIN)
    w.suspended = _org(OrgKind.SME, "Lima", FilingStatus.SUSPENDED, "Under investigation")
    w.suspended_admin = _user(w.suspended, "admin", Role.ADMIN)
    db.session.flush()
    w.b_token, _ = services.create_token(actor=w.b_admin, name="bravo-erp")
    w.raw = {}
    unapproved = {w.pending: FilingStatus.PENDING, w.rejected: FilingStatus.REJECTED,
                  w.suspended: FilingStatus.SUSPENDED}
    for org in unapproved:  # tokens issued while approved, before the status changed
        org.filing_status = FilingStatus.APPROVED
    for name in ("a_admin", "a_officer", "b_admin", "bank1_officer", "bank2_admin",
                 "insurer_officer", "operator_admin", "logistics_officer", "payment_officer",
                 "warehouse_officer", "pending_admin", "rejected_admin", "suspended_admin"):
        _token, w.raw[name] = services.create_token(actor=getattr(w, name), name="scoping")
    for org, status in unapproved.items():
        org.filing_status = status
    db.session.commit()
    return w


@pytest.fixture
def browser(app, make_client):
    """A client signed in through the real form, one per user."""
    clients: dict[int, object] = {}

    def _browser(user: User):
        if user.id not in clients:
            clients[user.id] = make_client()
            sign_in(clients[user.id], user)
        return clients[user.id]
    return _browser


@pytest.fixture
def api(app, make_client):
    def _api(user_name: str, world, method: str, path: str, **kwargs):
        headers = {"Authorization": f"Bearer {world.raw[user_name]}"}
        return make_client().open(path, method=method, headers=headers, **kwargs)
    return _api


def org_traces(org: Organisation) -> list[str]:
    return [t for t in (org.name, org.name_en, org.credit_code, org.customs_code,
                        org.contact_email) if t]


def user_traces(user: User) -> list[str]:
    return [user.email, user.name] + org_traces(user.organisation)


def assert_leaks_nothing(response, traces: list[str]) -> None:
    body = response.get_data(as_text=True)
    leaked = [t for t in traces if t in body]
    assert not leaked, f"the answer shows {leaked}"


def error_message(response) -> tuple[int, str]:
    """Status and message of an error answer, HTML page or JSON."""
    if response.is_json:
        error = response.get_json()["error"]
        return response.status_code, f"{error['code']}: {error['message']}"
    match = re.search(r'<p class="error-message" data-code="([^"]*)">(.*?)</p>',
                      response.get_data(as_text=True), re.S)
    assert match, response.get_data(as_text=True)[:500]
    return response.status_code, f"{match.group(1)}: {match.group(2)}"


def _snapshot(w) -> dict:
    db.session.expire_all()
    users = {u.email: (u.active, tuple(sorted(u.roles)), u.failed_signins, u.locked_until)
             for u in db.session.execute(select(User).where(User.org_id == w.b.id)).scalars()}
    tokens = {t.id: t.revoked_at
              for t in db.session.execute(select(ApiToken).where(ApiToken.org_id == w.b.id)).scalars()}
    # every change is audited; signing in (to ask) is the only event a refused ask may add
    changes = db.session.execute(select(func.count()).select_from(AuditEvent)
                                 .where(AuditEvent.action != "user.signed_in")).scalar()
    return {"users": users, "tokens": tokens, "audited_changes": changes}


# --------------------------------------------------------------------------- users and tokens

# (method, path with {id}, the world attribute whose id goes in, request kwargs)
CROSS_ORG_REQUESTS = [
    ("GET", "/organisation/users/{id}", "b_officer", {}),
    ("POST", "/organisation/users/{id}", "b_officer", {"data": {"roles": ["admin"]}}),
    ("POST", "/organisation/users/{id}/deactivate", "b_officer", {"data": {}}),
    ("POST", "/organisation/users/{id}/reactivate", "b_gone", {"data": {}}),
    ("POST", "/organisation/users/{id}/unlock", "b_locked", {"data": {}}),
    ("POST", "/organisation/tokens/{id}/revoke", "b_token", {"data": {}}),
    ("GET", "/api/v1/users/{id}", "b_officer", {}),
    ("PUT", "/api/v1/users/{id}/roles", "b_officer", {"json": {"roles": ["admin"]}}),
    ("POST", "/api/v1/users/{id}/deactivate", "b_admin", {"json": {}}),
]


@pytest.mark.parametrize("actor", ["a_admin", "operator_admin"])
@pytest.mark.parametrize("method,template,target,kwargs", CROSS_ORG_REQUESTS,
                         ids=[f"{m} {t}" for m, t, _, _ in CROSS_ORG_REQUESTS])
def test_another_organisations_users_and_tokens_answer_404_and_stay_unchanged(
        world, browser, api, actor, method, template, target, kwargs):
    """Not even the platform operator's admin manages another organisation's people."""
    obj = getattr(world, target)
    before = _snapshot(world)

    def ask(ident):
        path = template.format(id=ident)
        if path.startswith("/api/"):
            return api(actor, world, method, path, **kwargs)
        return browser(getattr(world, actor)).open(path, method=method, **kwargs)

    response = ask(obj.id)
    assert response.status_code == 404
    traces = [obj.name] + (user_traces(obj) if isinstance(obj, User)
                           else [obj.prefix] + org_traces(world.b))
    assert_leaks_nothing(response, traces)
    # Indistinguishable from an id that was never used: existence is not revealed either.
    assert error_message(response) == error_message(ask(NEVER_USED_ID))
    assert _snapshot(world) == before


def test_admins_lists_show_only_their_own_people_and_tokens(world, browser, api):
    page = browser(world.a_admin)
    users_page = page.get("/organisation/users")
    assert users_page.status_code == 200
    assert world.a_officer.email in users_page.get_data(as_text=True)
    assert_leaks_nothing(users_page, [u.email for u in world.b.users])
    tokens_page = page.get("/organisation/tokens")
    assert tokens_page.status_code == 200
    assert_leaks_nothing(tokens_page, [world.b_token.name, world.b_token.prefix])

    listed = api("a_admin", world, "GET", "/api/v1/users")
    assert listed.status_code == 200
    assert {u["email"] for u in listed.get_json()} == {u.email for u in world.a.users}


# --------------------------------------------------------------------------- profiles

@pytest.mark.parametrize("reader", ["bank1_officer", "insurer_officer"])
def test_banks_and_insurers_read_approved_profiles_only(world, browser, api, reader):
    page = browser(getattr(world, reader))
    listing = page.get("/directory")
    assert listing.status_code == 200
    body = listing.get_data(as_text=True)
    for approved in (world.a, world.b, world.bank2, world.logistics):
        assert approved.name in body
    for hidden in (world.pending, world.rejected, world.suspended):
        assert_leaks_nothing(listing, org_traces(hidden))

    detail = page.get(f"/directory/{world.a.id}")
    assert detail.status_code == 200
    assert world.a.credit_code in detail.get_data(as_text=True)

    listed = api(reader, world, "GET", "/api/v1/organisations")
    assert listed.status_code == 200
    ids = {o["id"] for o in listed.get_json()}
    assert {world.a.id, world.b.id, world.bank2.id, world.insurer.id} <= ids
    assert ids.isdisjoint({world.pending.id, world.rejected.id, world.suspended.id})
    one = api(reader, world, "GET", f"/api/v1/organisations/{world.b.id}")
    assert one.status_code == 200
    assert one.get_json()["credit_code"] == world.b.credit_code

    for hidden in (world.pending, world.rejected, world.suspended):
        for response in (page.get(f"/directory/{hidden.id}"),
                         api(reader, world, "GET", f"/api/v1/organisations/{hidden.id}")):
            assert response.status_code == 404, hidden.filing_status
            assert_leaks_nothing(response, org_traces(hidden))
        # a search by its credit code finds nothing either
        found = api(reader, world, "GET", "/api/v1/organisations",
                    query_string={"q": hidden.credit_code})
        assert found.status_code == 200 and found.get_json() == []


@pytest.mark.parametrize("reader,own", [("a_officer", "a"), ("a_admin", "a"),
                                        ("logistics_officer", "logistics"),
                                        ("payment_officer", "payment"),
                                        ("warehouse_officer", "warehouse")])
def test_other_organisations_read_only_their_own_profile(world, browser, api, reader, own):
    mine = getattr(world, own)
    response = api(reader, world, "GET", f"/api/v1/organisations/{mine.id}")
    assert response.status_code == 200 and response.get_json()["name"] == mine.name
    page = browser(getattr(world, reader))
    assert mine.name in page.get("/organisation").get_data(as_text=True)

    for other in (world.b, world.bank1, world.pending):
        response = api(reader, world, "GET", f"/api/v1/organisations/{other.id}")
        assert response.status_code == 404
        assert_leaks_nothing(response, org_traces(other))
        assert error_message(response) == error_message(
            api(reader, world, "GET", f"/api/v1/organisations/{NEVER_USED_ID}"))
        response = page.get(f"/directory/{other.id}")
        assert response.status_code == 403
        assert_leaks_nothing(response, org_traces(other))
    # no directory for them, on either door
    assert page.get("/directory").status_code == 403
    assert api(reader, world, "GET", "/api/v1/organisations").status_code == 403


@pytest.mark.parametrize("reader", ["pending_admin", "suspended_admin"])
def test_an_unapproved_organisation_reads_no_one_elses_profile(world, api, reader):
    """A pending (or suspended) registrant that holds a token, say from `flask create-token`,
    reads its own filing but not the approved organisations' profiles."""
    own = getattr(world, reader).organisation
    assert api(reader, world, "GET", f"/api/v1/organisations/{own.id}").status_code == 200
    for other in (world.a, world.bank1):
        response = api(reader, world, "GET", f"/api/v1/organisations/{other.id}")
        assert response.status_code == 404
        assert_leaks_nothing(response, org_traces(other))


def test_the_pending_bank_is_refused_what_an_approved_bank_reads(world, api):
    bank = OrganisationFactory(kind=OrgKind.BANK, filing_status=FilingStatus.APPROVED)
    officer = UserFactory(organisation=bank, roles=[Role.OFFICER])
    _token, raw = services.create_token(actor=officer, name="early")
    bank.filing_status = FilingStatus.PENDING  # e.g. sent back for review after a change
    db.session.commit()
    world.raw["pending_bank"] = raw
    response = api("pending_bank", world, "GET", f"/api/v1/organisations/{world.a.id}")
    assert response.status_code == 404
    assert_leaks_nothing(response, org_traces(world.a))
    listing = api("pending_bank", world, "GET", "/api/v1/organisations")
    assert listing.status_code == 403
    assert listing.get_json()["error"]["code"] == "filing_not_approved"


def test_the_operator_reads_every_filing(world, browser, api):
    page = browser(world.operator_admin)
    queue = page.get("/operator/filings?status=all")
    assert queue.status_code == 200
    for org in (world.a, world.pending, world.rejected, world.suspended):
        assert org.name in queue.get_data(as_text=True)
    for org in (world.pending, world.rejected, world.suspended, world.a):
        for response in (page.get(f"/operator/filings/{org.id}"),
                         page.get(f"/directory/{org.id}"),
                         api("operator_admin", world, "GET", f"/api/v1/organisations/{org.id}")):
            assert response.status_code == 200
            assert org.credit_code in response.get_data(as_text=True)
    pending = api("operator_admin", world, "GET", "/api/v1/filings",
                  query_string={"status": "pending"})
    assert {o["id"] for o in pending.get_json()} == {world.pending.id}


@pytest.mark.parametrize("reader", ["bank2_admin", "a_admin", "insurer_officer"])
def test_only_the_operator_sees_or_decides_filings(world, browser, api, reader):
    page = browser(getattr(world, reader))
    for response in (page.get(f"/operator/filings/{world.pending.id}"),
                     page.get("/operator/filings?status=all"),
                     page.post(f"/operator/filings/{world.pending.id}/decide",
                               data={"action": "approve"}),
                     api(reader, world, "POST", f"/api/v1/filings/{world.pending.id}/decision",
                         json={"action": "approve"}),
                     api(reader, world, "GET", "/api/v1/filings")):
        assert response.status_code == 403
        assert_leaks_nothing(response, org_traces(world.pending))
    db.session.expire_all()
    assert db.session.get(Organisation, world.pending.id).filing_status is FilingStatus.PENDING


# --------------------------------------------------------------------------- unapproved filings

BLOCKED = {
    "pending_admin": ("Your filing is waiting for the platform operator",
                      "filing is pending review by the platform operator"),
    "rejected_admin": ("Your filing was rejected: Business licence unreadable",
                       "filing was rejected: Business licence unreadable"),
    "suspended_admin": ("Your organisation is suspended: Under investigation",
                        "Your organisation is suspended: Under investigation"),
}


@pytest.mark.parametrize("who", sorted(BLOCKED))
def test_an_unapproved_organisation_signs_in_reads_why_and_cannot_act(
        world, make_client, api, who):
    dashboard_text, refusal_text = BLOCKED[who]
    admin = getattr(world, who)
    page = make_client()
    dashboard = sign_in(page, admin, PASSWORD, follow=True)
    assert dashboard.status_code == 200
    assert dashboard_text in dashboard.get_data(as_text=True)
    users_before = db.session.execute(select(func.count()).select_from(User)).scalar()
    tokens_before = db.session.execute(select(func.count()).select_from(ApiToken)).scalar()

    new_user = {"name": "New Colleague", "email": "new.colleague@example.test",
                "roles": ["officer"], "password": "a-long-enough-password-42"}
    for response in (page.post("/organisation/users/new", data=new_user),
                     page.post("/organisation/tokens", data={"name": "erp"}),
                     api(who, world, "POST", "/api/v1/users", json=new_user)):
        assert response.status_code == 403
        status, message = error_message(response)
        assert message.startswith("filing_not_approved: ") and refusal_text in message

    db.session.expire_all()
    assert db.session.execute(select(func.count()).select_from(User)).scalar() == users_before
    assert db.session.execute(
        select(func.count()).select_from(ApiToken)).scalar() == tokens_before
    # still signed in, and can read its own profile
    own = page.get("/organisation")
    assert own.status_code == 200 and admin.organisation.name in own.get_data(as_text=True)
