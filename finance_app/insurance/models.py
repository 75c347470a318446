"""Export credit insurance: policies and their premium rates, buyer credit limits,
shipment declarations, overdue reports, claims, recoveries and indemnity assignments, and
one status history for all of them.

Amounts are integers of their currency's minor units; coverage percentages are
``ExactDecimal(4)`` fractions (0.9000 is 90 %; in SQL 1.0000 reads 10000) and premium
rates ``ExactDecimal(6)`` fractions (0.004500 is 0.45 %; in SQL 1 reads 1000000).
No balance lives here: premiums, indemnities and recoveries are ledger transactions and
settlement records; a limit's used part is derived from the declarations that use it.
"""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger, Boolean, CheckConstraint, Enum, ForeignKey, Index, Integer, LargeBinary,
    String, Text, UniqueConstraint, text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from finance_app import clock
from finance_app.db import ExactDecimal
from finance_app.extensions import db
from finance_app.history import StatusHistory
from finance_app.insurance.states import (
    ASSIGNMENT_TRANSITIONS, CLAIM_TRANSITIONS, DECLARATION_TRANSITIONS, LIMIT_TRANSITIONS,
    POLICY_TRANSITIONS, AssignmentStatus, ClaimCause, ClaimStatus, DeclarationMode,
    DeclarationStatus, LimitStatus, PolicyStatus,
)
from finance_app.money import Money
from finance_app.states import enum_values


def _enum(enum_cls, name: str) -> Enum:
    return Enum(enum_cls, native_enum=False, create_constraint=True, name=name,
                values_callable=enum_values, length=20, validate_strings=True)


Coverage = ExactDecimal(4)     # 0.9000 is 90 %
PremiumRate = ExactDecimal(6)  # 0.004500 is 0.45 % of the insured amount


class _Stateful(StatusHistory):
    """``apply`` is the only way a status changes: a history row and an audit event."""
    _domain = "insurance"
    _owner = "insurer_org_id"


class InsuranceStatusChange(db.Model):
    """Every status change of every insurance record, oldest first per record."""
    __tablename__ = "insurance_status_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    subject: Mapped[str] = mapped_column(String(20))       # policy, limit, declaration, ...
    subject_id: Mapped[int] = mapped_column(Integer)
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(20))
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    actor_org_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"))
    note: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(default=clock.now)

    __table_args__ = (Index("ix_insurance_status_changes_subject", "subject", "subject_id"),)


_Stateful._history = InsuranceStatusChange


class Policy(_Stateful, db.Model):
    """A short-term export credit insurance policy issued by an insurer to an SME."""
    __tablename__ = "insurance_policies"
    _table, _what, _subject = POLICY_TRANSITIONS, "policy", "policy"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(40), unique=True)   # ECI-2026-000001
    insurer_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    insured_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    status: Mapped[PolicyStatus] = mapped_column(_enum(PolicyStatus, "policy_status"),
                                                 default=PolicyStatus.ISSUED, index=True)
    status_changed_at: Mapped[datetime] = mapped_column(default=clock.now)
    currency: Mapped[str] = mapped_column(String(3))          # limits, liability, indemnity
    currencies: Mapped[str] = mapped_column(String(60))       # invoice currencies: "USD,EUR"
    start_date: Mapped[date] = mapped_column()
    end_date: Mapped[date] = mapped_column()
    commercial_coverage: Mapped[Decimal] = mapped_column(Coverage)
    political_coverage: Mapped[Decimal] = mapped_column(Coverage)
    max_liability_amount: Mapped[int] = mapped_column(BigInteger)   # minor units
    declaration_mode: Mapped[DeclarationMode] = mapped_column(
        _enum(DeclarationMode, "declaration_mode"))
    declaration_days: Mapped[int] = mapped_column(Integer)    # 15 days, or by the 10th
    overdue_report_days: Mapped[int] = mapped_column(Integer)
    waiting_days: Mapped[int] = mapped_column(Integer)             # non-payment, political
    insolvency_waiting_days: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    rates: Mapped[list["PolicyRate"]] = relationship(
        back_populates="policy", order_by="(PolicyRate.risk_grade, PolicyRate.max_term_days)",
        cascade="all, delete-orphan")

    __table_args__ = (
        CheckConstraint("end_date > start_date", name="period_order"),
        CheckConstraint("commercial_coverage > 0 AND commercial_coverage <= 10000",
                        name="commercial_coverage_fraction"),
        CheckConstraint("political_coverage > 0 AND political_coverage <= 10000",
                        name="political_coverage_fraction"),
        CheckConstraint("max_liability_amount > 0", name="max_liability_positive"),
        CheckConstraint("declaration_days BETWEEN 1 AND 90", name="declaration_days_range"),
        CheckConstraint("overdue_report_days BETWEEN 1 AND 365", name="overdue_days_range"),
        CheckConstraint("waiting_days BETWEEN 0 AND 720 AND insolvency_waiting_days BETWEEN 0 "
                        "AND 720", name="waiting_days_range"),
        CheckConstraint("length(currency) = 3", name="currency_code"),
        CheckConstraint("insurer_org_id <> insured_org_id", name="two_parties"),
    )

    @property
    def max_liability(self) -> Money:
        return Money.from_minor(self.max_liability_amount, self.currency)

    @property
    def currency_list(self) -> list[str]:
        return [c for c in self.currencies.split(",") if c]

    def in_force_on(self, day: date) -> bool:
        return self.status is PolicyStatus.ISSUED and self.start_date <= day <= self.end_date

    def __repr__(self) -> str:
        return f"<Policy {self.id} {self.number} {self.status}>"


