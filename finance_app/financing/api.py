"""The financing marketplace over the API: banks' products and facilities, what an SME can
borrow against what, financing requests to one or several banks, the banks' review (the
evidence pack, offers and rejections prepared by an officer and approved by another user),
acceptance, loans (disbursement, the schedule, what is owed today, repayments) and the
contract. Amounts, rates and ratios are decimal strings; rates and ratios are fractions
("0.065" is 6.5 %). Who sees what is decided by the services: an SME its own requests and
loans, a bank what was sent to it and its own decisions (never another bank's), the
platform operator everything."""
from __future__ import annotations

import io
import json
from decimal import Decimal

from flask import request, send_file
from flask.views import MethodView
from flask_babel import gettext
from flask_login import current_user
from marshmallow import Schema, fields, validate
from sqlalchemy import select

from finance_app import authz
from finance_app.accounts.models import Organisation
from finance_app.accounts.states import OrgKind
from finance_app.api.schemas import (
    DB_INT_MAX, ID, IDEMPOTENCY_KEY, ApiBlueprint, ExactAmount, Text, UtcDateTime,
    documents_errors, idempotent, page_body,
)
from finance_app.collateral.states import AssetKind
from finance_app.errors import NotFound, ValidationFailed
from finance_app.extensions import db
from finance_app.financing import contracts, loans, marketplace, products, queries, review
from finance_app.financing.models import Contract, Decision, FinancingRequest, Loan
from finance_app.financing.states import (
    DecisionKind, InstalmentStatus, LoanStatus, OfferStatus, ProductKind, ProductStatus,
    RejectionReason, RepaymentMethod, RepaymentStatus, RepaymentType, RequestStatus,
)
from finance_app.money import Money
from finance_app.oversight.api import RatingFactorSchema, factors_of
from finance_app.oversight.states import AlertStatus, Severity

blp = ApiBlueprint("financing_api", __name__, url_prefix="/api/v1/financing",
                   description="Financing: products and facilities, the marketplace, "
                               "requests, the banks' review, loans, repayments and contracts")

AMOUNT_TEXT = validate.Regexp(r"^[0-9]{1,13}(\.[0-9]{1,3})?$",
                              error="An amount as a string, such as \"1234.50\".")
FRACTION_TEXT = validate.Regexp(r"^[0-9]{1,3}(\.[0-9]{1,10})?$",
                                error="A fraction as a string, such as \"0.065\" for 6.5 %.")
CURRENCY = validate.Regexp(r"^[A-Z]{3}$", error="A three-letter ISO 4217 code.")
OBJECT_ID = validate.Range(min=1, max=DB_INT_MAX)
PAGE = validate.Range(min=1, max=100_000)


