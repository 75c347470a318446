"""Reading insurance records, scoped to who asks: an insurer its own policies and all under
them, an SME the policies it holds, a bank what is (or was) assigned to it, the platform
operator everything; and the read functions the financing marketplace calls.

``cover_for_receivable(receivable_id)`` is the marketplace's one question to insurance:
is this receivable insured, for how much, at what coverage, how much of the buyer's limit
and of the policy's maximum liability is left, and to which bank is its indemnity
assigned. It never writes (not even a ledger account opened on first use).
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, exists, false, select

from finance_app.accounts.models import User
from finance_app.accounts.states import OrgKind
from finance_app.extensions import db
from finance_app.insurance.models import (
    BuyerLimit, Claim, IndemnityAssignment, InsuranceStatusChange, OverdueReport, Policy,
    Recovery, ShipmentDeclaration,
)
from finance_app.insurance.states import (
    USES_LIMIT, AssignmentStatus, ClaimStatus, DeclarationStatus, LimitStatus, PolicyStatus,
)
from finance_app.money import Money
from finance_app.paging import Page, paginate


# --------------------------------------------------------------------------- scoping

def _assignments_to(bank_org_id: int, *, active_only: bool = False):
    statuses = [AssignmentStatus.ACTIVE] if active_only else [
        AssignmentStatus.ACKNOWLEDGED, AssignmentStatus.ACTIVE, AssignmentStatus.RELEASED]
    return (IndemnityAssignment.bank_org_id == bank_org_id,
            IndemnityAssignment.status.in_(statuses))


def assigned_to(bank_org_id: int, obj: Any, *, active_only: bool = False) -> bool:
    """Is (or was) an indemnity of ``obj`` assigned to the bank? ``obj``: a policy, a
    declaration, a claim or an assignment. A bank sees an assignment once the insurer has
    acknowledged it (it is then asked to accept), and keeps seeing it after release."""
    if isinstance(obj, IndemnityAssignment):
        if active_only:
            return obj.bank_org_id == bank_org_id and obj.status is AssignmentStatus.ACTIVE
        return obj.bank_org_id == bank_org_id and obj.status in (
            AssignmentStatus.ACKNOWLEDGED, AssignmentStatus.ACTIVE, AssignmentStatus.RELEASED)
    conditions = list(_assignments_to(bank_org_id, active_only=active_only))
    if isinstance(obj, Policy):
        conditions.append(IndemnityAssignment.policy_id == obj.id)
    elif isinstance(obj, ShipmentDeclaration):
        conditions.append(IndemnityAssignment.declaration_id == obj.id)
    elif isinstance(obj, Claim):
        conditions.append(IndemnityAssignment.declaration_id == obj.declaration_id)
    else:
        return False
    return db.session.execute(select(exists().where(*conditions))).scalar_one()


def _scoped(model, user: User, via_declaration) -> Select:
    query = select(model)
    kind = user.organisation.kind
    if kind is OrgKind.PLATFORM_OPERATOR:
        return query
    if kind is OrgKind.INSURER:
        return query.where(model.insurer_org_id == user.org_id)
    if kind is OrgKind.SME:
        return query.where(model.insured_org_id == user.org_id)
    if kind is OrgKind.BANK and via_declaration is not None:
        return query.where(exists().where(*_assignments_to(user.org_id), via_declaration))
    return query.where(false())


def visible_policies(user: User) -> Select:
    return _scoped(Policy, user, IndemnityAssignment.policy_id == Policy.id)


def visible_limits(user: User) -> Select:
    return _scoped(BuyerLimit, user, None)


def visible_declarations(user: User) -> Select:
    return _scoped(ShipmentDeclaration, user,
                   IndemnityAssignment.declaration_id == ShipmentDeclaration.id)


def visible_claims(user: User) -> Select:
    return _scoped(Claim, user, IndemnityAssignment.declaration_id == Claim.declaration_id)


def visible_assignments(user: User) -> Select:
    query = select(IndemnityAssignment)
    kind = user.organisation.kind
    if kind is OrgKind.BANK:
        return query.where(*_assignments_to(user.org_id))
    return _scoped(IndemnityAssignment, user, None)


# --------------------------------------------------------------------------- lists

def policies(user: User, *, status: PolicyStatus | None = None, page: int = 1) -> Page[Policy]:
    query = visible_policies(user)
    if status is not None:
        query = query.where(Policy.status == status)
    return paginate(query.order_by(Policy.id.desc()), page)


def limits(user: User, *, policy_id: int | None = None, status: LimitStatus | None = None,
           page: int = 1) -> Page[BuyerLimit]:
    query = visible_limits(user)
    if policy_id is not None:
        query = query.where(BuyerLimit.policy_id == policy_id)
    if status is not None:
        query = query.where(BuyerLimit.status == status)
    return paginate(query.order_by(BuyerLimit.id.desc()), page)


def declarations(user: User, *, policy_id: int | None = None,
                 status: DeclarationStatus | None = None, page: int = 1
                 ) -> Page[ShipmentDeclaration]:
    query = visible_declarations(user)
    if policy_id is not None:
        query = query.where(ShipmentDeclaration.policy_id == policy_id)
    if status is not None:
        query = query.where(ShipmentDeclaration.status == status)
    return paginate(query.order_by(ShipmentDeclaration.id.desc()), page)


def claims(user: User, *, status: ClaimStatus | None = None, page: int = 1) -> Page[Claim]:
    query = visible_claims(user)
    if status is not None:
        query = query.where(Claim.status == status)
    return paginate(query.order_by(Claim.id.desc()), page)


def assignments(user: User, *, page: int = 1) -> Page[IndemnityAssignment]:
    return paginate(visible_assignments(user).order_by(IndemnityAssignment.id.desc()), page)


def history(subject: str, subject_id: int) -> list[InsuranceStatusChange]:
    return list(db.session.execute(select(InsuranceStatusChange).where(
        InsuranceStatusChange.subject == subject, InsuranceStatusChange.subject_id == subject_id)
        .order_by(InsuranceStatusChange.id)).scalars())


def limits_of(policy: Policy) -> list[BuyerLimit]:
    return list(db.session.execute(select(BuyerLimit).where(
        BuyerLimit.policy_id == policy.id).order_by(BuyerLimit.id)).scalars())


def declarations_of(limit: BuyerLimit) -> list[ShipmentDeclaration]:
    return list(db.session.execute(select(ShipmentDeclaration).where(
        ShipmentDeclaration.buyer_limit_id == limit.id)
        .order_by(ShipmentDeclaration.id)).scalars())


def claims_of(declaration: ShipmentDeclaration) -> list[Claim]:
    return list(db.session.execute(select(Claim).where(
        Claim.declaration_id == declaration.id).order_by(Claim.id)).scalars())


def assignments_of(declaration: ShipmentDeclaration) -> list[IndemnityAssignment]:
    return list(db.session.execute(select(IndemnityAssignment).where(
        IndemnityAssignment.declaration_id == declaration.id)
        .order_by(IndemnityAssignment.id)).scalars())


def recoveries_of(claim: Claim) -> list[Recovery]:
    return list(db.session.execute(select(Recovery).where(
        Recovery.claim_id == claim.id).order_by(Recovery.id)).scalars())


def report_of(declaration: ShipmentDeclaration) -> OverdueReport | None:
    return db.session.execute(select(OverdueReport).where(
        OverdueReport.declaration_id == declaration.id)).scalar_one_or_none()


def open_limits_for(user: User) -> list[BuyerLimit]:
    """The approved limits an SME can declare shipments under."""
    return list(db.session.execute(visible_limits(user).where(
        BuyerLimit.status == LimitStatus.APPROVED).order_by(BuyerLimit.buyer_name)).scalars())


# --------------------------------------------------------------------------- financing

@dataclass(frozen=True)
class Cover:
    """What insures a receivable, as the financing marketplace reads it."""
    receivable_id: int
    declaration_id: int
    policy_id: int
    policy_number: str
    insurer_org_id: int
    insured_amount: Money            # the insured part of the invoice (its currency)
    uninsured_amount: Money
    insured_outstanding: Money       # the insured part of what the buyer still owes
    coverage: Decimal                # commercial risk coverage, a fraction (0.9000)
    max_indemnity: Money             # coverage x insured outstanding (invoice currency)
    remaining_buyer_limit: Money     # in the limit's currency, after every unpaid shipment
    remaining_max_liability: Money   # in the policy currency
    buyer_limit_id: int
    limit_approved: Money            # the buyer's limit now (zero once refused or cancelled)
    limit_used: Money                # the insured part of the buyer's unpaid shipments
    limit_share: Money               # of which this receivable's
    assigned_bank_org_id: int | None  # the bank the indemnity is assigned to (active)
    status: DeclarationStatus
    overdue_reported: bool
    claim_status: ClaimStatus | None

    @property
    def limit_room(self) -> Money:
        """What the buyer's limit leaves for this receivable: the limit less the buyer's
        other unpaid insured shipments (never below zero)."""
        left = self.limit_approved - self.limit_used + self.limit_share
        return left if left.amount > 0 else Money.from_minor(0, left.currency)

    def as_tuple(self) -> tuple[Money, Decimal, Money, Money, int | None]:
        return (self.insured_amount, self.coverage, self.remaining_buyer_limit,
                self.remaining_max_liability, self.assigned_bank_org_id)


def insured_receivable_ids(receivable_ids) -> set[int]:
    """Which of these receivables have live cover (a declared, unpaid, insured shipment)."""
    ids = list(receivable_ids)
    if not ids:
        return set()
    return set(db.session.execute(select(ShipmentDeclaration.receivable_id).where(
        ShipmentDeclaration.receivable_id.in_(ids),
        ShipmentDeclaration.status.in_(list(USES_LIMIT)),
        ShipmentDeclaration.insured_amount > 0)).scalars())


def cover_for_receivable(receivable_id: int) -> Cover | None:
    """The live cover of a trade receivable (declared, unpaid, not voided), or None."""
    from finance_app.insurance import services
    from finance_app.money import round_exact
    from decimal import ROUND_HALF_UP, localcontext
    declaration = db.session.execute(select(ShipmentDeclaration).where(
        ShipmentDeclaration.receivable_id == receivable_id,
        ShipmentDeclaration.status.in_(list(USES_LIMIT)),
        ShipmentDeclaration.insured_amount > 0)
        .order_by(ShipmentDeclaration.id.desc())).scalars().first()
    if declaration is None:
        return None
    policy = db.session.get(Policy, declaration.policy_id)
    limit = db.session.get(BuyerLimit, declaration.buyer_limit_id)
    assignment = services.active_assignment(declaration.id)
    used = services.limit_used(limit)
    approved = limit.approved if (limit.status is LimitStatus.APPROVED
                                  and limit.approved is not None) \
        else Money.from_minor(0, limit.currency)
    claim = db.session.execute(select(Claim.status).where(
        Claim.declaration_id == declaration.id).order_by(Claim.id.desc())).scalars().first()
    covered = services.insured_outstanding(declaration)
    with localcontext(prec=60):
        max_indemnity = round_exact(covered.amount * policy.commercial_coverage,
                                    covered.currency, ROUND_HALF_UP)
    return Cover(
        receivable_id=receivable_id, declaration_id=declaration.id, policy_id=policy.id,
        policy_number=policy.number, insurer_org_id=policy.insurer_org_id,
        insured_amount=declaration.insured, uninsured_amount=declaration.uninsured,
        insured_outstanding=covered, coverage=policy.commercial_coverage,
        max_indemnity=max_indemnity, remaining_buyer_limit=services.limit_remaining(limit),
        remaining_max_liability=services.remaining_liability(policy),
        buyer_limit_id=limit.id, limit_approved=approved, limit_used=used,
        limit_share=Money.from_minor(declaration.limit_used_amount, limit.currency),
        assigned_bank_org_id=assignment.bank_org_id if assignment else None,
        status=declaration.status,
        overdue_reported=report_of(declaration) is not None, claim_status=claim)


def assigned_cover(bank_org_id: int) -> list[Cover]:
    """Every live cover whose indemnity is assigned to the bank (its evidence pack)."""
    ids = db.session.execute(select(IndemnityAssignment.receivable_id).where(
        IndemnityAssignment.bank_org_id == bank_org_id,
        IndemnityAssignment.status == AssignmentStatus.ACTIVE)
        .order_by(IndemnityAssignment.id)).scalars().all()
    return [c for c in (cover_for_receivable(i) for i in ids) if c is not None]
