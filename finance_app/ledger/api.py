"""The ledger over the API: accounts and balances (now or as of a date), entries,
transactions and exchange rates. Amounts are strings in the currency's minor units
("1234.50", "500" for yen), never JSON numbers."""
from __future__ import annotations

from datetime import date

from flask.views import MethodView
from flask_login import current_user
from marshmallow import Schema, fields, validate

from finance_app import authz, clock
from finance_app.api.schemas import (
    ID, Amount, ApiBlueprint, ExactAmount, Text, UtcDateTime, documents_errors, idempotent,
    page_body,
)
from finance_app.errors import ValidationFailed
from finance_app.extensions import db
from finance_app.ledger import queries, rates
from finance_app.ledger import services as ledger
from finance_app.ledger.models import ExchangeRate
from finance_app.ledger.states import AccountType, EntryPhase, OwnerKind, RateSource, TransactionStatus
from finance_app.paging import paginate

blp = ApiBlueprint("ledger_api", __name__, url_prefix="/api/v1/ledger",
                   description="The double-entry ledger: accounts, balances, entries, "
                               "transactions and exchange rates")

CURRENCY = validate.Regexp(r"^[A-Z]{3}$", error="A three-letter ISO 4217 code, such as USD.")


class AccountSchema(Schema):
    id = fields.Integer(required=True)
    org_id = fields.Integer(allow_none=True, metadata={
        "description": "The organisation it is kept for; null: the platform's own"})
    owner_kind = fields.Enum(OwnerKind, by_value=True, required=True)
    owner_id = fields.Integer(allow_none=True)
    type = fields.Enum(AccountType, by_value=True, required=True)
    purpose = fields.String(required=True)
    currency = fields.String(required=True)
    name = fields.String(required=True)
    balance = ExactAmount(required=True, metadata={"description": "In the normal direction"})
    available = ExactAmount(required=True, metadata={
        "description": "The balance less holds going out (what a minimum is checked on)"})
    min_balance = ExactAmount(allow_none=True)
    entry_count = fields.Integer(required=True)
    created_at = UtcDateTime(required=True)


def _account(a) -> dict:
    return {"id": a.id, "org_id": a.org_id, "owner_kind": a.owner_kind,
            "owner_id": a.owner_id, "type": a.type, "purpose": a.purpose,
            "currency": a.currency, "name": a.name, "balance": a.balance_money.amount,
            "available": a.money(a.available).amount,
            "min_balance": a.money(a.min_balance).amount if a.min_balance is not None else None,
            "entry_count": a.entry_count, "created_at": a.created_at}


class _PageSchema(Schema):
    page = fields.Integer(required=True)
    per_page = fields.Integer(required=True)
    total = fields.Integer(required=True)


class AccountPageSchema(_PageSchema):
    items = fields.List(fields.Nested(AccountSchema), required=True)


class AccountQuerySchema(Schema):
    currency = fields.String(validate=CURRENCY)
    purpose = Text(validate=validate.Length(max=40))
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=100_000))


class BalanceQuerySchema(Schema):
    as_of = fields.Date(metadata={"description": "End of this value date; now if left out"})


class BalanceSchema(Schema):
    account_id = fields.Integer(required=True)
    currency = fields.String(required=True)
    balance = ExactAmount(required=True)
    as_of = fields.Date(allow_none=True)


class EntrySchema(Schema):
    id = fields.Integer(required=True)
    transaction_id = fields.Integer(required=True)
    account_id = fields.Integer(required=True)
    amount = ExactAmount(required=True, metadata={"description": "Debit positive, credit negative"})
    currency = fields.String(required=True)
    phase = fields.Enum(EntryPhase, by_value=True, required=True)
    value_date = fields.Date(required=True)
    sequence = fields.Integer(allow_none=True)
    balance_after = ExactAmount(allow_none=True, metadata={
        "description": "The account's balance after it (normal direction); null when the "
                       "account is another party's"})
    kind = fields.String(required=True)
    description = fields.String(required=True)


def _entry(entry, transaction, account, readable: bool = True) -> dict:
    return {"id": entry.id, "transaction_id": entry.transaction_id,
            "account_id": entry.account_id if readable else 0,
            "amount": entry.money.amount, "currency": entry.currency, "phase": entry.phase,
            "value_date": entry.value_date, "sequence": entry.sequence if readable else None,
            "balance_after": account.money(account.normal(entry.balance_after)).amount
            if readable and entry.balance_after is not None else None,
            "kind": transaction.kind, "description": transaction.description}


