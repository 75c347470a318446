"""Risk alerts: a rule saw something about an organisation that people should look at."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Enum, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

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
    resolved_at: Mapped[datetime | None] = mapped_column()
    resolution_note: Mapped[str | None] = mapped_column(String(500))

    __table_args__ = (Index("ix_risk_alerts_subject_status", "subject_org_id", "status"),)
