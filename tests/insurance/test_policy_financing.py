"""Policy financing: a receivable insured by an export credit policy, its indemnity assigned
to a bank, financed by that bank under a policy-financing product. The eligible amount is
capped by the cover (coverage x the buyer's remaining limit, coverage x the policy's
remaining liability); the receivable cannot be financed by one bank while its indemnity
is assigned to another; full repayment gives both the receivable and the indemnity back."""
from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from finance_app.accounts.states import Role
from finance_app.collateral import services as registry
from finance_app.collateral.models import Encumbrance
from finance_app.collateral.states import AssetKind, EncumbranceStatus
from finance_app.errors import Conflict, ValidationFailed
from finance_app.extensions import db
from finance_app.financing import loans, marketplace, products, review
from finance_app.financing.models import FinancingRequest, Loan, RequestTarget
from finance_app.financing.products import ProductTerms
from finance_app.insurance import queries, services
from finance_app.insurance.models import IndemnityAssignment
from finance_app.insurance.states import AssignmentStatus
from finance_app.money import Money
from finance_app.settlement import services as settlement
from tests.financing.conftest import second_user
from tests.insurance.conftest import approved_limit, declare, shipped, terms


def usd(text: str) -> Money:
    return Money(Decimal(text), "USD")


@pytest.fixture
def banks(world):
    """Each bank's approver (four eyes) and a product of each kind that matters here."""
    world["bank_approver"] = second_user(world["bank"], Role.APPROVER)
    world["other_bank_approver"] = second_user(world["other_bank"], Role.APPROVER)

    def product(bank, kind, advance="0.9000"):
        made = products.create_product(ProductTerms(
            name=f"{kind} at {bank}", kind=kind, currencies=["USD"],
            max_advance_rate=Decimal(advance), rate_min=Decimal("0.030000"),
            rate_max=Decimal("0.080000"), day_count=360, max_tenor_days=180,
            repayment_type="bullet", penalty_rate=Decimal("0.120000"), default_after_days=90,
            arrangement_fee_rate=Decimal("0")), actor=world[bank])
        db.session.commit()
        return made
    return dict(policy=product("bank", "policy"),
                receivable=product("bank", "receivable", "0.8000"),
                other_policy=product("other_bank", "policy"),
                other_receivable=product("other_bank", "receivable", "0.8000"))


def acknowledged(world, declaration, bank="bank"):
    """The SME asks to assign the indemnity to ``bank``; the insurer acknowledges."""
    assignment = services.request_assignment(declaration.id, actor=world["sme"],
                                             bank_org_id=world[bank].org_id)
    db.session.commit()
    services.acknowledge_assignment(assignment.id, actor=world["insurer"])
    db.session.commit()
    return assignment


def assign(world, declaration, bank="bank"):
    assignment = acknowledged(world, declaration, bank)
    services.accept_assignment(assignment.id, actor=world[bank])
    db.session.commit()
    return assignment


def approved_offer(world, request, bank="bank", amount="10000.00", approver=None):
    """``bank``'s officer offers ``amount`` at 5 % for 90 days; its approver approves."""
    decision = review.prepare_offer(request.targets[0].id, review.OfferTerms(
        amount=usd(amount), annual_rate=Decimal("0.050000"), tenor_days=90),
        actor=world[bank])
    db.session.commit()
    review.approve(decision.id, actor=approver or world[f"{bank}_approver"])
    db.session.commit()
    return decision


def view_of(world, product):
    return next(v for v in marketplace.offers_for_sme(world["sme"])
                if v.product.id == product.id)


def counts() -> dict[str, int]:
    return {model.__name__: db.session.execute(
        select(func.count()).select_from(model)).scalar_one()
        for model in (FinancingRequest, RequestTarget, Loan, Encumbrance, IndemnityAssignment)}


def ask(world, product, receivable_id, amount="10000.00", kind="insured_receivable"):
    made = marketplace.submit_request(marketplace.RequestInput(
        amount=usd(amount), tenor_days=90, purpose="Bridge until the buyer pays",
        collateral=[(kind, receivable_id)], product_ids=[product.id]), actor=world["sme"])
    db.session.commit()
    return made


def refused(call, code=None, error=ValidationFailed):
    before = counts()
    with pytest.raises(error) as caught:
        call()
    db.session.rollback()
    assert counts() == before
    if code:
        assert caught.value.code == code, caught.value.message
    return caught.value


