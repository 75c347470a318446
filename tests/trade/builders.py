"""Trade documents for tests, in the neutral shape every door produces."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from finance_app.accounts.states import OrgKind, Role
from finance_app.trade.services import SimpleDocument
from tests.factories import make_org_user

SME_CODE, LOGISTICS_CODE, PAY_CODE = "4404930001", "4404980003", "4404990004"
EBP = "PLATFORM01"  # an outside marketplace; need not be filed


def parties():
    sme = make_org_user(OrgKind.SME, customs_code=SME_CODE)
    logistics = make_org_user(OrgKind.LOGISTICS, customs_code=LOGISTICS_CODE)
    payer = make_org_user(OrgKind.PAYMENT_INSTITUTION, customs_code=PAY_CODE)
    return sme, logistics, payer


def order(no="ORD-1", *, goods="100.00", freight="10.00", currency="USD", lines=None,
          app_type="1", **extra) -> SimpleDocument:
    fields = dict(order_no=no, order_type="E", ebp_code=EBP, ebp_name="Marketplace",
                  ebc_code=SME_CODE, ebc_name="Zhuhai Coastline", goods_value=Decimal(goods),
                  freight=Decimal(freight), currency=currency, trade_mode="9610",
                  buyer_name="Maria Silva", consignee="Maria Silva", consignee_country="BR",
                  app_time=datetime(2026, 11, 1, 10, 0))
    fields.update(extra)
    if lines is None:
        lines = [dict(gnum=1, item_no="A1", item_name="LED lamp", unit="011",
                      qty=Decimal("4"), price=Decimal(goods) / 4, total_price=Decimal(goods))]
    return SimpleDocument("order", fields, lines, app_type=app_type)


def payment(no="ORD-1", *, amount="110.00", currency="USD", txn="TXN-1", app_type="1",
            **extra):
    fields = dict(order_no=no, ebp_code=EBP, ebc_code=SME_CODE, pay_code=PAY_CODE,
                  pay_name="Bay Area Payments", pay_transaction_id=txn, amount=Decimal(amount),
                  currency=currency, pay_time=datetime(2026, 11, 1, 11, 0))
    fields.update(extra)
    return SimpleDocument("payment", fields, app_type=app_type)


def inventory(no="ORD-1", *, waybill="WB-1", cop="COP-1", app_type="1", **extra):
    fields = dict(cop_no=cop, order_no=no, ebp_code=EBP, ebc_code=SME_CODE, agent_code=SME_CODE,
                  logistics_code=LOGISTICS_CODE, logistics_no=waybill, trade_mode="9610",
                  country="BR", currency="USD", declare_time=datetime(2026, 11, 2, 9, 0))
    fields.update(extra)
    return SimpleDocument("inventory", fields, app_type=app_type)


def waybill(no="WB-1", app_type="1", **extra):
    fields = dict(logistics_code=LOGISTICS_CODE, logistics_name="GBA Express", logistics_no=no,
                  consignee="Maria Silva", freight=Decimal("10.00"), currency="USD")
    fields.update(extra)
    return SimpleDocument("waybill", fields, app_type=app_type)


__all__ = ["parties", "order", "payment", "inventory", "waybill", "Role"]
