"""The risk compensation fund through its services: funds and their budget in the ledger,
claims assessed from the loan's principal outstanding (share, rounding, conversion, cap),
approval booked and paid through settlement, the budget capping the last approval, and
refusals that change nothing."""
from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from finance_app.audit.models import AuditEvent
from finance_app.compensation import accounts, services
from finance_app.compensation.models import (
    CompensationClaim, CompensationFund, CompensationStatusChange,
)
from finance_app.compensation.states import (
    CLAIM_TRANSITIONS, FUND_TRANSITIONS, ClaimAction, ClaimStatus, FundAction, FundStatus,
)
from finance_app.errors import (
    Conflict, Forbidden, IllegalTransition, NotFound, ValidationFailed,
)
from finance_app.extensions import db
from finance_app.ledger import services as ledger
from finance_app.ledger.models import LedgerEntry, LedgerTransaction
from finance_app.money import Money
from finance_app.settlement import services as settlement
from finance_app.settlement.models import SettlementRecord
from finance_app.settlement.states import ObligationKind, SettlementStatus
from tests.compensation.conftest import (
    claim_for, defaulted_loan, disbursed_loan, make_fund, terms,
)


def cny(text: str) -> Money:
    return Money(Decimal(text), "CNY")


def count(model, *where) -> int:
    query = select(func.count()).select_from(model)
    for condition in where:
        query = query.where(condition)
    return db.session.execute(query).scalar_one()


def side_effects() -> tuple[int, ...]:
    return (count(CompensationFund), count(CompensationClaim), count(LedgerTransaction),
            count(SettlementRecord), count(CompensationStatusChange), count(AuditEvent))


def history(subject: str, subject_id: int) -> list[tuple[str | None, str, str]]:
    return [(h.from_status, h.to_status, h.action) for h in services.history(subject, subject_id)]


# --------------------------------------------------------------------------- funds

def test_a_fund_is_made_and_its_budget_funded_through_the_ledger(world):
    fund = make_fund(world, bank_org_ids=(world["bank"].org_id,),
                     product_kinds=("receivable",))
    assert fund.status is FundStatus.ACTIVE and fund.share == Decimal("0.5000")
    assert fund.cap_per_loan == cny("20000.00")
    money = services.figures(fund)
    assert money.budget == money.remaining == cny("100000.00") and money.reconciled
    available = accounts.fund_account(fund, accounts.AVAILABLE)
    assert available.min_balance == 0                    # the ledger refuses overspending
    booking = db.session.execute(select(LedgerTransaction).where(
        LedgerTransaction.kind == "compensation_budget")).scalar_one()
    assert sum(e.amount for e in db.session.execute(select(LedgerEntry).where(
        LedgerEntry.transaction_id == booking.id)).scalars()) == 0
    assert history("fund", fund.id) == [(None, "active", "create")]
    services.top_up(fund.id, actor=world["platform"], amount="25000.00", note="Q2 budget")
    db.session.commit()
    assert services.figures(fund).remaining == cny("125000.00")
    assert count(LedgerTransaction, LedgerTransaction.kind == "compensation_budget") == 2
    actions = set(db.session.execute(select(AuditEvent.action)).scalars())
    assert {"compensation.fund_create", "compensation.fund_terms",
            "compensation.fund_top_up"} <= actions


@pytest.mark.parametrize("overrides, field", [
    ({"share": "1.0001"}, "share"), ({"share": "1.5"}, "share"), ({"share": "0"}, "share"),
    ({"share": "-0.2"}, "share"), ({"share": "0.12345"}, "share"), ({"share": "half"}, "share"),
    ({"budget": "0"}, "budget"), ({"budget": "-100.00"}, "budget"),
    ({"budget": "10.001"}, "budget"), ({"cap_per_loan": "0.00"}, "cap_per_loan"),
    ({"cap_per_loan": "-1"}, "cap_per_loan"), ({"currency": "XXY"}, "currency"),
    ({"name": "  "}, "name"), ({"product_kinds": ("mortgage",)}, "product_kinds"),
])
def test_bad_fund_terms_are_refused_by_field_and_change_nothing(world, overrides, field):
    before = side_effects()
    with pytest.raises(ValidationFailed) as refused:
        services.create_fund(terms(**overrides), actor=world["platform"])
    assert refused.value.field == field
    db.session.rollback()
    assert side_effects() == before