class PolicyDocument(db.Model):
    """The policy's PDF in one language, rendered once (its terms never change after
    issue) and kept with its SHA-256."""
    __tablename__ = "insurance_policy_documents"

    id: Mapped[int] = mapped_column(primary_key=True)
    policy_id: Mapped[int] = mapped_column(ForeignKey("insurance_policies.id"))
    lang: Mapped[str] = mapped_column(String(10))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    sha256: Mapped[str] = mapped_column(String(64))
    rendered_at: Mapped[datetime] = mapped_column(default=clock.now)

    __table_args__ = (UniqueConstraint("policy_id", "lang"),)


class PolicyRate(db.Model):
    """The premium rate for buyers of a country risk grade up to a payment term: the rate
    of the smallest ``max_term_days`` at or above the shipment's term applies."""
    __tablename__ = "insurance_policy_rates"

    id: Mapped[int] = mapped_column(primary_key=True)
    policy_id: Mapped[int] = mapped_column(ForeignKey("insurance_policies.id"), index=True)
    risk_grade: Mapped[int] = mapped_column(Integer)       # 0 (lowest risk) to 7
    max_term_days: Mapped[int] = mapped_column(Integer)
    rate: Mapped[Decimal] = mapped_column(PremiumRate)

    policy: Mapped[Policy] = relationship(back_populates="rates")

    __table_args__ = (
        UniqueConstraint("policy_id", "risk_grade", "max_term_days"),
        CheckConstraint("risk_grade BETWEEN 0 AND 7", name="risk_grade_range"),
        CheckConstraint("max_term_days BETWEEN 1 AND 360", name="term_range"),
        CheckConstraint("rate > 0 AND rate < 1000000", name="rate_fraction"),
    )


