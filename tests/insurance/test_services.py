"""Export credit insurance through its services: policies, limits, declarations and
premiums, overdue reports, claims and indemnity, recoveries, assignment to a bank."""
from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from finance_app import clock
from finance_app.collateral import services as registry
from finance_app.collateral.models import Encumbrance
from finance_app.collateral.states import AssetKind
from finance_app.errors import Conflict, Forbidden, IllegalTransition, NotFound, ValidationFailed
from finance_app.extensions import db
from finance_app.insurance import queries, services
from finance_app.insurance.models import (
    BuyerLimit, Claim, IndemnityAssignment, InsuranceStatusChange, OverdueReport, Policy,
    ShipmentDeclaration,
)
from finance_app.insurance.states import (
    AssignmentStatus, ClaimCause, ClaimStatus, DeclarationStatus, LimitStatus, PolicyStatus,
)
from finance_app.ledger.models import LedgerAccount, LedgerTransaction
from finance_app.money import Money
from finance_app.settlement import services as settlement
from finance_app.settlement.models import SettlementRecord
from finance_app.settlement.states import ObligationKind, SettlementStatus
from finance_app.trade.models import Receivable
from tests.insurance.conftest import (
    approved_limit, buyer_pays, declare, shipped, terms,
)


def usd(amount: str) -> Money:
    return Money(Decimal(amount), "USD")


def counts() -> dict:
    """Rows a refused request must not leave behind."""
    return {model.__name__: db.session.execute(select(func.count()).select_from(model))
            .scalar_one() for model in (Policy, BuyerLimit, ShipmentDeclaration, OverdueReport,
                                        Claim, IndemnityAssignment, InsuranceStatusChange,
                                        LedgerTransaction, SettlementRecord, Encumbrance)}


def refused(call, field: str, error=ValidationFailed):
    before = counts()
    with pytest.raises(error) as caught:
        call()
    db.session.rollback()
    assert caught.value.field == field, (caught.value.field, caught.value.message)
    assert counts() == before
    return caught.value


# --------------------------------------------------------------------------- policies

def test_an_insurer_issues_a_policy_with_its_terms(world, policy):
    assert policy.number == "ECI-2026-000001"
    assert policy.status is PolicyStatus.ISSUED
    assert (policy.insurer_org_id, policy.insured_org_id) == (world["insurer"].org_id,
                                                               world["sme"].org_id)
    assert policy.currency_list == ["USD", "EUR"]
    assert policy.max_liability == usd("500000.00")
    assert (policy.commercial_coverage, policy.political_coverage) == (Decimal("0.9000"),
                                                                        Decimal("0.9500"))
    assert (policy.declaration_days, policy.overdue_report_days, policy.waiting_days,
            policy.insolvency_waiting_days) == (15, 60, 120, 30)
    assert services.premium_rate(policy, 5, 60) == Decimal("0.008000")
    assert services.premium_rate(policy, 5, 120) == Decimal("0.011000")
    assert services.premium_rate(policy, 5, 200) is None
    assert [h.action for h in queries.history("policy", policy.id)] == ["issue"]


def test_only_insurer_staff_issue_policies(world):
    with pytest.raises(Forbidden):
        services.issue_policy(terms(world), actor=world["sme"])


@pytest.mark.parametrize("override, field", [
    (dict(commercial_coverage=Decimal("1.05")), "commercial_coverage"),
    (dict(political_coverage=Decimal("1.0001")), "political_coverage"),
    (dict(commercial_coverage=Decimal("0")), "commercial_coverage"),
    (dict(commercial_coverage=0.9), "commercial_coverage"),
    (dict(end_date=date(2026, 9, 1)), "end_date"),
    (dict(currency="XYZ"), "currency"),
    (dict(max_liability=Decimal("-1")), "max_liability"),
    (dict(rates=[]), "rates"),
    (dict(rates=[services.RateInput(9, 90, Decimal("0.01"))]), "rates"),
    (dict(declaration_days=0), "declaration_days"),
    (dict(insured_org_id=999999), "insured_org_id"),
])
def test_bad_policy_terms_are_refused_by_field(world, override, field):
    refused(lambda: services.issue_policy(terms(world, **override), actor=world["insurer"]),
            field)


