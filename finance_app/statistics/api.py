"""The statistics dashboard's figures over the API (the platform operator's only): the same
figures as the page and the exports, for a period (``from``/``to``: a month YYYY-MM or a
date YYYY-MM-DD) and a pilot-zone area (``zone``). Amounts are decimal strings, ratios
fractions as strings ("0.6667"), null where there is nothing to divide by."""
from __future__ import annotations

from flask.views import MethodView
from flask_login import current_user
from marshmallow import Schema, fields, validate

from finance_app import authz
from finance_app.api.schemas import ApiBlueprint, ExactAmount, Text, documents_errors
from finance_app.statistics import queries

blp = ApiBlueprint("statistics_api", __name__, url_prefix="/api/v1/statistics",
                   description="Statistics monitoring: the zone's cross-border e-commerce, "
                               "financing, loan quality and export credit insurance")

PERIOD = validate.Length(max=10)


class FiltersQuery(Schema):
    # read as text and checked by queries.parse_filters, which names the field at fault
    from_ = Text(data_key="from", validate=PERIOD,
                 metadata={"description": "First month (YYYY-MM) or day (YYYY-MM-DD)",
                           "example": "2026-01"})
    to = Text(validate=PERIOD, metadata={"description": "Last month or day",
                                         "example": "2026-12"})
    zone = Text(validate=validate.Length(max=40),
                metadata={"description": "A pilot-zone area an SME is filed in"})


def Ratio(**kwargs):  # noqa: N802
    return fields.Decimal(as_string=True, allow_none=True, required=True,
                          metadata={"type": "string", "pattern": r"^\d+(\.\d+)?$",
                                    "example": "0.6667", **kwargs.pop("metadata", {})}, **kwargs)


def Cny(**kwargs):  # noqa: N802
    return ExactAmount(required=True, **kwargs)


class FiltersSchema(Schema):
    date_from = fields.Date(required=True, allow_none=True, data_key="from")
    date_to = fields.Date(required=True, allow_none=True, data_key="to")
    zone = fields.String(required=True, allow_none=True)


class VolumeRowSchema(Schema):
    key = fields.String(required=True, metadata={
        "description": "The trade mode, country (ISO 3166), currency or month (YYYY-MM)"})
    orders = fields.Integer(required=True)
    verified = fields.Integer(required=True)
    verified_share = Ratio()
    amount_cny = Cny()
    amount = ExactAmount(metadata={"description": "In the row's currency (by currency only)"})
    by_mode = fields.Dict(keys=fields.String(), values=ExactAmount(),
                          metadata={"description": "CNY by trade mode (by month only)"})


class TradeSchema(Schema):
    totals = fields.Nested(VolumeRowSchema, required=True)
    by_mode = fields.List(fields.Nested(VolumeRowSchema), required=True)
    by_country = fields.List(fields.Nested(VolumeRowSchema), required=True)
    by_currency = fields.List(fields.Nested(VolumeRowSchema), required=True)
    by_month = fields.List(fields.Nested(VolumeRowSchema), required=True)


class FinancingRowSchema(Schema):
    key = fields.String(required=True, metadata={
        "description": "The product kind, bank organisation id or currency"})
    label = fields.String(required=True)
    requests = fields.Integer(required=True)
    requested_cny = Cny()
    offers = fields.Integer(required=True)
    offered_cny = Cny()
    rejections = fields.Integer(required=True)
    approval_rate = Ratio()
    loans = fields.Integer(required=True)
    lent_cny = Cny()
    requested = ExactAmount(metadata={"description": "In the currency (by currency only)"})
    offered = ExactAmount()
    lent = ExactAmount()


class FinancingSchema(Schema):
    totals = fields.Nested(FinancingRowSchema, required=True)
    by_kind = fields.List(fields.Nested(FinancingRowSchema), required=True)
    by_bank = fields.List(fields.Nested(FinancingRowSchema), required=True)
    by_currency = fields.List(fields.Nested(FinancingRowSchema), required=True)
    decisions = fields.Integer(required=True)
    decision_hours_median = fields.Decimal(as_string=True, allow_none=True, required=True)
    decision_hours_mean = fields.Decimal(as_string=True, allow_none=True, required=True)


class LoanCurrencySchema(Schema):
    currency = fields.String(required=True)
    loans = fields.Integer(required=True)
    outstanding = ExactAmount(required=True)
    overdue = ExactAmount(required=True)
    npl = ExactAmount(required=True)
    outstanding_cny = ExactAmount(required=True, allow_none=True)
    overdue_cny = ExactAmount(required=True, allow_none=True)
    npl_cny = ExactAmount(required=True, allow_none=True)
    overdue_ratio = Ratio()
    npl_ratio = Ratio()


class LoansSchema(Schema):
    loans = fields.Integer(required=True)
    overdue_loans = fields.Integer(required=True)
    npl_loans = fields.Integer(required=True)
    outstanding_cny = Cny()
    overdue_cny = Cny()
    npl_cny = Cny()
    overdue_ratio = Ratio()
    npl_ratio = Ratio()
    by_currency = fields.List(fields.Nested(LoanCurrencySchema), required=True)


class InsuranceCurrencySchema(Schema):
    currency = fields.String(required=True)
    declarations = fields.Integer(required=True)
    exposure = ExactAmount(required=True)
    premiums = ExactAmount(required=True)
    claims = fields.Integer(required=True)
    claims_paid = fields.Integer(required=True)
    indemnity_paid = ExactAmount(required=True)
    exposure_cny = ExactAmount(required=True, allow_none=True)
    premiums_cny = ExactAmount(required=True, allow_none=True)
    indemnity_paid_cny = ExactAmount(required=True, allow_none=True)
    claims_ratio = Ratio()


class InsuranceSchema(Schema):
    declarations = fields.Integer(required=True)
    claims = fields.Integer(required=True)
    claims_paid = fields.Integer(required=True)
    exposure_cny = Cny()
    premiums_cny = Cny()
    indemnity_paid_cny = Cny()
    claims_ratio = Ratio()
    by_currency = fields.List(fields.Nested(InsuranceCurrencySchema), required=True)


class DashboardSchema(Schema):
    filters = fields.Nested(FiltersSchema, required=True)
    as_of = fields.Date(required=True)
    rate_day = fields.Date(required=True, metadata={
        "description": "The day financing, loan and insurance amounts are converted at"})
    unconverted = fields.List(fields.String(), required=True, metadata={
        "description": "Currencies without a rate on some days: left out of the CNY figures"})
    trade = fields.Nested(TradeSchema, required=True)
    financing = fields.Nested(FinancingSchema, required=True)
    loans = fields.Nested(LoansSchema, required=True)
    insurance = fields.Nested(InsuranceSchema, required=True)


@blp.route("")
class Statistics(MethodView):
    @blp.arguments(FiltersQuery, location="query")
    @blp.response(200, DashboardSchema)
    @documents_errors(blp, 422)
    @authz.allow(authz.STATISTICS)
    def get(self, args):
        """Every figure of the statistics dashboard, for the period and area asked."""
        filters = queries.parse_filters({"from": args.get("from_"), "to": args.get("to"),
                                         "zone": args.get("zone")})
        return queries.dashboard(filters, actor=current_user)
