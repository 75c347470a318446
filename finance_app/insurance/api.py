"""Export credit insurance over the API: policies (issue, read, cancel), buyer limits (apply
and the insurer's decisions), shipment declarations (declare, report overdue, cancel, void),
claims (file, assess, approve, reject, withdraw, recoveries), indemnity assignments
(request, acknowledge, accept, refuse, withdraw, release) and the cover of a receivable.
Amounts, coverages and rates are decimal strings; coverages and rates are fractions."""
from __future__ import annotations

from decimal import Decimal

from flask.views import MethodView
from flask_login import current_user
from marshmallow import Schema, fields, validate

from finance_app import authz
from finance_app.api.schemas import (
    ID, ApiBlueprint, ExactAmount, Text, UtcDateTime, documents_errors, idempotent, page_body,
)
from finance_app.errors import ValidationFailed
from finance_app.insurance import queries, services
from finance_app.insurance.states import (
    AssignmentStatus, ClaimCause, ClaimStatus, DeclarationMode, DeclarationStatus,
    LimitStatus, PolicyStatus,
)

blp = ApiBlueprint("insurance_api", __name__, url_prefix="/api/v1/insurance",
                   description="Export credit insurance: policies, buyer limits, shipment "
                               "declarations, claims and indemnity assignments")

AMOUNT = validate.Regexp(r"^\d{1,15}(\.\d{1,3})?$",
                         error="An amount as a string, such as \"1234.50\".")
FRACTION = validate.Regexp(r"^\d(\.\d{1,6})?$", error="A fraction as a string, such as \"0.90\".")
CURRENCY = validate.Regexp(r"^[A-Z]{3}$", error="A three-letter ISO 4217 code.")
INT = validate.Range(min=-100_000, max=100_000)
ORG_ID = validate.Range(min=1, max=2**31 - 1)


class DecimalText(fields.String):
    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else f"{Decimal(value).normalize():f}"


def _page(schema):
    return type(f"{schema.__name__}Page", (Schema,), {
        "page": fields.Integer(required=True), "per_page": fields.Integer(required=True),
        "total": fields.Integer(required=True),
        "items": fields.List(fields.Nested(schema), required=True)})


class PageQuery(Schema):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=100_000))


def _status_query(enum_cls):
    return type(f"{enum_cls.__name__}Query", (PageQuery,), {
        "status": fields.Enum(enum_cls, by_value=True)})


# --------------------------------------------------------------------------- schemas

class PremiumRateSchema(Schema):
    risk_grade = fields.Integer(required=True, validate=INT)
    max_term_days = fields.Integer(required=True, validate=INT)
    rate = DecimalText(required=True, validate=FRACTION,
                       metadata={"description": "A fraction of the insured amount: 0.0045 "
                                                "is 0.45 %"})


class PolicySchema(Schema):
    id = fields.Integer(required=True)
    number = fields.String(required=True)
    insurer_org_id = fields.Integer(required=True)
    insured_org_id = fields.Integer(required=True)
    status = fields.Enum(PolicyStatus, by_value=True, required=True)
    currency = fields.String(required=True)
    currencies = fields.List(fields.String(), required=True)
    start_date = fields.Date(required=True)
    end_date = fields.Date(required=True)
    commercial_coverage = DecimalText(required=True)
    political_coverage = DecimalText(required=True)
    max_liability = ExactAmount(required=True)
    remaining_liability = ExactAmount(required=True)
    declaration_mode = fields.Enum(DeclarationMode, by_value=True, required=True)
    declaration_days = fields.Integer(required=True)
    overdue_report_days = fields.Integer(required=True)
    waiting_days = fields.Integer(required=True)
    insolvency_waiting_days = fields.Integer(required=True)
    rates = fields.List(fields.Nested(PremiumRateSchema), required=True)
    created_at = UtcDateTime(required=True)


def _policy(p) -> dict:
    data = {c.key: getattr(p, c.key) for c in p.__table__.columns}
    data.update(currencies=p.currency_list, max_liability=p.max_liability.amount,
                remaining_liability=services.remaining_liability(p).amount,
                rates=[{"risk_grade": r.risk_grade, "max_term_days": r.max_term_days,
                        "rate": r.rate} for r in p.rates])
    return data


