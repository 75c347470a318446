"""Financing products, credit facilities, financing requests and the collateral they name,
the banks' decisions (offers and rejections), loans and their contracts.

Amounts are integers of their currency's minor units; rates and ratios are
``ExactDecimal`` fractions (0.065000 is 6.5 %). What a loan or a facility owes and has
drawn lives in the ledger, not here.
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
from finance_app.audit import services as audit
from finance_app.collateral.states import AssetKind
from finance_app.db import ExactDecimal
from finance_app.extensions import db
from finance_app.financing.states import (
    INSTALMENT_TRANSITIONS, LOAN_TRANSITIONS, OFFER_TRANSITIONS, PRODUCT_TRANSITIONS,
    REPAYMENT_TRANSITIONS, REQUEST_TRANSITIONS, Component, DecisionKind, InstalmentStatus,
    LoanStatus, OfferStatus, ProductKind, ProductStatus, RepaymentMethod, RepaymentStatus,
    RepaymentType, RequestStatus,
)
from finance_app.money import Money
from finance_app.states import enum_values, next_status


def _enum(enum_cls, name: str) -> Enum:
    return Enum(enum_cls, native_enum=False, create_constraint=True, name=name,
                values_callable=enum_values, length=30, validate_strings=True)


Rate = ExactDecimal(6)       # an annual rate or a fee rate: 0.065000 is 6.5 %
Ratio = ExactDecimal(4)      # an advance rate or an LTV threshold: 0.7000 is 70 %


class _Stateful:
    """``apply``: the only way a status changes, with its history row and audit event."""
    TRANSITIONS: dict = {}
    WHAT = "object"
    ORG = "bank_org_id"     # whose audit trail a change without an actor goes to

    def record_start(self, *, actor=None, note: str | None = None) -> None:
        """The first history row of an object made in its first status (no audit event:
        its creation has its own)."""
        db.session.add(FinancingStatusChange(
            object_type=type(self).__name__, object_id=self.id, from_status=None,
            to_status=self.status.value, action="create", actor_id=getattr(actor, "id", None),
            note=(note or None) and note[:500], at=clock.now()))

    def apply(self, action, *, actor=None, note: str | None = None):
        before = self.status
        self.status = next_status(self.TRANSITIONS, before, action, what=self.WHAT)
        db.session.add(FinancingStatusChange(
            object_type=type(self).__name__, object_id=self.id, from_status=before.value,
            to_status=self.status.value, action=action.value,
            actor_id=getattr(actor, "id", None), note=(note or None) and note[:500],
            at=clock.now()))
        audit.record(f"financing.{self.WHAT.replace(' ', '_')}_{action.value}", actor=actor,
                     org_id=getattr(actor, "org_id", None) or getattr(self, self.ORG), obj=self,
                     changes={"status": [before.value, self.status.value],
                              **({"note": note} if note else {})})
        return self.status


class FinancingStatusChange(db.Model):
    """The history of every financing object's status (products, requests, decisions,
    loans)."""
    __tablename__ = "financing_status_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    object_type: Mapped[str] = mapped_column(String(40))
    object_id: Mapped[int] = mapped_column(Integer)
    from_status: Mapped[str | None] = mapped_column(String(30))
    to_status: Mapped[str] = mapped_column(String(30))
    action: Mapped[str] = mapped_column(String(30))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    note: Mapped[str | None] = mapped_column(String(500))
    at: Mapped[datetime] = mapped_column(default=clock.now)

    __table_args__ = (Index("ix_financing_status_changes_object", "object_type", "object_id"),)


class FinancingProduct(_Stateful, db.Model):
    __tablename__ = "financing_products"
    TRANSITIONS = PRODUCT_TRANSITIONS
    WHAT = "product"

    id: Mapped[int] = mapped_column(primary_key=True)
    bank_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[ProductKind] = mapped_column(_enum(ProductKind, "product_kind"))
    status: Mapped[ProductStatus] = mapped_column(_enum(ProductStatus, "product_status"),
                                                  default=ProductStatus.ACTIVE)
    description: Mapped[str | None] = mapped_column(Text)
    currencies: Mapped[str] = mapped_column(String(80))      # "USD,EUR,CNY"
    max_advance_rate: Mapped[Decimal] = mapped_column(Ratio)
    rate_min: Mapped[Decimal] = mapped_column(Rate)
    rate_max: Mapped[Decimal] = mapped_column(Rate)
    day_count: Mapped[int] = mapped_column(Integer)           # 360 or 365
    arrangement_fee_rate: Mapped[Decimal] = mapped_column(Rate, default=Decimal(0))
    max_tenor_days: Mapped[int] = mapped_column(Integer)
    repayment_type: Mapped[RepaymentType] = mapped_column(_enum(RepaymentType,
                                                                "repayment_type"))
    penalty_rate: Mapped[Decimal] = mapped_column(Rate)       # extra on overdue amounts
    default_after_days: Mapped[int] = mapped_column(Integer)  # overdue this long: default
    margin_call_ltv: Mapped[Decimal | None] = mapped_column(Ratio)   # receipts only
    liquidation_ltv: Mapped[Decimal | None] = mapped_column(Ratio)
    cure_days: Mapped[int | None] = mapped_column(Integer)
    min_rating: Mapped[str | None] = mapped_column(String(4))
    require_verified: Mapped[bool] = mapped_column(Boolean, default=True)
    require_insurance: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    __table_args__ = (
        UniqueConstraint("bank_org_id", "name"),
        CheckConstraint("max_advance_rate > 0 AND max_advance_rate <= 10000",
                        name="advance_rate_fraction"),
        CheckConstraint("rate_min >= 0 AND rate_min <= rate_max AND rate_max < 1000000",
                        name="rate_range"),
        CheckConstraint("day_count IN (360, 365)", name="day_count_basis"),
        CheckConstraint("max_tenor_days BETWEEN 1 AND 3660", name="tenor_range"),
    )

    @property
    def currency_list(self) -> list[str]:
        return [c for c in self.currencies.split(",") if c]


class Facility(db.Model):
    """A credit line a bank grants an SME: loans under it draw on it through ledger holds
    (at acceptance) and postings (at disbursement), and give it back as they are repaid."""
    __tablename__ = "financing_facilities"

    id: Mapped[int] = mapped_column(primary_key=True)
    bank_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    sme_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    limit_amount: Mapped[int] = mapped_column(BigInteger)
    expiry_date: Mapped[date] = mapped_column()
    note: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    __table_args__ = (
        UniqueConstraint("bank_org_id", "sme_org_id", "currency"),
        CheckConstraint("limit_amount > 0", name="limit_positive"),
    )

    @property
    def limit(self) -> Money:
        return Money.from_minor(self.limit_amount, self.currency)


class FinancingRequest(_Stateful, db.Model):
    __tablename__ = "financing_requests"
    TRANSITIONS = REQUEST_TRANSITIONS
    WHAT = "request"
    ORG = "sme_org_id"

    id: Mapped[int] = mapped_column(primary_key=True)
    sme_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    kind: Mapped[ProductKind] = mapped_column(_enum(ProductKind, "request_kind"))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    tenor_days: Mapped[int] = mapped_column(Integer)
    purpose: Mapped[str] = mapped_column(String(500))
    status: Mapped[RequestStatus] = mapped_column(_enum(RequestStatus, "request_status"),
                                                  default=RequestStatus.SUBMITTED)
    accepted_offer_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=clock.now, index=True)  # statistics
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    collateral: Mapped[list["RequestCollateral"]] = relationship(
        order_by="RequestCollateral.id", back_populates="request")
    targets: Mapped[list["RequestTarget"]] = relationship(
        order_by="RequestTarget.id", back_populates="request")

    __table_args__ = (CheckConstraint("amount > 0", name="amount_positive"),
                      # the open requests, for the banks' review queues
                      Index("ix_financing_requests_status", "status"))

    @property
    def money(self) -> Money:
        return Money.from_minor(self.amount, self.currency)


class RequestCollateral(db.Model):
    """An item the SME offers as collateral, with its value when the request was made."""
    __tablename__ = "financing_request_collateral"

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("financing_requests.id"), index=True)
    asset_kind: Mapped[AssetKind] = mapped_column(_enum(AssetKind, "request_asset_kind"))
    asset_id: Mapped[int] = mapped_column(Integer)
    label: Mapped[str] = mapped_column(String(200))
    value_amount: Mapped[int] = mapped_column(BigInteger)
    value_currency: Mapped[str] = mapped_column(String(3))

    request: Mapped[FinancingRequest] = relationship(back_populates="collateral")

    __table_args__ = (UniqueConstraint("request_id", "asset_kind", "asset_id"),)

    @property
    def value(self) -> Money:
        return Money.from_minor(self.value_amount, self.value_currency)


class RequestTarget(db.Model):
    """A bank (through one of its products) the request was sent to, and what the SME
    could borrow there when it sent it."""
    __tablename__ = "financing_request_targets"

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("financing_requests.id"), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("financing_products.id"))
    bank_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    eligible_amount: Mapped[int] = mapped_column(BigInteger)
    binding: Mapped[str] = mapped_column(String(40))     # which limit binds: advance, facility
    created_at: Mapped[datetime] = mapped_column(default=clock.now)

    request: Mapped[FinancingRequest] = relationship(back_populates="targets")
    product: Mapped[FinancingProduct] = relationship()

    __table_args__ = (UniqueConstraint("request_id", "bank_org_id"),)


class Decision(_Stateful, db.Model):
    """A bank's offer or rejection on a request: prepared by an officer, approved by
    another user (an approver) before the SME sees it."""
    __tablename__ = "financing_decisions"
    TRANSITIONS = OFFER_TRANSITIONS
    WHAT = "offer"

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("financing_requests.id"), index=True)
    target_id: Mapped[int] = mapped_column(ForeignKey("financing_request_targets.id"))
    bank_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    kind: Mapped[DecisionKind] = mapped_column(_enum(DecisionKind, "decision_kind"))
    status: Mapped[OfferStatus] = mapped_column(_enum(OfferStatus, "offer_status"),
                                                default=OfferStatus.PREPARED)
    amount: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    annual_rate: Mapped[Decimal | None] = mapped_column(Rate)
    tenor_days: Mapped[int | None] = mapped_column(Integer)
    fees_amount: Mapped[int | None] = mapped_column(BigInteger)
    conditions: Mapped[str | None] = mapped_column(Text)
    expiry_date: Mapped[date | None] = mapped_column()
    reason_codes: Mapped[str | None] = mapped_column(String(200))
    reason_text: Mapped[str | None] = mapped_column(Text)
    prepared_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    prepared_at: Mapped[datetime] = mapped_column(default=clock.now)
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    approved_at: Mapped[datetime | None] = mapped_column()
    # from the request to this approval, whole seconds (the statistics' time to decision)
    seconds_to_decision: Mapped[int | None] = mapped_column(Integer)
    accepted_at: Mapped[datetime | None] = mapped_column()

    target: Mapped[RequestTarget] = relationship()
    request: Mapped[FinancingRequest] = relationship()

    __table_args__ = (
        # one live decision per bank and request: a revised offer replaces a withdrawn one
        Index("uq_financing_decisions_one_live", "target_id", unique=True,
              postgresql_where=text("status IN ('prepared', 'approved')"),
              sqlite_where=text("status IN ('prepared', 'approved')")),
        Index("ix_financing_decisions_target", "target_id"),
        # the statistics: decisions by the time approved, with what the time to decision
        # reads (an index-only scan)
        Index("ix_financing_decisions_approved", "approved_at", "seconds_to_decision",
              "request_id"),
        CheckConstraint("approved_by_id IS NULL OR approved_by_id <> prepared_by_id",
                        name="four_eyes"),
        CheckConstraint("kind = 'rejection' OR (amount > 0 AND annual_rate IS NOT NULL "
                        "AND tenor_days > 0 AND fees_amount >= 0)", name="offer_terms"),
    )

    @property
    def money(self) -> Money | None:
        return None if self.amount is None else Money.from_minor(self.amount, self.currency)

    @property
    def fees(self) -> Money:
        return Money.from_minor(self.fees_amount or 0, self.currency)


class Loan(_Stateful, db.Model):
    __tablename__ = "financing_loans"
    TRANSITIONS = LOAN_TRANSITIONS
    WHAT = "loan"

    id: Mapped[int] = mapped_column(primary_key=True)
    decision_id: Mapped[int] = mapped_column(ForeignKey("financing_decisions.id"),
                                             unique=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("financing_requests.id"), unique=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("financing_products.id"))
    bank_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    sme_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    principal_amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    annual_rate: Mapped[Decimal] = mapped_column(Rate)
    day_count: Mapped[int] = mapped_column(Integer)
    tenor_days: Mapped[int] = mapped_column(Integer)
    fees_amount: Mapped[int] = mapped_column(BigInteger)
    repayment_type: Mapped[RepaymentType] = mapped_column(_enum(RepaymentType,
                                                                "loan_repayment_type"))
    penalty_rate: Mapped[Decimal] = mapped_column(Rate)
    default_after_days: Mapped[int] = mapped_column(Integer)
    status: Mapped[LoanStatus] = mapped_column(_enum(LoanStatus, "loan_status"),
                                               default=LoanStatus.AWAITING_DISBURSEMENT)
    facility_id: Mapped[int | None] = mapped_column(ForeignKey("financing_facilities.id"))
    facility_hold_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_transactions.id"))
    accepted_at: Mapped[datetime] = mapped_column(default=clock.now, index=True)  # statistics
    accepted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    disbursed_at: Mapped[datetime | None] = mapped_column()
    disbursed_on: Mapped[date | None] = mapped_column()      # interest runs from this date
    maturity_date: Mapped[date | None] = mapped_column()
    disbursement_record_id: Mapped[int | None] = mapped_column(
        ForeignKey("settlement_records.id"))
    closed_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=clock.now)

    instalments: Mapped[list["Instalment"]] = relationship(
        order_by="Instalment.number", back_populates="loan")

    __table_args__ = (CheckConstraint("principal_amount > 0", name="principal_positive"),
                      Index("ix_financing_loans_status", "status"))

    @property
    def principal(self) -> Money:
        return Money.from_minor(self.principal_amount, self.currency)

    @property
    def fees(self) -> Money:
        return Money.from_minor(self.fees_amount, self.currency)


class Contract(db.Model):
    """The financing contract: its terms fixed at acceptance with their SHA-256 (printed in
    the PDF), and the PDF itself with its own SHA-256."""
    __tablename__ = "financing_contracts"

    id: Mapped[int] = mapped_column(primary_key=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("financing_loans.id"), unique=True)
    number: Mapped[str] = mapped_column(String(30), unique=True)
    terms: Mapped[str] = mapped_column(Text)               # canonical JSON
    terms_sha256: Mapped[str] = mapped_column(String(64))
    # rendered once, after the acceptance commits, and kept
    pdf: Mapped[bytes | None] = mapped_column(LargeBinary)
    pdf_sha256: Mapped[str | None] = mapped_column(String(64))
    rendered_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=clock.now)


class Instalment(_Stateful, db.Model):
    """One due date of a loan's schedule. ``principal_due`` is what the schedule asks of
    it; ``interest_due`` is its period's interest on the principal outstanding day by day
    (the schedule's figure until a prepayment lowers it). What was paid against it is the
    sum of its ``Allocation`` rows, kept here as running totals."""
    __tablename__ = "financing_instalments"
    TRANSITIONS = INSTALMENT_TRANSITIONS
    WHAT = "instalment"
    ORG = "bank_org_id"

    id: Mapped[int] = mapped_column(primary_key=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("financing_loans.id"))
    bank_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    number: Mapped[int] = mapped_column(Integer)
    period_start: Mapped[date] = mapped_column()
    due_date: Mapped[date] = mapped_column()
    currency: Mapped[str] = mapped_column(String(3))
    principal_due: Mapped[int] = mapped_column(BigInteger)
    interest_due: Mapped[int] = mapped_column(BigInteger)
    principal_paid: Mapped[int] = mapped_column(BigInteger, default=0)
    interest_paid: Mapped[int] = mapped_column(BigInteger, default=0)
    # interest booked to the loan's interest receivable when the instalment fell due
    interest_recognised: Mapped[int] = mapped_column(BigInteger, default=0)
    penalty_accrued: Mapped[int] = mapped_column(BigInteger, default=0)
    penalty_paid: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[InstalmentStatus] = mapped_column(
        _enum(InstalmentStatus, "instalment_status"), default=InstalmentStatus.PENDING)
    overdue_since: Mapped[date | None] = mapped_column()
    paid_on: Mapped[date | None] = mapped_column()

    loan: Mapped[Loan] = relationship(back_populates="instalments")

    __table_args__ = (
        UniqueConstraint("loan_id", "number"),
        Index("ix_financing_instalments_open", "status", "due_date"),
        CheckConstraint("principal_due >= 0 AND interest_due >= 0", name="dues_not_negative"),
        CheckConstraint("principal_paid >= 0 AND principal_paid <= principal_due",
                        name="principal_within_due"),
        CheckConstraint("interest_paid >= 0 AND penalty_paid >= 0 AND "
                        "penalty_paid <= penalty_accrued", name="paid_within_due"),
    )

    def money(self, units: int) -> Money:
        return Money.from_minor(units, self.currency)

    @property
    def principal_left(self) -> int:
        return self.principal_due - self.principal_paid

    @property
    def interest_left(self) -> int:
        return max(self.interest_due - self.interest_paid, 0)

    @property
    def penalty_left(self) -> int:
        return self.penalty_accrued - self.penalty_paid

    @property
    def total_left(self) -> int:
        return self.principal_left + self.interest_left + self.penalty_left


class Repayment(_Stateful, db.Model):
    """A repayment the SME makes (by bank transfer or card, through a settlement record),
    applied to the loan once it is paid: overdue interest, then interest, then principal."""
    __tablename__ = "financing_repayments"
    TRANSITIONS = REPAYMENT_TRANSITIONS
    WHAT = "repayment"
    ORG = "sme_org_id"

    id: Mapped[int] = mapped_column(primary_key=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("financing_loans.id"), index=True)
    sme_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    bank_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    amount: Mapped[int] = mapped_column(BigInteger)          # in ``currency`` (as paid)
    currency: Mapped[str] = mapped_column(String(3))
    method: Mapped[RepaymentMethod] = mapped_column(_enum(RepaymentMethod,
                                                          "repayment_method"))
    status: Mapped[RepaymentStatus] = mapped_column(
        _enum(RepaymentStatus, "repayment_status"), default=RepaymentStatus.PENDING)
    settlement_record_id: Mapped[int] = mapped_column(ForeignKey("settlement_records.id"),
                                                      unique=True)
    idempotency_key: Mapped[str] = mapped_column(String(200))
    applied_amount: Mapped[int | None] = mapped_column(BigInteger)   # in the loan's currency
    fx_transaction_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_transactions.id"))
    ledger_transaction_id: Mapped[int | None] = mapped_column(
        ForeignKey("ledger_transactions.id"))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    applied_on: Mapped[date | None] = mapped_column()

    allocations: Mapped[list["Allocation"]] = relationship(order_by="Allocation.id")

    __table_args__ = (UniqueConstraint("loan_id", "idempotency_key"),
                      CheckConstraint("amount > 0", name="amount_positive"))

    @property
    def money(self) -> Money:
        return Money.from_minor(self.amount, self.currency)


class Allocation(db.Model):
    """How much of a repayment went to which instalment and component."""
    __tablename__ = "financing_allocations"

    id: Mapped[int] = mapped_column(primary_key=True)
    repayment_id: Mapped[int] = mapped_column(ForeignKey("financing_repayments.id"),
                                              index=True)
    instalment_id: Mapped[int] = mapped_column(ForeignKey("financing_instalments.id"),
                                               index=True)
    component: Mapped[Component] = mapped_column(_enum(Component, "allocation_component"))
    amount: Mapped[int] = mapped_column(BigInteger)
    value_date: Mapped[date] = mapped_column()

    __table_args__ = (CheckConstraint("amount > 0", name="amount_positive"),)