class BuyerLimit(_Stateful, db.Model):
    """A credit limit on one overseas buyer under a policy, in the policy's currency."""
    __tablename__ = "insurance_buyer_limits"
    _table, _what, _subject = LIMIT_TRANSITIONS, "buyer limit", "limit"

    id: Mapped[int] = mapped_column(primary_key=True)
    policy_id: Mapped[int] = mapped_column(ForeignKey("insurance_policies.id"), index=True)
    insurer_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    insured_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    buyer_name: Mapped[str] = mapped_column(String(200))
    buyer_country: Mapped[str] = mapped_column(String(2))
    buyer_registration_no: Mapped[str] = mapped_column(String(60))
    currency: Mapped[str] = mapped_column(String(3))
    requested_amount: Mapped[int] = mapped_column(BigInteger)
    approved_amount: Mapped[int | None] = mapped_column(BigInteger)
    payment_term_days: Mapped[int] = mapped_column(Integer)   # the longest term covered
    status: Mapped[LimitStatus] = mapped_column(_enum(LimitStatus, "limit_status"),
                                                default=LimitStatus.REQUESTED, index=True)
    status_changed_at: Mapped[datetime] = mapped_column(default=clock.now)
    reason: Mapped[str | None] = mapped_column(Text)          # of the last decision
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    policy: Mapped[Policy] = relationship()

    __table_args__ = (
        Index("uq_insurance_buyer_limits_one_live", "policy_id", "buyer_country",
              "buyer_registration_no", unique=True,
              postgresql_where=text("status IN ('requested', 'approved')"),
              sqlite_where=text("status IN ('requested', 'approved')")),
        CheckConstraint("requested_amount > 0", name="requested_positive"),
        CheckConstraint("approved_amount IS NULL OR approved_amount >= 0",
                        name="approved_not_negative"),
        CheckConstraint("status <> 'approved' OR approved_amount IS NOT NULL",
                        name="approved_has_amount"),
        CheckConstraint("payment_term_days BETWEEN 1 AND 360", name="term_range"),
        CheckConstraint("length(buyer_country) = 2", name="country_code"),
    )

    @property
    def requested(self) -> Money:
        return Money.from_minor(self.requested_amount, self.currency)

    @property
    def approved(self) -> Money | None:
        if self.approved_amount is None:
            return None
        return Money.from_minor(self.approved_amount, self.currency)


class ShipmentDeclaration(_Stateful, db.Model):
    """A shipment to a buyer declared under the buyer's limit: the insured part (within the
    limit's remaining amount) and the uninsured rest, and the premium on the insured part."""
    __tablename__ = "insurance_declarations"
    _table, _what, _subject = DECLARATION_TRANSITIONS, "declaration", "declaration"

    id: Mapped[int] = mapped_column(primary_key=True)
    policy_id: Mapped[int] = mapped_column(ForeignKey("insurance_policies.id"), index=True)
    buyer_limit_id: Mapped[int] = mapped_column(ForeignKey("insurance_buyer_limits.id"),
                                                index=True)
    insurer_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    insured_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("trade_orders.id"), index=True)
    receivable_id: Mapped[int] = mapped_column(ForeignKey("trade_receivables.id"), index=True)
    waybill_id: Mapped[int] = mapped_column(ForeignKey("trade_waybills.id"))
    currency: Mapped[str] = mapped_column(String(3))           # the invoice's
    invoice_amount: Mapped[int] = mapped_column(BigInteger)
    insured_amount: Mapped[int] = mapped_column(BigInteger)
    uninsured_amount: Mapped[int] = mapped_column(BigInteger)
    # The insured amount in the limit's currency (converted at the shipment date when the
    # invoice is in another one): what this shipment uses of the limit while unpaid.
    limit_used_amount: Mapped[int] = mapped_column(BigInteger)
    shipment_date: Mapped[date] = mapped_column()
    payment_term_days: Mapped[int] = mapped_column(Integer)
    due_date: Mapped[date] = mapped_column(index=True)
    declared_on: Mapped[date] = mapped_column()
    deadline: Mapped[date] = mapped_column()
    risk_grade: Mapped[int] = mapped_column(Integer)
    premium_rate: Mapped[Decimal] = mapped_column(PremiumRate)
    premium_amount: Mapped[int] = mapped_column(BigInteger)   # in ``currency``
    premium_settlement_id: Mapped[int | None] = mapped_column(
        ForeignKey("settlement_records.id"))
    status: Mapped[DeclarationStatus] = mapped_column(
        _enum(DeclarationStatus, "declaration_status"), default=DeclarationStatus.DECLARED,
        index=True)
    status_changed_at: Mapped[datetime] = mapped_column(default=clock.now)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    policy: Mapped[Policy] = relationship()
    buyer_limit: Mapped[BuyerLimit] = relationship()

    __table_args__ = (
        # a shipment is declared once (again only after a cancelled declaration)
        Index("uq_insurance_declarations_one_per_order", "order_id", unique=True,
              postgresql_where=text("status <> 'cancelled'"),
              sqlite_where=text("status <> 'cancelled'")),
        CheckConstraint("invoice_amount > 0", name="invoice_positive"),
        CheckConstraint("insured_amount >= 0 AND uninsured_amount >= 0",
                        name="parts_not_negative"),
        CheckConstraint("insured_amount + uninsured_amount = invoice_amount",
                        name="parts_add_up"),
        CheckConstraint("limit_used_amount >= 0", name="used_not_negative"),
        CheckConstraint("premium_amount >= 0", name="premium_not_negative"),
        CheckConstraint("due_date >= shipment_date", name="due_after_shipment"),
    )

    def _money(self, units: int) -> Money:
        return Money.from_minor(units, self.currency)

    @property
    def invoice(self) -> Money:
        return self._money(self.invoice_amount)

    @property
    def insured(self) -> Money:
        return self._money(self.insured_amount)

    @property
    def uninsured(self) -> Money:
        return self._money(self.uninsured_amount)

    @property
    def premium(self) -> Money:
        return self._money(self.premium_amount)

    @property
    def insured_share(self) -> Decimal:
        return Decimal(self.insured_amount) / Decimal(self.invoice_amount)


