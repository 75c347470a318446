"""Reading warehouses and receipts, scoped to who asks: an operator its own warehouses
and the receipts it issued, an SME the receipts it deposited, a bank the receipts offered
or pledged to it, the platform operator everything."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Select, exists, false, or_, select

from finance_app.accounts.models import User
from finance_app.accounts.states import OrgKind
from finance_app.collateral.models import Encumbrance
from finance_app.collateral.states import AssetKind, EncumbranceStatus
from finance_app.extensions import db
from finance_app.paging import Page, paginate
from finance_app.warehouse.models import (
    GoodsCategory, GoodsPrice, MarginCall, PledgeTerms, ReceiptOffer, ReceiptStatusChange,
    ReceiptValuation, Warehouse, WarehouseReceipt,
)
from finance_app.warehouse.states import MarginCallStatus, ReceiptStatus


def visible_receipts(user: User) -> Select:
    query = select(WarehouseReceipt)
    kind = user.organisation.kind
    if kind is OrgKind.PLATFORM_OPERATOR:
        return query
    if kind is OrgKind.WAREHOUSE_OPERATOR:
        return query.where(WarehouseReceipt.operator_org_id == user.org_id)
    if kind is OrgKind.SME:
        return query.where(WarehouseReceipt.depositor_org_id == user.org_id)
    if kind is OrgKind.BANK:
        offered = exists().where(ReceiptOffer.receipt_id == WarehouseReceipt.id,
                                 ReceiptOffer.bank_org_id == user.org_id,
                                 ReceiptOffer.withdrawn_at.is_(None))
        pledged = exists().where(Encumbrance.asset_kind == AssetKind.WAREHOUSE_RECEIPT,
                                 Encumbrance.asset_id == WarehouseReceipt.id,
                                 Encumbrance.holder_org_id == user.org_id)
        return query.where(or_(offered, pledged))
    return query.where(false())


@dataclass(frozen=True)
class ReceiptFilters:
    status: ReceiptStatus | None = None
    q: str | None = None
    pledged_to_me: bool = False


def receipts(user: User, filters: ReceiptFilters = ReceiptFilters(), *, page: int = 1
             ) -> Page[WarehouseReceipt]:
    query = visible_receipts(user)
    if filters.status is not None:
        query = query.where(WarehouseReceipt.status == filters.status)
    if filters.q:
        like = f"%{filters.q.strip()[:60]}%"
        query = query.where(or_(WarehouseReceipt.number.ilike(like),
                                WarehouseReceipt.goods_description.ilike(like),
                                WarehouseReceipt.hs_code.like(like)))
    if filters.pledged_to_me:
        query = query.where(exists().where(
            Encumbrance.asset_kind == AssetKind.WAREHOUSE_RECEIPT,
            Encumbrance.asset_id == WarehouseReceipt.id,
            Encumbrance.holder_org_id == user.org_id,
            Encumbrance.status == EncumbranceStatus.ACTIVE))
    return paginate(query.order_by(WarehouseReceipt.id.desc()), page)


def warehouses(user: User) -> list[Warehouse]:
    query = select(Warehouse).order_by(Warehouse.name)
    if user.organisation.kind is not OrgKind.PLATFORM_OPERATOR:
        query = query.where(Warehouse.operator_org_id == user.org_id)
    return list(db.session.execute(query).scalars())


def history(receipt: WarehouseReceipt) -> list[ReceiptStatusChange]:
    return list(db.session.execute(select(ReceiptStatusChange).where(
        ReceiptStatusChange.receipt_id == receipt.id).order_by(ReceiptStatusChange.id))
        .scalars())


def valuations(receipt: WarehouseReceipt) -> list[ReceiptValuation]:
    return list(db.session.execute(select(ReceiptValuation).where(
        ReceiptValuation.receipt_id == receipt.id).order_by(ReceiptValuation.id.desc()))
        .scalars())


def offers(receipt: WarehouseReceipt) -> list[ReceiptOffer]:
    return list(db.session.execute(select(ReceiptOffer).where(
        ReceiptOffer.receipt_id == receipt.id, ReceiptOffer.withdrawn_at.is_(None))
        .order_by(ReceiptOffer.id)).scalars())


def terms(encumbrance: Encumbrance | None) -> PledgeTerms | None:
    if encumbrance is None:
        return None
    return db.session.execute(select(PledgeTerms).where(
        PledgeTerms.encumbrance_id == encumbrance.id)).scalar_one_or_none()


def margin_calls(user: User, *, live_only: bool = True) -> list[MarginCall]:
    query = select(MarginCall).order_by(MarginCall.id.desc())
    if live_only:
        query = query.where(MarginCall.status != MarginCallStatus.CLOSED)
    if user.organisation.kind is not OrgKind.PLATFORM_OPERATOR:
        query = query.where(or_(MarginCall.bank_org_id == user.org_id,
                                MarginCall.depositor_org_id == user.org_id))
    return list(db.session.execute(query.limit(200)).scalars())


def calls_for(receipt: WarehouseReceipt) -> list[MarginCall]:
    return list(db.session.execute(select(MarginCall).where(
        MarginCall.receipt_id == receipt.id).order_by(MarginCall.id.desc())).scalars())


def prices(*, page: int = 1, hs_code: str | None = None) -> Page[GoodsPrice]:
    query = select(GoodsPrice).order_by(GoodsPrice.hs_code, GoodsPrice.unit,
                                        GoodsPrice.product, GoodsPrice.valid_from.desc())
    if hs_code:
        query = query.where(GoodsPrice.hs_code.like(f"{hs_code.strip()[:10]}%"))
    return paginate(query, page)


def categories() -> list[GoodsCategory]:
    return list(db.session.execute(select(GoodsCategory).order_by(GoodsCategory.hs_prefix))
                .scalars())
