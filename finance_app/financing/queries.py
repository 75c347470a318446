"""Reading financing, scoped to who asks: an SME its requests and loans, a bank the
requests sent to it, its decisions, products, facilities and loans, the platform operator
everything. A bank never sees another bank's decisions."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Select, and_, exists, false, or_, select
from sqlalchemy.orm import aliased, selectinload

from finance_app.accounts.models import User
from finance_app.accounts.states import OrgKind
from finance_app.extensions import db
from finance_app.financing.models import (
    Allocation, Contract, Decision, Facility, FinancingProduct, FinancingRequest,
    FinancingStatusChange, Instalment, Loan, Repayment, RequestTarget,
)
from finance_app.financing.states import (
    DecisionKind, LoanStatus, OfferStatus, ProductKind, RequestStatus,
)
from finance_app.paging import Page, paginate

VISIBLE_TO_SME = (OfferStatus.APPROVED, OfferStatus.ACCEPTED, OfferStatus.EXPIRED,
                  OfferStatus.LAPSED, OfferStatus.WITHDRAWN)


def _kind(user: User) -> OrgKind:
    return user.organisation.kind


# --------------------------------------------------------------------------- products

def products(user: User, *, kind: ProductKind | None = None, page: int = 1
             ) -> Page[FinancingProduct]:
    """A bank its own products (paused too); anyone else the active ones."""
    query = select(FinancingProduct).order_by(FinancingProduct.id.desc())
    if _kind(user) is OrgKind.BANK:
        query = query.where(FinancingProduct.bank_org_id == user.org_id)
    elif _kind(user) is not OrgKind.PLATFORM_OPERATOR:
        query = query.where(FinancingProduct.status == "active")
    if kind is not None:
        query = query.where(FinancingProduct.kind == kind)
    return paginate(query, page)


def facilities(user: User) -> list[Facility]:
    query = select(Facility).order_by(Facility.id.desc())
    if _kind(user) is OrgKind.BANK:
        query = query.where(Facility.bank_org_id == user.org_id)
    elif _kind(user) is OrgKind.SME:
        query = query.where(Facility.sme_org_id == user.org_id)
    elif _kind(user) is not OrgKind.PLATFORM_OPERATOR:
        return []
    return list(db.session.execute(query.limit(500)).scalars())


# --------------------------------------------------------------------------- requests

def visible_requests(user: User) -> Select:
    query = select(FinancingRequest)
    kind = _kind(user)
    if kind is OrgKind.PLATFORM_OPERATOR:
        return query
    if kind is OrgKind.SME:
        return query.where(FinancingRequest.sme_org_id == user.org_id)
    if kind is OrgKind.BANK:
        return query.where(exists().where(RequestTarget.request_id == FinancingRequest.id,
                                          RequestTarget.bank_org_id == user.org_id))
    return query.where(false())


def requests(user: User, *, status: RequestStatus | None = None, page: int = 1
             ) -> Page[FinancingRequest]:
    query = visible_requests(user)
    if status is not None:
        query = query.where(FinancingRequest.status == status)
    return paginate(query.order_by(FinancingRequest.id.desc()), page)


def decisions_visible(request: FinancingRequest, user: User) -> list[Decision]:
    """The decisions on a request ``user`` may see: the SME the approved ones (never a
    bank's draft), a bank its own, the operator all."""
    query = select(Decision).where(Decision.request_id == request.id).order_by(Decision.id)
    kind = _kind(user)
    if kind is OrgKind.BANK:
        query = query.where(Decision.bank_org_id == user.org_id)
    elif kind is OrgKind.SME:
        if request.sme_org_id != user.org_id:
            return []
        query = query.where(Decision.approved_at.is_not(None))
    elif kind is not OrgKind.PLATFORM_OPERATOR:
        return []
    return list(db.session.execute(query).scalars())


def live_offers(request: FinancingRequest, user: User) -> list[Decision]:
    """The approved offers open to acceptance, for the side-by-side comparison."""
    return [d for d in decisions_visible(request, user)
            if d.kind is DecisionKind.OFFER and d.status is OfferStatus.APPROVED]


@dataclass
class QueueRow:
    target: RequestTarget
    request: FinancingRequest
    decision: Decision | None


QUEUE_FILTERS = ("to_decide", "to_approve", "decided", "all")


def review_queue(user: User, *, show: str = "to_decide", page: int = 1) -> Page[QueueRow]:
    """The requests sent to the user's bank, with its latest decision on each:
    ``to_decide`` open requests with no live decision, ``to_approve`` decisions prepared
    and awaiting an approver, ``decided`` the rest, ``all`` everything.

    A target has at most one live (prepared or approved) decision, and a live one is its
    latest: a decision is made only when none is live, and none becomes live again. So
    the filters ask whether a live (or prepared) decision exists, which the partial
    unique index answers for each row, instead of filtering on the joined latest
    decision (which makes PostgreSQL hash every decision on the platform to count a
    page)."""
    latest = (select(Decision.id).where(Decision.target_id == RequestTarget.id)
              .order_by(Decision.id.desc()).limit(1).correlate(RequestTarget)
              .scalar_subquery())
    query = (select(RequestTarget, FinancingRequest, Decision)
             .join(FinancingRequest, FinancingRequest.id == RequestTarget.request_id)
             .outerjoin(Decision, Decision.id == latest)
             .options(selectinload(RequestTarget.product)))   # the page's, in one query
    if _kind(user) is not OrgKind.PLATFORM_OPERATOR:
        query = query.where(RequestTarget.bank_org_id == user.org_id)

    def any_decision(*statuses: OfferStatus):
        other = aliased(Decision)
        where = [other.target_id == RequestTarget.id]
        if statuses:
            where.append(other.status.in_(statuses))
        return exists().where(*where).correlate(RequestTarget)

    live = any_decision(OfferStatus.PREPARED, OfferStatus.APPROVED)
    prepared = any_decision(OfferStatus.PREPARED)
    if show == "to_decide":
        query = query.where(FinancingRequest.status == RequestStatus.SUBMITTED, ~live)
    elif show == "to_approve":
        query = query.where(prepared)
    elif show == "decided":
        query = query.where(or_(FinancingRequest.status != RequestStatus.SUBMITTED,
                                and_(any_decision(), ~prepared)))
    result = paginate(query.order_by(RequestTarget.id.desc()), page, scalars=False)
    result.items = [QueueRow(target, request, decision)
                    for target, request, decision in result.items]
    return result


# --------------------------------------------------------------------------- loans

def visible_loans(user: User) -> Select:
    query = select(Loan)
    kind = _kind(user)
    if kind is OrgKind.PLATFORM_OPERATOR:
        return query
    if kind is OrgKind.SME:
        return query.where(Loan.sme_org_id == user.org_id)
    if kind is OrgKind.BANK:
        return query.where(Loan.bank_org_id == user.org_id)
    return query.where(false())


def loans(user: User, *, status: LoanStatus | None = None, page: int = 1) -> Page[Loan]:
    query = visible_loans(user)
    if status is not None:
        query = query.where(Loan.status == status)
    return paginate(query.order_by(Loan.id.desc()), page)


def schedule(loan: Loan) -> list[Instalment]:
    return list(db.session.execute(select(Instalment).where(Instalment.loan_id == loan.id)
                                   .order_by(Instalment.number)).scalars())


def repayments(loan: Loan) -> list[Repayment]:
    return list(db.session.execute(select(Repayment).where(Repayment.loan_id == loan.id)
                                   .order_by(Repayment.id.desc())).scalars())


def allocations(repayment: Repayment) -> list[Allocation]:
    return list(db.session.execute(select(Allocation).where(
        Allocation.repayment_id == repayment.id).order_by(Allocation.id)).scalars())


def contract_for(loan: Loan) -> Contract | None:
    return db.session.execute(select(Contract).where(Contract.loan_id == loan.id)
                              ).scalar_one_or_none()


def history(obj) -> list[FinancingStatusChange]:
    return list(db.session.execute(select(FinancingStatusChange).where(
        FinancingStatusChange.object_type == type(obj).__name__,
        FinancingStatusChange.object_id == obj.id).order_by(FinancingStatusChange.id))
        .scalars())
