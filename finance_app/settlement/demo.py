"""Demo payments: the platform's service fees to both SMEs, one paid by bank transfer, one
waiting for a card payment, one waiting for an RMB transfer; and the day's exchange rates
entered by the operator. Safe to run twice (fixed keys)."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select

from finance_app import clock
from finance_app.accounts.models import Organisation, User
from finance_app.extensions import db
from finance_app.ledger import rates
from finance_app.ledger.models import ExchangeRate
from finance_app.money import Money
from finance_app.settlement import services
from finance_app.settlement.states import SettlementStatus

DEMO_RATES = (("USD", "CNY", "7.1865"), ("EUR", "CNY", "7.7528"), ("BRL", "CNY", "1.2946"),
              ("MXN", "CNY", "0.3931"))


def seed_settlement(operator: User) -> str:
    today = clock.today()
    for base, quote, rate in DEMO_RATES:
        exists = db.session.execute(select(ExchangeRate.id).where(
            ExchangeRate.base == base, ExchangeRate.quote == quote,
            ExchangeRate.rate_date == today)).first()
        if not exists:
            rates.enter_rate(base, quote, Decimal(rate), today, actor=operator,
                             note="demo: the day's central parity")
    sme1, sme2 = (db.session.execute(select(Organisation).where(
        Organisation.contact_email == f"{key}@demo.test")).scalar_one() for key in ("sme1", "sme2"))
    fees = [
        (sme1, Money(Decimal("300.00"), "USD"), "Platform service fee, November 2026",
         "demo-fee-2026-11-sme1", "BOC-ZH-20261125-0311"),
        (sme2, Money(Decimal("180.00"), "EUR"), "Trade-evidence verification, 12 orders",
         "demo-fee-verify-sme2", None),
        (sme1, Money(Decimal("1200.00"), "CNY"), "Customs data service, Q4 2026",
         "demo-fee-q4-sme1", None),
    ]
    made = 0
    for payer, amount, description, key, reference in fees:
        record = services.invoice_fee(payer_org_id=payer.id, amount=amount,
                                      description=description, actor=operator, key=key,
                                      due_date=today + timedelta(days=14))
        made += 1
        if reference and record.status is SettlementStatus.PENDING:
            services.confirm_transfer(record.id, reference=reference, actor=operator)
    db.session.flush()
    return f"Demo payments: {made} platform fees (one paid by transfer), {len(DEMO_RATES)} rates."
