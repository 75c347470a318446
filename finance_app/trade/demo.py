"""Demo trades: verified and mismatched exports to Brazil, Portugal and Mexico, and bonded
(1210) imports, for both demo SMEs.  Filed through the same ingest path as real documents,
so their verdicts are computed, not set."""
from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal as D

from sqlalchemy import select

from finance_app import clock
from finance_app.extensions import db
from finance_app.trade import services
from finance_app.trade.models import Order
from finance_app.trade.services import SimpleDocument as Doc
from finance_app.trade.states import Direction, DocumentSource

SME1, SME2, LOGISTICS, PAYMENT = "4404930001", "4419930002", "4404980003", "4404990004"
MERCADO, LOJA, AMAZON_MX, TMALL = "MLBR000001", "LOJAPT0001", "AMZMX00001", "TMALLGJ001"
ID_ZHANG, ID_LI = "11010519491231002X", "440524188001010014"  # a valid and an invalid ID


def documents(n: int, ebc: str, ebp: str, order_no: str, *, currency: str, lines, freight="0",
           trade_mode="9610", buyer: str, country: str, paid: str | None, payer=None,
           days_ago: int, inventory=True, waybill=True, terms: int | None = None,
           direction=Direction.EXPORT, buyer_id: str | None = None, consignee=None,
           waybill_consignee=None):
    when = clock.now().replace(microsecond=0) - timedelta(days=days_ago)
    goods = sum((D(q) * D(p) for _, q, p in lines), D(0))
    wb_no = f"GBA{when:%y%m%d}{n:04d}"
    order = Doc("order", dict(
        order_no=order_no, order_type="B" if trade_mode in ("9710", "9810") else (
            "I" if direction is Direction.IMPORT else "E"),
        ebp_code=ebp, ebp_name=ebp, ebc_code=ebc, ebc_name=ebc, trade_mode=trade_mode,
        currency=currency, goods_value=goods, freight=D(freight), buyer_name=buyer,
        buyer_id_type="1" if buyer_id else None, buyer_id_number=buyer_id,
        consignee=consignee or buyer, consignee_country=country, payment_term_days=terms,
        order_date=when.date(), app_time=when, direction=direction.value),
        [dict(gnum=i, item_no=f"SKU{n}{i}", item_name=name, unit="011", qty=D(q), price=D(p),
              total_price=D(q) * D(p)) for i, (name, q, p) in enumerate(lines, start=1)])
    docs = [order]
    if paid is not None:
        docs.append(Doc("payment", dict(
            order_no=order_no, ebp_code=ebp, ebc_code=ebc, pay_code=PAYMENT,
            pay_name="Bay Area Cross-border Payments", pay_transaction_id=f"PAY{when:%y%m%d}{n:04d}",
            payer_name=payer or buyer, payer_id_type="1" if buyer_id else None,
            payer_id_number=buyer_id, amount=D(paid), currency=currency,
            pay_time=when + timedelta(hours=2), direction=direction.value)))
    if inventory:
        docs.append(Doc("inventory", dict(
            cop_no=f"INV{when:%y%m%d}{n:04d}", order_no=order_no, ebp_code=ebp, ebc_code=ebc,
            agent_code=ebc, logistics_code=LOGISTICS, logistics_no=wb_no, trade_mode=trade_mode,
            country=country, currency=currency, total_value=goods,
            declare_time=when + timedelta(days=1), direction=direction.value)))
    if waybill:
        docs.append(Doc("waybill", dict(
            logistics_code=LOGISTICS, logistics_name="GBA Express", logistics_no=wb_no,
            order_no=order_no if direction is Direction.IMPORT else None,
            consignee=waybill_consignee or consignee or buyer, freight=D(freight),
            currency=currency, ship_time=when + timedelta(days=2), direction=direction.value)))
    return docs


def demo_documents() -> list[Doc]:
    docs: list[Doc] = []
    # Zhuhai Coastline (SME 1)
    docs += documents(1, SME1, MERCADO, "MLB-2026-0001", currency="USD", buyer="João Pereira",
                   country="BR", lines=[("LED desk lamp", "40", "12.50")], freight="35.00",
                   paid="535.00", days_ago=40)
    docs += documents(2, SME1, LOJA, "LPT-2026-0107", currency="EUR", buyer="Ana Costa",
                   country="PT", lines=[("Bluetooth speaker", "10", "22.00")], freight="18.00",
                   paid="230.00", days_ago=25)  # paid 230, order is 238: mismatch
    docs += documents(3, SME1, AMAZON_MX, "B2B-MX-0042", currency="USD", trade_mode="9710",
                   buyer="Distribuidora Azteca S.A. de C.V.", country="MX",
                   lines=[("Solar garden light", "2000", "3.80")], paid=None, terms=60,
                   days_ago=20)  # verified B2B export on terms: a receivable
    docs += documents(4, SME1, LOJA, "OW-PT-0009", currency="EUR", trade_mode="9810",
                   buyer="Lisboa Casa Lda", country="PT", lines=[("Ceramic vase", "300", "9.00")],
                   paid=None, terms=90, days_ago=6, waybill=False)  # waybill not filed yet
    # Dongguan Humen Trend (SME 2)
    docs += documents(5, SME2, AMAZON_MX, "AMX-2026-5531", currency="USD", buyer="Lucía Hernández",
                   country="MX", lines=[("Denim jacket", "3", "29.90")], freight="12.00",
                   paid="101.70", days_ago=33)
    docs += documents(6, SME2, MERCADO, "MLB-2026-0877", currency="USD", buyer="Carlos Souza",
                   country="BR", lines=[("Silk scarf", "5", "15.00")], freight="9.00",
                   paid="84.00", days_ago=12, inventory=True)
    docs[-4].lines[0]["total_price"] = D("70.00")  # a line total that is not price x qty
    docs += documents(7, SME2, TMALL, "TM-1210-7781", currency="CNY", trade_mode="1210",
                   direction=Direction.IMPORT, buyer="张伟", buyer_id=ID_ZHANG, country="CN",
                   lines=[("Infant formula 800g", "6", "268.00")], paid="1608.00", days_ago=15)
    docs += documents(8, SME2, TMALL, "TM-1210-7790", currency="CNY", trade_mode="1210",
                   direction=Direction.IMPORT, buyer="张伟", buyer_id=ID_ZHANG, country="CN",
                   lines=[("Vitamin tablets", "4", "99.00")], paid="396.00", payer="李娜",
                   days_ago=9, waybill_consignee="王芳")  # payer and consignee are not the buyer
    for i, doc in enumerate(docs):
        doc.index = i
    return docs


def seed_trades() -> str:
    if db.session.execute(select(Order.id).where(Order.order_no == "MLB-2026-0001")).first():
        return "Demo trades already filed."
    batch = services.ingest(demo_documents(), actor=None, source=DocumentSource.JSON,
                            filename="demo")
    db.session.flush()
    return f"Demo trades: {batch.accepted} documents filed, {batch.rejected} rejected."
