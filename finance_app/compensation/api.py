"""The risk compensation fund over the API: funds (make, read, top up, pause, resume,
close), claims (a bank files and withdraws; the operator's approvers approve or reject).
Amounts are decimal strings; the share of principal lost is a fraction ("0.5" is 50 %)."""
from __future__ import annotations

from decimal import Decimal

from flask.views import MethodView
from flask_login import current_user
from marshmallow import Schema, fields, validate

from finance_app import authz
from finance_app.api.schemas import ID, ApiBlueprint, ExactAmount, Text, UtcDateTime
from finance_app.api.schemas import documents_errors, idempotent
from finance_app.compensation import services
from finance_app.compensation.states import ClaimStatus, FundStatus
from finance_app.financing.states import ProductKind

blp = ApiBlueprint("compensation_api", __name__, url_prefix="/api/v1/compensation",
                   description="The risk compensation fund: funds, their budgets and banks' "
                               "claims for defaulted loans")

AMOUNT = validate.Regexp(r"^\d{1,15}(\.\d{1,3})?$",
                         error="An amount as a string, such as \"1234.50\".")
FRACTION = validate.Regexp(r"^\d{1,3}(\.\d{1,6})?$",
                           error="A fraction as a string, such as \"0.5\".")
CURRENCY = validate.Regexp(r"^[A-Z]{3}$", error="A three-letter ISO 4217 code.")
ORG_ID = validate.Range(min=1, max=2**31 - 1)
WRITE = (400, 404, 409, 413, 415, 422)


class FractionText(fields.String):
    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else f"{Decimal(value).normalize():f}"


# --------------------------------------------------------------------------- schemas

