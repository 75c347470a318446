"""Warehouse receipts, called directly: issuing, offering, the pledge registry, releases
whole and in part, operator changes, prices, margin calls, public verification and the
daily run. Side effects are counted: encumbrances, receipts, history rows, notices."""
from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from finance_app import clock, daily, outbox
from finance_app.accounts.models import Notification
from finance_app.audit.models import AuditEvent
from finance_app.collateral import services as registry
from finance_app.collateral.models import Encumbrance
from finance_app.collateral.states import AssetKind, EncumbranceStatus
from finance_app.errors import Conflict, Forbidden, IllegalTransition, NotFound, ValidationFailed
from finance_app.extensions import db
from finance_app.money import Money
from finance_app.warehouse import services
from finance_app.warehouse.models import (
    GoodsPrice, MarginCall, ReceiptStatusChange, WarehouseReceipt,
)
from finance_app.warehouse.states import (
    RECEIPT_TRANSITIONS, MarginCallStatus, ReceiptAction, ReceiptStatus,
)
from tests.warehouse.conftest import goods, pledge


def count(model, *where) -> int:
    query = select(func.count()).select_from(model)
    for condition in where:
        query = query.where(condition)
    return db.session.execute(query).scalar_one()


def usd(amount: str) -> Money:
    return Money(Decimal(amount), "USD")


# --------------------------------------------------------------------------- issue

def test_a_receipt_is_numbered_valued_and_verifiable(world, receipt):
    assert receipt.number == f"WR-{clock.today().year}-000001"
    assert receipt.value == usd("30960.00")          # 1,200 x 25.80
    assert receipt.status is ReceiptStatus.ISSUED
    code = services.verification_code(receipt)
    assert len(code) == 19 and code.count("-") == 3
    found = services.verify(code.lower().replace("-", " "))
    assert found.genuine and found.number == receipt.number and not found.pledged
    assert found.quantity == Decimal("1200") and found.issuer == world["operator"].organisation.name
    assert not services.verify("AAAA-BBBB-CCCC-DDDD").genuine
    second = services.issue_receipt(actor=world["operator"], warehouse_id=world["warehouse"].id,
                                    depositor_org_id=world["sme"].org_id, goods=goods(),
                                    expiry_date=clock.today() + timedelta(days=30))
    assert second.number.endswith("000002")
    assert services.verification_code(second) != code


@pytest.mark.parametrize("change,field", [
    ({"quantity": Decimal("0")}, "quantity"),
    ({"quantity": Decimal("-5")}, "quantity"),
    ({"quantity": Decimal("1.123456")}, "quantity"),
    ({"currency": "XYZ"}, "currency"),
    ({"unit_price": Decimal("-1")}, "unit_price"),
    ({"hs_code": "85183"}, "hs_code"),
    ({"hs_code": "85183000001"}, "hs_code"),
    ({"hs_code": "8518ab"}, "hs_code"),
    ({"description": "  "}, "goods_description"),
])
def test_bad_goods_are_refused_and_nothing_is_issued(world, change, field):
    with pytest.raises(ValidationFailed) as refused:
        services.issue_receipt(actor=world["operator"], warehouse_id=world["warehouse"].id,
                               depositor_org_id=world["sme"].org_id, goods=goods(**change),
                               expiry_date=clock.today() + timedelta(days=30))
    assert refused.value.field == field
    db.session.rollback()
    assert count(WarehouseReceipt) == 0


def test_an_expiry_before_issue_is_refused(world):
    with pytest.raises(ValidationFailed) as refused:
        services.issue_receipt(actor=world["operator"], warehouse_id=world["warehouse"].id,
                               depositor_org_id=world["sme"].org_id, goods=goods(),
                               expiry_date=clock.today() - timedelta(days=1))
    assert refused.value.field == "expiry_date"


def test_only_the_warehouses_operator_issues(world):
    from tests.factories import make_org_user
    from finance_app.accounts.states import OrgKind
    stranger = make_org_user(OrgKind.WAREHOUSE_OPERATOR)
    with pytest.raises(ValidationFailed):
        services.issue_receipt(actor=stranger, warehouse_id=world["warehouse"].id,
                               depositor_org_id=world["sme"].org_id, goods=goods(),
                               expiry_date=clock.today() + timedelta(days=30))
    with pytest.raises(Forbidden):
        services.register_warehouse(actor=world["sme"], name="x", kind="general",
                                    address="y", country="CN")


# --------------------------------------------------------------------------- pledge