class PolicyInSchema(Schema):
    insured_org_id = fields.Integer(required=True, validate=ORG_ID)
    start_date = fields.Date(required=True)
    end_date = fields.Date(required=True)
    currency = fields.String(required=True, validate=CURRENCY)
    currencies = fields.List(fields.String(validate=CURRENCY), load_default=list,
                             validate=validate.Length(max=10))
    max_liability = fields.String(required=True, validate=AMOUNT)
    commercial_coverage = fields.String(required=True, validate=FRACTION)
    political_coverage = fields.String(required=True, validate=FRACTION)
    declaration_mode = fields.Enum(DeclarationMode, by_value=True,
                                   load_default=DeclarationMode.AFTER_SHIPMENT)
    declaration_days = fields.Integer(load_default=15, validate=INT)
    overdue_report_days = fields.Integer(load_default=60, validate=INT)
    waiting_days = fields.Integer(load_default=120, validate=INT)
    insolvency_waiting_days = fields.Integer(load_default=30, validate=INT)
    rates = fields.List(fields.Nested(PremiumRateSchema), required=True,
                        validate=validate.Length(min=1, max=100))


class LimitSchema(Schema):
    id = fields.Integer(required=True)
    policy_id = fields.Integer(required=True)
    insurer_org_id = fields.Integer(required=True)
    insured_org_id = fields.Integer(required=True)
    buyer_name = fields.String(required=True)
    buyer_country = fields.String(required=True)
    buyer_registration_no = fields.String(required=True)
    currency = fields.String(required=True)
    requested = ExactAmount(required=True)
    approved = ExactAmount(allow_none=True)
    used = ExactAmount(required=True)
    remaining = ExactAmount(required=True)
    payment_term_days = fields.Integer(required=True)
    status = fields.Enum(LimitStatus, by_value=True, required=True)
    reason = fields.String(allow_none=True)


def _limit(limit) -> dict:
    data = {c.key: getattr(limit, c.key) for c in limit.__table__.columns}
    data.update(requested=limit.requested.amount,
                approved=limit.approved.amount if limit.approved else None,
                used=services.limit_used(limit).amount,
                remaining=services.limit_remaining(limit).amount)
    return data


class LimitInSchema(Schema):
    buyer_name = Text(required=True, validate=validate.Length(min=1, max=200))
    buyer_country = fields.String(required=True, validate=validate.Regexp(r"^[A-Z]{2}$"))
    buyer_registration_no = Text(required=True, validate=validate.Length(min=1, max=60))
    amount = fields.String(required=True, validate=AMOUNT)
    payment_term_days = fields.Integer(required=True, validate=INT)


class LimitDecisionSchema(Schema):
    action = fields.String(required=True, validate=validate.OneOf(
        ["approve", "refuse", "reduce", "cancel", "withdraw"]))
    amount = fields.String(validate=AMOUNT, allow_none=True,
                           metadata={"description": "approve and reduce: the new limit"})
    reason = Text(validate=validate.Length(max=1000), allow_none=True)


class DeclarationSchema(Schema):
    id = fields.Integer(required=True)
    policy_id = fields.Integer(required=True)
    buyer_limit_id = fields.Integer(required=True)
    insurer_org_id = fields.Integer(required=True)
    insured_org_id = fields.Integer(required=True)
    order_id = fields.Integer(required=True)
    receivable_id = fields.Integer(required=True)
    waybill_id = fields.Integer(required=True)
    currency = fields.String(required=True)
    invoice = ExactAmount(required=True)
    insured = ExactAmount(required=True)
    uninsured = ExactAmount(required=True)
    premium = ExactAmount(required=True)
    premium_rate = DecimalText(required=True)
    risk_grade = fields.Integer(required=True)
    premium_settlement_id = fields.Integer(allow_none=True)
    shipment_date = fields.Date(required=True)
    payment_term_days = fields.Integer(required=True)
    due_date = fields.Date(required=True)
    declared_on = fields.Date(required=True)
    deadline = fields.Date(required=True)
    status = fields.Enum(DeclarationStatus, by_value=True, required=True)
    overdue_reported_on = fields.Date(allow_none=True)
    overdue_report_late = fields.Boolean(allow_none=True)


