"""Risk compensation fund vocabulary and the life of its records.

* fund  - made by the platform operator's approvers; active (claims may be filed), paused
          (no new claims; those filed are still decided), closed (nothing more);
* claim - a bank claims for one of its defaulted loans; the operator's approver approves
          (the compensation is booked from the fund's budget and a payment to the bank is
          asked for) or rejects it with a reason; the bank may withdraw it before that;
          approved, it is paid when the bank confirms the transfer arrived.
"""
from __future__ import annotations

from enum import StrEnum
from typing import Mapping


class FundStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    CLOSED = "closed"


class FundAction(StrEnum):
    CREATE = "create"      # makes a fund (no status before)
    PAUSE = "pause"
    RESUME = "resume"
    CLOSE = "close"


F, FA = FundStatus, FundAction
FUND_TRANSITIONS: Mapping[tuple[FundStatus, FundAction], FundStatus] = {
    (F.ACTIVE, FA.PAUSE): F.PAUSED,
    (F.ACTIVE, FA.CLOSE): F.CLOSED,
    (F.PAUSED, FA.RESUME): F.ACTIVE,
    (F.PAUSED, FA.CLOSE): F.CLOSED,
}


class ClaimStatus(StrEnum):
    SUBMITTED = "submitted"
    APPROVED = "approved"
    PAID = "paid"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


class ClaimAction(StrEnum):
    SUBMIT = "submit"      # makes a claim (no status before)
    APPROVE = "approve"
    REJECT = "reject"
    WITHDRAW = "withdraw"
    PAY = "pay"            # the compensation's payment record was paid


C, CA = ClaimStatus, ClaimAction
CLAIM_TRANSITIONS: Mapping[tuple[ClaimStatus, ClaimAction], ClaimStatus] = {
    (C.SUBMITTED, CA.APPROVE): C.APPROVED,
    (C.SUBMITTED, CA.REJECT): C.REJECTED,
    (C.SUBMITTED, CA.WITHDRAW): C.WITHDRAWN,
    (C.APPROVED, CA.PAY): C.PAID,
}
# A loan has at most one live claim (a partial unique index): a paid one counts.
LIVE_CLAIM = frozenset({C.SUBMITTED, C.APPROVED, C.PAID})
# Claims whose compensation is spent from the budget.
SPENT = frozenset({C.APPROVED, C.PAID})

TABLES = {
    "fund": (FundStatus, FundAction, FUND_TRANSITIONS),
    "claim": (ClaimStatus, ClaimAction, CLAIM_TRANSITIONS),
}
CREATING_ACTIONS = frozenset({FA.CREATE, CA.SUBMIT})
