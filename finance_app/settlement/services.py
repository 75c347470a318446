"""Settlement records: who pays whom, how, and the ledger booking when it is paid.

Every obligation that moves money (a disbursement, a repayment, a premium, a claim, a
fee) gets a ``SettlementRecord`` from the domain that owes it. The record names the two
ledger accounts its payment books: the money arrives in ``debit_account`` (the payee's
side) and settles ``credit_account`` (the obligation). Paying it:

* **bank transfer**: the receiving party enters the transfer's reference; that books the
  payment (``confirm_transfer``);
* **card** (Stripe, for foreign-currency payments): ``start_card_payment`` queues the
  PaymentIntent's creation in the outbox, in the same transaction as the record's change;
  the payer's browser tokenises the card with Stripe.js and ``pay_with_card`` confirms the
  PaymentIntent with it. Only Stripe's word that the money was taken (the webhook
  ``payment_intent.succeeded``, or the PaymentIntent read back as succeeded) books it:
  into the platform's Stripe clearing account, and from there to the payee when Stripe
  pays the platform out (``record_remittance``).

Each booking has one ledger idempotency key per record and purpose, so whichever path
books first, nothing books twice. Records are locked while they change; services never
commit.
"""
from __future__ import annotations

import calendar
import hashlib
import json
import re
from datetime import date
from typing import Any, Callable

from flask_babel import gettext
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from finance_app import authz, clock, outbox
from finance_app.accounts.models import Organisation, User
from finance_app.accounts.notifications import notify
from finance_app.accounts.states import FilingStatus, OrgKind
from finance_app.audit import services as audit
from finance_app.errors import Conflict, NotFound, ValidationFailed
from finance_app.extensions import db
from finance_app.ledger import services as ledger
from finance_app.ledger.models import LedgerAccount, LedgerTransaction
from finance_app.money import Money, minor_units
from finance_app.settlement import accounts, stripe_gateway
from finance_app.settlement.models import (
    SettlementRecord, SettlementStatusChange, StripeCustomer, StripeEvent,
)
from finance_app.settlement.states import (
    SETTLEMENT_TRANSITIONS, ObligationKind, SettlementAction, SettlementMethod,
    SettlementStatus,
)
from finance_app.states import next_status

# What owns an obligation hears when it is paid or cancelled: handlers by the prefix of
# ``obligation_ref`` ("repayment:12" goes to the "repayment" handler), called in the same
# database transaction as the change.
SettledHandler = Callable[[SettlementRecord, "User | None"], None]
_ON_PAID: dict[str, SettledHandler] = {}
_ON_CANCELLED: dict[str, SettledHandler] = {}


def on_paid(prefix: str) -> Callable[[SettledHandler], SettledHandler]:
    def register(fn: SettledHandler) -> SettledHandler:
        _ON_PAID[prefix] = fn
        return fn
    return register


def on_cancelled(prefix: str) -> Callable[[SettledHandler], SettledHandler]:
    def register(fn: SettledHandler) -> SettledHandler:
        _ON_CANCELLED[prefix] = fn
        return fn
    return register


def _tell_owner(handlers: dict[str, SettledHandler], record: SettlementRecord,
                actor: User | None) -> None:
    prefix = (record.obligation_ref or "").split(":", 1)[0]
    handler = handlers.get(prefix)
    if handler is not None:
        handler(record, actor)


CREATE_INTENT = "stripe.create_payment_intent"
CANCEL_INTENT = "stripe.cancel_payment_intent"
REFERENCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 /._-]{3,79}$")
# Card payments in RMB are for cross-border RMB only; mainland RMB goes by bank transfer.
CARD_NEEDS_CROSS_BORDER = frozenset({"CNY"})


# --------------------------------------------------------------------------- records

