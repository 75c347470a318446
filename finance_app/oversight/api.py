"""Oversight over the API: risk alerts (list, read, acknowledge, resolve), the rule
thresholds (read; the platform's approvers change them) and credit ratings with their
factors."""
from __future__ import annotations

from flask.views import MethodView
from flask_login import current_user
from marshmallow import Schema, fields, validate

from finance_app import authz
from finance_app.api.schemas import (
    ID, ApiBlueprint, Text, UtcDateTime, documents_errors, idempotent, page_body,
)
from finance_app.errors import NotFound
from finance_app.oversight import forms, ratings, rules, services
from finance_app.oversight.states import AlertStatus, Severity

blp = ApiBlueprint("oversight_api", __name__, url_prefix="/api/v1/oversight",
                   description="Oversight: risk alerts, rule thresholds and credit ratings")

WRITE = (400, 404, 409, 413, 415, 422)


class AlertSchema(Schema):
    id = fields.Integer(required=True)
    rule = fields.String(required=True)
    rule_label = fields.String(required=True)
    severity = fields.Enum(Severity, by_value=True, required=True)
    status = fields.Enum(AlertStatus, by_value=True, required=True)
    subject_org_id = fields.Integer(required=True)
    party_org_id = fields.Integer(allow_none=True)
    object_type = fields.String(allow_none=True)
    object_id = fields.Integer(allow_none=True)
    message = fields.String(required=True)
    evidence = fields.Dict(required=True)
    raised_at = UtcDateTime(required=True)
    acknowledged_at = UtcDateTime(allow_none=True)
    resolved_at = UtcDateTime(allow_none=True)
    resolution_note = fields.String(allow_none=True)


class AlertPageSchema(Schema):
    page = fields.Integer(required=True)
    per_page = fields.Integer(required=True)
    total = fields.Integer(required=True)
    items = fields.List(fields.Nested(AlertSchema), required=True)


class AlertQuery(Schema):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=100_000))
    status = fields.Enum(AlertStatus, by_value=True)
    severity = fields.Enum(Severity, by_value=True)
    rule = fields.String(validate=validate.OneOf(list(forms.RULE_LABELS)))


class AcknowledgeSchema(Schema):
    note = Text(allow_none=True, validate=validate.Length(max=500))


class ResolveSchema(Schema):
    note = Text(required=True, validate=validate.Length(min=3, max=500))


class ThresholdSchema(Schema):
    key = fields.String(required=True)
    label = fields.String(required=True)
    value = fields.String(required=True, metadata={"description": "A decimal as a string"})
    default = fields.String(required=True)
    low = fields.String(required=True)
    high = fields.String(required=True)
    whole = fields.Boolean(required=True)


class ThresholdsSchema(Schema):
    items = fields.List(fields.Nested(ThresholdSchema), required=True)


class ThresholdsInSchema(Schema):
    values = fields.Dict(keys=fields.String(validate=validate.OneOf(list(rules.SETTINGS))),
                         values=fields.String(validate=validate.Length(min=1, max=40)),
                         required=True, validate=validate.Length(min=1, max=len(rules.SETTINGS)),
                         metadata={"description": "Threshold key -> new value (a decimal as a "
                                                  "string)"})


class RatingFactorSchema(Schema):
    code = fields.String(required=True)
    label = fields.String(required=True)
    value = fields.String(required=True)
    points = fields.Integer(required=True)
    explanation = fields.String(required=True)
    advice = fields.String(allow_none=True, metadata={
        "description": "What would improve it (to the SME itself only)"})


class RatingSummarySchema(Schema):
    org_id = fields.Integer(required=True)
    grade = fields.String(required=True)
    score = fields.Integer(required=True)
    trigger = fields.String(required=True)
    computed_on = fields.Date(required=True)
    confirmed_on = fields.Date(required=True)


class RatingSchema(RatingSummarySchema):
    factors = fields.List(fields.Nested(RatingFactorSchema), required=True)


class RatingHistorySchema(Schema):
    items = fields.List(fields.Nested(RatingSummarySchema), required=True)


def _alert(alert) -> dict:
    return {**{k: getattr(alert, k) for k in (
        "id", "rule", "severity", "status", "subject_org_id", "party_org_id", "object_type",
        "object_id", "message", "raised_at", "acknowledged_at", "resolved_at",
        "resolution_note")},
        "rule_label": str(forms.RULE_LABELS.get(alert.rule, alert.rule)),
        "evidence": services.evidence_of(alert)}


def factors_of(rating, *, advice: bool = False) -> list[dict]:
    return [{"code": f.code, "label": ratings.factor_label(f.code), "value": f.value,
             "points": f.points, "explanation": ratings.explain(f),
             "advice": ratings.advice(f) if advice else None} for f in rating.factors]


