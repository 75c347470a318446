"""The risk compensation fund: funds, their budget top-ups, claims and one status history
for both.

Amounts are integers of their currency's minor units; the share of principal lost is an
``ExactDecimal(4)`` fraction (0.5000 is 50 %; in SQL 1.0000 reads 10000). No balance lives
here: a fund's budget, what is left of it and what is payable to banks are ledger balances
(``compensation.accounts``); a top-up keeps the ledger transaction that booked it.
"""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger, Boolean, CheckConstraint, Enum, ForeignKey, Index, Integer, String, Text,
    UniqueConstraint, text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from finance_app import clock
from finance_app.compensation.states import (
    CLAIM_TRANSITIONS, FUND_TRANSITIONS, ClaimStatus, FundStatus,
)
from finance_app.db import ExactDecimal
from finance_app.extensions import db
from finance_app.history import StatusHistory
from finance_app.money import Money
from finance_app.states import enum_values


def _enum(enum_cls, name: str) -> Enum:
    return Enum(enum_cls, native_enum=False, create_constraint=True, name=name,
                values_callable=enum_values, length=20, validate_strings=True)


Share = ExactDecimal(4)     # 0.5000 is 50 % of the principal lost


class _Stateful(StatusHistory):
    """``apply`` is the only way a status changes: a history row and an audit event."""
    _domain = "compensation"
    _owner = "operator_org_id"


class CompensationStatusChange(db.Model):
    """Every status change of every fund and claim, oldest first per record."""
    __tablename__ = "compensation_status_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    subject: Mapped[str] = mapped_column(String(20))       # fund, claim
    subject_id: Mapped[int] = mapped_column(Integer)
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(20))
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    actor_org_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"))
    note: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(default=clock.now)

    __table_args__ = (Index("ix_compensation_status_changes_subject", "subject", "subject_id"),)


_Stateful._history = CompensationStatusChange


class CompensationFund(_Stateful, db.Model):
    """A fund the platform operator runs: it pays banks ``share`` of the principal lost on
    defaulted loans, at most ``cap_per_loan`` a loan, out of its budget (a ledger balance)."""
    __tablename__ = "compensation_funds"
    _table, _what = FUND_TRANSITIONS, "fund"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    operator_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    share: Mapped[Decimal] = mapped_column(Share)
    cap_per_loan_amount: Mapped[int] = mapped_column(BigInteger)     # minor units
    start_date: Mapped[date] = mapped_column()
    end_date: Mapped[date] = mapped_column()
    # the financing product kinds covered, "receivable,order"; empty: every kind
    product_kinds: Mapped[str] = mapped_column(String(100), default="")
    status: Mapped[FundStatus] = mapped_column(_enum(FundStatus, "fund_status"),
                                               default=FundStatus.ACTIVE, index=True)
    status_changed_at: Mapped[datetime] = mapped_column(default=clock.now)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    banks: Mapped[list["FundBank"]] = relationship(back_populates="fund",
                                                   cascade="all, delete-orphan",
                                                   order_by="FundBank.bank_org_id")

    __table_args__ = (
        CheckConstraint("share > 0 AND share <= 10000", name="share_fraction"),
        CheckConstraint("cap_per_loan_amount > 0", name="cap_positive"),
        CheckConstraint("end_date >= start_date", name="period_order"),
        CheckConstraint("length(currency) = 3", name="currency_code"),
    )

    @property
    def cap_per_loan(self) -> Money:
        return Money.from_minor(self.cap_per_loan_amount, self.currency)

    @property
    def bank_org_ids(self) -> list[int]:
        return [b.bank_org_id for b in self.banks]

    @property
    def kinds(self) -> list[str]:
        return [k for k in self.product_kinds.split(",") if k]

    def __repr__(self) -> str:
        return f"<CompensationFund {self.id} {self.name!r} {self.status}>"


class FundBank(db.Model):
    """A bank a fund covers; a fund with none covers every bank."""
    __tablename__ = "compensation_fund_banks"

    id: Mapped[int] = mapped_column(primary_key=True)
    fund_id: Mapped[int] = mapped_column(ForeignKey("compensation_funds.id"), index=True)
    bank_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))

    fund: Mapped[CompensationFund] = relationship(back_populates="banks")

    __table_args__ = (UniqueConstraint("fund_id", "bank_org_id"),)


