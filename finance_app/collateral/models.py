"""The encumbrance registry: one row per time an asset was pledged to a holder.

At most one encumbrance per asset is active at any time, platform-wide. The database
holds that rule itself (a partial unique index on the active rows, on both databases),
and the services take a row lock on the asset's ``CollateralAsset`` row before they
look, so two banks pledging the same asset at the same moment queue up and the second
one is told it is already pledged. Triggers (see the migration) keep an ended
encumbrance as it ended: it cannot be reopened, changed or deleted.
"""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger, CheckConstraint, Enum, ForeignKey, Index, Integer, String, Text,
    UniqueConstraint, text,
)
from sqlalchemy.orm import Mapped, mapped_column

from finance_app import clock
from finance_app.collateral.states import AssetKind, EncumbranceStatus
from finance_app.db import ExactDecimal
from finance_app.extensions import db
from finance_app.money import Money
from finance_app.states import enum_values


def _enum(enum_cls, name: str) -> Enum:
    return Enum(enum_cls, native_enum=False, create_constraint=True, name=name,
                values_callable=enum_values, length=20, validate_strings=True)


# A loan-to-value limit as a fraction (0.7000 is 70 %), four decimals, stored scaled by
# 10**4: in SQL (CHECKs) 1.0000 reads 10000.
Ratio = ExactDecimal(4)
ACTIVE_ONLY = text("status = 'active'")


class CollateralAsset(db.Model):
    """The registry's row for an asset that has been encumbered at least once: locked
    (``SELECT ... FOR UPDATE``) while the asset's encumbrances change."""
    __tablename__ = "collateral_assets"

    id: Mapped[int] = mapped_column(primary_key=True)
    asset_kind: Mapped[AssetKind] = mapped_column(_enum(AssetKind, "collateral_asset_kind"))
    asset_id: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)

    __table_args__ = (UniqueConstraint("asset_kind", "asset_id"),)


class Encumbrance(db.Model):
    __tablename__ = "encumbrances"

    id: Mapped[int] = mapped_column(primary_key=True)
    asset_kind: Mapped[AssetKind] = mapped_column(_enum(AssetKind, "encumbrance_asset_kind"))
    asset_id: Mapped[int] = mapped_column(Integer)
    holder_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    # The financing it secures, as the holder names it, until the financing domain links
    # its loan here: a kind ("loan", "facility", ...) and the holder's reference.
    financing_kind: Mapped[str | None] = mapped_column(String(40))
    financing_ref: Mapped[str | None] = mapped_column(String(100))
    # The amount the holder states it secures, in minor units of ``secured_currency``.
    secured_amount: Mapped[int | None] = mapped_column(BigInteger)
    secured_currency: Mapped[str | None] = mapped_column(String(3))
    max_ltv: Mapped[Decimal | None] = mapped_column(Ratio)
    # The registration number in the national movable-property financing registry
    # (动产融资统一登记公示系统), when the holder has registered the pledge there.
    registry_ref: Mapped[str | None] = mapped_column(String(40))
    status: Mapped[EncumbranceStatus] = mapped_column(
        _enum(EncumbranceStatus, "encumbrance_status"), default=EncumbranceStatus.ACTIVE)
    # When the pledge took effect: an encumbrance carried forward keeps its original date
    # (the holder's priority does not restart).
    since: Mapped[datetime] = mapped_column(default=clock.now)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    released_at: Mapped[datetime | None] = mapped_column()
    released_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    release_reason: Mapped[str | None] = mapped_column(Text)
    # Lineage: the encumbrance of the asset this one was carried forward from.
    carried_from_id: Mapped[int | None] = mapped_column(ForeignKey("encumbrances.id"),
                                                        unique=True)

    __table_args__ = (
        Index("uq_encumbrances_one_active_per_asset", "asset_kind", "asset_id", unique=True,
              postgresql_where=ACTIVE_ONLY, sqlite_where=ACTIVE_ONLY),
        Index("ix_encumbrances_asset", "asset_kind", "asset_id"),
        CheckConstraint("(status = 'active') = (released_at IS NULL)",
                        name="released_iff_ended"),
        CheckConstraint("(secured_amount IS NULL) = (secured_currency IS NULL)",
                        name="secured_amount_has_currency"),
        CheckConstraint("secured_amount IS NULL OR secured_amount > 0",
                        name="secured_amount_positive"),
        CheckConstraint("max_ltv IS NULL OR (max_ltv > 0 AND max_ltv <= 10000)",
                        name="max_ltv_fraction"),
    )

    @property
    def is_active(self) -> bool:
        return self.status is EncumbranceStatus.ACTIVE

    @property
    def secured(self) -> Money | None:
        if self.secured_amount is None:
            return None
        return Money.from_minor(self.secured_amount, self.secured_currency)

    def __repr__(self) -> str:
        return (f"<Encumbrance {self.id} {self.asset_kind}:{self.asset_id} "
                f"holder={self.holder_org_id} {self.status}>")
