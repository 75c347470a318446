"""Ledger accounts, transactions and their entries, and exchange rates.

Amounts are integers of the currency's minor units (ISO 4217), so both databases keep
every digit. An entry's amount is signed: debits positive, credits negative; the
entries of a transaction sum to zero in each currency. An account keeps its posted
balance and its pending debits and credits (holds) beside the entries, updated in the
same transaction under a row lock; each posted entry carries the balance after it and
its place in the account's sequence, so the chain can be checked end to end.

The database enforces what must hold whatever the code does (see the migration): a
deferred constraint trigger refuses a committed transaction whose entries do not sum to
zero per currency, entries cannot be updated or deleted, an entry's currency is its
account's, and a hold is posted or voided at most once (``pending_id`` is unique). Each
transaction declares its number of entries: no entry can be added beyond it, and the
last one checks the sums (on SQLite, which has no deferred triggers, that is the
balance check).
"""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger, CheckConstraint, Enum, ForeignKey, Index, Integer, String, Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from finance_app import clock
from finance_app.db import ExactDecimal
from finance_app.extensions import db
from finance_app.ledger.states import (
    AccountType, EntryPhase, OwnerKind, RateSource, TransactionStatus,
)
from finance_app.money import Money
from finance_app.states import enum_values


def _enum(enum_cls, name: str) -> Enum:
    return Enum(enum_cls, native_enum=False, create_constraint=True, name=name,
                values_callable=enum_values, length=20, validate_strings=True)


Rate = ExactDecimal(10)   # 1 base = rate quote; ten decimals, stored as a scaled integer


class LedgerAccount(db.Model):
    __tablename__ = "ledger_accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"), index=True)
    owner_kind: Mapped[OwnerKind] = mapped_column(_enum(OwnerKind, "owner_kind"))
    owner_id: Mapped[int | None] = mapped_column(Integer)   # the loan, policy, ... id
    # "kind:org:owner" with "-" for none: unique with purpose and currency (NULLs would not
    # be, in a unique constraint, on either database).
    owner_key: Mapped[str] = mapped_column(String(60))
    type: Mapped[AccountType] = mapped_column(_enum(AccountType, "account_type"))
    purpose: Mapped[str] = mapped_column(String(40))
    currency: Mapped[str] = mapped_column(String(3))
    name: Mapped[str] = mapped_column(String(200))
    # The account's normal balance (debit-normal: debits minus credits; credit-normal:
    # credits minus debits) less its pending outflows may not go below this; NULL: no floor.
    min_balance: Mapped[int | None] = mapped_column(BigInteger)
    balance: Mapped[int] = mapped_column(BigInteger, default=0)   # posted, debit-positive
    pending_debits: Mapped[int] = mapped_column(BigInteger, default=0)
    pending_credits: Mapped[int] = mapped_column(BigInteger, default=0)
    entry_count: Mapped[int] = mapped_column(Integer, default=0)  # posted entries so far
    created_at: Mapped[datetime] = mapped_column(default=clock.now)

    __table_args__ = (
        # One account per owner, purpose and currency ("" stands for no owner id).
        UniqueConstraint("owner_key", "purpose", "currency", name="owner_purpose_currency"),
        CheckConstraint("pending_debits >= 0 AND pending_credits >= 0",
                        name="pending_not_negative"),
        CheckConstraint("length(currency) = 3", name="currency_code"),
    )

    def normal(self, signed: int) -> int:
        """A debit-positive amount in this account's normal direction."""
        return signed if self.type.debit_normal else -signed

    @property
    def normal_balance(self) -> int:
        return self.normal(self.balance)

    @property
    def available(self) -> int:
        """The normal balance less pending outflows (what a floor is checked against)."""
        outflow = self.pending_credits if self.type.debit_normal else self.pending_debits
        return self.normal_balance - outflow

    def money(self, units: int) -> Money:
        return Money.from_minor(units, self.currency)

    @property
    def balance_money(self) -> Money:
        return self.money(self.normal_balance)

    def __repr__(self) -> str:
        return f"<LedgerAccount {self.id} {self.purpose} {self.currency}>"


