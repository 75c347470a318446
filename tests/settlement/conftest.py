from __future__ import annotations

import pytest

from finance_app.accounts.states import OrgKind, Role
from tests.factories import make_org_user


@pytest.fixture
def parties(app):
    """An SME that owes a bank money, the bank, and the platform operator."""
    sme = make_org_user(OrgKind.SME, roles=(Role.ADMIN, Role.OFFICER))
    bank = make_org_user(OrgKind.BANK, roles=(Role.OFFICER, Role.APPROVER))
    operator = make_org_user(OrgKind.PLATFORM_OPERATOR, roles=(Role.OFFICER, Role.APPROVER))
    return sme, bank, operator
