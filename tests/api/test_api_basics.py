"""The API's ground rules: bearer tokens only, JSON errors for everything, an OpenAPI
document that is valid and complete, and input the database cannot store refused cleanly."""
from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
import schemathesis
from schemathesis.core.result import Err
from sqlalchemy import func, select

from finance_app.accounts import services
from finance_app.accounts.models import ApiToken, User
from finance_app.accounts.states import FilingStatus, OrgKind, Role
from finance_app.extensions import db
from tests.api.builders import make_caller
from tests.conftest import sign_in
from tests.factories import OrganisationFactory

NEW_USER = {"email": "new.person@example.test", "name": "New Person", "roles": ["officer"],
            "password": "a-long-enough-passphrase-42"}


def assert_error(response, status: int, code: str | None = None, field: str | None = None):
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    error = response.get_json()["error"]
    assert set(error) == {"code", "message", "field"}
    assert error["message"], "an error says what went wrong"
    if code is not None:
        assert error["code"] == code
    if field is not None:
        assert error["field"] == field
    return error


def assert_unauthenticated(response):
    assert_error(response, 401, "unauthenticated")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def users_named(email: str) -> int:
    return db.session.scalar(select(func.count(User.id)).where(User.email == email))


# --------------------------------------------------------------------------- authentication

@pytest.mark.parametrize("authorization", [
    None,
    "",
    "Bearer",
    "Bearer ",
    "Bearer sfp_" + "A" * 43,            # the shape of a token, but no such token
    "Bearer not-a-token",
    "Basic dXNlcjpwYXNz",
    "Bearer sfp_" + "A" * 300,           # absurdly long
], ids=["none", "empty", "bearer-only", "bearer-blank", "unknown", "no-prefix", "basic",
        "too-long"])
def test_requests_without_a_valid_token_get_401_json(client, authorization):
    headers = {} if authorization is None else {"Authorization": authorization}
    assert_unauthenticated(client.get("/api/v1/me", headers=headers))
    assert_unauthenticated(client.post("/api/v1/users", json=NEW_USER, headers=headers))
    assert users_named(NEW_USER["email"]) == 0


def test_a_valid_token_works_and_a_revoked_one_stops(client):
    caller = make_caller(roles=(Role.ADMIN,))
    me = client.get("/api/v1/me", headers=caller.headers)
    assert me.status_code == 200
    assert me.get_json()["user"]["email"] == caller.email

    admin = db.session.get(User, caller.user_id)
    token_id = db.session.scalar(select(ApiToken.id).where(ApiToken.user_id == caller.user_id))
    services.revoke_token(token_id, actor=admin)
    db.session.commit()

    assert_unauthenticated(client.get("/api/v1/me", headers=caller.headers))


def test_a_deactivated_users_token_stops_working(client, sme_admin):
    officer = make_caller(roles=(Role.OFFICER,),
                          org=db.session.get(User, sme_admin.user_id).organisation)
    assert client.get("/api/v1/me", headers=officer.headers).status_code == 200

    response = client.post(f"/api/v1/users/{officer.user_id}/deactivate",
                           headers=sme_admin.headers)
    assert response.status_code == 200
    assert response.get_json()["active"] is False

    assert_unauthenticated(client.get("/api/v1/me", headers=officer.headers))