def test_a_bank_pledges_an_offered_receipt_and_a_second_is_told_it_is_pledged(world, offered):
    encumbrance = pledge(world, offered)
    assert offered.status is ReceiptStatus.PLEDGED
    assert encumbrance.holder_org_id == world["bank"].org_id
    assert encumbrance.secured == usd("15000.00") and encumbrance.max_ltv == Decimal("0.7")
    with pytest.raises(registry.AlreadyEncumbered) as refused:
        pledge(world, offered, bank="other_bank")
    assert "already pledged" in refused.value.message
    assert world["bank"].organisation.name not in refused.value.message
    db.session.rollback()
    assert count(Encumbrance) == 1
    assert count(AuditEvent, AuditEvent.action == registry.BLOCKED_ACTION) == 1
    assert services.verify(services.verification_code(offered)).pledged


def test_a_pledge_needs_an_offer_a_bank_and_terms_in_order(world, receipt):
    with pytest.raises(NotFound):     # not offered to this bank: it does not even see it
        pledge(world, receipt)
    db.session.rollback()
    services.offer_to_banks(receipt.id, [world["bank"].org_id], actor=world["sme"])
    db.session.commit()
    with pytest.raises(Forbidden):
        services.pledge_receipt(receipt.id, actor=world["operator"], principal=usd("1"),
                                max_ltv=Decimal("0.7"), margin_call_ltv=Decimal("0.8"),
                                liquidation_ltv=Decimal("0.9"), cure_days=5)
    for terms, field in (({"margin_call_ltv": Decimal("0.6")}, "margin_call_ltv"),
                         ({"max_ltv": Decimal("0.75123")}, "max_ltv"),
                         ({"cure_days": 0}, "cure_days")):
        with pytest.raises(ValidationFailed) as refused:
            pledge(world, receipt, **terms)
        assert refused.value.field == field
        db.session.rollback()
    with pytest.raises(services.LtvLimitExceeded) as refused:
        pledge(world, receipt, principal="20000.00")
    assert "above the limit of 70.00%" in refused.value.message
    assert "$30,960.00" in refused.value.message or "30,960.00 USD" in refused.value.message
    db.session.rollback()
    assert count(Encumbrance) == 0 and receipt.status is ReceiptStatus.ISSUED


def test_while_pledged_nothing_leaves_and_the_operator_sees_why(world, offered):
    pledge(world, offered)
    for action in (lambda: services.deliver(offered.id, actor=world["operator"]),
                   lambda: services.cancel(offered.id, actor=world["operator"], reason="x"),
                   lambda: services.split_receipt(offered.id, Decimal("10"),
                                                  actor=world["operator"])):
        with pytest.raises(Conflict) as refused:
            action()
        assert refused.value.code == "receipt_pledged"
        assert "until the bank releases the pledge" in refused.value.message
        db.session.rollback()
    assert offered.status is ReceiptStatus.PLEDGED


def test_only_the_pledgees_approver_releases(world, offered):
    pledge(world, offered)
    with pytest.raises((Forbidden, NotFound)):
        services.release_pledge(offered.id, actor=world["other_bank"])
    db.session.rollback()
    with pytest.raises((Forbidden, NotFound)):
        services.release_pledge(offered.id, actor=world["sme"])
    db.session.rollback()
    services.release_pledge(offered.id, actor=world["bank"], reason="Loan repaid")
    db.session.commit()
    assert offered.status is ReceiptStatus.RELEASED
    assert services.active_pledge(offered) is None
    # free again: another bank may take it now
    pledge(world, offered, bank="other_bank")
    assert [e.holder_org_id for e in registry.history_for(AssetKind.WAREHOUSE_RECEIPT,
                                                          offered.id)] == [
        world["bank"].org_id, world["other_bank"].org_id]


def test_a_partial_release_splits_the_receipt_exactly(world, offered):
    pledge(world, offered, principal="10000.00")
    released, kept = services.release_part(offered.id, Decimal("333.33333"),
                                           actor=world["bank"], reason="Instalment 1 repaid")
    db.session.commit()
    assert offered.status is ReceiptStatus.SPLIT
    assert released.quantity + kept.quantity == offered.quantity
    assert released.value + kept.value == offered.value
    assert released.status is ReceiptStatus.RELEASED and kept.status is ReceiptStatus.PLEDGED
    assert (released.number, kept.number) == (f"{offered.number}-1", f"{offered.number}-2")
    carried = services.active_pledge(kept)
    assert carried.holder_org_id == world["bank"].org_id and carried.carried_from_id
    assert carried.since == registry.lineage(carried)[0].since
    old = db.session.get(Encumbrance, carried.carried_from_id)
    assert old.status is EncumbranceStatus.CARRIED_FORWARD
    assert services.active_pledge(released) is None
    assert services.verify(services.verification_code(kept)).pledged
    assert not services.verify(services.verification_code(released)).pledged


