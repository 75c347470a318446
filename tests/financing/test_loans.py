"""Loans through the services: acceptance, disbursement, the schedule, repayments in the
order the contract says, the daily job, collateral release, and that the ledger agrees
with the loan at every step."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from finance_app import clock, daily
from finance_app.collateral import services as registry
from finance_app.collateral.models import Encumbrance
from finance_app.collateral.states import AssetKind, EncumbranceStatus
from finance_app.errors import Conflict, IllegalTransition, NotFound, ValidationFailed
from finance_app.extensions import db
from finance_app.financing import accounts, loans, products, queries, review
from finance_app.financing.models import (
    Allocation, Contract, Decision, Instalment, Loan, Repayment,
)
from finance_app.financing.states import (
    Component, InstalmentStatus, LoanStatus, OfferStatus, RepaymentStatus,
)
from finance_app.ledger import services as ledger
from finance_app.ledger.models import LedgerEntry, LedgerTransaction
from finance_app.money import Money
from finance_app.oversight.models import RiskAlert
from finance_app.settlement import services as settlement
from finance_app.settlement.models import SettlementRecord
from finance_app.settlement.states import SettlementStatus
from finance_app.trade.models import Receivable
from finance_app.warehouse.models import WarehouseReceipt
from finance_app.warehouse.states import ReceiptStatus
from tests.financing.conftest import (
    make_product, make_receipt, offer, receivable, request_for, ship, unshipped_order, usd,
)


def count(model, *where) -> int:
    query = select(func.count()).select_from(model)
    for condition in where:
        query = query.where(condition)
    return db.session.execute(query).scalar_one()


def active_pledges() -> list[tuple[str, int, int]]:
    return [(e.asset_kind.value, e.asset_id, e.holder_org_id) for e in db.session.execute(
        select(Encumbrance).where(Encumbrance.status == EncumbranceStatus.ACTIVE)
        .order_by(Encumbrance.id)).scalars()]


def assert_ledger_matches(loan: Loan) -> None:
    """The loan's ledger accounts say what its instalments say."""
    rows = queries.schedule(loan)
    principal = ledger.balance(accounts.loan_account(loan, accounts.PRINCIPAL))
    interest = ledger.balance(accounts.loan_account(loan, accounts.INTEREST))
    penalty = ledger.balance(accounts.loan_account(loan, accounts.PENALTY))
    m = lambda units: Money.from_minor(units, loan.currency)  # noqa: E731
    assert principal == m(sum(r.principal_left for r in rows))
    assert interest == m(sum(r.interest_left for r in rows if r.interest_recognised))
    assert penalty == m(sum(r.penalty_left for r in rows))


def accepted_loan(world, amount="6000.00", rate="0.072000", tenor=90, bank="bank",
                  **product_terms):
    product = make_product(world[bank], **product_terms)
    rec = receivable(f"B2B-{bank}-{amount}", amount="10000.00", days=200)
    request = request_for(world, [product], [("receivable", rec.id)], amount=amount,
                          tenor=tenor)
    decision = offer(world, request, bank, amount=amount, rate=rate, tenor=tenor)
    loan = loans.accept_offer(decision.id, actor=world["sme"])
    db.session.commit()
    return loan, rec


def disbursed_loan(world, **kwargs):
    loan, rec = accepted_loan(world, **kwargs)
    loans.disburse(loan.id, actor=world[kwargs.get("bank", "bank")],
                   reference="HX-DISB-20261201")
    db.session.commit()
    return loan, rec


def repay(world, loan, amount: Money, key: str, bank="bank"):
    repayment = loans.start_repayment(loan.id, actor=world["sme"], amount=amount, key=key)
    db.session.commit()
    settlement.confirm_transfer(repayment.settlement_record_id, reference=f"REF-{key}",
                                actor=world[bank])
    db.session.commit()
    db.session.refresh(repayment)
    db.session.refresh(loan)
    return repayment


