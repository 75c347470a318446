"""The encumbrance registry's rules: pledge an asset, release it, carry it forward.

Every asset (an order, a receivable, a warehouse receipt, an insured receivable) backs at
most one financing at a time, whoever the bank. ``encumber`` locks the asset before it
looks, in a fixed order: the owning domain's row (the receipt, ...), then the registry's
``CollateralAsset`` row; the audit head comes last, at commit. Two banks pledging one
asset at once therefore queue, and the second is told the asset is already pledged; the
partial unique index refuses a second active row even if some code skips the check.

A refused pledge is itself recorded (``collateral.encumbrance_blocked``): repeated
attempts at pledged assets are what oversight looks for. The caller rolls back after the
refusal, so that event is written in a transaction of its own once the caller's ends
(see ``_blocked_attempts_outlive_rollback``), and with the caller's transaction if it
commits instead.

Domains that own an asset kind register it (``register_asset_type``): how to name an
asset in messages, how to lock its row, and what to do when its encumbrance is released
(a pledged warehouse receipt becomes released).
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from decimal import Decimal
from types import SimpleNamespace
from typing import Any, Callable

from flask_babel import gettext
from sqlalchemy import event, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from finance_app import authz, clock
from finance_app.accounts.models import Organisation, User
from finance_app.accounts.states import FilingStatus, OrgKind
from finance_app.audit import services as audit
from finance_app.collateral.models import CollateralAsset, Encumbrance
from finance_app.collateral.states import (
    ENCUMBRANCE_TRANSITIONS, AssetKind, EncumbranceAction, EncumbranceStatus,
)
from finance_app.errors import Conflict, Forbidden, NotFound, ValidationFailed
from finance_app.extensions import db
from finance_app.money import Money
from finance_app.states import next_status

log = logging.getLogger(__name__)

AssetRef = tuple[AssetKind | str, int]

_KIND_NAMES = {
    AssetKind.ORDER: lambda: gettext("order"),
    AssetKind.RECEIVABLE: lambda: gettext("receivable"),
    AssetKind.WAREHOUSE_RECEIPT: lambda: gettext("warehouse receipt"),
    AssetKind.INSURED_RECEIVABLE: lambda: gettext("insured receivable"),
}
# 动产融资统一登记 registration numbers: digits, sometimes with letters or hyphens.
_REGISTRY_REF = re.compile(r"^[0-9A-Za-z][0-9A-Za-z-]{5,39}$")
MAX_LTV_DECIMALS = 4


class AlreadyEncumbered(Conflict):
    """The asset already backs financing. The message never names the other holder."""
    code = "already_pledged"

    def __init__(self, label: str):
        super().__init__(gettext(
            "%(asset)s is already pledged as security for financing; it cannot be pledged "
            "again until that pledge is released.", asset=label))


class NotEncumbered(Conflict):
    code = "not_pledged"


# --------------------------------------------------------------------------- asset types

@dataclass(frozen=True)
class AssetType:
    """What the registry needs from the domain that owns an asset kind."""
    describe: Callable[[int], str]                      # "Warehouse receipt WR-2026-000001"
    lock: Callable[[int], None] | None = None           # lock the asset's own row
    on_released: Callable[[Encumbrance, User | None], None] | None = None


ASSET_TYPES: dict[AssetKind, AssetType] = {}


def register_asset_type(kind: AssetKind, asset_type: AssetType) -> None:
    ASSET_TYPES[AssetKind(kind)] = asset_type


def asset_label(kind: AssetKind, asset_id: int) -> str:
    asset_type = ASSET_TYPES.get(kind)
    if asset_type is not None:
        return asset_type.describe(asset_id)
    name = _KIND_NAMES[kind]()
    return f"{name[:1].upper()}{name[1:]} {asset_id}"


def _asset(kind: AssetKind | str, asset_id: Any) -> tuple[AssetKind, int]:
    try:
        kind = AssetKind(kind)
    except ValueError:
        raise ValidationFailed(gettext("'%(kind)s' is not a kind of asset that can back "
                                       "financing.", kind=kind), field="asset_kind") from None
    if isinstance(asset_id, bool) or not isinstance(asset_id, int) or asset_id <= 0:
        raise ValidationFailed(gettext("The asset id must be a positive whole number."),
                               field="asset_id")
    return kind, asset_id


def _lock_asset(kind: AssetKind, asset_id: int) -> CollateralAsset:
    """Lock the asset: its own row first (if its domain registered one), then its registry
    row, created on first use (a concurrent first use waits for the other to commit)."""
    asset_type = ASSET_TYPES.get(kind)
    if asset_type is not None and asset_type.lock is not None:
        asset_type.lock(asset_id)
    query = (select(CollateralAsset).where(CollateralAsset.asset_kind == kind,
                                           CollateralAsset.asset_id == asset_id)
             .with_for_update())
    row = db.session.execute(query).scalar_one_or_none()
    if row is None:
        insert = pg_insert if db.session.get_bind().dialect.name == "postgresql" \
            else sqlite_insert
        db.session.execute(insert(CollateralAsset).values(
            asset_kind=kind, asset_id=asset_id, created_at=clock.now())
            .on_conflict_do_nothing(index_elements=["asset_kind", "asset_id"]))
        row = db.session.execute(query).scalar_one()
    return row


def active_for(asset_kind: AssetKind | str, asset_id: int) -> Encumbrance | None:
    """The asset's active encumbrance, read afresh from the database, or None."""
    kind, asset_id = _asset(asset_kind, asset_id)
    return db.session.execute(
        select(Encumbrance).where(Encumbrance.asset_kind == kind,
                                  Encumbrance.asset_id == asset_id,
                                  Encumbrance.status == EncumbranceStatus.ACTIVE)
        .execution_options(populate_existing=True)).scalar_one_or_none()


