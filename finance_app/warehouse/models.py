"""Warehouses, electronic warehouse receipts, their status history, the banks a depositor
offered a receipt to, and the haircut of each goods category.

Quantities and unit prices are ``ExactDecimal`` (scaled integers, exact on both
databases; in SQL a quantity of 1 reads 100000 and a unit price of 1 reads 1000000); a
receipt's value is an integer of its currency's minor units. A receipt's pledge is not
stored here: it is the receipt's active encumbrance in the collateral registry.
"""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger, Boolean, CheckConstraint, Enum, ForeignKey, Index, Integer, String, Text,
    UniqueConstraint, exists, select, text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from finance_app import clock
from finance_app.audit import services as audit
from finance_app.collateral.models import Encumbrance
from finance_app.collateral.states import AssetKind
from finance_app.db import ExactDecimal
from finance_app.extensions import db
from finance_app.money import Money
from finance_app.states import enum_values, next_status
from finance_app.warehouse.states import (
    RECEIPT_TRANSITIONS, MarginCallStatus, ReceiptAction, ReceiptStatus, WarehouseKind,
)


def _enum(enum_cls, name: str) -> Enum:
    return Enum(enum_cls, native_enum=False, create_constraint=True, name=name,
                values_callable=enum_values, length=20, validate_strings=True)


Quantity = ExactDecimal(5)
UnitPrice = ExactDecimal(6)
Haircut = ExactDecimal(4)      # a fraction: 0.3000 is 30 %; in SQL 1.0000 reads 10000


class Warehouse(db.Model):
    __tablename__ = "warehouses"

    id: Mapped[int] = mapped_column(primary_key=True)
    operator_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[WarehouseKind] = mapped_column(_enum(WarehouseKind, "warehouse_kind"))
    address: Mapped[str] = mapped_column(String(300))
    country: Mapped[str] = mapped_column(String(2))   # ISO 3166-1 alpha-2
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    __table_args__ = (
        UniqueConstraint("operator_org_id", "name"),
        CheckConstraint("length(country) = 2", name="country_code"),
    )

    def __repr__(self) -> str:
        return f"<Warehouse {self.id} {self.kind} {self.name!r}>"


class WarehouseReceipt(db.Model):
    __tablename__ = "warehouse_receipts"

    id: Mapped[int] = mapped_column(primary_key=True)
    # WR-<year>-<sequence>; a split's parts add -1 and -2 to their parent's number.
    number: Mapped[str] = mapped_column(String(60), unique=True)
    # SHA-256 of the verification code; the code itself is shown once, when it is made.
    verification_hash: Mapped[str] = mapped_column(String(64), unique=True)
    warehouse_id: Mapped[int] = mapped_column(ForeignKey("warehouses.id"), index=True)
    operator_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    depositor_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    goods_description: Mapped[str] = mapped_column(String(500))
    hs_code: Mapped[str] = mapped_column(String(10))
    quantity: Mapped[Decimal] = mapped_column(Quantity)
    unit: Mapped[str] = mapped_column(String(20))
    grade: Mapped[str | None] = mapped_column(String(200))
    storage_location: Mapped[str | None] = mapped_column(String(100))
    unit_price: Mapped[Decimal] = mapped_column(UnitPrice)
    currency: Mapped[str] = mapped_column(String(3))
    value_amount: Mapped[int] = mapped_column(BigInteger)   # minor units of ``currency``
    valuation_date: Mapped[date] = mapped_column()
    valuation_source: Mapped[str] = mapped_column(String(200))
    # The verification code is derived (HMAC) from the receipt's number and this nonce, so
    # the certificate can be printed again; only its SHA-256 is stored to look it up.
    code_nonce: Mapped[str] = mapped_column(String(32))
    insured: Mapped[bool] = mapped_column(Boolean, default=False)
    issue_date: Mapped[date] = mapped_column()
    expiry_date: Mapped[date] = mapped_column(index=True)
    status: Mapped[ReceiptStatus] = mapped_column(
        _enum(ReceiptStatus, "receipt_status"), default=ReceiptStatus.ISSUED, index=True)
    status_changed_at: Mapped[datetime] = mapped_column(default=clock.now)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("warehouse_receipts.id"),
                                                  index=True)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    warehouse: Mapped[Warehouse] = relationship()
    history: Mapped[list["ReceiptStatusChange"]] = relationship(
        back_populates="receipt", order_by="ReceiptStatusChange.id")

    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("unit_price > 0", name="unit_price_positive"),
        CheckConstraint("value_amount > 0", name="value_positive"),
        CheckConstraint("expiry_date > issue_date", name="expires_after_issue"),
        CheckConstraint("length(hs_code) BETWEEN 6 AND 10", name="hs_code_length"),
        CheckConstraint("length(currency) = 3", name="currency_code"),
    )

    @property
    def value(self) -> Money:
        return Money.from_minor(self.value_amount, self.currency)

    def is_offered_to(self, org_id: int) -> bool:
        """Has the depositor offered this receipt to ``org_id`` (and not withdrawn it)?"""
        return db.session.execute(select(exists().where(
            ReceiptOffer.receipt_id == self.id, ReceiptOffer.bank_org_id == org_id,
            ReceiptOffer.withdrawn_at.is_(None)))).scalar_one()

    def pledged_ever_to(self, org_id: int) -> bool:
        """Has ``org_id`` held a pledge of this receipt, now or before?"""
        return db.session.execute(select(exists().where(
            Encumbrance.asset_kind == AssetKind.WAREHOUSE_RECEIPT,
            Encumbrance.asset_id == self.id,
            Encumbrance.holder_org_id == org_id))).scalar_one()

    def apply(self, action: ReceiptAction, *, actor=None, encumbrance_id: int | None = None,
              note: str | None = None) -> "ReceiptStatusChange":
        """The only way the status changes: the history row and its audit event."""
        new_status = next_status(RECEIPT_TRANSITIONS, self.status, action,
                                 what="warehouse receipt")
        return self._record(action, self.status, new_status, actor=actor,
                            encumbrance_id=encumbrance_id, note=note)

    def start(self, action: ReceiptAction, status: ReceiptStatus, *, actor=None,
              encumbrance_id: int | None = None, note: str | None = None
              ) -> "ReceiptStatusChange":
        """The first history row of a new receipt (issued, or a part of a split)."""
        if action not in (ReceiptAction.ISSUE, ReceiptAction.SPLIT_FROM):
            raise ValueError(f"{action} does not create a receipt")
        return self._record(action, None, status, actor=actor, encumbrance_id=encumbrance_id,
                            note=note)

    def _record(self, action: ReceiptAction, old: ReceiptStatus | None, new: ReceiptStatus,
                *, actor, encumbrance_id: int | None, note: str | None
                ) -> "ReceiptStatusChange":
        now = clock.now()
        change = ReceiptStatusChange(
            receipt=self, from_status=old, to_status=new, action=action,
            actor_user_id=getattr(actor, "id", None), actor_org_id=getattr(actor, "org_id", None),
            encumbrance_id=encumbrance_id, note=note, at=now)
        self.status, self.status_changed_at = new, now
        db.session.add(change)
        audit.record(f"warehouse.receipt_{action.value}", actor=actor,
                     org_id=getattr(actor, "org_id", None) or self.operator_org_id, obj=self,
                     changes={"number": self.number, "from": old, "to": new,
                              "encumbrance_id": encumbrance_id, "note": note})
        return change

    def __repr__(self) -> str:
        return f"<WarehouseReceipt {self.id} {self.number} {self.status}>"


