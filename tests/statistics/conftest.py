"""A small known world for the statistics: SMEs in two pilot-zone areas, their logistics
company and payment institution, two banks (an officer and an approver each), an insurer
and the platform operator, with the clock frozen on 20 November 2026 and USD and EUR
rates on known days."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest

from finance_app import clock
from finance_app.accounts.states import OrgKind, Role
from finance_app.extensions import db
from finance_app.ledger import rates
from tests.factories import make_org_user
from tests.financing.conftest import second_user
from tests.trade.builders import LOGISTICS_CODE, PAY_CODE, SME_CODE

NOW = datetime(2026, 11, 20, 2, 0)           # business date 20 November 2026
DONGGUAN_CODE = "4419930002"
RATES = [("USD", "7.0000", date(2026, 10, 1)), ("EUR", "8.0000", date(2026, 10, 1)),
         ("USD", "7.2000", date(2026, 11, 2))]


@pytest.fixture
def world(app):
    with clock.frozen_at(NOW):
        sme = make_org_user(OrgKind.SME, roles=(Role.ADMIN, Role.OFFICER),
                            customs_code=SME_CODE, zone="Zhuhai Hengqin")
        sme2 = make_org_user(OrgKind.SME, roles=(Role.ADMIN, Role.OFFICER),
                             customs_code=DONGGUAN_CODE, zone="Dongguan Humen")
        logistics = make_org_user(OrgKind.LOGISTICS, customs_code=LOGISTICS_CODE)
        payer = make_org_user(OrgKind.PAYMENT_INSTITUTION, customs_code=PAY_CODE)
        bank = make_org_user(OrgKind.BANK, roles=(Role.OFFICER,))
        bank2 = make_org_user(OrgKind.BANK, roles=(Role.OFFICER,))
        platform = make_org_user(OrgKind.PLATFORM_OPERATOR, roles=(Role.ADMIN, Role.APPROVER))
        insurer = make_org_user(OrgKind.INSURER, roles=(Role.OFFICER, Role.APPROVER))
        for currency, rate, day in RATES:
            rates.enter_rate(currency, "CNY", Decimal(rate), day, actor=platform, note="test")
        db.session.commit()
        yield dict(sme=sme, sme2=sme2, logistics=logistics, payer=payer, bank=bank,
                   bank_approver=second_user(bank, Role.APPROVER), bank2=bank2,
                   bank2_approver=second_user(bank2, Role.APPROVER), platform=platform,
                   insurer=insurer)
