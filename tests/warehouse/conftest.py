from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from finance_app import clock
from finance_app.accounts.states import OrgKind, Role
from finance_app.extensions import db
from finance_app.warehouse import services
from finance_app.warehouse.states import WarehouseKind
from tests.factories import make_org_user


@pytest.fixture
def world(app):
    """A warehouse operator with a bonded warehouse in Zhuhai, a depositor SME, two banks
    and the platform operator."""
    operator = make_org_user(OrgKind.WAREHOUSE_OPERATOR, roles=(Role.ADMIN, Role.OFFICER))
    sme = make_org_user(OrgKind.SME, roles=(Role.ADMIN, Role.OFFICER))
    bank = make_org_user(OrgKind.BANK, roles=(Role.OFFICER, Role.APPROVER))
    other_bank = make_org_user(OrgKind.BANK, roles=(Role.OFFICER, Role.APPROVER))
    platform = make_org_user(OrgKind.PLATFORM_OPERATOR, roles=(Role.OFFICER, Role.APPROVER))
    warehouse = services.register_warehouse(
        actor=operator, name="Zhuhai Bonded Logistics Park, Hall 3", kind=WarehouseKind.BONDED,
        address="Hongwan Port, Xiangzhou, Zhuhai", country="CN")
    db.session.commit()
    return dict(operator=operator, sme=sme, bank=bank, other_bank=other_bank,
                platform=platform, warehouse=warehouse)


def goods(**overrides) -> services.Goods:
    values = dict(description="Bluetooth earphones, model TWS-500, boxed",
                  hs_code="8518300000", quantity=Decimal("1200"), unit="pcs",
                  unit_price=Decimal("25.80"), currency="USD", grade="A",
                  storage_location="Hall 3, rack B-07", insured=True)
    values.update(overrides)
    return services.Goods(**values)


@pytest.fixture
def receipt(world):
    made = services.issue_receipt(actor=world["operator"], warehouse_id=world["warehouse"].id,
                                  depositor_org_id=world["sme"].org_id, goods=goods(),
                                  expiry_date=clock.today() + timedelta(days=180))
    db.session.commit()
    return made


@pytest.fixture
def offered(world, receipt):
    services.offer_to_banks(receipt.id, [world["bank"].org_id, world["other_bank"].org_id],
                            actor=world["sme"])
    db.session.commit()
    return receipt


def pledge(world, receipt, principal="15000.00", bank="bank", **terms):
    from finance_app.money import Money
    values = dict(max_ltv=Decimal("0.7000"), margin_call_ltv=Decimal("0.8000"),
                  liquidation_ltv=Decimal("0.9000"), cure_days=10)
    values.update(terms)
    encumbrance = services.pledge_receipt(receipt.id, actor=world[bank],
                                          principal=Money(Decimal(principal), "USD"),
                                          financing_ref="LN-2026-0042", **values)
    db.session.commit()
    return encumbrance
