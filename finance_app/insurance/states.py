"""Export credit insurance vocabulary and the life of each of its records.

* policy      - issued by an insurer to an SME for a period; expires after its end date
                (the daily run) or is cancelled by the insurer;
* buyer limit - the SME asks for a credit limit on an overseas buyer; the insurer
                approves (possibly less than asked) or refuses, and may later reduce or
                cancel it. Revolving: its used part is the insured amount of the
                shipments to the buyer not yet paid;
* declaration - a shipment declared under a limit: insured up to the limit's remaining
                amount. Settled when the buyer pays; overdue when the SME reports the
                buyer has not; claimed; closed once the claim is decided; voided by the
                insurer (a late overdue report may void cover); cancelled by the SME
                before anything else happened to it;
* claim       - filed by the SME (or the bank the indemnity was assigned to) after the
                waiting period; assessed; approved (the indemnity is booked and a
                payment record made) and paid, or rejected with a reason;
* assignment  - the SME assigns a receivable's indemnity to a bank; the insurer
                acknowledges it and the bank accepts it, which registers it in the
                collateral registry (one live lock per insured receivable). The bank
                then is the payee of any claim, until it releases the assignment.
"""
from __future__ import annotations

from enum import StrEnum
from typing import Mapping


class PolicyStatus(StrEnum):
    ISSUED = "issued"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


class PolicyAction(StrEnum):
    ISSUE = "issue"        # creates a policy (no status before)
    EXPIRE = "expire"
    CANCEL = "cancel"


P, PA = PolicyStatus, PolicyAction
POLICY_TRANSITIONS: Mapping[tuple[PolicyStatus, PolicyAction], PolicyStatus] = {
    (P.ISSUED, PA.EXPIRE): P.EXPIRED,
    (P.ISSUED, PA.CANCEL): P.CANCELLED,
}


class DeclarationMode(StrEnum):
    AFTER_SHIPMENT = "after_shipment"   # within N days after each shipment
    MONTHLY = "monthly"                 # by day N of the month after the shipment


class LimitStatus(StrEnum):
    REQUESTED = "requested"
    APPROVED = "approved"
    REFUSED = "refused"
    CANCELLED = "cancelled"
    WITHDRAWN = "withdrawn"


class LimitAction(StrEnum):
    APPLY = "apply"        # creates a limit request (no status before)
    APPROVE = "approve"
    REFUSE = "refuse"
    REDUCE = "reduce"
    CANCEL = "cancel"
    WITHDRAW = "withdraw"


L, LA = LimitStatus, LimitAction
LIMIT_TRANSITIONS: Mapping[tuple[LimitStatus, LimitAction], LimitStatus] = {
    (L.REQUESTED, LA.APPROVE): L.APPROVED,
    (L.REQUESTED, LA.REFUSE): L.REFUSED,
    (L.REQUESTED, LA.WITHDRAW): L.WITHDRAWN,
    (L.APPROVED, LA.REDUCE): L.APPROVED,
    (L.APPROVED, LA.CANCEL): L.CANCELLED,
}
LIVE_LIMIT = frozenset({L.REQUESTED, L.APPROVED})


class DeclarationStatus(StrEnum):
    DECLARED = "declared"
    SETTLED = "settled"
    OVERDUE = "overdue"
    CLAIMED = "claimed"
    CLOSED = "closed"
    VOIDED = "voided"
    CANCELLED = "cancelled"


class DeclarationAction(StrEnum):
    DECLARE = "declare"            # creates a declaration (no status before)
    SETTLE = "settle"              # the buyer paid the invoice
    REPORT_OVERDUE = "report_overdue"
    CLAIM = "claim"
    REOPEN = "reopen"              # the claim was withdrawn: overdue again
    CLOSE = "close"                # the claim was decided (paid or rejected)
    VOID = "void"                  # the insurer voids cover
    CANCEL = "cancel"              # the SME withdraws a declaration made in error


D, DA = DeclarationStatus, DeclarationAction
DECLARATION_TRANSITIONS: Mapping[tuple[DeclarationStatus, DeclarationAction],
                                 DeclarationStatus] = {
    (D.DECLARED, DA.SETTLE): D.SETTLED,
    (D.DECLARED, DA.REPORT_OVERDUE): D.OVERDUE,
    (D.DECLARED, DA.VOID): D.VOIDED,
    (D.DECLARED, DA.CANCEL): D.CANCELLED,
    (D.OVERDUE, DA.SETTLE): D.SETTLED,
    (D.OVERDUE, DA.CLAIM): D.CLAIMED,
    (D.OVERDUE, DA.VOID): D.VOIDED,
    (D.CLAIMED, DA.REOPEN): D.OVERDUE,
    (D.CLAIMED, DA.CLOSE): D.CLOSED,
}
# Declarations whose insured amount still uses the buyer's limit (while unpaid).
USES_LIMIT = frozenset({D.DECLARED, D.OVERDUE, D.CLAIMED})


