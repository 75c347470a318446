"""Products, what an SME can borrow against what, requests, and the banks' decisions."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from finance_app import clock
from finance_app.errors import Conflict, Forbidden, IllegalTransition, NotFound, ValidationFailed
from finance_app.extensions import db
from finance_app.financing import marketplace, products, review
from finance_app.financing.models import (
    Decision, FinancingRequest, RequestCollateral, RequestTarget,
)
from finance_app.financing.states import OfferStatus, ProductStatus, RequestStatus
from finance_app.money import Money
from finance_app.warehouse.models import ReceiptOffer
from tests.financing.conftest import (
    make_product, make_receipt, offer, pay_order, product_terms, receivable, request_for,
    target_of, unshipped_order, usd,
)


def count(model) -> int:
    return db.session.execute(select(func.count()).select_from(model)).scalar_one()


# --------------------------------------------------------------------------- products

@pytest.mark.parametrize("change, field", [
    (dict(rate_min=Decimal("0.09"), rate_max=Decimal("0.05")), "rate_min"),
    (dict(max_advance_rate=Decimal("1.2")), "max_advance_rate"),
    (dict(max_advance_rate=Decimal("0.8")) | dict(max_advance_rate=0.8), "max_advance_rate"),
    (dict(currencies=["USD", "XXY"]), "currencies"),
    (dict(currencies=[]), "currencies"),
    (dict(day_count=366), "day_count"),
    (dict(max_tenor_days=0), "max_tenor_days"),
    (dict(repayment_type="balloon"), "repayment_type"),
    (dict(min_rating="AAAA"), "min_rating"),
    (dict(kind="warehouse_receipt", margin_call_ltv=Decimal("0.5")), "margin_call_ltv"),
])
def test_a_product_with_bad_terms_is_refused_with_the_field(world, change, field):
    with pytest.raises(ValidationFailed) as refused:
        products.create_product(product_terms(**change), actor=world["bank"])
    assert refused.value.field == field
    db.session.rollback()
    assert count(products.FinancingProduct) == 0


def test_only_banks_publish_products_and_names_are_unique_per_bank(world):
    with pytest.raises(Forbidden):
        products.create_product(product_terms(), actor=world["sme"])
    make_product(world["bank"])
    with pytest.raises(Conflict):
        products.create_product(product_terms(), actor=world["bank"])
    db.session.rollback()
    make_product(world["bank2"])      # another bank may use the same name
    assert count(products.FinancingProduct) == 2


def test_a_paused_product_leaves_the_marketplace_and_takes_no_requests(world):
    product = make_product(world["bank"])
    rec = receivable("B2B-P", amount="10000.00")
    products.set_product_status(product.id, "pause", actor=world["bank"], note="Full book")
    db.session.commit()
    assert product.status is ProductStatus.PAUSED
    assert [v.product.id for v in marketplace.offers_for_sme(world["sme"])] == []
    with pytest.raises(ValidationFailed) as refused:
        request_for(world, [product], [("receivable", rec.id)])
    assert "paused" in refused.value.message
    db.session.rollback()
    with pytest.raises(IllegalTransition):
        products.set_product_status(product.id, "pause", actor=world["bank"])
    db.session.rollback()
    products.set_product_status(product.id, "resume", actor=world["bank"])
    db.session.commit()
    assert [v.product.id for v in marketplace.offers_for_sme(world["sme"])] == [product.id]
    with pytest.raises(Forbidden):    # another bank cannot touch it
        products.set_product_status(product.id, "pause", actor=world["bank2"])


def test_a_facility_limit_can_change_but_not_below_what_is_used(world):
    expiry = clock.today() + timedelta(days=365)
    with pytest.raises(Exception) as officer_only:
        products.grant_facility(actor=world["bank"], sme_org_id=world["sme"].org_id,
                                limit=usd("5000.00"), expiry_date=expiry)
    assert type(officer_only.value).__name__ in ("Forbidden", "NotFound")
    db.session.rollback()
    facility = products.grant_facility(actor=world["bank_approver"],
                                       sme_org_id=world["sme"].org_id, limit=usd("5000.00"),
                                       expiry_date=expiry)
    db.session.commit()
    products.grant_facility(actor=world["bank_approver"], sme_org_id=world["sme"].org_id,
                            limit=usd("8000.00"), expiry_date=expiry)
    products.grant_facility(actor=world["bank_approver"], sme_org_id=world["sme"].org_id,
                            limit=usd("5000.00"), expiry_date=expiry)
    products.grant_facility(actor=world["bank_approver"], sme_org_id=world["sme"].org_id,
                            limit=usd("8000.00"), expiry_date=expiry)
    db.session.commit()
    assert products.figures(facility).limit == usd("8000.00")
    with pytest.raises(ValidationFailed):
        products.grant_facility(actor=world["bank_approver"], sme_org_id=world["sme"].org_id,
                                limit=usd("0"), expiry_date=expiry)
    db.session.rollback()
    with pytest.raises(ValidationFailed) as past:
        products.grant_facility(actor=world["bank_approver"], sme_org_id=world["sme"].org_id,
                                limit=usd("100"), expiry_date=clock.today())
    assert past.value.field == "expiry_date"


# --------------------------------------------------------------------------- eligibility

def test_the_eligible_amount_is_the_advance_rate_on_collateral_in_the_requests_currency(world):
    product = make_product(world["bank"], max_advance_rate=Decimal("0.8000"))
    rec = receivable("B2B-E1", amount="10000.00")
    items = marketplace.collateral(world["sme"].org_id, "receivable")
    assert [(i.id, i.value, i.available) for i in items] == [(rec.id, usd("10000.00"), True)]
    usd_result = marketplace.eligibility(product, world["sme"].org_id, items, "USD")
    assert (usd_result.amount, usd_result.binding) == (usd("8000.00"), "advance")
    cny = marketplace.eligibility(product, world["sme"].org_id, items, "CNY")
    assert cny.amount == Money(Decimal("57492.00"), "CNY")    # 10,000 x 7.1865 x 80 %
    assert cny.rate_notes and "7.1865" in cny.rate_notes[0]
    view = marketplace.offers_for_sme(world["sme"], currency="CNY")[0]
    assert view.eligibility.amount == cny.amount


def test_a_collateral_value_without_an_exchange_rate_says_so(world):
    product = make_product(world["bank"], currencies=["BRL"])
    receivable("B2B-R", amount="10000.00")
    items = marketplace.collateral(world["sme"].org_id, "receivable")
    result = marketplace.eligibility(product, world["sme"].org_id, items, "BRL")
    assert not result.eligible and any("BRL" in r for r in result.reasons)


def test_order_financing_takes_orders_neither_shipped_nor_paid(world):
    open_order = unshipped_order("PO-A", amount="5000.00")
    paid = unshipped_order("PO-B", amount="3000.00")
    pay_order("PO-B", "3000.00", world["payer"])
    receivable("B2B-SHIPPED", amount="2000.00")
    items = marketplace.collateral(world["sme"].org_id, "order")
    assert [i.id for i in items] == [open_order.id]
    named = {i.id: i for i in marketplace.collateral(world["sme"].org_id, "order",
                                                     [open_order.id, paid.id])}
    assert named[open_order.id].available
    assert "paid" in named[paid.id].problem


def test_the_sme_sees_why_a_product_is_not_open_to_it(world):
    rated = make_product(world["bank"], name="Rated only", min_rating="BBB")
    insured = make_product(world["bank2"], name="Insured only", require_insurance=True)
    receivable("B2B-N", amount="10000.00")
    views = {v.product.id: v for v in marketplace.offers_for_sme(world["sme"])}
    assert not views[rated.id].eligibility.eligible
    assert "BBB" in views[rated.id].eligibility.reasons[0]
    assert "insured" in views[insured.id].eligibility.reasons[0]


# --------------------------------------------------------------------------- requests

def test_a_request_goes_to_several_banks_with_each_banks_eligible_amount(world):
    p1 = make_product(world["bank"], max_advance_rate=Decimal("0.7000"))
    p2 = make_product(world["bank2"], max_advance_rate=Decimal("0.9000"))
    rec = receivable("B2B-M", amount="10000.00")
    request = request_for(world, [p1, p2], [("receivable", rec.id)], amount="7000.00")
    assert request.status is RequestStatus.SUBMITTED
    assert {(t.bank_org_id, t.eligible_amount, t.binding) for t in request.targets} == {
        (world["bank"].org_id, 700000, "advance"), (world["bank2"].org_id, 900000, "advance")}
    assert [(c.asset_kind.value, c.asset_id, c.value) for c in request.collateral] == [
        ("receivable", rec.id, usd("10000.00"))]
    # each bank reads the request; a bank not asked does not
    assert marketplace.get_request(request.id, actor=world["bank2"]).id == request.id
    outsider = make_product(world["bank2"], name="other").bank_org_id
    del outsider


@pytest.mark.parametrize("case", ["above_eligible", "tenor", "currency", "others_collateral",
                                  "wrong_kind", "same_bank_twice", "unknown_product",
                                  "no_collateral", "mixed_kinds"])
def test_a_bad_request_is_refused_clearly_and_changes_nothing(world, case):
    p1 = make_product(world["bank"], max_advance_rate=Decimal("0.7000"), max_tenor_days=90)
    p2 = make_product(world["bank2"], max_advance_rate=Decimal("0.9000"))
    rec = receivable("B2B-BAD", amount="10000.00")
    others = make_receipt(world, depositor=world["other_sme"])
    data = dict(amount=usd("5000.00"), tenor_days=60, purpose="Stock for the spring season",
                collateral=[("receivable", rec.id)], product_ids=[p1.id, p2.id])
    expect = {"above_eligible": ("amount", "at most 7,000.00 USD"),
              "tenor": ("tenor_days", "90 days"), "currency": ("currency", "EUR"),
              "others_collateral": ("collateral", "among yours"),
              "wrong_kind": ("collateral", "not warehouse receipts"),
              "same_bank_twice": ("product_ids", "one product"),
              "unknown_product": ("product_ids", "999999"),
              "no_collateral": ("collateral", "Choose the collateral"),
              "mixed_kinds": ("product_ids", "different things")}[case]
    if case == "above_eligible":
        data["amount"] = usd("7000.01")
    elif case == "tenor":
        data["tenor_days"] = 91
    elif case == "currency":
        data["amount"] = Money(Decimal("5000.00"), "EUR")
    elif case == "others_collateral":
        p3 = make_product(world["bank"], kind="warehouse_receipt", name="Receipt loans")
        data.update(product_ids=[p3.id], collateral=[("warehouse_receipt", others.id)])
    elif case == "wrong_kind":
        data["collateral"] = [("warehouse_receipt", others.id)]
    elif case == "same_bank_twice":
        data["product_ids"] = [p1.id, make_product(world["bank"], name="second").id]
    elif case == "unknown_product":
        data["product_ids"] = [999999]
    elif case == "no_collateral":
        data["collateral"] = []
    elif case == "mixed_kinds":
        data["product_ids"] = [p1.id, make_product(world["bank2"], kind="order", name="Orders").id]
    with pytest.raises(ValidationFailed) as refused:
        marketplace.submit_request(marketplace.RequestInput(**data), actor=world["sme"])
    field, words = expect
    assert refused.value.field == field, refused.value.message
    assert words in refused.value.message
    db.session.rollback()
    assert (count(FinancingRequest), count(RequestTarget), count(RequestCollateral)) == (0, 0, 0)


def test_a_receipt_request_lets_the_banks_asked_read_the_receipt(world):
    product = make_product(world["bank"], kind="warehouse_receipt")
    receipt = make_receipt(world)
    request_for(world, [product], [("warehouse_receipt", receipt.id)], amount="5000.00")
    offers = db.session.execute(select(ReceiptOffer)).scalars().all()
    assert [(o.receipt_id, o.bank_org_id) for o in offers] == [(receipt.id,
                                                               world["bank"].org_id)]


def test_withdrawing_a_request_lapses_the_offers_on_it(world):
    product = make_product(world["bank"])
    rec = receivable("B2B-W", amount="10000.00")
    request = request_for(world, [product], [("receivable", rec.id)])
    decision = offer(world, request, "bank")
    marketplace.withdraw_request(request.id, actor=world["sme"])
    db.session.commit()
    assert request.status is RequestStatus.WITHDRAWN
    assert db.session.get(Decision, decision.id).status is OfferStatus.LAPSED
    with pytest.raises(Conflict):
        review.prepare_offer(target_of(request, world["bank"]).id, review.OfferTerms(
            amount=usd("100.00"), annual_rate=Decimal("0.05"), tenor_days=30),
            actor=world["bank"])


# --------------------------------------------------------------------------- decisions

@pytest.fixture
def open_request(world):
    product = make_product(world["bank"], max_advance_rate=Decimal("0.8000"))
    rec = receivable("B2B-O", amount="10000.00")
    return request_for(world, [product], [("receivable", rec.id)], amount="6000.00")


@pytest.mark.parametrize("terms, field", [
    (dict(amount=usd("8000.01")), "amount"),
    (dict(annual_rate=Decimal("0.1")), "annual_rate"),
    (dict(annual_rate=Decimal("0.039999")), "annual_rate"),
    (dict(annual_rate=0.05), "annual_rate"),
    (dict(tenor_days=181), "tenor_days"),
    (dict(fees=Money(Decimal("10"), "EUR")), "fees"),
    (dict(fees=usd("900.00")), "fees"),
    (dict(expiry_date=clock.today() - timedelta(days=1)), "expiry_date"),
    (dict(amount=Money(Decimal("100"), "CNY")), "currency"),
])
def test_an_offer_outside_the_products_terms_is_refused(world, open_request, terms, field):
    values = dict(amount=usd("6000.00"), annual_rate=Decimal("0.065"), tenor_days=90)
    values.update(terms)
    with pytest.raises(ValidationFailed) as refused:
        review.prepare_offer(target_of(open_request, world["bank"]).id,
                             review.OfferTerms(**values), actor=world["bank"])
    assert refused.value.field == field
    db.session.rollback()
    assert count(Decision) == 0


def test_four_eyes_the_preparer_never_approves_and_approval_needs_an_approver(world,
                                                                             open_request):
    from tests.financing.conftest import second_user
    from finance_app.accounts.states import Role
    decision = offer(world, open_request, "bank", approve=False)
    both = second_user(world["bank"], Role.OFFICER, Role.APPROVER)
    mine = review.withdraw_decision(decision.id, actor=world["bank"])
    db.session.commit()
    assert mine.status is OfferStatus.WITHDRAWN
    target = target_of(open_request, world["bank"])
    own = review.prepare_offer(target.id, review.OfferTerms(
        amount=usd("6000.00"), annual_rate=Decimal("0.065"), tenor_days=90), actor=both)
    db.session.commit()
    with pytest.raises(Forbidden) as refused:
        review.approve(own.id, actor=both)
    assert refused.value.code == "four_eyes"
    db.session.rollback()
    with pytest.raises(Forbidden):
        review.approve(own.id, actor=world["bank"])       # an officer, not an approver
    db.session.rollback()
    with pytest.raises(NotFound):
        review.approve(own.id, actor=world["bank2_approver"])
    db.session.rollback()
    approved = review.approve(own.id, actor=world["bank_approver"])
    db.session.commit()
    assert approved.status is OfferStatus.APPROVED
    assert approved.approved_by_id == world["bank_approver"].id != approved.prepared_by_id


def test_one_live_decision_per_bank_and_request(world, open_request):
    offer(world, open_request, "bank", approve=False)
    with pytest.raises(Conflict) as refused:
        offer(world, open_request, "bank", approve=False)
    assert refused.value.code == "decision_exists"


def test_a_rejection_needs_reasons_and_a_sentence_and_reaches_the_sme_once_approved(
        world, open_request):
    target = target_of(open_request, world["bank"])
    with pytest.raises(ValidationFailed) as no_reason:
        review.prepare_rejection(target.id, reasons=[], text="Not this time, sorry.",
                                 actor=world["bank"])
    assert no_reason.value.field == "reasons"
    db.session.rollback()
    with pytest.raises(ValidationFailed):
        review.prepare_rejection(target.id, reasons=["bad_weather"], text="Not this time.",
                                 actor=world["bank"])
    db.session.rollback()
    with pytest.raises(ValidationFailed) as short:
        review.prepare_rejection(target.id, reasons=["credit_history"], text="No",
                                 actor=world["bank"])
    assert short.value.field == "text"
    db.session.rollback()
    rejection = review.prepare_rejection(
        target.id, reasons=["credit_history", "outside_appetite"],
        text="Too little repayment history on the platform yet.", actor=world["bank"])
    db.session.commit()
    from finance_app.financing import queries
    assert queries.decisions_visible(open_request, world["sme"]) == []
    review.approve(rejection.id, actor=world["bank_approver"])
    db.session.commit()
    seen = queries.decisions_visible(open_request, world["sme"])
    assert [(d.kind.value, d.reason_codes) for d in seen] == [
        ("rejection", "credit_history,outside_appetite")]


def test_banks_never_see_each_others_decisions_or_evidence(world):
    p1, p2 = make_product(world["bank"]), make_product(world["bank2"])
    rec = receivable("B2B-S", amount="10000.00")
    request = request_for(world, [p1, p2], [("receivable", rec.id)])
    mine = offer(world, request, "bank")
    with pytest.raises(NotFound):
        review.get_decision(mine.id, actor=world["bank2"])
    with pytest.raises(NotFound):
        review.evidence_pack(target_of(request, world["bank"]).id, actor=world["bank2"])
    from finance_app.financing import queries
    assert queries.decisions_visible(request, world["bank2"]) == []


def test_the_evidence_pack_shows_match_results_history_and_the_eligible_amount(world):
    product = make_product(world["bank"])
    rec = receivable("B2B-EV", amount="10000.00")
    request = request_for(world, [product], [("receivable", rec.id)])
    pack = review.evidence_pack(target_of(request, world["bank"]).id, actor=world["bank"])
    assert pack.sme.id == world["sme"].org_id and pack.rating is None
    assert [(i.verdict, i.item.available, i.pledge) for i in pack.items] == [
        ("verified", True, None)]
    assert pack.history.orders == 1 and pack.history.verified == 1
    assert pack.eligibility.amount == usd("8000.00") and pack.alerts == []


def test_an_offer_costs_what_its_schedule_and_fees_say(world, open_request):
    decision = offer(world, open_request, "bank", amount="6000.00", rate="0.072000", tenor=90)
    cost = review.decision_cost(decision)
    assert cost.interest == usd("108.00") and cost.fees == usd("30.00")
    assert cost.total == usd("138.00") and cost.net_disbursed == usd("5970.00")
    assert Decimal("0.09") < cost.apr < Decimal("0.11")     # fees raise it above 7.2 %