def move_days(days: int) -> None:
    clock.advance(timedelta(days=days))


@pytest.fixture(autouse=True)
def _clock_back():
    yield
    clock.reset()


# --------------------------------------------------------------------------- acceptance

def test_acceptance_locks_the_collateral_holds_nothing_without_facility_and_fixes_terms(world):
    loan, rec = accepted_loan(world)
    assert loan.status is LoanStatus.AWAITING_DISBURSEMENT
    assert loan.principal == usd("6000.00") and loan.fees == usd("30.00")   # 0.5 % fee
    assert active_pledges() == [("receivable", rec.id, world["bank"].org_id)]
    contract = db.session.execute(select(Contract)).scalar_one()
    assert contract.number == f"FC-{clock.today():%Y}-{loan.id:06d}"
    import json
    terms = json.loads(contract.terms)
    assert (terms["amount"], terms["currency"], terms["annual_rate"]) == ("6000.00", "USD",
                                                                          "0.072")
    assert terms["lender"]["credit_code"] == world["bank"].organisation.credit_code
    assert terms["approved_by"] == world["bank_approver"].name
    assert len(contract.terms_sha256) == 64 and loan.facility_hold_id is None
    from finance_app.financing import queries
    assert [(h.from_status, h.to_status, h.actor_id, h.note) for h in queries.history(loan)] \
        == [(None, "awaiting_disbursement", world["sme"].id, contract.number)]


def test_accepting_the_same_offer_twice_returns_the_same_loan(world):
    loan, _ = accepted_loan(world)
    again = loans.accept_offer(loan.decision_id, actor=world["sme"])
    db.session.commit()
    assert again.id == loan.id
    assert count(Loan) == 1 and count(Contract) == 1 and count(Encumbrance) == 1


def test_a_lapsed_an_expired_and_an_unapproved_offer_cannot_be_accepted(world):
    p1, p2 = make_product(world["bank"]), make_product(world["bank2"])
    rec = receivable("B2B-X", amount="10000.00")
    request = request_for(world, [p1, p2], [("receivable", rec.id)])
    first = offer(world, request, "bank")
    second = offer(world, request, "bank2")
    loans.accept_offer(first.id, actor=world["sme"])
    db.session.commit()
    with pytest.raises(Conflict) as lapsed:
        loans.accept_offer(second.id, actor=world["sme"])
    assert lapsed.value.code == "offer_lapsed" and "another offer" in lapsed.value.message
    db.session.rollback()
    assert count(Loan) == 1

    rec2 = receivable("B2B-Y", amount="10000.00")
    request2 = request_for(world, [p1, p2], [("receivable", rec2.id)])
    stale = offer(world, request2, "bank", expiry_date=clock.today() + timedelta(days=2))
    draft = offer(world, request2, "bank2", approve=False)
    with pytest.raises(NotFound):
        loans.accept_offer(draft.id, actor=world["sme"])   # the SME cannot even see it
    db.session.rollback()
    move_days(3)
    with pytest.raises(Conflict) as expired:
        loans.accept_offer(stale.id, actor=world["sme"])
    assert expired.value.code == "offer_expired"
    db.session.rollback()
    assert count(Loan) == 1 and count(Encumbrance, Encumbrance.asset_id == rec2.id) == 0


def test_the_sme_never_sees_or_accepts_a_draft_and_other_smes_see_nothing(world):
    product = make_product(world["bank"])
    rec = receivable("B2B-D", amount="10000.00")
    request = request_for(world, [product], [("receivable", rec.id)])
    draft = offer(world, request, "bank", approve=False)
    with pytest.raises(NotFound):
        review.get_decision(draft.id, actor=world["sme"])
    approved = review.approve(draft.id, actor=world["bank_approver"])
    db.session.commit()
    assert review.get_decision(approved.id, actor=world["sme"]).id == draft.id
    with pytest.raises(NotFound):
        loans.accept_offer(draft.id, actor=world["other_sme"])
    with pytest.raises(NotFound):
        review.get_decision(draft.id, actor=world["bank2"])


