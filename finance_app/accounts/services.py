"""Organisations, filing decisions, users, sign-in, second factor and API tokens.

Plain functions: they check permissions through ``authz``, change the session and record
audit events; they never commit (the request, CLI command or test does, once).
"""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Iterable

from flask_babel import gettext, lazy_gettext
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from finance_app import authz, clock
from finance_app.accounts import passwords, sessions, totp
from finance_app.accounts.identifiers import (
    normalise_email, validate_country, validate_credit_code, validate_customs_code,
    validate_registration_number,
)
from finance_app.accounts.models import (
    ApiToken, FilingStatusChange, Organisation, User, UserRole,
)
from finance_app.accounts.states import (
    REASON_REQUIRED, SIGNUP_KINDS, FilingAction, FilingStatus, OrgKind, Role,
)
from finance_app.audit import services as audit
from finance_app.errors import Conflict, Forbidden, NotFound, Unauthenticated, ValidationFailed
from finance_app.extensions import db


# --------------------------------------------------------------------------- organisations

@dataclass
class OrgProfile:
    """What an organisation files about itself."""
    kind: str
    name: str
    country: str
    contact_email: str
    name_en: str | None = None
    credit_code: str | None = None
    customs_code: str | None = None
    registration_number: str | None = None
    address: str | None = None
    contact_name: str | None = None
    contact_phone: str | None = None
    zone: str | None = None


def _clean_text(value: str | None, field: str, *, required: bool = False,
                max_len: int = 200) -> str | None:
    text = (value or "").strip()
    if not text:
        if required:
            raise ValidationFailed(gettext("This field is required."), field=field)
        return None
    if len(text) > max_len:
        raise ValidationFailed(gettext("Use at most %(max)s characters.", max=max_len), field=field)
    return text


def clean_profile(profile: OrgProfile, *, allow_operator: bool = False,
                  exclude_org_id: int | None = None) -> dict:
    """Validate a filing profile; returns the normalised column values."""
    try:
        kind = OrgKind(profile.kind)
    except ValueError:
        raise ValidationFailed(gettext("Choose what kind of organisation this is."),
                               field="kind") from None
    if kind is OrgKind.PLATFORM_OPERATOR and not allow_operator:
        raise ValidationFailed(gettext("The platform operator cannot be registered by sign-up."),
                               field="kind")
    values: dict = {
        "kind": kind,
        "name": _clean_text(profile.name, "name", required=True),
        "name_en": _clean_text(profile.name_en, "name_en"),
        "country": validate_country(profile.country),
        "contact_email": normalise_email(profile.contact_email, field="contact_email"),
        "address": _clean_text(profile.address, "address", max_len=300),
        "contact_name": _clean_text(profile.contact_name, "contact_name", max_len=100),
        "contact_phone": _clean_text(profile.contact_phone, "contact_phone", max_len=40),
        "zone": _clean_text(profile.zone, "zone", max_len=40),
    }
    if values["country"] == "CN":
        values["credit_code"] = validate_credit_code(profile.credit_code)
        values["customs_code"] = validate_customs_code(profile.customs_code)
        values["registration_number"] = None
    else:
        values["credit_code"] = None
        values["customs_code"] = None
        values["registration_number"] = validate_registration_number(profile.registration_number)

    def taken(column, value) -> bool:
        query = select(Organisation.id).where(column == value)
        if exclude_org_id is not None:
            query = query.where(Organisation.id != exclude_org_id)
        return db.session.execute(query).first() is not None

    if values["credit_code"] and taken(Organisation.credit_code, values["credit_code"]):
        raise ValidationFailed(gettext("An organisation with this credit code is already filed."),
                               field="credit_code")
    if values["customs_code"] and taken(Organisation.customs_code, values["customs_code"]):
        raise ValidationFailed(gettext("An organisation with this customs code is already filed."),
                               field="customs_code")
    if values["registration_number"]:
        query = select(Organisation.id).where(
            Organisation.country == values["country"],
            Organisation.registration_number == values["registration_number"])
        if exclude_org_id is not None:
            query = query.where(Organisation.id != exclude_org_id)
        if db.session.execute(query).first() is not None:
            raise ValidationFailed(
                gettext("An organisation with this registration number is already filed "
                        "in that country."),
                field="registration_number")
    return values