def test_a_release_that_would_breach_the_ltv_limit_is_refused_with_the_figures(world, offered):
    pledge(world, offered, principal="15000.00")      # 15,000 / (30,960 x 0.7) = 69.2 %
    with pytest.raises(services.LtvLimitExceeded) as refused:
        services.release_part(offered.id, Decimal("100"), actor=world["bank"])
    message = refused.value.message
    assert "leaves 1100 pcs" in message and "above the limit of 70.00%" in message
    assert "75.51%" in message and "19,866.00 USD" in message   # 15,000 / (28,380 x 0.7)
    db.session.rollback()
    assert offered.status is ReceiptStatus.PLEDGED and count(WarehouseReceipt) == 1


def test_the_operator_splits_a_free_receipt_and_delivers_part(world, receipt):
    first, second = services.split_receipt(receipt.id, Decimal("200"), actor=world["operator"])
    db.session.commit()
    assert first.value == usd("5160.00") and second.value == usd("25800.00")
    services.deliver(first.id, actor=world["operator"], note="Shipped to Lisbon")
    db.session.commit()
    assert first.status is ReceiptStatus.DELIVERED and second.status is ReceiptStatus.ISSUED
    with pytest.raises(IllegalTransition):
        services.deliver(first.id, actor=world["operator"])


def test_every_transition_outside_the_table_is_illegal():
    from finance_app.states import next_status
    for status in ReceiptStatus:
        for action in ReceiptAction:
            if action in (ReceiptAction.ISSUE, ReceiptAction.SPLIT_FROM):
                continue
            if (status, action) in RECEIPT_TRANSITIONS:
                assert next_status(RECEIPT_TRANSITIONS, status, action, what="r")
            else:
                with pytest.raises(IllegalTransition):
                    next_status(RECEIPT_TRANSITIONS, status, action, what="r")


# --------------------------------------------------------------------------- prices

def price(hs="8518300000", amount="25.80", valid_from=None, valid_to=None, product=None):
    return services.PriceInput(hs_code=hs, unit="pcs", unit_price=Decimal(amount),
                               currency="USD", valid_from=valid_from or clock.today(),
                               valid_to=valid_to, product=product, source="Shenzhen spot")


def test_a_new_price_revalues_the_goods_and_closes_the_last_period(world, receipt):
    first = services.enter_price(price(amount="24.00", valid_from=clock.today() - timedelta(days=10)),
                                 actor=world["platform"])
    db.session.commit()
    assert receipt.value == usd("28800.00")
    second = services.enter_price(price(amount="22.50"), actor=world["platform"])
    db.session.commit()
    assert first.valid_to == clock.today() - timedelta(days=1) and second.valid_to is None
    assert receipt.value == usd("27000.00") and receipt.valuation_date == clock.today()
    with pytest.raises(Conflict):
        services.enter_price(price(amount="23.00"), actor=world["platform"])
    db.session.rollback()
    with pytest.raises(Conflict):   # inside the first (closed) period
        services.enter_price(price(amount="23.00", valid_from=clock.today() - timedelta(days=5),
                                   valid_to=clock.today() - timedelta(days=2)),
                             actor=world["platform"])
    db.session.rollback()
    periods = db.session.execute(select(GoodsPrice.valid_from, GoodsPrice.valid_to)
                                 .order_by(GoodsPrice.valid_from)).all()
    for (_, end), (start, _) in zip(periods, periods[1:]):
        assert end is not None and end < start


def test_only_the_platform_enters_prices(world):
    with pytest.raises(Forbidden):
        services.enter_price(price(), actor=world["operator"])


def test_a_price_file_is_imported_whole_or_not_at_all(world, receipt):
    good = (b"hs_code,unit,product,unit_price,currency,valid_from,valid_to,source\n"
            b"8518300000,pcs,,26.10,USD,2026-01-01,,CCPIT spot\n"
            b"8471300000,pcs,,310.00,USD,2026-01-01,,CCPIT spot\n")
    rows = services.import_prices(services.parse_price_csv(good), actor=world["platform"])
    db.session.commit()
    assert len(rows) == 2 and receipt.value == usd("31320.00")
    bad = (b"hs_code,unit,product,unit_price,currency,valid_from,valid_to,source\n"
           b"6109100000,pcs,,3.20,USD,2026-02-01,,x\n"
           b"6109100000,pcs,,abc,USD,2026-03-01,,x\n")
    with pytest.raises(services.PriceFileError) as refused:
        services.import_prices(services.parse_price_csv(bad), actor=world["platform"])
    assert "Line 3, unit_price" in refused.value.message
    bad_currency = (b"hs_code,unit,product,unit_price,currency,valid_from,valid_to,source\n"
                    b"6109100000,pcs,,3.20,USD,2026-02-01,,x\n"
                    b"6109100000,pcs,,3.30,QQQ,2026-03-01,,x\n")
    with pytest.raises(services.PriceFileError) as refused:
        services.import_prices(services.parse_price_csv(bad_currency), actor=world["platform"])
    assert "Line 3" in refused.value.message and "ISO 4217" in refused.value.message
    db.session.rollback()
    assert count(GoodsPrice) == 2


