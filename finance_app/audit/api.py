"""The audit trail over the API: the platform operator reads and verifies the whole trail;
every other organisation reads the events about itself."""
from __future__ import annotations

from flask.views import MethodView
from flask_login import current_user
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from finance_app import authz
from finance_app.api.schemas import (
    DB_INT_MAX, ApiBlueprint, Text, UtcDateTime, documents_errors,
)
from finance_app.audit import services
from finance_app.extensions import db

blp = ApiBlueprint("audit_api", __name__, url_prefix="/api/v1/audit", description="Audit trail")


class AuditEventSchema(Schema):
    id = fields.Integer(required=True)
    created_at = UtcDateTime(required=True)
    actor_user_id = fields.Integer(allow_none=True)
    org_id = fields.Integer(allow_none=True)
    action = fields.String(required=True)
    object_type = fields.String(required=True)
    object_id = fields.String(allow_none=True)
    changes = fields.String(required=True, metadata={"description": "canonical JSON"})
    prev_hash = fields.String(required=True)
    hash = fields.String(required=True)


class AuditQuerySchema(Schema):
    action = Text(validate=validate.Length(max=80), metadata={
        "description": "An action, or a prefix ending in a dot (\"financing.\")"})
    object_type = Text(validate=validate.Length(max=60))
    object_id = Text(validate=validate.Length(max=64))
    org_id = fields.Integer(validate=validate.Range(min=1, max=DB_INT_MAX), metadata={
        "description": "The platform operator only; others always see their own"})
    actor_user_id = fields.Integer(validate=validate.Range(min=1, max=DB_INT_MAX))
    since = fields.Date()
    until = fields.Date()
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))

    @validates_schema
    def _dates_in_order(self, data, **kwargs):
        if data.get("since") and data.get("until") and data["since"] > data["until"]:
            raise ValidationError("The first date is after the last.", field_name="since")


class ChainReportSchema(Schema):
    ok = fields.Boolean(required=True)
    checked = fields.Integer(required=True)
    broken_id = fields.Integer(allow_none=True)
    problem = fields.String(allow_none=True)


@blp.route("/events")
class Events(MethodView):
    @blp.arguments(AuditQuerySchema, location="query")
    @blp.response(200, AuditEventSchema(many=True))
    @documents_errors(blp, 422)
    @authz.allow(authz.MEMBER)
    def get(self, args):
        """Newest audit events first: every event for the platform operator, the events
        about your organisation for everyone else."""
        query = services.events_query(
            viewer=current_user, org_id=args.get("org_id"), action=args.get("action"),
            object_type=args.get("object_type"), object_id=args.get("object_id"),
            actor_user_id=args.get("actor_user_id"), since=args.get("since"),
            until=args.get("until"))
        return db.session.execute(query.limit(args["limit"])).scalars().all()


@blp.route("/verify")
class Verify(MethodView):
    @blp.response(200, ChainReportSchema)
    @documents_errors(blp)
    @authz.allow(authz.OPERATOR)
    def get(self):
        """Recompute the hash chain and name the first broken event."""
        return services.verify_chain()
