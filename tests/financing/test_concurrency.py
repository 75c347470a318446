"""Financing under real concurrency (PostgreSQL, twenty threads released together): the
side effects are counted, not only the final statuses."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from finance_app import clock, daily
from finance_app.accounts.models import User
from finance_app.accounts.states import OrgKind, Role
from finance_app.collateral.models import Encumbrance
from finance_app.collateral.states import EncumbranceStatus
from finance_app.errors import DomainError
from finance_app.extensions import db
from finance_app.financing import loans, products
from finance_app.financing.models import Allocation, Contract, Decision, Loan, Repayment
from finance_app.financing.states import LoanStatus, OfferStatus
from finance_app.ledger.models import LedgerEntry, LedgerTransaction
from finance_app.outbox import OutboxMessage
from finance_app.settlement import services as settlement
from finance_app.warehouse import services as warehouse
from tests.factories import UserFactory, make_org_user
from tests.financing.conftest import (
    make_product, make_receipt, offer, receivable, request_for, usd,
)
from tests.ledger.test_concurrency import THREADS, run_together

pytestmark = pytest.mark.postgres


def count(model, *where) -> int:
    query = select(func.count()).select_from(model)
    for condition in where:
        query = query.where(condition)
    return db.session.execute(query).scalar_one()


def active() -> int:
    return count(Encumbrance, Encumbrance.status == EncumbranceStatus.ACTIVE)


def _banks(n: int):
    banks = []
    for _ in range(n):
        officer = make_org_user(OrgKind.BANK, roles=(Role.OFFICER,))
        approver = UserFactory(organisation=officer.organisation, roles=[Role.APPROVER])
        db.session.commit()
        banks.append((officer, approver))
    return banks


def test_twenty_offers_of_one_request_accepted_at_once_make_one_loan(app, world):
    """Twenty banks offer on one request; the SME's twenty acceptances race: one wins,
    the other nineteen offers lapse, and there is one loan, one pledge, one hold."""
    from finance_app.financing import review
    banks = _banks(THREADS)
    products.grant_facility(actor=banks[0][1], sme_org_id=world["sme"].org_id,
                            limit=usd("50000.00"), expiry_date=clock.today() + timedelta(days=365))
    db.session.commit()
    product_list = [make_product(officer, name=f"Receivables {n}")
                    for n, (officer, _) in enumerate(banks)]
    rec = receivable("B2B-RACE", amount="10000.00")
    # a request goes to at most five banks: four requests reach the twenty
    requests = [request_for(world, product_list[i:i + 5], [("receivable", rec.id)])
                for i in range(0, THREADS, 5)]
    decisions = []
    for req in requests:
        for target in req.targets:
            officer, approver = next(b for b in banks if b[0].org_id == target.bank_org_id)
            decision = review.prepare_offer(target.id, review.OfferTerms(
                amount=usd("5000.00"), annual_rate=Decimal("0.065"), tenor_days=90),
                actor=officer)
            db.session.commit()
            review.approve(decision.id, actor=approver)
            db.session.commit()
            decisions.append(decision.id)
    sme_id, facility_bank = world["sme"].id, banks[0][0].org_id
    db.session.remove()

    def attempt(n: int):
        return loans.accept_offer(decisions[n], actor=db.session.get(User, sme_id)).id

    results, errors = run_together(app, attempt)
    winners = {r for r in results if r is not None}
    assert len(winners) == 1, errors
    assert len(errors) == THREADS - 1
    assert all(isinstance(e, DomainError) for e in errors), errors
    assert count(Loan) == 1 and count(Contract) == 1
    assert active() == 1
    assert count(Decision, Decision.status == OfferStatus.ACCEPTED) == 1
    # the winner's own request lapsed its other offers; the other requests' offers stay
    # open but their collateral is taken: accepting them is refused (above)
    assert count(OutboxMessage, OutboxMessage.topic == "financing.render_contract") == 1
    holds = count(LedgerTransaction, LedgerTransaction.kind == "facility_hold")
    loan = db.session.get(Loan, winners.pop())
    assert holds == (1 if loan.bank_org_id == facility_bank else 0)


def test_a_direct_pledge_and_an_acceptance_racing_for_one_receipt_leave_one_pledge(app,
                                                                                   world):
    """Banks pledging a receipt directly (the warehouse registry) race the SME accepting
    an offer secured on the same receipt: whoever comes first, one pledge."""
    product = make_product(world["bank"], kind="warehouse_receipt")
    receipt = make_receipt(world)
    request = request_for(world, [product], [("warehouse_receipt", receipt.id)],
                          amount="8000.00")
    decision = offer(world, request, "bank", amount="8000.00")
    banks = _banks(THREADS - 1)
    warehouse.offer_to_banks(receipt.id, [b.org_id for b, _ in banks], actor=world["sme"])
    db.session.commit()
    ids = [world["sme"].id] + [b.id for b, _ in banks]
    receipt_id, decision_id = receipt.id, decision.id
    db.session.remove()

    def attempt(n: int):
        actor = db.session.get(User, ids[n])
        if n == 0:
            return ("loan", loans.accept_offer(decision_id, actor=actor).id)
        pledge = warehouse.pledge_receipt(
            receipt_id, actor=actor, principal=usd("9000.00"), max_ltv=Decimal("0.7"),
            margin_call_ltv=Decimal("0.8"), liquidation_ltv=Decimal("0.9"), cure_days=10,
            financing_ref=f"LN-{n}")
        return ("pledge", pledge.id)

    results, errors = run_together(app, attempt)
    done = [r for r in results if r is not None]
    assert len(done) == 1 and len(errors) == THREADS - 1
    assert active() == 1
    assert count(Loan) == (1 if done[0][0] == "loan" else 0)


def test_one_repayment_confirmed_twenty_times_at_once_is_applied_once(app, world):
    product = make_product(world["bank"])
    rec = receivable("B2B-PAY", amount="10000.00")
    request = request_for(world, [product], [("receivable", rec.id)], amount="6000.00")
    decision = offer(world, request, "bank", amount="6000.00")
    loan = loans.accept_offer(decision.id, actor=world["sme"])
    db.session.commit()
    loans.disburse(loan.id, actor=world["bank"], reference="HX-DISB-RACE")
    db.session.commit()
    repayment = loans.start_repayment(loan.id, actor=world["sme"], amount=usd("1000.00"),
                                      key="once")
    db.session.commit()
    record_id, bank_id, loan_id = repayment.settlement_record_id, world["bank"].id, loan.id
    entries = count(LedgerEntry)
    db.session.remove()

    def attempt(n: int):
        settlement.confirm_transfer(record_id, reference="SME-WIRE-0001",
                                    actor=db.session.get(User, bank_id))
        return n

    results, errors = run_together(app, attempt)
    assert errors == []                       # the same confirmation again is a no-op
    assert count(Allocation) == 1             # principal only (interest to date is zero)
    assert count(LedgerTransaction, LedgerTransaction.kind == "loan_repayment") == 1
    assert count(LedgerEntry) == entries + 2 + 2    # the payment and its application
    assert loans.position(db.session.get(Loan, loan_id)).principal == usd("5000.00")


def test_twenty_repayments_paid_at_once_never_apply_more_than_is_owed(app, world):
    product = make_product(world["bank"])
    rec = receivable("B2B-MANY", amount="10000.00")
    request = request_for(world, [product], [("receivable", rec.id)], amount="5000.00")
    decision = offer(world, request, "bank", amount="5000.00")
    loan = loans.accept_offer(decision.id, actor=world["sme"])
    db.session.commit()
    loans.disburse(loan.id, actor=world["bank"], reference="HX-DISB-MANY")
    db.session.commit()
    records = []
    for n in range(THREADS):
        repayment = loans.start_repayment(loan.id, actor=world["sme"], amount=usd("250.00"),
                                          key=f"r{n}")
        db.session.commit()
        records.append(repayment.settlement_record_id)
    bank_id, loan_id = world["bank"].id, loan.id
    db.session.remove()

    def attempt(n: int):
        settlement.confirm_transfer(records[n], reference=f"SME-WIRE-{n:04d}",
                                    actor=db.session.get(User, bank_id))
        return n

    results, errors = run_together(app, attempt)
    assert errors == []
    loan = db.session.get(Loan, loan_id)
    assert loan.status is LoanStatus.REPAID
    assert sum(a.amount for a in db.session.execute(select(Allocation)).scalars()) == 500000
    assert count(Repayment, Repayment.applied_amount == 25000) == THREADS
    assert count(LedgerTransaction, LedgerTransaction.kind == "loan_repayment") == THREADS


def test_the_daily_job_run_twice_at_once_books_penalties_once(app, world):
    product = make_product(world["bank"])
    rec = receivable("B2B-LATE", amount="10000.00")
    request = request_for(world, [product], [("receivable", rec.id)], amount="5000.00",
                          tenor=30)
    decision = offer(world, request, "bank", amount="5000.00", tenor=30)
    loan = loans.accept_offer(decision.id, actor=world["sme"])
    db.session.commit()
    loans.disburse(loan.id, actor=world["bank"], reference="HX-DISB-LATE")
    db.session.commit()
    clock.advance(timedelta(days=35))
    try:
        db.session.remove()
        results, errors = run_together(app, lambda n: daily.run())
        assert errors == []
        assert count(LedgerTransaction, LedgerTransaction.kind == "loan_penalty_interest") == 1
        assert count(LedgerTransaction, LedgerTransaction.kind == "loan_interest_due") == 1
        from finance_app.oversight.models import RiskAlert
        assert count(RiskAlert) == 1
    finally:
        clock.reset()


def test_the_daily_job_and_repayments_of_its_loans_at_once_book_each_penalty_once(
        app, world, monkeypatch):
    """Six overdue loans: the daily job (two loans a batch) runs while the SME's full
    repayments of every one are confirmed at the same moment. Nothing deadlocks or fails,
    each loan's penalty to date is booked once, by one side or the other, and every loan
    closes."""
    monkeypatch.setattr(loans, "DAILY_BATCH", 2)
    product = make_product(world["bank"])
    made = []
    for n in range(6):
        rec = receivable(f"B2B-RUSH-{n}", amount="10000.00")
        request = request_for(world, [product], [("receivable", rec.id)], amount="5000.00",
                              tenor=30)
        decision = offer(world, request, "bank", amount="5000.00", tenor=30)
        loan = loans.accept_offer(decision.id, actor=world["sme"])
        db.session.commit()
        loans.disburse(loan.id, actor=world["bank"], reference=f"HX-DISB-RUSH-{n}")
        db.session.commit()
        made.append(loan.id)
    clock.advance(timedelta(days=33))
    try:
        records = []
        for n, loan_id in enumerate(made):
            owed = loans.position(db.session.get(Loan, loan_id)).total
            records.append(loans.start_repayment(loan_id, actor=world["sme"], amount=owed,
                                                 key=f"rush-{n}").settlement_record_id)
            db.session.commit()
        bank_id = world["bank"].id
        db.session.remove()

        def work(n: int):
            if n == 0:
                return daily.run()
            if n <= len(records):
                settlement.confirm_transfer(records[n - 1], reference=f"SME-RUSH-{n}",
                                            actor=db.session.get(User, bank_id))
            return n

        results, errors = run_together(app, work)
        assert errors == []
        assert not any("FAILED" in line for line in results[0])
        assert [db.session.get(Loan, i).status for i in made] == [LoanStatus.REPAID] * 6
        assert count(LedgerTransaction, LedgerTransaction.kind == "loan_penalty_interest") == 6
        assert count(LedgerTransaction, LedgerTransaction.kind == "loan_interest_due") == 6
        assert count(LedgerTransaction, LedgerTransaction.kind == "loan_repayment") == 6
    finally:
        clock.reset()
