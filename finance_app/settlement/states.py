"""Settlement vocabulary and the settlement record's state machine."""
from __future__ import annotations

from enum import StrEnum
from typing import Mapping


class SettlementStatus(StrEnum):
    PENDING = "pending"
    PAID = "paid"
    FAILED = "failed"
    CANCELLED = "cancelled"


class SettlementAction(StrEnum):
    CONFIRM = "confirm"   # the payee confirms a bank transfer, or Stripe reports success
    FAIL = "fail"         # Stripe reports a failed payment
    RETRY = "retry"       # a failed online payment is tried again
    CANCEL = "cancel"


S, A = SettlementStatus, SettlementAction
SETTLEMENT_TRANSITIONS: Mapping[tuple[SettlementStatus, SettlementAction], SettlementStatus] = {
    (S.PENDING, A.CONFIRM): S.PAID,
    (S.PENDING, A.FAIL): S.FAILED,
    (S.PENDING, A.CANCEL): S.CANCELLED,
    (S.FAILED, A.RETRY): S.PENDING,
    # a card payment that Stripe reports as succeeded after an earlier failure was
    # reported (events arrive in any order): the money is in, so it is paid
    (S.FAILED, A.CONFIRM): S.PAID,
    (S.FAILED, A.CANCEL): S.CANCELLED,
}


class SettlementMethod(StrEnum):
    BANK_TRANSFER = "bank_transfer"
    CARD = "card"         # online, through Stripe


class ObligationKind(StrEnum):
    DISBURSEMENT = "disbursement"
    REPAYMENT = "repayment"
    INTEREST = "interest"
    FEE = "fee"
    PREMIUM = "premium"
    CLAIM = "claim"
    COMPENSATION = "compensation"
    RECOVERY = "recovery"
