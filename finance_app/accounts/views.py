"""Sign-up, sign-in, the second factor, the organisation's filing, users and API tokens."""
from __future__ import annotations

from time import time
from urllib.parse import urlsplit

from flask import (
    Blueprint, current_app, flash, redirect, render_template, request, session, url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_user

from finance_app import authz
from finance_app.accounts import services, sessions, totp
from finance_app.accounts.auth import sign_out_current
from finance_app.accounts.forms import (
    ButtonForm, CodeForm, FilingForm, PasswordChangeForm, RolesForm, SignInForm, SignUpForm,
    TokenForm, UserForm, attach_error,
)
from finance_app.accounts.models import Organisation
from finance_app.accounts.states import FilingStatus
from finance_app.errors import DomainError, ValidationFailed
from finance_app.extensions import db, limiter
from finance_app.i18n import select_locale

bp = Blueprint("accounts", __name__)

PENDING_2FA_SECONDS = 300


def _signin_limit() -> str:
    return current_app.config["SIGNIN_RATE_LIMIT"]


def _email_key() -> str:
    return "signin-email:" + (request.form.get("email") or "").strip().lower()


def _safe_next(target: str | None) -> str | None:
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


def _profile_from(form) -> services.OrgProfile:
    return services.OrgProfile(
        kind=getattr(form, "kind", None) and form.kind.data, name=form.name.data,
        name_en=form.name_en.data, country=form.country.data,
        credit_code=form.credit_code.data, customs_code=form.customs_code.data,
        registration_number=form.registration_number.data, address=form.address.data,
        zone=form.zone.data, contact_name=form.contact_name.data,
        contact_email=form.contact_email.data, contact_phone=form.contact_phone.data)


def _finish_sign_in(user):
    raw = services.complete_sign_in(user, ip_address=request.remote_addr,
                                    user_agent=request.headers.get("User-Agent"))
    db.session.commit()
    target = _safe_next(session.get("next_after_signin"))
    lang = session.get("lang")
    flashes = session.get("_flashes")
    session.clear()
    if lang:
        session["lang"] = lang
    if flashes:
        session["_flashes"] = flashes  # e.g. the sign-up confirmation
    session["sid"] = raw
    login_user(user)
    return redirect(target or url_for("main.dashboard"))


# --------------------------------------------------------------------------- sign-up / in

@bp.route("/signup", methods=["GET", "POST"])
@authz.allow(authz.PUBLIC)
@limiter.limit(_signin_limit, methods=["POST"])
def signup():
    if current_user.is_authenticated:
        return redirect(url_for("main.dashboard"))
    form = SignUpForm()
    form.set_country_choices(select_locale())
    if form.validate_on_submit():
        try:
            if form.password.data != form.password_confirm.data:
                raise ValidationFailed(_("The two passwords differ."), field="password_confirm")
            _org, user = services.register_organisation(
                _profile_from(form), admin_email=form.email.data, admin_name=form.admin_name.data,
                password=form.password.data, locale=session.get("lang"))
        except DomainError as exc:
            db.session.rollback()
            attach_error(form, exc)
        else:
            db.session.commit()
            flash(_("Your organisation is filed and waits for the platform operator's review. "
                    "You are signed in and can follow its status here."), "success")
            return _finish_sign_in(user)
    status = 422 if request.method == "POST" else 200
    return render_template("accounts/signup.html", form=form), status


@bp.route("/signin", methods=["GET", "POST"])
@authz.allow(authz.PUBLIC)
@limiter.limit(_signin_limit, methods=["POST"])
@limiter.limit(_signin_limit, methods=["POST"], key_func=_email_key)
def signin():
    if current_user.is_authenticated:
        return redirect(url_for("main.dashboard"))
    form = SignInForm()
    if request.method == "GET" and request.args.get("next"):
        session["next_after_signin"] = _safe_next(request.args.get("next"))
    if form.validate_on_submit():
        try:
            user = services.authenticate(
                form.email.data, form.password.data,
                max_failures=current_app.config["MAX_FAILED_SIGNINS"],
                lockout=current_app.config["LOCKOUT_PERIOD"])
        except DomainError as exc:
            db.session.commit()  # keep the failure count and any lock
            form.form_errors.append(exc.message)
        else:
            db.session.commit()
            if user.totp_enabled:
                session["pending_2fa"] = {"user_id": user.id, "at": time()}
                return redirect(url_for("accounts.second_factor"))
            return _finish_sign_in(user)
    status = 422 if request.method == "POST" else 200
    return render_template("accounts/signin.html", form=form), status


@bp.route("/signin/second-factor", methods=["GET", "POST"])
@authz.allow(authz.PUBLIC)
@limiter.limit(_signin_limit, methods=["POST"])
def second_factor():
    pending = session.get("pending_2fa")
    if not pending or time() - pending.get("at", 0) > PENDING_2FA_SECONDS:
        session.pop("pending_2fa", None)
        flash(_("Sign in again."), "warning")
        return redirect(url_for("accounts.signin"))
    user = db.session.get(services.User, pending["user_id"])
    if user is None or not user.active:
        session.pop("pending_2fa", None)
        return redirect(url_for("accounts.signin"))
    form = CodeForm()
    if form.validate_on_submit():
        if services.check_second_factor(user, form.code.data):
            db.session.commit()
            return _finish_sign_in(user)
        db.session.rollback()
        form.code.errors = [_("That code is not right. Enter the current 6-digit code "
                              "or one of your recovery codes.")]
    status = 422 if request.method == "POST" else 200
    return render_template("accounts/second_factor.html", form=form), status


@bp.post("/signout")
@authz.allow(authz.SIGNED_IN)
def signout():
    if ButtonForm().validate_on_submit():
        sign_out_current()
        flash(_("You are signed out."), "info")
    return redirect(url_for("accounts.signin"))


# --------------------------------------------------------------------------- own security

@bp.get("/account/security")
@authz.allow(authz.SIGNED_IN)
def security():
    return render_template(
        "accounts/security.html", button=ButtonForm(), password_form=PasswordChangeForm(),
        code_form=CodeForm(), live_sessions=sessions.live_sessions(current_user.id),
        current_sid_hash=sessions._digest(session.get("sid", "")),
        recovery_left=totp.remaining_recovery_codes(current_user))


@bp.post("/account/password")
@authz.allow(authz.SIGNED_IN)
def change_password():
    form = PasswordChangeForm()
    if form.validate_on_submit():
        try:
            services.change_password(current_user, current=form.current_password.data,
                                     new=form.new_password.data)
        except DomainError as exc:
            db.session.rollback()
            attach_error(form, exc)
        else:
            # Every session ended, this one too: sign in again with the new password.
            db.session.commit()
            sign_out_current()
            flash(_("Password changed. Sign in with the new password."), "success")
            return redirect(url_for("accounts.signin"))
    return render_template(
        "accounts/security.html", button=ButtonForm(), password_form=form, code_form=CodeForm(),
        live_sessions=sessions.live_sessions(current_user.id),
        current_sid_hash=sessions._digest(session.get("sid", "")),
        recovery_left=totp.remaining_recovery_codes(current_user)), 422


@bp.post("/account/signout-everywhere")
@authz.allow(authz.SIGNED_IN)
def signout_everywhere():
    if ButtonForm().validate_on_submit():
        services.sign_out_everywhere(current_user)
        db.session.commit()
        sign_out_current()
        flash(_("All your sessions have ended, on every device."), "info")
    return redirect(url_for("accounts.signin"))


@bp.route("/account/second-factor", methods=["GET", "POST"])
@authz.allow(authz.SIGNED_IN)
def totp_setup():
    if current_user.totp_enabled:
        return redirect(url_for("accounts.security"))
    form = CodeForm()
    if request.method == "GET" or not current_user.totp_secret:
        services.begin_totp_enrolment(current_user)
        db.session.commit()
    elif form.validate_on_submit():
        try:
            codes = services.confirm_totp_enrolment(current_user, form.code.data)
        except DomainError as exc:
            db.session.rollback()
            attach_error(form, exc)
        else:
            db.session.commit()
            return render_template("accounts/recovery_codes.html", codes=codes)
    uri = totp.provisioning_uri(current_user, current_user.totp_secret)
    status = 422 if request.method == "POST" else 200
    return render_template("accounts/totp_setup.html", form=form, secret=current_user.totp_secret,
                           qr=totp.qr_svg(uri), required=current_user.second_factor_required), status


@bp.post("/account/second-factor/disable")
@authz.allow(authz.SIGNED_IN)
def totp_disable():
    form = CodeForm()
    if form.validate_on_submit():
        try:
            services.disable_totp(current_user, code=form.code.data)
        except DomainError as exc:
            db.session.rollback()
            flash(exc.message, "danger")
        else:
            db.session.commit()
            flash(_("The second factor is off."), "info")
    return redirect(url_for("accounts.security"))


@bp.post("/account/second-factor/recovery-codes")
@authz.allow(authz.SIGNED_IN)
def recovery_codes():
    form = CodeForm()
    if form.validate_on_submit():
        try:
            codes = services.regenerate_recovery_codes(current_user, code=form.code.data)
        except DomainError as exc:
            db.session.rollback()
            flash(exc.message, "danger")
        else:
            db.session.commit()
            return render_template("accounts/recovery_codes.html", codes=codes)
    return redirect(url_for("accounts.security"))


# --------------------------------------------------------------------------- organisation

@bp.get("/organisation")
@authz.allow(authz.SIGNED_IN)
def organisation():
    return render_template("accounts/organisation.html", org=current_user.organisation)


@bp.route("/organisation/filing", methods=["GET", "POST"])
@authz.allow(authz.FILING_ADMIN)
def edit_filing():
    org = current_user.organisation
    form = FilingForm(obj=org)
    form.set_country_choices(select_locale())
    if org.filing_status not in (FilingStatus.PENDING, FilingStatus.REJECTED):
        flash(_("An approved filing is changed through the platform operator."), "warning")
        return redirect(url_for("accounts.organisation"))
    if form.validate_on_submit():
        try:
            profile = _profile_from(form)
            profile.kind = org.kind.value
            services.update_filing(org.id, profile, actor=current_user)
        except DomainError as exc:
            db.session.rollback()
            attach_error(form, exc)
        else:
            db.session.commit()
            flash(_("Filing updated and sent for review."), "success")
            return redirect(url_for("accounts.organisation"))
    status = 422 if request.method == "POST" else 200
    return render_template("accounts/edit_filing.html", form=form, org=org), status


@bp.get("/directory")
@authz.allow(authz.DIRECTORY)
def directory():
    q = (request.args.get("q") or "")[:100]
    kind = request.args.get("kind") or None
    from finance_app.accounts.states import OrgKind
    try:
        kind_value = OrgKind(kind) if kind else None
    except ValueError:
        kind_value = None
    orgs = services.directory(current_user, kind=kind_value, q=q)
    return render_template("accounts/directory.html", orgs=orgs, q=q, kind=kind_value)


@bp.get("/directory/<int:org_id>")
@authz.allow(authz.DIRECTORY)
def directory_detail(org_id: int):
    org = services.get_organisation(org_id, actor=current_user)
    return render_template("accounts/directory_detail.html", org=org)


# --------------------------------------------------------------------------- users

@bp.get("/organisation/users")
@authz.allow(authz.ORG_ADMIN)
def users():
    return render_template("accounts/users.html", users=services.list_users(current_user),
                           button=ButtonForm())


@bp.route("/organisation/users/new", methods=["GET", "POST"])
@authz.allow(authz.ORG_ADMIN)
def user_new():
    form = UserForm()
    if form.validate_on_submit():
        try:
            user = services.add_user(actor=current_user, email=form.email.data,
                                     name=form.name.data, roles=form.roles.data or [],
                                     password=form.password.data)
        except DomainError as exc:
            db.session.rollback()
            attach_error(form, exc)
        else:
            db.session.commit()
            flash(_("%(email)s can now sign in.", email=user.email), "success")
            return redirect(url_for("accounts.users"))
    status = 422 if request.method == "POST" else 200
    return render_template("accounts/user_new.html", form=form), status


@bp.route("/organisation/users/<int:user_id>", methods=["GET", "POST"])
@authz.allow(authz.ORG_ADMIN)
def user_detail(user_id: int):
    user = services.get_user(user_id, actor=current_user)
    form = RolesForm(roles=[r.value for r in user.roles])
    if form.validate_on_submit():
        try:
            services.set_roles(user.id, form.roles.data or [], actor=current_user)
        except DomainError as exc:
            db.session.rollback()
            attach_error(form, exc)
        else:
            db.session.commit()
            flash(_("Roles saved."), "success")
            return redirect(url_for("accounts.users"))
    status = 422 if request.method == "POST" else 200
    return render_template("accounts/user_detail.html", user=user, form=form,
                           button=ButtonForm()), status


def _user_action(user_id: int, action, message: str):
    if ButtonForm().validate_on_submit():
        try:
            action(user_id, actor=current_user)
        except DomainError as exc:
            db.session.rollback()
            if exc.status_code == 404:
                raise
            flash(exc.message, "danger")
        else:
            db.session.commit()
            flash(message, "success")
    return redirect(url_for("accounts.users"))


@bp.post("/organisation/users/<int:user_id>/deactivate")
@authz.allow(authz.ORG_ADMIN)
def user_deactivate(user_id: int):
    return _user_action(user_id, services.deactivate_user,
                        _("User deactivated; their sessions have ended."))


@bp.post("/organisation/users/<int:user_id>/reactivate")
@authz.allow(authz.ORG_ADMIN)
def user_reactivate(user_id: int):
    return _user_action(user_id, services.reactivate_user, _("User reactivated."))


@bp.post("/organisation/users/<int:user_id>/unlock")
@authz.allow(authz.ORG_ADMIN)
def user_unlock(user_id: int):
    return _user_action(user_id, services.unlock_user, _("User unlocked."))


# --------------------------------------------------------------------------- API tokens

@bp.route("/organisation/tokens", methods=["GET", "POST"])
@authz.allow(authz.ORG_ADMIN)
def tokens():
    form = TokenForm()
    new_token = None
    if form.validate_on_submit():
        try:
            _token, new_token = services.create_token(actor=current_user, name=form.name.data)
        except DomainError as exc:
            db.session.rollback()
            attach_error(form, exc)
        else:
            db.session.commit()
            form = TokenForm(formdata=None)
    status = 422 if request.method == "POST" and new_token is None else 200
    return render_template("accounts/tokens.html", form=form, new_token=new_token,
                           tokens=services.list_tokens(current_user), button=ButtonForm()), status


@bp.post("/organisation/tokens/<int:token_id>/revoke")
@authz.allow(authz.ORG_ADMIN)
def token_revoke(token_id: int):
    if ButtonForm().validate_on_submit():
        services.revoke_token(token_id, actor=current_user)
        db.session.commit()
        flash(_("Token revoked; it no longer works."), "success")
    return redirect(url_for("accounts.tokens"))
