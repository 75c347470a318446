"""Fuzz the whole JSON API from its own OpenAPI document (schemathesis 4).

Every operation in /api/v1/openapi.json is called with generated valid and invalid input
(schemathesis' examples, coverage and fuzzing phases), as six kinds of caller.  A run fails
on any 5xx and on any answer the document does not describe: an undocumented status code
(the document has no catch-all ``default`` response), a body that does not match its
schema, an undocumented content type or a missing documented header.

Each operation starts from a freshly seeded database (organisations of every kind and
filing status, their users and tokens), so one operation's side effects (an admin who
deactivated themselves, a suspended organisation) do not blind the next one, and path ids
are drawn from the seeded rows half of the time.
"""
from __future__ import annotations

import re

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from finance_app.accounts import services
from finance_app.accounts.models import Organisation, User
from finance_app.accounts.states import FilingStatus, OrgKind, Role
from finance_app.extensions import db
from tests.conftest import _reset_database
from tests.factories import OrganisationFactory, UserFactory

pytestmark = pytest.mark.fuzz

MAX_EXAMPLES = 30  # per operation and caller, fuzzing phase; the coverage phase adds its own
# Callers nearly every operation turns away before reading the input (401, or 403 for a
# filing that is not approved): the examples and coverage phases are enough for them.
TURNED_AWAY = {"pending_admin", "anonymous", "bad_token"}
CHECKS = ("not_a_server_error", "status_code_conformance", "content_type_conformance",
          "response_schema_conformance", "response_headers_conformance")
SEEDED_IDS = range(1, 13)  # the seed makes organisations 1-7 and users 1-11

CALLERS = {
    "operator": "approved platform operator admin and approver, second factor on",
    "sme_admin": "admin of an approved SME",
    "bank_officer": "officer of an approved bank",
    "pending_admin": "admin of an SME whose filing is pending",
    "anonymous": "no Authorization header",
    "bad_token": "a well-formed token that does not exist",
}


def _seed() -> dict[str, str | None]:
    """Organisations of every interesting kind and status, with users; returns the tokens."""
    operator = OrganisationFactory(kind=OrgKind.PLATFORM_OPERATOR)
    sme = OrganisationFactory(kind=OrgKind.SME)
    bank = OrganisationFactory(kind=OrgKind.BANK)
    pending = OrganisationFactory(kind=OrgKind.SME)  # pending once its token exists
    insurer = OrganisationFactory(kind=OrgKind.INSURER)
    OrganisationFactory(kind=OrgKind.SME, rejected=True)
    suspended = OrganisationFactory(kind=OrgKind.LOGISTICS, suspended=True, foreign=True)
    callers = {
        # The factory turns the second factor on for operator staff and approvers.
        "operator": UserFactory(organisation=operator, roles=[Role.ADMIN, Role.APPROVER]),
        "sme_admin": UserFactory(organisation=sme, roles=[Role.ADMIN, Role.OFFICER]),
        "bank_officer": UserFactory(organisation=bank, roles=[Role.OFFICER]),
        "pending_admin": UserFactory(organisation=pending, roles=[Role.ADMIN]),
    }
    # Colleagues, so user ids hit real users of the caller's own and of other organisations.
    UserFactory(organisation=operator, roles=[Role.OFFICER])
    UserFactory(organisation=sme, roles=[Role.OFFICER])
    UserFactory(organisation=sme, roles=[Role.APPROVER], active=False)
    UserFactory(organisation=bank, roles=[Role.ADMIN])
    UserFactory(organisation=insurer, roles=[Role.ADMIN])
    UserFactory(organisation=suspended, roles=[Role.ADMIN])
    tokens: dict[str, str | None] = {
        name: services.create_token(actor=user, name=f"fuzz {name}")[1]
        for name, user in callers.items()}
    # Tokens are only issued to approved organisations; this filing went back to pending
    # afterwards (as an old token might outlive a status change): the policies must hold.
    pending.filing_status = FilingStatus.PENDING
    tokens["anonymous"] = None
    tokens["bad_token"] = services.TOKEN_PREFIX + "x" * 43
    db.session.commit()
    top = max(db.session.scalar(select(func.max(Organisation.id))),
              db.session.scalar(select(func.max(User.id))))
    assert top < SEEDED_IDS.stop, "keep SEEDED_IDS covering the seeded rows"
    db.session.commit()  # end the read: on SQLite any open transaction holds the write lock
    db.session.remove()
    return tokens


class World:
    """The seeded database, rebuilt whenever the fuzzer moves on to another operation."""

    def __init__(self, app):
        self.app = app
        self.operation: str | None = None
        self.tokens: dict[str, str | None] = {}

    def tokens_for(self, operation: str) -> dict[str, str | None]:
        if operation != self.operation:
            if self.operation is not None:
                db.session.remove()
                _reset_database(self.app)
            self.tokens = _seed()
            self.operation = operation
        return self.tokens


@pytest.fixture
def api_schema(app, caller):
    config = schemathesis.Config.from_dict({
        "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True,
                       "database": "none", "mode": "all"},
        "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
        "phases": {"stateful": {"enabled": False},
                   "fuzzing": {"enabled": caller not in TURNED_AWAY}},
    })
    loaded = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app, config=config)

    @loaded.hook
    def before_generate_path_parameters(context, strategy):
        names = re.findall(r"{(\w+)}", context.operation.path)
        if not names:
            return strategy
        seeded = st.fixed_dictionaries({name: st.sampled_from(SEEDED_IDS) for name in names})
        return st.one_of(strategy, seeded)

    return loaded


schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.fixture(params=list(CALLERS))
def caller(request, app) -> str:
    # schemathesis 4.32's lazy loader reads and rewrites ``node._nodeid`` (only to label the
    # subtests), which pytest 9 no longer has: give it the public node id.
    request.node._nodeid = request.node.nodeid
    return request.param


@pytest.fixture
def world(app) -> World:
    return World(app)


@pytest.mark.usefixtures("caller")
@schema.parametrize()
@settings(deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much,
    HealthCheck.data_too_large])
def test_api_answers_as_documented(case, caller, world, app):
    token = world.tokens_for(case.operation.label)[caller]
    headers = {key: value for key, value in (case.headers or {}).items()
               if key.lower() != "authorization"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    case.headers = headers
    # A fresh app context per request, as in production: the tests' own context would
    # otherwise share ``g`` (Flask-Login's cached user) and the session across requests.
    with app.app_context():
        response = case.call()
    case.validate_response(response, headers=headers)