def _rating(rating, *, advice: bool) -> dict:
    return {"org_id": rating.org_id, "grade": rating.grade, "score": rating.score,
            "trigger": rating.trigger, "computed_on": rating.computed_on,
            "confirmed_on": rating.confirmed_on, "factors": factors_of(rating, advice=advice)}


@blp.route("/alerts")
class Alerts(MethodView):
    @blp.arguments(AlertQuery, location="query")
    @blp.response(200, AlertPageSchema)
    @documents_errors(blp, 422)
    @authz.allow(authz.MEMBER)
    def get(self, args):
        """Risk alerts about your organisation or naming it as a party (the platform
        operator: all), newest first."""
        page = services.alerts(current_user, status=args.get("status"),
                               severity=args.get("severity"), rule=args.get("rule"),
                               page=args["page"])
        return page_body(page, [_alert(a) for a in page.items])


@blp.route(f"/alerts/<{ID}:alert_id>")
class AlertDetail(MethodView):
    @blp.response(200, AlertSchema)
    @documents_errors(blp, 404)
    @authz.allow(authz.MEMBER)
    def get(self, alert_id: int):
        """One risk alert with its evidence."""
        return _alert(services.get_alert(alert_id, actor=current_user))


@blp.route(f"/alerts/<{ID}:alert_id>/acknowledge")
class AlertAcknowledge(MethodView):
    @blp.arguments(AcknowledgeSchema)
    @blp.response(200, AlertSchema)
    @documents_errors(blp, *WRITE)
    @idempotent(blp)
    @authz.allow(authz.MEMBER)
    def post(self, data, alert_id: int):
        """The platform's staff or the party named acknowledge the alert."""
        return _alert(services.acknowledge(alert_id, actor=current_user,
                                           note=data.get("note")))


@blp.route(f"/alerts/<{ID}:alert_id>/resolve")
class AlertResolve(MethodView):
    @blp.arguments(ResolveSchema)
    @blp.response(200, AlertSchema)
    @documents_errors(blp, *WRITE)
    @idempotent(blp)
    @authz.allow(authz.MEMBER)
    def post(self, data, alert_id: int):
        """Resolve the alert, saying how it was dealt with."""
        return _alert(services.resolve(alert_id, actor=current_user, note=data["note"]))


def _thresholds() -> dict:
    current = rules.values()
    return {"items": [{"key": key, "label": str(s.label), "value": str(current[key]),
                       "default": str(s.default), "low": str(s.low), "high": str(s.high),
                       "whole": s.whole} for key, s in rules.SETTINGS.items()]}


@blp.route("/thresholds")
class Thresholds(MethodView):
    @blp.response(200, ThresholdsSchema)
    @documents_errors(blp)
    @authz.allow(authz.OPERATOR)
    def get(self):
        """The risk rules' thresholds, with their defaults and ranges."""
        return _thresholds()

    @blp.arguments(ThresholdsInSchema)
    @blp.response(200, ThresholdsSchema)
    @documents_errors(blp, 400, 409, 413, 415, 422)
    @idempotent(blp)
    @authz.allow(authz.OPERATOR_DECIDER)
    def post(self, data):
        """Change thresholds (the platform's approvers); a value outside its range is
        refused and nothing changes."""
        rules.set_thresholds(data["values"], actor=current_user)
        return _thresholds()


@blp.route(f"/ratings/<{ID}:org_id>")
class Rating(MethodView):
    @blp.response(200, RatingSchema)
    @documents_errors(blp, 404)
    @authz.allow(authz.MEMBER)
    def get(self, org_id: int):
        """An SME's current credit rating and its factors (the SME itself, the platform, a
        bank it asked for financing, an insurer that insures it); the SME also sees what
        would improve each factor."""
        org = ratings.rated_org(org_id, actor=current_user)
        rating = ratings.current(org.id)
        if rating is None:
            raise NotFound("rating", org_id)
        return _rating(rating, advice=org.id == current_user.org_id)


@blp.route(f"/ratings/<{ID}:org_id>/history")
class RatingHistory(MethodView):
    @blp.response(200, RatingHistorySchema)
    @documents_errors(blp, 404)
    @authz.allow(authz.MEMBER)
    def get(self, org_id: int):
        """The SME's ratings, newest first (a row each time the rating changed)."""
        org = ratings.rated_org(org_id, actor=current_user)
        return {"items": [{k: getattr(r, k) for k in ("org_id", "grade", "score", "trigger",
                                                      "computed_on", "confirmed_on")}
                          for r in ratings.history(org.id)]}
