"""Settlement records (who pays whom, how, and whether it is paid), their history, the
outbox of external effects, and the Stripe events already handled."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger, Boolean, CheckConstraint, Enum, ForeignKey, Integer, String, UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from finance_app import clock
from finance_app.extensions import db
from finance_app.money import Money
from finance_app.settlement.states import ObligationKind, SettlementMethod, SettlementStatus
from finance_app.states import enum_values


def _enum(enum_cls, name: str) -> Enum:
    return Enum(enum_cls, native_enum=False, create_constraint=True, name=name,
                values_callable=enum_values, length=20, validate_strings=True)


class SettlementRecord(db.Model):
    __tablename__ = "settlement_records"

    id: Mapped[int] = mapped_column(primary_key=True)
    obligation_kind: Mapped[ObligationKind] = mapped_column(
        _enum(ObligationKind, "obligation_kind"))
    obligation_ref: Mapped[str | None] = mapped_column(String(80))   # e.g. "loan:12/inst:3"
    description: Mapped[str] = mapped_column(String(300), default="")
    payer_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    payee_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)   # minor units
    currency: Mapped[str] = mapped_column(String(3))
    value_date: Mapped[date] = mapped_column()
    method: Mapped[SettlementMethod] = mapped_column(_enum(SettlementMethod, "settlement_method"))
    cross_border_rmb: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[SettlementStatus] = mapped_column(
        _enum(SettlementStatus, "settlement_status"), default=SettlementStatus.PENDING)
    # What payment books: the money arrives in the debit account (the payee's side) and
    # settles the credit account (the obligation, on the payer's side); same currency. A
    # card payment arrives in the platform's Stripe clearing account first and is remitted
    # to the debit account when Stripe pays it out.
    debit_account_id: Mapped[int] = mapped_column(ForeignKey("ledger_accounts.id"))
    credit_account_id: Mapped[int] = mapped_column(ForeignKey("ledger_accounts.id"))
    ledger_transaction_id: Mapped[int | None] = mapped_column(
        ForeignKey("ledger_transactions.id"), unique=True)
    bank_reference: Mapped[str | None] = mapped_column(String(80))
    # Online payments: Stripe's PaymentIntent, and the idempotency key sent when creating
    # it (derived from this record and its attempt, so a retry never pays twice).
    payment_intent_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    card_status: Mapped[str | None] = mapped_column(String(40))   # Stripe's, as last seen
    last_attempt_at: Mapped[datetime | None] = mapped_column()
    failure_reason: Mapped[str | None] = mapped_column(String(500))
    remittance_transaction_id: Mapped[int | None] = mapped_column(
        ForeignKey("ledger_transactions.id"), unique=True)
    remittance_reference: Mapped[str | None] = mapped_column(String(80))
    remitted_at: Mapped[datetime | None] = mapped_column()
    idempotency_key: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64), default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    paid_at: Mapped[datetime | None] = mapped_column()

    history: Mapped[list["SettlementStatusChange"]] = relationship(
        order_by="SettlementStatusChange.id", back_populates="record")

    __table_args__ = (
        UniqueConstraint("payer_org_id", "idempotency_key", name="payer_key"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("payer_org_id <> payee_org_id", name="two_parties"),
    )

    @property
    def money(self) -> Money:
        return Money.from_minor(self.amount, self.currency)

    @property
    def awaiting_remittance(self) -> bool:
        return (self.status is SettlementStatus.PAID and self.method is SettlementMethod.CARD
                and self.remittance_transaction_id is None)


class SettlementStatusChange(db.Model):
    __tablename__ = "settlement_status_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    record_id: Mapped[int] = mapped_column(ForeignKey("settlement_records.id"), index=True)
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(20))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    note: Mapped[str | None] = mapped_column(String(500))
    at: Mapped[datetime] = mapped_column(default=clock.now)

    record: Mapped[SettlementRecord] = relationship(back_populates="history")


class StripeEvent(db.Model):
    """A Stripe webhook event handled once: its id is unique, so a replay is a no-op."""
    __tablename__ = "stripe_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[str] = mapped_column(String(255), unique=True)
    type: Mapped[str] = mapped_column(String(100))
    payment_intent_id: Mapped[str | None] = mapped_column(String(255), index=True)
    settlement_id: Mapped[int | None] = mapped_column(ForeignKey("settlement_records.id"))
    outcome: Mapped[str] = mapped_column(String(200))
    received_at: Mapped[datetime] = mapped_column(default=clock.now)


class StripeCustomer(db.Model):
    """The Stripe customer that stands for an organisation paying by card."""
    __tablename__ = "stripe_customers"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), unique=True)
    customer_id: Mapped[str] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
