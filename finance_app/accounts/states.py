"""Organisation kinds, user roles and the filing state machine."""
from __future__ import annotations

from enum import StrEnum
from typing import Mapping


class OrgKind(StrEnum):
    SME = "sme"
    BANK = "bank"
    INSURER = "insurer"
    WAREHOUSE_OPERATOR = "warehouse_operator"
    LOGISTICS = "logistics"
    PAYMENT_INSTITUTION = "payment_institution"
    PLATFORM_OPERATOR = "platform_operator"


# The platform operator is created by the operator (or `flask demo`), never by public sign-up.
SIGNUP_KINDS = [k for k in OrgKind if k is not OrgKind.PLATFORM_OPERATOR]


class Role(StrEnum):
    ADMIN = "admin"        # manages the organisation's users, tokens and filing profile
    OFFICER = "officer"    # prepares and files business records
    APPROVER = "approver"  # makes binding decisions; needs a second factor


class FilingStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    SUSPENDED = "suspended"


class FilingAction(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    SUSPEND = "suspend"
    REINSTATE = "reinstate"
    RESUBMIT = "resubmit"


S, A = FilingStatus, FilingAction
FILING_TRANSITIONS: Mapping[tuple[FilingStatus, FilingAction], FilingStatus] = {
    (S.PENDING, A.APPROVE): S.APPROVED,
    (S.PENDING, A.REJECT): S.REJECTED,
    (S.REJECTED, A.RESUBMIT): S.PENDING,
    (S.APPROVED, A.SUSPEND): S.SUSPENDED,
    (S.SUSPENDED, A.REINSTATE): S.APPROVED,
}
# Actions whose reason is shown to the organisation and must be given.
REASON_REQUIRED = {A.REJECT, A.SUSPEND}
