"""Organisations, users and filings over the API."""
from __future__ import annotations

from flask.views import MethodView
from flask_login import current_user
from marshmallow import Schema, fields, validate

from finance_app import authz
from finance_app.accounts import passwords, services
from finance_app.accounts.states import FilingAction, FilingStatus, OrgKind, Role
from finance_app.api.schemas import (
    ID, ApiBlueprint, Text, UtcDateTime, documents_errors, idempotent,
)

blp = ApiBlueprint("accounts_api", __name__, url_prefix="/api/v1",
                   description="Organisations, users and filing")


class OrganisationSchema(Schema):
    id = fields.Integer(required=True)
    kind = fields.Enum(OrgKind, by_value=True, required=True)
    name = fields.String(required=True)
    name_en = fields.String(allow_none=True)
    country = fields.String(required=True)
    credit_code = fields.String(allow_none=True)
    customs_code = fields.String(allow_none=True)
    registration_number = fields.String(allow_none=True)
    address = fields.String(allow_none=True)
    zone = fields.String(allow_none=True)
    contact_name = fields.String(allow_none=True)
    contact_email = fields.String(required=True)
    contact_phone = fields.String(allow_none=True)
    filing_status = fields.Enum(FilingStatus, by_value=True, required=True)
    filing_reason = fields.String(allow_none=True)
    filed_at = UtcDateTime(required=True)
    decided_at = UtcDateTime(allow_none=True)


class UserSchema(Schema):
    id = fields.Integer(required=True)
    email = fields.String(required=True)
    name = fields.String(required=True)
    roles = fields.Method("_roles", required=True,
                          metadata={"type": "array", "items": {"type": "string"}})
    active = fields.Boolean(required=True)
    totp_enabled = fields.Boolean(required=True)
    created_at = UtcDateTime(required=True)
    last_signin_at = UtcDateTime(allow_none=True)

    def _roles(self, user) -> list[str]:
        return sorted(r.value for r in user.roles)


class MeSchema(Schema):
    user = fields.Nested(UserSchema, required=True)
    organisation = fields.Nested(OrganisationSchema, required=True)


class DirectoryQuerySchema(Schema):
    kind = fields.Enum(OrgKind, by_value=True)
    q = Text(validate=validate.Length(max=100))


class UserCreateSchema(Schema):
    email = Text(required=True, validate=validate.Length(min=3, max=254),
                 metadata={"format": "email"})
    name = Text(required=True, validate=validate.Length(min=1, max=100))
    roles = fields.List(fields.Enum(Role, by_value=True), required=True,
                        validate=validate.Length(min=1, max=3))
    password = Text(required=True, load_only=True,
                    validate=validate.Length(min=passwords.MIN_LENGTH, max=passwords.MAX_LENGTH),
                    metadata={"description": "At least 12 different-enough characters; not "
                                             "a common password, nor the e-mail's name."})


class RolesSchema(Schema):
    roles = fields.List(fields.Enum(Role, by_value=True), required=True,
                        validate=validate.Length(min=1, max=3))


class FilingQuerySchema(Schema):
    status = fields.Enum(FilingStatus, by_value=True)


class DecisionSchema(Schema):
    action = fields.Enum(FilingAction, by_value=True, required=True)
    reason = Text(allow_none=True, validate=validate.Length(max=2000))


@blp.route("/me")
class Me(MethodView):
    @blp.response(200, MeSchema)
    @documents_errors(blp)
    @authz.allow(authz.SIGNED_IN)
    def get(self):
        """The user the token acts for, and their organisation."""
        return {"user": current_user, "organisation": current_user.organisation}


@blp.route("/organisations")
class Organisations(MethodView):
    @blp.arguments(DirectoryQuerySchema, location="query")
    @blp.response(200, OrganisationSchema(many=True))
    @documents_errors(blp, 422)
    @authz.allow(authz.DIRECTORY)
    def get(self, args):
        """Approved organisations' filed profiles ("file once, shared by all")."""
        return services.directory(current_user, kind=args.get("kind"), q=args.get("q"))


@blp.route(f"/organisations/<{ID}:org_id>")
class OrganisationDetail(MethodView):
    @blp.response(200, OrganisationSchema)
    @documents_errors(blp, 404)
    @authz.allow(authz.SIGNED_IN)
    def get(self, org_id: int):
        """One organisation's filed profile: your own, or an approved one for banks and insurers."""
        return services.get_organisation(org_id, actor=current_user)


@blp.route("/users")
class Users(MethodView):
    @blp.response(200, UserSchema(many=True))
    @documents_errors(blp)
    @authz.allow(authz.ORG_ADMIN)
    def get(self):
        """Your organisation's users (admins only)."""
        return services.list_users(current_user)

    @blp.arguments(UserCreateSchema)
    @blp.response(201, UserSchema)
    @documents_errors(blp, 400, 409, 413, 415, 422)
    @idempotent(blp)
    @authz.allow(authz.ORG_ADMIN)
    def post(self, data):
        """Add a user to your organisation with the given roles and initial password."""
        return services.add_user(actor=current_user, email=data["email"], name=data["name"],
                                 roles=[r.value for r in data["roles"]],
                                 password=data["password"])


@blp.route(f"/users/<{ID}:user_id>")
class UserDetail(MethodView):
    @blp.response(200, UserSchema)
    @documents_errors(blp, 404)
    @authz.allow(authz.ORG_ADMIN)
    def get(self, user_id: int):
        return services.get_user(user_id, actor=current_user)


@blp.route(f"/users/<{ID}:user_id>/roles")
class UserRoles(MethodView):
    @blp.arguments(RolesSchema)
    @blp.response(200, UserSchema)
    @documents_errors(blp, 400, 404, 409, 413, 415, 422)
    @authz.allow(authz.ORG_ADMIN)
    def put(self, data, user_id: int):
        """Replace a user's roles."""
        return services.set_roles(user_id, [r.value for r in data["roles"]], actor=current_user)


@blp.route(f"/users/<{ID}:user_id>/deactivate")
class UserDeactivate(MethodView):
    @blp.response(200, UserSchema)
    @documents_errors(blp, 404, 409, 422)
    @idempotent(blp)
    @authz.allow(authz.ORG_ADMIN)
    def post(self, user_id: int):
        """Deactivate a user: their sessions end at once and their tokens stop working."""
        return services.deactivate_user(user_id, actor=current_user)


@blp.route("/filings")
class Filings(MethodView):
    @blp.arguments(FilingQuerySchema, location="query")
    @blp.response(200, OrganisationSchema(many=True))
    @documents_errors(blp, 422)
    @authz.allow(authz.OPERATOR)
    def get(self, args):
        """Organisations' filings, for the platform operator."""
        return services.filings(current_user, status=args.get("status"))


@blp.route(f"/filings/<{ID}:org_id>/decision")
class FilingDecision(MethodView):
    @blp.arguments(DecisionSchema)
    @blp.response(200, OrganisationSchema)
    @documents_errors(blp, 400, 404, 409, 413, 415, 422)
    @idempotent(blp)
    @authz.allow(authz.OPERATOR_DECIDER)
    def post(self, data, org_id: int):
        """Approve, reject (with a reason), suspend (with a reason) or reinstate a filing."""
        services.decide_filing(org_id, data["action"], actor=current_user,
                               reason=data.get("reason"))
        return services.get_organisation(org_id, actor=current_user)