def active_for_many(asset_kind: AssetKind | str, asset_ids: list[int]
                    ) -> dict[int, Encumbrance]:
    """``active_for`` of many assets of one kind with one query: asset id -> its active
    encumbrance, for those that have one."""
    kind = _asset(asset_kind, 1)[0]
    return {e.asset_id: e for e in db.session.execute(
        select(Encumbrance).where(Encumbrance.asset_kind == kind,
                                  Encumbrance.asset_id.in_(asset_ids),
                                  Encumbrance.status == EncumbranceStatus.ACTIVE)
        .execution_options(populate_existing=True)).scalars()}


def history_for(asset_kind: AssetKind | str, asset_id: int) -> list[Encumbrance]:
    """Every encumbrance the asset has had, oldest first."""
    kind, asset_id = _asset(asset_kind, asset_id)
    return list(db.session.execute(
        select(Encumbrance).where(Encumbrance.asset_kind == kind,
                                  Encumbrance.asset_id == asset_id)
        .order_by(Encumbrance.id)).scalars())


# --------------------------------------------------------------------------- input checks

def _holder(holder_org: Organisation | int) -> Organisation:
    org_id = holder_org.id if isinstance(holder_org, Organisation) else holder_org
    org = db.session.get(Organisation, org_id) if isinstance(org_id, int) else None
    if org is None:
        raise ValidationFailed(gettext("No organisation with that id."), field="holder")
    if org.kind is not OrgKind.BANK:
        raise ValidationFailed(gettext("Only a bank can hold a pledge; %(name)s is not a "
                                       "bank.", name=org.name), field="holder")
    if org.filing_status is not FilingStatus.APPROVED:
        raise ValidationFailed(gettext("%(name)s's filing is not approved: it cannot take "
                                       "pledges.", name=org.name), field="holder")
    return org