def test_collateral_financed_under_one_request_cannot_be_taken_by_another(world):
    p1, p2 = make_product(world["bank"]), make_product(world["bank2"])
    rec = receivable("B2B-TWICE", amount="10000.00")
    first = request_for(world, [p1], [("receivable", rec.id)])
    second = request_for(world, [p2], [("receivable", rec.id)])   # shopping around is fine
    a = offer(world, first, "bank")
    b = offer(world, second, "bank2")
    loans.accept_offer(a.id, actor=world["sme"])
    db.session.commit()
    with pytest.raises(ValidationFailed) as refused:
        loans.accept_offer(b.id, actor=world["sme"])
    assert refused.value.field == "collateral"
    assert "B2B-TWICE" in refused.value.message and "already backs financing" in \
        refused.value.message
    db.session.rollback()
    assert count(Loan) == 1 and active_pledges() == [("receivable", rec.id,
                                                      world["bank"].org_id)]
    assert db.session.get(Decision, b.id).status is OfferStatus.APPROVED


def test_a_facility_is_held_at_acceptance_and_a_loan_beyond_it_is_refused(world):
    products.grant_facility(actor=world["bank_approver"], sme_org_id=world["sme"].org_id,
                            limit=usd("10000.00"), expiry_date=clock.today() + timedelta(days=365))
    db.session.commit()
    loan, _ = accepted_loan(world, amount="6000.00")
    facility = products.facility_for(world["bank"].org_id, world["sme"].org_id, "USD")
    figures = products.figures(facility)
    assert (figures.limit, figures.used, figures.held, figures.available) == (
        usd("10000.00"), usd("0.00"), usd("6000.00"), usd("4000.00"))
    loans.disburse(loan.id, actor=world["bank"], reference="HX-DISB-0001")
    db.session.commit()
    figures = products.figures(facility)
    assert (figures.used, figures.held, figures.available) == (usd("6000.00"), usd("0.00"),
                                                               usd("4000.00"))
    # the marketplace now says the facility binds
    product = db.session.get(Loan, loan.id).product_id
    from finance_app.financing import marketplace
    from finance_app.financing.models import FinancingProduct
    rec = receivable("B2B-MORE", amount="20000.00")
    items = marketplace.collateral(world["sme"].org_id, "receivable", [rec.id])
    result = marketplace.eligibility(db.session.get(FinancingProduct, product),
                                     world["sme"].org_id, items, "USD")
    assert (result.amount, result.binding) == (usd("4000.00"), "facility")
    repay(world, loan, loans.position(loan).total, "facility-back")
    figures = products.figures(facility)
    assert (figures.used, figures.available) == (usd("0.00"), usd("10000.00"))


def test_cancelling_before_disbursement_releases_collateral_and_the_hold(world):
    products.grant_facility(actor=world["bank_approver"], sme_org_id=world["sme"].org_id,
                            limit=usd("10000.00"), expiry_date=clock.today() + timedelta(days=365))
    db.session.commit()
    loan, rec = accepted_loan(world)
    with pytest.raises(ValidationFailed):
        loans.cancel_loan(loan.id, actor=world["bank_approver"], reason="")
    loans.cancel_loan(loan.id, actor=world["bank_approver"], reason="Conditions not met")
    db.session.commit()
    assert loan.status is LoanStatus.CANCELLED and active_pledges() == []
    facility = products.facility_for(world["bank"].org_id, world["sme"].org_id, "USD")
    assert products.figures(facility).available == usd("10000.00")
    with pytest.raises(IllegalTransition):
        loans.disburse(loan.id, actor=world["bank"], reference="HX-LATE-0001")


# --------------------------------------------------------------------------- disbursement

