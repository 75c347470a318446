"""``Idempotency-Key`` on API POSTs: a retry replays the first answer and never acts twice."""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from finance_app.accounts.models import Organisation, User
from finance_app.accounts.states import FilingStatus, OrgKind, Role
from finance_app.audit import services as audit
from finance_app.audit.models import AuditEvent
from finance_app.extensions import db
from tests.api.builders import Caller, make_caller

KEY = "Idempotency-Key"
NEW_USER = {"email": "li.na@example.test", "name": "Li Na", "roles": ["officer"],
            "password": "a-long-enough-passphrase-42"}


def post(client, path: str, caller: Caller, key: str | None, json=None):
    headers = dict(caller.headers)
    if key is not None:
        headers[KEY] = key
    return client.post(path, json=json, headers=headers)


def count_users(email: str | None = None) -> int:
    query = select(func.count(User.id))
    if email is not None:
        query = query.where(User.email == email)
    return db.session.scalar(query)


def count_events(action: str | None = None) -> int:
    query = select(func.count(AuditEvent.id))
    if action is not None:
        query = query.where(AuditEvent.action == action)
    return db.session.scalar(query)


def error_of(response) -> dict:
    return response.get_json()["error"]


# --------------------------------------------------------------------------- replay

def test_same_key_and_body_replays_the_stored_response_and_acts_once(client, sme_admin):
    users_before, events_before = count_users(), count_events()

    first = post(client, "/api/v1/users", sme_admin, "create-li-na", NEW_USER)
    assert first.status_code == 201, first.get_data(as_text=True)
    assert "Idempotent-Replayed" not in first.headers
    events_after_first = count_events()

    for _ in range(2):
        again = post(client, "/api/v1/users", sme_admin, "create-li-na", NEW_USER)
        assert again.status_code == 201
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.get_data() == first.get_data()  # byte for byte: the same user, same id
        assert again.mimetype == "application/json"

    assert count_users() == users_before + 1
    assert count_users(NEW_USER["email"]) == 1
    assert count_events("user.added") == 1
    assert count_events() == events_after_first > events_before  # a replay records nothing


def test_without_a_key_each_post_acts_on_its_own(client, sme_admin):
    assert post(client, "/api/v1/users", sme_admin, None, NEW_USER).status_code == 201
    second = post(client, "/api/v1/users", sme_admin, None, NEW_USER)
    assert second.status_code == 422 and error_of(second)["field"] == "email"
    assert "Idempotent-Replayed" not in second.headers


def test_same_key_with_a_different_body_is_refused_naming_the_header(client, sme_admin):
    assert post(client, "/api/v1/users", sme_admin, "k-1", NEW_USER).status_code == 201

    other = {**NEW_USER, "email": "wang.fang@example.test", "name": "Wang Fang"}
    response = post(client, "/api/v1/users", sme_admin, "k-1", other)
    assert response.status_code == 422
    assert error_of(response)["code"] == "idempotency_key_reused"
    assert error_of(response)["field"] == KEY
    assert count_users(other["email"]) == 0
    assert count_events("user.added") == 1


def test_same_key_on_another_operation_is_refused(client, sme_admin):
    created = post(client, "/api/v1/users", sme_admin, "k-2", NEW_USER)
    user_id = created.get_json()["id"]

    response = post(client, f"/api/v1/users/{user_id}/deactivate", sme_admin, "k-2")
    assert response.status_code == 422
    assert error_of(response)["code"] == "idempotency_key_reused"
    assert db.session.get(User, user_id).active is True