def check_secured_amount(amount: Money | None, field: str = "secured_amount") -> Money | None:
    if amount is None:
        return None
    if not isinstance(amount, Money):
        raise ValidationFailed(gettext("Enter the secured amount with its currency."),
                               field=field)
    if amount.amount <= 0:
        raise ValidationFailed(gettext("The secured amount must be greater than zero."),
                               field=field)
    try:
        amount.to_minor()
    except ValueError:
        raise ValidationFailed(gettext("%(currency)s amounts have no more decimals than its "
                                       "minor unit.", currency=amount.currency),
                               field=field) from None
    if amount.to_minor() > 2**63 - 1:
        raise ValidationFailed(gettext("The secured amount is too large."), field=field)
    return amount


def check_max_ltv(max_ltv: Decimal | None, field: str = "max_ltv") -> Decimal | None:
    """A loan-to-value limit is a fraction: more than 0, at most 1 (100 %), 4 decimals."""
    if max_ltv is None:
        return None
    if isinstance(max_ltv, (float, bool)) or not isinstance(max_ltv, Decimal) \
            or not max_ltv.is_finite():
        raise ValidationFailed(gettext("Enter the loan-to-value limit as a fraction such as "
                                       "0.70."), field=field)
    if not 0 < max_ltv <= 1:
        raise ValidationFailed(gettext("The loan-to-value limit is a fraction between 0 and "
                                       "1 (0.70 for 70%%)."), field=field)
    if max_ltv != max_ltv.quantize(Decimal(1).scaleb(-MAX_LTV_DECIMALS)):
        raise ValidationFailed(gettext("The loan-to-value limit has at most %(n)s decimals.",
                                       n=MAX_LTV_DECIMALS), field=field)
    return max_ltv


def check_registry_ref(ref: str | None, field: str = "registry_ref") -> str | None:
    ref = (ref or "").strip()
    if not ref:
        return None
    if not _REGISTRY_REF.match(ref):
        raise ValidationFailed(gettext(
            "A movable-property financing registration number (动产融资统一登记) has 6 to 40 "
            "letters, digits or hyphens."), field=field)
    return ref


def _text(value: str | None, limit: int, field: str) -> str | None:
    value = (value or "").strip()
    if len(value) > limit:
        raise ValidationFailed(gettext("At most %(n)s characters.", n=limit), field=field)
    return value or None


def _may_act_for_holder(actor: User, holder: Organisation, rule: str) -> None:
    authz.require_approved(actor)
    if not authz.can(actor, rule, holder):
        raise Forbidden(gettext("Only officers and approvers of %(bank)s can pledge assets "
                                "to it.", bank=holder.name))


# --------------------------------------------------------------------------- encumber

def encumber(asset_kind: AssetKind | str, asset_id: int, holder_org: Organisation | int, *,
             actor: User, financing_ref: str | None = None, financing_kind: str | None = None,
             secured_amount: Money | None = None, max_ltv: Decimal | None = None,
             registry_ref: str | None = None, consent: str | None = None) -> Encumbrance:
    """Pledge an asset to ``holder_org`` (a bank); ``AlreadyEncumbered`` if it backs
    financing already, whoever holds it. ``consent``: the holder's standing consent when
    someone else triggers the pledge (the bank's approved offer, when the SME accepts it,
    e.g. ``"offer:12"``); otherwise the actor must be one of the holder's officers."""
    kind, asset_id = _asset(asset_kind, asset_id)
    holder = _holder(holder_org)
    if consent is None:
        _may_act_for_holder(actor, holder, "collateral.encumber")
    else:
        authz.require_approved(actor)
    secured_amount = check_secured_amount(secured_amount)
    max_ltv = check_max_ltv(max_ltv)
    registry_ref = check_registry_ref(registry_ref)
    financing_ref = _text(financing_ref, 100, "financing_ref")
    financing_kind = _text(financing_kind, 40, "financing_kind")

    _lock_asset(kind, asset_id)
    existing = active_for(kind, asset_id)
    if existing is not None:
        raise _blocked(kind, asset_id, actor=actor, holder=holder, existing=existing,
                       financing_ref=financing_ref)
    encumbrance = Encumbrance(
        asset_kind=kind, asset_id=asset_id, holder_org_id=holder.id,
        financing_kind=financing_kind, financing_ref=financing_ref,
        secured_amount=secured_amount.to_minor() if secured_amount else None,
        secured_currency=secured_amount.currency if secured_amount else None,
        max_ltv=max_ltv, registry_ref=registry_ref, status=EncumbranceStatus.ACTIVE,
        since=clock.now(), created_at=clock.now(), created_by_id=actor.id)
    db.session.add(encumbrance)
    try:
        db.session.flush()
    except IntegrityError as exc:
        # Only reachable if some path skipped the lock: the database keeps the rule anyway.
        if "one_active_per_asset" not in str(exc.orig) and "encumbrances.asset_kind" \
                not in str(exc.orig):
            raise
        raise _blocked(kind, asset_id, actor=actor, holder=holder, existing=None,
                       financing_ref=financing_ref) from exc
    audit.record("collateral.encumbered", actor=actor, org_id=holder.id, obj=encumbrance,
                 changes={"asset_kind": kind, "asset_id": asset_id,
                          "financing_kind": financing_kind, "financing_ref": financing_ref,
                          "secured": str(secured_amount) if secured_amount else None,
                          "max_ltv": max_ltv, "registry_ref": registry_ref,
                          **({"consent": consent} if consent else {})})
    return encumbrance