class EntryPageSchema(_PageSchema):
    items = fields.List(fields.Nested(EntrySchema), required=True)


class EntryQuerySchema(Schema):
    date_from = fields.Date()
    date_to = fields.Date()
    kind = Text(validate=validate.Length(max=40))
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=100_000))


class TransactionSchema(Schema):
    id = fields.Integer(required=True)
    kind = fields.String(required=True)
    status = fields.Enum(TransactionStatus, by_value=True, required=True)
    value_date = fields.Date(required=True)
    booked_at = UtcDateTime(required=True)
    description = fields.String(required=True)
    idempotency_key = fields.String(required=True)
    reverses_id = fields.Integer(allow_none=True)
    pending_id = fields.Integer(allow_none=True)
    reference_kind = fields.String(allow_none=True)
    reference_id = fields.Integer(allow_none=True)
    fx = fields.Dict(allow_none=True, metadata={"description": "A conversion's rate snapshot"})
    entries = fields.List(fields.Nested(EntrySchema), required=True)


def _transaction(t) -> dict:
    import json
    rows = queries.transaction_entries(t, current_user)
    return {"id": t.id, "kind": t.kind, "status": t.status, "value_date": t.value_date,
            "booked_at": t.booked_at, "description": t.description,
            "idempotency_key": t.idempotency_key, "reverses_id": t.reverses_id,
            "pending_id": t.pending_id, "reference_kind": t.reference_kind,
            "reference_id": t.reference_id, "fx": json.loads(t.fx) if t.fx else None,
            "entries": [_entry(e, t, a, readable) for e, a, readable in rows]}


class TransactionPageSchema(_PageSchema):
    items = fields.List(fields.Nested(TransactionSchema), required=True)


class TransactionQuerySchema(EntryQuerySchema):
    currency = fields.String(validate=CURRENCY)


class RateSchema(Schema):
    id = fields.Integer(required=True)
    base = fields.String(required=True)
    quote = fields.String(required=True)
    rate = Amount(required=True, metadata={"description": "1 base = rate quote"})
    rate_date = fields.Date(required=True)
    source = fields.Enum(RateSource, by_value=True, required=True)
    note = fields.String(allow_none=True)


class RatePageSchema(_PageSchema):
    items = fields.List(fields.Nested(RateSchema), required=True)


class RateQuerySchema(Schema):
    currency = fields.String(validate=CURRENCY, metadata={"description": "Either side"})
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=100_000))


DECIMAL_TEXT = validate.Regexp(r"^\d{1,20}(\.\d{1,20})?$",
                              error="A decimal number as a string, such as \"7.1865\".")


class RateInSchema(Schema):
    base = fields.String(required=True, validate=CURRENCY)
    quote = fields.String(required=True, validate=CURRENCY)
    rate = fields.String(required=True, validate=DECIMAL_TEXT, metadata={"example": "7.1865"})
    rate_date = fields.Date(required=True)
    note = Text(validate=validate.Length(max=200), allow_none=True)


class LookupQuerySchema(Schema):
    base = fields.String(required=True, validate=CURRENCY)
    quote = fields.String(required=True, validate=CURRENCY)
    on = fields.Date(metadata={"description": "The value date; today if left out"})


class LookupSchema(Schema):
    base = fields.String(required=True)
    quote = fields.String(required=True)
    rate = Amount(required=True)
    rate_date = fields.Date(required=True)
    source = fields.String(required=True)
    via = fields.String(allow_none=True)
    description = fields.String(required=True)


# --------------------------------------------------------------------------- endpoints

@blp.route("/accounts")
class Accounts(MethodView):
    @blp.arguments(AccountQuerySchema, location="query")
    @blp.response(200, AccountPageSchema)
    @documents_errors(blp, 422)
    @authz.allow(authz.MEMBER)
    def get(self, args):
        """Your organisation's accounts (the platform operator: every account), 50 a page."""
        page = queries.accounts(current_user, queries.AccountFilters(
            currency=args.get("currency"), purpose=args.get("purpose")), page=args["page"])
        return page_body(page, [_account(a) for a in page.items])


@blp.route(f"/accounts/<{ID}:account_id>")
class AccountDetail(MethodView):
    @blp.response(200, AccountSchema)
    @documents_errors(blp, 404)
    @authz.allow(authz.MEMBER)
    def get(self, account_id: int):
        """One account with its balance and what is available."""
        return _account(queries.get_account(account_id, actor=current_user))


