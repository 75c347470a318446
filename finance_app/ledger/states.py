"""Ledger vocabulary: account types, transaction kinds and the two-phase states."""
from __future__ import annotations

from enum import StrEnum
from typing import Mapping


class AccountType(StrEnum):
    ASSET = "asset"
    LIABILITY = "liability"
    EQUITY = "equity"
    INCOME = "income"
    EXPENSE = "expense"

    @property
    def debit_normal(self) -> bool:
        """Assets and expenses grow with debits; the others with credits."""
        return self in (AccountType.ASSET, AccountType.EXPENSE)


class OwnerKind(StrEnum):
    ORGANISATION = "organisation"
    PLATFORM = "platform"
    LOAN = "loan"
    FACILITY = "facility"
    POLICY = "policy"
    FUND = "fund"


class TransactionStatus(StrEnum):
    PENDING = "pending"   # a hold: counted as pending, not yet in the balance
    POSTED = "posted"
    VOIDED = "voided"     # a hold released without posting


class TransactionAction(StrEnum):
    POST = "post"
    VOID = "void"


TS, TA = TransactionStatus, TransactionAction
TRANSACTION_TRANSITIONS: Mapping[tuple[TransactionStatus, TransactionAction],
                                 TransactionStatus] = {
    (TS.PENDING, TA.POST): TS.POSTED,
    (TS.PENDING, TA.VOID): TS.VOIDED,
}


class EntryPhase(StrEnum):
    PENDING = "pending"   # part of a hold; moves the account's pending columns only
    POSTED = "posted"     # moves the balance; carries the running balance after it


class RateSource(StrEnum):
    CFETS = "cfets"       # RMB central parity (中间价), China Foreign Exchange Trade System
    ECB = "ecb"           # euro foreign exchange reference rates
    MANUAL = "manual"     # entered by the platform operator