def test_monthly_declaration_deadline_is_the_day_of_the_next_month(world):
    policy = services.issue_policy(terms(world, declaration_mode="monthly", declaration_days=10),
                                   actor=world["insurer"])
    assert services.declaration_deadline(policy, date(2026, 11, 2)) == date(2026, 12, 10)
    assert services.declaration_deadline(policy, date(2026, 12, 31)) == date(2027, 1, 10)


# --------------------------------------------------------------------------- limits

def test_a_limit_is_applied_for_then_approved_for_less_with_a_reason(world, policy):
    limit = approved_limit(world, policy, amount="150000.00", approve="100000.00")
    assert limit.status is LimitStatus.APPROVED
    assert (limit.requested, limit.approved) == (usd("150000.00"), usd("100000.00"))
    assert limit.reason == "our appetite for this buyer"
    assert services.limit_remaining(limit) == usd("100000.00")
    assert [h.action for h in queries.history("limit", limit.id)] == ["apply", "approve"]


def test_reduce_cancel_refuse_each_need_a_reason(world, policy, limit):
    refused(lambda: services.reduce_limit(limit.id, actor=world["insurer"],
                                          amount=Decimal("50000.00"), reason=""), "reason")
    services.reduce_limit(limit.id, actor=world["insurer"], amount=Decimal("50000.00"),
                          reason="buyer's accounts weakened")
    db.session.commit()
    assert limit.approved == usd("50000.00")
    refused(lambda: services.reduce_limit(limit.id, actor=world["insurer"],
                                          amount=Decimal("60000.00"), reason="x"), "amount")
    services.cancel_limit(limit.id, actor=world["insurer"], reason="buyer in administration")
    db.session.commit()
    assert limit.status is LimitStatus.CANCELLED
    assert services.limit_remaining(limit) == usd("0.00")
    other = services.apply_for_limit(policy.id, actor=world["sme"], buyer_name="Loja Lda",
                                     buyer_country="PT", buyer_registration_no="PT509999999",
                                     amount=Decimal("20000"), payment_term_days=60)
    services.refuse_limit(other.id, actor=world["insurer"], reason="no financial statements")
    db.session.commit()
    assert other.status is LimitStatus.REFUSED


def test_approving_more_than_asked_is_refused(world, policy):
    limit = services.apply_for_limit(policy.id, actor=world["sme"], buyer_name="Loja Lda",
                                     buyer_country="PT", buyer_registration_no="PT509999999",
                                     amount=Decimal("20000"), payment_term_days=60)
    db.session.commit()
    refused(lambda: services.approve_limit(limit.id, actor=world["insurer"],
                                           amount=Decimal("20000.01")), "amount")


def test_a_limit_under_an_expired_policy_is_refused(world, policy):
    clock.advance(timedelta(days=340))      # past 30 September 2027
    refused(lambda: services.apply_for_limit(
        policy.id, actor=world["sme"], buyer_name="Loja Lda", buyer_country="PT",
        buyer_registration_no="PT509999999", amount=Decimal("20000"), payment_term_days=60),
        "policy_id")


def test_a_second_live_limit_on_the_same_buyer_is_refused(world, policy, limit):
    refused(lambda: services.apply_for_limit(
        policy.id, actor=world["sme"], buyer_name="Comercial Paulista Ltda",
        buyer_country="BR", buyer_registration_no="BR-CNPJ-11222333000181",
        amount=Decimal("1000"), payment_term_days=60), "buyer_registration_no", Conflict)


