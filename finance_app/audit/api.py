"""The audit trail over the API (platform operator)."""
from __future__ import annotations

from flask.views import MethodView
from flask_login import current_user
from marshmallow import Schema, fields, validate

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
    action = Text(validate=validate.Length(max=80))
    object_type = Text(validate=validate.Length(max=60))
    org_id = fields.Integer(validate=validate.Range(min=1, max=DB_INT_MAX))
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))


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
    @authz.allow(authz.OPERATOR)
    def get(self, args):
        """Newest audit events first."""
        query = services.events_query(org_id=args.get("org_id"), action=args.get("action"),
                                      object_type=args.get("object_type"))
        return db.session.execute(query.limit(args["limit"])).scalars().all()


@blp.route("/verify")
class Verify(MethodView):
    @blp.response(200, ChainReportSchema)
    @documents_errors(blp)
    @authz.allow(authz.OPERATOR)
    def get(self):
        """Recompute the hash chain and name the first broken event."""
        return services.verify_chain()
