"""Collateral vocabulary: the kinds of asset that can back financing, and the life of an
encumbrance (one asset pledged to one holder)."""
from __future__ import annotations

from enum import StrEnum
from typing import Mapping


class AssetKind(StrEnum):
    ORDER = "order"                            # trade.Order
    RECEIVABLE = "receivable"                  # trade.Receivable
    WAREHOUSE_RECEIPT = "warehouse_receipt"    # warehouse.WarehouseReceipt
    INSURED_RECEIVABLE = "insured_receivable"  # a receivable covered by an insurance policy


class EncumbranceStatus(StrEnum):
    ACTIVE = "active"                  # the asset secures the holder's financing
    RELEASED = "released"              # the holder let the asset go
    CARRIED_FORWARD = "carried_forward"  # the asset became another one, which carries it on


class EncumbranceAction(StrEnum):
    RELEASE = "release"
    CARRY_FORWARD = "carry_forward"


S, A = EncumbranceStatus, EncumbranceAction
ENCUMBRANCE_TRANSITIONS: Mapping[tuple[EncumbranceStatus, EncumbranceAction],
                                 EncumbranceStatus] = {
    (S.ACTIVE, A.RELEASE): S.RELEASED,
    (S.ACTIVE, A.CARRY_FORWARD): S.CARRIED_FORWARD,
}