def test_only_the_operators_approvers_make_funds(world):
    from finance_app.accounts.states import Role
    from tests.financing.conftest import second_user
    officer = second_user(world["platform"], Role.OFFICER)
    for actor in (officer, world["bank_approver"]):
        with pytest.raises(Forbidden):
            services.create_fund(terms(), actor=actor)


def test_a_paused_fund_takes_no_claims_and_a_closed_one_nothing_more(world):
    fund = make_fund(world)
    loan = defaulted_loan(world)
    services.change_fund_status(fund.id, "pause", actor=world["platform"])
    db.session.commit()
    before = side_effects()
    with pytest.raises(Conflict) as refused:
        services.submit_claim(actor=world["bank"], fund_id=fund.id, loan_id=loan.id)
    assert refused.value.field == "fund_id"
    db.session.rollback()
    assert side_effects() == before
    services.change_fund_status(fund.id, FundAction.RESUME, actor=world["platform"])
    services.change_fund_status(fund.id, FundAction.CLOSE, actor=world["platform"],
                                note="Pilot over")
    db.session.commit()
    with pytest.raises(Conflict):
        services.submit_claim(actor=world["bank"], fund_id=fund.id, loan_id=loan.id)
    with pytest.raises(Conflict):
        services.top_up(fund.id, actor=world["platform"], amount="10.00")
    with pytest.raises(IllegalTransition):
        services.change_fund_status(fund.id, "resume", actor=world["platform"])
    assert [a for _, _, a in history("fund", fund.id)] == ["create", "pause", "resume", "close"]


# --------------------------------------------------------------------------- claims

def test_a_claim_is_share_times_principal_outstanding_rounded_down_and_converted(world):
    fund = make_fund(world, cap_per_loan="50000.00")
    loan = defaulted_loan(world, amount="6000.01")
    claim = claim_for(world, fund, loan)
    assert claim.status is ClaimStatus.SUBMITTED
    assert claim.principal_lost == Money(Decimal("6000.01"), "USD")
    # 50 % of 6,000.01 is 3,000.005: rounded down, never up
    assert claim.share_of_loss == Money(Decimal("3000.00"), "USD")
    # at the day's 7.1865 CNY a dollar
    assert claim.converted == claim.claimed == cny("21559.50")
    assert not claim.capped_by_loan_cap and "7.1865" in claim.fx_note
    assert history("claim", claim.id) == [(None, "submitted", "submit")]
    assert count(AuditEvent, AuditEvent.action == "compensation.claim_submit") == 1


def test_the_cap_per_loan_limits_a_claim(world):
    fund = make_fund(world, cap_per_loan="20000.00")
    claim = claim_for(world, fund, defaulted_loan(world))
    assert claim.converted == cny("21559.50")
    assert claim.claimed == cny("20000.00") and claim.capped_by_loan_cap


def test_a_fund_in_the_loans_currency_needs_no_rate(world):
    fund = make_fund(world, currency="USD", cap_per_loan="2000.00", budget="10000.00")
    claim = claim_for(world, fund, defaulted_loan(world))
    assert claim.claimed == Money(Decimal("2000.00"), "USD") and claim.fx_note is None