def test_suspending_an_organisation_ends_its_tokens(client, operator, sme_admin):
    assert client.get("/api/v1/users", headers=sme_admin.headers).status_code == 200

    response = client.post(f"/api/v1/filings/{sme_admin.org_id}/decision",
                           json={"action": "suspend", "reason": "Customs investigation"},
                           headers=operator.headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["filing_status"] == "suspended"
    assert_unauthenticated(client.get("/api/v1/me", headers=sme_admin.headers))

    # Reinstating the filing does not bring a token back: a new one must be issued.
    response = client.post(f"/api/v1/filings/{sme_admin.org_id}/decision",
                           json={"action": "reinstate"}, headers=operator.headers)
    assert response.status_code == 200
    assert_unauthenticated(client.get("/api/v1/me", headers=sme_admin.headers))


def test_an_unapproved_organisations_token_reaches_only_its_own_profile(client):
    pending = make_caller(roles=(Role.ADMIN,), status=FilingStatus.PENDING)
    me = client.get("/api/v1/me", headers=pending.headers)
    assert me.status_code == 200
    assert me.get_json()["organisation"]["filing_status"] == "pending"
    response = client.post("/api/v1/users", json=NEW_USER, headers=pending.headers)
    assert_error(response, 403, "filing_not_approved")
    assert users_named(NEW_USER["email"]) == 0


def test_operator_without_the_second_factor_is_refused(client):
    caller = make_caller(OrgKind.PLATFORM_OPERATOR, roles=(Role.ADMIN,))
    db.session.get(User, caller.user_id).totp_enabled_at = None
    db.session.commit()
    assert_error(client.get("/api/v1/me", headers=caller.headers), 403,
                 "second_factor_required")
    assert_error(client.get("/api/v1/filings", headers=caller.headers), 403,
                 "second_factor_required")


def test_a_session_cookie_does_not_authenticate_the_api(client, sme_admin):
    user = db.session.get(User, sme_admin.user_id)
    sign_in(client, user)
    assert client.get("/dashboard").status_code == 200  # the cookie does sign the browser in

    assert_unauthenticated(client.get("/api/v1/me"))
    # Nor can a page the user visits ride the cookie to act (CSRF): nothing is created.
    assert_unauthenticated(client.post("/api/v1/users", json=NEW_USER))
    assert users_named(NEW_USER["email"]) == 0


# --------------------------------------------------------------------------- request bodies

def test_malformed_json_is_a_400_with_a_message(client, sme_admin):
    response = client.post("/api/v1/users", data='{"email": "a@b.test",', headers={
        **sme_admin.headers, "Content-Type": "application/json"})
    error = assert_error(response, 400, "invalid_json")
    assert "JSON" in error["message"]
    assert users_named("a@b.test") == 0


def test_bytes_that_are_not_utf8_are_a_400(client, sme_admin):
    response = client.post("/api/v1/users", data=b'{"name": "\xff\xfe"}', headers={
        **sme_admin.headers, "Content-Type": "application/json"})
    assert_error(response, 400, "invalid_json")


@pytest.mark.parametrize("content_type, body", [
    ("application/x-www-form-urlencoded", "email=new.person%40example.test&name=New"),
    ("text/plain", '{"email": "new.person@example.test"}'),
    ("multipart/form-data; boundary=x", "--x--"),
])
def test_a_body_that_is_not_json_is_a_415(client, sme_admin, content_type, body):
    response = client.post("/api/v1/users", data=body,
                           headers={**sme_admin.headers, "Content-Type": content_type})
    error = assert_error(response, 415, "unsupported_media_type")
    assert "application/json" in error["message"]


def test_an_oversized_body_is_413_json(app, client, sme_admin):
    too_big = b"[" + b" " * app.config["MAX_CONTENT_LENGTH"] + b"]"
    response = client.post("/api/v1/users", data=too_big, headers={
        **sme_admin.headers, "Content-Type": "application/json", "Idempotency-Key": "big"})
    assert_error(response, 413, "too_large")


@pytest.mark.parametrize("body, field", [
    ("[]", None),
    ("null", None),
    ('"text"', None),
    ("{}", "email"),
    ('{"email": "new.person@example.test", "name": "N", "roles": ["pirate"], '
     '"password": "a-long-enough-passphrase-42"}', "roles.0"),
])
def test_json_of_the_wrong_shape_is_a_422_naming_the_field(client, sme_admin, body, field):
    response = client.post("/api/v1/users", data=body, headers={
        **sme_admin.headers, "Content-Type": "application/json"})
    error = assert_error(response, 422, "validation_failed")
    assert error["field"] == field


def test_a_post_without_a_body_names_the_first_missing_field(client, sme_admin):
    assert_error(client.post("/api/v1/users", headers=sme_admin.headers), 422,
                 "validation_failed", "email")


# --------------------------------------------------------------------------- routing

@pytest.mark.parametrize("path", ["/api/v1/nothing-here", "/api/v1/users/abc",
                                  "/api/v1/users/-1", "/api/v1/", "/api/v2/me"])
def test_unknown_api_routes_are_404_json(client, sme_admin, path):
    assert_error(client.get(path, headers=sme_admin.headers), 404, "not_found")
    assert_error(client.get(path), 404, "not_found")


def test_a_wrong_method_is_405_json_naming_the_allowed_ones(client, sme_admin):
    response = client.delete("/api/v1/users", headers=sme_admin.headers)
    assert_error(response, 405, "method_not_allowed")
    assert {"GET", "POST"} <= {m.strip() for m in response.headers["Allow"].split(",")}


# --------------------------------------------------------------------------- the document

@pytest.fixture
def document(client) -> dict:
    response = client.get("/api/v1/openapi.json")  # no token: the document is public
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    return response.get_json()


def _openapi_path(rule: str) -> str:
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def _api_routes(app) -> set[tuple[str, str]]:
    routes = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/") or rule.endpoint.startswith("api-docs."):
            continue
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            routes.add((method.lower(), _openapi_path(rule.rule)))
    return routes


def _operations(document) -> dict[tuple[str, str], dict]:
    methods = {"get", "put", "post", "delete", "patch"}
    return {(method, path): operation for path, item in document["paths"].items()
            for method, operation in item.items() if method in methods}


def test_the_document_is_valid_openapi_3(document):
    assert document["openapi"].startswith("3.")
    schema = schemathesis.openapi.from_dict(document)
    schema.validate()  # against the OpenAPI 3 meta-schema; raises on any violation
    problems = [str(result.err()) for result in schema.get_all_operations()
                if isinstance(result, Err)]
    assert not problems


def test_every_api_route_is_documented_and_nothing_else(app, document):
    documented = set(_operations(document))
    assert _api_routes(app) - documented == set(), "API routes missing from the document"
    assert documented - _api_routes(app) == set(), "documented operations with no route"


def test_every_operation_requires_the_bearer_token(client, document):
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {**schemes["bearerAuth"], "type": "http",
                                     "scheme": "bearer"}
    for (method, path), operation in _operations(document).items():
        requirements = operation.get("security", document.get("security"))
        assert requirements, f"{method.upper()} {path} declares no security requirement"
        assert all(set(req) <= set(schemes) and req for req in requirements)
        # ... and the API keeps that promise: no token, no answer.
        response = client.open(re.sub(r"{\w+}", "1", path), method=method.upper(), json={})
        assert response.status_code == 401, f"{method.upper()} {path}"
    assert "/api/v1/openapi.json" not in document["paths"]


def test_every_post_documents_its_idempotency_key_and_what_that_can_cause(document):
    for (method, path), operation in _operations(document).items():
        if method != "post":
            continue
        headers = [p["name"] for p in operation.get("parameters", []) if p["in"] == "header"]
        assert "Idempotency-Key" in headers, path
        assert {"409", "422"} <= set(operation["responses"]), path


def test_every_operation_lists_its_errors_without_a_catch_all(document):
    for (method, path), operation in _operations(document).items():
        codes = set(operation["responses"])
        assert "default" not in codes, f"{method.upper()} {path}"
        assert {"401", "403"} <= codes, f"{method.upper()} {path}"
        if "{" in path:
            assert "404" in codes, f"{method.upper()} {path}"
        if "requestBody" in operation:
            assert {"400", "413", "415", "422"} <= codes, f"{method.upper()} {path}"


# --------------------------------------------------------------------------- stored input

@pytest.mark.parametrize("path", [
    "/api/v1/organisations/2147483648",         # one past PostgreSQL's INTEGER
    "/api/v1/users/9223372036854775808",        # one past BIGINT
    "/api/v1/users/99999999999999999999999999",  # past SQLite's INTEGER too
    "/api/v1/users/0",
])
def test_ids_beyond_the_database_integer_are_404_not_500(client, operator, path):
    assert_error(client.get(path, headers=operator.headers), 404, "not_found")
    assert_error(client.post(f"{path}/deactivate", headers=operator.headers), 404)
    assert_error(client.put(f"{path}/roles", json={"roles": ["admin"]},
                            headers=operator.headers), 404)


def test_the_largest_id_the_database_holds_is_an_ordinary_404(client, operator):
    assert_error(client.get("/api/v1/organisations/2147483647", headers=operator.headers), 404)


@pytest.mark.parametrize("query, field", [
    ("org_id=2147483648", "org_id"),
    ("org_id=0", "org_id"),
    ("limit=100000000000000000000", "limit"),
    ("action=user.added%00", "action"),
    ("object_type=%00", "object_type"),
    ("action=" + "a" * 81, "action"),
])
def test_audit_filters_out_of_range_are_422(client, operator, query, field):
    response = client.get(f"/api/v1/audit/events?{query}", headers=operator.headers)
    assert_error(response, 422, "validation_failed", field)


@pytest.mark.parametrize("q", ["%00", "Ltd%00", "x" * 101])
def test_directory_search_refuses_what_it_cannot_search_for(client, operator, q):
    response = client.get(f"/api/v1/organisations?q={q}", headers=operator.headers)
    assert_error(response, 422, "validation_failed", "q")


@pytest.mark.parametrize("field, value", [
    ("name", "New\u0000Person"),
    ("email", "new.person\u0000@example.test"),
    ("password", "a-long-enough-passphrase-\ud800"),  # argon2 cannot encode it
    ("name", "x" * 101),
    ("email", "a" * 250 + "@example.test"),
    ("password", "short"),
])
def test_user_fields_the_database_cannot_store_are_422(client, sme_admin, field, value):
    response = client.post("/api/v1/users", json={**NEW_USER, field: value},
                           headers=sme_admin.headers)
    assert_error(response, 422, "validation_failed", field)
    assert users_named(NEW_USER["email"]) == 0


def test_an_unpaired_surrogate_is_422_not_500(client, sme_admin):
    body = ('{"email": "new.person@example.test", "name": "\\ud800", "roles": ["officer"], '
            '"password": "a-long-enough-passphrase-42"}')
    response = client.post("/api/v1/users", data=body, headers={
        **sme_admin.headers, "Content-Type": "application/json"})
    assert_error(response, 422, "validation_failed", "name")


def test_a_decision_reason_with_nul_is_422(client, operator):
    pending = OrganisationFactory(kind=OrgKind.SME, pending=True)
    db.session.commit()
    response = client.post(f"/api/v1/filings/{pending.id}/decision",
                           json={"action": "reject", "reason": "Licence\u0000unreadable"},
                           headers=operator.headers)
    assert_error(response, 422, "validation_failed", "reason")
    db.session.refresh(pending)
    assert pending.filing_status is FilingStatus.PENDING


def test_times_are_given_in_utc_with_their_offset(client, sme_admin):
    body = client.get("/api/v1/me", headers=sme_admin.headers).get_json()
    for value in (body["user"]["created_at"], body["organisation"]["filed_at"]):
        moment = datetime.fromisoformat(value)
        assert moment.utcoffset() == timedelta(0), value


def test_a_created_user_is_returned_without_the_password(client, sme_admin):
    response = client.post("/api/v1/users", json=NEW_USER, headers=sme_admin.headers)
    assert response.status_code == 201, response.get_data(as_text=True)
    body = response.get_json()
    assert body["email"] == NEW_USER["email"] and body["roles"] == ["officer"]
    assert "password" not in body and "password_hash" not in body
    assert NEW_USER["password"] not in response.get_data(as_text=True)
