"""A compensation world: the financing world (an SME, two banks with an officer and an
approver each, the platform operator with an officer-approver, USD/CNY and EUR/CNY rates
for today), defaulted loans made through the real financing flow, and funds."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from finance_app import clock
from finance_app.compensation import services
from finance_app.extensions import db
from finance_app.financing import loans
from finance_app.financing.states import LoanAction
from tests.financing.conftest import (  # noqa: F401  (world: the fixture)
    make_product, offer, receivable, request_for, world,
)

_loans = {"n": 0}


def disbursed_loan(world, amount: str = "6000.00", bank: str = "bank"):
    product = world.get(f"_{bank}_product")
    if product is None:
        product = world[f"_{bank}_product"] = make_product(world[bank])
    _loans["n"] += 1
    rec = receivable(f"B2B-{bank}-{_loans['n']}-{clock.now():%H%M%S%f}", amount="10000.00",
                     days=200)
    request = request_for(world, [product], [("receivable", rec.id)], amount=amount, tenor=90)
    decision = offer(world, request, bank, amount=amount)
    loan = loans.accept_offer(decision.id, actor=world["sme"])
    loans.disburse(loan.id, actor=world[bank], reference=f"DISB-{loan.id:06d}")
    db.session.commit()
    return loan


def defaulted_loan(world, amount: str = "6000.00", bank: str = "bank"):
    """A disbursed loan gone overdue and defaulted, its principal all outstanding."""
    loan = disbursed_loan(world, amount, bank)
    loan = loans.get_loan(loan.id, lock=True)
    loan.apply(LoanAction.FALL_OVERDUE)
    loan.apply(LoanAction.DEFAULT)
    db.session.commit()
    return loan


def terms(**overrides) -> services.FundTerms:
    values = dict(name="Pilot zone risk compensation fund", currency="CNY", share="0.5",
                  cap_per_loan="20000.00", budget="100000.00",
                  start_date=clock.today() - timedelta(days=30),
                  end_date=clock.today() + timedelta(days=335))
    values.update(overrides)
    return services.FundTerms(**values)


def make_fund(world, **overrides):
    fund = services.create_fund(terms(**overrides), actor=world["platform"])
    db.session.commit()
    return fund


def claim_for(world, fund, loan, bank: str = "bank"):
    claim = services.submit_claim(actor=world[bank], fund_id=fund.id, loan_id=loan.id)
    db.session.commit()
    return claim


D = Decimal