def register_organisation(profile: OrgProfile, *, admin_email: str, admin_name: str,
                          password: str, allow_operator: bool = False,
                          locale: str | None = None) -> tuple[Organisation, User]:
    """Sign-up: file an organisation (pending review) and create its first user, an admin."""
    values = clean_profile(profile, allow_operator=allow_operator)
    email = normalise_email(admin_email, field="email")
    name = _clean_text(admin_name, "admin_name", required=True, max_len=100)
    passwords.check_policy(password, email=email)
    if _email_taken(email):
        raise ValidationFailed(gettext("A user with this e-mail address already exists."),
                               field="email")
    org = Organisation(filing_status=FilingStatus.PENDING, filed_at=clock.now(), **values)
    db.session.add(org)
    user = User(organisation=org, email=email, name=name,
                password_hash=passwords.hash_password(password), locale=locale)
    user.role_rows = [UserRole(role=Role.ADMIN)]
    db.session.add(user)
    _flush_unique("credit_code")
    audit.record("organisation.registered", actor=user, org_id=None, obj=org,
                 changes={"kind": org.kind, "name": org.name, "country": org.country,
                          "credit_code": org.credit_code, "customs_code": org.customs_code,
                          "registration_number": org.registration_number,
                          "admin_email": email})
    return org, user


def _flush_unique(field: str) -> None:
    """Flush, turning a unique-constraint race into a field error."""
    try:
        with db.session.begin_nested():
            db.session.flush()
    except IntegrityError as exc:
        message = str(exc.orig).lower()
        if "email" in message:
            raise ValidationFailed(gettext("A user with this e-mail address already exists."),
                                   field="email") from None
        if "customs_code" in message:
            field = "customs_code"
        raise ValidationFailed(gettext("This is already filed by another organisation."),
                               field=field) from None


def _email_taken(email: str) -> bool:
    return db.session.execute(select(User.id).where(User.email == email)).first() is not None


def get_organisation(org_id: int, *, actor: User) -> Organisation:
    org = db.session.get(Organisation, org_id)
    if org is None:
        raise NotFound("organisation", org_id)
    authz.require(actor, "accounts.read_profile", org)
    return org


def directory(actor: User, *, kind: OrgKind | None = None, q: str | None = None
              ) -> list[Organisation]:
    """Approved organisations' filed profiles, as banks, insurers and the operator see them."""
    query = select(Organisation).where(Organisation.filing_status == FilingStatus.APPROVED)
    if actor.organisation.kind not in (OrgKind.BANK, OrgKind.INSURER, OrgKind.PLATFORM_OPERATOR):
        query = query.where(Organisation.id == actor.org_id)
    if kind is not None:
        query = query.where(Organisation.kind == kind)
    if q:
        like = f"%{q.strip()}%"
        query = query.where(Organisation.name.ilike(like) | Organisation.name_en.ilike(like)
                            | Organisation.credit_code.ilike(like))
    return list(db.session.execute(query.order_by(Organisation.name)).scalars())


def filings(actor: User, *, status: FilingStatus | None = None) -> list[Organisation]:
    if not authz.can(actor, "audit.read_all"):
        raise Forbidden()
    query = select(Organisation).where(Organisation.kind != OrgKind.PLATFORM_OPERATOR)
    if status is not None:
        query = query.where(Organisation.filing_status == status)
    return list(db.session.execute(query.order_by(Organisation.filed_at)).scalars())


def decide_filing(org_id: int, action: FilingAction | str, *, actor: User,
                  reason: str | None = None) -> FilingStatusChange:
    """The platform operator approves, rejects, suspends or reinstates a filing."""
    try:
        action = FilingAction(action)
    except ValueError:
        raise ValidationFailed(gettext("Unknown decision."), field="action") from None
    if action is FilingAction.RESUBMIT:
        raise ValidationFailed(gettext("The organisation itself resubmits its filing."),
                               field="action")
    org = db.session.get(Organisation, org_id, with_for_update=True)
    if org is None:
        raise NotFound("organisation", org_id)
    authz.require(actor, "accounts.decide_filing", org, hide=False)
    reason = _clean_text(reason, "reason", max_len=2000)
    if action in REASON_REQUIRED and not reason:
        raise ValidationFailed(gettext("Give the reason; the organisation will see it."),
                               field="reason")
    previous = org.filing_status
    change = org.apply(action, actor=actor, reason=reason)
    if action is FilingAction.SUSPEND:
        # A suspended organisation's people may still sign in to read why; its tokens stop.
        _revoke_org_tokens(org.id)
    audit.record(f"organisation.filing_{action.value}", actor=actor, obj=org,
                 changes={"filing_status": [previous, org.filing_status], "reason": reason})
    return change