def test_disbursement_books_principal_fees_and_payment_and_starts_the_schedule(world):
    loan, _ = disbursed_loan(world, amount="6000.00", rate="0.072000", tenor=90)
    assert loan.status is LoanStatus.DISBURSED and loan.disbursed_on == clock.today()
    rows = queries.schedule(loan)
    assert [(r.due_date, r.principal_due, r.interest_due) for r in rows] == [
        (clock.today() + timedelta(days=90), 600000, 10800)]   # 6000 x 7.2 % x 90/360
    assert ledger.balance(accounts.loan_account(loan, accounts.PRINCIPAL)) == usd("6000.00")
    assert ledger.balance(accounts.bank_account(loan.bank_org_id, accounts.FEE_INCOME,
                                                "USD")) == usd("30.00")
    assert ledger.balance(accounts.bank_account(loan.bank_org_id, accounts.LENDING_CASH,
                                                "USD")) == usd("-5970.00")
    record = db.session.get(SettlementRecord, loan.disbursement_record_id)
    assert (record.status, record.money, record.payee_org_id) == (
        SettlementStatus.PAID, usd("5970.00"), loan.sme_org_id)
    again = loans.disburse(loan.id, actor=world["bank"], reference="HX-DISB-20261201")
    assert again.id == loan.id and count(SettlementRecord) == 1
    with pytest.raises(IllegalTransition):
        loans.disburse(loan.id, actor=world["bank"], reference="HX-OTHER-0002")
    assert_ledger_matches(loan)


def test_a_loan_can_be_paid_out_in_the_smes_currency_at_the_days_rate(world):
    loan, _ = accepted_loan(world, amount="6000.00")
    loans.disburse(loan.id, actor=world["bank"], reference="HX-DISB-CNY1",
                   receive_currency="CNY")
    db.session.commit()
    record = db.session.get(SettlementRecord, loan.disbursement_record_id)
    # 5970.00 x 7.1865 = 42,903.405, rounded half to even
    assert record.money == Money(Decimal("42903.40"), "CNY")
    assert ledger.balance(accounts.loan_account(loan, accounts.DISBURSEMENT)) == usd("0.00")
    assert ledger.balance(accounts.loan_account(loan, accounts.DISBURSEMENT, "CNY")) == \
        Money(Decimal("0.00"), "CNY")


def test_only_the_lending_bank_disburses(world):
    loan, _ = accepted_loan(world)
    for intruder in ("bank2", "sme"):
        with pytest.raises((NotFound, Exception)) as refused:
            loans.disburse(loan.id, actor=world[intruder], reference="HX-DISB-9999")
        assert refused.type.__name__ in ("NotFound", "Forbidden")
        db.session.rollback()
    assert db.session.get(Loan, loan.id).status is LoanStatus.AWAITING_DISBURSEMENT


def test_equal_instalments_follow_the_calendar(world):
    loan, _ = disbursed_loan(world, amount="6000.00", rate="0.060000", tenor=90,
                             repayment_type="equal_instalments")
    rows = queries.schedule(loan)
    assert len(rows) >= 3
    assert sum(r.principal_due for r in rows) == 600000
    assert rows[-1].due_date == clock.today() + timedelta(days=90)
    assert rows[0].period_start == clock.today()
    assert all(a.due_date == b.period_start for a, b in zip(rows, rows[1:]))


# --------------------------------------------------------------------------- repayments

def test_a_partial_repayment_pays_interest_to_date_then_principal_and_lowers_interest(world):
    loan, _ = disbursed_loan(world, amount="6000.00", rate="0.072000", tenor=90)
    move_days(30)
    owed = loans.position(loan)
    assert owed.interest == usd("36.00")          # 6000 x 7.2 % x 30/360
    repayment = repay(world, loan, usd("3036.00"), "part-1")
    assert repayment.status is RepaymentStatus.APPLIED
    parts = [(a.component, a.amount) for a in queries.allocations(repayment)]
    assert parts == [(Component.INTEREST, 3600), (Component.PRINCIPAL, 300000)]
    row = queries.schedule(loan)[0]
    # 30 days on 6000 and 60 on 3000: 36.00 + 36.00 = 72.00, not the scheduled 108.00
    assert row.interest_due == 7200 and row.interest_paid == 3600
    assert loans.position(loan).principal == usd("3000.00")
    assert loan.status is LoanStatus.DISBURSED
    assert_ledger_matches(loan)