def test_the_cover_caps_what_the_sme_can_borrow_and_says_which_cap_binds(world, policy, banks):
    limit = approved_limit(world, policy, amount="100000.00")
    first = declare(world, limit, shipped("ORD-1", goods="40000.00"))
    assign(world, first)
    view = view_of(world, banks["policy"])
    [item] = view.items
    assert (item.kind, item.id, item.value) == (AssetKind.INSURED_RECEIVABLE,
                                                first.receivable_id, usd("40000.00"))
    e = view.eligibility
    # 90 % of the insured 40,000 binds before 90 % of the limit (100,000) or the liability
    assert e.eligible and e.amount == usd("36000.00") and e.binding == "advance"
    assert e.cover_limit == usd("90000.00")

    # the buyer's other shipment takes most of the limit: 90 % of what is left for this one
    second = declare(world, limit, shipped("ORD-2", goods="60000.00"))
    assert second.insured_amount == 6000000
    services.reduce_limit(limit.id, actor=world["insurer"], amount=Decimal("70000.00"),
                          reason="the buyer's latest accounts")
    db.session.commit()
    e = view_of(world, banks["policy"]).eligibility
    # room for ORD-1: 70,000 - (40,000 + 60,000) + 40,000 = 10,000; x 90 %
    assert (e.amount, e.binding) == (usd("9000.00"), "buyer_limit")
    assert "credit limit" in marketplace.binding_label(e.binding)
    refused(lambda: ask(world, banks["policy"], first.receivable_id, amount="9000.01"),
            "above_eligible_amount")
    request = ask(world, banks["policy"], first.receivable_id, amount="9000.00")
    assert [t.binding for t in request.targets] == ["buyer_limit"]


def test_the_policys_remaining_liability_binds_when_it_is_lower(world, banks):
    small = services.issue_policy(terms(world, max_liability=Decimal("25000.00")),
                                  actor=world["insurer"])
    db.session.commit()
    for n, country in ((1, "BR"), (2, "MX")):
        limit = approved_limit(world, small, amount="20000.00", country=country,
                               reg=f"REG-{n}", name=f"Buyer {n}")
        assign(world, declare(world, limit, shipped(f"ORD-{n}", goods="20000.00",
                                                    country=country)))
    e = view_of(world, banks["policy"]).eligibility
    # two buyers' limits leave 40,000 x 90 %; the policy's 25,000 x 90 % is lower
    assert e.advance_limit == usd("36000.00")
    assert (e.amount, e.binding, e.cover_limit) == (usd("22500.00"), "policy_liability",
                                                    usd("22500.00"))


def test_only_the_bank_the_indemnity_is_assigned_to_can_finance_it(world, policy, banks):
    limit = approved_limit(world, policy)
    declaration = declare(world, limit, shipped("ORD-1", goods="40000.00"))
    receivable_id = declaration.receivable_id
    # not assigned yet: the policy product says so, and a request is refused
    e = view_of(world, banks["policy"]).eligibility
    assert not e.eligible and "not assigned" in e.reasons[0]
    problem = refused(lambda: ask(world, banks["policy"], receivable_id),
                      "collateral_unavailable")
    assert "ORD-1" in problem.message and "not assigned" in problem.message
    assign(world, declaration, bank="other_bank")
    # assigned to the other bank: neither of this bank's products takes the receivable
    for product, kind in ((banks["policy"], "insured_receivable"),
                          (banks["receivable"], "receivable")):
        problem = refused(lambda: ask(world, product, receivable_id, kind=kind),
                          "collateral_unavailable")
        assert "assigned to another bank" in problem.message
    assert not view_of(world, banks["policy"]).eligibility.eligible
    # the other bank's products do
    assert view_of(world, banks["other_policy"]).eligibility.amount == usd("36000.00")
    assert view_of(world, banks["other_receivable"]).eligibility.amount == usd("32000.00")


def test_a_receivable_financed_by_one_bank_cannot_have_its_indemnity_assigned_to_another(
        world, policy, banks):
    limit = approved_limit(world, policy)
    declaration = declare(world, limit, shipped("ORD-1", goods="40000.00"))
    request = ask(world, banks["other_receivable"], declaration.receivable_id,
                  kind="receivable")
    decision = approved_offer(world, request, "other_bank")
    # an assignment agreed before the loan: the insurer acknowledges, then the loan is made
    assignment = acknowledged(world, declaration)
    loans.accept_offer(decision.id, actor=world["sme"])
    db.session.commit()
    error = refused(lambda: services.accept_assignment(assignment.id, actor=world["bank"]),
                    "financed_elsewhere", Conflict)
    assert "another bank" in error.message
    refused(lambda: services.request_assignment(declaration.id, actor=world["sme"],
                                                bank_org_id=world["bank"].org_id),
            error=Conflict)
    # the lending bank itself may take the indemnity
    services.withdraw_assignment(assignment.id, actor=world["sme"])
    db.session.commit()
    assign(world, declaration, bank="other_bank")
    assert queries.cover_for_receivable(declaration.receivable_id).assigned_bank_org_id == \
        world["other_bank"].org_id


