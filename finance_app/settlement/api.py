"""Payments over the API: what an organisation owes and is owed, confirming a bank
transfer, paying by card (start it, then send the card token Stripe.js made), the
platform's fees, payouts of card payments and the reconciliation report."""
from __future__ import annotations

import re
from decimal import Decimal

from flask import current_app
from flask.views import MethodView
from flask_login import current_user
from marshmallow import Schema, fields, validate
from sqlalchemy import or_

from finance_app import authz, outbox
from finance_app.accounts.states import OrgKind
from finance_app.api.schemas import (
    ID, ApiBlueprint, ExactAmount, Text, UtcDateTime, documents_errors, idempotent, page_body,
)
from finance_app.errors import ValidationFailed
from finance_app.extensions import db
from finance_app.money import Money
from finance_app.paging import paginate
from finance_app.settlement import reconciliation, services
from finance_app.settlement.models import SettlementRecord
from finance_app.settlement.states import ObligationKind, SettlementMethod, SettlementStatus

blp = ApiBlueprint("settlement_api", __name__, url_prefix="/api/v1/settlement",
                   description="Settlement: payments between organisations, by bank "
                               "transfer or card, and their ledger bookings")

AMOUNT_TEXT = validate.Regexp(r"^\d{1,15}(\.\d{1,3})?$",
                              error="An amount as a string, such as \"1234.50\".")


class RecordSchema(Schema):
    id = fields.Integer(required=True)
    kind = fields.Enum(ObligationKind, by_value=True, required=True,
                       attribute="obligation_kind")
    reference = fields.String(allow_none=True, attribute="obligation_ref")
    description = fields.String(required=True)
    payer_org_id = fields.Integer(required=True)
    payee_org_id = fields.Integer(required=True)
    amount = ExactAmount(required=True)
    currency = fields.String(required=True)
    value_date = fields.Date(required=True)
    method = fields.Enum(SettlementMethod, by_value=True, required=True)
    cross_border_rmb = fields.Boolean(required=True)
    status = fields.Enum(SettlementStatus, by_value=True, required=True)
    bank_reference = fields.String(allow_none=True)
    payment_intent_id = fields.String(allow_none=True)
    card_status = fields.String(allow_none=True)
    failure_reason = fields.String(allow_none=True)
    ledger_transaction_id = fields.Integer(allow_none=True)
    remittance_transaction_id = fields.Integer(allow_none=True)
    remittance_reference = fields.String(allow_none=True)
    created_at = UtcDateTime(required=True)
    paid_at = UtcDateTime(allow_none=True)
    remitted_at = UtcDateTime(allow_none=True)


def _record(record: SettlementRecord) -> dict:
    data = {c.key: getattr(record, c.key) for c in record.__table__.columns}
    data["amount"] = record.money.amount
    return data


class RecordPageSchema(Schema):
    page = fields.Integer(required=True)
    per_page = fields.Integer(required=True)
    total = fields.Integer(required=True)
    items = fields.List(fields.Nested(RecordSchema), required=True)


class RecordQuerySchema(Schema):
    status = fields.Enum(SettlementStatus, by_value=True)
    side = fields.String(validate=validate.OneOf(["pay", "receive"]), metadata={
        "description": "pay: what you owe; receive: what you are owed"})
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=100_000))


class ConfirmSchema(Schema):
    reference = Text(required=True, validate=validate.Length(min=4, max=80))
    value_date = fields.Date(allow_none=True)


class CancelSchema(Schema):
    reason = Text(required=True, validate=validate.Length(min=1, max=500))


class RemitSchema(Schema):
    reference = Text(required=True, validate=validate.Length(min=4, max=80))


class CardStartSchema(Schema):
    record_id = fields.Integer(required=True)
    payment_intent_id = fields.String(required=True)
    client_secret = fields.String(required=True, metadata={
        "description": "For Stripe.js in the payer's browser"})
    publishable_key = fields.String(allow_none=True)


class CardTokenSchema(Schema):
    token = fields.String(required=True, validate=validate.Regexp(r"^tok_[A-Za-z0-9_]{4,200}$"),
                          metadata={"description": "A card token from Stripe.js createToken"})