def test_others_cannot_decide_or_see_limits(world, policy, limit):
    with pytest.raises(Forbidden):
        services.reduce_limit(limit.id, actor=world["sme"], amount=Decimal("1"), reason="x")
    with pytest.raises(NotFound):
        services.get_limit(limit.id, actor=world["other_sme"])
    with pytest.raises(NotFound):
        services.get_limit(limit.id, actor=world["bank"])


# --------------------------------------------------------------------------- declarations

def test_a_declaration_within_the_limit_is_fully_insured_and_premium_is_booked(world, policy,
                                                                               limit):
    order = shipped(goods="40000.00")
    declaration = declare(world, limit, order)
    assert declaration.status is DeclarationStatus.DECLARED
    assert (declaration.invoice, declaration.insured, declaration.uninsured) == (
        usd("40000.00"), usd("40000.00"), usd("0.00"))
    assert declaration.shipment_date == date(2026, 11, 2)
    assert declaration.deadline == date(2026, 11, 17)
    assert declaration.due_date == date(2027, 1, 30)
    assert declaration.risk_grade == 5                       # Brazil
    assert declaration.premium_rate == Decimal("0.008000")   # grade 5, up to 90 days
    assert declaration.premium == usd("320.00")
    assert services.limit_remaining(limit) == usd("60000.00")
    record = db.session.get(SettlementRecord, declaration.premium_settlement_id)
    assert (record.obligation_kind, record.payer_org_id, record.payee_org_id, record.money,
            record.status) == (ObligationKind.PREMIUM, world["sme"].org_id,
                               world["insurer"].org_id, usd("320.00"), SettlementStatus.PENDING)
    due = db.session.get(LedgerAccount, record.credit_account_id)
    assert due.purpose == "premium_due" and due.balance == 32000
    settlement.confirm_transfer(record.id, reference="BOC-2026-1105-77", actor=world["insurer"])
    db.session.commit()
    db.session.refresh(due)
    assert due.balance == 0
    assert services.premium_status(declaration) is SettlementStatus.PAID


def test_beyond_the_remaining_limit_the_rest_is_visibly_uninsured(world, policy, limit):
    first = declare(world, limit, shipped("ORD-1", goods="70000.00"))
    second = declare(world, limit, shipped("ORD-2", goods="45000.00"))
    assert first.insured == usd("70000.00")
    assert (second.insured, second.uninsured) == (usd("30000.00"), usd("15000.00"))
    assert second.premium == usd("240.00")                   # on the insured part only
    assert services.limit_remaining(limit) == usd("0.00")
    third = declare(world, limit, shipped("ORD-3", goods="1000.00"))
    assert (third.insured, third.uninsured, third.premium) == (
        usd("0.00"), usd("1000.00"), usd("0.00"))
    assert third.premium_settlement_id is None


def test_paying_the_invoice_frees_the_limit(world, policy, limit):
    declaration = declare(world, limit, shipped("ORD-1", goods="100000.00"))
    assert services.limit_remaining(limit) == usd("0.00")
    buyer_pays("ORD-1", amount="100000.00")
    assert db.session.get(Receivable, declaration.receivable_id).status.value == "settled"
    assert services.limit_remaining(limit) == usd("100000.00")   # at once
    assert services.daily(clock.today()).startswith("0 policies expired, 1 declarations settled")
    db.session.commit()
    assert declaration.status is DeclarationStatus.SETTLED
    again = declare(world, limit, shipped("ORD-2", goods="100000.00"))
    assert again.insured == usd("100000.00")


def test_a_declaration_in_euro_uses_the_limit_in_dollars(world, policy, limit):
    from finance_app.ledger import rates
    rates.enter_rate("EUR", "USD", Decimal("1.0800"), date(2026, 11, 2), actor=world["platform"],
                     note="test")
    db.session.commit()
    declaration = declare(world, limit, shipped("ORD-E", goods="50000.00", currency="EUR"))
    assert declaration.insured == Money(Decimal("50000.00"), "EUR")
    assert declaration.limit_used_amount == 5400000          # 54,000.00 USD of the limit
    assert services.limit_remaining(limit) == usd("46000.00")