def _blocked(kind: AssetKind, asset_id: int, *, actor: User | None, holder: Organisation,
             existing: Encumbrance | None, financing_ref: str | None) -> AlreadyEncumbered:
    """Note the refused attempt (it outlives a rollback) and build the error to raise."""
    session = db.session()
    session.info.setdefault(_BLOCKED, []).append({
        "bind": session.get_bind(),
        "actor": SimpleNamespace(id=getattr(actor, "id", None),
                                 org_id=getattr(actor, "org_id", None)),
        "org_id": holder.id,
        "object_type": "CollateralAsset",
        "object_id": f"{kind.value}:{asset_id}",
        "changes": {"asset_kind": kind, "asset_id": asset_id, "holder_org_id": holder.id,
                    "financing_ref": financing_ref,
                    "active_encumbrance_id": existing.id if existing else None},
    })
    return AlreadyEncumbered(asset_label(kind, asset_id))


_BLOCKED = "collateral_blocked_attempts"
BLOCKED_ACTION = "collateral.encumbrance_blocked"


@event.listens_for(Session, "before_commit", insert=True)
def _blocked_attempts_commit_with_the_transaction(session: Session) -> None:
    # Runs before the audit trail appends its queue (insert=True), on the outer commit only.
    if session.in_nested_transaction():
        return
    for item in session.info.pop(_BLOCKED, []):
        audit.record(BLOCKED_ACTION, actor=item["actor"], org_id=item["org_id"],
                     object_type=item["object_type"], object_id=item["object_id"],
                     changes=item["changes"], session=session)


@event.listens_for(Session, "after_transaction_end")
def _blocked_attempts_outlive_rollback(session: Session, transaction: Any) -> None:
    if transaction.parent is not None:
        return   # a savepoint ended; the outer transaction decides
    items = session.info.pop(_BLOCKED, None)
    if not items:
        return   # nothing noted, or committed with the transaction
    try:
        with Session(bind=items[0]["bind"]) as own:
            for item in items:
                audit.record(BLOCKED_ACTION, actor=item["actor"], org_id=item["org_id"],
                             object_type=item["object_type"], object_id=item["object_id"],
                             changes=item["changes"], session=own)
            own.commit()
    except Exception:   # noqa: BLE001 - never mask the refusal the caller is handling
        log.exception("could not record %d blocked pledge attempt(s)", len(items))


# --------------------------------------------------------------------------- release