def _declaration(d) -> dict:
    data = {c.key: getattr(d, c.key) for c in d.__table__.columns}
    report = queries.report_of(d)
    data.update(invoice=d.invoice.amount, insured=d.insured.amount,
                uninsured=d.uninsured.amount, premium=d.premium.amount,
                overdue_reported_on=report.reported_on if report else None,
                overdue_report_late=report.late if report else None)
    return data


class DeclarationInSchema(Schema):
    buyer_limit_id = fields.Integer(required=True, validate=ORG_ID)
    order_id = fields.Integer(required=True, validate=ORG_ID)
    shipment_date = fields.Date(allow_none=True,
                                metadata={"description": "Default: the waybill's date"})


class DeclarationActionSchema(Schema):
    action = fields.String(required=True, validate=validate.OneOf(
        ["report_overdue", "cancel", "void"]))
    note = Text(validate=validate.Length(max=2000), allow_none=True)
    reason = Text(validate=validate.Length(max=1000), allow_none=True)


class ClaimSchema(Schema):
    id = fields.Integer(required=True)
    declaration_id = fields.Integer(required=True)
    policy_id = fields.Integer(required=True)
    insurer_org_id = fields.Integer(required=True)
    insured_org_id = fields.Integer(required=True)
    filed_by_org_id = fields.Integer(required=True)
    cause = fields.Enum(ClaimCause, by_value=True, required=True)
    currency = fields.String(required=True)
    loss = ExactAmount(required=True)
    claimable_from = fields.Date(required=True)
    filed_on = fields.Date(required=True)
    coverage = DecimalText(allow_none=True)
    indemnity_currency = fields.String(required=True)
    indemnity = ExactAmount(allow_none=True)
    payee_org_id = fields.Integer(allow_none=True)
    settlement_id = fields.Integer(allow_none=True)
    status = fields.Enum(ClaimStatus, by_value=True, required=True)
    reason = fields.String(allow_none=True)


def _claim(c) -> dict:
    data = {k.key: getattr(c, k.key) for k in c.__table__.columns}
    data.update(loss=c.loss.amount, indemnity=c.indemnity.amount if c.indemnity else None)
    return data


class ClaimInSchema(Schema):
    cause = fields.Enum(ClaimCause, by_value=True, required=True)
    loss_amount = fields.String(required=True, validate=AMOUNT)


class ClaimDecisionSchema(Schema):
    action = fields.String(required=True, validate=validate.OneOf(
        ["assess", "approve", "reject", "withdraw"]))
    reason = Text(validate=validate.Length(max=1000), allow_none=True)


class RecoveryInSchema(Schema):
    amount = fields.String(required=True, validate=AMOUNT)
    recovered_on = fields.Date(allow_none=True)


class RecoverySchema(Schema):
    id = fields.Integer(required=True)
    claim_id = fields.Integer(required=True)
    currency = fields.String(required=True)
    recovered = ExactAmount(required=True)
    insurer_share = ExactAmount(required=True)
    insurer_share_currency = fields.String(required=True)
    insured_share = ExactAmount(required=True)
    recovered_on = fields.Date(required=True)
    settlement_id = fields.Integer(allow_none=True)


def _recovery(r) -> dict:
    return {"id": r.id, "claim_id": r.claim_id, "currency": r.currency,
            "recovered": r.recovered.amount, "insurer_share": r.insurer_part.amount,
            "insurer_share_currency": r.insurer_share_currency,
            "insured_share": r.insured_part.amount, "recovered_on": r.recovered_on,
            "settlement_id": r.settlement_id}


class AssignmentSchema(Schema):
    id = fields.Integer(required=True)
    declaration_id = fields.Integer(required=True)
    receivable_id = fields.Integer(required=True)
    policy_id = fields.Integer(required=True)
    insurer_org_id = fields.Integer(required=True)
    insured_org_id = fields.Integer(required=True)
    bank_org_id = fields.Integer(required=True)
    encumbrance_id = fields.Integer(allow_none=True)
    status = fields.Enum(AssignmentStatus, by_value=True, required=True)
    reason = fields.String(allow_none=True)


class AssignmentInSchema(Schema):
    bank_org_id = fields.Integer(required=True, validate=ORG_ID)