def test_early_full_repayment_charges_interest_to_the_day_and_releases_collateral(world):
    loan, rec = disbursed_loan(world, amount="6000.00", rate="0.072000", tenor=90)
    move_days(10)
    owed = loans.position(loan)
    assert owed.total == usd("6012.00")           # 6000 + 6000 x 7.2 % x 10/360
    repay(world, loan, owed.total, "early-full")
    assert loan.status is LoanStatus.REPAID
    assert [r.status for r in queries.schedule(loan)] == [InstalmentStatus.PAID]
    assert active_pledges() == []
    released = db.session.execute(select(Encumbrance)).scalar_one()
    assert released.status is EncumbranceStatus.RELEASED and "repaid" in released.release_reason
    assert ledger.balance(accounts.bank_account(loan.bank_org_id, accounts.INTEREST_INCOME,
                                                "USD")) == usd("12.00")
    assert_ledger_matches(loan)
    with pytest.raises(Conflict):
        loans.start_repayment(loan.id, actor=world["sme"], amount=usd("1.00"), key="after")


def test_a_repayment_above_what_is_owed_is_refused_and_changes_nothing(world):
    loan, _ = disbursed_loan(world, amount="6000.00")
    with pytest.raises(ValidationFailed) as refused:
        loans.start_repayment(loan.id, actor=world["sme"], amount=usd("6000.01"), key="x")
    assert refused.value.field == "amount" and "6,000.00 USD" in refused.value.message
    db.session.rollback()
    pending = loans.start_repayment(loan.id, actor=world["sme"], amount=usd("5000.00"),
                                    key="y")
    db.session.commit()
    with pytest.raises(ValidationFailed) as second:
        loans.start_repayment(loan.id, actor=world["sme"], amount=usd("1000.01"), key="z")
    assert "on their way" in second.value.message
    db.session.rollback()
    assert count(Repayment) == 1 and count(SettlementRecord) == 2
    assert pending.status is RepaymentStatus.PENDING


def test_the_same_repayment_key_returns_the_same_repayment(world):
    loan, _ = disbursed_loan(world)
    first = loans.start_repayment(loan.id, actor=world["sme"], amount=usd("100.00"), key="k1")
    db.session.commit()
    again = loans.start_repayment(loan.id, actor=world["sme"], amount=usd("100.00"), key="k1")
    assert again.id == first.id
    with pytest.raises(Conflict):
        loans.start_repayment(loan.id, actor=world["sme"], amount=usd("200.00"), key="k1")
    db.session.rollback()
    assert count(Repayment) == 1


def test_a_repayment_in_another_currency_is_converted_and_one_without_a_rate_refused(world):
    loan, _ = disbursed_loan(world, amount="6000.00")
    with pytest.raises(ValidationFailed) as no_rate:
        loans.start_repayment(loan.id, actor=world["sme"],
                              amount=Money(Decimal("1000"), "JPY"), key="jpy")
    assert "JPY" in no_rate.value.message and "rate" in no_rate.value.message
    db.session.rollback()
    assert count(Repayment) == 0 and count(SettlementRecord) == 1
    repayment = repay(world, loan, Money(Decimal("7186.50"), "CNY"), "cny")
    assert repayment.applied_amount == 100000                 # 7186.50 / 7.1865 = 1000.00
    assert repayment.fx_transaction_id is not None
    assert loans.position(loan).principal == usd("5000.00")
    assert_ledger_matches(loan)


