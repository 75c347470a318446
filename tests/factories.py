"""factory_boy factories on the app's session (persistence: flush)."""
from __future__ import annotations

import factory
import pyotp
from factory.alchemy import SQLAlchemyModelFactory
from stdnum.cn import uscc

from finance_app import clock
from finance_app.accounts import passwords
from finance_app.accounts.models import Organisation, User, UserRole
from finance_app.accounts.states import FilingStatus, OrgKind, Role
from finance_app.extensions import db

PASSWORD = "correct-horse-battery-9"
_HASHES: dict[str, str] = {}


def password_hash(password: str = PASSWORD) -> str:
    if password not in _HASHES:
        _HASHES[password] = passwords.hash_password(password)
    return _HASHES[password]


def credit_code(n: int) -> str:
    body = f"91440400MA{n:07d}"
    return body + uscc.calc_check_digit(body)


class OrganisationFactory(SQLAlchemyModelFactory):
    class Meta:
        model = Organisation
        sqlalchemy_session_factory = lambda: db.session  # noqa: E731
        sqlalchemy_session_persistence = "flush"

    kind = OrgKind.SME
    name = factory.Sequence(lambda n: f"测试企业{n}有限公司")
    name_en = factory.Sequence(lambda n: f"Test Company {n} Ltd.")
    country = "CN"
    credit_code = factory.Sequence(lambda n: credit_code(n + 100))
    customs_code = factory.Sequence(lambda n: f"44049{n:05d}")
    contact_email = factory.Sequence(lambda n: f"contact{n}@example.test")
    zone = "Zhuhai Hengqin"
    filing_status = FilingStatus.APPROVED
    filed_at = factory.LazyFunction(clock.now)

    class Params:
        pending = factory.Trait(filing_status=FilingStatus.PENDING)
        rejected = factory.Trait(filing_status=FilingStatus.REJECTED,
                                 filing_reason="Business licence unreadable")
        suspended = factory.Trait(filing_status=FilingStatus.SUSPENDED,
                                  filing_reason="Under investigation")
        foreign = factory.Trait(country="PT", credit_code=None, customs_code=None,
                                registration_number=factory.Sequence(lambda n: f"PT5{n:08d}"))


class UserFactory(SQLAlchemyModelFactory):
    class Meta:
        model = User
        sqlalchemy_session_factory = lambda: db.session  # noqa: E731
        sqlalchemy_session_persistence = "flush"

    organisation = factory.SubFactory(OrganisationFactory)
    email = factory.Sequence(lambda n: f"user{n}@example.test")
    name = factory.Sequence(lambda n: f"User {n}")
    password_hash = factory.LazyFunction(password_hash)
    active = True

    @factory.post_generation
    def roles(self, create, extracted, **kwargs):
        for role in extracted or [Role.ADMIN, Role.OFFICER]:
            self.role_rows.append(UserRole(role=Role(role)))

    @factory.post_generation
    def with_totp(self, create, extracted, **kwargs):
        if extracted or self.second_factor_required:
            self.totp_secret = pyotp.random_base32()
            self.totp_enabled_at = clock.now()


def make_org_user(kind: OrgKind = OrgKind.SME, roles=(Role.ADMIN, Role.OFFICER), *,
                  status: FilingStatus = FilingStatus.APPROVED, commit: bool = True,
                  **org_kwargs) -> User:
    org = OrganisationFactory(kind=kind, filing_status=status, **org_kwargs)
    user = UserFactory(organisation=org, roles=list(roles))
    if commit:
        db.session.commit()
    return user