class LedgerTransaction(db.Model):
    __tablename__ = "ledger_transactions"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Idempotency: unique per organisation ("platform" for the platform's own bookings).
    scope: Mapped[str] = mapped_column(String(30))
    idempotency_key: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(40))
    description: Mapped[str] = mapped_column(String(500), default="")
    status: Mapped[TransactionStatus] = mapped_column(
        _enum(TransactionStatus, "transaction_status"))
    value_date: Mapped[date] = mapped_column(index=True)
    entry_count: Mapped[int] = mapped_column(Integer)   # declared; the database checks it
    booked_at: Mapped[datetime] = mapped_column(default=clock.now, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # A reversal points at what it reverses (at most one reversal each).
    reverses_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_transactions.id"),
                                                    unique=True)
    # Posting or voiding a hold points at the hold (at most once: unique).
    pending_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_transactions.id"),
                                                   unique=True)
    resolved_at: Mapped[datetime | None] = mapped_column()   # a hold: when posted/voided
    fx: Mapped[str | None] = mapped_column(Text)   # a conversion's rate snapshot, JSON
    reference_kind: Mapped[str | None] = mapped_column(String(40))   # e.g. "settlement"
    reference_id: Mapped[int | None] = mapped_column(Integer)

    entries: Mapped[list["LedgerEntry"]] = relationship(
        back_populates="transaction", order_by="LedgerEntry.id")

    __table_args__ = (
        # key first: a batch looks its keys up by key, whatever the scopes' statistics
        UniqueConstraint("idempotency_key", "scope", name="scope_key"),
        Index("ix_ledger_transactions_reference", "reference_kind", "reference_id"),
    )


class LedgerEntry(db.Model):
    __tablename__ = "ledger_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    transaction_id: Mapped[int] = mapped_column(ForeignKey("ledger_transactions.id"),
                                                index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("ledger_accounts.id"))
    amount: Mapped[int] = mapped_column(BigInteger)   # minor units, debit-positive
    currency: Mapped[str] = mapped_column(String(3))
    phase: Mapped[EntryPhase] = mapped_column(_enum(EntryPhase, "entry_phase"))
    # Posted entries: the account's posted balance after this entry and its sequence
    # number (1, 2, ...) in the account; pending entries carry neither.
    balance_after: Mapped[int | None] = mapped_column(BigInteger)
    sequence: Mapped[int | None] = mapped_column(Integer)
    value_date: Mapped[date] = mapped_column()

    transaction: Mapped[LedgerTransaction] = relationship(back_populates="entries")
    account: Mapped[LedgerAccount] = relationship()

    __table_args__ = (
        CheckConstraint("amount <> 0", name="amount_not_zero"),
        CheckConstraint("(phase = 'posted') = (sequence IS NOT NULL AND "
                        "balance_after IS NOT NULL)", name="posted_chain"),
        UniqueConstraint("account_id", "sequence", name="account_sequence"),
        Index("ix_ledger_entries_account_date", "account_id", "value_date"),
    )

    @property
    def money(self) -> Money:
        return Money.from_minor(self.amount, self.currency)


class ExchangeRate(db.Model):
    """1 ``base`` = ``rate`` ``quote`` on ``rate_date``, from ``source``."""
    __tablename__ = "ledger_exchange_rates"

    id: Mapped[int] = mapped_column(primary_key=True)
    base: Mapped[str] = mapped_column(String(3))
    quote: Mapped[str] = mapped_column(String(3))
    rate: Mapped[Decimal] = mapped_column(Rate)
    rate_date: Mapped[date] = mapped_column()
    source: Mapped[RateSource] = mapped_column(_enum(RateSource, "rate_source"))
    note: Mapped[str | None] = mapped_column(String(200))   # file name, or who entered it
    entered_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)

    __table_args__ = (
        UniqueConstraint("base", "quote", "rate_date", "source", name="pair_date_source"),
        Index("ix_ledger_exchange_rates_lookup", "base", "quote", "rate_date"),
        CheckConstraint("rate > 0", name="rate_positive"),
        CheckConstraint("base <> quote", name="two_currencies"),
    )