class OverdueReport(db.Model):
    """The SME's report that the buyer has not paid by the due date; ``late`` when filed
    after the policy's reporting period (it may void cover)."""
    __tablename__ = "insurance_overdue_reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    declaration_id: Mapped[int] = mapped_column(ForeignKey("insurance_declarations.id"),
                                                unique=True)
    insurer_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    overdue_amount: Mapped[int] = mapped_column(BigInteger)   # declaration's currency
    currency: Mapped[str] = mapped_column(String(3))
    reported_on: Mapped[date] = mapped_column()
    report_deadline: Mapped[date] = mapped_column()
    late: Mapped[bool] = mapped_column(Boolean, default=False)
    note: Mapped[str | None] = mapped_column(Text)
    reported_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)

    __table_args__ = (
        CheckConstraint("overdue_amount > 0", name="overdue_positive"),
        CheckConstraint("late = (reported_on > report_deadline)", name="late_iff_after"),
    )

    @property
    def overdue(self) -> Money:
        return Money.from_minor(self.overdue_amount, self.currency)


class Claim(_Stateful, db.Model):
    """A claim for indemnity on a declared shipment: coverage x insured loss, in the policy
    currency, paid to the insured SME or to the bank the indemnity is assigned to."""
    __tablename__ = "insurance_claims"
    _table, _what, _subject = CLAIM_TRANSITIONS, "claim", "claim"

    id: Mapped[int] = mapped_column(primary_key=True)
    declaration_id: Mapped[int] = mapped_column(ForeignKey("insurance_declarations.id"),
                                                index=True)
    policy_id: Mapped[int] = mapped_column(ForeignKey("insurance_policies.id"), index=True)
    insurer_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    insured_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    filed_by_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    cause: Mapped[ClaimCause] = mapped_column(_enum(ClaimCause, "claim_cause"))
    currency: Mapped[str] = mapped_column(String(3))           # the declaration's
    loss_amount: Mapped[int] = mapped_column(BigInteger)       # the insured loss claimed
    claimable_from: Mapped[date] = mapped_column()
    filed_on: Mapped[date] = mapped_column()
    coverage: Mapped[Decimal | None] = mapped_column(Coverage)
    indemnity_currency: Mapped[str] = mapped_column(String(3))  # the policy's
    indemnity_amount: Mapped[int | None] = mapped_column(BigInteger)
    fx_note: Mapped[str | None] = mapped_column(String(200))
    payee_org_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"))
    settlement_id: Mapped[int | None] = mapped_column(ForeignKey("settlement_records.id"))
    status: Mapped[ClaimStatus] = mapped_column(_enum(ClaimStatus, "claim_status"),
                                                default=ClaimStatus.FILED, index=True)
    status_changed_at: Mapped[datetime] = mapped_column(default=clock.now)
    reason: Mapped[str | None] = mapped_column(Text)           # of the decision
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    declaration: Mapped[ShipmentDeclaration] = relationship()

    __table_args__ = (
        Index("uq_insurance_claims_one_live", "declaration_id", unique=True,
              postgresql_where=text("status NOT IN ('rejected', 'withdrawn')"),
              sqlite_where=text("status NOT IN ('rejected', 'withdrawn')")),
        CheckConstraint("loss_amount > 0", name="loss_positive"),
        CheckConstraint("indemnity_amount IS NULL OR indemnity_amount > 0",
                        name="indemnity_positive"),
        CheckConstraint("status NOT IN ('approved', 'paid') OR (indemnity_amount IS NOT NULL "
                        "AND payee_org_id IS NOT NULL)", name="approved_has_indemnity"),
    )

    @property
    def loss(self) -> Money:
        return Money.from_minor(self.loss_amount, self.currency)

    @property
    def indemnity(self) -> Money | None:
        if self.indemnity_amount is None:
            return None
        return Money.from_minor(self.indemnity_amount, self.indemnity_currency)