class AssignmentDecisionSchema(Schema):
    action = fields.String(required=True, validate=validate.OneOf(
        ["acknowledge", "accept", "refuse", "withdraw", "release"]))
    reason = Text(validate=validate.Length(max=1000), allow_none=True)


class CoverSchema(Schema):
    receivable_id = fields.Integer(required=True)
    declaration_id = fields.Integer(required=True)
    policy_id = fields.Integer(required=True)
    policy_number = fields.String(required=True)
    insurer_org_id = fields.Integer(required=True)
    currency = fields.String(required=True)
    insured = ExactAmount(required=True)
    uninsured = ExactAmount(required=True)
    insured_outstanding = ExactAmount(required=True)
    coverage = DecimalText(required=True)
    max_indemnity = ExactAmount(required=True)
    policy_currency = fields.String(required=True)
    remaining_buyer_limit = ExactAmount(required=True)
    remaining_max_liability = ExactAmount(required=True)
    assigned_bank_org_id = fields.Integer(allow_none=True)
    status = fields.Enum(DeclarationStatus, by_value=True, required=True)
    overdue_reported = fields.Boolean(required=True)
    claim_status = fields.Enum(ClaimStatus, by_value=True, allow_none=True)


class CoverListSchema(Schema):
    items = fields.List(fields.Nested(CoverSchema), required=True)


def _cover(c) -> dict:
    return {"receivable_id": c.receivable_id, "declaration_id": c.declaration_id,
            "policy_id": c.policy_id, "policy_number": c.policy_number,
            "insurer_org_id": c.insurer_org_id, "currency": c.insured_amount.currency,
            "insured": c.insured_amount.amount, "uninsured": c.uninsured_amount.amount,
            "insured_outstanding": c.insured_outstanding.amount, "coverage": c.coverage,
            "max_indemnity": c.max_indemnity.amount,
            "policy_currency": c.remaining_max_liability.currency,
            "remaining_buyer_limit": c.remaining_buyer_limit.amount,
            "remaining_max_liability": c.remaining_max_liability.amount,
            "assigned_bank_org_id": c.assigned_bank_org_id, "status": c.status,
            "overdue_reported": c.overdue_reported, "claim_status": c.claim_status}


def _fraction(text: str) -> Decimal:
    return Decimal(text)


def _need(data: dict, name: str) -> str:
    if not data.get(name):
        raise ValidationFailed("This field is required.", field=name)
    return data[name]


WRITE = (400, 404, 409, 413, 415, 422)


# --------------------------------------------------------------------------- policies

@blp.route("/policies")
class Policies(MethodView):
    @blp.arguments(_status_query(PolicyStatus), location="query")
    @blp.response(200, _page(PolicySchema))
    @documents_errors(blp, 422)
    @authz.allow(authz.INSURANCE)
    def get(self, args):
        """Policies you issued or hold, or under which an indemnity is assigned to you."""
        page = queries.policies(current_user, status=args.get("status"), page=args["page"])
        return page_body(page, [_policy(p) for p in page.items])

    @blp.arguments(PolicyInSchema)
    @blp.response(201, PolicySchema)
    @documents_errors(blp, 400, 409, 413, 415, 422)
    @idempotent(blp)
    @authz.allow(authz.INSURANCE_STAFF)
    def post(self, data):
        """Issue a short-term export credit insurance policy to an SME (an insurer). 422
        ``validation_failed`` with the field at fault, e.g. a coverage above 100 %."""
        policy = services.issue_policy(services.PolicyTerms(
            insured_org_id=data["insured_org_id"], start_date=data["start_date"],
            end_date=data["end_date"], currency=data["currency"],
            currencies=data["currencies"], max_liability=data["max_liability"],
            commercial_coverage=_fraction(data["commercial_coverage"]),
            political_coverage=_fraction(data["political_coverage"]),
            declaration_mode=data["declaration_mode"],
            declaration_days=data["declaration_days"],
            overdue_report_days=data["overdue_report_days"], waiting_days=data["waiting_days"],
            insolvency_waiting_days=data["insolvency_waiting_days"],
            rates=[services.RateInput(r["risk_grade"], r["max_term_days"], _fraction(r["rate"]))
                   for r in data["rates"]]), actor=current_user)
        return _policy(policy)