class FundTopUp(db.Model):
    """Money the platform puts into a fund's budget (the first one when it is made), with
    the ledger transaction that booked it."""
    __tablename__ = "compensation_top_ups"

    id: Mapped[int] = mapped_column(primary_key=True)
    fund_id: Mapped[int] = mapped_column(ForeignKey("compensation_funds.id"), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    amount: Mapped[int] = mapped_column(BigInteger)
    ledger_transaction_id: Mapped[int] = mapped_column(ForeignKey("ledger_transactions.id"),
                                                       unique=True)
    note: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    __table_args__ = (CheckConstraint("amount > 0", name="amount_positive"),)

    @property
    def money(self) -> Money:
        return Money.from_minor(self.amount, self.currency)


class CompensationClaim(_Stateful, db.Model):
    """A bank's claim against a fund for one of its defaulted loans.

    Fixed when filed: the principal lost (the loan's principal outstanding in the ledger),
    the share of it (rounded down to minor units), that in the fund's currency (the day's
    rate, rounded down) and the amount claimed within the cap per loan. Set when approved:
    the compensation, which the remaining budget may have capped."""
    __tablename__ = "compensation_claims"
    _table, _what = CLAIM_TRANSITIONS, "claim"

    id: Mapped[int] = mapped_column(primary_key=True)
    fund_id: Mapped[int] = mapped_column(ForeignKey("compensation_funds.id"), index=True)
    operator_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    loan_id: Mapped[int] = mapped_column(ForeignKey("financing_loans.id"), index=True)
    bank_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    sme_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    loan_currency: Mapped[str] = mapped_column(String(3))
    principal_lost_amount: Mapped[int] = mapped_column(BigInteger)     # loan currency
    share: Mapped[Decimal] = mapped_column(Share)
    share_amount: Mapped[int] = mapped_column(BigInteger)              # loan currency
    currency: Mapped[str] = mapped_column(String(3))                   # the fund's
    converted_amount: Mapped[int] = mapped_column(BigInteger)          # share, fund currency
    claimed_amount: Mapped[int] = mapped_column(BigInteger)            # within the cap
    capped_by_loan_cap: Mapped[bool] = mapped_column(Boolean, default=False)
    fx_note: Mapped[str | None] = mapped_column(String(200))
    compensation_amount: Mapped[int | None] = mapped_column(BigInteger)
    capped_by_budget: Mapped[bool] = mapped_column(Boolean, default=False)
    ledger_transaction_id: Mapped[int | None] = mapped_column(
        ForeignKey("ledger_transactions.id"))
    settlement_id: Mapped[int | None] = mapped_column(ForeignKey("settlement_records.id"))
    filed_on: Mapped[date] = mapped_column()
    status: Mapped[ClaimStatus] = mapped_column(_enum(ClaimStatus, "compensation_claim_status"),
                                                default=ClaimStatus.SUBMITTED, index=True)
    status_changed_at: Mapped[datetime] = mapped_column(default=clock.now)
    reason: Mapped[str | None] = mapped_column(Text)                   # of the decision
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    fund: Mapped[CompensationFund] = relationship()

    __table_args__ = (
        Index("uq_compensation_claims_one_live", "loan_id", unique=True,
              postgresql_where=text("status IN ('submitted', 'approved', 'paid')"),
              sqlite_where=text("status IN ('submitted', 'approved', 'paid')")),
        CheckConstraint("principal_lost_amount > 0", name="loss_positive"),
        CheckConstraint("share > 0 AND share <= 10000", name="share_fraction"),
        CheckConstraint("share_amount >= 0 AND converted_amount >= 0", name="not_negative"),
        CheckConstraint("claimed_amount > 0 AND claimed_amount <= converted_amount",
                        name="claimed_within_share"),
        CheckConstraint("compensation_amount IS NULL OR (compensation_amount > 0 AND "
                        "compensation_amount <= claimed_amount)", name="compensation_within_claim"),
        CheckConstraint("status NOT IN ('approved', 'paid') OR (compensation_amount IS NOT NULL "
                        "AND settlement_id IS NOT NULL AND ledger_transaction_id IS NOT NULL)",
                        name="approved_is_booked"),
    )

    def _money(self, units: int | None, currency: str) -> Money | None:
        return None if units is None else Money.from_minor(units, currency)

    @property
    def principal_lost(self) -> Money:
        return self._money(self.principal_lost_amount, self.loan_currency)

    @property
    def share_of_loss(self) -> Money:
        return self._money(self.share_amount, self.loan_currency)

    @property
    def converted(self) -> Money:
        return self._money(self.converted_amount, self.currency)

    @property
    def claimed(self) -> Money:
        return self._money(self.claimed_amount, self.currency)

    @property
    def compensation(self) -> Money | None:
        return self._money(self.compensation_amount, self.currency)
