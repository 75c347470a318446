"""The fund's budget under real concurrency (PostgreSQL, threads released together): many
approvals for the last of a budget never spend more than it, one claim approved twenty
times at once books once, and two claims for one loan at once make one claim."""
from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from finance_app.accounts.models import User
from finance_app.audit.models import AuditEvent
from finance_app.compensation import services
from finance_app.compensation.models import CompensationClaim, CompensationStatusChange
from finance_app.compensation.states import ClaimStatus
from finance_app.errors import Conflict, IllegalTransition
from finance_app.extensions import db
from finance_app.ledger.models import LedgerTransaction
from finance_app.money import Money
from finance_app.settlement.models import SettlementRecord
from finance_app.settlement.states import ObligationKind
from tests.compensation.conftest import claim_for, defaulted_loan, make_fund
from tests.ledger.test_concurrency import THREADS, run_together

pytestmark = pytest.mark.postgres


def count(model, *where) -> int:
    query = select(func.count()).select_from(model)
    for condition in where:
        query = query.where(condition)
    return db.session.execute(query).scalar_one()


def side_effects() -> dict[str, int]:
    return {
        "bookings": count(LedgerTransaction, LedgerTransaction.kind == "compensation"),
        "payments": count(SettlementRecord,
                          SettlementRecord.obligation_kind == ObligationKind.COMPENSATION),
        "history": count(CompensationStatusChange, CompensationStatusChange.action == "approve"),
        "audit": count(AuditEvent, AuditEvent.action == "compensation.claim_approve"),
    }


def test_approvals_racing_for_the_last_of_a_budget_never_spend_more_than_it(app, world):
    # 20 claims of 20,000.00 CNY each against 70,000.00: three in full, one for the last
    # 10,000.00, sixteen refused
    fund = make_fund(world, budget="70000.00", cap_per_loan="20000.00")
    claims = [claim_for(world, fund, defaulted_loan(world)).id for _ in range(THREADS)]
    fund_id, platform_id = fund.id, world["platform"].id
    db.session.remove()

    def attempt(n: int):
        try:
            claim = services.approve_claim(claims[n], actor=db.session.get(User, platform_id))
        except Conflict as exc:
            return ("refused", exc.message)
        return ("approved", claim.compensation_amount)

    results, errors = run_together(app, attempt)
    assert errors == []
    paid = sorted((r[1] for r in results if r[0] == "approved"), reverse=True)
    assert paid == [2000000, 2000000, 2000000, 1000000]
    assert all("used up" in r[1] for r in results if r[0] == "refused")
    assert side_effects() == {"bookings": 4, "payments": 4, "history": 4, "audit": 4}
    fund = services.get_fund(fund_id)
    money = services.figures(fund)
    assert money.remaining == Money(Decimal("0.00"), "CNY") and money.reconciled
    assert money.spent == Money(Decimal("70000.00"), "CNY")
    capped = db.session.execute(select(CompensationClaim).where(
        CompensationClaim.capped_by_budget.is_(True))).scalars().all()
    assert [c.compensation_amount for c in capped] == [1000000]
    assert count(CompensationClaim, CompensationClaim.status == ClaimStatus.SUBMITTED) == 16


def test_one_claim_approved_many_times_at_once_books_once(app, world):
    fund = make_fund(world)
    claim_id = claim_for(world, fund, defaulted_loan(world)).id
    fund_id, platform_id = fund.id, world["platform"].id
    db.session.remove()

    def attempt(n: int):
        try:
            services.approve_claim(claim_id, actor=db.session.get(User, platform_id))
        except IllegalTransition:
            return "refused"
        return "approved"

    results, errors = run_together(app, attempt)
    assert errors == []
    assert sorted(results) == ["approved"] + ["refused"] * (THREADS - 1)
    assert side_effects() == {"bookings": 1, "payments": 1, "history": 1, "audit": 1}
    assert services.figures(services.get_fund(fund_id)).remaining == \
        Money(Decimal("80000.00"), "CNY")


def test_two_claims_for_one_loan_at_once_make_one(app, world):
    fund = make_fund(world)
    loan_id = defaulted_loan(world).id
    fund_id, bank_id = fund.id, world["bank"].id
    db.session.remove()

    def attempt(n: int):
        try:
            services.submit_claim(actor=db.session.get(User, bank_id), fund_id=fund_id,
                                  loan_id=loan_id)
        except Conflict as exc:
            assert exc.field == "loan_id"
            return "refused"
        return "claimed"

    results, errors = run_together(app, attempt)
    assert errors == []
    assert sorted(results) == ["claimed"] + ["refused"] * (THREADS - 1)
    assert count(CompensationClaim) == 1
    assert count(CompensationStatusChange, CompensationStatusChange.action == "submit") == 1
