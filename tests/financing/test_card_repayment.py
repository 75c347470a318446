"""Repaying a loan online: the PaymentIntent is made through the outbox at the local
Stripe server, the card is charged, and Stripe's signed webhook (replayed twice) applies
the repayment once; the loan closes and its collateral is released."""
from __future__ import annotations

import json
import time

import stripe
from sqlalchemy import func, select

from finance_app import outbox
from finance_app.collateral.models import Encumbrance
from finance_app.collateral.states import EncumbranceStatus
from finance_app.extensions import db
from finance_app.financing import loans, queries
from finance_app.financing.models import Allocation
from finance_app.financing.states import LoanStatus, RepaymentStatus
from finance_app.ledger.models import LedgerTransaction
from finance_app.settlement import services as settlement
from finance_app.settlement.models import SettlementRecord
from tests.financing.conftest import make_product, offer, receivable, request_for


def count(model, *where) -> int:
    query = select(func.count()).select_from(model)
    for condition in where:
        query = query.where(condition)
    return db.session.execute(query).scalar_one()


def test_a_card_repayment_through_stripe_closes_the_loan_once(app, client, world,
                                                               local_stripe):
    product = make_product(world["bank"])
    rec = receivable("B2B-CARD", amount="10000.00")
    request = request_for(world, [product], [("receivable", rec.id)], amount="4000.00")
    decision = offer(world, request, "bank", amount="4000.00")
    loan = loans.accept_offer(decision.id, actor=world["sme"])
    db.session.commit()
    loans.disburse(loan.id, actor=world["bank"], reference="HX-DISB-CARD")
    db.session.commit()
    owed = loans.position(loan).total
    repayment = loans.start_repayment(loan.id, actor=world["sme"], amount=owed,
                                      method="card", key="card-full")
    db.session.commit()
    assert outbox.deliver_new() >= 1                # the PaymentIntent is created at Stripe
    record = db.session.get(SettlementRecord, repayment.settlement_record_id)
    db.session.refresh(record)
    intents = local_stripe.intents(settlement_id=record.id)
    assert len(intents) == 1 and intents[0].amount == owed.to_minor()
    assert repayment.status is RepaymentStatus.PENDING, "nothing applied before the money"

    intent = settlement.pay_with_card(record.id, token=local_stripe.card_token(),
                                      actor=world["sme"])
    db.session.commit()
    assert intent.status == "succeeded"
    db.session.refresh(repayment)
    db.session.refresh(loan)
    assert repayment.status is RepaymentStatus.APPLIED and loan.status is LoanStatus.REPAID
    assert count(Encumbrance, Encumbrance.status == EncumbranceStatus.ACTIVE) == 0

    # Stripe's webhook for the same payment, twice: nothing more happens
    payload = json.dumps({
        "id": "evt_card_full", "object": "event", "type": "payment_intent.succeeded",
        "api_version": None, "created": int(time.time()),
        "data": {"object": {"id": record.payment_intent_id, "object": "payment_intent",
                            "amount": record.amount, "currency": record.currency.lower(),
                            "status": "succeeded",
                            "metadata": {"settlement_id": str(record.id)}}}}).encode()
    allocations = count(Allocation)
    for _ in range(2):
        header = stripe.WebhookSignature.generate_signature_header(
            payload.decode(), app.config["STRIPE_WEBHOOK_SECRET"], timestamp=int(time.time()))
        answer = client.post("/stripe/webhook", data=payload, content_type="application/json",
                             headers={"Stripe-Signature": header})
        assert answer.status_code == 200
    assert count(Allocation) == allocations
    assert count(LedgerTransaction, LedgerTransaction.kind == "loan_repayment") == 1
    assert [r.status for r in queries.repayments(loan)] == [RepaymentStatus.APPLIED]
