"""The demo's risk compensation fund: the platform operator's Zhuhai–Dongguan pilot zone
fund (CNY, 50 % of the principal lost, a cap per loan, a budget), and Dongguan Yuerong
Bank's claim for its defaulted loan to Dongguan Humen Trend Trading (in USD, so converted
at the day's rate), approved and paid."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select

from finance_app import clock
from finance_app.accounts.models import User
from finance_app.compensation import services
from finance_app.compensation.models import CompensationFund
from finance_app.extensions import db
from finance_app.settlement import services as settlement

FUND_NAME = "Zhuhai–Dongguan pilot zone risk compensation fund"


def seed_compensation(operator_user: User) -> str:
    if db.session.execute(select(CompensationFund.id).where(
            CompensationFund.name == FUND_NAME)).first():
        return "Demo compensation fund already there."
    today = clock.today()
    fund = services.create_fund(services.FundTerms(
        name=FUND_NAME, currency="CNY", share=Decimal("0.5"), cap_per_loan=Decimal("50000.00"),
        budget=Decimal("2000000.00"), start_date=today - timedelta(days=60),
        end_date=today + timedelta(days=305)), actor=operator_user)
    bank = db.session.execute(select(User).where(User.email == "bank2@demo.test")).scalar_one()
    loans = services.defaulted_loans(bank.org_id)
    if not loans:
        return f"Demo compensation: {FUND_NAME}, no defaulted loan to claim for."
    claim = services.submit_claim(actor=bank, fund_id=fund.id, loan_id=loans[0].id)
    services.approve_claim(claim.id, actor=operator_user)
    settlement.confirm_transfer(claim.settlement_id, reference="ZHCBEC-COMP-0001", actor=bank)
    db.session.flush()
    left = services.figures(fund).remaining
    return (f"Demo compensation: {FUND_NAME} ({fund.currency}, 50 %), loan {claim.loan_id} "
            f"of {bank.organisation.name_en} compensated {claim.compensation} "
            f"({claim.fx_note}); {left} left.")