@blp.route(f"/accounts/<{ID}:account_id>/balance")
class AccountBalance(MethodView):
    @blp.arguments(BalanceQuerySchema, location="query")
    @blp.response(200, BalanceSchema)
    @documents_errors(blp, 404, 422)
    @authz.allow(authz.MEMBER)
    def get(self, args, account_id: int):
        """The account's balance now, or at the end of a past value date."""
        account = queries.get_account(account_id, actor=current_user)
        as_of = args.get("as_of")
        if as_of is not None and as_of > clock.today():
            raise ValidationFailed("The date is in the future.", field="as_of")
        return {"account_id": account.id, "currency": account.currency, "as_of": as_of,
                "balance": ledger.balance(account, as_of=as_of).amount}


@blp.route(f"/accounts/<{ID}:account_id>/entries")
class AccountEntries(MethodView):
    @blp.arguments(EntryQuerySchema, location="query")
    @blp.response(200, EntryPageSchema)
    @documents_errors(blp, 404, 422)
    @authz.allow(authz.MEMBER)
    def get(self, args, account_id: int):
        """The account's posted entries, newest first, 50 a page."""
        account = queries.get_account(account_id, actor=current_user)
        page = queries.entries(account, queries.EntryFilters(
            date_from=args.get("date_from"), date_to=args.get("date_to"),
            kind=args.get("kind")), page=args["page"])
        return page_body(page, [_entry(e, t, account) for e, t in page.items])


@blp.route("/transactions")
class Transactions(MethodView):
    @blp.arguments(TransactionQuerySchema, location="query")
    @blp.response(200, TransactionPageSchema)
    @documents_errors(blp, 422)
    @authz.allow(authz.MEMBER)
    def get(self, args):
        """Transactions touching your accounts (the operator: all), newest first."""
        page = queries.transactions(current_user, queries.TransactionFilters(
            date_from=args.get("date_from"), date_to=args.get("date_to"),
            kind=args.get("kind"), currency=args.get("currency")), page=args["page"])
        return page_body(page, [_transaction(t) for t in page.items])


@blp.route(f"/transactions/<{ID}:transaction_id>")
class TransactionDetail(MethodView):
    @blp.response(200, TransactionSchema)
    @documents_errors(blp, 404)
    @authz.allow(authz.MEMBER)
    def get(self, transaction_id: int):
        """One transaction with its entries (another party's side shows its amount only)."""
        return _transaction(queries.get_transaction(transaction_id, actor=current_user))


@blp.route("/rates")
class Rates(MethodView):
    @blp.arguments(RateQuerySchema, location="query")
    @blp.response(200, RatePageSchema)
    @documents_errors(blp, 422)
    @authz.allow(authz.MEMBER)
    def get(self, args):
        """Stored exchange rates, newest first."""
        from sqlalchemy import or_, select
        query = select(ExchangeRate).order_by(ExchangeRate.rate_date.desc(), ExchangeRate.id)
        if args.get("currency"):
            query = query.where(or_(ExchangeRate.base == args["currency"],
                                    ExchangeRate.quote == args["currency"]))
        page = paginate(query, args["page"])
        return page_body(page)

    @blp.arguments(RateInSchema)
    @blp.response(201, RateSchema)
    @documents_errors(blp, 400, 409, 413, 415, 422)
    @idempotent(blp)
    @authz.allow(authz.OPERATOR_DECIDER)
    def post(self, data):
        """The platform operator's own rate for a day (it overrides the published rates of
        that day); entering it again replaces the operator's earlier entry."""
        from decimal import Decimal
        row = rates.enter_rate(data["base"], data["quote"], Decimal(data["rate"]),
                               data["rate_date"],
                               actor=current_user, note=data.get("note"))
        db.session.flush()
        return row


@blp.route("/rates/lookup")
class RateLookup(MethodView):
    @blp.arguments(LookupQuerySchema, location="query")
    @blp.response(200, LookupSchema)
    @documents_errors(blp, 422)
    @authz.allow(authz.MEMBER)
    def get(self, args):
        """The rate a conversion on that value date would use: that day's, or the latest
        earlier one, directly or crossed through CNY or EUR."""
        on: date = args.get("on") or clock.today()
        quote = rates.find_rate(args["base"], args["quote"], on)
        return {"base": quote.base, "quote": quote.quote, "rate": quote.rate,
                "rate_date": quote.rate_date, "source": str(quote.source), "via": quote.via,
                "description": quote.description}
