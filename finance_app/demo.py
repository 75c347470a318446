"""The demo world: one organisation of every kind, approved, with a user each.

Safe to run twice: existing organisations and users are kept (their passwords reset to the
demo password) and nothing is duplicated.  Later capabilities add their records here.
"""
from __future__ import annotations

from datetime import timedelta

from dataclasses import dataclass

import pyotp
from sqlalchemy import select
from stdnum.cn import uscc

from finance_app import clock
from finance_app.accounts import passwords, totp
from finance_app.accounts.models import Organisation, User, UserRole
from finance_app.accounts.states import FilingAction, FilingStatus, OrgKind, Role
from finance_app.audit import services as audit
from finance_app.extensions import db


def demo_credit_code(division: str, serial: int) -> str:
    """A GB 32100-valid code for a fictitious company: 91 + division + MA + serial + check."""
    body = f"91{division}MA{serial:07d}"
    return body + uscc.calc_check_digit(body)


@dataclass(frozen=True)
class DemoOrg:
    key: str
    kind: OrgKind
    name: str
    name_en: str
    division: str
    serial: int
    customs_code: str | None
    zone: str
    roles: tuple[Role, ...] = (Role.ADMIN, Role.OFFICER)


DEMO_ORGS = [
    DemoOrg("operator", OrgKind.PLATFORM_OPERATOR, "珠海跨境电商公共服务平台运营有限公司",
            "Zhuhai CBEC Public Service Platform Co., Ltd.", "440400", 1, None, "Zhuhai Hengqin",
            (Role.ADMIN, Role.OFFICER, Role.APPROVER)),
    DemoOrg("sme1", OrgKind.SME, "珠海海岸线跨境电商有限公司", "Zhuhai Coastline E-commerce Co., Ltd.",
            "440400", 11, "4404930001", "Zhuhai Hengqin"),
    DemoOrg("sme2", OrgKind.SME, "东莞虎门潮品贸易有限公司", "Dongguan Humen Trend Trading Co., Ltd.",
            "441900", 12, "4419930002", "Dongguan Humen"),
    DemoOrg("bank1", OrgKind.BANK, "珠海华信银行横琴分行", "Huaxin Bank Hengqin Branch",
            "440400", 21, None, "Zhuhai Hengqin"),
    DemoOrg("bank2", OrgKind.BANK, "东莞粤融银行", "Dongguan Yuerong Bank", "441900", 22, None,
            "Dongguan Songshan Lake"),
    DemoOrg("insurer1", OrgKind.INSURER, "中信保广东分公司（演示）",
            "Export Credit Insurance Guangdong (demo)", "440100", 31, None, "Guangzhou"),
    DemoOrg("warehouse1", OrgKind.WAREHOUSE_OPERATOR, "珠海保税物流仓储有限公司",
            "Zhuhai Bonded Logistics Warehousing Co., Ltd.", "440400", 41, "4404960041",
            "Zhuhai Bonded Zone"),
    DemoOrg("logistics1", OrgKind.LOGISTICS, "粤港澳速运有限公司", "GBA Express Logistics Co., Ltd.",
            "440400", 51, "4404980003", "Zhuhai Hengqin"),
    DemoOrg("payment1", OrgKind.PAYMENT_INSTITUTION, "湾区跨境支付有限公司",
            "Bay Area Cross-border Payments Co., Ltd.", "440300", 61, "4404990004", "Shenzhen"),
]


def seed(*, password: str) -> list[str]:
    lines = ["Demo users (password: the DEMO_PASSWORD setting):"]
    operator_user: User | None = None
    hashed = passwords.hash_password(password)
    for spec in DEMO_ORGS:
        code = demo_credit_code(spec.division, spec.serial)
        org = db.session.execute(
            select(Organisation).where(Organisation.credit_code == code)).scalar_one_or_none()
        if org is None:
            org = Organisation(kind=spec.kind, name=spec.name, name_en=spec.name_en, country="CN",
                               credit_code=code, customs_code=spec.customs_code, zone=spec.zone,
                               contact_email=f"{spec.key}@demo.test",
                               address=f"{spec.zone}, Guangdong, China",
                               filing_status=FilingStatus.PENDING, filed_at=clock.now())
            db.session.add(org)
            db.session.flush()
            audit.record("organisation.registered", org_id=org.id, obj=org,
                         changes={"kind": org.kind, "name": org.name, "source": "demo"})
        email = f"{spec.key}@demo.test"
        user = db.session.execute(select(User).where(User.email == email)).scalar_one_or_none()
        if user is None:
            user = User(org_id=org.id, email=email, name=f"{spec.name_en.split(' ')[0]} {spec.key}",
                        password_hash=hashed)
            user.role_rows = [UserRole(role=r) for r in spec.roles]
            db.session.add(user)
            db.session.flush()
        else:
            user.password_hash = hashed
            user.active, user.failed_signins, user.locked_until = True, 0, None
        if user.second_factor_required and not user.totp_enabled:
            user.totp_secret = pyotp.random_base32()
            user.totp_enabled_at = clock.now()
            totp.issue_recovery_codes(user)
        if spec.kind is OrgKind.PLATFORM_OPERATOR:
            operator_user = user
            if org.filing_status is FilingStatus.PENDING:
                org.apply(FilingAction.APPROVE, actor=None, reason="Platform operator")
        extra = f"  second factor secret {user.totp_secret}" if user.totp_secret else ""
        lines.append(f"  {email:<26} {spec.kind.value:<20} {spec.name_en}{extra}")
    db.session.flush()
    # the demo organisations joined the platform 18 months ago, before their trade began
    joined = clock.now() - timedelta(days=540)
    for org in db.session.execute(select(Organisation).where(
            Organisation.contact_email.like("%@demo.test"),
            Organisation.filing_status == FilingStatus.PENDING)).scalars():
        org.apply(FilingAction.APPROVE, actor=operator_user)
        audit.record("organisation.filing_approve", actor=operator_user, obj=org,
                     changes={"filing_status": ["pending", "approved"], "source": "demo"})
        org.created_at = org.filed_at = joined
        org.decided_at = joined + timedelta(days=2)
    from finance_app.trade.demo import seed_trades
    lines.append(seed_trades())
    from finance_app.settlement.demo import seed_settlement
    lines.append(seed_settlement(operator_user))
    from finance_app.statistics.demo import seed_statistics
    lines.append(seed_statistics(operator_user))
    from finance_app.warehouse.demo import seed_warehouse
    lines.append(seed_warehouse(operator_user))
    from finance_app.financing.demo import seed_financing
    lines.append(seed_financing(operator_user, password_hash=hashed))
    from finance_app.insurance.demo import seed_insurance
    lines.append(seed_insurance(operator_user))
    from finance_app.compensation.demo import seed_compensation
    lines.append(seed_compensation(operator_user))
    from finance_app.oversight.demo import seed_oversight
    lines.append(seed_oversight(operator_user))
    db.session.commit()
    from finance_app import outbox
    outbox.run_due(limit=1000)   # the notices the demo's changes queued
    lines.append("Users with a second factor: add the secret to an authenticator app, or print "
                 "the current code with `flask --app finance_app demo-code EMAIL`.")
    return lines
