"""Stripe's webhook, through the HTTP endpoint: payloads signed with the SDK's own helper
(``stripe.WebhookSignature.generate_signature_header``) with the configured secret.
Replays, duplicates and out-of-order events change nothing more; bad or stale
signatures get 400 and change nothing."""
from __future__ import annotations

import json
import time

import pytest
import stripe
from sqlalchemy import func, select

from finance_app.extensions import db
from finance_app.ledger.models import LedgerEntry, LedgerTransaction
from finance_app.settlement.models import SettlementRecord, StripeEvent
from finance_app.settlement.states import SettlementStatus
from tests.settlement.builders import owed, start_card

SECRET = "whsec_test_local"


def count(model) -> int:
    return db.session.execute(select(func.count()).select_from(model)).scalar_one()


def event(kind: str, record: SettlementRecord, *, event_id: str, amount: int | None = None,
          created: int | None = None, failure: str | None = None) -> bytes:
    intent = {"id": record.payment_intent_id, "object": "payment_intent",
              "amount": amount if amount is not None else record.amount,
              "currency": record.currency.lower(),
              "status": "succeeded" if kind.endswith("succeeded") else "requires_payment_method",
              "metadata": {"settlement_id": str(record.id), "attempt": str(record.attempt)}}
    if failure:
        intent["last_payment_error"] = {"code": "card_declined", "message": failure}
    return json.dumps({"id": event_id, "object": "event", "type": kind, "api_version": None,
                       "created": created or int(time.time()),
                       "data": {"object": intent}}).encode()


def post(client, payload: bytes, *, secret: str = SECRET, timestamp: int | None = None,
         header: str | None = None):
    if header is None:
        header = stripe.WebhookSignature.generate_signature_header(
            payload.decode(), secret, timestamp=timestamp or int(time.time()))
    return client.post("/stripe/webhook", data=payload, content_type="application/json",
                       headers={"Stripe-Signature": header})


@pytest.fixture
def card_record(parties, local_stripe):
    sme, bank, _ = parties
    record, _, _ = owed(sme, bank, key="hook")
    start_card(record, sme)
    db.session.refresh(record)
    assert record.payment_intent_id
    return record


def test_succeeded_books_once_however_often_it_arrives(client, card_record):
    payload = event("payment_intent.succeeded", card_record, event_id="evt_1")
    first = post(client, payload)
    assert first.status_code == 200 and first.get_json()["outcome"] == "booked"
    db.session.refresh(card_record)
    assert card_record.status is SettlementStatus.PAID
    assert post(client, payload).get_json()["outcome"] == "duplicate"          # a replay
    other = event("payment_intent.succeeded", card_record, event_id="evt_2")   # a resend
    assert post(client, other).get_json()["outcome"] == "already paid"
    assert count(LedgerTransaction) == 1 and count(LedgerEntry) == 2
    assert count(StripeEvent) == 2


def test_a_failure_after_success_changes_nothing(client, card_record):
    post(client, event("payment_intent.succeeded", card_record, event_id="evt_ok"))
    late = post(client, event("payment_intent.payment_failed", card_record, event_id="evt_late",
                              failure="Your card was declined."))
    assert late.status_code == 200 and late.get_json()["outcome"].startswith("ignored")
    db.session.refresh(card_record)
    assert card_record.status is SettlementStatus.PAID and count(LedgerEntry) == 2


def test_a_failure_then_a_success_ends_paid(client, card_record):
    failed = post(client, event("payment_intent.payment_failed", card_record,
                                event_id="evt_f", failure="Insufficient funds."))
    assert failed.get_json()["outcome"] == "failed"
    db.session.refresh(card_record)
    assert card_record.status is SettlementStatus.FAILED
    assert card_record.failure_reason == "Insufficient funds."
    assert count(LedgerTransaction) == 0
    paid = post(client, event("payment_intent.succeeded", card_record, event_id="evt_s"))
    assert paid.get_json()["outcome"] == "booked"
    db.session.refresh(card_record)
    assert card_record.status is SettlementStatus.PAID and count(LedgerEntry) == 2


def test_a_wrong_amount_is_not_booked(client, card_record):
    response = post(client, event("payment_intent.succeeded", card_record, event_id="evt_w",
                                  amount=card_record.amount - 1))
    assert response.get_json()["outcome"].startswith("amount mismatch")
    assert count(LedgerTransaction) == 0


@pytest.mark.parametrize("case", ["other secret", "stale", "garbled", "missing", "tampered"])
def test_bad_signatures_are_refused_and_change_nothing(client, card_record, case):
    payload = event("payment_intent.succeeded", card_record, event_id="evt_bad")
    if case == "other secret":
        response = post(client, payload, secret="whsec_someone_else")
    elif case == "stale":
        response = post(client, payload, timestamp=int(time.time()) - 3600)
    elif case == "garbled":
        response = post(client, payload, header="t=1,v1=nonsense")
    elif case == "missing":
        response = client.post("/stripe/webhook", data=payload,
                               content_type="application/json")
    else:
        header = stripe.WebhookSignature.generate_signature_header(
            payload.decode(), SECRET, timestamp=int(time.time()))
        response = post(client, payload.replace(b'"amount": ', b'"amount": 1'), header=header)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "bad_signature"
    db.session.refresh(card_record)
    assert card_record.status is SettlementStatus.PENDING
    assert count(StripeEvent) == 0 and count(LedgerTransaction) == 0


def test_other_events_are_acknowledged_and_ignored(client, card_record):
    payload = json.dumps({"id": "evt_c", "object": "event", "type": "customer.created",
                          "created": int(time.time()),
                          "data": {"object": {"id": "cus_1", "object": "customer"}}}).encode()
    assert post(client, payload).get_json()["outcome"] == "ignored"
    assert count(LedgerTransaction) == 0


def test_a_body_that_is_not_an_event_is_refused(client, card_record):
    response = post(client, b"not json at all")
    assert response.status_code == 400 and count(StripeEvent) == 0