def get_record(record_id: int, *, actor: User | None = None, lock: bool = False
               ) -> SettlementRecord:
    query = select(SettlementRecord).where(SettlementRecord.id == record_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    record = db.session.execute(query).scalar_one_or_none()
    if record is None:
        raise NotFound("settlement", record_id)
    if actor is not None:
        authz.require(actor, "settlement.read", record)
    return record


def _transition(record: SettlementRecord, action: SettlementAction, *, actor: User | None,
                note: str | None = None) -> None:
    before = record.status
    record.status = next_status(SETTLEMENT_TRANSITIONS, before, action, what="payment")
    db.session.add(SettlementStatusChange(record_id=record.id, from_status=before.value,
                                          to_status=record.status.value, action=action.value,
                                          actor_id=actor.id if actor else None,
                                          note=(note or None) and note[:500], at=clock.now()))
    audit.record(f"settlement.{action.value}", actor=actor,
                 org_id=actor.org_id if actor else record.payee_org_id, obj=record,
                 changes={"status": [before.value, record.status.value],
                          **({"note": note} if note else {})})


def _organisation(org_id: int, field: str) -> Organisation:
    org = db.session.get(Organisation, org_id)
    if org is None:
        raise ValidationFailed(gettext("No organisation with that id."), field=field)
    return org


def _content(**values: Any) -> str:
    return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()


def create_record(kind: ObligationKind, *, payer_org_id: int, payee_org_id: int,
                  amount: Money, debit_account: LedgerAccount, credit_account: LedgerAccount,
                  key: str, description: str = "", reference: str | None = None,
                  value_date: date | None = None,
                  method: SettlementMethod = SettlementMethod.BANK_TRANSFER,
                  cross_border_rmb: bool = False, actor: User | None = None
                  ) -> SettlementRecord:
    """A pending obligation for ``payer`` to pay ``payee``; the same ``key`` for the same
    payer returns the record already made (refused if its content differs)."""
    if not key or len(key) > 200:
        raise ValidationFailed(gettext("An idempotency key of 1 to 200 characters is "
                                       "required."), field="idempotency_key")
    if not isinstance(amount, Money):
        raise TypeError("settlement amounts are Money")
    if amount.amount <= 0:
        raise ValidationFailed(gettext("The amount must be greater than zero."), field="amount")
    try:
        units = amount.to_minor()
    except ValueError:
        raise ValidationFailed(gettext("%(currency)s amounts have at most %(n)s decimal "
                                       "places.", currency=amount.currency,
                                       n=minor_units(amount.currency)), field="amount") from None
    if payer_org_id == payee_org_id:
        raise ValidationFailed(gettext("The payer and the payee must be different "
                                       "organisations."), field="payee_org_id")
    _organisation(payer_org_id, "payer_org_id")
    _organisation(payee_org_id, "payee_org_id")
    for account, field in ((debit_account, "debit_account"), (credit_account, "credit_account")):
        if account.currency != amount.currency:
            raise ValidationFailed(gettext(
                "Account %(id)s holds %(currency)s, not %(other)s.", id=account.id,
                currency=account.currency, other=amount.currency), field=field)
    if debit_account.id == credit_account.id:
        raise ValidationFailed(gettext("A payment needs two different accounts."),
                               field="credit_account")
    value_date = value_date or clock.today()
    fingerprint = _content(kind=kind, payee=payee_org_id, amount=units,
                           currency=amount.currency, debit=debit_account.id,
                           credit=credit_account.id, reference=reference,
                           method=method, cross_border_rmb=cross_border_rmb)
    existing = _by_key(payer_org_id, key)
    if existing is not None:
        return _same_or_refuse(existing, fingerprint, key)
    record = SettlementRecord(
        obligation_kind=kind, obligation_ref=reference, description=description[:300],
        payer_org_id=payer_org_id, payee_org_id=payee_org_id, amount=units,
        currency=amount.currency, value_date=value_date, method=method,
        cross_border_rmb=cross_border_rmb, status=SettlementStatus.PENDING,
        debit_account_id=debit_account.id, credit_account_id=credit_account.id,
        idempotency_key=key, request_hash=fingerprint, attempt=1, created_by_id=actor.id if actor else None,
        created_at=clock.now())
    try:
        with db.session.begin_nested():
            db.session.add(record)
            db.session.flush()
    except IntegrityError:
        existing = _by_key(payer_org_id, key)
        if existing is None:
            raise
        return _same_or_refuse(existing, fingerprint, key)
    db.session.add(SettlementStatusChange(record_id=record.id, from_status=None,
                                          to_status=record.status.value, action="create",
                                          actor_id=actor.id if actor else None,
                                          note=description[:500] or None, at=clock.now()))
    audit.record("settlement.created", actor=actor,
                 org_id=actor.org_id if actor else payee_org_id, obj=record,
                 changes={"kind": kind.value, "payer_org_id": payer_org_id,
                          "payee_org_id": payee_org_id, "amount": str(amount.amount),
                          "currency": amount.currency, "method": method.value,
                          "reference": reference})
    payer, payee = db.session.get(Organisation, payer_org_id), db.session.get(Organisation,
                                                                              payee_org_id)
    notify(payer_org_id, "settlement.created", dedupe_key=f"settlement:{record.id}:created",
           link=f"/settlement/{record.id}", payer=payer.name, payee=payee.name,
           amount=str(amount), description=description or kind.value)
    return record


def _by_key(payer_org_id: int, key: str) -> SettlementRecord | None:
    return db.session.execute(select(SettlementRecord).where(
        SettlementRecord.payer_org_id == payer_org_id,
        SettlementRecord.idempotency_key == key)).scalar_one_or_none()


def _same_or_refuse(record: SettlementRecord, fingerprint: str, key: str) -> SettlementRecord:
    if record.request_hash != fingerprint:
        raise Conflict(gettext("The idempotency key %(key)s was already used for a "
                               "different payment.", key=key), field="idempotency_key",
                       code="idempotency_key_reused")
    return record


def _book_payment(record: SettlementRecord, *, arrives_in: LedgerAccount, actor: User | None,
                  value_date: date | None = None) -> LedgerTransaction:
    money = record.money
    return ledger.book(
        [ledger.debit(arrives_in, money), ledger.credit(record.credit_account_id, money)],
        key=f"settlement-{record.id}-payment", kind=f"settlement_{record.obligation_kind.value}",
        value_date=value_date, actor=actor, reference=("settlement", record.id),
        description=record.description or f"Settlement {record.id}")


def _paid(record: SettlementRecord, transaction: LedgerTransaction, *, actor: User | None,
          note: str | None) -> None:
    _transition(record, SettlementAction.CONFIRM, actor=actor, note=note)
    record.ledger_transaction_id = transaction.id
    record.paid_at = clock.now()
    _tell_owner(_ON_PAID, record, actor)
    payer = db.session.get(Organisation, record.payer_org_id)
    for org_id in (record.payer_org_id, record.payee_org_id):
        notify(org_id, "settlement.paid", dedupe_key=f"settlement:{record.id}:paid:{org_id}",
               link=f"/settlement/{record.id}", amount=str(record.money), payer=payer.name,
               description=record.description or record.obligation_kind.value)


# --------------------------------------------------------------------------- bank transfer

def _reference(value: str | None, field: str = "reference") -> str:
    value = (value or "").strip()
    if not REFERENCE.match(value):
        raise ValidationFailed(gettext("Enter the bank transfer's reference: 4 to 80 letters, "
                                       "digits, spaces or / . _ -."), field=field)
    return value


def confirm_transfer(record_id: int, *, reference: str, actor: User,
                     value_date: date | None = None) -> SettlementRecord:
    """The payee confirms that the bank transfer arrived, naming its reference; this books
    the payment. Confirming again with the same reference changes nothing."""
    reference = _reference(reference)
    record = get_record(record_id, actor=actor, lock=True)
    authz.require(actor, "settlement.confirm", record, hide=False)
    if record.status is SettlementStatus.PAID and record.bank_reference == reference \
            and record.method is SettlementMethod.BANK_TRANSFER:
        return record
    if record.method is SettlementMethod.CARD and record.payment_intent_id:
        raise Conflict(gettext("This payment is being made by card; it is confirmed by the "
                               "card payment, not by a bank transfer."), field="reference")
    if value_date is not None and value_date > clock.today():
        raise ValidationFailed(gettext("The value date %(date)s is in the future.",
                                       date=value_date.isoformat()), field="value_date")
    next_status(SETTLEMENT_TRANSITIONS, record.status, SettlementAction.CONFIRM, what="payment")
    transaction = _book_payment(record, arrives_in=db.session.get(LedgerAccount,
                                                                  record.debit_account_id),
                                actor=actor, value_date=value_date)
    record.method = SettlementMethod.BANK_TRANSFER
    record.bank_reference = reference
    _paid(record, transaction, actor=actor, note=reference)
    return record


def record_sent_transfer(kind: ObligationKind, *, payee_org_id: int, amount: Money,
                         debit_account: LedgerAccount, credit_account: LedgerAccount,
                         key: str, reference: str, actor: User, description: str = "",
                         obligation_ref: str | None = None) -> SettlementRecord:
    """The payer records a bank transfer it has made (a bank disbursing a loan): the record
    is made and paid at once, booking the payment. The same key and reference again
    return the same record."""
    reference = _reference(reference)
    record = create_record(kind, payer_org_id=actor.org_id, payee_org_id=payee_org_id,
                           amount=amount, debit_account=debit_account,
                           credit_account=credit_account, key=key, description=description,
                           reference=obligation_ref, actor=actor)
    record = get_record(record.id, actor=actor, lock=True)
    authz.require(actor, "settlement.pay", record, hide=False)
    if record.status is SettlementStatus.PAID:
        if record.bank_reference != reference:
            raise Conflict(gettext("This payment was recorded with the reference "
                                   "%(reference)s.", reference=record.bank_reference),
                           field="reference")
        return record
    next_status(SETTLEMENT_TRANSITIONS, record.status, SettlementAction.CONFIRM, what="payment")
    transaction = _book_payment(record, arrives_in=db.session.get(LedgerAccount,
                                                                  record.debit_account_id),
                                actor=actor)
    record.bank_reference = reference
    _paid(record, transaction, actor=actor, note=reference)
    return record


def withdraw_obligation(record_id: int, *, actor: User | None, reason: str
                        ) -> SettlementRecord:
    """The domain that raised the obligation ended it (a declaration cancelled, so its
    premium is not owed): the record is cancelled without the payee's action, and a card
    payment under way is cancelled at Stripe through the outbox. A paid record cannot be."""
    record = get_record(record_id, lock=True)
    if record.status is SettlementStatus.CANCELLED:
        return record
    if record.status is SettlementStatus.PAID:
        raise Conflict(gettext("This payment has been made; it cannot be withdrawn."),
                       code="already_paid")
    _transition(record, SettlementAction.CANCEL, actor=actor, note=(reason or "")[:500])
    if record.payment_intent_id:
        outbox.enqueue(CANCEL_INTENT, {"record_id": record.id,
                                       "payment_intent_id": record.payment_intent_id},
                       dedupe_key=f"stripe.cancel:{record.payment_intent_id}")
    return record


def cancel(record_id: int, *, actor: User, reason: str) -> SettlementRecord:
    """Cancel an unpaid obligation (the payee, or the platform operator); a card payment
    under way is cancelled at Stripe through the outbox."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed(gettext("Say why the payment is cancelled."), field="reason")
    record = get_record(record_id, actor=actor, lock=True)
    authz.require(actor, "settlement.cancel", record, hide=False)
    if record.status is SettlementStatus.CANCELLED:
        return record
    _transition(record, SettlementAction.CANCEL, actor=actor, note=reason[:500])
    _tell_owner(_ON_CANCELLED, record, actor)
    if record.payment_intent_id:
        outbox.enqueue(CANCEL_INTENT, {"record_id": record.id,
                                       "payment_intent_id": record.payment_intent_id},
                       dedupe_key=f"stripe.cancel:{record.payment_intent_id}")
    notify(record.payer_org_id, "settlement.cancelled",
           dedupe_key=f"settlement:{record.id}:cancelled", link=f"/settlement/{record.id}",
           amount=str(record.money), description=record.description or reason)
    return record


# --------------------------------------------------------------------------- card

def card_allowed(record: SettlementRecord) -> str | None:
    """Why this record cannot be paid by card, or None."""
    if record.currency in CARD_NEEDS_CROSS_BORDER and not record.cross_border_rmb:
        return gettext("RMB payments within the mainland go by bank transfer.")
    try:
        stripe_gateway.to_stripe_amount(record.money)
    except ValidationFailed as exc:
        return exc.message
    return None


def start_card_payment(record_id: int, *, actor: User) -> outbox.OutboxMessage | None:
    """Start paying by card: queue the PaymentIntent's creation (delivered after commit).
    None when the record already has its PaymentIntent."""
    record = get_record(record_id, actor=actor, lock=True)
    authz.require(actor, "settlement.pay", record, hide=False)
    refusal = card_allowed(record)
    if refusal:
        raise ValidationFailed(refusal, field="method")
    if record.status is SettlementStatus.FAILED:
        _transition(record, SettlementAction.RETRY, actor=actor, note="card")
    elif record.status is not SettlementStatus.PENDING:
        next_status(SETTLEMENT_TRANSITIONS, record.status, SettlementAction.RETRY,
                    what="payment")
    if record.method is not SettlementMethod.CARD:
        record.method = SettlementMethod.CARD
        audit.record("settlement.card_started", actor=actor, obj=record,
                     changes={"method": [SettlementMethod.BANK_TRANSFER.value,
                                         SettlementMethod.CARD.value]})
    if record.payment_intent_id:
        return None
    return outbox.enqueue(CREATE_INTENT, {"record_id": record.id, "attempt": record.attempt},
                          dedupe_key=f"stripe.pi:{record.id}:{record.attempt}")


@outbox.handler(CREATE_INTENT)
def _create_intent(payload: dict) -> None:
    record = get_record(payload["record_id"], lock=True)
    if record.payment_intent_id or record.status is not SettlementStatus.PENDING:
        return
    try:
        intent = stripe_gateway.create_payment_intent(
            record.money, idempotency_key=f"settlement-{record.id}-attempt-{payload['attempt']}",
            metadata={"settlement_id": record.id, "attempt": payload["attempt"]},
            description=record.description or f"Settlement {record.id}")
    except stripe_gateway.GatewayUnavailable as exc:
        raise outbox.RetryLater(exc.message) from None
    record.payment_intent_id, record.card_status = intent.id, intent.status
    audit.record("settlement.payment_intent_created", obj=record, org_id=record.payer_org_id,
                 changes={"payment_intent_id": intent.id})


@outbox.handler(CANCEL_INTENT)
def _cancel_intent(payload: dict) -> None:
    try:
        intent = stripe_gateway.cancel_payment_intent(
            payload["payment_intent_id"], idempotency_key=f"cancel-{payload['payment_intent_id']}")
    except stripe_gateway.GatewayUnavailable as exc:
        raise outbox.RetryLater(exc.message) from None
    record = get_record(payload["record_id"], lock=True)
    if intent is not None and record.payment_intent_id == payload["payment_intent_id"]:
        record.card_status = intent.status


def client_secret(record: SettlementRecord) -> str | None:
    """The PaymentIntent's client secret, read from Stripe (never stored)."""
    if not record.payment_intent_id:
        return None
    return stripe_gateway.retrieve_payment_intent(record.payment_intent_id).client_secret


def _customer(org: Organisation) -> str:
    found = db.session.execute(select(StripeCustomer).where(
        StripeCustomer.org_id == org.id)).scalar_one_or_none()
    if found is not None:
        return found.customer_id
    customer_id = stripe_gateway.create_customer(name=org.name, org_id=org.id,
                                                 email=org.contact_email)
    try:
        with db.session.begin_nested():
            db.session.add(StripeCustomer(org_id=org.id, customer_id=customer_id,
                                          created_at=clock.now()))
    except IntegrityError:
        pass   # made at the same moment by another request (same idempotency key)
    return customer_id


def pay_with_card(record_id: int, *, token: str, actor: User) -> stripe_gateway.Intent:
    """Charge the card tokenised in the payer's browser. Books nothing unless Stripe says
    the money was taken; a refused card leaves the record pending, to try another."""
    token = (token or "").strip()
    if not re.fullmatch(r"tok_[A-Za-z0-9_]{4,200}", token):
        raise ValidationFailed(gettext("The card details did not reach the card payment "
                                       "service; enter them again."), field="token")
    record = get_record(record_id, actor=actor, lock=True)
    authz.require(actor, "settlement.pay", record, hide=False)
    if record.status is SettlementStatus.PAID:
        raise Conflict(gettext("This payment has been made already."), field="token")
    if record.status is not SettlementStatus.PENDING or not record.payment_intent_id:
        raise Conflict(gettext("Start the card payment first."), field="token")
    customer = _customer(actor.organisation)
    record.last_attempt_at = clock.now()
    try:
        intent = stripe_gateway.pay_with_card_token(
            record.payment_intent_id, customer_id=customer, token=token,
            idempotency_key=f"settlement-{record.id}-{token}")
    except stripe_gateway.CardRefused as exc:
        record.failure_reason = exc.message[:500]
        audit.record("settlement.card_refused", actor=actor, obj=record,
                     changes={"reason": exc.message, "payment_intent_id": record.payment_intent_id})
        _next_attempt(record)
        raise
    record.card_status = intent.status
    if intent.status == "succeeded":
        apply_intent(record, intent, actor=actor)
    return intent


def _next_attempt(record: SettlementRecord) -> None:
    """After a refused card: the PaymentIntent is cancelled (it can never charge) and a
    fresh one queued for the next card, both through the outbox. The caller commits and
    delivers them (``outbox.deliver_new``)."""
    old = record.payment_intent_id
    record.payment_intent_id, record.card_status = None, None
    record.attempt += 1
    if old:
        outbox.enqueue(CANCEL_INTENT, {"record_id": record.id, "payment_intent_id": old},
                       dedupe_key=f"stripe.cancel:{old}")
    outbox.enqueue(CREATE_INTENT, {"record_id": record.id, "attempt": record.attempt},
                   dedupe_key=f"stripe.pi:{record.id}:{record.attempt}")


def refresh_card_payment(record_id: int, *, actor: User) -> SettlementRecord:
    """Read the PaymentIntent back from Stripe and apply what it says (after 3-D Secure in
    the browser, or when a webhook is late)."""
    record = get_record(record_id, actor=actor, lock=True)
    if not record.payment_intent_id:
        return record
    intent = stripe_gateway.retrieve_payment_intent(record.payment_intent_id)
    record.card_status = intent.status
    if intent.status == "succeeded":
        apply_intent(record, intent, actor=actor)
    elif intent.status == "requires_payment_method" and intent.failure:
        record.failure_reason = intent.failure[:500]
        _next_attempt(record)
    return record


def apply_intent(record: SettlementRecord, intent: stripe_gateway.Intent, *,
                 actor: User | None = None) -> str:
    """A succeeded PaymentIntent books the payment once (the record locked by the caller);
    returns what happened, in a few words."""
    if intent.currency != record.currency or intent.amount != stripe_gateway.to_stripe_amount(
            record.money):
        return f"amount mismatch: {intent.amount} {intent.currency}"
    if record.status is SettlementStatus.PAID:
        return "already paid"
    if record.status is SettlementStatus.CANCELLED:
        audit.record("settlement.paid_after_cancel", obj=record, org_id=record.payee_org_id,
                     changes={"payment_intent_id": intent.id})
        operator = db.session.execute(select(Organisation.id).where(
            Organisation.kind == OrgKind.PLATFORM_OPERATOR,
            Organisation.filing_status == FilingStatus.APPROVED)).scalars().first()
        if operator is not None:
            notify(operator, "settlement.refund_needed",
                   dedupe_key=f"settlement:{record.id}:refund", link=f"/settlement/{record.id}",
                   amount=str(record.money), record=record.id)
        return "paid after cancellation: refund needed"
    transaction = _book_payment(record, arrives_in=accounts.stripe_clearing(record.currency),
                                actor=actor)
    record.card_status = "succeeded"
    _paid(record, transaction, actor=actor, note=intent.id)
    return "booked"


# --------------------------------------------------------------------------- webhooks

def handle_stripe_event(event: dict) -> str:
    """Handle a verified Stripe event exactly once (its id is unique: a replay or a
    duplicate changes nothing); returns the outcome, also stored with the event."""
    event_id, kind = str(event.get("id") or ""), str(event.get("type") or "")
    if not event_id:
        raise ValidationFailed(gettext("The event has no id."), field="id")
    obj = (event.get("data") or {}).get("object") or {}
    intent_id = obj.get("id") if obj.get("object") == "payment_intent" else None
    row = StripeEvent(event_id=event_id, type=kind[:100], payment_intent_id=intent_id,
                      outcome="received", received_at=clock.now())
    try:
        with db.session.begin_nested():
            db.session.add(row)
            db.session.flush()
    except IntegrityError:
        return "duplicate"
    if kind not in ("payment_intent.succeeded", "payment_intent.payment_failed") \
            or intent_id is None:
        row.outcome = "ignored"
        return row.outcome
    record = _record_for(intent_id, obj)
    if record is None:
        row.outcome = "no settlement record for this payment"
        return row.outcome
    row.settlement_id = record.id
    intent = stripe_gateway.Intent(
        id=intent_id, status=str(obj.get("status") or ""), amount=int(obj.get("amount") or 0),
        currency=str(obj.get("currency") or "").upper(), client_secret=None,
        metadata=dict(obj.get("metadata") or {}),
        failure=((obj.get("last_payment_error") or {}).get("message")))
    if kind == "payment_intent.succeeded":
        row.outcome = apply_intent(record, intent)
    else:
        row.outcome = _apply_failure(record, intent, created=event.get("created"))
    return row.outcome


def _record_for(intent_id: str, obj: dict) -> SettlementRecord | None:
    record = db.session.execute(
        select(SettlementRecord).where(SettlementRecord.payment_intent_id == intent_id)
        .with_for_update().execution_options(populate_existing=True)).scalar_one_or_none()
    if record is not None:
        return record
    # The PaymentIntent was made but its id not yet stored (the outbox's commit was lost):
    # its metadata names the record, and the record adopts it.
    try:
        record_id = int((obj.get("metadata") or {}).get("settlement_id"))
    except (TypeError, ValueError):
        return None
    record = db.session.execute(
        select(SettlementRecord).where(SettlementRecord.id == record_id)
        .with_for_update().execution_options(populate_existing=True)).scalar_one_or_none()
    if record is None or record.payment_intent_id not in (None, intent_id):
        return None
    record.payment_intent_id = intent_id
    return record


def _apply_failure(record: SettlementRecord, intent: stripe_gateway.Intent, *,
                   created: Any) -> str:
    if record.status is not SettlementStatus.PENDING:
        return f"ignored: the payment is {record.status.value}"
    if record.last_attempt_at is not None and isinstance(created, int) \
            and created < calendar.timegm(record.last_attempt_at.timetuple()) - 1:
        return "ignored: older than the latest attempt"
    reason = intent.failure or gettext("The card payment failed.")
    record.failure_reason = reason[:500]
    record.card_status = intent.status or "requires_payment_method"
    _transition(record, SettlementAction.FAIL, actor=None, note=reason[:500])
    notify(record.payer_org_id, "settlement.card_failed",
           dedupe_key=f"settlement:{record.id}:failed:{intent.id}:{created}",
           link=f"/settlement/{record.id}", amount=str(record.money), reason=reason)
    return "failed"


# --------------------------------------------------------------------------- remittance

def record_remittance(record_id: int, *, reference: str, actor: User) -> SettlementRecord:
    """Stripe paid a card payment out: the money leaves the clearing account for the
    payee's side. The same reference again changes nothing."""
    reference = _reference(reference)
    record = get_record(record_id, actor=actor, lock=True)
    authz.require(actor, "settlement.remit", record, hide=False)
    if record.remittance_transaction_id is not None:
        if record.remittance_reference == reference:
            return record
        raise Conflict(gettext("This payment has been passed on already (reference "
                               "%(reference)s).", reference=record.remittance_reference),
                       field="reference")
    if not record.awaiting_remittance:
        raise Conflict(gettext("Only a card payment that has been paid is passed on."),
                       field="reference")
    money = record.money
    transaction = ledger.book(
        [ledger.debit(record.debit_account_id, money),
         ledger.credit(accounts.stripe_clearing(record.currency), money)],
        key=f"settlement-{record.id}-remittance", kind="settlement_remittance", actor=actor,
        reference=("settlement", record.id),
        description=f"Card payment {record.payment_intent_id} paid out: {reference}")
    record.remittance_transaction_id = transaction.id
    record.remittance_reference, record.remitted_at = reference, clock.now()
    audit.record("settlement.remitted", actor=actor, obj=record,
                 changes={"reference": reference, "transaction_id": transaction.id})
    return record


# --------------------------------------------------------------------------- fees

def invoice_fee(*, payer_org_id: int, amount: Money, description: str, actor: User,
                key: str, due_date: date | None = None) -> SettlementRecord:
    """The platform charges an organisation a service fee: the fee is earned now (booked
    to the organisation's fee account) and a settlement record says it is to be paid."""
    authz.require(actor, "settlement.invoice_fee", None, hide=False)
    description = (description or "").strip()
    if not description:
        raise ValidationFailed(gettext("Describe the fee."), field="description")
    payer = _organisation(payer_org_id, "payer_org_id")
    if payer.kind is OrgKind.PLATFORM_OPERATOR:
        raise ValidationFailed(gettext("The platform does not charge itself fees."),
                               field="payer_org_id")
    if not isinstance(amount, Money) or amount.amount <= 0:
        raise ValidationFailed(gettext("The amount must be greater than zero."), field="amount")
    if due_date is not None and due_date < clock.today():
        raise ValidationFailed(gettext("The due date cannot be in the past."),
                               field="due_date")
    due = accounts.fees_due(payer.id, amount.currency)
    existing = _by_key(payer.id, f"fee:{key}")
    if existing is None:
        ledger.book([ledger.debit(due, amount),
                     ledger.credit(accounts.fee_income(amount.currency), amount)],
                    key=f"fee-{payer.id}-{key}", kind="fee_invoiced", actor=actor,
                    description=description[:500])
    return create_record(ObligationKind.FEE, payer_org_id=payer.id,
                         payee_org_id=actor.org_id, amount=amount,
                         debit_account=accounts.platform_bank(amount.currency),
                         credit_account=due, key=f"fee:{key}", description=description,
                         value_date=due_date or clock.today(), actor=actor)