# --------------------------------------------------------------------------- margin calls

def test_a_falling_price_opens_one_margin_call_that_closes_when_the_price_recovers(
        world, offered):
    pledge(world, offered, principal="15000.00")               # LTV 69.2 %
    outbox.run_due()
    services.enter_price(price(amount="22.00"), actor=world["platform"])   # 81.2 %
    db.session.commit()
    call = db.session.execute(select(MarginCall)).scalar_one()
    assert call.status is MarginCallStatus.OPEN and call.ltv_at_open == Decimal("0.8117")
    assert call.cure_deadline == clock.today() + timedelta(days=10)
    outbox.run_due()
    told = {n.org_id for n in db.session.execute(select(Notification).where(
        Notification.kind == "warehouse.margin_call_opened")).scalars()}
    assert told == {world["sme"].org_id, world["bank"].org_id}
    # a second fall is the same crossing: no new call
    services.enter_price(price(amount="21.80", valid_from=clock.today() + timedelta(days=1)),
                         actor=world["platform"], revalue=False)
    daily.run(clock.today() + timedelta(days=1))
    assert count(MarginCall) == 1
    # releases are frozen meanwhile, in part and in full
    with pytest.raises(services.MarginCallOpen):
        services.release_part(offered.id, Decimal("1"), actor=world["bank"])
    db.session.rollback()
    with pytest.raises(services.MarginCallOpen):
        services.release_pledge(offered.id, actor=world["bank"])
    db.session.rollback()
    # the price recovers: the call closes itself
    with clock.frozen_at(clock.now() + timedelta(days=2)):
        services.enter_price(price(amount="26.00"), actor=world["platform"])
        db.session.commit()
    db.session.refresh(call)
    assert call.status is MarginCallStatus.CLOSED and call.close_reason == "cured"
    # a new crossing later is a new call
    with clock.frozen_at(clock.now() + timedelta(days=3)):
        services.enter_price(price(amount="21.00"), actor=world["platform"])
        db.session.commit()
    assert count(MarginCall) == 2


def test_a_call_past_its_cure_period_escalates_for_the_bank(world, offered):
    pledge(world, offered, principal="15000.00", cure_days=5)
    services.enter_price(price(amount="22.00"), actor=world["platform"])
    db.session.commit()
    daily.run(clock.today() + timedelta(days=5))
    call = db.session.execute(select(MarginCall)).scalar_one()
    assert call.status is MarginCallStatus.OPEN
    daily.run(clock.today() + timedelta(days=6))
    db.session.refresh(call)
    assert call.status is MarginCallStatus.ESCALATED
    assert call.escalation_reason == "cure_period_passed"
    severe = db.session.execute(select(Notification).where(
        Notification.kind == "warehouse.margin_call_escalated")).scalars().all()
    assert [n.org_id for n in severe] == [world["bank"].org_id]


def test_above_liquidation_escalates_at_once_and_repaying_cures_it(world, offered):
    pledge(world, offered, principal="15000.00")
    services.enter_price(price(amount="19.00"), actor=world["platform"])   # 94 %
    db.session.commit()
    call = db.session.execute(select(MarginCall)).scalar_one()
    assert call.status is MarginCallStatus.ESCALATED
    assert call.escalation_reason == "above_liquidation"
    services.restate_principal(offered.id, usd("10000.00"), actor=world["bank"])   # 62.7 %
    db.session.commit()
    db.session.refresh(call)
    assert call.status is MarginCallStatus.CLOSED