class FundSchema(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    operator_org_id = fields.Integer(required=True)
    status = fields.Enum(FundStatus, by_value=True, required=True)
    currency = fields.String(required=True)
    share = FractionText(required=True, metadata={"description": "0.5 is 50 % of the "
                                                                 "principal lost"})
    cap_per_loan = ExactAmount(required=True)
    start_date = fields.Date(required=True)
    end_date = fields.Date(required=True)
    bank_org_ids = fields.List(fields.Integer(), required=True,
                               metadata={"description": "empty: every bank"})
    product_kinds = fields.List(fields.String(), required=True,
                                metadata={"description": "empty: every kind of financing"})
    budget = ExactAmount(required=True)
    approved = ExactAmount(required=True, metadata={"description": "approved, not yet paid"})
    paid = ExactAmount(required=True)
    remaining = ExactAmount(required=True)
    reconciled = fields.Boolean(required=True, metadata={
        "description": "remaining = budget - approved - paid, and the ledger agrees"})
    created_at = UtcDateTime(required=True)


def _fund(fund) -> dict:
    data = {c.key: getattr(fund, c.key) for c in fund.__table__.columns}
    money = services.figures(fund)
    data.update(cap_per_loan=fund.cap_per_loan.amount, bank_org_ids=fund.bank_org_ids,
                product_kinds=fund.kinds, budget=money.budget.amount,
                approved=money.approved.amount, paid=money.paid.amount,
                remaining=money.remaining.amount, reconciled=money.reconciled)
    return data


class FundInSchema(Schema):
    name = Text(required=True, validate=validate.Length(min=1, max=200))
    currency = fields.String(required=True, validate=CURRENCY)
    share = fields.String(required=True, validate=FRACTION)
    cap_per_loan = fields.String(required=True, validate=AMOUNT)
    budget = fields.String(required=True, validate=AMOUNT)
    start_date = fields.Date(required=True)
    end_date = fields.Date(required=True)
    bank_org_ids = fields.List(fields.Integer(validate=ORG_ID), load_default=list,
                               validate=validate.Length(max=50))
    product_kinds = fields.List(fields.Enum(ProductKind, by_value=True), load_default=list,
                                validate=validate.Length(max=10))


class TopUpInSchema(Schema):
    amount = fields.String(required=True, validate=AMOUNT)
    note = Text(validate=validate.Length(max=500), allow_none=True)


class TopUpSchema(Schema):
    id = fields.Integer(required=True)
    fund_id = fields.Integer(required=True)
    currency = fields.String(required=True)
    amount = ExactAmount(required=True)
    ledger_transaction_id = fields.Integer(required=True)
    note = fields.String(allow_none=True)
    created_at = UtcDateTime(required=True)


def _top_up(top_up) -> dict:
    data = {c.key: getattr(top_up, c.key) for c in top_up.__table__.columns}
    data["amount"] = top_up.money.amount
    return data


class FundActionSchema(Schema):
    action = fields.String(required=True, validate=validate.OneOf(["pause", "resume", "close"]))
    note = Text(validate=validate.Length(max=1000), allow_none=True)


class CompensationClaimSchema(Schema):
    id = fields.Integer(required=True)
    fund_id = fields.Integer(required=True)
    loan_id = fields.Integer(required=True)
    bank_org_id = fields.Integer(required=True)
    sme_org_id = fields.Integer(required=True)
    status = fields.Enum(ClaimStatus, by_value=True, required=True)
    loan_currency = fields.String(required=True)
    principal_lost = ExactAmount(required=True, metadata={
        "description": "the loan's principal outstanding when claimed, its currency"})
    share = FractionText(required=True)
    share_of_loss = ExactAmount(required=True, metadata={
        "description": "share x principal lost, rounded down, in the loan's currency"})
    currency = fields.String(required=True, metadata={"description": "the fund's"})
    converted = ExactAmount(required=True)
    fx_note = fields.String(allow_none=True)
    claimed = ExactAmount(required=True, metadata={"description": "within the cap per loan"})
    capped_by_loan_cap = fields.Boolean(required=True)
    compensation = ExactAmount(allow_none=True, metadata={"description": "set on approval"})
    capped_by_budget = fields.Boolean(required=True)
    ledger_transaction_id = fields.Integer(allow_none=True)
    settlement_id = fields.Integer(allow_none=True)
    filed_on = fields.Date(required=True)
    reason = fields.String(allow_none=True)
    created_at = UtcDateTime(required=True)


def _claim(claim) -> dict:
    data = {c.key: getattr(claim, c.key) for c in claim.__table__.columns}
    data.update(principal_lost=claim.principal_lost.amount,
                share_of_loss=claim.share_of_loss.amount, converted=claim.converted.amount,
                claimed=claim.claimed.amount,
                compensation=claim.compensation.amount if claim.compensation else None)
    return data


class CompensationClaimInSchema(Schema):
    fund_id = fields.Integer(required=True, validate=ORG_ID)
    loan_id = fields.Integer(required=True, validate=ORG_ID)


class CompensationClaimQuery(Schema):
    status = fields.Enum(ClaimStatus, by_value=True)
    fund_id = fields.Integer(validate=ORG_ID)


class CompensationDecisionSchema(Schema):
    action = fields.String(required=True, validate=validate.OneOf(["approve", "reject"]))
    reason = Text(validate=validate.Length(max=1000), allow_none=True)


def _list(schema):
    return type(f"{schema.__name__}List", (Schema,), {
        "items": fields.List(fields.Nested(schema), required=True)})


# --------------------------------------------------------------------------- funds

@blp.route("/funds")
class Funds(MethodView):
    @blp.response(200, _list(FundSchema))
    @documents_errors(blp)
    @authz.allow(authz.COMPENSATION)
    def get(self):
        """The funds you may see: every fund for the operator, those covering your bank."""
        return {"items": [_fund(f) for f in services.funds(current_user)]}

    @blp.arguments(FundInSchema)
    @blp.response(201, FundSchema)
    @documents_errors(blp, *WRITE)
    @idempotent(blp)
    @authz.allow(authz.OPERATOR_DECIDER)
    def post(self, data):
        """The operator's approver makes a fund; its budget is funded from the platform
        by a ledger transaction."""
        fund = services.create_fund(services.FundTerms(
            name=data["name"], currency=data["currency"], share=data["share"],
            cap_per_loan=data["cap_per_loan"], budget=data["budget"],
            start_date=data["start_date"], end_date=data["end_date"],
            bank_org_ids=tuple(data["bank_org_ids"]),
            product_kinds=tuple(k.value for k in data["product_kinds"])), actor=current_user)
        return _fund(fund)


@blp.route(f"/funds/<{ID}:fund_id>")
class FundDetail(MethodView):
    @blp.response(200, FundSchema)
    @documents_errors(blp, 404)
    @authz.allow(authz.COMPENSATION)
    def get(self, fund_id: int):
        """One fund with its budget, what is approved, paid and remaining."""
        return _fund(services.get_fund(fund_id, actor=current_user))


@blp.route(f"/funds/<{ID}:fund_id>/top-ups")
class FundTopUps(MethodView):
    @blp.arguments(TopUpInSchema)
    @blp.response(201, TopUpSchema)
    @documents_errors(blp, *WRITE)
    @idempotent(blp)
    @authz.allow(authz.OPERATOR_DECIDER)
    def post(self, data, fund_id: int):
        """More money into the fund's budget (a ledger transaction from the platform)."""
        return _top_up(services.top_up(fund_id, actor=current_user, amount=data["amount"],
                                       note=data.get("note")))


@blp.route(f"/funds/<{ID}:fund_id>/actions")
class FundAction(MethodView):
    @blp.arguments(FundActionSchema)
    @blp.response(200, FundSchema)
    @documents_errors(blp, *WRITE)
    @idempotent(blp)
    @authz.allow(authz.OPERATOR_DECIDER)
    def post(self, data, fund_id: int):
        """Pause (no new claims), resume or close the fund."""
        return _fund(services.change_fund_status(fund_id, data["action"], actor=current_user,
                                                 note=data.get("note")))


# --------------------------------------------------------------------------- claims

@blp.route("/claims")
class Claims(MethodView):
    @blp.arguments(CompensationClaimQuery, location="query")
    @blp.response(200, _list(CompensationClaimSchema))
    @documents_errors(blp, 422)
    @authz.allow(authz.COMPENSATION)
    def get(self, args):
        """Claims, newest first (banks: their own), at most 200."""
        return {"items": [_claim(c) for c in services.claims(
            current_user, fund_id=args.get("fund_id"), status=args.get("status"))]}

    @blp.arguments(CompensationClaimInSchema)
    @blp.response(201, CompensationClaimSchema)
    @documents_errors(blp, *WRITE)
    @idempotent(blp)
    @authz.allow(authz.COMPENSATION_BANK)
    def post(self, data):
        """A bank claims against an active fund for one of its defaulted loans:
        min(share x principal outstanding, cap per loan), in the fund's currency."""
        return _claim(services.submit_claim(actor=current_user, fund_id=data["fund_id"],
                                            loan_id=data["loan_id"]))


@blp.route(f"/claims/<{ID}:claim_id>")
class ClaimDetail(MethodView):
    @blp.response(200, CompensationClaimSchema)
    @documents_errors(blp, 404)
    @authz.allow(authz.COMPENSATION)
    def get(self, claim_id: int):
        """One claim."""
        return _claim(services.get_claim(claim_id, actor=current_user))


@blp.route(f"/claims/<{ID}:claim_id>/decisions")
class ClaimDecision(MethodView):
    @blp.arguments(CompensationDecisionSchema)
    @blp.response(200, CompensationClaimSchema)
    @documents_errors(blp, *WRITE)
    @idempotent(blp)
    @authz.allow(authz.OPERATOR_DECIDER)
    def post(self, data, claim_id: int):
        """The operator's approver approves (the compensation is booked from the budget
        and a payment to the bank is made; less when less is left) or rejects with a
        reason."""
        if data["action"] == "approve":
            return _claim(services.approve_claim(claim_id, actor=current_user,
                                                 note=data.get("reason")))
        return _claim(services.reject_claim(claim_id, actor=current_user,
                                            reason=data.get("reason")))


@blp.route(f"/claims/<{ID}:claim_id>/withdrawal")
class ClaimWithdrawal(MethodView):
    @blp.response(200, CompensationClaimSchema)
    @documents_errors(blp, *WRITE)
    @idempotent(blp)
    @authz.allow(authz.COMPENSATION_BANK)
    def post(self, claim_id: int):
        """The bank withdraws a claim not yet decided."""
        return _claim(services.withdraw_claim(claim_id, actor=current_user))
