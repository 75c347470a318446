"""The whole path through the services: products, a request to two banks, offers, four
eyes, acceptance, disbursement, repayment, closing and release."""
from __future__ import annotations

from decimal import Decimal

from sqlalchemy import func, select

from finance_app.collateral.models import Encumbrance
from finance_app.collateral.states import EncumbranceStatus
from finance_app.extensions import db
from finance_app.financing import accounts, contracts, loans
from finance_app.financing.models import Contract, Decision, Loan
from finance_app.financing.states import LoanStatus, OfferStatus, RequestStatus
from finance_app.ledger import services as ledger
from finance_app.settlement import services as settlement
from tests.financing.conftest import make_product, offer, receivable, request_for, usd


def test_request_to_two_banks_offer_accept_disburse_repay_release(world):
    p1 = make_product(world["bank"])
    p2 = make_product(world["bank2"], max_advance_rate=Decimal("0.9000"))
    rec = receivable("B2B-1", amount="10000.00")
    request = request_for(world, [p1, p2], [("receivable", rec.id)], amount="7000.00")
    assert {t.eligible_amount for t in request.targets} == {800000, 900000}
    first = offer(world, request, "bank", amount="7000.00", rate="0.070000")
    better = offer(world, request, "bank2", amount="7000.00", rate="0.060000")
    loan = loans.accept_offer(better.id, actor=world["sme"])
    db.session.commit()
    db.session.refresh(first)
    assert first.status is OfferStatus.LAPSED
    assert request.status is RequestStatus.ACCEPTED
    assert loan.status is LoanStatus.AWAITING_DISBURSEMENT
    live = db.session.execute(select(Encumbrance).where(
        Encumbrance.status == EncumbranceStatus.ACTIVE)).scalars().all()
    assert [(e.asset_kind.value, e.asset_id, e.holder_org_id) for e in live] == [
        ("receivable", rec.id, world["bank2"].org_id)]
    contract = db.session.execute(select(Contract)).scalar_one()
    assert contracts.verify_terms(contract)

    loans.disburse(loan.id, actor=world["bank2"], reference="HX-DISB-0001")
    db.session.commit()
    assert loan.status is LoanStatus.DISBURSED
    principal = accounts.loan_account(loan, accounts.PRINCIPAL)
    assert ledger.balance(principal) == usd("7000.00")
    owed = loans.position(loan)
    assert owed.principal == usd("7000.00") and owed.interest == usd("0.00")

    repayment = loans.start_repayment(loan.id, actor=world["sme"], amount=owed.total,
                                      key="full-1")
    db.session.commit()
    settlement.confirm_transfer(repayment.settlement_record_id, reference="SME-PAY-0001",
                                actor=world["bank2"])
    db.session.commit()
    db.session.refresh(loan)
    assert loan.status is LoanStatus.REPAID
    assert ledger.balance(principal) == usd("0.00")
    assert db.session.execute(select(func.count(Encumbrance.id)).where(
        Encumbrance.status == EncumbranceStatus.ACTIVE)).scalar_one() == 0
    assert db.session.execute(select(func.count(Loan.id))).scalar_one() == 1
    assert db.session.execute(select(func.count(Decision.id))).scalar_one() == 2


def test_the_review_queue_shows_each_bank_its_own_requests_and_decisions(world):
    from finance_app.financing import queries
    p1 = make_product(world["bank"])
    p2 = make_product(world["bank2"])
    rec = receivable("B2B-Q", amount="10000.00")
    request = request_for(world, [p1, p2], [("receivable", rec.id)], amount="6000.00")
    assert [r.request.id for r in queries.review_queue(world["bank"]).items] == [request.id]
    offer(world, request, "bank", amount="6000.00", approve=False)
    assert queries.review_queue(world["bank"]).items == []
    waiting = queries.review_queue(world["bank"], show="to_approve").items
    assert [r.decision.status.value for r in waiting] == ["prepared"]
    assert [r.decision for r in queries.review_queue(world["bank2"]).items] == [None]
    assert queries.decisions_visible(request, world["sme"]) == []
    assert len(queries.decisions_visible(request, world["bank"])) == 1
    assert queries.decisions_visible(request, world["bank2"]) == []