@pytest.mark.parametrize("case", ["late", "before_period", "not_approved", "refused_limit",
                                  "not_verified", "term_too_long", "other_country",
                                  "someone_elses_order"])
def test_bad_declarations_are_refused_and_change_nothing(world, policy, limit, case):
    order = shipped("ORD-1")
    target = limit
    kwargs = {}
    field = "shipment_date"
    if case == "late":
        clock.advance(timedelta(days=13))             # 18 November: the deadline was the 17th
    elif case == "before_period":
        order = shipped("ORD-0", ship=None)
        kwargs = {"shipment_date": date(2026, 9, 20)}
    elif case in ("not_approved", "refused_limit"):
        target = services.apply_for_limit(policy.id, actor=world["sme"], buyer_name="Loja Lda",
                                          buyer_country="BR", buyer_registration_no="BR-2",
                                          amount=Decimal("20000"), payment_term_days=90)
        if case == "refused_limit":
            services.refuse_limit(target.id, actor=world["insurer"], reason="no")
        db.session.commit()
        field = "buyer_limit_id"
    elif case == "not_verified":
        from tests.trade.builders import order as order_doc
        from finance_app.trade import services as trade
        from finance_app.trade.states import DocumentSource
        trade.ingest([order_doc("ORD-9", trade_mode="9710", order_type="B",
                                payment_term_days=90, goods="10.00", freight="0", lines=[])],
                     actor=None, source=DocumentSource.JSON)
        db.session.commit()
        from finance_app.trade.models import Order
        order = db.session.execute(select(Order).where(Order.order_no == "ORD-9")).scalar_one()
        field = "order_id"
    elif case == "term_too_long":
        order = shipped("ORD-L", term=150)
        field = "payment_term_days"
    elif case == "other_country":
        order = shipped("ORD-MX", country="MX")
        field = "order_id"
    elif case == "someone_elses_order":
        field = "order_id"
        refused(lambda: services.declare_shipment(actor=world["other_sme"],
                                                  buyer_limit_id=limit.id, order_id=order.id),
                "buyer_limit_id")
        return
    refused(lambda: services.declare_shipment(actor=world["sme"], buyer_limit_id=target.id,
                                              order_id=order.id, **kwargs), field)


def test_a_shipment_before_the_policy_starts_is_refused(world, limit, policy):
    policy.start_date = date(2026, 11, 3)      # shipped on the 2nd
    db.session.commit()
    refused(lambda: declare(world, limit, shipped("ORD-1")), "shipment_date")


def test_a_declaration_under_an_expired_policy_is_refused(world, limit, policy):
    order = shipped("ORD-1")
    policy.end_date = date(2026, 11, 4)
    db.session.commit()
    refused(lambda: declare(world, limit, order), "buyer_limit_id")


def test_an_order_is_declared_once(world, policy, limit):
    order = shipped("ORD-1")
    declare(world, limit, order)
    refused(lambda: declare(world, limit, order), "order_id", Conflict)


def test_cancelling_a_declaration_reverses_its_premium(world, policy, limit):
    declaration = declare(world, limit, shipped("ORD-1", goods="40000.00"))
    services.cancel_declaration(declaration.id, actor=world["sme"], reason="declared in error")
    db.session.commit()
    assert declaration.status is DeclarationStatus.CANCELLED
    assert services.limit_remaining(limit) == usd("100000.00")
    record = db.session.get(SettlementRecord, declaration.premium_settlement_id)
    assert record.status is SettlementStatus.CANCELLED
    assert db.session.get(LedgerAccount, record.credit_account_id).balance == 0


# --------------------------------------------------------------------------- overdue, claims

def _overdue(world, limit, goods="40000.00", on=date(2027, 2, 10)):
    declaration = declare(world, limit, shipped("ORD-1", goods=goods))
    clock.advance(timedelta(days=(on - clock.today()).days))
    report = services.report_overdue(declaration.id, actor=world["sme"],
                                     note="buyer cites cash-flow problems")
    db.session.commit()
    return declaration, report


