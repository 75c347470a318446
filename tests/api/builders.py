"""Builders for API tests: a user of some organisation, with a live API token."""
from __future__ import annotations

from dataclasses import dataclass

from finance_app.accounts import services
from finance_app.accounts.states import FilingStatus, OrgKind, Role
from finance_app.extensions import db
from tests.factories import OrganisationFactory, UserFactory


@dataclass(frozen=True)
class Caller:
    """Plain values only: nothing that lazy-loads from the test's session later."""
    user_id: int
    org_id: int
    email: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def make_caller(kind: OrgKind = OrgKind.SME, roles=(Role.ADMIN, Role.OFFICER), *,
                org=None, status: FilingStatus = FilingStatus.APPROVED) -> Caller:
    """A user (in ``org``, or a new organisation of ``kind``) and an API token for them.

    Tokens are only issued to approved organisations, so an organisation meant to be in
    another filing status gets it after the token exists.
    """
    org = org or OrganisationFactory(kind=kind)
    user = UserFactory(organisation=org, roles=list(roles))
    _, raw = services.create_token(actor=user, name="tests")
    org.filing_status = status
    db.session.flush()
    caller = Caller(user_id=user.id, org_id=org.id, email=user.email, token=raw)
    db.session.commit()
    return caller
