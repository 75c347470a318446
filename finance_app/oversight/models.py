"""Oversight records: risk alerts (a rule saw something about an organisation that people
should look at), the operator's thresholds for the rules, and credit ratings with the
factors that made them."""
from __future__ import annotations

from datetime import datetime

from datetime import date

from sqlalchemy import Enum, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from finance_app import clock
from finance_app.extensions import db
from finance_app.oversight.states import AlertStatus, Severity
from finance_app.states import enum_values


def _enum(enum_cls, name: str) -> Enum:
    return Enum(enum_cls, native_enum=False, create_constraint=True, name=name,
                values_callable=enum_values, length=20, validate_strings=True)


class RiskAlert(db.Model):
    __tablename__ = "risk_alerts"

    id: Mapped[int] = mapped_column(primary_key=True)
    rule: Mapped[str] = mapped_column(String(60))
    severity: Mapped[Severity] = mapped_column(_enum(Severity, "alert_severity"))
    subject_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    # another party concerned (the bank whose loan is overdue), who sees the alert too
    party_org_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"))
    object_type: Mapped[str | None] = mapped_column(String(40))
    object_id: Mapped[int | None] = mapped_column()
    message: Mapped[str] = mapped_column(String(500))
    evidence: Mapped[str] = mapped_column(Text, default="{}")     # canonical JSON
    status: Mapped[AlertStatus] = mapped_column(_enum(AlertStatus, "alert_status"),
                                                default=AlertStatus.OPEN)
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    raised_at: Mapped[datetime] = mapped_column(default=clock.now)
    acknowledged_at: Mapped[datetime | None] = mapped_column()
    acknowledged_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    resolved_at: Mapped[datetime | None] = mapped_column()
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    resolution_note: Mapped[str | None] = mapped_column(String(500))

    __table_args__ = (Index("ix_risk_alerts_subject_status", "subject_org_id", "status"),
                      Index("ix_risk_alerts_party_status", "party_org_id", "status"),
                      Index("ix_risk_alerts_status_raised", "status", "raised_at"))


class RiskSetting(db.Model):
    """A threshold of the risk rules as the platform operator set it (the code holds the
    default and the range)."""
    __tablename__ = "risk_settings"

    key: Mapped[str] = mapped_column(String(60), primary_key=True)
    value: Mapped[str] = mapped_column(String(40))     # a decimal, exactly as entered
    updated_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class CreditRating(db.Model):
    """One SME's rating as computed on a date; a new row only when it changed."""
    __tablename__ = "credit_ratings"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    grade: Mapped[str] = mapped_column(String(3))
    score: Mapped[int] = mapped_column(Integer)
    trigger: Mapped[str] = mapped_column(String(20))
    fingerprint: Mapped[str] = mapped_column(String(64))
    computed_on: Mapped[date] = mapped_column()
    confirmed_on: Mapped[date] = mapped_column()       # last recomputed with no change
    computed_at: Mapped[datetime] = mapped_column(default=clock.now)

    factors: Mapped[list["RatingFactor"]] = relationship(
        order_by="RatingFactor.position", cascade="all, delete-orphan", lazy="selectin")

    __table_args__ = (Index("ix_credit_ratings_org", "org_id", "id"),)


class RatingFactor(db.Model):
    """One factor of a rating: what it found (``value``, ``params``) and how many points it
    moved the score."""
    __tablename__ = "credit_rating_factors"

    id: Mapped[int] = mapped_column(primary_key=True)
    rating_id: Mapped[int] = mapped_column(ForeignKey("credit_ratings.id", ondelete="CASCADE"),
                                           index=True)
    position: Mapped[int] = mapped_column(Integer)
    code: Mapped[str] = mapped_column(String(40))
    value: Mapped[str] = mapped_column(String(60))
    points: Mapped[int] = mapped_column(Integer)
    params: Mapped[str] = mapped_column(Text, default="{}")     # JSON
