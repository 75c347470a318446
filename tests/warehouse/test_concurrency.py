"""The pledge registry under real concurrency (PostgreSQL, threads released together):
twenty banks pledging one receipt at the same moment."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from finance_app import clock
from finance_app.accounts.models import User
from finance_app.accounts.states import OrgKind, Role
from finance_app.audit.models import AuditEvent
from finance_app.audit.services import verify_chain
from finance_app.collateral import services as registry
from finance_app.collateral.models import Encumbrance
from finance_app.extensions import db
from finance_app.money import Money
from finance_app.warehouse import services
from finance_app.warehouse.models import PledgeTerms, ReceiptStatusChange, WarehouseReceipt
from finance_app.warehouse.states import ReceiptStatus
from tests.factories import make_org_user
from tests.ledger.test_concurrency import THREADS, run_together
from tests.warehouse.conftest import goods

pytestmark = pytest.mark.postgres


def count(model, *where) -> int:
    query = select(func.count()).select_from(model)
    for condition in where:
        query = query.where(condition)
    return db.session.execute(query).scalar_one()


def test_twenty_banks_pledging_one_receipt_at_once_leave_exactly_one_pledge(app, world):
    banks = [make_org_user(OrgKind.BANK, roles=(Role.OFFICER, Role.APPROVER))
             for _ in range(THREADS)]
    receipt = services.issue_receipt(actor=world["operator"],
                                     warehouse_id=world["warehouse"].id,
                                     depositor_org_id=world["sme"].org_id, goods=goods(),
                                     expiry_date=clock.today() + timedelta(days=90))
    db.session.commit()
    services.offer_to_banks(receipt.id, [b.org_id for b in banks], actor=world["sme"])
    db.session.commit()
    receipt_id, bank_ids = receipt.id, [b.id for b in banks]
    db.session.remove()

    def attempt(n: int):
        actor = db.session.get(User, bank_ids[n])
        encumbrance = services.pledge_receipt(
            receipt_id, actor=actor, principal=Money(Decimal("12000.00"), "USD"),
            max_ltv=Decimal("0.7"), margin_call_ltv=Decimal("0.8"),
            liquidation_ltv=Decimal("0.9"), cure_days=10, financing_ref=f"LN-{n}")
        return encumbrance.holder_org_id

    results, errors = run_together(app, attempt)
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    assert len(errors) == THREADS - 1
    assert all(isinstance(e, registry.AlreadyEncumbered) for e in errors), errors
    assert all("already pledged" in e.message for e in errors)
    # the registry is consistent: one active pledge, by the winner, and its terms
    active = db.session.execute(select(Encumbrance)).scalars().all()
    assert [(e.holder_org_id, e.status.value) for e in active] == [(winners[0], "active")]
    assert count(PledgeTerms) == 1
    receipt = db.session.get(WarehouseReceipt, receipt_id)
    assert receipt.status is ReceiptStatus.PLEDGED
    assert count(ReceiptStatusChange, ReceiptStatusChange.action == "pledge") == 1
    # every refused attempt is on the audit trail, and the chain is whole
    assert count(AuditEvent, AuditEvent.action == registry.BLOCKED_ACTION) == THREADS - 1
    assert count(AuditEvent, AuditEvent.action == "collateral.encumbered") == 1
    assert verify_chain().ok