def test_an_overdue_report_in_time_and_a_late_one(world, policy, limit):
    declaration, report = _overdue(world, limit)
    assert declaration.status is DeclarationStatus.OVERDUE
    assert (report.late, report.report_deadline, report.overdue) == (
        False, date(2027, 3, 31), usd("40000.00"))


def test_a_late_overdue_report_is_flagged(world, policy, limit):
    declaration, report = _overdue(world, limit, on=date(2027, 4, 2))
    assert report.late is True
    assert "late" in queries.history("declaration", declaration.id)[-1].note


def test_an_overdue_report_before_the_due_date_is_refused(world, policy, limit):
    declaration = declare(world, limit, shipped("ORD-1"))
    refused(lambda: services.report_overdue(declaration.id, actor=world["sme"]),
            "declaration_id")


def test_claim_after_the_waiting_period_is_assessed_and_paid_through_the_ledger(world, policy,
                                                                                limit):
    declaration, _ = _overdue(world, limit)
    refused(lambda: services.file_claim(declaration.id, actor=world["sme"],
                                        cause=ClaimCause.NON_PAYMENT,
                                        loss_amount=Decimal("40000.00")), "cause")
    clock.advance(timedelta(days=(date(2027, 5, 30) - clock.today()).days))
    claim = services.file_claim(declaration.id, actor=world["sme"],
                                cause=ClaimCause.NON_PAYMENT, loss_amount=Decimal("40000.00"))
    db.session.commit()
    assert (claim.status, claim.claimable_from) == (ClaimStatus.FILED, date(2027, 5, 30))
    assert declaration.status is DeclarationStatus.CLAIMED
    services.start_assessment(claim.id, actor=world["insurer"])
    services.approve_claim(claim.id, actor=world["insurer"], reason="loss proven")
    db.session.commit()
    assert claim.status is ClaimStatus.APPROVED
    assert (claim.coverage, claim.indemnity) == (Decimal("0.9000"), usd("36000.00"))
    assert claim.payee_org_id == world["sme"].org_id
    assert declaration.status is DeclarationStatus.CLOSED
    assert services.remaining_liability(policy) == usd("464000.00")
    record = db.session.get(SettlementRecord, claim.settlement_id)
    assert (record.obligation_kind, record.payer_org_id, record.payee_org_id, record.money) == (
        ObligationKind.CLAIM, world["insurer"].org_id, world["sme"].org_id, usd("36000.00"))
    settlement.confirm_transfer(record.id, reference="ECI-PAY-0001", actor=world["sme"])
    db.session.commit()
    assert claim.status is ClaimStatus.PAID
    payable = db.session.get(LedgerAccount, record.debit_account_id)
    assert payable.purpose == "indemnity_payable" and payable.balance == 0
    bank = db.session.get(LedgerAccount, record.credit_account_id)
    assert bank.balance == -3600000     # paid out of the insurer's bank account
    # money recovered from the buyer later is shared 90 / 10
    recovery = services.record_recovery(claim.id, actor=world["sme"], amount=Decimal("10000.00"))
    db.session.commit()
    assert (recovery.insurer_part, recovery.insured_part) == (usd("9000.00"), usd("1000.00"))
    owed = db.session.get(SettlementRecord, recovery.settlement_id)
    assert (owed.payer_org_id, owed.payee_org_id, owed.money) == (
        world["sme"].org_id, world["insurer"].org_id, usd("9000.00"))
    refused(lambda: services.record_recovery(claim.id, actor=world["sme"],
                                             amount=Decimal("30000.01")), "amount")
    assert [h.action for h in queries.history("claim", claim.id)] == [
        "file", "assess", "approve", "pay"]


def test_insolvency_has_a_shorter_waiting_period(world, policy, limit):
    declaration, _ = _overdue(world, limit, on=date(2027, 3, 2))   # due 30 Jan + 30 days
    claim = services.file_claim(declaration.id, actor=world["sme"], cause="insolvency",
                                loss_amount=Decimal("1000.00"))
    assert claim.claimable_from == date(2027, 3, 1)