def test_refusals_name_the_field_and_change_nothing(world):
    fund = make_fund(world)
    current = disbursed_loan(world)
    theirs = defaulted_loan(world, bank="bank2")
    mine = defaulted_loan(world)
    only_bank2 = make_fund(world, name="Bank 2 only", bank_org_ids=(world["bank2"].org_id,))
    claim_for(world, fund, mine)
    before = side_effects()
    cases = [
        (dict(fund_id=fund.id, loan_id=current.id), ValidationFailed, "loan_id", "defaulted"),
        (dict(fund_id=fund.id, loan_id=theirs.id), ValidationFailed, "loan_id", "No loan"),
        (dict(fund_id=fund.id, loan_id=999999), ValidationFailed, "loan_id", "No loan"),
        (dict(fund_id=fund.id, loan_id=mine.id), Conflict, "loan_id", "already"),
        (dict(fund_id=999999, loan_id=mine.id), ValidationFailed, "fund_id", "fund"),
        # a fund that covers other banks only is not this bank's to see
        (dict(fund_id=only_bank2.id, loan_id=mine.id), ValidationFailed, "fund_id", "fund"),
    ]
    for kwargs, error, field, words in cases:
        with pytest.raises(error) as refused:
            services.submit_claim(actor=world["bank"], **kwargs)
        assert refused.value.field == field, kwargs
        assert words in refused.value.message, (kwargs, refused.value.message)
        db.session.rollback()
    assert side_effects() == before


def test_a_fund_in_a_currency_without_a_rate_is_refused_clearly(world):
    gbp = make_fund(world, currency="GBP")
    loan = defaulted_loan(world)
    before = side_effects()
    with pytest.raises(ValidationFailed) as refused:
        services.submit_claim(actor=world["bank"], fund_id=gbp.id, loan_id=loan.id)
    assert refused.value.field == "fund_id" and "USD/GBP" in refused.value.message
    db.session.rollback()
    assert side_effects() == before


def test_the_database_allows_one_live_claim_per_loan(world):
    fund = make_fund(world)
    first = claim_for(world, fund, defaulted_loan(world))
    values = {c.key: getattr(first, c.key) for c in first.__table__.columns if c.key != "id"}
    db.session.add(CompensationClaim(**values))
    with pytest.raises(IntegrityError):
        db.session.flush()
    db.session.rollback()
    services.withdraw_claim(first.id, actor=world["bank"])     # withdrawn: no longer live
    db.session.commit()
    again = claim_for(world, fund, _loan(first.loan_id))
    assert again.status is ClaimStatus.SUBMITTED and again.id != first.id


def _loan(loan_id):
    from finance_app.financing.models import Loan
    return db.session.get(Loan, loan_id)


# --------------------------------------------------------------------------- decisions

def test_approval_books_once_and_the_banks_confirmation_pays_the_claim(world):
    fund = make_fund(world)
    claim = claim_for(world, fund, defaulted_loan(world))
    services.approve_claim(claim.id, actor=world["platform"])
    db.session.commit()
    assert claim.status is ClaimStatus.APPROVED and claim.compensation == cny("20000.00")
    assert not claim.capped_by_budget
    booking = db.session.get(LedgerTransaction, claim.ledger_transaction_id)
    assert booking.kind == "compensation" and booking.idempotency_key == \
        f"compensation-claim-{claim.id}"
    record = db.session.get(SettlementRecord, claim.settlement_id)
    assert (record.obligation_kind, record.payer_org_id, record.payee_org_id, record.money,
            record.status) == (ObligationKind.COMPENSATION, world["platform"].org_id,
                               world["bank"].org_id, cny("20000.00"), SettlementStatus.PENDING)
    money = services.figures(fund)
    assert (money.remaining, money.approved, money.paid) == (
        cny("80000.00"), cny("20000.00"), cny("0.00"))
    assert money.reconciled
    # approving again is refused by name, and books nothing more
    with pytest.raises(IllegalTransition):
        services.approve_claim(claim.id, actor=world["platform"])
    db.session.rollback()
    assert count(LedgerTransaction, LedgerTransaction.kind == "compensation") == 1
    settlement.confirm_transfer(record.id, reference="PLAT-COMP-0001", actor=world["bank"])
    db.session.commit()
    db.session.refresh(claim)
    assert claim.status is ClaimStatus.PAID
    money = services.figures(fund)
    assert (money.remaining, money.approved, money.paid, money.payable) == (
        cny("80000.00"), cny("0.00"), cny("20000.00"), cny("0.00"))
    assert money.reconciled and services.reconcile() == {}
    assert [a for _, _, a in history("claim", claim.id)] == ["submit", "approve", "pay"]
    assert count(AuditEvent, AuditEvent.action.like("compensation.claim_%")) == 3