@blp.route(f"/policies/<{ID}:policy_id>")
class PolicyDetail(MethodView):
    @blp.response(200, PolicySchema)
    @documents_errors(blp, 404)
    @authz.allow(authz.INSURANCE)
    def get(self, policy_id: int):
        """One policy, with its rates and the maximum liability left."""
        return _policy(services.get_policy(policy_id, actor=current_user))


class CancelReasonSchema(Schema):
    reason = Text(required=True, validate=validate.Length(min=1, max=1000))


@blp.route(f"/policies/<{ID}:policy_id>/cancel")
class PolicyCancel(MethodView):
    @blp.arguments(CancelReasonSchema)
    @blp.response(200, PolicySchema)
    @documents_errors(blp, *WRITE)
    @idempotent(blp)
    @authz.allow(authz.INSURANCE_STAFF)
    def post(self, data, policy_id: int):
        """The insurer cancels the policy (with a reason)."""
        return _policy(services.cancel_policy(policy_id, actor=current_user,
                                              reason=data["reason"]))


# --------------------------------------------------------------------------- limits

@blp.route(f"/policies/<{ID}:policy_id>/limits")
class PolicyLimits(MethodView):
    @blp.arguments(LimitInSchema)
    @blp.response(201, LimitSchema)
    @documents_errors(blp, *WRITE)
    @idempotent(blp)
    @authz.allow(authz.INSURANCE_INSURED)
    def post(self, data, policy_id: int):
        """The insured SME applies for a credit limit on an overseas buyer (refused under a
        policy that has expired)."""
        return _limit(services.apply_for_limit(policy_id, actor=current_user, **data))


@blp.route("/limits")
class Limits(MethodView):
    @blp.arguments(_status_query(LimitStatus), location="query")
    @blp.response(200, _page(LimitSchema))
    @documents_errors(blp, 422)
    @authz.allow(authz.INSURANCE)
    def get(self, args):
        """Buyer limits under your policies, newest first."""
        page = queries.limits(current_user, status=args.get("status"), page=args["page"])
        return page_body(page, [_limit(x) for x in page.items])


@blp.route(f"/limits/<{ID}:limit_id>")
class LimitDetail(MethodView):
    @blp.response(200, LimitSchema)
    @documents_errors(blp, 404)
    @authz.allow(authz.INSURANCE)
    def get(self, limit_id: int):
        """One buyer limit, with its used and remaining parts."""
        return _limit(services.get_limit(limit_id, actor=current_user))


@blp.route(f"/limits/<{ID}:limit_id>/decisions")
class LimitDecision(MethodView):
    @blp.arguments(LimitDecisionSchema)
    @blp.response(200, LimitSchema)
    @documents_errors(blp, *WRITE)
    @idempotent(blp)
    @authz.allow(authz.INSURANCE_PARTY)
    def post(self, data, limit_id: int):
        """The insurer approves (``amount``, at most what was asked), refuses, reduces
        (``amount``) or cancels a limit, each with a ``reason`` (approving for less needs
        one); the SME withdraws its request."""
        action, reason = data["action"], data.get("reason")
        if action == "approve":
            limit = services.approve_limit(limit_id, actor=current_user,
                                           amount=_need(data, "amount"), reason=reason)
        elif action == "reduce":
            limit = services.reduce_limit(limit_id, actor=current_user,
                                          amount=_need(data, "amount"), reason=reason)
        elif action == "refuse":
            limit = services.refuse_limit(limit_id, actor=current_user, reason=reason)
        elif action == "cancel":
            limit = services.cancel_limit(limit_id, actor=current_user, reason=reason)
        else:
            limit = services.withdraw_limit(limit_id, actor=current_user)
        return _limit(limit)


# --------------------------------------------------------------------------- declarations