def update_filing(org_id: int, profile: OrgProfile, *, actor: User) -> Organisation:
    """The organisation's admin corrects its filing; a rejected filing goes back for review."""
    org = db.session.get(Organisation, org_id, with_for_update=True)
    if org is None:
        raise NotFound("organisation", org_id)
    authz.require(actor, "accounts.edit_filing", org)
    if org.filing_status not in (FilingStatus.PENDING, FilingStatus.REJECTED):
        raise Conflict(gettext("An approved filing is changed through the platform operator."),
                       code="filing_locked")
    values = clean_profile(profile, exclude_org_id=org.id)
    if values["kind"] is not org.kind:
        raise ValidationFailed(gettext("The kind of organisation cannot change."), field="kind")
    before = {k: getattr(org, k) for k in values}
    for key, value in values.items():
        setattr(org, key, value)
    changed = {k: [before[k], values[k]] for k in values if before[k] != values[k]}
    if org.filing_status is FilingStatus.REJECTED:
        org.apply(FilingAction.RESUBMIT, actor=actor)
        changed["filing_status"] = [FilingStatus.REJECTED, FilingStatus.PENDING]
    audit.record("organisation.filing_updated", actor=actor, obj=org, changes=changed)
    return org


# --------------------------------------------------------------------------- users

def _parse_roles(roles: Iterable[str]) -> set[Role]:
    parsed = set()
    for role in roles:
        try:
            parsed.add(Role(role))
        except ValueError:
            raise ValidationFailed(gettext("Unknown role '%(role)s'.", role=role),
                                   field="roles") from None
    if not parsed:
        raise ValidationFailed(gettext("Give the user at least one role."), field="roles")
    return parsed


def list_users(actor: User) -> list[User]:
    if Role.ADMIN not in actor.roles:
        raise Forbidden()
    return list(db.session.execute(
        select(User).where(User.org_id == actor.org_id).order_by(User.id)).scalars())


def get_user(user_id: int, *, actor: User) -> User:
    user = db.session.get(User, user_id)
    if user is None or user.org_id != actor.org_id:
        raise NotFound("user", user_id)
    authz.require(actor, "accounts.manage_users", user)
    return user


def add_user(*, actor: User, email: str, name: str, roles: Iterable[str],
             password: str) -> User:
    authz.require(actor, "accounts.manage_users", _OrgScope(actor.org_id), hide=False)
    authz.require_approved(actor)
    email = normalise_email(email, field="email")
    name = _clean_text(name, "name", required=True, max_len=100)
    parsed = _parse_roles(roles)
    passwords.check_policy(password, email=email)
    if _email_taken(email):
        raise ValidationFailed(gettext("A user with this e-mail address already exists."),
                               field="email")
    user = User(org_id=actor.org_id, email=email, name=name,
                password_hash=passwords.hash_password(password))
    user.role_rows = [UserRole(role=r) for r in sorted(parsed)]
    db.session.add(user)
    _flush_unique("email")
    audit.record("user.added", actor=actor, obj=user,
                 changes={"email": email, "roles": sorted(parsed)})
    return user


@dataclass
class _OrgScope:
    """Stands for "something in organisation ``org_id``" in object rules."""
    org_id: int
    id: int | None = None


def _admins_left(org_id: int, excluding: int) -> int:
    return db.session.execute(
        select(func.count(User.id)).join(UserRole)
        .where(User.org_id == org_id, User.active.is_(True), User.id != excluding,
               UserRole.role == Role.ADMIN)).scalar_one()


def set_roles(user_id: int, roles: Iterable[str], *, actor: User) -> User:
    user = get_user(user_id, actor=actor)
    authz.require_approved(actor)
    parsed = _parse_roles(roles)
    before = user.roles
    if Role.ADMIN in before and Role.ADMIN not in parsed and _admins_left(user.org_id, user.id) == 0:
        raise Conflict(gettext("An organisation needs at least one active admin."),
                       code="last_admin")
    user.role_rows = [row for row in user.role_rows if row.role in parsed]
    for role in sorted(parsed - before):
        user.role_rows.append(UserRole(role=role))
    audit.record("user.roles_changed", actor=actor, obj=user,
                 changes={"roles": [sorted(before), sorted(parsed)]})
    return user