def test_the_last_of_the_budget_pays_what_is_left_and_says_so(world):
    fund = make_fund(world, budget="25000.00")
    first, second, third = (claim_for(world, fund, defaulted_loan(world)) for _ in range(3))
    services.approve_claim(first.id, actor=world["platform"])
    services.approve_claim(second.id, actor=world["platform"])
    db.session.commit()
    assert second.compensation == cny("5000.00") and second.capped_by_budget
    assert "remaining budget" in services.history("claim", second.id)[-1].note
    before = side_effects()
    with pytest.raises(Conflict) as refused:
        services.approve_claim(third.id, actor=world["platform"])
    assert "used up" in refused.value.message
    db.session.rollback()
    assert side_effects() == before and third.status is ClaimStatus.SUBMITTED
    money = services.figures(fund)
    assert money.remaining == cny("0.00") and money.spent == cny("25000.00")
    assert money.reconciled
    # a top-up lets the third through
    services.top_up(fund.id, actor=world["platform"], amount="30000.00")
    services.approve_claim(third.id, actor=world["platform"])
    db.session.commit()
    assert third.compensation == cny("20000.00")
    assert services.figures(fund).remaining == cny("10000.00")


def test_reconciliation_finds_a_budget_moved_outside_the_fund(world):
    fund = make_fund(world)
    available = accounts.fund_account(fund, accounts.AVAILABLE)
    stray = accounts.fund_account(fund, accounts.PAYABLE)
    ledger.book([ledger.debit(available, cny("100.00")), ledger.credit(stray, cny("100.00"))],
                key="stray", kind="manual", org_id=fund.operator_org_id)
    db.session.commit()
    problems = services.reconcile()[fund.id]
    assert any("remaining" in p for p in problems) and any("payable" in p for p in problems)


def test_rejection_needs_a_reason_and_frees_the_loan_for_a_new_claim(world):
    fund = make_fund(world)
    loan = defaulted_loan(world)
    claim = claim_for(world, fund, loan)
    with pytest.raises(ValidationFailed) as refused:
        services.reject_claim(claim.id, actor=world["platform"], reason=" ")
    assert refused.value.field == "reason"
    db.session.rollback()
    services.reject_claim(claim.id, actor=world["platform"], reason="Collateral not enforced")
    db.session.commit()
    assert claim.status is ClaimStatus.REJECTED and claim.reason == "Collateral not enforced"
    assert count(LedgerTransaction, LedgerTransaction.kind == "compensation") == 0
    assert claim_for(world, fund, loan).status is ClaimStatus.SUBMITTED


def test_only_the_claiming_bank_withdraws_and_only_before_a_decision(world):
    fund = make_fund(world)
    claim = claim_for(world, fund, defaulted_loan(world))
    with pytest.raises(NotFound):
        services.withdraw_claim(claim.id, actor=world["bank2"])
    with pytest.raises(Forbidden):
        services.approve_claim(claim.id, actor=world["bank_approver"])
    services.withdraw_claim(claim.id, actor=world["bank"])
    db.session.commit()
    with pytest.raises(IllegalTransition):
        services.approve_claim(claim.id, actor=world["platform"])


def test_every_illegal_transition_is_refused(world):
    fund = make_fund(world)
    claim = claim_for(world, fund, defaulted_loan(world))
    for record, statuses, actions, table in (
            (claim, ClaimStatus, ClaimAction, CLAIM_TRANSITIONS),
            (fund, FundStatus, FundAction, FUND_TRANSITIONS)):
        for status in statuses:
            for action in actions:
                if (status, action) in table:
                    continue
                with db.session.no_autoflush:
                    record.status = status
                    with pytest.raises(IllegalTransition):
                        record.apply(action, actor=world["platform"])
                    assert record.status is status and not [
                        o for o in db.session.new if isinstance(o, CompensationStatusChange)]
    db.session.rollback()