def _fraction(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


def _money(data: dict, field: str, currency_field: str = "currency") -> Money:
    return Money.of(data[field], data[currency_field], field=field)


def _minor(units: int | None, currency: str) -> Decimal | None:
    return None if units is None else Money.from_minor(units, currency).amount


def _names(org_ids) -> dict[int, str]:
    ids = {i for i in org_ids if i is not None}
    if not ids:
        return {}
    return dict(db.session.execute(select(Organisation.id, Organisation.name).where(
        Organisation.id.in_(ids))).all())


def _is_bank(user) -> bool:
    return user.organisation.kind is OrgKind.BANK


class DecimalText(fields.String):
    """A decimal as a string in and out ("0.065"), never a JSON number."""

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else f"{Decimal(value).normalize():f}"


def _page_schema(name: str, item: type[Schema]) -> type[Schema]:
    return Schema.from_dict({
        "page": fields.Integer(required=True), "per_page": fields.Integer(required=True),
        "total": fields.Integer(required=True),
        "items": fields.List(fields.Nested(item), required=True)}, name=name)


# --------------------------------------------------------------------------- products

class FinancingProductSchema(Schema):
    id = fields.Integer(required=True)
    bank_org_id = fields.Integer(required=True)
    bank_name = fields.String(required=True)
    name = fields.String(required=True)
    kind = fields.Enum(ProductKind, by_value=True, required=True)
    status = fields.Enum(ProductStatus, by_value=True, required=True)
    description = fields.String(allow_none=True)
    currencies = fields.List(fields.String(), required=True)
    max_advance_rate = DecimalText(required=True, metadata={"description": "A fraction"})
    rate_min = DecimalText(required=True)
    rate_max = DecimalText(required=True)
    day_count = fields.Integer(required=True, metadata={"description": "360 or 365"})
    arrangement_fee_rate = DecimalText(required=True)
    max_tenor_days = fields.Integer(required=True)
    repayment_type = fields.Enum(RepaymentType, by_value=True, required=True)
    penalty_rate = DecimalText(required=True)
    default_after_days = fields.Integer(required=True)
    margin_call_ltv = DecimalText(allow_none=True)
    liquidation_ltv = DecimalText(allow_none=True)
    cure_days = fields.Integer(allow_none=True)
    min_rating = fields.String(allow_none=True)
    require_verified = fields.Boolean(required=True)
    require_insurance = fields.Boolean(required=True)
    created_at = UtcDateTime(required=True)


ProductPageSchema = _page_schema("FinancingProductPage", FinancingProductSchema)


def _product(p, names: dict[int, str] | None = None) -> dict:
    data = {c.key: getattr(p, c.key) for c in p.__table__.columns}
    data["currencies"] = p.currency_list
    names = names if names is not None else _names([p.bank_org_id])
    data["bank_name"] = names.get(p.bank_org_id, "")
    return data


class FinancingProductQuerySchema(Schema):
    kind = fields.Enum(ProductKind, by_value=True)
    page = fields.Integer(load_default=1, validate=PAGE)


class FinancingProductInSchema(Schema):
    name = Text(required=True, validate=validate.Length(min=1, max=200))
    kind = fields.Enum(ProductKind, by_value=True, required=True)
    currencies = fields.List(fields.String(validate=CURRENCY), required=True,
                             validate=validate.Length(min=1, max=10))
    max_advance_rate = fields.String(required=True, validate=FRACTION_TEXT, metadata={
        "description": "A fraction: \"0.8\" advances 80 % of the collateral's value"})
    rate_min = fields.String(required=True, validate=FRACTION_TEXT, metadata={
        "description": "The lowest annual rate, a fraction: \"0.04\" is 4 %"})
    rate_max = fields.String(required=True, validate=FRACTION_TEXT)
    day_count = fields.Integer(required=True, metadata={"description": "360 or 365"})
    max_tenor_days = fields.Integer(required=True)
    repayment_type = fields.Enum(RepaymentType, by_value=True, required=True)
    penalty_rate = fields.String(required=True, validate=FRACTION_TEXT, metadata={
        "description": "Extra annual rate on overdue amounts, a fraction"})
    default_after_days = fields.Integer(required=True)
    arrangement_fee_rate = fields.String(load_default="0", validate=FRACTION_TEXT)
    margin_call_ltv = fields.String(allow_none=True, validate=FRACTION_TEXT, metadata={
        "description": "Warehouse-receipt products only"})
    liquidation_ltv = fields.String(allow_none=True, validate=FRACTION_TEXT)
    cure_days = fields.Integer(allow_none=True)
    min_rating = Text(allow_none=True, validate=validate.Length(max=4))
    require_verified = fields.Boolean(load_default=True)
    require_insurance = fields.Boolean(load_default=False)
    description = Text(allow_none=True, validate=validate.Length(max=2000))


class FinancingNoteSchema(Schema):
    note = Text(allow_none=True, validate=validate.Length(max=500))


# --------------------------------------------------------------------------- facilities

class FacilitySchema(Schema):
    id = fields.Integer(required=True)
    bank_org_id = fields.Integer(required=True)
    bank_name = fields.String(required=True)
    sme_org_id = fields.Integer(required=True)
    sme_name = fields.String(required=True)
    currency = fields.String(required=True)
    limit = ExactAmount(required=True)
    used = ExactAmount(required=True, metadata={"description": "Drawn by disbursed loans"})
    held = ExactAmount(required=True, metadata={
        "description": "Held for accepted loans not yet disbursed"})
    available = ExactAmount(required=True)
    expiry_date = fields.Date(required=True)
    expired = fields.Boolean(required=True)
    note = fields.String(allow_none=True)
    created_at = UtcDateTime(required=True)


class FacilityListSchema(Schema):
    items = fields.List(fields.Nested(FacilitySchema), required=True)


def _facility(f, names: dict[int, str] | None = None) -> dict:
    figures = products.figures(f)
    names = names if names is not None else _names([f.bank_org_id, f.sme_org_id])
    return {"id": f.id, "bank_org_id": f.bank_org_id, "bank_name": names.get(f.bank_org_id, ""),
            "sme_org_id": f.sme_org_id, "sme_name": names.get(f.sme_org_id, ""),
            "currency": f.currency, "limit": figures.limit.amount,
            "used": figures.used.amount, "held": figures.held.amount,
            "available": figures.available.amount, "expiry_date": f.expiry_date,
            "expired": figures.expired, "note": f.note, "created_at": f.created_at}


class FacilityInSchema(Schema):
    sme_org_id = fields.Integer(required=True, validate=OBJECT_ID)
    limit = fields.String(required=True, validate=AMOUNT_TEXT)
    currency = fields.String(required=True, validate=CURRENCY)
    expiry_date = fields.Date(required=True)
    note = Text(allow_none=True, validate=validate.Length(max=500))


# --------------------------------------------------------------------------- marketplace

class CollateralItemSchema(Schema):
    kind = fields.Enum(AssetKind, by_value=True, required=True)
    id = fields.Integer(required=True)
    label = fields.String(required=True)
    value = ExactAmount(allow_none=True)
    currency = fields.String(allow_none=True)
    available = fields.Boolean(required=True)
    problem = fields.String(allow_none=True, metadata={
        "description": "Why the item cannot back a request now"})
    detail = fields.String(allow_none=True, metadata={
        "description": "The order's match verdict, the receipt's status, ..."})


def _item(item: marketplace.Item) -> dict:
    return {"kind": item.kind, "id": item.id, "label": item.label,
            "value": item.value.amount if item.value else None,
            "currency": item.value.currency if item.value else None,
            "available": item.available, "problem": item.problem, "detail": item.detail}


class EligibilitySchema(Schema):
    eligible = fields.Boolean(required=True)
    currency = fields.String(required=True)
    amount = ExactAmount(required=True, metadata={"description": "What the SME can borrow"})
    binding = fields.String(required=True, metadata={
        "description": "Which limit binds: advance, buyer_limit, policy_liability, facility "
                       "or no_collateral"})
    binding_label = fields.String(required=True)
    collateral_value = ExactAmount(required=True)
    advance_limit = ExactAmount(required=True)
    facility_available = ExactAmount(allow_none=True)
    cover_limit = ExactAmount(allow_none=True, metadata={
        "description": "Policy financing: coverage times the lower of the buyers' remaining "
                       "credit limits and the policy's remaining maximum liability"})
    reasons = fields.List(fields.String(), required=True, metadata={
        "description": "Why the SME cannot borrow here at all"})
    rate_notes = fields.List(fields.String(), required=True)


def _eligibility(e: marketplace.Eligibility) -> dict:
    return {"eligible": e.eligible, "currency": e.currency, "amount": e.amount.amount,
            "binding": e.binding, "binding_label": marketplace.binding_label(e.binding),
            "collateral_value": e.collateral_value.amount,
            "advance_limit": e.advance_limit.amount,
            "facility_available": e.facility_available.amount
            if e.facility_available is not None else None,
            "cover_limit": e.cover_limit.amount if e.cover_limit is not None else None,
            "reasons": list(e.reasons), "rate_notes": list(e.rate_notes)}


class MarketplaceEntrySchema(Schema):
    product = fields.Nested(FinancingProductSchema, required=True)
    eligibility = fields.Nested(EligibilitySchema, required=True)
    collateral_set = fields.String(required=True, metadata={
        "description": "The key, in ``collateral_sets``, of the items this product counts"})


class CollateralSetSchema(Schema):
    key = fields.String(required=True, metadata={
        "description": "The asset kind, with ':verified' where a verified match is required"})
    items = fields.List(fields.Nested(CollateralItemSchema), required=True)


class MarketplaceSchema(Schema):
    items = fields.List(fields.Nested(MarketplaceEntrySchema), required=True)
    collateral_sets = fields.List(fields.Nested(CollateralSetSchema), required=True, metadata={
        "description": "The SME's collateral, listed once for all the products that count "
                       "the same items"})


class MarketplaceQuerySchema(Schema):
    currency = fields.String(validate=CURRENCY, metadata={
        "description": "Figures in this currency where the product lends in it"})


# --------------------------------------------------------------------------- decisions

class FinancingDecisionSchema(Schema):
    id = fields.Integer(required=True)
    request_id = fields.Integer(required=True)
    target_id = fields.Integer(required=True)
    bank_org_id = fields.Integer(required=True)
    bank_name = fields.String(required=True)
    product_id = fields.Integer(required=True)
    product_name = fields.String(required=True)
    kind = fields.Enum(DecisionKind, by_value=True, required=True)
    status = fields.Enum(OfferStatus, by_value=True, required=True)
    currency = fields.String(required=True)
    amount = ExactAmount(allow_none=True)
    annual_rate = DecimalText(allow_none=True)
    tenor_days = fields.Integer(allow_none=True)
    fees = ExactAmount(allow_none=True)
    interest = ExactAmount(allow_none=True, metadata={
        "description": "All the interest, on a schedule starting today"})
    total_cost = ExactAmount(allow_none=True, metadata={"description": "Interest and fees"})
    apr = DecimalText(allow_none=True, metadata={
        "description": "Annual percentage rate of charge, a fraction"})
    net_disbursed = ExactAmount(allow_none=True)
    total_repaid = ExactAmount(allow_none=True)
    conditions = fields.String(allow_none=True)
    expiry_date = fields.Date(allow_none=True)
    reasons = fields.List(fields.Enum(RejectionReason, by_value=True), required=True)
    reason_text = fields.String(allow_none=True)
    prepared_by_id = fields.Integer(required=True)
    prepared_at = UtcDateTime(required=True)
    approved_by_id = fields.Integer(allow_none=True)
    approved_at = UtcDateTime(allow_none=True)
    accepted_at = UtcDateTime(allow_none=True)


def _decision(d: Decision, names: dict[int, str] | None = None) -> dict:
    names = names if names is not None else _names([d.bank_org_id])
    product = d.target.product
    data = {c.key: getattr(d, c.key) for c in d.__table__.columns}
    data.update(bank_name=names.get(d.bank_org_id, ""), product_id=product.id,
                product_name=product.name, amount=_minor(d.amount, d.currency),
                fees=_minor(d.fees_amount, d.currency) if d.kind is DecisionKind.OFFER
                else None,
                reasons=[RejectionReason(c) for c in (d.reason_codes or "").split(",") if c],
                interest=None, total_cost=None, apr=None, net_disbursed=None,
                total_repaid=None)
    cost = review.decision_cost(d)
    if cost is not None:
        data.update(interest=cost.interest.amount, total_cost=cost.total.amount, apr=cost.apr,
                    net_disbursed=cost.net_disbursed.amount, total_repaid=cost.repaid.amount)
    return data


class OfferInSchema(Schema):
    amount = fields.String(required=True, validate=AMOUNT_TEXT)
    currency = fields.String(required=True, validate=CURRENCY)
    annual_rate = fields.String(required=True, validate=FRACTION_TEXT, metadata={
        "description": "Within the product's range, a fraction: \"0.065\" is 6.5 %"})
    tenor_days = fields.Integer(required=True)
    fees = fields.String(allow_none=True, validate=AMOUNT_TEXT, metadata={
        "description": "Default: the product's arrangement fee"})
    conditions = Text(allow_none=True, validate=validate.Length(max=2000))
    expiry_date = fields.Date(allow_none=True, metadata={"description": "Default: in 14 days"})


class RejectionInSchema(Schema):
    reasons = fields.List(fields.Enum(RejectionReason, by_value=True), required=True,
                          validate=validate.Length(min=1, max=10))
    text = Text(required=True, validate=validate.Length(max=1000), metadata={
        "description": "A sentence for the SME (10 to 1,000 characters)"})


# --------------------------------------------------------------------------- requests

class RequestCollateralSchema(Schema):
    kind = fields.Enum(AssetKind, by_value=True, required=True)
    id = fields.Integer(required=True)
    label = fields.String(required=True)
    value = ExactAmount(required=True, metadata={"description": "When the request was made"})
    currency = fields.String(required=True)


class RequestTargetSchema(Schema):
    id = fields.Integer(required=True, metadata={"description": "The review id at the bank"})
    bank_org_id = fields.Integer(required=True)
    bank_name = fields.String(required=True)
    product_id = fields.Integer(required=True)
    product_name = fields.String(required=True)
    eligible_amount = ExactAmount(required=True, metadata={
        "description": "What the SME could borrow there when it sent the request"})
    binding = fields.String(required=True)
    binding_label = fields.String(required=True)


class FinancingRequestSchema(Schema):
    id = fields.Integer(required=True)
    sme_org_id = fields.Integer(required=True)
    sme_name = fields.String(required=True)
    kind = fields.Enum(ProductKind, by_value=True, required=True)
    amount = ExactAmount(required=True)
    currency = fields.String(required=True)
    tenor_days = fields.Integer(required=True)
    purpose = fields.String(required=True)
    status = fields.Enum(RequestStatus, by_value=True, required=True)
    accepted_offer_id = fields.Integer(allow_none=True)
    created_at = UtcDateTime(required=True)
    collateral = fields.List(fields.Nested(RequestCollateralSchema), required=True)
    targets = fields.List(fields.Nested(RequestTargetSchema), required=True, metadata={
        "description": "The banks asked (a bank sees only its own)"})


class FinancingRequestDetailSchema(FinancingRequestSchema):
    decisions = fields.List(fields.Nested(FinancingDecisionSchema), required=True, metadata={
        "description": "The SME: the approved offers and rejections; a bank: its own"})
    loan_id = fields.Integer(allow_none=True)


FinancingRequestPageSchema = _page_schema("FinancingRequestPage", FinancingRequestSchema)


def _request(r: FinancingRequest, user, names: dict[int, str] | None = None) -> dict:
    targets = [t for t in r.targets if not _is_bank(user) or t.bank_org_id == user.org_id]
    if names is None:
        names = _names([r.sme_org_id, *(t.bank_org_id for t in targets)])
    return {"id": r.id, "sme_org_id": r.sme_org_id, "sme_name": names.get(r.sme_org_id, ""),
            "kind": r.kind, "amount": r.money.amount, "currency": r.currency,
            "tenor_days": r.tenor_days, "purpose": r.purpose, "status": r.status,
            "accepted_offer_id": r.accepted_offer_id, "created_at": r.created_at,
            "collateral": [{"kind": c.asset_kind, "id": c.asset_id, "label": c.label,
                            "value": c.value.amount, "currency": c.value_currency}
                           for c in r.collateral],
            "targets": [_target(t, r, names) for t in targets]}


def _target(t, r: FinancingRequest, names: dict[int, str]) -> dict:
    return {"id": t.id, "bank_org_id": t.bank_org_id, "bank_name": names.get(t.bank_org_id, ""),
            "product_id": t.product_id, "product_name": t.product.name,
            "eligible_amount": _minor(t.eligible_amount, r.currency), "binding": t.binding,
            "binding_label": marketplace.binding_label(t.binding)}


def _request_detail(r: FinancingRequest, user) -> dict:
    decisions = queries.decisions_visible(r, user)
    names = _names([r.sme_org_id, *(t.bank_org_id for t in r.targets)])
    data = _request(r, user, names)
    data["decisions"] = [_decision(d, names) for d in decisions]
    loan = loans.loan_for_request(r.id)
    data["loan_id"] = loan.id if loan is not None and authz.can(
        user, "financing.read_loan", loan) else None
    return data


class FinancingRequestQuerySchema(Schema):
    status = fields.Enum(RequestStatus, by_value=True)
    page = fields.Integer(load_default=1, validate=PAGE)


class CollateralRefSchema(Schema):
    kind = fields.Enum(AssetKind, by_value=True, required=True)
    id = fields.Integer(required=True, validate=OBJECT_ID)


class FinancingRequestInSchema(Schema):
    amount = fields.String(required=True, validate=AMOUNT_TEXT)
    currency = fields.String(required=True, validate=CURRENCY)
    tenor_days = fields.Integer(required=True)
    purpose = Text(required=True, validate=validate.Length(max=500))
    collateral = fields.List(fields.Nested(CollateralRefSchema), required=True,
                             validate=validate.Length(max=100))
    product_ids = fields.List(fields.Integer(validate=OBJECT_ID), required=True,
                              validate=validate.Length(max=20), metadata={
                                  "description": "One product per bank, of one kind"})


# --------------------------------------------------------------------------- review

class ReviewRowSchema(Schema):
    target_id = fields.Integer(required=True)
    request_id = fields.Integer(required=True)
    sme_org_id = fields.Integer(required=True)
    sme_name = fields.String(required=True)
    kind = fields.Enum(ProductKind, by_value=True, required=True)
    amount = ExactAmount(required=True)
    currency = fields.String(required=True)
    tenor_days = fields.Integer(required=True)
    purpose = fields.String(required=True)
    request_status = fields.Enum(RequestStatus, by_value=True, required=True)
    product_id = fields.Integer(required=True)
    product_name = fields.String(required=True)
    eligible_amount = ExactAmount(required=True)
    binding = fields.String(required=True)
    received_at = UtcDateTime(required=True)
    decision = fields.Nested(FinancingDecisionSchema, allow_none=True, metadata={
        "description": "Your bank's latest decision on it"})


ReviewPageSchema = _page_schema("ReviewPage", ReviewRowSchema)


class ReviewQuerySchema(Schema):
    show = fields.String(load_default="to_decide", validate=validate.OneOf(
        queries.QUEUE_FILTERS), metadata={
        "description": "to_decide: no live decision yet; to_approve: prepared, awaiting an "
                       "approver; decided: the rest; all"})
    page = fields.Integer(load_default=1, validate=PAGE)


class SmeSchema(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    name_en = fields.String(allow_none=True)
    credit_code = fields.String(allow_none=True)
    customs_code = fields.String(allow_none=True)
    country = fields.String(required=True)
    address = fields.String(allow_none=True)


class ReceiptBriefSchema(Schema):
    id = fields.Integer(required=True)
    number = fields.String(required=True)
    status = fields.String(required=True)
    insured = fields.Boolean(required=True)
    expiry_date = fields.Date(required=True)


class EvidenceItemSchema(Schema):
    kind = fields.Enum(AssetKind, by_value=True, required=True)
    id = fields.Integer(required=True)
    label = fields.String(required=True)
    value_at_request = ExactAmount(required=True)
    value = ExactAmount(allow_none=True, metadata={"description": "Today"})
    currency = fields.String(allow_none=True)
    available = fields.Boolean(required=True)
    problem = fields.String(allow_none=True)
    verdict = fields.String(allow_none=True, metadata={
        "description": "Three-document matching of the order: verified, mismatch, ..."})
    verdict_reasons = fields.List(fields.Dict(), required=True)
    pledge = fields.String(allow_none=True, metadata={
        "description": "Who holds it now: you, another bank, or null"})
    insured = fields.Boolean(required=True)
    receipt = fields.Nested(ReceiptBriefSchema, allow_none=True)


class SmeHistorySchema(Schema):
    member_since = fields.Date(required=True)
    orders = fields.Integer(required=True)
    verified = fields.Integer(required=True)
    mismatched = fields.Integer(required=True)
    loans = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True,
                        metadata={"description": "The SME's loans by status"})
    repaid_late = fields.Integer(required=True)
    max_days_late = fields.Integer(required=True)


class RiskAlertSchema(Schema):
    id = fields.Integer(required=True)
    rule = fields.String(required=True)
    severity = fields.Enum(Severity, by_value=True, required=True)
    status = fields.Enum(AlertStatus, by_value=True, required=True)
    message = fields.String(required=True)
    raised_at = UtcDateTime(required=True)


class EvidencePackSchema(Schema):
    target = fields.Nested(RequestTargetSchema, required=True)
    request = fields.Nested(FinancingRequestSchema, required=True)
    sme = fields.Nested(SmeSchema, required=True)
    rating = fields.String(allow_none=True)
    rating_score = fields.Integer(allow_none=True)
    rating_factors = fields.List(fields.Nested(RatingFactorSchema), required=True, metadata={
        "description": "What made the rating: each factor's value and points"})
    items = fields.List(fields.Nested(EvidenceItemSchema), required=True)
    history = fields.Nested(SmeHistorySchema, required=True)
    alerts = fields.List(fields.Nested(RiskAlertSchema), required=True)
    eligibility = fields.Nested(EligibilitySchema, required=True, metadata={
        "description": "What the SME can borrow here now, against the request's collateral"})
    decisions = fields.List(fields.Nested(FinancingDecisionSchema), required=True)


def _evidence(pack: review.EvidencePack, user) -> dict:
    names = _names([pack.sme.id, pack.target.bank_org_id])
    items = []
    for row in pack.items:
        receipt = row.receipt
        items.append({
            "kind": row.collateral.asset_kind, "id": row.collateral.asset_id,
            "label": row.collateral.label, "value_at_request": row.collateral.value.amount,
            "value": row.item.value.amount if row.item.value else None,
            "currency": row.item.value.currency if row.item.value else None,
            "available": row.item.available, "problem": row.item.problem,
            "verdict": row.verdict, "verdict_reasons": list(row.verdict_reasons),
            "pledge": row.pledge, "insured": row.insured,
            "receipt": None if receipt is None else {
                "id": receipt.id, "number": receipt.number, "status": receipt.status.value,
                "insured": receipt.insured, "expiry_date": receipt.expiry_date}})
    sme = pack.sme
    # An alert another bank is party to (its loan to the SME is overdue) names that bank's
    # loan: a bank sees only the alerts that concern no bank or itself.
    alerts = [a for a in pack.alerts
              if not _is_bank(user) or a.party_org_id in (None, user.org_id)]
    return {
        "target": _target(pack.target, pack.request, names),
        "request": _request(pack.request, user, names),
        "sme": {"id": sme.id, "name": sme.name, "name_en": sme.name_en,
                "credit_code": sme.credit_code, "customs_code": sme.customs_code,
                "country": sme.country, "address": sme.address},
        "rating": pack.rating,
        "rating_score": pack.rating_record.score if pack.rating_record else None,
        "rating_factors": factors_of(pack.rating_record) if pack.rating_record else [],
        "items": items, "history": vars(pack.history),
        "alerts": [{"id": a.id, "rule": a.rule, "severity": a.severity, "status": a.status,
                    "message": a.message, "raised_at": a.raised_at} for a in alerts],
        "eligibility": _eligibility(pack.eligibility),
        "decisions": [_decision(d, names) for d in pack.decisions]}


# --------------------------------------------------------------------------- loans

class LoanSchema(Schema):
    id = fields.Integer(required=True)
    decision_id = fields.Integer(required=True)
    request_id = fields.Integer(required=True)
    product_id = fields.Integer(required=True)
    bank_org_id = fields.Integer(required=True)
    bank_name = fields.String(required=True)
    sme_org_id = fields.Integer(required=True)
    sme_name = fields.String(required=True)
    status = fields.Enum(LoanStatus, by_value=True, required=True)
    principal = ExactAmount(required=True)
    currency = fields.String(required=True)
    annual_rate = DecimalText(required=True)
    day_count = fields.Integer(required=True)
    tenor_days = fields.Integer(required=True)
    fees = ExactAmount(required=True)
    repayment_type = fields.Enum(RepaymentType, by_value=True, required=True)
    penalty_rate = DecimalText(required=True)
    default_after_days = fields.Integer(required=True)
    facility_id = fields.Integer(allow_none=True)
    accepted_at = UtcDateTime(required=True)
    disbursed_at = UtcDateTime(allow_none=True)
    disbursed_on = fields.Date(allow_none=True)
    maturity_date = fields.Date(allow_none=True)
    disbursement_record_id = fields.Integer(allow_none=True)
    closed_at = UtcDateTime(allow_none=True)


class InstalmentSchema(Schema):
    number = fields.Integer(required=True)
    period_start = fields.Date(required=True)
    due_date = fields.Date(required=True)
    principal_due = ExactAmount(required=True)
    interest_due = ExactAmount(required=True)
    principal_paid = ExactAmount(required=True)
    interest_paid = ExactAmount(required=True)
    penalty_accrued = ExactAmount(required=True)
    penalty_paid = ExactAmount(required=True)
    left = ExactAmount(required=True)
    status = fields.Enum(InstalmentStatus, by_value=True, required=True)
    overdue_since = fields.Date(allow_none=True)
    paid_on = fields.Date(allow_none=True)


class LoanPositionSchema(Schema):
    on = fields.Date(required=True)
    currency = fields.String(required=True)
    penalty = ExactAmount(required=True)
    overdue_interest = ExactAmount(required=True)
    interest = ExactAmount(required=True, metadata={
        "description": "Fallen due today, and accrued in the current period"})
    principal = ExactAmount(required=True)
    overdue_principal = ExactAmount(required=True)
    unapplied = ExactAmount(required=True, metadata={"description": "Paid and not needed"})
    total = ExactAmount(required=True, metadata={"description": "What repays the loan today"})


class RepaymentAllocationSchema(Schema):
    instalment_number = fields.Integer(required=True)
    component = fields.String(required=True, metadata={
        "description": "penalty, interest or principal"})
    amount = ExactAmount(required=True)
    value_date = fields.Date(required=True)


class RepaymentSchema(Schema):
    id = fields.Integer(required=True)
    loan_id = fields.Integer(required=True)
    amount = ExactAmount(required=True)
    currency = fields.String(required=True)
    method = fields.Enum(RepaymentMethod, by_value=True, required=True)
    status = fields.Enum(RepaymentStatus, by_value=True, required=True)
    settlement_record_id = fields.Integer(required=True, metadata={
        "description": "Pay it there: the bank confirms a transfer; a card is paid through "
                       "/api/v1/settlement/records/{id}/card-payment"})
    applied_amount = ExactAmount(allow_none=True, metadata={
        "description": "In the loan's currency, once paid"})
    applied_on = fields.Date(allow_none=True)
    created_at = UtcDateTime(required=True)
    allocations = fields.List(fields.Nested(RepaymentAllocationSchema), required=True)


class LoanDetailSchema(LoanSchema):
    schedule = fields.List(fields.Nested(InstalmentSchema), required=True)
    position = fields.Nested(LoanPositionSchema, required=True, metadata={
        "description": "What is owed today"})
    repayments = fields.List(fields.Nested(RepaymentSchema), required=True)
    contract_number = fields.String(allow_none=True)


LoanPageSchema = _page_schema("LoanPage", LoanSchema)


def _loan(loan: Loan, names: dict[int, str] | None = None) -> dict:
    names = names if names is not None else _names([loan.bank_org_id, loan.sme_org_id])
    data = {c.key: getattr(loan, c.key) for c in loan.__table__.columns}
    data.update(principal=loan.principal.amount, fees=loan.fees.amount,
                bank_name=names.get(loan.bank_org_id, ""),
                sme_name=names.get(loan.sme_org_id, ""))
    return data


def _repayment(r, loan: Loan) -> dict:
    numbers = {i.id: i.number for i in loan.instalments}
    return {"id": r.id, "loan_id": r.loan_id, "amount": r.money.amount, "currency": r.currency,
            "method": r.method, "status": r.status,
            "settlement_record_id": r.settlement_record_id,
            "applied_amount": _minor(r.applied_amount, loan.currency),
            "applied_on": r.applied_on, "created_at": r.created_at,
            "allocations": [{"instalment_number": numbers.get(a.instalment_id, 0),
                             "component": a.component.value,
                             "amount": _minor(a.amount, loan.currency),
                             "value_date": a.value_date} for a in queries.allocations(r)]}


def _loan_detail(loan: Loan) -> dict:
    data = _loan(loan)
    m = lambda units: _minor(units, loan.currency)  # noqa: E731
    data["schedule"] = [{
        "number": i.number, "period_start": i.period_start, "due_date": i.due_date,
        "principal_due": m(i.principal_due), "interest_due": m(i.interest_due),
        "principal_paid": m(i.principal_paid), "interest_paid": m(i.interest_paid),
        "penalty_accrued": m(i.penalty_accrued), "penalty_paid": m(i.penalty_paid),
        "left": m(i.total_left), "status": i.status, "overdue_since": i.overdue_since,
        "paid_on": i.paid_on} for i in queries.schedule(loan)]
    owed = loans.position(loan)
    data["position"] = {"on": owed.on, "currency": loan.currency,
                        "penalty": owed.penalty.amount,
                        "overdue_interest": owed.overdue_interest.amount,
                        "interest": owed.interest.amount, "principal": owed.principal.amount,
                        "overdue_principal": owed.overdue_principal.amount,
                        "unapplied": owed.unapplied.amount, "total": owed.total.amount}
    data["repayments"] = [_repayment(r, loan) for r in queries.repayments(loan)]
    contract = queries.contract_for(loan)
    data["contract_number"] = contract.number if contract else None
    return data


class LoanQuerySchema(Schema):
    status = fields.Enum(LoanStatus, by_value=True)
    page = fields.Integer(load_default=1, validate=PAGE)


class DisburseSchema(Schema):
    reference = Text(required=True, validate=validate.Length(max=80), metadata={
        "description": "Your transfer's reference (4 to 80 letters, digits, spaces, / . _ -)"})
    receive_currency = fields.String(allow_none=True, validate=CURRENCY, metadata={
        "description": "Pay the SME in another currency, converted at the day's rate"})


class LoanCancelSchema(Schema):
    reason = Text(required=True, validate=validate.Length(max=500), metadata={
        "description": "5 to 500 characters"})


class RepaymentInSchema(Schema):
    amount = fields.String(required=True, validate=AMOUNT_TEXT)
    currency = fields.String(required=True, validate=CURRENCY, metadata={
        "description": "Another currency than the loan's is converted at the day's rate"})
    method = fields.Enum(RepaymentMethod, by_value=True,
                         load_default=RepaymentMethod.BANK_TRANSFER)


class LoanContractSchema(Schema):
    loan_id = fields.Integer(required=True)
    number = fields.String(required=True)
    terms = fields.Dict(required=True, metadata={"description": "The terms fixed at acceptance"})
    terms_json = fields.String(required=True, metadata={
        "description": "The canonical JSON text of the terms: its SHA-256 is terms_sha256"})
    terms_sha256 = fields.String(required=True)
    terms_verified = fields.Boolean(required=True, metadata={
        "description": "The stored terms still match their fingerprint"})
    pdf_sha256 = fields.String(required=True)
    rendered_at = UtcDateTime(required=True)
    pdf_url = fields.String(required=True, metadata={
        "description": "The PDF in the browser (signed in)"})
    pdf_api_url = fields.String(required=True, metadata={
        "description": "The PDF over the API (with the bearer token)"})


def _contract(loan: Loan, *, lock: bool = False) -> Contract:
    """The loan's contract, its PDF rendered and stored if it has not been yet (rendered
    once: the row is locked while it is)."""
    query = select(Contract).where(Contract.loan_id == loan.id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    contract = db.session.execute(query).scalar_one_or_none()
    if contract is None:
        raise NotFound("contract", loan.id)
    if contract.pdf is None:
        if not lock:
            return _contract(loan, lock=True)
        contracts.ensure_pdf(contract)
    return contract


# --------------------------------------------------------------------------- endpoints:
# products and facilities

@blp.route("/products")
class Products(MethodView):
    @blp.arguments(FinancingProductQuerySchema, location="query")
    @blp.response(200, ProductPageSchema)
    @documents_errors(blp, 422)
    @authz.allow(authz.FINANCING)
    def get(self, args):
        """Financing products: a bank its own (paused ones too), an SME the active ones of
        every bank, the platform operator all; newest first."""
        page = queries.products(current_user, kind=args.get("kind"), page=args["page"])
        names = _names(p.bank_org_id for p in page.items)
        return page_body(page, [_product(p, names) for p in page.items])

    @blp.arguments(FinancingProductInSchema)
    @blp.response(201, FinancingProductSchema)
    @documents_errors(blp, 400, 409, 413, 415, 422)
    @idempotent(blp)
    @authz.allow(authz.FINANCING_BANK)
    def post(self, data):
        """A bank officer publishes a product (active at once). Rates and ratios are
        fractions as strings. 409 when the bank already has a product of that name."""
        product = products.create_product(products.ProductTerms(
            name=data["name"], kind=data["kind"], currencies=data["currencies"],
            max_advance_rate=_fraction(data["max_advance_rate"]),
            rate_min=_fraction(data["rate_min"]), rate_max=_fraction(data["rate_max"]),
            day_count=data["day_count"], max_tenor_days=data["max_tenor_days"],
            repayment_type=data["repayment_type"],
            penalty_rate=_fraction(data["penalty_rate"]),
            default_after_days=data["default_after_days"],
            arrangement_fee_rate=_fraction(data["arrangement_fee_rate"]),
            margin_call_ltv=_fraction(data.get("margin_call_ltv")),
            liquidation_ltv=_fraction(data.get("liquidation_ltv")),
            cure_days=data.get("cure_days"), min_rating=data.get("min_rating"),
            require_verified=data["require_verified"],
            require_insurance=data["require_insurance"],
            description=data.get("description")), actor=current_user)
        return _product(product)


@blp.route(f"/products/<{ID}:product_id>")
class ProductDetail(MethodView):
    @blp.response(200, FinancingProductSchema)
    @documents_errors(blp, 404)
    @authz.allow(authz.FINANCING)
    def get(self, product_id: int):
        """One product (a paused one: only its bank and the platform operator)."""
        return _product(products.get_product(product_id, actor=current_user))


@blp.route(f"/products/<{ID}:product_id>/pause")
class ProductPause(MethodView):
    @blp.arguments(FinancingNoteSchema)
    @blp.response(200, FinancingProductSchema)
    @documents_errors(blp, 400, 404, 409, 413, 415, 422)
    @idempotent(blp)
    @authz.allow(authz.FINANCING_BANK)
    def post(self, data, product_id: int):
        """Pause a product: it takes no new requests (those already sent go on)."""
        return _product(products.set_product_status(product_id, "pause", actor=current_user,
                                                    note=data.get("note")))


@blp.route(f"/products/<{ID}:product_id>/resume")
class ProductResume(MethodView):
    @blp.arguments(FinancingNoteSchema)
    @blp.response(200, FinancingProductSchema)
    @documents_errors(blp, 400, 404, 409, 413, 415, 422)
    @idempotent(blp)
    @authz.allow(authz.FINANCING_BANK)
    def post(self, data, product_id: int):
        """Offer a paused product again."""
        return _product(products.set_product_status(product_id, "resume",
                                                    actor=current_user,
                                                    note=data.get("note")))


@blp.route("/facilities")
class Facilities(MethodView):
    @blp.response(200, FacilityListSchema)
    @documents_errors(blp)
    @authz.allow(authz.FINANCING)
    def get(self):
        """Credit facilities: those a bank granted, those an SME holds (the platform
        operator: all), with what is used, held and available."""
        found = queries.facilities(current_user)
        names = _names([x for f in found for x in (f.bank_org_id, f.sme_org_id)])
        return {"items": [_facility(f, names) for f in found]}

    @blp.arguments(FacilityInSchema)
    @blp.response(201, FacilitySchema)
    @documents_errors(blp, 400, 409, 413, 415, 422)
    @idempotent(blp)
    @authz.allow(authz.FINANCING_BANK)
    def post(self, data):
        """A bank approver grants an SME a credit line in one currency. Granting again (the
        same SME and currency) changes the limit and the expiry of that facility."""
        facility = products.grant_facility(
            actor=current_user, sme_org_id=data["sme_org_id"],
            limit=_money(data, "limit"), expiry_date=data["expiry_date"],
            note=data.get("note"))
        return _facility(facility)


# --------------------------------------------------------------------------- marketplace,
# requests and acceptance

@blp.route("/marketplace")
class Marketplace(MethodView):
    @blp.arguments(MarketplaceQuerySchema, location="query")
    @blp.response(200, MarketplaceSchema)
    @documents_errors(blp, 422)
    @authz.allow(authz.FINANCING_SME)
    def get(self, args):
        """Every active product with what the SME could borrow there against what it has
        now (the binding limit, the collateral's value, why not, the items), eligible
        products first, the largest amounts first."""
        views = marketplace.offers_for_sme(current_user, currency=args.get("currency"))
        names = {v.product.bank_org_id: v.bank_name for v in views}
        sets: dict[str, list[dict]] = {}
        entries = []
        for v in views:
            key = v.product.kind.value + (":verified" if v.product.require_verified else "")
            items = [_item(i) for i in v.items]
            if key in sets and sets[key] != items:   # an indemnity assigned to some bank
                key = f"{key}:bank-{v.product.bank_org_id}"
            sets.setdefault(key, items)
            entries.append({"product": _product(v.product, names),
                            "eligibility": _eligibility(v.eligibility), "collateral_set": key})
        return {"items": entries,
                "collateral_sets": [{"key": k, "items": items} for k, items in sets.items()]}


@blp.route("/requests")
class Requests(MethodView):
    @blp.arguments(FinancingRequestQuerySchema, location="query")
    @blp.response(200, FinancingRequestPageSchema)
    @documents_errors(blp, 422)
    @authz.allow(authz.FINANCING)
    def get(self, args):
        """Financing requests: an SME its own, a bank those sent to it, the platform
        operator all; newest first."""
        page = queries.requests(current_user, status=args.get("status"), page=args["page"])
        names = _names([x for r in page.items
                        for x in (r.sme_org_id, *(t.bank_org_id for t in r.targets))])
        return page_body(page, [_request(r, current_user, names) for r in page.items])

    @blp.arguments(FinancingRequestInSchema)
    @blp.response(201, FinancingRequestDetailSchema)
    @documents_errors(blp, 400, 409, 413, 415, 422)
    @idempotent(blp)
    @authz.allow(authz.FINANCING_SME)
    def post(self, data):
        """The SME asks one or several banks (one product each, of one kind) for financing
        against chosen collateral. 422 ``above_eligible_amount`` (field ``amount``) when
        it asks more than it can borrow at one of them."""
        made = marketplace.submit_request(marketplace.RequestInput(
            amount=_money(data, "amount"), tenor_days=data["tenor_days"],
            purpose=data["purpose"],
            collateral=[(c["kind"].value, c["id"]) for c in data["collateral"]],
            product_ids=data["product_ids"]), actor=current_user)
        return _request_detail(made, current_user)


@blp.route(f"/requests/<{ID}:request_id>")
class RequestDetail(MethodView):
    @blp.response(200, FinancingRequestDetailSchema)
    @documents_errors(blp, 404)
    @authz.allow(authz.FINANCING)
    def get(self, request_id: int):
        """One request with its collateral, the banks asked and the decisions you may see:
        the SME the approved offers (amount, rate, fees, tenor, expiry, total cost, APR)
        and rejections (reasons); a bank its own."""
        return _request_detail(marketplace.get_request(request_id, actor=current_user),
                               current_user)


@blp.route(f"/requests/<{ID}:request_id>/withdraw")
class RequestWithdraw(MethodView):
    @blp.response(200, FinancingRequestDetailSchema)
    @documents_errors(blp, 404, 409, 422)
    @idempotent(blp)
    @authz.allow(authz.FINANCING_SME)
    def post(self, request_id: int):
        """The SME withdraws a request it has not accepted an offer on; the banks' offers
        lapse."""
        return _request_detail(marketplace.withdraw_request(request_id, actor=current_user),
                               current_user)


@blp.route(f"/offers/<{ID}:decision_id>/accept")
class OfferAccept(MethodView):
    @blp.response(201, LoanDetailSchema)
    @documents_errors(blp, 404, 409, 422)
    @idempotent(blp)
    @authz.allow(authz.FINANCING_SME)
    def post(self, decision_id: int):
        """The SME accepts an approved offer: the loan is made (awaiting disbursement), the
        other offers lapse, the collateral is locked and the contract fixed. Accepting it
        again returns the same loan. 409 ``offer_lapsed``, ``offer_expired``,
        ``offer_withdrawn`` or ``request_closed``."""
        return _loan_detail(loans.accept_offer(decision_id, actor=current_user))


# --------------------------------------------------------------------------- review

@blp.route("/review")
class Review(MethodView):
    @blp.arguments(ReviewQuerySchema, location="query")
    @blp.response(200, ReviewPageSchema)
    @documents_errors(blp, 422)
    @authz.allow(authz.FINANCING_BANK)
    def get(self, args):
        """The requests sent to your bank, each with your latest decision on it."""
        page = queries.review_queue(current_user, show=args["show"], page=args["page"])
        names = _names([x for row in page.items
                        for x in (row.request.sme_org_id, row.target.bank_org_id)])
        items = []
        for row in page.items:
            r, t = row.request, row.target
            items.append({
                "target_id": t.id, "request_id": r.id, "sme_org_id": r.sme_org_id,
                "sme_name": names.get(r.sme_org_id, ""), "kind": r.kind,
                "amount": r.money.amount, "currency": r.currency, "tenor_days": r.tenor_days,
                "purpose": r.purpose, "request_status": r.status, "product_id": t.product_id,
                "product_name": t.product.name,
                "eligible_amount": _minor(t.eligible_amount, r.currency),
                "binding": t.binding, "received_at": t.created_at,
                "decision": _decision(row.decision, names) if row.decision else None})
        return page_body(page, items)


@blp.route(f"/review/<{ID}:target_id>")
class ReviewDetail(MethodView):
    @blp.response(200, EvidencePackSchema)
    @documents_errors(blp, 404)
    @authz.allow(authz.FINANCING_BANK)
    def get(self, target_id: int):
        """The evidence pack of a request sent to your bank: the SME, its collateral as it
        stands now (match verdicts, pledges), its history and open alerts, what it can
        borrow here now, and your bank's decisions on it."""
        return _evidence(review.evidence_pack(target_id, actor=current_user), current_user)


@blp.route(f"/review/<{ID}:target_id>/offer")
class ReviewOffer(MethodView):
    @blp.arguments(OfferInSchema)
    @blp.response(201, FinancingDecisionSchema)
    @documents_errors(blp, 400, 404, 409, 413, 415, 422)
    @idempotent(blp)
    @authz.allow(authz.FINANCING_BANK)
    def post(self, data, target_id: int):
        """An officer prepares an offer (up to what the SME can borrow here, a rate within
        the product's range, a tenor within its maximum); the SME sees it once another
        user, an approver, approves it. 409 ``decision_exists`` while one is live."""
        fees = _money(data, "fees") if data.get("fees") is not None else None
        decision = review.prepare_offer(target_id, review.OfferTerms(
            amount=_money(data, "amount"), annual_rate=_fraction(data["annual_rate"]),
            tenor_days=data["tenor_days"], fees=fees, conditions=data.get("conditions"),
            expiry_date=data.get("expiry_date")), actor=current_user)
        return _decision(decision)


@blp.route(f"/review/<{ID}:target_id>/rejection")
class ReviewRejection(MethodView):
    @blp.arguments(RejectionInSchema)
    @blp.response(201, FinancingDecisionSchema)
    @documents_errors(blp, 400, 404, 409, 413, 415, 422)
    @idempotent(blp)
    @authz.allow(authz.FINANCING_BANK)
    def post(self, data, target_id: int):
        """An officer prepares a rejection (reason codes and a sentence), approved like an
        offer before the SME sees it."""
        decision = review.prepare_rejection(
            target_id, reasons=[r.value for r in data["reasons"]], text=data["text"],
            actor=current_user)
        return _decision(decision)


@blp.route(f"/decisions/<{ID}:decision_id>/approve")
class DecisionApprove(MethodView):
    @blp.response(200, FinancingDecisionSchema)
    @documents_errors(blp, 404, 409, 422)
    @idempotent(blp)
    @authz.allow(authz.FINANCING_BANK)
    def post(self, decision_id: int):
        """An approver of the bank, not the user who prepared it, approves an offer or a
        rejection; the SME sees it from now on. 403 ``four_eyes`` for the preparer."""
        return _decision(review.approve(decision_id, actor=current_user))


@blp.route(f"/decisions/<{ID}:decision_id>/withdraw")
class DecisionWithdraw(MethodView):
    @blp.arguments(FinancingNoteSchema)
    @blp.response(200, FinancingDecisionSchema)
    @documents_errors(blp, 400, 404, 409, 413, 415, 422)
    @idempotent(blp)
    @authz.allow(authz.FINANCING_BANK)
    def post(self, data, decision_id: int):
        """The bank takes back an offer or rejection the SME has not accepted."""
        return _decision(review.withdraw_decision(decision_id, actor=current_user,
                                                  note=data.get("note")))


# --------------------------------------------------------------------------- loans

@blp.route("/loans")
class Loans(MethodView):
    @blp.arguments(LoanQuerySchema, location="query")
    @blp.response(200, LoanPageSchema)
    @documents_errors(blp, 422)
    @authz.allow(authz.FINANCING)
    def get(self, args):
        """Loans: an SME's, a bank's (the platform operator: all), newest first."""
        page = queries.loans(current_user, status=args.get("status"), page=args["page"])
        names = _names([x for loan in page.items for x in (loan.bank_org_id, loan.sme_org_id)])
        return page_body(page, [_loan(loan, names) for loan in page.items])


@blp.route(f"/loans/<{ID}:loan_id>")
class LoanDetail(MethodView):
    @blp.response(200, LoanDetailSchema)
    @documents_errors(blp, 404)
    @authz.allow(authz.FINANCING)
    def get(self, loan_id: int):
        """One loan: its terms, the schedule with each instalment's figures, what is owed
        today (to the day) and the repayments with how each was applied."""
        return _loan_detail(loans.get_loan(loan_id, actor=current_user))


@blp.route(f"/loans/<{ID}:loan_id>/disburse")
class LoanDisburse(MethodView):
    @blp.arguments(DisburseSchema)
    @blp.response(200, LoanDetailSchema)
    @documents_errors(blp, 400, 404, 409, 413, 415, 422)
    @idempotent(blp)
    @authz.allow(authz.FINANCING_BANK)
    def post(self, data, loan_id: int):
        """The bank records that it paid the loan out (its transfer's reference): the
        schedule starts today. The same reference again returns the loan as it is."""
        return _loan_detail(loans.disburse(loan_id, actor=current_user,
                                           reference=data["reference"],
                                           receive_currency=data.get("receive_currency")))


@blp.route(f"/loans/<{ID}:loan_id>/cancel")
class LoanCancel(MethodView):
    @blp.arguments(LoanCancelSchema)
    @blp.response(200, LoanDetailSchema)
    @documents_errors(blp, 400, 404, 409, 413, 415, 422)
    @idempotent(blp)
    @authz.allow(authz.FINANCING)
    def post(self, data, loan_id: int):
        """Call a loan off before disbursement (a bank approver, or the SME): the facility
        hold is voided and the collateral released."""
        return _loan_detail(loans.cancel_loan(loan_id, actor=current_user,
                                              reason=data["reason"]))


@blp.route(f"/loans/<{ID}:loan_id>/repayments")
class LoanRepayments(MethodView):
    @blp.arguments(RepaymentInSchema)
    @blp.response(201, RepaymentSchema)
    @documents_errors(blp, 400, 404, 409, 413, 415, 422)
    @idempotent(blp)
    @authz.allow(authz.FINANCING_SME)
    def post(self, data, loan_id: int):
        """The SME repays (at most what it owes today). The ``Idempotency-Key`` header is
        required (at most 100 characters): it is also the repayment's own key. The answer
        names the settlement record to pay: by transfer, the bank confirms its arrival
        there; by card, pay it through ``/api/v1/settlement/records/{id}/card-payment``."""
        key = (request.headers.get(IDEMPOTENCY_KEY) or "").strip()
        if not 1 <= len(key) <= 100:
            raise ValidationFailed(gettext("Send an Idempotency-Key header of 1 to 100 "
                                           "characters: it is the repayment's key."),
                                   field=IDEMPOTENCY_KEY)
        repayment = loans.start_repayment(loan_id, actor=current_user,
                                          amount=_money(data, "amount"),
                                          method=data["method"], key=key)
        return _repayment(repayment, loans.get_loan(loan_id))


@blp.route(f"/loans/<{ID}:loan_id>/contract")
class LoanContract(MethodView):
    @blp.response(200, LoanContractSchema)
    @documents_errors(blp, 404)
    @authz.allow(authz.FINANCING)
    def get(self, loan_id: int):
        """The contract: the terms fixed at acceptance (and their canonical text), their
        SHA-256 (printed in the PDF), and the PDF's own SHA-256 and links."""
        loan = loans.get_loan(loan_id, actor=current_user)
        contract = _contract(loan)
        return {"loan_id": loan.id, "number": contract.number,
                "terms": json.loads(contract.terms),
                "terms_json": contract.terms, "terms_sha256": contract.terms_sha256,
                "terms_verified": contracts.verify_terms(contract),
                "pdf_sha256": contract.pdf_sha256, "rendered_at": contract.rendered_at,
                "pdf_url": f"/financing/loans/{loan.id}/contract.pdf",
                "pdf_api_url": f"{blp.url_prefix}/loans/{loan.id}/contract.pdf"}


@blp.route(f"/loans/<{ID}:loan_id>/contract.pdf")
class LoanContractPdf(MethodView):
    @blp.alt_response(200, schema={"type": "string", "format": "binary"},
                      content_type="application/pdf", success=True,
                      description="The contract PDF, as stored")
    @documents_errors(blp, 404)
    @authz.allow(authz.FINANCING)
    def get(self, loan_id: int):
        """The contract PDF (rendered once and kept; its SHA-256 is ``pdf_sha256``)."""
        loan = loans.get_loan(loan_id, actor=current_user)
        contract = _contract(loan)
        return send_file(io.BytesIO(contract.pdf), mimetype="application/pdf",
                         download_name=f"{contract.number}.pdf")