def _visible_encumbrance(encumbrance_id: int, actor: User) -> Encumbrance:
    found = db.session.get(Encumbrance, encumbrance_id) \
        if isinstance(encumbrance_id, int) else None
    if found is None or not authz.can(actor, "collateral.read", found):
        raise NotFound("encumbrance", encumbrance_id)
    return found


def _locked(encumbrance: Encumbrance) -> Encumbrance:
    _lock_asset(encumbrance.asset_kind, encumbrance.asset_id)
    db.session.refresh(encumbrance)
    return encumbrance


def release(encumbrance_id: int, *, actor: User, reason: str | None = None) -> Encumbrance:
    """The holder lets the asset go. Only the holder's approvers release."""
    encumbrance = _visible_encumbrance(encumbrance_id, actor)
    authz.require_approved(actor)
    if not authz.can(actor, "collateral.release", encumbrance):
        raise Forbidden(gettext("Only an approver of the bank holding the pledge can "
                                "release it."))
    reason = _text(reason, 500, "reason")
    _locked(encumbrance)
    _end(encumbrance, EncumbranceAction.RELEASE, actor=actor, reason=reason)
    asset_type = ASSET_TYPES.get(encumbrance.asset_kind)
    if asset_type is not None and asset_type.on_released is not None:
        asset_type.on_released(encumbrance, actor)
    audit.record("collateral.released", actor=actor, org_id=encumbrance.holder_org_id,
                 obj=encumbrance, changes={"asset_kind": encumbrance.asset_kind,
                                           "asset_id": encumbrance.asset_id,
                                           "reason": reason})
    return encumbrance


def release_financed(encumbrance_id: int, *, actor: User | None, reason: str,
                     consent: str) -> Encumbrance:
    """The financing an asset secures ended (repaid in full, or called off before it was
    paid out): the platform releases the asset on the holder's standing instruction
    (``consent`` names the financing, e.g. ``"loan:12"``), whoever triggered it."""
    encumbrance = db.session.get(Encumbrance, encumbrance_id)
    if encumbrance is None:
        raise NotFound("encumbrance", encumbrance_id)
    _locked(encumbrance)
    if encumbrance.financing_ref != consent:
        raise Conflict(gettext("This pledge secures other financing."), code="not_this_pledge")
    if not encumbrance.is_active:
        return encumbrance
    reason = _text(reason, 500, "reason")
    _end(encumbrance, EncumbranceAction.RELEASE, actor=actor, reason=reason)
    asset_type = ASSET_TYPES.get(encumbrance.asset_kind)
    if asset_type is not None and asset_type.on_released is not None:
        asset_type.on_released(encumbrance, actor)
    audit.record("collateral.released", actor=actor, org_id=encumbrance.holder_org_id,
                 obj=encumbrance, changes={"asset_kind": encumbrance.asset_kind,
                                           "asset_id": encumbrance.asset_id,
                                           "reason": reason, "consent": consent})
    return encumbrance


def _end(encumbrance: Encumbrance, action: EncumbranceAction, *, actor: User | None,
         reason: str | None) -> None:
    encumbrance.status = next_status(ENCUMBRANCE_TRANSITIONS, encumbrance.status, action,
                                     what="pledge")
    encumbrance.released_at = clock.now()
    encumbrance.released_by_id = actor.id if actor else None
    encumbrance.release_reason = reason