class Recovery(db.Model):
    """Money recovered from the buyer after a paid claim, shared between insurer and
    insured in the claim's coverage proportion: the insured owes the insurer its share."""
    __tablename__ = "insurance_recoveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    claim_id: Mapped[int] = mapped_column(ForeignKey("insurance_claims.id"), index=True)
    insurer_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    currency: Mapped[str] = mapped_column(String(3))           # the declaration's
    amount: Mapped[int] = mapped_column(BigInteger)
    insurer_share_currency: Mapped[str] = mapped_column(String(3))
    insurer_share: Mapped[int] = mapped_column(BigInteger)
    insured_share: Mapped[int] = mapped_column(BigInteger)     # in ``currency``
    recovered_on: Mapped[date] = mapped_column()
    settlement_id: Mapped[int | None] = mapped_column(ForeignKey("settlement_records.id"))
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)

    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("insurer_share >= 0 AND insured_share >= 0", name="shares_not_negative"),
    )

    @property
    def recovered(self) -> Money:
        return Money.from_minor(self.amount, self.currency)

    @property
    def insurer_part(self) -> Money:
        return Money.from_minor(self.insurer_share, self.insurer_share_currency)

    @property
    def insured_part(self) -> Money:
        return Money.from_minor(self.insured_share, self.currency)


class IndemnityAssignment(_Stateful, db.Model):
    """The SME assigns the indemnity of an insured receivable to a bank; acknowledged by
    the insurer and accepted by the bank, it is the receivable's lock in the collateral
    registry (asset kind ``insured_receivable``) and makes the bank the claim payee."""
    __tablename__ = "insurance_assignments"
    _table, _what, _subject = ASSIGNMENT_TRANSITIONS, "assignment", "assignment"

    id: Mapped[int] = mapped_column(primary_key=True)
    declaration_id: Mapped[int] = mapped_column(ForeignKey("insurance_declarations.id"),
                                                index=True)
    receivable_id: Mapped[int] = mapped_column(ForeignKey("trade_receivables.id"), index=True)
    policy_id: Mapped[int] = mapped_column(ForeignKey("insurance_policies.id"), index=True)
    insurer_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    insured_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    bank_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    encumbrance_id: Mapped[int | None] = mapped_column(ForeignKey("encumbrances.id"),
                                                       unique=True)
    status: Mapped[AssignmentStatus] = mapped_column(
        _enum(AssignmentStatus, "assignment_status"), default=AssignmentStatus.REQUESTED,
        index=True)
    status_changed_at: Mapped[datetime] = mapped_column(default=clock.now)
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    declaration: Mapped[ShipmentDeclaration] = relationship()

    __table_args__ = (
        Index("uq_insurance_assignments_one_live", "declaration_id", unique=True,
              postgresql_where=text("status IN ('requested', 'acknowledged', 'active')"),
              sqlite_where=text("status IN ('requested', 'acknowledged', 'active')")),
        CheckConstraint("status <> 'active' OR encumbrance_id IS NOT NULL",
                        name="active_is_registered"),
    )


class PolicyCounter(db.Model):
    """The last policy sequence number used in a year (locked to take the next)."""
    __tablename__ = "insurance_policy_counters"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_seq: Mapped[int] = mapped_column(Integer, default=0)