def test_organisations_use_the_same_key_independently(client, sme_admin):
    other_org = make_caller(OrgKind.SME, roles=(Role.ADMIN,))

    assert post(client, "/api/v1/users", sme_admin, "shared-key", NEW_USER).status_code == 201
    # The same key and body from another organisation is a new request, never a replay of
    # the first organisation's answer (that would show it their user).
    twin = post(client, "/api/v1/users", other_org, "shared-key", NEW_USER)
    assert twin.status_code == 422 and error_of(twin)["field"] == "email"
    assert "Idempotent-Replayed" not in twin.headers

    own = {**NEW_USER, "email": "zhao.lei@example.test", "name": "Zhao Lei"}
    response = post(client, "/api/v1/users", other_org, "shared-key", own)
    assert response.status_code == 201, response.get_data(as_text=True)
    assert "Idempotent-Replayed" not in response.headers
    assert db.session.get(User, response.get_json()["id"]).org_id == other_org.org_id
    assert count_events("user.added") == 2


def test_a_colleague_who_may_not_post_gets_403_not_the_stored_answer(client, sme_admin):
    officer = make_caller(roles=(Role.OFFICER,),
                          org=db.session.get(Organisation, sme_admin.org_id))
    first = post(client, "/api/v1/users", sme_admin, "k-3", NEW_USER)
    assert first.status_code == 201

    response = post(client, "/api/v1/users", officer, "k-3", NEW_USER)
    assert response.status_code == 403
    assert NEW_USER["email"] not in response.get_data(as_text=True)


# --------------------------------------------------------------------------- failures
#
# A request that fails (any 4xx) is rolled back together with its key, so nothing is
# stored and a retry with the same key runs afresh.  That is the useful behaviour: a
# failure is usually caused by the input or by the state of things (the organisation not
# yet approved, the last admin), and the client is expected to fix that and retry with
# the same key; replaying the stored failure would make the key useless, and treating a
# corrected body as "key reused" would force a new key for what is the same operation.
# Only a success is replayed, so an operation still acts at most once.

def test_a_corrected_retry_with_the_same_key_acts(client, sme_admin):
    weak = {**NEW_USER, "password": "passwordpassword"}
    refused = post(client, "/api/v1/users", sme_admin, "k-4", weak)
    assert refused.status_code == 422 and error_of(refused)["field"] == "password"

    corrected = post(client, "/api/v1/users", sme_admin, "k-4", NEW_USER)
    assert corrected.status_code == 201
    assert "Idempotent-Replayed" not in corrected.headers
    # ... and from now on the key belongs to the request that succeeded.
    assert post(client, "/api/v1/users", sme_admin, "k-4", NEW_USER).headers[
        "Idempotent-Replayed"] == "true"
    assert post(client, "/api/v1/users", sme_admin, "k-4", weak).status_code == 422
    assert count_users(NEW_USER["email"]) == 1


def test_the_same_request_retried_after_its_cause_is_fixed_acts(client, operator):
    pending = make_caller(roles=(Role.ADMIN,), status=FilingStatus.PENDING)
    refused = post(client, "/api/v1/users", pending, "k-5", NEW_USER)
    assert refused.status_code == 403
    assert error_of(refused)["code"] == "filing_not_approved"

    decision = post(client, f"/api/v1/filings/{pending.org_id}/decision", operator, None,
                    {"action": "approve"})
    assert decision.status_code == 200, decision.get_data(as_text=True)

    retried = post(client, "/api/v1/users", pending, "k-5", NEW_USER)
    assert retried.status_code == 201, retried.get_data(as_text=True)
    assert "Idempotent-Replayed" not in retried.headers
    assert count_users(NEW_USER["email"]) == 1


def test_a_refused_state_change_retried_after_the_cause_is_fixed_acts(client, sme_admin):
    """An admin cannot deactivate themselves while they are the only admin (409); once a
    colleague is made admin, the very same request with the same key goes through."""
    officer = make_caller(roles=(Role.OFFICER,),
                          org=db.session.get(Organisation, sme_admin.org_id))
    path = f"/api/v1/users/{sme_admin.user_id}/deactivate"
    refused = post(client, path, sme_admin, "k-6")
    assert refused.status_code == 409 and error_of(refused)["code"] == "last_admin"

    promoted = client.put(f"/api/v1/users/{officer.user_id}/roles",
                          json={"roles": ["admin", "officer"]}, headers=sme_admin.headers)
    assert promoted.status_code == 200

    retried = post(client, path, sme_admin, "k-6")
    assert retried.status_code == 200, retried.get_data(as_text=True)
    assert retried.get_json()["active"] is False
    assert "Idempotent-Replayed" not in retried.headers
    assert count_events("user.deactivated") == 1


