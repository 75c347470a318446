"""A small financing world: an SME with trade evidence and a warehouse receipt, two banks
(each an officer and an approver), a warehouse operator, the platform operator, and the
day's exchange rates."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from finance_app import clock
from finance_app.accounts.states import OrgKind, Role
from finance_app.extensions import db
from finance_app.financing import marketplace, products, review
from finance_app.financing.products import ProductTerms
from finance_app.ledger import rates
from finance_app.money import Money
from finance_app.trade import services as trade
from finance_app.trade.models import Order, Receivable
from finance_app.trade.states import Direction, DocumentSource
from finance_app.warehouse import services as warehouse
from finance_app.warehouse.states import WarehouseKind
from tests.factories import UserFactory, make_org_user
from tests.trade.builders import (
    LOGISTICS_CODE, PAY_CODE, SME_CODE, inventory, order, payment, waybill,
)


def usd(text: str) -> Money:
    return Money(Decimal(text), "USD")


def second_user(user, *roles):
    other = UserFactory(organisation=user.organisation, roles=list(roles))
    db.session.commit()
    return other


@pytest.fixture
def world(app):
    sme = make_org_user(OrgKind.SME, roles=(Role.ADMIN, Role.OFFICER), customs_code=SME_CODE)
    other_sme = make_org_user(OrgKind.SME, roles=(Role.ADMIN, Role.OFFICER))
    logistics = make_org_user(OrgKind.LOGISTICS, customs_code=LOGISTICS_CODE)
    payer = make_org_user(OrgKind.PAYMENT_INSTITUTION, customs_code=PAY_CODE)
    bank = make_org_user(OrgKind.BANK, roles=(Role.OFFICER,))
    bank_approver = second_user(bank, Role.APPROVER)
    bank2 = make_org_user(OrgKind.BANK, roles=(Role.OFFICER,))
    bank2_approver = second_user(bank2, Role.APPROVER)
    operator = make_org_user(OrgKind.WAREHOUSE_OPERATOR, roles=(Role.OFFICER,))
    platform = make_org_user(OrgKind.PLATFORM_OPERATOR, roles=(Role.OFFICER, Role.APPROVER))
    for base, quote, rate in (("USD", "CNY", "7.1865"), ("EUR", "CNY", "7.7528")):
        rates.enter_rate(base, quote, Decimal(rate), clock.today(), actor=platform,
                         note="test")
    db.session.commit()
    return dict(sme=sme, other_sme=other_sme, logistics=logistics, payer=payer, bank=bank,
                bank_approver=bank_approver, bank2=bank2, bank2_approver=bank2_approver,
                operator=operator, platform=platform)


def file(docs, actor=None):
    batch = trade.ingest(docs, actor=actor, source=DocumentSource.JSON,
                         direction=Direction.EXPORT)
    db.session.commit()
    return batch


def receivable(no: str, amount: str = "10000.00", days: int = 120) -> Receivable:
    """A verified B2B export on payment terms: a receivable from the buyer."""
    file([order(no, trade_mode="9710", order_type="B", payment_term_days=days, goods=amount,
                freight="0", lines=[], buyer_name="Lisboa Imports Lda",
                order_date=clock.today()),
          inventory(no, waybill=f"WB-{no}", cop=f"COP-{no}", trade_mode="9710"),
          waybill(f"WB-{no}")])
    return db.session.execute(select(Receivable).join(Order).where(
        Order.order_no == no)).scalar_one()


def unshipped_order(no: str, amount: str = "8000.00") -> Order:
    """A B2B export order on terms, filed but neither shipped nor paid."""
    file([order(no, trade_mode="9710", order_type="B", payment_term_days=90, goods=amount,
                freight="0", lines=[], buyer_name="Lisboa Imports Lda")])
    return db.session.execute(select(Order).where(Order.order_no == no)).scalar_one()


def ship(order_no: str):
    file([inventory(order_no, waybill=f"WB-{order_no}", cop=f"COP-{order_no}",
                    trade_mode="9710"), waybill(f"WB-{order_no}")])


def pay_order(order_no: str, amount: str, payer_user):
    file([payment(order_no, amount=amount, txn=f"TXN-{order_no}")], payer_user)


def product_terms(kind="receivable", **overrides) -> ProductTerms:
    values = dict(name=f"{kind} financing", kind=kind, currencies=["USD", "CNY"],
                  max_advance_rate=Decimal("0.8000"), rate_min=Decimal("0.040000"),
                  rate_max=Decimal("0.090000"), day_count=360, max_tenor_days=180,
                  repayment_type="bullet", penalty_rate=Decimal("0.180000"),
                  default_after_days=60, arrangement_fee_rate=Decimal("0.005000"))
    if kind == "warehouse_receipt":
        values.update(max_advance_rate=Decimal("0.6000"), margin_call_ltv=Decimal("0.7500"),
                      liquidation_ltv=Decimal("0.8500"), cure_days=10)
    values.update(overrides)
    return ProductTerms(**values)


def make_product(user, kind="receivable", **overrides):
    made = products.create_product(product_terms(kind, **overrides), actor=user)
    db.session.commit()
    return made


def make_receipt(world, depositor=None, quantity="1000", price="25.80"):
    from finance_app.warehouse.models import Warehouse
    found = db.session.execute(select(Warehouse)).scalars().first()
    if found is None:
        found = warehouse.register_warehouse(
            actor=world["operator"], name="Zhuhai Bonded Park", kind=WarehouseKind.BONDED,
            address="Hongwan Port, Zhuhai", country="CN")
    made = warehouse.issue_receipt(
        actor=world["operator"], warehouse_id=found.id,
        depositor_org_id=(depositor or world["sme"]).org_id,
        expiry_date=clock.today() + timedelta(days=180),
        goods=warehouse.Goods(description="Bluetooth earphones TWS-500", hs_code="8518300000",
                              quantity=Decimal(quantity), unit="pcs",
                              unit_price=Decimal(price), currency="USD"))
    db.session.commit()
    return made


def request_for(world, product_list, items, amount="5000.00", tenor=90, sme="sme"):
    made = marketplace.submit_request(marketplace.RequestInput(
        amount=usd(amount), tenor_days=tenor, purpose="Working capital for the next shipment",
        collateral=items, product_ids=[p.id for p in product_list]), actor=world[sme])
    db.session.commit()
    return made


def target_of(request, bank_user):
    return next(t for t in request.targets if t.bank_org_id == bank_user.org_id)


def offer(world, request, bank="bank", amount="5000.00", rate="0.065000", tenor=90,
          approve=True, **extra):
    target = target_of(request, world[bank])
    decision = review.prepare_offer(target.id, review.OfferTerms(
        amount=usd(amount), annual_rate=Decimal(rate), tenor_days=tenor, **extra),
        actor=world[bank])
    db.session.commit()
    if approve:
        review.approve(decision.id, actor=world[f"{bank}_approver"])
        db.session.commit()
    return decision