def test_a_claim_on_the_uninsured_part_is_refused(world, policy):
    limit = approved_limit(world, policy, amount="30000.00")
    declaration = declare(world, limit, shipped("ORD-1", goods="40000.00"))
    assert declaration.insured == usd("30000.00")
    clock.advance(timedelta(days=(date(2027, 2, 10) - clock.today()).days))
    services.report_overdue(declaration.id, actor=world["sme"])
    db.session.commit()
    clock.advance(timedelta(days=120))
    refused(lambda: services.file_claim(declaration.id, actor=world["sme"],
                                        cause=ClaimCause.NON_PAYMENT,
                                        loss_amount=Decimal("40000.00")), "loss_amount")
    claim = services.file_claim(declaration.id, actor=world["sme"],
                                cause=ClaimCause.NON_PAYMENT, loss_amount=Decimal("30000.00"))
    assert claim.loss == usd("30000.00")


def test_a_claim_needs_an_overdue_report_first(world, policy, limit):
    declaration = declare(world, limit, shipped("ORD-1"))
    clock.advance(timedelta(days=300))
    refused(lambda: services.file_claim(declaration.id, actor=world["sme"],
                                        cause=ClaimCause.NON_PAYMENT,
                                        loss_amount=Decimal("100.00")), "declaration_id",
            Conflict)


def test_a_rejected_claim_says_why(world, policy, limit):
    declaration, _ = _overdue(world, limit)
    clock.advance(timedelta(days=120))
    claim = services.file_claim(declaration.id, actor=world["sme"],
                                cause=ClaimCause.NON_PAYMENT, loss_amount=Decimal("100.00"))
    db.session.commit()
    refused(lambda: services.reject_claim(claim.id, actor=world["insurer"], reason=" "),
            "reason")
    services.reject_claim(claim.id, actor=world["insurer"], reason="dispute over goods quality")
    db.session.commit()
    assert (claim.status, claim.reason) == (ClaimStatus.REJECTED, "dispute over goods quality")
    assert declaration.status is DeclarationStatus.CLOSED
    with pytest.raises(IllegalTransition):
        services.start_assessment(claim.id, actor=world["insurer"])


def test_the_indemnity_is_capped_by_the_remaining_maximum_liability(world):
    policy = services.issue_policy(terms(world, max_liability=Decimal("20000.00")),
                                   actor=world["insurer"])
    db.session.commit()
    limit = approved_limit(world, policy, amount="20000.00")
    declaration, _ = _overdue(world, limit, goods="20000.00")
    clock.advance(timedelta(days=120))
    claim = services.file_claim(declaration.id, actor=world["sme"], cause="political",
                                loss_amount=Decimal("20000.00"))
    services.start_assessment(claim.id, actor=world["insurer"])
    services.approve_claim(claim.id, actor=world["insurer"])
    db.session.commit()
    assert claim.indemnity == usd("19000.00")          # 95 % political cover
    assert services.remaining_liability(policy) == usd("1000.00")


# --------------------------------------------------------------------------- assignment

def _assigned(world, limit):
    declaration = declare(world, limit, shipped("ORD-1", goods="40000.00"))
    assignment = services.request_assignment(declaration.id, actor=world["sme"],
                                             bank_org_id=world["bank"].org_id)
    db.session.commit()
    services.acknowledge_assignment(assignment.id, actor=world["insurer"])
    db.session.commit()
    services.accept_assignment(assignment.id, actor=world["bank"])
    db.session.commit()
    return declaration, assignment


