"""Fixtures for API tests (builders in tests/api/builders.py)."""
from __future__ import annotations

import pytest

from finance_app.accounts.states import OrgKind, Role
from tests.api.builders import Caller, make_caller


@pytest.fixture
def operator(app) -> Caller:
    """A platform operator admin and approver (the factory turns the second factor on)."""
    return make_caller(OrgKind.PLATFORM_OPERATOR, roles=(Role.ADMIN, Role.APPROVER))


@pytest.fixture
def sme_admin(app) -> Caller:
    return make_caller(OrgKind.SME, roles=(Role.ADMIN, Role.OFFICER))
