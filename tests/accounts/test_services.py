"""Filing, users and tokens, through the service functions."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from finance_app.accounts import services
from finance_app.accounts.models import Organisation, User
from finance_app.accounts.states import FilingAction, FilingStatus, OrgKind, Role
from finance_app.audit.models import AuditEvent
from finance_app.errors import Conflict, Forbidden, IllegalTransition, NotFound, ValidationFailed
from finance_app.extensions import db
from tests.factories import PASSWORD, credit_code, make_org_user


def profile(**overrides) -> services.OrgProfile:
    values = dict(kind="sme", name="珠海样例电商有限公司", name_en="Zhuhai Sample E-commerce",
                  country="CN", credit_code=credit_code(9001), customs_code="4404960901",
                  contact_email="boss@sample.test", zone="Zhuhai Hengqin")
    values.update(overrides)
    return services.OrgProfile(**values)


def count(model) -> int:
    return db.session.execute(select(func.count()).select_from(model)).scalar_one()


def register(**overrides):
    email = overrides.pop("admin_email", "boss@sample.test")
    org, user = services.register_organisation(profile(**overrides), admin_email=email,
                                               admin_name="Li Wei", password=PASSWORD)
    db.session.commit()
    return org, user


def operator():
    return make_org_user(OrgKind.PLATFORM_OPERATOR, roles=(Role.ADMIN, Role.APPROVER))


class TestRegistration:
    def test_sign_up_files_a_pending_organisation_with_its_first_user_as_admin(self, app):
        org, user = register()
        assert org.filing_status is FilingStatus.PENDING
        assert user.roles == {Role.ADMIN}
        assert user.password_hash.startswith("$argon2id$")
        assert user.org_id == org.id

    def test_foreign_organisation_files_country_and_registration_number(self, app):
        org, _ = register(country="PT", credit_code=None, customs_code=None,
                          registration_number="PT 509 123 456", admin_email="ana@lisboa.test")
        assert (org.country, org.registration_number, org.credit_code) == (
            "PT", "PT 509 123 456", None)

    @pytest.mark.parametrize("overrides, field", [
        ({"credit_code": "91440400MA00090010"}, "credit_code"),
        ({"credit_code": ""}, "credit_code"),
        ({"customs_code": "12"}, "customs_code"),
        ({"country": "ZZ"}, "country"),
        ({"country": "BR", "credit_code": None, "registration_number": ""}, "registration_number"),
        ({"kind": "pirate"}, "kind"),
        ({"kind": "platform_operator"}, "kind"),
        ({"name": "  "}, "name"),
        ({"contact_email": "nope"}, "contact_email"),
    ])
    def test_bad_profile_is_refused_naming_the_field_and_stores_nothing(self, app, overrides, field):
        with pytest.raises(ValidationFailed) as caught:
            services.register_organisation(profile(**overrides), admin_email="a@b.test",
                                           admin_name="A", password=PASSWORD)
        assert caught.value.field == field
        db.session.rollback()
        assert count(Organisation) == 0 and count(User) == 0

    def test_weak_password_and_bad_email_are_refused(self, app):
        with pytest.raises(ValidationFailed) as caught:
            services.register_organisation(profile(), admin_email="a@b.test", admin_name="A",
                                           password="short")
        assert caught.value.field == "password"
        with pytest.raises(ValidationFailed) as caught:
            services.register_organisation(profile(), admin_email="no-at-sign",
                                           admin_name="A", password=PASSWORD)
        assert caught.value.field == "email"

    def test_a_credit_code_or_email_is_filed_only_once(self, app):
        register()
        with pytest.raises(ValidationFailed) as caught:
            register(admin_email="other@sample.test", customs_code=None)
        assert caught.value.field == "credit_code"
        db.session.rollback()
        with pytest.raises(ValidationFailed) as caught:
            register(credit_code=credit_code(9002), customs_code=None)
        assert caught.value.field == "email"


class TestFilingDecisions:
    def test_operator_approves_and_history_and_audit_record_it(self, app):
        org, _ = register()
        op = operator()
        services.decide_filing(org.id, "approve", actor=op)
        db.session.commit()
        assert org.filing_status is FilingStatus.APPROVED and org.decided_at is not None
        assert [(c.from_status, c.to_status) for c in org.filing_history] == [
            (FilingStatus.PENDING, FilingStatus.APPROVED)]
        event = db.session.execute(select(AuditEvent).where(
            AuditEvent.action == "organisation.filing_approve")).scalar_one()
        assert event.actor_user_id == op.id and event.object_id == str(org.id)

    def test_reject_and_suspend_need_a_reason_the_organisation_can_read(self, app):
        org, _ = register()
        op = operator()
        with pytest.raises(ValidationFailed) as caught:
            services.decide_filing(org.id, "reject", actor=op, reason="  ")
        assert caught.value.field == "reason"
        services.decide_filing(org.id, "reject", actor=op, reason="Licence scan is unreadable")
        db.session.commit()
        assert org.filing_status is FilingStatus.REJECTED
        assert org.filing_reason == "Licence scan is unreadable"

    def test_rejected_filing_is_corrected_and_goes_back_for_review(self, app):
        org, admin = register()
        services.decide_filing(org.id, "reject", actor=operator(), reason="Wrong address")
        db.session.commit()
        services.update_filing(org.id, profile(address="横琴新区 1 号"), actor=admin)
        db.session.commit()
        assert org.filing_status is FilingStatus.PENDING and org.address == "横琴新区 1 号"
        assert org.filing_history[-1].action is FilingAction.RESUBMIT

    def test_suspending_stops_the_organisations_api_tokens(self, app):
        user = make_org_user()
        token, raw = services.create_token(actor=user, name="erp")
        db.session.commit()
        assert services.authenticate_token(raw) == user
        services.decide_filing(user.org_id, "suspend", actor=operator(), reason="Fraud inquiry")
        db.session.commit()
        assert services.authenticate_token(raw) is None
        assert token.revoked_at is not None

    def test_illegal_decisions_are_refused(self, app):
        org, _ = register()
        op = operator()
        with pytest.raises(IllegalTransition):
            services.decide_filing(org.id, "suspend", actor=op, reason="x")
        with pytest.raises(ValidationFailed):
            services.decide_filing(org.id, "resubmit", actor=op)

    def test_only_operator_approvers_decide(self, app):
        org, _ = register()
        officer = make_org_user(OrgKind.PLATFORM_OPERATOR, roles=(Role.OFFICER,))
        bank = make_org_user(OrgKind.BANK, roles=(Role.ADMIN, Role.APPROVER))
        for actor in (officer, bank):
            with pytest.raises(Forbidden):
                services.decide_filing(org.id, "approve", actor=actor)
        assert org.filing_status is FilingStatus.PENDING

    def test_unknown_organisation_is_not_found(self, app):
        with pytest.raises(NotFound):
            services.decide_filing(999, "approve", actor=operator())


class TestDirectory:
    def test_banks_and_insurers_read_approved_profiles_only(self, app):
        bank = make_org_user(OrgKind.BANK)
        approved = make_org_user(OrgKind.SME).organisation
        pending = make_org_user(OrgKind.SME, status=FilingStatus.PENDING).organisation
        listed = services.directory(bank)
        assert approved in listed and pending not in listed
        assert services.get_organisation(approved.id, actor=bank) is approved
        with pytest.raises(NotFound):
            services.get_organisation(pending.id, actor=bank)

    def test_an_sme_reads_only_its_own_profile(self, app):
        sme = make_org_user(OrgKind.SME)
        other = make_org_user(OrgKind.SME).organisation
        assert services.directory(sme) == [sme.organisation]
        with pytest.raises(NotFound):
            services.get_organisation(other.id, actor=sme)


class TestUsers:
    def test_admin_adds_a_user_with_roles(self, app):
        admin = make_org_user()
        user = services.add_user(actor=admin, email="Clerk@Sample.test", name="Clerk",
                                 roles=["officer", "approver"], password=PASSWORD)
        db.session.commit()
        assert user.email == "clerk@sample.test" and user.org_id == admin.org_id
        assert user.roles == {Role.OFFICER, Role.APPROVER}
        assert user.second_factor_required

    def test_officer_cannot_add_users(self, app):
        officer = make_org_user(roles=(Role.OFFICER,))
        with pytest.raises(Forbidden):
            services.add_user(actor=officer, email="x@y.test", name="X", roles=["officer"],
                              password=PASSWORD)

    def test_pending_organisation_admin_cannot_add_users(self, app):
        admin = make_org_user(status=FilingStatus.PENDING)
        with pytest.raises(Forbidden) as caught:
            services.add_user(actor=admin, email="x@y.test", name="X", roles=["officer"],
                              password=PASSWORD)
        assert "pending" in caught.value.message

    def test_unknown_role_and_no_role_are_refused(self, app):
        admin = make_org_user()
        for roles in (["boss"], []):
            with pytest.raises(ValidationFailed) as caught:
                services.add_user(actor=admin, email="x@y.test", name="X", roles=roles,
                                  password=PASSWORD)
            assert caught.value.field == "roles"

    def test_the_last_admin_cannot_be_demoted_or_deactivated(self, app):
        admin = make_org_user()
        with pytest.raises(Conflict):
            services.set_roles(admin.id, ["officer"], actor=admin)
        with pytest.raises(Conflict):
            services.deactivate_user(admin.id, actor=admin)

    def test_deactivating_ends_sessions_and_tokens_at_once(self, app):
        admin = make_org_user()
        clerk = services.add_user(actor=admin, email="c@s.test", name="C", roles=["officer"],
                                  password=PASSWORD)
        db.session.commit()
        from finance_app.accounts import sessions
        raw_session = sessions.start_session(clerk)
        _token, raw_token = services.create_token(actor=clerk, name="t")
        db.session.commit()
        services.deactivate_user(clerk.id, actor=admin)
        db.session.commit()
        assert sessions.validate_session(raw_session) is None
        assert services.authenticate_token(raw_token) is None
        with pytest.raises(services.SignInRefused) as caught:
            services.authenticate("c@s.test", PASSWORD, max_failures=5,
                                  lockout=app.config["LOCKOUT_PERIOD"])
        assert caught.value.code == "deactivated"

    def test_admin_of_another_org_cannot_touch_users(self, app):
        admin = make_org_user()
        stranger = make_org_user()
        with pytest.raises(NotFound):
            services.deactivate_user(admin.id, actor=stranger)
        assert admin.active


class TestTokens:
    def test_token_is_stored_hashed_and_shown_once(self, app):
        admin = make_org_user()
        token, raw = services.create_token(actor=admin, name="ERP sync")
        db.session.commit()
        assert raw.startswith("sfp_") and raw not in token.token_hash
        assert token.prefix == raw[:12]
        assert services.authenticate_token(raw) == admin
        assert services.authenticate_token(raw + "x") is None

    def test_revoked_token_stops_working(self, app):
        admin = make_org_user()
        token, raw = services.create_token(actor=admin, name="t")
        db.session.commit()
        services.revoke_token(token.id, actor=admin)
        db.session.commit()
        assert services.authenticate_token(raw) is None

    def test_cannot_revoke_another_orgs_token(self, app):
        token, raw = services.create_token(actor=make_org_user(), name="t")
        db.session.commit()
        with pytest.raises(NotFound):
            services.revoke_token(token.id, actor=make_org_user())
        assert services.authenticate_token(raw) is not None


def test_an_unapproved_organisation_gets_no_api_token(app):
    pending = make_org_user(status=FilingStatus.PENDING)
    with pytest.raises(Forbidden) as caught:
        services.create_token(actor=pending, name="early")
    assert "pending" in caught.value.message
    result = app.test_cli_runner().invoke(args=["create-token", pending.email])
    assert result.exit_code != 0 and "pending" in result.output