def test_assignment_to_a_bank_makes_it_the_claim_payee(world, policy, limit):
    declaration, assignment = _assigned(world, limit)
    assert assignment.status is AssignmentStatus.ACTIVE
    encumbrance = registry.active_for(AssetKind.INSURED_RECEIVABLE, declaration.receivable_id)
    assert encumbrance.holder_org_id == world["bank"].org_id
    assert encumbrance.secured == usd("40000.00")
    cover = queries.cover_for_receivable(declaration.receivable_id)
    assert cover.as_tuple() == (usd("40000.00"), Decimal("0.9000"), usd("60000.00"),
                                usd("500000.00"), world["bank"].org_id)
    assert [c.declaration_id for c in queries.assigned_cover(world["bank"].org_id)] == [
        declaration.id]
    # the bank sees the policy and the declaration; another bank does not
    services.get_declaration(declaration.id, actor=world["bank"])
    services.get_policy(policy.id, actor=world["bank"])
    with pytest.raises(NotFound):
        services.get_declaration(declaration.id, actor=world["other_bank"])
    clock.advance(timedelta(days=(date(2027, 2, 10) - clock.today()).days))
    services.report_overdue(declaration.id, actor=world["sme"])
    db.session.commit()
    clock.advance(timedelta(days=120))
    claim = services.file_claim(declaration.id, actor=world["bank"],     # the bank claims
                                cause=ClaimCause.NON_PAYMENT, loss_amount=Decimal("40000.00"))
    services.start_assessment(claim.id, actor=world["insurer"])
    services.approve_claim(claim.id, actor=world["insurer"])
    db.session.commit()
    assert claim.payee_org_id == world["bank"].org_id
    record = db.session.get(SettlementRecord, claim.settlement_id)
    assert record.payee_org_id == world["bank"].org_id
    services.release_assignment(assignment.id, actor=world["bank"], reason="loan repaid")
    db.session.commit()
    assert assignment.status is AssignmentStatus.RELEASED
    assert registry.active_for(AssetKind.INSURED_RECEIVABLE, declaration.receivable_id) is None


def test_one_live_assignment_per_insured_receivable(world, policy, limit):
    declaration, _ = _assigned(world, limit)
    refused(lambda: services.request_assignment(declaration.id, actor=world["sme"],
                                                bank_org_id=world["other_bank"].org_id),
            "declaration_id", Conflict)


def test_a_bank_accepts_only_after_the_insurer_acknowledges(world, policy, limit):
    declaration = declare(world, limit, shipped("ORD-1"))
    assignment = services.request_assignment(declaration.id, actor=world["sme"],
                                             bank_org_id=world["bank"].org_id)
    db.session.commit()
    with pytest.raises(NotFound):      # not acknowledged: the bank does not see it yet
        services.accept_assignment(assignment.id, actor=world["bank"])
    db.session.rollback()
    with pytest.raises(Forbidden):
        services.acknowledge_assignment(assignment.id, actor=world["sme"])
    db.session.rollback()
    services.refuse_assignment(assignment.id, actor=world["insurer"], reason="policy breach")
    db.session.commit()
    assert assignment.status is AssignmentStatus.REFUSED


def test_a_wholly_uninsured_shipment_cannot_be_assigned(world, policy):
    limit = approved_limit(world, policy, amount="1000.00")
    declare(world, limit, shipped("ORD-0", goods="1000.00"))
    declaration = declare(world, limit, shipped("ORD-1", goods="500.00"))
    assert declaration.insured_amount == 0
    refused(lambda: services.request_assignment(declaration.id, actor=world["sme"],
                                                bank_org_id=world["bank"].org_id),
            "declaration_id")


# --------------------------------------------------------------------------- daily

def test_the_daily_run_expires_policies_and_tells_of_missed_reports(world, policy, limit):
    declare(world, limit, shipped("ORD-1"))
    clock.advance(timedelta(days=(date(2027, 4, 5) - clock.today()).days))
    line = services.daily(clock.today())
    assert "1 report deadlines missed" in line
    clock.advance(timedelta(days=200))
    assert services.daily(clock.today()).startswith("1 policies expired")
    db.session.commit()
    assert policy.status is PolicyStatus.EXPIRED