def test_a_cancelled_repayment_is_not_applied(world):
    loan, _ = disbursed_loan(world)
    repayment = loans.start_repayment(loan.id, actor=world["sme"], amount=usd("100.00"),
                                      key="gone")
    db.session.commit()
    settlement.cancel(repayment.settlement_record_id, actor=world["bank"],
                      reason="Never arrived")
    db.session.commit()
    db.session.refresh(repayment)
    assert repayment.status is RepaymentStatus.CANCELLED
    assert loans.position(loan).principal == usd("6000.00")


# --------------------------------------------------------------------------- the daily job

def test_an_unpaid_instalment_goes_overdue_accrues_penalty_once_a_day_and_defaults(world):
    loan, _ = disbursed_loan(world, amount="6000.00", rate="0.072000", tenor=30,
                             default_after_days=10)
    move_days(31)                                  # the day after the due date
    daily.run()
    db.session.refresh(loan)
    row = queries.schedule(loan)[0]
    assert row.status is InstalmentStatus.OVERDUE and loan.status is LoanStatus.OVERDUE
    # one day late on 6000.00 + 36.00 at 18 % / 360
    assert row.penalty_accrued == 302
    entries = count(LedgerEntry)
    daily.run()                                    # twice the same day: nothing more
    assert count(LedgerEntry) == entries
    alert = db.session.execute(select(RiskAlert)).scalar_one()
    assert (alert.rule, alert.subject_org_id, alert.party_org_id) == (
        "instalment_overdue", loan.sme_org_id, loan.bank_org_id)
    move_days(5)
    daily.run()
    assert queries.schedule(loan)[0].penalty_accrued == 1811   # 6 days: 1811.88 -> 18.12
    assert_ledger_matches(loan)
    move_days(6)                                   # 11 days overdue > 10
    daily.run()
    db.session.refresh(loan)
    assert loan.status is LoanStatus.DEFAULTED
    assert count(RiskAlert, RiskAlert.rule == "loan_defaulted") == 1
    # a defaulted loan repaid in full still closes, penalty first
    owed = loans.position(loan)
    repayment = repay(world, loan, owed.total, "recovery")
    parts = [a.component for a in queries.allocations(repayment)]
    assert parts == [Component.PENALTY, Component.INTEREST, Component.PRINCIPAL]
    assert loan.status is LoanStatus.REPAID and active_pledges() == []
    assert_ledger_matches(loan)


def test_the_daily_job_brings_loans_up_to_date_in_batches_at_two_banks(world, monkeypatch):
    monkeypatch.setattr(loans, "DAILY_BATCH", 2)       # 4 loans: two batches
    made = [disbursed_loan(world, amount=amount, rate="0.072000", tenor=30, bank=bank,
                           name=f"receivables {amount}")[0]
            for amount, bank in (("6000.00", "bank"), ("6100.00", "bank"),
                                 ("6200.00", "bank2"), ("6300.00", "bank"))]
    move_days(31)
    line = daily.run()[[*daily.DUTIES].index("financing")]
    assert ("4 loans with instalments due looked at (4 interest and 4 penalty interest "
            "bookings), 4 changed: 4 instalments fell overdue") in line
    # one day late on principal + 30 days' interest at 18 % / 360, worked out by hand:
    # 6036.00, 6136.60, 6237.20 and 6337.80 -> 3.018, 3.0683, 3.1186, 3.1689
    for loan, penalty in zip(made, (302, 307, 312, 317)):
        db.session.refresh(loan)
        row = queries.schedule(loan)[0]
        assert (loan.status, row.status, row.penalty_accrued) == (
            LoanStatus.OVERDUE, InstalmentStatus.OVERDUE, penalty)
        assert_ledger_matches(loan)
    kinds = lambda kind: count(LedgerTransaction, LedgerTransaction.kind == kind)  # noqa
    assert (kinds("loan_interest_due"), kinds("loan_penalty_interest")) == (4, 4)
    assert count(RiskAlert, RiskAlert.rule == "instalment_overdue") == 4
    entries = count(LedgerEntry)
    db.session.execute(daily.DailyRun.__table__.delete())
    db.session.commit()
    daily.run()                                    # again the same day: nothing more
    assert count(LedgerEntry) == entries
    move_days(1)
    line = daily.run()[[*daily.DUTIES].index("financing")]
    assert "(0 interest and 4 penalty interest bookings), 0 changed" in line
    assert (kinds("loan_interest_due"), kinds("loan_penalty_interest")) == (4, 8)
    for loan in made:
        assert_ledger_matches(loan)
    income = ledger.balance(accounts.bank_account(world["bank"].org_id,
                                                  accounts.PENALTY_INCOME, "USD"))
    assert income == Money(Decimal("18.52"), "USD")   # 2 days of 3.02, 3.07 and 3.17


