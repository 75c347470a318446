"""Demo warehouses and receipts: a bonded warehouse in Zhuhai and an overseas warehouse in
Lisbon; receipts for both SMEs, one pledged to Huaxin Bank, one offered to Yuerong Bank;
haircuts by goods category and today's price of the earphones. Safe to run twice."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select

from finance_app import clock
from finance_app.accounts.models import Organisation, User
from finance_app.extensions import db
from finance_app.money import Money
from finance_app.warehouse import services
from finance_app.warehouse.models import Warehouse
from finance_app.warehouse.states import WarehouseKind

BONDED = "Zhuhai Bonded Logistics Park, Hall 3"
LISBON = "Lisbon Overseas Warehouse (Alverca)"


def _user(key: str) -> User:
    return db.session.execute(select(User).where(User.email == f"{key}@demo.test")).scalar_one()


def seed_warehouse(platform: User) -> str:
    operator = _user("warehouse1")
    if db.session.execute(select(Warehouse.id).where(
            Warehouse.operator_org_id == operator.org_id, Warehouse.name == BONDED)).first():
        return "Demo warehouses already there."
    sme1, sme2, bank1, bank2 = (_user(k) for k in ("sme1", "sme2", "bank1", "bank2"))
    zhuhai = services.register_warehouse(actor=operator, name=BONDED, kind=WarehouseKind.BONDED,
                                         address="Hongwan Port, Xiangzhou District, Zhuhai",
                                         country="CN")
    lisbon = services.register_warehouse(actor=operator, name=LISBON,
                                         kind=WarehouseKind.OVERSEAS,
                                         address="Parque Logístico, Alverca do Ribatejo",
                                         country="PT")
    for prefix, name, haircut in (("85", "Electrical machinery and electronics", "0.30"),
                                  ("6911", "Porcelain tableware", "0.25"),
                                  ("9405", "Lamps and lighting", "0.35")):
        services.set_haircut(prefix, Decimal(haircut), actor=platform, name=name)
    expiry = clock.today() + timedelta(days=270)
    earphones = services.issue_receipt(
        actor=operator, warehouse_id=zhuhai.id, depositor_org_id=sme1.org_id,
        expiry_date=expiry, goods=services.Goods(
            description="Bluetooth earphones TWS-500, boxed, for export to Brazil",
            hs_code="8518300000", quantity=Decimal("4800"), unit="pcs",
            unit_price=Decimal("25.80"), currency="USD", grade="A",
            storage_location="Hall 3, racks B-07 to B-12", insured=True,
            valuation_source="Contract price, Shenzhen spot"))
    tableware = services.issue_receipt(
        actor=operator, warehouse_id=lisbon.id, depositor_org_id=sme1.org_id,
        expiry_date=expiry, goods=services.Goods(
            description="Porcelain tableware sets, 16 pieces", hs_code="6911100000",
            quantity=Decimal("950"), unit="sets", unit_price=Decimal("38.50"), currency="EUR",
            storage_location="Aisle 4", insured=True,
            valuation_source="Wholesale price list, Lisbon"))
    lamps = services.issue_receipt(
        actor=operator, warehouse_id=zhuhai.id, depositor_org_id=sme2.org_id,
        expiry_date=expiry, goods=services.Goods(
            description="LED desk lamps, 12 W, UK and EU plugs", hs_code="9405210000",
            quantity=Decimal("3000"), unit="pcs", unit_price=Decimal("9.40"), currency="USD",
            storage_location="Hall 3, rack D-02", valuation_source="Factory invoice"))
    services.offer_to_banks(earphones.id, [bank1.org_id, bank2.org_id], actor=sme1)
    services.offer_to_banks(lamps.id, [bank2.org_id], actor=sme2)
    services.pledge_receipt(earphones.id, actor=bank1,
                            principal=Money(Decimal("58000.00"), "USD"),
                            max_ltv=Decimal("0.7000"), margin_call_ltv=Decimal("0.8000"),
                            liquidation_ltv=Decimal("0.9000"), cure_days=10,
                            financing_ref="HX-WR-2026-0107",
                            registry_ref="0412345678901234567")
    services.enter_price(services.PriceInput(
        hs_code="8518300000", unit="pcs", product="A", unit_price=Decimal("25.20"),
        currency="USD", valid_from=clock.today(), source="Shenzhen electronics spot index"),
        actor=platform)
    db.session.flush()
    return (f"Demo warehouses: {zhuhai.name} and {lisbon.name}; receipts {earphones.number} "
            f"(pledged), {tableware.number}, {lamps.number} (offered).")
