"""Orders, payments, waybills and customs inventories, their versions, and verdicts.

Amounts are ``ExactDecimal`` (five decimals, as the customs specification allows), stored
as scaled integers so both databases keep every digit.  A document belongs to the filed
organisation whose customs or credit code it names as its filer.
"""
from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from decimal import Decimal

from sqlalchemy import (
    CheckConstraint, Enum, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from finance_app import clock
from finance_app.db import ExactDecimal
from finance_app.extensions import db
from finance_app.states import enum_values
from finance_app.trade.states import Direction, DocumentKind, DocumentSource, Verdict


def _enum(enum_cls, name: str) -> Enum:
    return Enum(enum_cls, native_enum=False, create_constraint=True, name=name,
                values_callable=enum_values, length=20, validate_strings=True)


Amount = ExactDecimal(5)


class _Document:
    """Columns every filed document has."""
    id: Mapped[int] = mapped_column(primary_key=True)
    filer_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    direction: Mapped[Direction] = mapped_column(_enum(Direction, "direction"))
    guid: Mapped[str | None] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer, default=1)
    source: Mapped[DocumentSource] = mapped_column(_enum(DocumentSource, "document_source"))
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("ingest_batches.id"))
    app_time: Mapped[datetime | None] = mapped_column()
    extra: Mapped[str | None] = mapped_column(Text)  # other elements, canonical JSON
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now)


class Order(_Document, db.Model):
    __tablename__ = "trade_orders"

    order_no: Mapped[str] = mapped_column(String(60))
    order_type: Mapped[str | None] = mapped_column(String(1))
    ebp_code: Mapped[str] = mapped_column(String(18))
    ebp_name: Mapped[str | None] = mapped_column(String(100))
    ebc_code: Mapped[str] = mapped_column(String(18))
    ebc_name: Mapped[str | None] = mapped_column(String(100))
    trade_mode: Mapped[str | None] = mapped_column(String(4))
    currency: Mapped[str] = mapped_column(String(3))
    goods_value: Mapped[Decimal] = mapped_column(Amount)
    freight: Mapped[Decimal] = mapped_column(Amount, default=Decimal(0))
    discount: Mapped[Decimal] = mapped_column(Amount, default=Decimal(0))
    tax_total: Mapped[Decimal] = mapped_column(Amount, default=Decimal(0))
    actual_paid: Mapped[Decimal | None] = mapped_column(Amount)
    buyer_reg_no: Mapped[str | None] = mapped_column(String(60))
    buyer_name: Mapped[str | None] = mapped_column(String(100))
    buyer_id_type: Mapped[str | None] = mapped_column(String(1))
    buyer_id_number: Mapped[str | None] = mapped_column(String(60))
    buyer_country: Mapped[str | None] = mapped_column(String(2))
    pay_code: Mapped[str | None] = mapped_column(String(18))
    pay_transaction_id: Mapped[str | None] = mapped_column(String(60))
    consignee: Mapped[str | None] = mapped_column(String(100))
    consignee_address: Mapped[str | None] = mapped_column(String(200))
    consignee_telephone: Mapped[str | None] = mapped_column(String(50))
    payment_term_days: Mapped[int | None] = mapped_column(Integer)
    order_date: Mapped[date | None] = mapped_column()

    lines: Mapped[list["OrderLine"]] = relationship(
        back_populates="order", cascade="all, delete-orphan", order_by="OrderLine.gnum")
    verdict: Mapped["MatchVerdict | None"] = relationship(back_populates="order", uselist=False)

    __table_args__ = (
        UniqueConstraint("ebp_code", "order_no"),  # order numbers are unique per platform
        CheckConstraint("goods_value >= 0 AND freight >= 0 AND discount >= 0 AND tax_total >= 0",
                        name="amounts_not_negative"),
        Index("ix_trade_orders_order_no", "order_no"),
        # the statistics read the orders of a business day (order date, else the filing's
        # app time, else its creation) and those changed since the summary's refresh
        Index("ix_trade_orders_order_date", "order_date"),
        Index("ix_trade_orders_app_time_undated", "app_time",
              sqlite_where=text("order_date IS NULL"),
              postgresql_where=text("order_date IS NULL")),
        Index("ix_trade_orders_created_at_undated", "created_at",
              sqlite_where=text("order_date IS NULL AND app_time IS NULL"),
              postgresql_where=text("order_date IS NULL AND app_time IS NULL")),
        Index("ix_trade_orders_updated_at", "updated_at"),
    )

    @property
    def payable(self) -> Decimal:
        """What the buyer pays: goods value + freight + tax - discount."""
        return self.goods_value + self.freight + self.tax_total - self.discount