def test_ltv_in_another_currency_goes_through_the_ledgers_rates(world, offered):
    from finance_app.ledger import rates
    with pytest.raises(ValidationFailed):           # no EUR/USD rate: an error, no guess
        services.pledge_receipt(offered.id, actor=world["bank"],
                                principal=Money(Decimal("10000.00"), "EUR"),
                                max_ltv=Decimal("0.7"), margin_call_ltv=Decimal("0.8"),
                                liquidation_ltv=Decimal("0.9"), cure_days=5)
    db.session.rollback()
    rates.enter_rate("EUR", "USD", Decimal("1.0800"), clock.today(), actor=world["platform"])
    db.session.commit()
    encumbrance = services.pledge_receipt(offered.id, actor=world["bank"],
                                          principal=Money(Decimal("10000.00"), "EUR"),
                                          max_ltv=Decimal("0.7"),
                                          margin_call_ltv=Decimal("0.8"),
                                          liquidation_ltv=Decimal("0.9"), cure_days=5)
    ltv = services.loan_to_value(offered, encumbrance)
    assert ltv.value == Money(Decimal("28666.67"), "EUR")   # 30,960 / 1.08
    assert ltv.ratio == Decimal("0.4983")


# --------------------------------------------------------------------------- daily

def test_the_daily_run_expires_free_receipts_once_and_keeps_pledged_ones(world, offered):
    free = services.issue_receipt(actor=world["operator"], warehouse_id=world["warehouse"].id,
                                  depositor_org_id=world["sme"].org_id, goods=goods(),
                                  expiry_date=clock.today() + timedelta(days=3))
    pledge(world, offered)
    db.session.commit()
    later = clock.today() + timedelta(days=200)
    first = daily.run(later)
    again = daily.run(later)
    db.session.refresh(free)
    assert free.status is ReceiptStatus.EXPIRED and offered.status is ReceiptStatus.PLEDGED
    assert any("receipts expired" in line for line in first)
    assert any("already done" in line for line in again)
    assert count(ReceiptStatusChange, ReceiptStatusChange.action == ReceiptAction.EXPIRE) == 1


def test_the_daily_run_values_every_pledge_in_batches_at_the_days_rate(world, offered,
                                                                      monkeypatch):
    """Three pledged receipts, valued one batch at a time: a new EUR/USD rate takes the
    EUR pledge above its margin-call LTV, and only that one gets a call."""
    from finance_app.ledger import rates
    monkeypatch.setattr(services, "DAILY_BATCH", 1)
    rates.enter_rate("EUR", "USD", Decimal("1.0800"), clock.today(), actor=world["platform"])
    db.session.commit()
    received = []
    for _ in range(2):
        made = services.issue_receipt(actor=world["operator"],
                                      warehouse_id=world["warehouse"].id,
                                      depositor_org_id=world["sme"].org_id, goods=goods(),
                                      expiry_date=clock.today() + timedelta(days=180))
        services.offer_to_banks(made.id, [world["bank"].org_id], actor=world["sme"])
        received.append(made)
    db.session.commit()
    # 15,000 EUR against 30,960 USD / 1.08 = 28,666.67 EUR less 30 %: LTV 0.7475
    services.pledge_receipt(offered.id, actor=world["bank"],
                            principal=Money(Decimal("15000.00"), "EUR"),
                            max_ltv=Decimal("0.7500"), margin_call_ltv=Decimal("0.8000"),
                            liquidation_ltv=Decimal("0.9000"), cure_days=5)
    for made in received:
        pledge(world, made, principal="15000.00")                  # USD: LTV 0.6921
    db.session.commit()
    with clock.frozen_at(clock.now() + timedelta(days=1)):
        rates.enter_rate("EUR", "USD", Decimal("1.2000"), clock.today(),
                         actor=world["platform"])
        db.session.commit()
        lines = daily.run(clock.today())
    assert "warehouse: 0 receipts expired, 0 revalued, 1 margin calls live" in [
        line[:62] for line in lines]
    call = db.session.execute(select(MarginCall)).scalar_one()
    # 30,960 / 1.20 = 25,800.00 EUR less 30 % = 18,060.00: 15,000 / 18,060 = 0.8306
    assert (call.receipt_id, call.ltv_at_open) == (offered.id, Decimal("0.8306"))
    assert call.status is MarginCallStatus.OPEN


def test_another_operator_cannot_touch_the_receipt(world, receipt):
    from tests.factories import make_org_user
    from finance_app.accounts.states import OrgKind, Role
    stranger = make_org_user(OrgKind.WAREHOUSE_OPERATOR, roles=(Role.OFFICER,))
    for action in (lambda: services.deliver(receipt.id, actor=stranger),
                   lambda: services.cancel(receipt.id, actor=stranger, reason="mine"),
                   lambda: services.split_receipt(receipt.id, Decimal("1"), actor=stranger)):
        with pytest.raises(NotFound):
            action()
        db.session.rollback()
    assert receipt.status is ReceiptStatus.ISSUED and count(WarehouseReceipt) == 1
