"""Payments under real concurrency (PostgreSQL, threads released together): confirmations,
webhook deliveries, double clicks and outbox workers racing each other. Counted: ledger
transactions and entries, outbox messages, Stripe events and PaymentIntents at Stripe."""
from __future__ import annotations

import json
import time

import pytest
import stripe
from sqlalchemy import func, select

from finance_app import outbox
from finance_app.extensions import db
from finance_app.ledger.models import LedgerEntry, LedgerTransaction
from finance_app.outbox import OutboxMessage
from finance_app.settlement import services
from finance_app.settlement.models import SettlementRecord, StripeEvent
from finance_app.settlement.states import SettlementStatus
from tests.ledger.test_concurrency import run_together
from tests.settlement.builders import owed, start_card

pytestmark = pytest.mark.postgres


def count(model, *where) -> int:
    query = select(func.count()).select_from(model)
    for condition in where:
        query = query.where(condition)
    return db.session.execute(query).scalar_one()


def test_twenty_confirmations_of_one_transfer_book_once(app, parties):
    sme, bank, _ = parties
    record, _, _ = owed(sme, bank)
    record_id, bank_id = record.id, bank.id

    def confirm(n: int):
        from finance_app.accounts.models import User
        actor = db.session.get(User, bank_id)
        return services.confirm_transfer(record_id, reference="SWIFT-REF-778", actor=actor).status

    results, errors = run_together(app, confirm)
    assert errors == [] and set(results) == {SettlementStatus.PAID}
    assert count(LedgerTransaction) == 1 and count(LedgerEntry) == 2
    assert count(OutboxMessage, OutboxMessage.topic == "notify") == 3   # created + 2x paid


def test_twenty_double_clicks_on_pay_by_card_make_one_intent(app, parties, local_stripe):
    sme, bank, _ = parties
    record, _, _ = owed(sme, bank, key="clicks")
    record_id, sme_id = record.id, sme.id

    def click(n: int):
        from finance_app.accounts.models import User
        message = services.start_card_payment(record_id, actor=db.session.get(User, sme_id))
        message_id = message.id if message is not None else None
        db.session.commit()
        return outbox.deliver(message_id) if message_id is not None else None

    results, errors = run_together(app, click)
    assert errors == []
    assert count(OutboxMessage, OutboxMessage.topic == services.CREATE_INTENT) == 1
    assert len(local_stripe.intents(settlement_id=record_id)) == 1
    assert db.session.get(SettlementRecord, record_id).payment_intent_id


def test_twenty_workers_delivering_one_instruction_call_stripe_once(app, parties, local_stripe):
    sme, bank, _ = parties
    record, _, _ = owed(sme, bank, key="workers")
    message = services.start_card_payment(record.id, actor=sme)
    message_id, record_id = message.id, record.id
    db.session.commit()

    results, errors = run_together(app, lambda n: outbox.deliver(message_id))
    assert errors == []
    assert any(results)
    assert len(local_stripe.intents(settlement_id=record_id)) == 1
    assert db.session.get(OutboxMessage, message_id).attempts == 1


def test_twenty_deliveries_of_one_webhook_event_book_once(app, parties, local_stripe):
    sme, bank, _ = parties
    record, _, _ = owed(sme, bank, key="hooks")
    start_card(record, sme)
    db.session.refresh(record)
    payload = json.dumps({"id": "evt_burst", "object": "event", "type": "payment_intent.succeeded",
                          "created": int(time.time()), "data": {"object": {
                              "id": record.payment_intent_id, "object": "payment_intent",
                              "amount": record.amount, "currency": "usd", "status": "succeeded",
                              "metadata": {"settlement_id": str(record.id)}}}})
    header = stripe.WebhookSignature.generate_signature_header(
        payload, app.config["STRIPE_WEBHOOK_SECRET"], timestamp=int(time.time()))
    db.session.commit()

    def deliver(n: int):
        response = app.test_client().post("/stripe/webhook", data=payload,
                                          content_type="application/json",
                                          headers={"Stripe-Signature": header})
        return response.status_code, (response.get_json() or {}).get("outcome")

    results, errors = run_together(app, deliver)
    assert errors == []
    assert {status for status, _ in results} <= {200, 409}
    assert [outcome for _, outcome in results].count("booked") == 1
    assert count(StripeEvent) == 1 and count(LedgerTransaction) == 1 and count(LedgerEntry) == 2
    assert db.session.get(SettlementRecord, record.id).status is SettlementStatus.PAID