class ClaimCause(StrEnum):
    NON_PAYMENT = "non_payment"    # protracted default (commercial risk)
    INSOLVENCY = "insolvency"      # the buyer's bankruptcy (commercial risk)
    POLITICAL = "political"        # transfer restrictions, war, import bans


class ClaimStatus(StrEnum):
    FILED = "filed"
    UNDER_ASSESSMENT = "under_assessment"
    APPROVED = "approved"
    PAID = "paid"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


class ClaimAction(StrEnum):
    FILE = "file"                  # creates a claim (no status before)
    ASSESS = "assess"
    APPROVE = "approve"
    REJECT = "reject"
    PAY = "pay"                    # the indemnity's payment record was paid
    WITHDRAW = "withdraw"


C, CA = ClaimStatus, ClaimAction
CLAIM_TRANSITIONS: Mapping[tuple[ClaimStatus, ClaimAction], ClaimStatus] = {
    (C.FILED, CA.ASSESS): C.UNDER_ASSESSMENT,
    (C.FILED, CA.WITHDRAW): C.WITHDRAWN,
    (C.FILED, CA.REJECT): C.REJECTED,
    (C.UNDER_ASSESSMENT, CA.APPROVE): C.APPROVED,
    (C.UNDER_ASSESSMENT, CA.REJECT): C.REJECTED,
    (C.UNDER_ASSESSMENT, CA.WITHDRAW): C.WITHDRAWN,
    (C.APPROVED, CA.PAY): C.PAID,
}
LIVE_CLAIM = frozenset({C.FILED, C.UNDER_ASSESSMENT, C.APPROVED, C.PAID})


class AssignmentStatus(StrEnum):
    REQUESTED = "requested"        # the SME asks to assign the indemnity to a bank
    ACKNOWLEDGED = "acknowledged"  # the insurer acknowledged it
    ACTIVE = "active"              # the bank accepted: the bank is the claim payee
    REFUSED = "refused"            # the insurer or the bank said no
    WITHDRAWN = "withdrawn"        # the SME took it back before it was active
    RELEASED = "released"          # the bank let it go


class AssignmentAction(StrEnum):
    REQUEST = "request"            # creates an assignment (no status before)
    ACKNOWLEDGE = "acknowledge"
    ACCEPT = "accept"
    REFUSE = "refuse"
    WITHDRAW = "withdraw"
    RELEASE = "release"


AS, AA = AssignmentStatus, AssignmentAction
ASSIGNMENT_TRANSITIONS: Mapping[tuple[AssignmentStatus, AssignmentAction],
                                AssignmentStatus] = {
    (AS.REQUESTED, AA.ACKNOWLEDGE): AS.ACKNOWLEDGED,
    (AS.REQUESTED, AA.REFUSE): AS.REFUSED,
    (AS.REQUESTED, AA.WITHDRAW): AS.WITHDRAWN,
    (AS.ACKNOWLEDGED, AA.ACCEPT): AS.ACTIVE,
    (AS.ACKNOWLEDGED, AA.REFUSE): AS.REFUSED,
    (AS.ACKNOWLEDGED, AA.WITHDRAW): AS.WITHDRAWN,
    (AS.ACTIVE, AA.RELEASE): AS.RELEASED,
}
LIVE_ASSIGNMENT = frozenset({AS.REQUESTED, AS.ACKNOWLEDGED, AS.ACTIVE})

# Every table, for the illegal-transition tests and the status-history view.
TABLES = {
    "policy": (PolicyStatus, PolicyAction, POLICY_TRANSITIONS),
    "buyer limit": (LimitStatus, LimitAction, LIMIT_TRANSITIONS),
    "declaration": (DeclarationStatus, DeclarationAction, DECLARATION_TRANSITIONS),
    "claim": (ClaimStatus, ClaimAction, CLAIM_TRANSITIONS),
    "assignment": (AssignmentStatus, AssignmentAction, ASSIGNMENT_TRANSITIONS),
}
CREATING_ACTIONS = frozenset({PA.ISSUE, LA.APPLY, DA.DECLARE, CA.FILE, AA.REQUEST})