@pytest.mark.parametrize("key", ["   ", "x" * 256])
def test_an_unusable_key_is_refused_and_nothing_happens(client, sme_admin, key):
    response = post(client, "/api/v1/users", sme_admin, key, NEW_USER)
    assert response.status_code == 422
    assert error_of(response) == {**error_of(response), "code": "invalid_idempotency_key",
                                  "field": KEY}
    assert count_users(NEW_USER["email"]) == 0


def test_a_key_of_255_characters_is_fine(client, sme_admin):
    assert post(client, "/api/v1/users", sme_admin, "k" * 255, NEW_USER).status_code == 201
    assert post(client, "/api/v1/users", sme_admin, "k" * 255, NEW_USER).headers[
        "Idempotent-Replayed"] == "true"


# --------------------------------------------------------------------------- concurrency

THREADS = 10


def _fire(app, requests: list[tuple[str, dict, dict]]) -> list:
    """Send the requests at once, each from its own thread and test client."""
    barrier = threading.Barrier(len(requests))
    results: list = [None] * len(requests)

    def run(i: int, path: str, body: dict, headers: dict) -> None:
        client = app.test_client()
        barrier.wait()
        try:
            with app.app_context():
                results[i] = client.post(path, json=body, headers=headers)
        except Exception as exc:  # noqa: BLE001 - reported by the assertions
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i, *request))
               for i, request in enumerate(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a request hung"
    for result in results:
        assert not isinstance(result, Exception), repr(result)
        assert result.status_code < 500, result.get_data(as_text=True)
    return results


@pytest.mark.postgres
def test_concurrent_retries_with_one_key_create_exactly_one_user(app, sme_admin):
    headers = {**sme_admin.headers, KEY: "burst-1"}
    responses = _fire(app, [("/api/v1/users", NEW_USER, headers)] * THREADS)

    created = [r for r in responses if r.status_code == 201]
    busy = [r for r in responses if r.status_code == 409]
    assert len(created) + len(busy) == THREADS, [r.status_code for r in responses]
    assert created, "one of them must have acted"
    assert len({r.get_data() for r in created}) == 1, "replays differ from the original"
    originals = [r for r in created if "Idempotent-Replayed" not in r.headers]
    assert len(originals) == 1
    assert all(r.headers["Idempotent-Replayed"] == "true" for r in created if r not in originals)
    assert all(error_of(r)["code"] == "idempotency_in_progress" and error_of(r)["field"] == KEY
               for r in busy)

    db.session.remove()
    assert count_users(NEW_USER["email"]) == 1
    assert count_events("user.added") == 1
    assert audit.verify_chain().ok


@pytest.mark.postgres
def test_concurrent_creates_of_one_email_with_different_keys_leave_one_user(app, sme_admin):
    requests = [("/api/v1/users", NEW_USER, {**sme_admin.headers, KEY: f"burst-{i}"})
                for i in range(THREADS)]
    responses = _fire(app, requests)

    created = [r for r in responses if r.status_code == 201]
    refused = [r for r in responses if r.status_code != 201]
    assert len(created) == 1, [r.status_code for r in responses]
    for response in refused:
        assert response.status_code == 422, response.get_data(as_text=True)
        assert error_of(response)["field"] == "email"
        assert error_of(response)["code"] == "validation_failed"

    db.session.remove()
    assert count_users(NEW_USER["email"]) == 1
    assert count_events("user.added") == 1
    assert audit.verify_chain().ok