@blp.route("/declarations")
class Declarations(MethodView):
    @blp.arguments(_status_query(DeclarationStatus), location="query")
    @blp.response(200, _page(DeclarationSchema))
    @documents_errors(blp, 422)
    @authz.allow(authz.INSURANCE)
    def get(self, args):
        """Declared shipments under your policies (banks: those assigned to them)."""
        page = queries.declarations(current_user, status=args.get("status"),
                                    page=args["page"])
        return page_body(page, [_declaration(d) for d in page.items])

    @blp.arguments(DeclarationInSchema)
    @blp.response(201, DeclarationSchema)
    @documents_errors(blp, 400, 409, 413, 415, 422)
    @idempotent(blp)
    @authz.allow(authz.INSURANCE_INSURED)
    def post(self, data):
        """Declare a shipment of a verified order under the buyer's limit: the insured
        part is what the limit still covers, the rest is uninsured; the premium's payment
        record is made. Refused after the deadline, outside the policy period, or without
        an approved limit."""
        return _declaration(services.declare_shipment(
            actor=current_user, buyer_limit_id=data["buyer_limit_id"],
            order_id=data["order_id"], shipment_date=data.get("shipment_date")))


@blp.route(f"/declarations/<{ID}:declaration_id>")
class DeclarationDetail(MethodView):
    @blp.response(200, DeclarationSchema)
    @documents_errors(blp, 404)
    @authz.allow(authz.INSURANCE)
    def get(self, declaration_id: int):
        """One declaration."""
        return _declaration(services.get_declaration(declaration_id, actor=current_user))


@blp.route(f"/declarations/<{ID}:declaration_id>/actions")
class DeclarationAction(MethodView):
    @blp.arguments(DeclarationActionSchema)
    @blp.response(200, DeclarationSchema)
    @documents_errors(blp, *WRITE)
    @idempotent(blp)
    @authz.allow(authz.INSURANCE_PARTY)
    def post(self, data, declaration_id: int):
        """The SME reports the buyer overdue (flagged late after the policy's period) or
        cancels a declaration made in error; the insurer voids cover (with a reason)."""
        action = data["action"]
        if action == "report_overdue":
            services.report_overdue(declaration_id, actor=current_user, note=data.get("note"))
        elif action == "cancel":
            services.cancel_declaration(declaration_id, actor=current_user,
                                        reason=data.get("reason"))
        else:
            services.void_cover(declaration_id, actor=current_user, reason=data.get("reason"))
        return _declaration(services.get_declaration(declaration_id, actor=current_user))


@blp.route(f"/declarations/<{ID}:declaration_id>/claims")
class DeclarationClaims(MethodView):
    @blp.arguments(ClaimInSchema)
    @blp.response(201, ClaimSchema)
    @documents_errors(blp, *WRITE)
    @idempotent(blp)
    @authz.allow(authz.INSURANCE_PARTY)
    def post(self, data, declaration_id: int):
        """The SME (or the bank the indemnity is assigned to) claims the insured loss once
        the waiting period has passed; never more than the insured part still owed."""
        return _claim(services.file_claim(declaration_id, actor=current_user,
                                          cause=data["cause"], loss_amount=data["loss_amount"]))


@blp.route(f"/declarations/<{ID}:declaration_id>/assignments")
class DeclarationAssignments(MethodView):
    @blp.arguments(AssignmentInSchema)
    @blp.response(201, AssignmentSchema)
    @documents_errors(blp, *WRITE)
    @idempotent(blp)
    @authz.allow(authz.INSURANCE_INSURED)
    def post(self, data, declaration_id: int):
        """The SME asks to assign the indemnity of the insured receivable to a bank."""
        return services.request_assignment(declaration_id, actor=current_user,
                                           bank_org_id=data["bank_org_id"])


@blp.route(f"/declarations/<{ID}:declaration_id>/cover")
class DeclarationCover(MethodView):
    @blp.response(200, CoverSchema)
    @documents_errors(blp, 404)
    @authz.allow(authz.INSURANCE)
    def get(self, declaration_id: int):
        """The live cover of the declared receivable (404 when it no longer has one)."""
        declaration = services.get_declaration(declaration_id, actor=current_user)
        cover = queries.cover_for_receivable(declaration.receivable_id)
        if cover is None:
            from finance_app.errors import NotFound
            raise NotFound("declaration", declaration_id)
        return _cover(cover)


@blp.route("/assigned-cover")
class AssignedCover(MethodView):
    @blp.response(200, CoverListSchema)
    @documents_errors(blp)
    @authz.allow(authz.INSURANCE)
    def get(self):
        """A bank's evidence: every live cover whose indemnity is assigned to it."""
        return {"items": [_cover(c) for c in queries.assigned_cover(current_user.org_id)]}