class OrderLine(db.Model):
    __tablename__ = "trade_order_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("trade_orders.id", ondelete="CASCADE"),
                                          index=True)
    gnum: Mapped[int] = mapped_column(Integer)
    item_no: Mapped[str | None] = mapped_column(String(30))
    item_name: Mapped[str] = mapped_column(String(250))
    unit: Mapped[str | None] = mapped_column(String(3))
    qty: Mapped[Decimal] = mapped_column(Amount)
    price: Mapped[Decimal] = mapped_column(Amount)
    total_price: Mapped[Decimal] = mapped_column(Amount)

    order: Mapped[Order] = relationship(back_populates="lines")

    __table_args__ = (UniqueConstraint("order_id", "gnum"),)


class Payment(_Document, db.Model):
    """A payment slip: the payment institution's record that the order was paid."""
    __tablename__ = "trade_payments"

    order_no: Mapped[str] = mapped_column(String(60))
    ebp_code: Mapped[str | None] = mapped_column(String(18))
    ebc_code: Mapped[str | None] = mapped_column(String(18))
    pay_code: Mapped[str] = mapped_column(String(18))
    pay_name: Mapped[str | None] = mapped_column(String(100))
    pay_transaction_id: Mapped[str] = mapped_column(String(60))
    payer_id_type: Mapped[str | None] = mapped_column(String(1))
    payer_id_number: Mapped[str | None] = mapped_column(String(60))
    payer_name: Mapped[str | None] = mapped_column(String(100))
    amount: Mapped[Decimal] = mapped_column(Amount)
    currency: Mapped[str] = mapped_column(String(3))
    pay_time: Mapped[datetime | None] = mapped_column()

    __table_args__ = (
        UniqueConstraint("pay_code", "pay_transaction_id"),  # unique per payment company
        CheckConstraint("amount >= 0", name="amount_not_negative"),
        Index("ix_trade_payments_order", "ebp_code", "order_no"),
        # a payment naming no platform counts towards any order of its number: lookups by
        # the number alone (``ebp_code = x OR ebp_code IS NULL``) cannot use the above
        Index("ix_trade_payments_order_no", "order_no"),
    )


class Waybill(_Document, db.Model):
    __tablename__ = "trade_waybills"

    logistics_code: Mapped[str] = mapped_column(String(18))
    logistics_name: Mapped[str | None] = mapped_column(String(100))
    logistics_no: Mapped[str] = mapped_column(String(60))
    order_no: Mapped[str | None] = mapped_column(String(60))
    consignee: Mapped[str | None] = mapped_column(String(100))
    consignee_address: Mapped[str | None] = mapped_column(String(200))
    consignee_telephone: Mapped[str | None] = mapped_column(String(50))
    freight: Mapped[Decimal | None] = mapped_column(Amount)
    currency: Mapped[str | None] = mapped_column(String(3))
    weight: Mapped[Decimal | None] = mapped_column(Amount)
    pack_no: Mapped[int | None] = mapped_column(Integer)
    goods_info: Mapped[str | None] = mapped_column(String(200))
    shipped_at: Mapped[datetime | None] = mapped_column()

    __table_args__ = (
        UniqueConstraint("logistics_code", "logistics_no"),  # unique per logistics company
        Index("ix_trade_waybills_order_no", "order_no"),
    )