def test_paying_what_is_late_cures_an_overdue_loan(world):
    loan, _ = disbursed_loan(world, amount="6000.00", rate="0.060000", tenor=90,
                             repayment_type="equal_instalments")
    first = queries.schedule(loan)[0]
    move_days((first.due_date - clock.today()).days + 2)
    daily.run()
    db.session.refresh(loan)
    assert loan.status is LoanStatus.OVERDUE
    row = queries.schedule(loan)[0]
    late = loans.position(loan)
    assert late.penalty.amount > 0 and late.overdue_principal == Money.from_minor(
        row.principal_due, "USD")
    assert late.due_now == late.penalty + late.overdue_interest + late.interest \
        + late.overdue_principal + late.principal_due_today
    repayment = repay(world, loan, late.due_now, "cure")
    assert [a.component for a in queries.allocations(repayment)] == [
        Component.PENALTY, Component.INTEREST, Component.INTEREST, Component.PRINCIPAL]
    assert loan.status is LoanStatus.DISBURSED
    assert queries.schedule(loan)[0].status is InstalmentStatus.PAID
    assert_ledger_matches(loan)


def test_an_offer_past_its_expiry_expires_in_the_daily_job(world):
    product = make_product(world["bank"])
    rec = receivable("B2B-E", amount="10000.00")
    request = request_for(world, [product], [("receivable", rec.id)])
    decision = offer(world, request, "bank", expiry_date=clock.today() + timedelta(days=1))
    move_days(2)
    daily.run()
    assert db.session.get(Decision, decision.id).status is OfferStatus.EXPIRED


# --------------------------------------------------------------------------- lineage and receipts

def test_a_financed_order_that_ships_passes_its_financing_to_the_receivable(world):
    product = make_product(world["bank"], kind="order", max_advance_rate=Decimal("0.6000"))
    order = unshipped_order("PO-1", amount="8000.00")
    request = request_for(world, [product], [("order", order.id)], amount="4000.00")
    decision = offer(world, request, "bank", amount="4000.00")
    loan = loans.accept_offer(decision.id, actor=world["sme"])
    db.session.commit()
    assert active_pledges() == [("order", order.id, world["bank"].org_id)]
    ship("PO-1")
    rec = db.session.execute(select(Receivable).where(Receivable.order_id == order.id)
                             ).scalar_one()
    assert active_pledges() == [("receivable", rec.id, world["bank"].org_id)]
    carried = registry.active_for(AssetKind.RECEIVABLE, rec.id)
    assert carried.financing_ref == f"loan:{loan.id}"
    assert [e.asset_kind for e in registry.lineage(carried)] == [AssetKind.ORDER,
                                                                 AssetKind.RECEIVABLE]
    # the receivable is not new collateral: a receivables product cannot take it
    other = make_product(world["bank2"])
    with pytest.raises(ValidationFailed) as refused:
        request_for(world, [other], [("receivable", rec.id)], amount="1000.00")
    assert "already backs financing" in refused.value.message
    db.session.rollback()
    loans.disburse(loan.id, actor=world["bank"], reference="HX-DISB-PO1")
    db.session.commit()
    repay(world, loan, loans.position(loan).total, "po-full")
    assert loan.status is LoanStatus.REPAID and active_pledges() == []