def deactivate_user(user_id: int, *, actor: User) -> User:
    user = get_user(user_id, actor=actor)
    authz.require_approved(actor)
    if not user.active:
        return user
    if Role.ADMIN in user.roles and _admins_left(user.org_id, user.id) == 0:
        raise Conflict(gettext("An organisation needs at least one active admin."),
                       code="last_admin")
    user.active = False
    ended = sessions.revoke_all(user.id, "user_deactivated")
    audit.record("user.deactivated", actor=actor, obj=user, changes={"sessions_ended": ended})
    return user


def reactivate_user(user_id: int, *, actor: User) -> User:
    user = get_user(user_id, actor=actor)
    authz.require_approved(actor)
    if not user.active:
        user.active = True
        user.failed_signins, user.locked_until = 0, None
        audit.record("user.reactivated", actor=actor, obj=user)
    return user


def unlock_user(user_id: int, *, actor: User) -> User:
    user = get_user(user_id, actor=actor)
    user.failed_signins, user.locked_until = 0, None
    audit.record("user.unlocked", actor=actor, obj=user)
    return user


def change_password(user: User, *, current: str, new: str) -> None:
    if not passwords.verify_password(user.password_hash, current or ""):
        raise ValidationFailed(gettext("That is not your current password."),
                               field="current_password")
    passwords.check_policy(new, email=user.email, field="new_password")
    user.password_hash = passwords.hash_password(new)
    sessions.revoke_all(user.id, "password_changed")
    audit.record("user.password_changed", actor=user, obj=user)


def set_locale(user: User, locale: str) -> None:
    user.locale = locale


# --------------------------------------------------------------------------- sign-in

class SignInRefused(Unauthenticated):
    code = "sign_in_refused"


# Lazy: a module constant, translated when raised (str()) in the request's language.
GENERIC_REFUSAL = lazy_gettext("The e-mail address or password is not correct.")


def authenticate(email: str, password: str, *, max_failures: int, lockout) -> User:
    """Check a password. Counts failures and locks the user after ``max_failures``."""
    try:
        email = normalise_email(email, field="email")
    except ValidationFailed:
        passwords.dummy_verify(password or "")
        raise SignInRefused(str(GENERIC_REFUSAL)) from None
    user = db.session.execute(
        select(User).where(User.email == email).with_for_update()).scalar_one_or_none()
    if user is None:
        passwords.dummy_verify(password or "")
        raise SignInRefused(str(GENERIC_REFUSAL))
    if user.is_locked():
        raise SignInRefused(gettext("Too many failed attempts: this user is locked for a while. "
                                    "Try again later or ask your organisation's admin to "
                                    "unlock it."),
                            code="locked")
    if not passwords.verify_password(user.password_hash, password or ""):
        user.failed_signins = (user.failed_signins or 0) + 1
        if user.failed_signins >= max_failures:
            user.locked_until = clock.now() + lockout
            audit.record("user.locked", actor=None, org_id=user.org_id, obj=user,
                         changes={"failed_signins": user.failed_signins})
        raise SignInRefused(str(GENERIC_REFUSAL))
    if not user.active:
        raise SignInRefused(gettext("This user has been deactivated by the organisation's admin."),
                            code="deactivated")
    user.failed_signins, user.locked_until = 0, None
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash_password(password)
    return user


def complete_sign_in(user: User, *, ip_address: str | None, user_agent: str | None) -> str:
    raw = sessions.start_session(user, ip_address=ip_address, user_agent=user_agent)
    user.last_signin_at = clock.now()
    audit.record("user.signed_in", actor=user, obj=user, changes={"ip": ip_address})
    return raw


def check_second_factor(user: User, code: str) -> bool:
    """A current TOTP code (never the same step twice) or an unused recovery code."""
    if not user.totp_secret or not user.totp_enabled:
        return False
    step = totp.matching_step(user.totp_secret, code)
    if step is not None:
        if user.totp_last_step is not None and step <= user.totp_last_step:
            return False  # replayed code
        user.totp_last_step = step
        return True
    if totp.use_recovery_code(user, code):
        audit.record("user.recovery_code_used", actor=user, obj=user,
                     changes={"remaining": totp.remaining_recovery_codes(user)})
        return True
    return False


def begin_totp_enrolment(user: User) -> str:
    if user.totp_enabled:
        raise Conflict(gettext("The second factor is already on."), code="totp_enabled")
    user.totp_secret = totp.new_secret()
    return user.totp_secret


