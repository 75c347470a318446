"""Warehouse vocabulary: kinds of warehouse and the life of an electronic receipt.

The operator issues, splits, delivers and cancels; a bank pledges and releases (through
the collateral registry); the daily run expires. The services check who through
``authz`` before applying a transition.

* issued    - the operator holds the goods for the depositor;
* pledged   - a bank holds the receipt as collateral (an active encumbrance in the
              collateral registry); nothing leaves the warehouse meanwhile;
* released  - the pledge ended; the receipt is free again (it may be pledged anew);
* split     - the receipt was divided into two receipts that replace it (a partial
              release by the bank, or the operator splitting a free receipt): terminal,
              its goods are now on the two child receipts (``parent_id``);
* delivered - the goods left the warehouse: terminal;
* cancelled - the operator withdrew the receipt (issued in error): terminal;
* expired   - past its expiry date (the daily run). The goods may still be in the
              warehouse, so the operator can still deliver them out, or cancel it.

A pledged receipt never expires by itself: the daily run lists it for attention instead,
and expires it once the bank has released it.
"""
from __future__ import annotations

from enum import StrEnum
from typing import Mapping


class WarehouseKind(StrEnum):
    BONDED = "bonded"        # 保税仓: customs-bonded, goods not yet cleared
    OVERSEAS = "overseas"    # 海外仓: abroad, near the buyers
    GENERAL = "general"


class ReceiptStatus(StrEnum):
    ISSUED = "issued"
    PLEDGED = "pledged"
    RELEASED = "released"
    SPLIT = "split"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class ReceiptAction(StrEnum):
    ISSUE = "issue"                      # creates a receipt (no status before)
    SPLIT_FROM = "split_from"            # creates a child receipt of a split
    PLEDGE = "pledge"
    RELEASE = "release"
    PARTIAL_RELEASE = "partial_release"  # the bank releases part: the receipt splits
    SPLIT = "split"                      # the operator splits a free receipt
    DELIVER = "deliver"
    CANCEL = "cancel"
    EXPIRE = "expire"


S, A = ReceiptStatus, ReceiptAction
RECEIPT_TRANSITIONS: Mapping[tuple[ReceiptStatus, ReceiptAction], ReceiptStatus] = {
    (S.ISSUED, A.PLEDGE): S.PLEDGED,         (S.RELEASED, A.PLEDGE): S.PLEDGED,
    (S.PLEDGED, A.RELEASE): S.RELEASED,
    (S.PLEDGED, A.PARTIAL_RELEASE): S.SPLIT,
    (S.ISSUED, A.SPLIT): S.SPLIT,            (S.RELEASED, A.SPLIT): S.SPLIT,
    (S.ISSUED, A.DELIVER): S.DELIVERED,      (S.RELEASED, A.DELIVER): S.DELIVERED,
    (S.EXPIRED, A.DELIVER): S.DELIVERED,
    (S.ISSUED, A.CANCEL): S.CANCELLED,       (S.RELEASED, A.CANCEL): S.CANCELLED,
    (S.EXPIRED, A.CANCEL): S.CANCELLED,
    (S.ISSUED, A.EXPIRE): S.EXPIRED,         (S.RELEASED, A.EXPIRE): S.EXPIRED,
}

# What a pledge forbids, with its own explanation rather than "illegal transition".
BLOCKED_WHILE_PLEDGED = frozenset({A.DELIVER, A.CANCEL, A.SPLIT})
# Statuses in which the goods are still in the warehouse under this receipt.
LIVE = frozenset({S.ISSUED, S.PLEDGED, S.RELEASED})


class MarginCallStatus(StrEnum):
    OPEN = "open"            # the depositor has the cure period to top up or repay
    ESCALATED = "escalated"  # past the cure period or above the liquidation threshold
    CLOSED = "closed"        # the LTV is back within the limit, or the pledge ended


class MarginCallAction(StrEnum):
    ESCALATE = "escalate"
    CLOSE = "close"


M, MA = MarginCallStatus, MarginCallAction
MARGIN_CALL_TRANSITIONS: Mapping[tuple[MarginCallStatus, MarginCallAction],
                                 MarginCallStatus] = {
    (M.OPEN, MA.ESCALATE): M.ESCALATED,
    (M.OPEN, MA.CLOSE): M.CLOSED,
    (M.ESCALATED, MA.CLOSE): M.CLOSED,
}