# --------------------------------------------------------------------------- claims

@blp.route("/claims")
class Claims(MethodView):
    @blp.arguments(_status_query(ClaimStatus), location="query")
    @blp.response(200, _page(ClaimSchema))
    @documents_errors(blp, 422)
    @authz.allow(authz.INSURANCE)
    def get(self, args):
        """Claims under your policies (banks: on indemnities assigned to them)."""
        page = queries.claims(current_user, status=args.get("status"), page=args["page"])
        return page_body(page, [_claim(c) for c in page.items])


@blp.route(f"/claims/<{ID}:claim_id>")
class ClaimDetail(MethodView):
    @blp.response(200, ClaimSchema)
    @documents_errors(blp, 404)
    @authz.allow(authz.INSURANCE)
    def get(self, claim_id: int):
        """One claim."""
        return _claim(services.get_claim(claim_id, actor=current_user))


@blp.route(f"/claims/<{ID}:claim_id>/decisions")
class ClaimDecision(MethodView):
    @blp.arguments(ClaimDecisionSchema)
    @blp.response(200, ClaimSchema)
    @documents_errors(blp, *WRITE)
    @idempotent(blp)
    @authz.allow(authz.INSURANCE_PARTY)
    def post(self, data, claim_id: int):
        """The insurer starts the assessment, approves (indemnity = coverage x insured
        loss, booked and made payable to the insured or the assigned bank) or rejects with
        a reason; the claimant withdraws."""
        action = data["action"]
        if action == "assess":
            claim = services.start_assessment(claim_id, actor=current_user)
        elif action == "approve":
            claim = services.approve_claim(claim_id, actor=current_user,
                                           reason=data.get("reason"))
        elif action == "reject":
            claim = services.reject_claim(claim_id, actor=current_user,
                                          reason=data.get("reason"))
        else:
            claim = services.withdraw_claim(claim_id, actor=current_user)
        return _claim(claim)


@blp.route(f"/claims/<{ID}:claim_id>/recoveries")
class ClaimRecoveries(MethodView):
    @blp.arguments(RecoveryInSchema)
    @blp.response(201, RecoverySchema)
    @documents_errors(blp, *WRITE)
    @idempotent(blp)
    @authz.allow(authz.INSURANCE_PARTY)
    def post(self, data, claim_id: int):
        """Money recovered from the buyer after the claim was paid: the insurer's share (in
        the coverage proportion) is booked and the insured asked to pay it."""
        return _recovery(services.record_recovery(claim_id, actor=current_user,
                                                  amount=data["amount"],
                                                  recovered_on=data.get("recovered_on")))


# --------------------------------------------------------------------------- assignments

@blp.route("/assignments")
class Assignments(MethodView):
    @blp.arguments(PageQuery, location="query")
    @blp.response(200, _page(AssignmentSchema))
    @documents_errors(blp, 422)
    @authz.allow(authz.INSURANCE)
    def get(self, args):
        """Indemnity assignments you are party to, newest first."""
        return page_body(queries.assignments(current_user, page=args["page"]))


@blp.route(f"/assignments/<{ID}:assignment_id>/decisions")
class AssignmentDecision(MethodView):
    @blp.arguments(AssignmentDecisionSchema)
    @blp.response(200, AssignmentSchema)
    @documents_errors(blp, *WRITE)
    @idempotent(blp)
    @authz.allow(authz.INSURANCE_PARTY)
    def post(self, data, assignment_id: int):
        """The insurer acknowledges (or refuses), then the bank accepts (or refuses): the
        insured receivable is then locked to it in the collateral registry and it is the
        claim payee; the SME withdraws before that; the bank's approvers release it."""
        action, reason = data["action"], data.get("reason")
        if action == "acknowledge":
            return services.acknowledge_assignment(assignment_id, actor=current_user)
        if action == "accept":
            return services.accept_assignment(assignment_id, actor=current_user)
        if action == "refuse":
            return services.refuse_assignment(assignment_id, actor=current_user,
                                              reason=reason)
        if action == "withdraw":
            return services.withdraw_assignment(assignment_id, actor=current_user)
        return services.release_assignment(assignment_id, actor=current_user, reason=reason)