def confirm_totp_enrolment(user: User, code: str) -> list[str]:
    if user.totp_enabled:
        raise Conflict(gettext("The second factor is already on."), code="totp_enabled")
    if not user.totp_secret:
        raise Conflict(gettext("Start the set-up first."), code="totp_not_started")
    step = totp.matching_step(user.totp_secret, code)
    if step is None:
        raise ValidationFailed(gettext("That code is not right; check your authenticator's "
                                       "time and enter the current 6-digit code."),
                               field="code")
    user.totp_last_step = step
    user.totp_enabled_at = clock.now()
    codes = totp.issue_recovery_codes(user)
    audit.record("user.totp_enabled", actor=user, obj=user)
    return codes


def disable_totp(user: User, *, code: str) -> None:
    if user.second_factor_required:
        raise Forbidden(gettext("Approvers and platform operators must keep the second factor on."),
                        code="totp_required")
    if not check_second_factor(user, code):
        raise ValidationFailed(gettext("That code is not right."), field="code")
    user.totp_secret, user.totp_enabled_at, user.totp_last_step = None, None, None
    totp.clear_recovery_codes(user)
    audit.record("user.totp_disabled", actor=user, obj=user)


def regenerate_recovery_codes(user: User, *, code: str) -> list[str]:
    if not check_second_factor(user, code):
        raise ValidationFailed(gettext("That code is not right."), field="code")
    audit.record("user.recovery_codes_regenerated", actor=user, obj=user)
    return totp.issue_recovery_codes(user)


def sign_out_everywhere(user: User) -> int:
    ended = sessions.revoke_all(user.id, "signed_out_everywhere")
    audit.record("user.signed_out_everywhere", actor=user, obj=user,
                 changes={"sessions_ended": ended})
    return ended


# --------------------------------------------------------------------------- API tokens

TOKEN_PREFIX = "sfp_"


def _token_digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def create_token(*, actor: User, name: str) -> tuple[ApiToken, str]:
    """A new API token acting as ``actor``. The raw token is returned once and never stored."""
    authz.require_approved(actor)
    name = _clean_text(name, "name", required=True, max_len=100)
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(org_id=actor.org_id, user_id=actor.id, name=name, prefix=raw[:12],
                     token_hash=_token_digest(raw), created_at=clock.now())
    db.session.add(token)
    db.session.flush()
    audit.record("api_token.created", actor=actor, obj=token,
                 changes={"name": name, "prefix": token.prefix})
    return token, raw


def list_tokens(actor: User) -> list[ApiToken]:
    return list(db.session.execute(
        select(ApiToken).where(ApiToken.org_id == actor.org_id)
        .order_by(ApiToken.id.desc())).scalars())


def revoke_token(token_id: int, *, actor: User) -> ApiToken:
    token = db.session.get(ApiToken, token_id)
    if token is None or token.org_id != actor.org_id:
        raise NotFound("API token", token_id)
    authz.require(actor, "accounts.manage_tokens", token)
    if token.revoked_at is None:
        token.revoked_at = clock.now()
        audit.record("api_token.revoked", actor=actor, obj=token, changes={"name": token.name})
    return token


def _revoke_org_tokens(org_id: int) -> None:
    for token in db.session.execute(
            select(ApiToken).where(ApiToken.org_id == org_id,
                                   ApiToken.revoked_at.is_(None))).scalars():
        token.revoked_at = clock.now()


def authenticate_token(raw: str | None) -> User | None:
    if not raw or not raw.startswith(TOKEN_PREFIX) or len(raw) > 200:
        return None
    token = db.session.execute(
        select(ApiToken).where(ApiToken.token_hash == _token_digest(raw))).scalar_one_or_none()
    if token is None or token.revoked_at is not None or not token.user.active:
        return None
    now = clock.now()
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        token.last_used_at = now
    return token.user


def find_user_by_email(email: str) -> User:
    user = db.session.execute(
        select(User).where(User.email == normalise_email(email))).scalar_one_or_none()
    if user is None:
        raise NotFound("user")
    return user


def organisation_names(ids) -> dict[int, str]:
    """Organisation id -> name, for the ids given (None and unknown ids left out)."""
    ids = {i for i in ids if i}
    if not ids:
        return {}
    return dict(db.session.execute(select(Organisation.id, Organisation.name)
                                   .where(Organisation.id.in_(ids))).all())