class CardResultSchema(Schema):
    status = fields.String(required=True, metadata={
        "description": "Stripe's PaymentIntent status: succeeded, requires_action (finish "
                       "3-D Secure with the client secret), processing, ..."})
    client_secret = fields.String(allow_none=True)
    record = fields.Nested(RecordSchema, required=True)


class FeeSchema(Schema):
    payer_org_id = fields.Integer(required=True, validate=validate.Range(min=1, max=2**31 - 1))
    amount = fields.String(required=True, validate=AMOUNT_TEXT)
    currency = fields.String(required=True, validate=validate.Regexp(r"^[A-Z]{3}$"))
    description = Text(required=True, validate=validate.Length(min=1, max=300))
    due_date = fields.Date(allow_none=True)
    key = Text(required=True, validate=validate.Length(min=1, max=100), metadata={
        "description": "Your reference for this fee: the same key charges it once"})


class BreakSchema(Schema):
    area = fields.String(required=True)
    subject = fields.String(required=True)
    problem = fields.String(required=True)
    link = fields.String(allow_none=True)


class ClearingSchema(Schema):
    account_id = fields.Integer(required=True)
    name = fields.String(required=True)
    currency = fields.String(required=True)
    balance = ExactAmount(required=True)
    explained = ExactAmount(required=True)
    difference = ExactAmount(required=True)


class ReconciliationSchema(Schema):
    breaks = fields.List(fields.Nested(BreakSchema), required=True)
    clearing = fields.List(fields.Nested(ClearingSchema), required=True)
    pending_instructions = fields.Integer(required=True)


# --------------------------------------------------------------------------- endpoints

@blp.route("/records")
class Records(MethodView):
    @blp.arguments(RecordQuerySchema, location="query")
    @blp.response(200, RecordPageSchema)
    @documents_errors(blp, 422)
    @authz.allow(authz.MEMBER)
    def get(self, args):
        """Payments your organisation makes or receives (the operator: all), newest first."""
        from sqlalchemy import select
        query = select(SettlementRecord)
        if current_user.organisation.kind is not OrgKind.PLATFORM_OPERATOR:
            query = query.where(or_(SettlementRecord.payer_org_id == current_user.org_id,
                                    SettlementRecord.payee_org_id == current_user.org_id))
        if args.get("status"):
            query = query.where(SettlementRecord.status == args["status"])
        if args.get("side") == "pay":
            query = query.where(SettlementRecord.payer_org_id == current_user.org_id)
        elif args.get("side") == "receive":
            query = query.where(SettlementRecord.payee_org_id == current_user.org_id)
        page = paginate(query.order_by(SettlementRecord.id.desc()), args["page"])
        return page_body(page, [_record(r) for r in page.items])


@blp.route(f"/records/<{ID}:record_id>")
class RecordDetail(MethodView):
    @blp.response(200, RecordSchema)
    @documents_errors(blp, 404)
    @authz.allow(authz.MEMBER)
    def get(self, record_id: int):
        """One payment."""
        return _record(services.get_record(record_id, actor=current_user))


@blp.route(f"/records/<{ID}:record_id>/confirm")
class Confirm(MethodView):
    @blp.arguments(ConfirmSchema)
    @blp.response(200, RecordSchema)
    @documents_errors(blp, 400, 404, 409, 413, 415, 422)
    @idempotent(blp)
    @authz.allow(authz.MEMBER)
    def post(self, data, record_id: int):
        """The payee confirms that a bank transfer arrived, with its reference; the payment
        is booked. The same reference again changes nothing."""
        return _record(services.confirm_transfer(record_id, reference=data["reference"],
                                                 value_date=data.get("value_date"),
                                                 actor=current_user))


@blp.route(f"/records/<{ID}:record_id>/cancel")
class Cancel(MethodView):
    @blp.arguments(CancelSchema)
    @blp.response(200, RecordSchema)
    @documents_errors(blp, 400, 404, 409, 413, 415, 422)
    @idempotent(blp)
    @authz.allow(authz.MEMBER)
    def post(self, data, record_id: int):
        """Cancel an unpaid payment (the payee, or the platform operator)."""
        return _record(services.cancel(record_id, reason=data["reason"], actor=current_user))