def carry_forward(from_asset: AssetRef, to_asset: AssetRef, *, actor: User | None = None,
                  reason: str | None = None) -> Encumbrance:
    """The asset ``from_asset`` became ``to_asset`` (a financed order shipped and is now a
    receivable; a pledged receipt was split and this part stays pledged): its active
    encumbrance ends as carried forward and ``to_asset`` takes it on, same holder,
    financing, terms and date. ``AlreadyEncumbered`` if ``to_asset`` backs financing."""
    source, target = _asset(*from_asset), _asset(*to_asset)
    if source == target:
        raise ValidationFailed(gettext("An asset cannot be carried forward to itself."),
                               field="to_asset")
    for kind, asset_id in sorted((source, target)):   # a fixed order: no deadlock
        _lock_asset(kind, asset_id)
    old = active_for(*source)
    if old is None:
        raise NotEncumbered(gettext("%(asset)s is not pledged: there is nothing to carry "
                                    "forward.", asset=asset_label(*source)),
                            field="from_asset")
    existing = active_for(*target)
    if existing is not None:
        holder = db.session.get(Organisation, old.holder_org_id)
        raise _blocked(*target, actor=actor, holder=holder, existing=existing,
                       financing_ref=old.financing_ref)
    _end(old, EncumbranceAction.CARRY_FORWARD, actor=actor,
         reason=_text(reason, 500, "reason"))
    db.session.flush()   # the old row stops being active before the new one is
    new = Encumbrance(
        asset_kind=target[0], asset_id=target[1], holder_org_id=old.holder_org_id,
        financing_kind=old.financing_kind, financing_ref=old.financing_ref,
        secured_amount=old.secured_amount, secured_currency=old.secured_currency,
        max_ltv=old.max_ltv, registry_ref=old.registry_ref,
        status=EncumbranceStatus.ACTIVE, since=old.since, created_at=clock.now(),
        created_by_id=actor.id if actor else None, carried_from_id=old.id)
    db.session.add(new)
    db.session.flush()
    audit.record("collateral.carried_forward", actor=actor, org_id=old.holder_org_id,
                 obj=new, changes={"from": f"{source[0].value}:{source[1]}",
                                   "to": f"{target[0].value}:{target[1]}",
                                   "from_encumbrance_id": old.id, "reason": reason})
    return new


def lineage(encumbrance: Encumbrance) -> list[Encumbrance]:
    """The chain of encumbrances this one continues, oldest first, itself last."""
    chain = [encumbrance]
    while chain[0].carried_from_id is not None:
        chain.insert(0, db.session.get(Encumbrance, chain[0].carried_from_id))
    return chain


# --------------------------------------------------------------------------- restating terms

def restate_secured_amount(encumbrance_id: int, amount: Money, *, actor: User) -> Encumbrance:
    """The holder states what its pledge now secures (after a repayment, say)."""
    encumbrance = _holder_action(encumbrance_id, actor)
    amount = check_secured_amount(amount)
    if amount is None:
        raise ValidationFailed(gettext("Enter the secured amount with its currency."),
                               field="secured_amount")
    previous = encumbrance.secured
    encumbrance.secured_amount, encumbrance.secured_currency = amount.to_minor(), \
        amount.currency
    audit.record("collateral.secured_amount_restated", actor=actor,
                 org_id=encumbrance.holder_org_id, obj=encumbrance,
                 changes={"secured": [str(previous) if previous else None, str(amount)]})
    return encumbrance


def record_registry_reference(encumbrance_id: int, registry_ref: str, *, actor: User
                              ) -> Encumbrance:
    """The holder adds (or corrects) the national registry's registration number."""
    encumbrance = _holder_action(encumbrance_id, actor)
    ref = check_registry_ref(registry_ref)
    if ref is None:
        raise ValidationFailed(gettext("Enter the registration number."),
                               field="registry_ref")
    previous, encumbrance.registry_ref = encumbrance.registry_ref, ref
    audit.record("collateral.registry_reference_recorded", actor=actor,
                 org_id=encumbrance.holder_org_id, obj=encumbrance,
                 changes={"registry_ref": [previous, ref]})
    return encumbrance


def _holder_action(encumbrance_id: int, actor: User) -> Encumbrance:
    encumbrance = _visible_encumbrance(encumbrance_id, actor)
    authz.require_approved(actor)
    if not authz.can(actor, "collateral.manage", encumbrance):
        raise Forbidden(gettext("Only the bank holding the pledge can change it."))
    _locked(encumbrance)
    if not encumbrance.is_active:
        raise Conflict(gettext("This pledge has ended; it can no longer be changed."),
                       code="pledge_ended")
    return encumbrance

