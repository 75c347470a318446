"""Organisations, their users, roles, sessions, second factors and API tokens."""
from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import (
    Boolean, CheckConstraint, Enum, ForeignKey, Index, Integer, String, Text, UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from finance_app import clock
from finance_app.accounts.states import (
    FILING_TRANSITIONS, FilingAction, FilingStatus, OrgKind, Role,
)
from finance_app.extensions import db
from finance_app.states import enum_values, next_status

if TYPE_CHECKING:  # pragma: no cover
    pass


def _enum(enum_cls, name: str) -> Enum:
    return Enum(enum_cls, native_enum=False, create_constraint=True, name=name,
                values_callable=enum_values, length=32, validate_strings=True)


class Organisation(db.Model):
    __tablename__ = "organisations"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[OrgKind] = mapped_column(_enum(OrgKind, "org_kind"))
    name: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str | None] = mapped_column(String(200))
    country: Mapped[str] = mapped_column(String(2))  # ISO 3166-1 alpha-2
    credit_code: Mapped[str | None] = mapped_column(String(18), unique=True)
    customs_code: Mapped[str | None] = mapped_column(String(10), unique=True)
    registration_number: Mapped[str | None] = mapped_column(String(64))
    address: Mapped[str | None] = mapped_column(String(300))
    contact_name: Mapped[str | None] = mapped_column(String(100))
    contact_email: Mapped[str] = mapped_column(String(254))
    contact_phone: Mapped[str | None] = mapped_column(String(40))
    zone: Mapped[str | None] = mapped_column(String(40))  # pilot-zone area, e.g. "Zhuhai"

    filing_status: Mapped[FilingStatus] = mapped_column(
        _enum(FilingStatus, "filing_status"), default=FilingStatus.PENDING)
    filing_reason: Mapped[str | None] = mapped_column(Text)
    filed_at: Mapped[datetime] = mapped_column(default=clock.now)
    decided_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=clock.now)

    users: Mapped[list["User"]] = relationship(back_populates="organisation",
                                               order_by="User.id")
    filing_history: Mapped[list["FilingStatusChange"]] = relationship(
        back_populates="organisation", order_by="FilingStatusChange.id")

    __table_args__ = (
        # A Chinese organisation files its credit code; a foreign one its registration number.
        CheckConstraint("country <> 'CN' OR credit_code IS NOT NULL", name="cn_has_credit_code"),
        CheckConstraint("country = 'CN' OR registration_number IS NOT NULL",
                        name="foreign_has_registration_number"),
        UniqueConstraint("country", "registration_number"),
    )

    @property
    def is_approved(self) -> bool:
        return self.filing_status is FilingStatus.APPROVED

    @property
    def display_name(self) -> str:
        return self.name

    def apply(self, action: FilingAction, *, actor: "User | None", reason: str | None = None
              ) -> "FilingStatusChange":
        """The only way the filing status changes; writes the history row."""
        new_status = next_status(FILING_TRANSITIONS, self.filing_status, action,
                                 what="filing")
        change = FilingStatusChange(
            organisation=self, from_status=self.filing_status, to_status=new_status,
            action=action, actor_user_id=actor.id if actor else None, reason=reason,
            at=clock.now())
        self.filing_status = new_status
        self.filing_reason = reason
        if action is FilingAction.RESUBMIT:
            self.filed_at = change.at
            self.decided_at = None
        else:
            self.decided_at = change.at
        db.session.add(change)
        return change

    def __repr__(self) -> str:
        return f"<Organisation {self.id} {self.kind} {self.name!r}>"


class FilingStatusChange(db.Model):
    __tablename__ = "filing_status_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    from_status: Mapped[FilingStatus] = mapped_column(_enum(FilingStatus, "filing_from_status"))
    to_status: Mapped[FilingStatus] = mapped_column(_enum(FilingStatus, "filing_to_status"))
    action: Mapped[FilingAction] = mapped_column(_enum(FilingAction, "filing_action"))
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reason: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(default=clock.now)

    organisation: Mapped[Organisation] = relationship(back_populates="filing_history")
    actor: Mapped["User | None"] = relationship()


class User(db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    locale: Mapped[str | None] = mapped_column(String(10))
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    totp_enabled_at: Mapped[datetime | None] = mapped_column()
    totp_last_step: Mapped[int | None] = mapped_column(Integer)  # refuses replay of a code
    failed_signins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    last_signin_at: Mapped[datetime | None] = mapped_column()

    organisation: Mapped[Organisation] = relationship(back_populates="users")
    role_rows: Mapped[list["UserRole"]] = relationship(
        back_populates="user", cascade="all, delete-orphan", order_by="UserRole.role")

    # Flask-Login protocol -------------------------------------------------
    is_authenticated = True
    is_anonymous = False

    @property
    def is_active(self) -> bool:
        return self.active

    def get_id(self) -> str:
        return str(self.id)

    # Roles ----------------------------------------------------------------
    @property
    def roles(self) -> set[Role]:
        return {row.role for row in self.role_rows}

    def has_role(self, *roles: Role) -> bool:
        return bool(self.roles.intersection(roles))

    @property
    def kind(self) -> OrgKind:
        return self.organisation.kind

    @property
    def totp_enabled(self) -> bool:
        return self.totp_enabled_at is not None

    @property
    def second_factor_required(self) -> bool:
        """Approvers and platform operators must use a second factor."""
        return (Role.APPROVER in self.roles
                or self.organisation.kind is OrgKind.PLATFORM_OPERATOR)

    def is_locked(self) -> bool:
        return self.locked_until is not None and self.locked_until > clock.now()

    def __repr__(self) -> str:
        return f"<User {self.id} {self.email}>"


class UserRole(db.Model):
    __tablename__ = "user_roles"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    role: Mapped[Role] = mapped_column(_enum(Role, "user_role"))

    user: Mapped[User] = relationship(back_populates="role_rows")

    __table_args__ = (UniqueConstraint("user_id", "role"),)


class RecoveryCode(db.Model):
    """Single-use second-factor recovery codes, stored as SHA-256 (they are random)."""
    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[datetime | None] = mapped_column()


class UserSession(db.Model):
    """A signed-in browser. The cookie carries only the random id; its hash is stored here,
    so deleting or revoking the row ends the session at once."""
    __tablename__ = "user_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    last_seen_at: Mapped[datetime] = mapped_column(default=clock.now)
    revoked_at: Mapped[datetime | None] = mapped_column()
    revoked_reason: Mapped[str | None] = mapped_column(String(40))
    ip_address: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))

    user: Mapped[User] = relationship()

    __table_args__ = (Index("ix_user_sessions_user_live", "user_id", "revoked_at"),)


class ApiToken(db.Model):
    """A bearer token for the API. Acts as the user who created it, within their organisation.
    Only the SHA-256 is stored; the token is shown once."""
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    last_used_at: Mapped[datetime | None] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()

    user: Mapped[User] = relationship()

    @property
    def is_live(self) -> bool:
        return self.revoked_at is None


class Notification(db.Model):
    """A notice to an organisation (a payment arrived, a margin call opened, ...), shown in
    its inbox. ``kind`` names the message and ``params`` fills it, so each reader sees it in
    their own language. Written by the outbox (``accounts.notifications``)."""
    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    kind: Mapped[str] = mapped_column(String(60))
    params: Mapped[str] = mapped_column(Text, default="{}")   # JSON
    link: Mapped[str | None] = mapped_column(String(300))      # a path in the app
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    read_at: Mapped[datetime | None] = mapped_column()

    __table_args__ = (Index("ix_notifications_org_unread", "org_id", "read_at", "id"),)