def test_an_order_that_shipped_before_acceptance_is_refused_at_acceptance(world):
    product = make_product(world["bank"], kind="order", max_advance_rate=Decimal("0.6000"))
    order = unshipped_order("PO-2", amount="8000.00")
    request = request_for(world, [product], [("order", order.id)], amount="4000.00")
    decision = offer(world, request, "bank", amount="4000.00")
    ship("PO-2")
    with pytest.raises(ValidationFailed) as refused:
        loans.accept_offer(decision.id, actor=world["sme"])
    assert "now a receivable" in refused.value.message
    db.session.rollback()
    assert count(Loan) == 0 and active_pledges() == []


def test_a_receipt_loan_pledges_the_receipt_and_repayment_releases_it(world):
    product = make_product(world["bank"], kind="warehouse_receipt")
    receipt = make_receipt(world, quantity="1000", price="25.80")    # 25,800 less 30 % haircut
    request = request_for(world, [product], [("warehouse_receipt", receipt.id)],
                          amount="10000.00")
    assert request.targets[0].eligible_amount == 1083600            # 60 % of 18,060.00
    decision = offer(world, request, "bank", amount="10000.00")
    loan = loans.accept_offer(decision.id, actor=world["sme"])
    db.session.commit()
    assert db.session.get(WarehouseReceipt, receipt.id).status is ReceiptStatus.PLEDGED
    loans.disburse(loan.id, actor=world["bank"], reference="HX-DISB-WR01")
    db.session.commit()
    repay(world, loan, loans.position(loan).total, "wr-full")
    assert db.session.get(WarehouseReceipt, receipt.id).status is ReceiptStatus.RELEASED
    assert active_pledges() == []


def test_every_repayment_balances_and_allocations_add_up(world):
    loan, _ = disbursed_loan(world, amount="6000.00", rate="0.072000", tenor=90,
                             repayment_type="equal_instalments")
    for days, amount in ((15, "700.00"), (20, "1500.00"), (40, "2100.55")):
        move_days(days)
        daily.run()
        repayment = repay(world, loan, usd(amount), f"r{days}")
        applied = sum(a.amount for a in queries.allocations(repayment))
        assert applied == repayment.applied_amount == usd(amount).to_minor()
        assert_ledger_matches(loan)
    owed = loans.position(loan)
    repay(world, loan, owed.total, "rest")
    assert loan.status is LoanStatus.REPAID
    assert count(Allocation) > 3
    unbalanced = db.session.execute(select(LedgerEntry.transaction_id).group_by(
        LedgerEntry.transaction_id, LedgerEntry.currency).having(
        func.sum(LedgerEntry.amount) != 0)).all()
    assert unbalanced == []
    assert count(LedgerTransaction) > 5
    assert count(Instalment, Instalment.status != InstalmentStatus.PAID) == 0
    from finance_app.settlement import reconciliation
    assert reconciliation.breaks() == []


def test_reconciliation_finds_a_loan_whose_ledger_disagrees_with_its_instalments(world):
    from finance_app.settlement import reconciliation
    loan, _ = disbursed_loan(world, amount="6000.00")
    assert [b for b in reconciliation.breaks() if b.area == "financing"] == []
    stray = ledger.account(owner_kind=accounts.OwnerKind.PLATFORM, purpose="suspense",
                           currency="USD", type=accounts.AccountType.ASSET)
    ledger.book([ledger.debit(accounts.loan_account(loan, accounts.PRINCIPAL), usd("1.00")),
                 ledger.credit(stray, usd("1.00"))], key="stray", kind="manual")
    db.session.commit()
    found = [b for b in reconciliation.breaks() if b.area == "financing"]
    assert [(b.subject, "6,001.00 USD" in b.problem) for b in found] == [
        (f"loan {loan.id}", True)]