@blp.route(f"/records/<{ID}:record_id>/card-payment")
class CardStart(MethodView):
    @blp.response(201, CardStartSchema)
    @documents_errors(blp, 404, 409, 422, 502, 503)
    @idempotent(blp)
    @authz.allow(authz.MEMBER)
    def post(self, record_id: int):
        """Start paying by card: the PaymentIntent is created at Stripe (once, whatever
        the retries) and its client secret returned for Stripe.js. 503 when Stripe cannot
        be reached: nothing was charged or booked; try again."""
        message = services.start_card_payment(record_id, actor=current_user)
        message_id = message.id if message is not None else None
        db.session.commit()
        if message_id is not None and not outbox.deliver(message_id):
            from flask_babel import gettext

            from finance_app.api import idempotency
            from finance_app.settlement.stripe_gateway import GatewayUnavailable
            idempotency.abandon()
            raise GatewayUnavailable(gettext(
                "The card payment service cannot be reached right now; nothing has been "
                "charged or booked. Try again in a few minutes."))
        record = services.get_record(record_id, actor=current_user)
        return {"record_id": record.id, "payment_intent_id": record.payment_intent_id,
                "client_secret": services.client_secret(record),
                "publishable_key": current_app.config.get("STRIPE_PUBLISHABLE_KEY")}


@blp.route(f"/records/<{ID}:record_id>/card-payment/pay")
class CardPay(MethodView):
    @blp.arguments(CardTokenSchema)
    @blp.response(200, CardResultSchema)
    @documents_errors(blp, 400, 404, 409, 413, 415, 422, 502, 503)
    @idempotent(blp)
    @authz.allow(authz.MEMBER)
    def post(self, data, record_id: int):
        """Charge the card token: 200 with Stripe's status (succeeded: booked now), or 422
        ``card_refused`` when the bank declined it (try another card)."""
        from finance_app.settlement.stripe_gateway import CardRefused
        try:
            intent = services.pay_with_card(record_id, token=data["token"], actor=current_user)
        except CardRefused:
            db.session.commit()    # the refusal is kept on the record
            outbox.deliver_new()   # a fresh PaymentIntent for the next card
            raise
        record = services.get_record(record_id, actor=current_user)
        return {"status": intent.status, "record": _record(record),
                "client_secret": intent.client_secret
                if intent.status == "requires_action" else None}


@blp.route(f"/records/<{ID}:record_id>/remit")
class Remit(MethodView):
    @blp.arguments(RemitSchema)
    @blp.response(200, RecordSchema)
    @documents_errors(blp, 400, 404, 409, 413, 415, 422)
    @idempotent(blp)
    @authz.allow(authz.OPERATOR_DECIDER)
    def post(self, data, record_id: int):
        """Record Stripe's payout of a card payment to its payee (books clearing to payee)."""
        return _record(services.record_remittance(record_id, reference=data["reference"],
                                                  actor=current_user))


@blp.route("/fees")
class Fees(MethodView):
    @blp.arguments(FeeSchema)
    @blp.response(201, RecordSchema)
    @documents_errors(blp, 400, 409, 413, 415, 422)
    @idempotent(blp)
    @authz.allow(authz.OPERATOR)
    def post(self, data):
        """The platform operator charges an organisation a service fee (booked as earned,
        and a payment to make)."""
        if not re.fullmatch(r"[A-Z]{3}", data["currency"]):
            raise ValidationFailed("A three-letter ISO 4217 code.", field="currency")
        amount = Money.of(Decimal(data["amount"]), data["currency"])
        return _record(services.invoice_fee(
            payer_org_id=data["payer_org_id"], amount=amount, description=data["description"],
            due_date=data.get("due_date"), actor=current_user, key=data["key"]))


@blp.route("/reconciliation")
class Reconciliation(MethodView):
    @blp.response(200, ReconciliationSchema)
    @documents_errors(blp)
    @authz.allow(authz.OPERATOR)
    def get(self):
        """Breaks between the business records and the ledger, and the clearing accounts
        with what explains their balances."""
        return {"breaks": [b.__dict__ for b in reconciliation.breaks()],
                "clearing": [{"account_id": r.account.id, "name": r.account.name,
                              "currency": r.account.currency, "balance": r.balance.amount,
                              "explained": r.explained.amount,
                              "difference": r.difference.amount}
                             for r in reconciliation.clearing()],
                "pending_instructions": reconciliation.pending_outbox()}