def test_policy_financing_from_request_to_release(world, policy, banks):
    limit = approved_limit(world, policy)
    declaration = declare(world, limit, shipped("ORD-1", goods="40000.00"))
    assignment = assign(world, declaration)
    rid = declaration.receivable_id
    request = ask(world, banks["policy"], rid, amount="30000.00")
    target = request.targets[0]
    pack = review.evidence_pack(target.id, actor=world["bank"])
    [row] = pack.items
    assert row.cover is not None and row.cover.policy_number == policy.number
    assert row.cover.max_indemnity == usd("36000.00") and row.item.problem is None
    assert review.evidence_pack(target.id, actor=world["bank"]).eligibility.amount == \
        usd("36000.00")
    decision = review.prepare_offer(target.id, review.OfferTerms(
        amount=usd("30000.00"), annual_rate=Decimal("0.040000"), tenor_days=90),
        actor=world["bank"])
    db.session.commit()
    review.approve(decision.id, actor=world["bank_approver"])
    db.session.commit()
    loan = loans.accept_offer(decision.id, actor=world["sme"])
    db.session.commit()
    # the receivable is locked to the loan; the assignment stays the bank's lock on the cover
    held = registry.active_for(AssetKind.RECEIVABLE, rid)
    assert (held.holder_org_id, held.financing_ref, held.financing_kind) == (
        world["bank"].org_id, f"loan:{loan.id}", "policy_financing")
    assert registry.active_for(AssetKind.INSURED_RECEIVABLE, rid).id == \
        assignment.encumbrance_id
    assert not any(i.id == rid and i.available
                   for i in marketplace.collateral(world["sme"].org_id, "policy", [rid]))
    loans.disburse(loan.id, actor=world["bank"], reference="HX-POLICY-0001")
    db.session.commit()
    repayment = loans.start_repayment(loan.id, actor=world["sme"],
                                      amount=loans.position(loan).total, key="policy-full")
    db.session.commit()
    settlement.confirm_transfer(repayment.settlement_record_id, reference="REF-POLICY",
                                actor=world["bank"])
    db.session.commit()
    db.session.refresh(loan)
    db.session.refresh(assignment)
    assert loan.status.value == "repaid"
    assert assignment.status is AssignmentStatus.RELEASED
    assert registry.active_for(AssetKind.RECEIVABLE, rid) is None
    assert registry.active_for(AssetKind.INSURED_RECEIVABLE, rid) is None
    ended = db.session.execute(select(Encumbrance).where(
        Encumbrance.asset_id == rid).order_by(Encumbrance.id)).scalars().all()
    assert [(e.asset_kind.value, e.status) for e in ended] == [
        ("insured_receivable", EncumbranceStatus.RELEASED),
        ("receivable", EncumbranceStatus.RELEASED)]


def test_an_assignment_released_before_acceptance_makes_the_offer_unacceptable(
        world, policy, banks):
    limit = approved_limit(world, policy)
    declaration = declare(world, limit, shipped("ORD-1", goods="40000.00"))
    assignment = assign(world, declaration)
    request = ask(world, banks["policy"], declaration.receivable_id)
    decision = approved_offer(world, request)
    services.release_assignment(assignment.id, actor=world["bank"], reason="changed our mind")
    db.session.commit()
    problem = refused(lambda: loans.accept_offer(decision.id, actor=world["sme"]),
                      "collateral_unavailable")
    assert "not assigned" in problem.message


def test_an_overdue_insured_receivable_backs_no_new_policy_financing(world, policy, banks):
    from datetime import timedelta

    from finance_app import clock
    limit = approved_limit(world, policy)
    declaration = declare(world, limit, shipped("ORD-1", goods="40000.00", term=30))
    assign(world, declaration)
    clock.advance(timedelta(days=40))
    services.report_overdue(declaration.id, actor=world["sme"])
    db.session.commit()
    [item] = marketplace.collateral(world["sme"].org_id, "policy", [declaration.receivable_id])
    assert "fell due" in item.problem
    assert not view_of(world, banks["policy"]).eligibility.eligible
