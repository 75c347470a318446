"""Financing vocabulary and state machines: products, requests, offers (and rejections),
loans and their instalments.

* A **product** is active or paused (paused: not offered to new requests).
* A **request** is submitted to one or several banks; it ends accepted (one offer taken)
  or withdrawn by the SME.
* A bank's **decision** on a request is an offer or a rejection: an officer prepares it, an
  approver (another user) approves it, and only then does the SME see it. An approved
  offer is accepted, lapses (the SME took another one, or withdrew), or expires.
* A **loan** awaits disbursement after acceptance (or is cancelled before it), is
  disbursed, repaid (closed), or goes overdue (cured by paying what is late) and, overdue
  beyond the product's limit, defaulted.
* An **instalment** is pending until its due date, overdue if not paid by the end of it,
  and paid once its principal, interest and penalty interest are all paid.
"""
from __future__ import annotations

from enum import StrEnum
from typing import Mapping

from finance_app.financing.schedule import RepaymentType  # noqa: F401  (re-exported)


class ProductKind(StrEnum):
    ORDER = "order"                          # verified orders not yet shipped or paid
    RECEIVABLE = "receivable"                # receivables of verified B2B orders
    WAREHOUSE_RECEIPT = "warehouse_receipt"  # pledged warehouse receipts
    POLICY = "policy"                        # receivables insured by an export credit policy


class ProductStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"


class ProductAction(StrEnum):
    PAUSE = "pause"
    RESUME = "resume"


PRODUCT_TRANSITIONS: Mapping[tuple[ProductStatus, ProductAction], ProductStatus] = {
    (ProductStatus.ACTIVE, ProductAction.PAUSE): ProductStatus.PAUSED,
    (ProductStatus.PAUSED, ProductAction.RESUME): ProductStatus.ACTIVE,
}


class RequestStatus(StrEnum):
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    WITHDRAWN = "withdrawn"


class RequestAction(StrEnum):
    ACCEPT = "accept"
    WITHDRAW = "withdraw"


REQUEST_TRANSITIONS: Mapping[tuple[RequestStatus, RequestAction], RequestStatus] = {
    (RequestStatus.SUBMITTED, RequestAction.ACCEPT): RequestStatus.ACCEPTED,
    (RequestStatus.SUBMITTED, RequestAction.WITHDRAW): RequestStatus.WITHDRAWN,
}


class DecisionKind(StrEnum):
    OFFER = "offer"
    REJECTION = "rejection"


class OfferStatus(StrEnum):
    PREPARED = "prepared"    # by an officer; not yet visible to the SME
    APPROVED = "approved"    # by an approver (another user): visible, open to acceptance
    ACCEPTED = "accepted"
    LAPSED = "lapsed"        # the SME accepted another offer, or withdrew the request
    EXPIRED = "expired"      # past its expiry date unaccepted
    WITHDRAWN = "withdrawn"  # the bank took it back before the SME accepted


class OfferAction(StrEnum):
    APPROVE = "approve"
    ACCEPT = "accept"
    LAPSE = "lapse"
    EXPIRE = "expire"
    WITHDRAW = "withdraw"


O, OA = OfferStatus, OfferAction
OFFER_TRANSITIONS: Mapping[tuple[OfferStatus, OfferAction], OfferStatus] = {
    (O.PREPARED, OA.APPROVE): O.APPROVED,
    (O.PREPARED, OA.WITHDRAW): O.WITHDRAWN,
    (O.PREPARED, OA.LAPSE): O.LAPSED,
    (O.APPROVED, OA.ACCEPT): O.ACCEPTED,
    (O.APPROVED, OA.LAPSE): O.LAPSED,
    (O.APPROVED, OA.EXPIRE): O.EXPIRED,
    (O.APPROVED, OA.WITHDRAW): O.WITHDRAWN,
}


class RejectionReason(StrEnum):
    INSUFFICIENT_COLLATERAL = "insufficient_collateral"
    CREDIT_HISTORY = "credit_history"
    UNVERIFIED_TRADE = "unverified_trade"
    OUTSIDE_APPETITE = "outside_appetite"
    INCOMPLETE_INFORMATION = "incomplete_information"
    OTHER = "other"


class LoanStatus(StrEnum):
    AWAITING_DISBURSEMENT = "awaiting_disbursement"
    DISBURSED = "disbursed"
    OVERDUE = "overdue"
    DEFAULTED = "defaulted"
    REPAID = "repaid"
    CANCELLED = "cancelled"   # the bank or the SME called it off before disbursement


class LoanAction(StrEnum):
    DISBURSE = "disburse"
    FALL_OVERDUE = "fall_overdue"
    CURE = "cure"
    DEFAULT = "default"
    REPAY = "repay"
    CANCEL = "cancel"


L, LA = LoanStatus, LoanAction
LOAN_TRANSITIONS: Mapping[tuple[LoanStatus, LoanAction], LoanStatus] = {
    (L.AWAITING_DISBURSEMENT, LA.DISBURSE): L.DISBURSED,
    (L.AWAITING_DISBURSEMENT, LA.CANCEL): L.CANCELLED,
    (L.DISBURSED, LA.FALL_OVERDUE): L.OVERDUE,
    (L.DISBURSED, LA.REPAY): L.REPAID,
    (L.OVERDUE, LA.CURE): L.DISBURSED,
    (L.OVERDUE, LA.REPAY): L.REPAID,
    (L.OVERDUE, LA.DEFAULT): L.DEFAULTED,
    (L.DEFAULTED, LA.REPAY): L.REPAID,
}

LIVE_LOAN_STATUSES = frozenset({L.DISBURSED, L.OVERDUE, L.DEFAULTED})


class InstalmentStatus(StrEnum):
    PENDING = "pending"
    OVERDUE = "overdue"
    PAID = "paid"


class InstalmentAction(StrEnum):
    FALL_OVERDUE = "fall_overdue"
    PAY = "pay"


I, IA = InstalmentStatus, InstalmentAction
INSTALMENT_TRANSITIONS: Mapping[tuple[InstalmentStatus, InstalmentAction], InstalmentStatus] = {
    (I.PENDING, IA.FALL_OVERDUE): I.OVERDUE,
    (I.PENDING, IA.PAY): I.PAID,
    (I.OVERDUE, IA.PAY): I.PAID,
}


class Component(StrEnum):
    """What part of an instalment a repayment paid, in the order repayments are applied."""
    PENALTY = "penalty"       # penalty interest on overdue amounts
    INTEREST = "interest"
    PRINCIPAL = "principal"


class RepaymentMethod(StrEnum):
    BANK_TRANSFER = "bank_transfer"
    CARD = "card"


class RepaymentStatus(StrEnum):
    PENDING = "pending"       # the settlement record awaits payment
    APPLIED = "applied"       # paid and applied to the loan
    CANCELLED = "cancelled"   # the payment was called off


class RepaymentAction(StrEnum):
    APPLY = "apply"
    CANCEL = "cancel"


RP, RPA = RepaymentStatus, RepaymentAction
REPAYMENT_TRANSITIONS: Mapping[tuple[RepaymentStatus, RepaymentAction], RepaymentStatus] = {
    (RP.PENDING, RPA.APPLY): RP.APPLIED,
    (RP.PENDING, RPA.CANCEL): RP.CANCELLED,
}

ASSET_FOR_PRODUCT = {
    ProductKind.ORDER: "order",
    ProductKind.RECEIVABLE: "receivable",
    ProductKind.WAREHOUSE_RECEIPT: "warehouse_receipt",
    ProductKind.POLICY: "insured_receivable",
}