class ReceiptStatusChange(db.Model):
    __tablename__ = "warehouse_receipt_status_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    receipt_id: Mapped[int] = mapped_column(ForeignKey("warehouse_receipts.id"), index=True)
    from_status: Mapped[ReceiptStatus | None] = mapped_column(
        _enum(ReceiptStatus, "receipt_from_status"))
    to_status: Mapped[ReceiptStatus] = mapped_column(_enum(ReceiptStatus, "receipt_to_status"))
    action: Mapped[ReceiptAction] = mapped_column(_enum(ReceiptAction, "receipt_action"))
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    actor_org_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"))
    encumbrance_id: Mapped[int | None] = mapped_column(ForeignKey("encumbrances.id"))
    note: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(default=clock.now)

    receipt: Mapped[WarehouseReceipt] = relationship(back_populates="history")


class ReceiptOffer(db.Model):
    """The depositor asks a bank to consider the receipt as collateral: only a bank it was
    offered to can pledge it."""
    __tablename__ = "warehouse_receipt_offers"

    id: Mapped[int] = mapped_column(primary_key=True)
    receipt_id: Mapped[int] = mapped_column(ForeignKey("warehouse_receipts.id"), index=True)
    bank_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    offered_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    offered_at: Mapped[datetime] = mapped_column(default=clock.now)
    withdrawn_at: Mapped[datetime | None] = mapped_column()

    __table_args__ = (UniqueConstraint("receipt_id", "bank_org_id"),)