class Inventory(_Document, db.Model):
    """The customs inventory (清单): ties an order to its waybill and declares the goods."""
    __tablename__ = "trade_inventories"

    cop_no: Mapped[str] = mapped_column(String(60))
    invt_no: Mapped[str | None] = mapped_column(String(60))
    order_no: Mapped[str] = mapped_column(String(60))
    ebp_code: Mapped[str] = mapped_column(String(18))
    ebc_code: Mapped[str | None] = mapped_column(String(18))
    agent_code: Mapped[str | None] = mapped_column(String(18))
    logistics_code: Mapped[str | None] = mapped_column(String(18))
    logistics_no: Mapped[str | None] = mapped_column(String(60))
    trade_mode: Mapped[str | None] = mapped_column(String(4))
    country: Mapped[str | None] = mapped_column(String(2))
    currency: Mapped[str | None] = mapped_column(String(3))
    total_value: Mapped[Decimal | None] = mapped_column(Amount)
    declared_at: Mapped[datetime | None] = mapped_column()

    __table_args__ = (
        UniqueConstraint("ebp_code", "cop_no"),
        Index("ix_trade_inventories_order", "ebp_code", "order_no"),
        Index("ix_trade_inventories_waybill", "logistics_code", "logistics_no"),
    )


class DocumentVersion(db.Model):
    """A document as it stood before a re-filing (appType 2) replaced it."""
    __tablename__ = "trade_document_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[DocumentKind] = mapped_column(_enum(DocumentKind, "document_kind"))
    document_id: Mapped[int] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer)
    data: Mapped[str] = mapped_column(Text)  # canonical JSON of the replaced version
    replaced_at: Mapped[datetime] = mapped_column(default=clock.now)
    replaced_by_batch_id: Mapped[int | None] = mapped_column(ForeignKey("ingest_batches.id"))

    __table_args__ = (UniqueConstraint("kind", "document_id", "version"),)


class IngestBatch(db.Model):
    """One upload (a file, a CSV, an API call) and what became of each document in it."""
    __tablename__ = "ingest_batches"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"), index=True)
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    source: Mapped[DocumentSource] = mapped_column(_enum(DocumentSource, "batch_source"))
    filename: Mapped[str | None] = mapped_column(String(255))
    message_type: Mapped[str | None] = mapped_column(String(10))
    accepted: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    warnings: Mapped[str | None] = mapped_column(Text)   # JSON list
    results: Mapped[str | None] = mapped_column(Text)    # JSON list, one entry a document
    created_at: Mapped[datetime] = mapped_column(default=clock.now)


class MatchVerdict(db.Model):
    """Three-document matching's verdict on an order, with its reasons."""
    __tablename__ = "trade_verdicts"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("trade_orders.id", ondelete="CASCADE"),
                                          unique=True)
    status: Mapped[Verdict] = mapped_column(_enum(Verdict, "verdict"))
    reasons: Mapped[str] = mapped_column(Text)  # JSON list of {"code", "message"}
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("trade_payments.id"))
    waybill_id: Mapped[int | None] = mapped_column(ForeignKey("trade_waybills.id"))
    inventory_id: Mapped[int | None] = mapped_column(ForeignKey("trade_inventories.id"))
    evaluated_at: Mapped[datetime] = mapped_column(default=clock.now, index=True)

    order: Mapped[Order] = relationship(back_populates="verdict")


class ReceivableStatus(StrEnum):
    OPEN = "open"
    SETTLED = "settled"


class Receivable(db.Model):
    """What the overseas buyer of a verified B2B export order (9710/9810) owes the SME.

    The outstanding amount is derived from the payments matched to the order, not stored.
    """
    __tablename__ = "trade_receivables"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("trade_orders.id"), unique=True)
    seller_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    buyer_name: Mapped[str | None] = mapped_column(String(100))
    buyer_country: Mapped[str | None] = mapped_column(String(2))
    amount: Mapped[Decimal] = mapped_column(Amount)
    currency: Mapped[str] = mapped_column(String(3))
    due_date: Mapped[date] = mapped_column()
    status: Mapped[ReceivableStatus] = mapped_column(
        _enum(ReceivableStatus, "receivable_status"), default=ReceivableStatus.OPEN)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)

    order: Mapped[Order] = relationship()

    __table_args__ = (CheckConstraint("amount > 0", name="amount_positive"),)
