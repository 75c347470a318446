from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest

from finance_app import clock
from finance_app.accounts.states import OrgKind, Role
from finance_app.extensions import db
from finance_app.insurance import services
from finance_app.trade import services as trade
from finance_app.trade.states import DocumentSource
from tests.factories import make_org_user
from tests.trade.builders import (
    LOGISTICS_CODE, PAY_CODE, SME_CODE, inventory, order, payment, waybill,
)

# The business date the tests start on: orders are placed on 1 November 2026 and shipped
# on the 2nd; declarations are due within 15 days.
START = datetime(2026, 11, 5, 2, 0)


@pytest.fixture
def world(app):
    """An insurer, an SME that exports, its logistics company and payment institution, two
    banks and the platform operator; the business date is 5 November 2026."""
    with clock.frozen_at(START):
        insurer = make_org_user(OrgKind.INSURER, roles=(Role.OFFICER, Role.APPROVER))
        sme = make_org_user(OrgKind.SME, roles=(Role.ADMIN, Role.OFFICER), customs_code=SME_CODE)
        logistics = make_org_user(OrgKind.LOGISTICS, customs_code=LOGISTICS_CODE)
        payer = make_org_user(OrgKind.PAYMENT_INSTITUTION, customs_code=PAY_CODE)
        bank = make_org_user(OrgKind.BANK, roles=(Role.OFFICER, Role.APPROVER))
        other_bank = make_org_user(OrgKind.BANK, roles=(Role.OFFICER, Role.APPROVER))
        platform = make_org_user(OrgKind.PLATFORM_OPERATOR, roles=(Role.OFFICER, Role.APPROVER))
        other_sme = make_org_user(OrgKind.SME, roles=(Role.ADMIN, Role.OFFICER))
        yield dict(insurer=insurer, sme=sme, logistics=logistics, payer=payer, bank=bank,
                   other_bank=other_bank, platform=platform, other_sme=other_sme)


RATES = [services.RateInput(0, 90, Decimal("0.0030")),
         services.RateInput(0, 180, Decimal("0.0045")),
         services.RateInput(4, 90, Decimal("0.0060")),
         services.RateInput(5, 90, Decimal("0.0080")),
         services.RateInput(5, 180, Decimal("0.0110"))]


def terms(world, **overrides) -> services.PolicyTerms:
    values = dict(insured_org_id=world["sme"].org_id, start_date=date(2026, 10, 1),
                  end_date=date(2027, 9, 30), currency="USD", currencies=["EUR"],
                  max_liability=Decimal("500000.00"), rates=RATES,
                  commercial_coverage=Decimal("0.90"), political_coverage=Decimal("0.95"))
    values.update(overrides)
    return services.PolicyTerms(**values)


@pytest.fixture
def policy(world):
    made = services.issue_policy(terms(world), actor=world["insurer"])
    db.session.commit()
    return made


def approved_limit(world, policy, *, amount="100000.00", approve=None, country="BR",
                   reg="BR-CNPJ-11222333000181", name="Comercial Paulista Ltda", term=120):
    limit = services.apply_for_limit(policy.id, actor=world["sme"], buyer_name=name,
                                     buyer_country=country, buyer_registration_no=reg,
                                     amount=Decimal(amount), payment_term_days=term)
    db.session.commit()
    services.approve_limit(limit.id, actor=world["insurer"], amount=Decimal(approve or amount),
                           reason=None if approve is None else "our appetite for this buyer")
    db.session.commit()
    return limit


@pytest.fixture
def limit(world, policy):
    return approved_limit(world, policy)


def shipped(no="ORD-1", *, goods="40000.00", currency="USD", country="BR", term=90,
            waybill_no=None, ship=datetime(2026, 11, 2, 8, 0), app_time=None):
    """A verified B2B export (9710) on payment terms: a receivable from the buyer."""
    wb = waybill_no or f"WB-{no}"
    docs = [order(no, trade_mode="9710", order_type="B", payment_term_days=term, goods=goods,
                  freight="0", lines=[], currency=currency, buyer_name="Comercial Paulista Ltda",
                  consignee="Comercial Paulista Ltda", consignee_country=country,
                  **({"app_time": app_time} if app_time else {})),
            inventory(no, waybill=wb, cop=f"COP-{no}", trade_mode="9710", country=country,
                      currency=currency),
            waybill(wb, consignee="Comercial Paulista Ltda", currency=currency, ship_time=ship)]
    trade.ingest(docs, actor=None, source=DocumentSource.JSON)
    db.session.commit()
    from sqlalchemy import select
    from finance_app.trade.models import Order
    return db.session.execute(select(Order).where(Order.order_no == no)).scalar_one()


def buyer_pays(no="ORD-1", amount="40000.00", currency="USD", txn=None):
    trade.ingest([payment(no, amount=amount, currency=currency, txn=txn or f"TXN-{no}",
                          payer_name="Comercial Paulista Ltda")],
                 actor=None, source=DocumentSource.JSON)
    db.session.commit()


def declare(world, limit, order, **kwargs):
    made = services.declare_shipment(actor=world["sme"], buyer_limit_id=limit.id,
                                     order_id=order.id, **kwargs)
    db.session.commit()
    return made