class GoodsCategory(db.Model):
    """Goods grouped by the start of their HS code (chapter "85", heading "8517", ...), with
    the haircut taken off their value when they are collateral. The longest matching
    prefix applies."""
    __tablename__ = "warehouse_goods_categories"

    id: Mapped[int] = mapped_column(primary_key=True)
    hs_prefix: Mapped[str] = mapped_column(String(10), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    haircut: Mapped[Decimal] = mapped_column(Haircut)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    __table_args__ = (
        CheckConstraint("haircut >= 0 AND haircut < 10000", name="haircut_fraction"),
        CheckConstraint("length(hs_prefix) BETWEEN 2 AND 10", name="hs_prefix_length"),
    )


class ReceiptCounter(db.Model):
    """The last receipt sequence number used in a year (locked to take the next)."""
    __tablename__ = "warehouse_receipt_counters"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_seq: Mapped[int] = mapped_column(Integer, default=0)


class GoodsPrice(db.Model):
    """A price for goods by HS code and unit (optionally one product or grade of them),
    valid from a date until the next price of the same goods (or its own end date). The
    validity periods of one product never overlap."""
    __tablename__ = "warehouse_goods_prices"

    id: Mapped[int] = mapped_column(primary_key=True)
    hs_code: Mapped[str] = mapped_column(String(10))
    unit: Mapped[str] = mapped_column(String(20))
    product: Mapped[str] = mapped_column(String(100), default="")   # "": any of the HS code
    unit_price: Mapped[Decimal] = mapped_column(UnitPrice)
    currency: Mapped[str] = mapped_column(String(3))
    valid_from: Mapped[date] = mapped_column()
    valid_to: Mapped[date | None] = mapped_column()
    source: Mapped[str] = mapped_column(String(200))
    entered_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)

    __table_args__ = (
        UniqueConstraint("hs_code", "unit", "product", "valid_from", name="goods_day"),
        CheckConstraint("unit_price > 0", name="unit_price_positive"),
        CheckConstraint("valid_to IS NULL OR valid_to >= valid_from", name="period_order"),
        CheckConstraint("length(hs_code) BETWEEN 6 AND 10", name="hs_code_length"),
    )

    @property
    def price(self) -> Money:
        return Money(self.unit_price, self.currency)


class ReceiptValuation(db.Model):
    """Each value a receipt has had: at issue, and after every new price of its goods."""
    __tablename__ = "warehouse_receipt_valuations"

    id: Mapped[int] = mapped_column(primary_key=True)
    receipt_id: Mapped[int] = mapped_column(ForeignKey("warehouse_receipts.id"), index=True)
    price_id: Mapped[int | None] = mapped_column(ForeignKey("warehouse_goods_prices.id"))
    unit_price: Mapped[Decimal] = mapped_column(UnitPrice)
    currency: Mapped[str] = mapped_column(String(3))
    value_amount: Mapped[int] = mapped_column(BigInteger)
    valuation_date: Mapped[date] = mapped_column()
    source: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(default=clock.now)

    @property
    def value(self) -> Money:
        return Money.from_minor(self.value_amount, self.currency)


Ltv = ExactDecimal(4)          # a loan-to-value ratio: 0.8125 is 81.25 %


class PledgeTerms(db.Model):
    """A receipt pledge's margin terms: above ``margin_call_ltv`` a margin call opens, the
    depositor has ``cure_days`` to bring the LTV back to ``max_ltv`` (the encumbrance's
    limit), and above ``liquidation_ltv`` (or after the cure period) it escalates."""
    __tablename__ = "warehouse_pledge_terms"

    id: Mapped[int] = mapped_column(primary_key=True)
    encumbrance_id: Mapped[int] = mapped_column(ForeignKey("encumbrances.id"), unique=True)
    receipt_id: Mapped[int] = mapped_column(ForeignKey("warehouse_receipts.id"), index=True)
    margin_call_ltv: Mapped[Decimal] = mapped_column(Ltv)
    liquidation_ltv: Mapped[Decimal] = mapped_column(Ltv)
    cure_days: Mapped[int] = mapped_column(Integer)

    __table_args__ = (
        CheckConstraint("margin_call_ltv > 0 AND margin_call_ltv < liquidation_ltv",
                        name="thresholds_in_order"),
        CheckConstraint("cure_days BETWEEN 1 AND 90", name="cure_period"),
    )


class MarginCall(db.Model):
    """Opened once when a pledged receipt's LTV crosses its margin-call threshold; closes
    itself when the LTV is back within the limit; escalates past the cure period or above
    the liquidation threshold."""
    __tablename__ = "warehouse_margin_calls"

    id: Mapped[int] = mapped_column(primary_key=True)
    receipt_id: Mapped[int] = mapped_column(ForeignKey("warehouse_receipts.id"), index=True)
    encumbrance_id: Mapped[int] = mapped_column(ForeignKey("encumbrances.id"), index=True)
    bank_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    depositor_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    status: Mapped[MarginCallStatus] = mapped_column(
        _enum(MarginCallStatus, "margin_call_status"), default=MarginCallStatus.OPEN)
    opened_at: Mapped[datetime] = mapped_column(default=clock.now)
    cure_deadline: Mapped[date] = mapped_column()
    ltv_at_open: Mapped[Decimal] = mapped_column(Ltv)
    last_ltv: Mapped[Decimal] = mapped_column(Ltv)
    threshold: Mapped[Decimal] = mapped_column(Ltv)
    target_ltv: Mapped[Decimal] = mapped_column(Ltv)
    escalated_at: Mapped[datetime | None] = mapped_column()
    escalation_reason: Mapped[str | None] = mapped_column(String(40))
    closed_at: Mapped[datetime | None] = mapped_column()
    close_reason: Mapped[str | None] = mapped_column(String(40))

    __table_args__ = (
        # one call at a time per pledge: a new one only after the last has closed
        Index("uq_warehouse_margin_calls_one_live", "encumbrance_id", unique=True,
              postgresql_where=text("status <> 'closed'"),
              sqlite_where=text("status <> 'closed'")),
    )
