"""Warehouses and electronic warehouse receipts: issue, offer, pledge, release (whole or in
part), split, deliver, cancel, expire, revalue, and the margin calls that follow prices.

A receipt's pledge is its active encumbrance in the platform-wide collateral registry
(``collateral.services``), which holds at most one per receipt under a row lock and a
partial unique index. This module registers receipts there: the registry locks the
receipt's row first (so every change to a receipt and its pledge queues on one lock),
and a released encumbrance marks the receipt released.

Each receipt gets a unique number (WR-<year>-<sequence>) and a verification code that
anyone can check on the public verification page; the code is derived with an HMAC from
the number and a nonce (``RECEIPT_CODE_KEY``), so the certificate can be printed again,
and only its SHA-256 is stored.

Services never commit.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext

from flask import current_app
from flask_babel import gettext
from sqlalchemy import or_, select

from finance_app import authz, clock
from finance_app.accounts.models import Organisation, User
from finance_app.accounts.notifications import notify
from finance_app.accounts.states import FilingStatus, OrgKind
from finance_app.audit import services as audit
from finance_app.collateral import services as registry
from finance_app.collateral.models import Encumbrance
from finance_app.collateral.states import AssetKind
from finance_app.errors import Conflict, Forbidden, NotFound, ValidationFailed
from finance_app.extensions import db
from finance_app.money import Money, UnknownCurrency, minor_units, round_exact
from finance_app.warehouse.models import (
    GoodsCategory, GoodsPrice, MarginCall, PledgeTerms, ReceiptCounter, ReceiptOffer,
    ReceiptValuation, Warehouse, WarehouseReceipt,
)
from finance_app.warehouse.states import (
    BLOCKED_WHILE_PLEDGED, LIVE, MARGIN_CALL_TRANSITIONS, MarginCallAction,
    MarginCallStatus, ReceiptAction, ReceiptStatus, WarehouseKind,
)
from finance_app.states import next_status

HS_CODE = re.compile(r"^\d{6,10}$")
DEFAULT_HAIRCUT = Decimal("0.3000")    # goods in no category: 30 % off their value
LTV_PLACES = Decimal("0.0001")
VALUE_ROUNDING = ROUND_HALF_UP


class MarginCallOpen(Conflict):
    code = "margin_call_open"


class LtvLimitExceeded(ValidationFailed):
    code = "ltv_limit_exceeded"


# --------------------------------------------------------------------------- lookups

def get_warehouse(warehouse_id: int, *, actor: User) -> Warehouse:
    warehouse = db.session.get(Warehouse, warehouse_id)
    if warehouse is None or not (warehouse.operator_org_id == actor.org_id
                                 or actor.organisation.kind is OrgKind.PLATFORM_OPERATOR):
        raise NotFound("warehouse", warehouse_id)
    return warehouse


def get_receipt(receipt_id: int, *, actor: User | None = None, lock: bool = False
                ) -> WarehouseReceipt:
    query = select(WarehouseReceipt).where(WarehouseReceipt.id == receipt_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    receipt = db.session.execute(query).scalar_one_or_none()
    if receipt is None:
        raise NotFound("warehouse receipt", receipt_id)
    if actor is not None:
        authz.require(actor, "warehouse.read_receipt", receipt)
    return receipt


def active_pledge(receipt: WarehouseReceipt) -> Encumbrance | None:
    return registry.active_for(AssetKind.WAREHOUSE_RECEIPT, receipt.id)


def _label(receipt_id: int) -> str:
    receipt = db.session.get(WarehouseReceipt, receipt_id)
    number = receipt.number if receipt is not None else str(receipt_id)
    return gettext("Warehouse receipt %(number)s", number=number)


def _lock_receipt_row(receipt_id: int) -> None:
    get_receipt(receipt_id, lock=True)


def _on_released(encumbrance: Encumbrance, actor: User | None) -> None:
    receipt = get_receipt(encumbrance.asset_id, lock=True)
    if receipt.status is ReceiptStatus.PLEDGED:
        receipt.apply(ReceiptAction.RELEASE, actor=actor, encumbrance_id=encumbrance.id)
    _close_calls(encumbrance, reason="released", actor=actor)


registry.register_asset_type(AssetKind.WAREHOUSE_RECEIPT, registry.AssetType(
    describe=_label, lock=_lock_receipt_row, on_released=_on_released))


# --------------------------------------------------------------------------- input

def _text(value: str | None, field: str, limit: int, *, required: bool = True) -> str | None:
    value = (value or "").strip()
    if required and not value:
        raise ValidationFailed(gettext("This field is required."), field=field)
    if len(value) > limit:
        raise ValidationFailed(gettext("At most %(n)s characters.", n=limit), field=field)
    return value or None


def _quantity(value: Decimal, field: str = "quantity") -> Decimal:
    if isinstance(value, (float, bool)) or not isinstance(value, Decimal) or not value.is_finite():
        raise ValidationFailed(gettext("Enter the quantity as a number such as 1200 or "
                                       "12.5."), field=field)
    if value <= 0:
        raise ValidationFailed(gettext("The quantity must be greater than zero."), field=field)
    if value != value.quantize(Decimal("0.00001")) or value.adjusted() > 12:
        raise ValidationFailed(gettext("The quantity has at most 5 decimals and 13 digits."),
                               field=field)
    return value


def _price(value: Decimal, currency: str, field: str = "unit_price") -> Money:
    if isinstance(value, (float, bool)) or not isinstance(value, Decimal) or not value.is_finite():
        raise ValidationFailed(gettext("Enter the unit price as a number such as 25.80."),
                               field=field)
    try:
        minor_units(currency)
    except UnknownCurrency:
        raise ValidationFailed(gettext("'%(code)s' is not an ISO 4217 currency code.",
                                       code=currency), field="currency") from None
    if value <= 0:
        raise ValidationFailed(gettext("The unit price must be greater than zero."),
                               field=field)
    if value != value.quantize(Decimal("0.000001")) or value.adjusted() > 11:
        raise ValidationFailed(gettext("The unit price has at most 6 decimals and 12 "
                                       "digits."), field=field)
    return Money(value, currency)


def _hs_code(value: str | None) -> str:
    value = (value or "").strip().replace(".", "")
    if not HS_CODE.match(value):
        raise ValidationFailed(gettext("An HS code has 6 to 10 digits."), field="hs_code")
    return value


def _value(quantity: Decimal, unit_price: Money) -> Money:
    """Quantity times unit price, rounded once to the currency's minor units."""
    with localcontext(prec=60):
        exact = quantity * unit_price.amount
    value = round_exact(exact, unit_price.currency, VALUE_ROUNDING)
    if value.amount <= 0:
        raise ValidationFailed(gettext("The goods' value rounds to nothing."),
                               field="unit_price")
    if value.to_minor() > 2**62:
        raise ValidationFailed(gettext("The goods' value is too large."), field="quantity")
    return value


def _approved_org(org_id: int, kind: OrgKind, field: str) -> Organisation:
    org = db.session.get(Organisation, org_id) if isinstance(org_id, int) else None
    if org is None or org.kind is not kind:
        raise ValidationFailed(gettext("No such organisation of that kind."), field=field)
    if org.filing_status is not FilingStatus.APPROVED:
        raise ValidationFailed(gettext("%(name)s's filing is not approved.", name=org.name),
                               field=field)
    return org


# --------------------------------------------------------------------------- warehouses

def register_warehouse(*, actor: User, name: str, kind: WarehouseKind | str, address: str,
                       country: str) -> Warehouse:
    authz.require(actor, "warehouse.register", hide=False)
    try:
        kind = WarehouseKind(kind)
    except ValueError:
        raise ValidationFailed(gettext("Choose bonded, overseas or general."),
                               field="kind") from None
    name = _text(name, "name", 200)
    address = _text(address, "address", 300)
    country = (country or "").strip().upper()
    import pycountry
    if len(country) != 2 or pycountry.countries.get(alpha_2=country) is None:
        raise ValidationFailed(gettext("Choose the country (ISO 3166 code such as CN or PT)."),
                               field="country")
    if db.session.execute(select(Warehouse.id).where(
            Warehouse.operator_org_id == actor.org_id, Warehouse.name == name)).first():
        raise ValidationFailed(gettext("You already have a warehouse of that name."),
                               field="name")
    warehouse = Warehouse(operator_org_id=actor.org_id, name=name, kind=kind, address=address,
                          country=country, created_at=clock.now(), created_by_id=actor.id)
    db.session.add(warehouse)
    db.session.flush()
    audit.record("warehouse.registered", actor=actor, obj=warehouse,
                 changes={"name": name, "kind": kind, "country": country})
    return warehouse


# --------------------------------------------------------------------------- codes

def _code_key() -> bytes:
    key = current_app.config.get("RECEIPT_CODE_KEY") or current_app.config["SECRET_KEY"]
    return key.encode() if isinstance(key, str) else key


def verification_code(receipt: WarehouseReceipt) -> str:
    """The receipt's verification code, e.g. ``K7Q2-M9XA-3RTD-VW5P`` (80 bits)."""
    digest = hmac.new(_code_key(), f"{receipt.number}|{receipt.code_nonce}".encode(),
                      hashlib.sha256).digest()
    text = base64.b32encode(digest[:10]).decode()
    return "-".join(text[i:i + 4] for i in range(0, 16, 4))


def normalise_code(code: str | None) -> str:
    """What a person typed, as the code is written: letters upper, groups of four."""
    text = re.sub(r"[^A-Za-z2-7]", "", code or "").upper()[:32]
    return "-".join(text[i:i + 4] for i in range(0, len(text), 4))


def code_hash(code: str) -> str:
    return hashlib.sha256(normalise_code(code).encode()).hexdigest()


def _next_number(today: date) -> str:
    counter = db.session.execute(select(ReceiptCounter).where(
        ReceiptCounter.year == today.year).with_for_update()).scalar_one_or_none()
    if counter is None:
        from sqlalchemy.dialects import postgresql, sqlite
        dialect = postgresql if db.session.get_bind().dialect.name == "postgresql" else sqlite
        db.session.execute(dialect.insert(ReceiptCounter).values(year=today.year, last_seq=0)
                           .on_conflict_do_nothing())
        counter = db.session.execute(select(ReceiptCounter).where(
            ReceiptCounter.year == today.year).with_for_update()).scalar_one()
    counter.last_seq += 1
    return f"WR-{today.year}-{counter.last_seq:06d}"


# --------------------------------------------------------------------------- issue

@dataclass(frozen=True)
class Goods:
    description: str
    hs_code: str
    quantity: Decimal
    unit: str
    unit_price: Decimal
    currency: str
    grade: str | None = None
    storage_location: str | None = None
    valuation_source: str | None = None
    insured: bool = False


def issue_receipt(*, actor: User, warehouse_id: int, depositor_org_id: int, goods: Goods,
                  expiry_date: date, issue_date: date | None = None) -> WarehouseReceipt:
    """The operator issues a receipt to a depositor SME for goods it holds."""
    warehouse = db.session.get(Warehouse, warehouse_id) if isinstance(warehouse_id, int) \
        else None
    if warehouse is None or warehouse.operator_org_id != actor.org_id:
        raise ValidationFailed(gettext("Choose one of your warehouses."), field="warehouse_id")
    authz.require(actor, "warehouse.operate", warehouse, hide=False)
    depositor = _approved_org(depositor_org_id, OrgKind.SME, "depositor_org_id")
    description = _text(goods.description, "goods_description", 500)
    hs_code = _hs_code(goods.hs_code)
    quantity = _quantity(goods.quantity)
    unit = _text(goods.unit, "unit", 20)
    currency = (goods.currency or "").strip().upper()
    unit_price = _price(goods.unit_price, currency)
    issue_date = issue_date or clock.today()
    if issue_date > clock.today():
        raise ValidationFailed(gettext("The issue date cannot be in the future."),
                               field="issue_date")
    if not isinstance(expiry_date, date) or expiry_date <= issue_date:
        raise ValidationFailed(gettext("The expiry date must be after the issue date."),
                               field="expiry_date")
    if expiry_date > issue_date + timedelta(days=3 * 366):
        raise ValidationFailed(gettext("A receipt runs for at most three years."),
                               field="expiry_date")
    value = _value(quantity, unit_price)
    source = _text(goods.valuation_source, "valuation_source", 200, required=False) \
        or gettext("declared at issue by %(operator)s", operator=actor.organisation.name)
    receipt = WarehouseReceipt(
        number=_next_number(issue_date), code_nonce=secrets.token_hex(16),
        warehouse_id=warehouse.id, operator_org_id=warehouse.operator_org_id,
        depositor_org_id=depositor.id, goods_description=description, hs_code=hs_code,
        quantity=quantity, unit=unit,
        grade=_text(goods.grade, "grade", 200, required=False),
        storage_location=_text(goods.storage_location, "storage_location", 100,
                               required=False),
        unit_price=unit_price.amount, currency=currency, value_amount=value.to_minor(),
        valuation_date=issue_date, valuation_source=source[:200], insured=bool(goods.insured),
        issue_date=issue_date, expiry_date=expiry_date, status=ReceiptStatus.ISSUED,
        status_changed_at=clock.now(), created_at=clock.now(), created_by_id=actor.id)
    receipt.verification_hash = code_hash(verification_code(receipt))
    db.session.add(receipt)
    db.session.flush()
    receipt.start(ReceiptAction.ISSUE, ReceiptStatus.ISSUED, actor=actor)
    db.session.add(ReceiptValuation(receipt_id=receipt.id, unit_price=unit_price.amount,
                                    currency=currency, value_amount=value.to_minor(),
                                    valuation_date=issue_date, source=source[:200],
                                    at=clock.now()))
    notify(depositor.id, "warehouse.receipt_issued",
           dedupe_key=f"receipt:{receipt.id}:issued", link=f"/warehouse/receipts/{receipt.id}",
           number=receipt.number, warehouse=warehouse.name, goods=description)
    return receipt


# --------------------------------------------------------------------------- offers

def offer_to_banks(receipt_id: int, bank_org_ids: list[int], *, actor: User
                   ) -> list[ReceiptOffer]:
    """The depositor asks banks to consider the receipt for financing."""
    receipt = get_receipt(receipt_id, actor=actor, lock=True)
    authz.require(actor, "warehouse.offer", receipt, hide=False)
    if receipt.status not in (ReceiptStatus.ISSUED, ReceiptStatus.RELEASED,
                              ReceiptStatus.PLEDGED):
        raise Conflict(gettext("Only a receipt for goods still in the warehouse can be "
                               "offered."), field="bank_org_ids")
    if not bank_org_ids:
        raise ValidationFailed(gettext("Choose at least one bank."), field="bank_org_ids")
    offers = []
    for bank_id in sorted(set(bank_org_ids)):
        bank = _approved_org(bank_id, OrgKind.BANK, "bank_org_ids")
        offer = db.session.execute(select(ReceiptOffer).where(
            ReceiptOffer.receipt_id == receipt.id, ReceiptOffer.bank_org_id == bank.id)
        ).scalar_one_or_none()
        if offer is None:
            offer = ReceiptOffer(receipt_id=receipt.id, bank_org_id=bank.id,
                                 offered_by_id=actor.id, offered_at=clock.now())
            db.session.add(offer)
        elif offer.withdrawn_at is not None:
            offer.withdrawn_at, offer.offered_at = None, clock.now()
        else:
            offers.append(offer)
            continue
        offers.append(offer)
        notify(bank.id, "warehouse.receipt_offered",
               dedupe_key=f"receipt:{receipt.id}:offered:{bank.id}:{clock.now().isoformat()}",
               link=f"/warehouse/receipts/{receipt.id}", number=receipt.number,
               depositor=actor.organisation.name, value=str(receipt.value))
    db.session.flush()
    audit.record("warehouse.receipt_offered", actor=actor, obj=receipt,
                 changes={"banks": sorted(set(bank_org_ids))})
    return offers


def withdraw_offer(receipt_id: int, bank_org_id: int, *, actor: User) -> None:
    receipt = get_receipt(receipt_id, actor=actor, lock=True)
    authz.require(actor, "warehouse.offer", receipt, hide=False)
    offer = db.session.execute(select(ReceiptOffer).where(
        ReceiptOffer.receipt_id == receipt.id, ReceiptOffer.bank_org_id == bank_org_id,
        ReceiptOffer.withdrawn_at.is_(None))).scalar_one_or_none()
    if offer is None:
        raise NotFound("offer", bank_org_id)
    offer.withdrawn_at = clock.now()
    audit.record("warehouse.offer_withdrawn", actor=actor, obj=receipt,
                 changes={"bank_org_id": bank_org_id})


# --------------------------------------------------------------------------- pledge

def check_ltv_terms(max_ltv: Decimal | None, margin_call_ltv: Decimal | None,
                    liquidation_ltv: Decimal | None, cure_days: int | None
                    ) -> tuple[Decimal, Decimal, Decimal, int]:
    """Loan-to-value limits as fractions in order (limit < margin call < liquidation ≤ 1.5)
    and a cure period of 1 to 90 days."""
    values = []
    for value, field in ((max_ltv, "max_ltv"), (margin_call_ltv, "margin_call_ltv"),
                         (liquidation_ltv, "liquidation_ltv")):
        if isinstance(value, (float, bool)) or not isinstance(value, Decimal) \
                or not value.is_finite():
            raise ValidationFailed(gettext("Enter the ratio as a fraction such as 0.70."),
                                   field=field)
        if value != value.quantize(LTV_PLACES) or not Decimal("0") < value <= Decimal("1.5"):
            raise ValidationFailed(gettext("The ratio is a fraction above 0 and at most 1.5, "
                                           "with at most 4 decimals."), field=field)
        values.append(value)
    limit, call, liquidation = values
    if not limit < call < liquidation:
        raise ValidationFailed(gettext("The thresholds go up: the limit below the margin "
                                       "call, the margin call below liquidation."),
                               field="margin_call_ltv")
    if limit > 1:
        raise ValidationFailed(gettext("The loan-to-value limit is at most 1 (100%%)."),
                               field="max_ltv")
    if isinstance(cure_days, bool) or not isinstance(cure_days, int) or not 1 <= cure_days <= 90:
        raise ValidationFailed(gettext("The cure period is 1 to 90 days."), field="cure_days")
    return limit, call, liquidation, cure_days


def pledge_receipt(receipt_id: int, *, actor: User, principal: Money, max_ltv: Decimal,
                   margin_call_ltv: Decimal, liquidation_ltv: Decimal, cure_days: int,
                   financing_ref: str | None = None, registry_ref: str | None = None
                   ) -> Encumbrance:
    """A bank registers its pledge of a receipt offered to it, securing ``principal``.
    At most one pledge per receipt across the platform: a second bank is told the receipt
    is already pledged (and the attempt is recorded)."""
    if actor.organisation.kind is not OrgKind.BANK:
        raise Forbidden(gettext("Only a bank can take a pledge of a warehouse receipt."))
    receipt = get_receipt(receipt_id, actor=actor, lock=True)
    authz.require(actor, "warehouse.pledge", receipt, hide=False)
    return _pledge(receipt, actor.organisation, actor=actor, principal=principal,
                   max_ltv=max_ltv, margin_call_ltv=margin_call_ltv,
                   liquidation_ltv=liquidation_ltv, cure_days=cure_days,
                   financing_ref=financing_ref, registry_ref=registry_ref)


def pledge_for_loan(receipt_id: int, bank: Organisation, *, actor: User, principal: Money,
                    max_ltv: Decimal, margin_call_ltv: Decimal, liquidation_ltv: Decimal,
                    cure_days: int, financing_ref: str, consent: str) -> Encumbrance:
    """The depositor accepts a bank's approved financing offer: its receipt is pledged to
    the bank with the offer's terms (``consent`` names the offer)."""
    receipt = get_receipt(receipt_id, lock=True)
    if receipt.depositor_org_id != actor.org_id:
        raise NotFound("warehouse receipt", receipt_id)
    return _pledge(receipt, bank, actor=actor, principal=principal, max_ltv=max_ltv,
                   margin_call_ltv=margin_call_ltv, liquidation_ltv=liquidation_ltv,
                   cure_days=cure_days, financing_ref=financing_ref, consent=consent)


def _pledge(receipt: WarehouseReceipt, bank: Organisation, *, actor: User, principal: Money,
            max_ltv: Decimal, margin_call_ltv: Decimal, liquidation_ltv: Decimal,
            cure_days: int, financing_ref: str | None, registry_ref: str | None = None,
            consent: str | None = None) -> Encumbrance:
    limit, call, liquidation, cure_days = check_ltv_terms(max_ltv, margin_call_ltv,
                                                          liquidation_ltv, cure_days)
    registry.check_secured_amount(principal, field="principal")
    if receipt.status not in (ReceiptStatus.ISSUED, ReceiptStatus.RELEASED,
                              ReceiptStatus.PLEDGED):
        next_status_or_refuse(receipt, ReceiptAction.PLEDGE)
    if receipt.expiry_date <= clock.today():
        raise Conflict(gettext("The receipt expires today or has expired; it cannot be "
                               "pledged."), field="receipt_id")
    if receipt.status is not ReceiptStatus.PLEDGED:   # (pledged: the registry refuses)
        ltv = loan_to_value(receipt, principal)
        if ltv.ratio > limit:
            raise LtvLimitExceeded(gettext(
                "%(principal)s against goods worth %(value)s less a %(haircut)s haircut "
                "(%(net)s) is a loan-to-value of %(ltv)s, above the limit of %(limit)s.",
                principal=str(principal), value=str(ltv.value), haircut=_pct(ltv.haircut),
                net=str(ltv.net_value), ltv=_pct(ltv.ratio), limit=_pct(limit)),
                field="principal")
    encumbrance = registry.encumber(
        AssetKind.WAREHOUSE_RECEIPT, receipt.id, bank, actor=actor,
        financing_ref=financing_ref, financing_kind="warehouse_receipt_loan",
        secured_amount=principal, max_ltv=limit, registry_ref=registry_ref, consent=consent)
    db.session.add(PledgeTerms(encumbrance_id=encumbrance.id, receipt_id=receipt.id,
                               margin_call_ltv=call, liquidation_ltv=liquidation,
                               cure_days=cure_days))
    receipt.apply(ReceiptAction.PLEDGE, actor=actor, encumbrance_id=encumbrance.id)
    notify(receipt.depositor_org_id, "warehouse.receipt_pledged",
           dedupe_key=f"receipt:{receipt.id}:pledged:{encumbrance.id}",
           link=f"/warehouse/receipts/{receipt.id}", number=receipt.number,
           bank=bank.name, principal=str(principal))
    return encumbrance


def next_status_or_refuse(receipt: WarehouseReceipt, action: ReceiptAction) -> None:
    if receipt.status is ReceiptStatus.PLEDGED and action in BLOCKED_WHILE_PLEDGED:
        raise Conflict(gettext(
            "Receipt %(number)s is pledged to a bank: its goods cannot be delivered out, "
            "and it cannot be cancelled or split, until the bank releases the pledge.",
            number=receipt.number), code="receipt_pledged", field="receipt_id")
    next_status(_transitions(), receipt.status, action, what="warehouse receipt")


def _transitions():
    from finance_app.warehouse.states import RECEIPT_TRANSITIONS
    return RECEIPT_TRANSITIONS


def _pct(ratio: Decimal) -> str:
    return f"{(ratio * 100).quantize(Decimal('0.01'))}%"


# --------------------------------------------------------------------------- valuation

def haircut_for(hs_code: str, categories: dict[str, Decimal] | None = None) -> Decimal:
    """The haircut of the longest HS prefix with a category, else the default.
    ``categories``: every category's haircut by prefix, read once by a caller valuing
    many receipts (else the prefixes are looked up)."""
    prefixes = [hs_code[:n] for n in range(len(hs_code), 1, -1)]
    if categories is not None:
        return next((categories[p] for p in prefixes if p in categories), DEFAULT_HAIRCUT)
    found = db.session.execute(select(GoodsCategory.hs_prefix, GoodsCategory.haircut).where(
        GoodsCategory.hs_prefix.in_(prefixes))).all()
    if not found:
        return DEFAULT_HAIRCUT
    return max(found, key=lambda row: len(row[0]))[1]


def _categories() -> dict[str, Decimal]:
    return {prefix: haircut for prefix, haircut in db.session.execute(
        select(GoodsCategory.hs_prefix, GoodsCategory.haircut))}


@dataclass(frozen=True)
class Ltv:
    principal: Money
    value: Money                  # the receipt's value, in the principal's currency
    haircut: Decimal
    net_value: Money              # value less the haircut
    ratio: Decimal                # principal / net value, 4 decimals
    rate_note: str | None = None  # the exchange rate used, if any


def loan_to_value(receipt: WarehouseReceipt, principal: Money | Encumbrance,
                  value: Money | None = None, *, haircut: Decimal | None = None,
                  rate=None) -> Ltv:
    """Outstanding principal / (current value less haircut), in the principal's currency
    through the ledger's exchange rates (a missing rate is an error, never a guess).
    ``value``: another value than the receipt's (what a partial release would leave).
    ``haircut`` and ``rate`` (a function of base and quote giving today's quote): what a
    caller valuing many receipts has already found."""
    if isinstance(principal, Encumbrance):
        principal = principal.secured
    if principal is None:
        raise ValidationFailed(gettext("The pledge states no principal."), field="principal")
    value, note = value or receipt.value, None
    if value.currency != principal.currency:
        from finance_app.ledger.rates import find_rate
        quote = rate(value.currency, principal.currency) if rate is not None \
            else find_rate(value.currency, principal.currency, clock.today())
        with localcontext(prec=60):
            value = round_exact(value.amount * quote.rate, principal.currency, ROUND_HALF_UP)
        note = f"1 {quote.base} = {quote.rate.normalize():f} {quote.quote} ({quote.rate_date})"
    haircut = haircut_for(receipt.hs_code) if haircut is None else haircut
    with localcontext(prec=60):
        net = round_exact(value.amount * (1 - haircut), principal.currency, ROUND_HALF_UP)
    if net.amount <= 0:
        ratio = Decimal("9.9999")
    else:
        with localcontext(prec=60):
            ratio = min(Decimal("9.9999"), (principal.amount / net.amount).quantize(
                LTV_PLACES, rounding=ROUND_HALF_UP))
    return Ltv(principal, value, haircut, net, ratio, note)


def _terms(encumbrance: Encumbrance) -> PledgeTerms | None:
    return db.session.execute(select(PledgeTerms).where(
        PledgeTerms.encumbrance_id == encumbrance.id)).scalar_one_or_none()


def _live_call(encumbrance: Encumbrance) -> MarginCall | None:
    return db.session.execute(select(MarginCall).where(
        MarginCall.encumbrance_id == encumbrance.id,
        MarginCall.status != MarginCallStatus.CLOSED).with_for_update()).scalar_one_or_none()


def _call_action(call: MarginCall, action: MarginCallAction, *, reason: str,
                 actor: User | None) -> None:
    before = call.status
    call.status = next_status(MARGIN_CALL_TRANSITIONS, call.status, action, what="margin call")
    if action is MarginCallAction.ESCALATE:
        call.escalated_at, call.escalation_reason = clock.now(), reason
    else:
        call.closed_at, call.close_reason = clock.now(), reason
    audit.record(f"warehouse.margin_call_{action.value}", actor=actor,
                 org_id=call.bank_org_id, obj=call,
                 changes={"status": [before.value, call.status.value], "reason": reason,
                          "ltv": call.last_ltv})


def evaluate_pledge(receipt: WarehouseReceipt, *, actor: User | None = None,
                    today: date | None = None) -> MarginCall | None:
    """Compare the pledged receipt's LTV with its terms: open a call on a crossing (once),
    escalate past the cure period or above liquidation, close when back within the limit.
    Returns the live call, if any."""
    encumbrance = active_pledge(receipt)
    if encumbrance is None:
        return None
    terms = _terms(encumbrance)
    if terms is None:
        return None
    return _evaluate(receipt, encumbrance, terms, _live_call(encumbrance),
                     loan_to_value(receipt, encumbrance), actor=actor,
                     today=today or clock.today())


def _evaluate(receipt: WarehouseReceipt, encumbrance: Encumbrance, terms: PledgeTerms,
              call: MarginCall | None, ltv: Ltv, *, actor: User | None, today: date
              ) -> MarginCall | None:
    """``evaluate_pledge`` on what was looked up: the pledge, its terms, its live call
    (locked) and its LTV."""
    link = f"/warehouse/receipts/{receipt.id}"
    if call is None:
        if ltv.ratio <= terms.margin_call_ltv:
            return None
        call = MarginCall(receipt_id=receipt.id, encumbrance_id=encumbrance.id,
                          bank_org_id=encumbrance.holder_org_id,
                          depositor_org_id=receipt.depositor_org_id,
                          status=MarginCallStatus.OPEN, opened_at=clock.now(),
                          cure_deadline=today + timedelta(days=terms.cure_days),
                          ltv_at_open=ltv.ratio, last_ltv=ltv.ratio,
                          threshold=terms.margin_call_ltv,
                          target_ltv=encumbrance.max_ltv or terms.margin_call_ltv)
        db.session.add(call)
        db.session.flush()
        audit.record("warehouse.margin_call_opened", actor=actor,
                     org_id=encumbrance.holder_org_id, obj=call,
                     changes={"receipt": receipt.number, "ltv": ltv.ratio,
                              "threshold": terms.margin_call_ltv,
                              "cure_deadline": call.cure_deadline})
        for org_id in (receipt.depositor_org_id, encumbrance.holder_org_id):
            notify(org_id, "warehouse.margin_call_opened",
                   dedupe_key=f"margin_call:{call.id}:opened:{org_id}", link=link,
                   number=receipt.number, ltv=_pct(ltv.ratio),
                   threshold=_pct(terms.margin_call_ltv), target=_pct(call.target_ltv),
                   deadline=call.cure_deadline.isoformat())
    else:
        call.last_ltv = ltv.ratio
        if ltv.ratio <= call.target_ltv:
            _call_action(call, MarginCallAction.CLOSE, reason="cured", actor=actor)
            for org_id in (receipt.depositor_org_id, encumbrance.holder_org_id):
                notify(org_id, "warehouse.margin_call_closed",
                       dedupe_key=f"margin_call:{call.id}:closed:{org_id}", link=link,
                       number=receipt.number, ltv=_pct(ltv.ratio))
            return None
    if call.status is MarginCallStatus.OPEN and (
            ltv.ratio > terms.liquidation_ltv or today > call.cure_deadline):
        reason = "above_liquidation" if ltv.ratio > terms.liquidation_ltv \
            else "cure_period_passed"
        _call_action(call, MarginCallAction.ESCALATE, reason=reason, actor=actor)
        notify(encumbrance.holder_org_id, "warehouse.margin_call_escalated",
               dedupe_key=f"margin_call:{call.id}:escalated", link=link,
               number=receipt.number, ltv=_pct(ltv.ratio),
               liquidation=_pct(terms.liquidation_ltv),
               reason=gettext("above the liquidation threshold")
               if reason == "above_liquidation" else gettext("the cure period has passed"))
    return call


def _close_calls(encumbrance: Encumbrance, *, reason: str, actor: User | None) -> None:
    call = _live_call(encumbrance)
    if call is not None:
        _call_action(call, MarginCallAction.CLOSE, reason=reason, actor=actor)


def live_call_for(receipt: WarehouseReceipt) -> MarginCall | None:
    encumbrance = active_pledge(receipt)
    if encumbrance is None:
        return None
    return db.session.execute(select(MarginCall).where(
        MarginCall.encumbrance_id == encumbrance.id,
        MarginCall.status != MarginCallStatus.CLOSED)).scalar_one_or_none()


def restate_principal(receipt_id: int, principal: Money, *, actor: User) -> Encumbrance:
    """The bank states what its pledge now secures (after a repayment): the LTV is
    looked at again, which may close a margin call."""
    receipt = get_receipt(receipt_id, actor=actor, lock=True)
    encumbrance = active_pledge(receipt)
    if encumbrance is None:
        raise Conflict(gettext("The receipt is not pledged."), field="receipt_id")
    if principal is not None and encumbrance.secured is not None \
            and principal.currency != encumbrance.secured.currency:
        raise ValidationFailed(gettext("State the principal in %(currency)s, the pledge's "
                                       "currency.", currency=encumbrance.secured.currency),
                               field="principal")
    registry.restate_secured_amount(encumbrance.id, principal, actor=actor)
    evaluate_pledge(receipt, actor=actor)
    return encumbrance


# --------------------------------------------------------------------------- release

def release_pledge(receipt_id: int, *, actor: User, reason: str | None = None) -> WarehouseReceipt:
    """The pledgee lets the whole receipt go (only its approvers)."""
    receipt = get_receipt(receipt_id, actor=actor, lock=True)
    encumbrance = active_pledge(receipt)
    if encumbrance is None:
        raise Conflict(gettext("Receipt %(number)s is not pledged.", number=receipt.number),
                       field="receipt_id")
    if live_call_for(receipt) is not None and authz.can(actor, "collateral.release",
                                                        encumbrance):
        raise MarginCallOpen(gettext("A margin call is open on receipt %(number)s: releases "
                                     "are frozen until it is cured (restate the principal "
                                     "once it is repaid).", number=receipt.number),
                             field="receipt_id")
    registry.release(encumbrance.id, actor=actor, reason=reason)
    notify(receipt.depositor_org_id, "warehouse.receipt_released",
           dedupe_key=f"receipt:{receipt.id}:released:{encumbrance.id}",
           link=f"/warehouse/receipts/{receipt.id}", number=receipt.number,
           bank=actor.organisation.name)
    return receipt


def _split_value(receipt: WarehouseReceipt, part: Decimal) -> tuple[Money, Money]:
    """The value of ``part`` of the receipt's quantity and of the rest, adding up exactly
    to the receipt's value."""
    with localcontext(prec=60):
        share = round_exact(receipt.value.amount * part / receipt.quantity, receipt.currency,
                            ROUND_HALF_UP)
    return share, receipt.value - share


def _children(receipt: WarehouseReceipt, first: Decimal, *, actor: User,
              statuses: tuple[ReceiptStatus, ReceiptStatus], note: str
              ) -> tuple[WarehouseReceipt, WarehouseReceipt]:
    second = receipt.quantity - first
    value_first, value_second = _split_value(receipt, first)
    parts = []
    for n, (quantity, value, status) in enumerate(
            ((first, value_first, statuses[0]), (second, value_second, statuses[1])), start=1):
        child = WarehouseReceipt(
            number=f"{receipt.number}-{n}", code_nonce=secrets.token_hex(16),
            warehouse_id=receipt.warehouse_id, operator_org_id=receipt.operator_org_id,
            depositor_org_id=receipt.depositor_org_id,
            goods_description=receipt.goods_description, hs_code=receipt.hs_code,
            quantity=quantity, unit=receipt.unit, grade=receipt.grade,
            storage_location=receipt.storage_location, unit_price=receipt.unit_price,
            currency=receipt.currency, value_amount=value.to_minor(),
            valuation_date=receipt.valuation_date, valuation_source=receipt.valuation_source,
            insured=receipt.insured, issue_date=receipt.issue_date,
            expiry_date=receipt.expiry_date, status=status, status_changed_at=clock.now(),
            parent_id=receipt.id, created_at=clock.now(), created_by_id=actor.id)
        child.verification_hash = code_hash(verification_code(child))
        db.session.add(child)
        db.session.flush()
        child.start(ReceiptAction.SPLIT_FROM, status, actor=actor, note=note)
        parts.append(child)
    assert parts[0].value_amount + parts[1].value_amount == receipt.value_amount
    assert parts[0].quantity + parts[1].quantity == receipt.quantity
    return parts[0], parts[1]


def release_part(receipt_id: int, quantity: Decimal, *, actor: User,
                 reason: str | None = None) -> tuple[WarehouseReceipt, WarehouseReceipt]:
    """Part of the loan was repaid and the bank releases part of the goods: the receipt
    splits into a released part (``quantity``) and a still-pledged part, whose pledge
    carries the original forward. Refused if the LTV of what stays pledged would exceed
    the pledge's limit, or while a margin call is open."""
    quantity = _quantity(quantity)
    receipt = get_receipt(receipt_id, actor=actor, lock=True)
    encumbrance = active_pledge(receipt)
    if encumbrance is None:
        raise Conflict(gettext("Receipt %(number)s is not pledged.", number=receipt.number),
                       field="receipt_id")
    authz.require_approved(actor)
    if not authz.can(actor, "collateral.release", encumbrance):
        raise Forbidden(gettext("Only an approver of the bank holding the pledge can "
                                "release it."))
    if quantity >= receipt.quantity:
        raise ValidationFailed(gettext("Release less than the whole quantity (%(q)s %(unit)s); "
                                       "to release all of it, release the pledge.",
                                       q=f"{receipt.quantity.normalize():f}", unit=receipt.unit),
                               field="quantity")
    if live_call_for(receipt) is not None:
        raise MarginCallOpen(gettext("A margin call is open on receipt %(number)s: releases "
                                     "are frozen until it is cured.", number=receipt.number),
                             field="quantity")
    kept_quantity = receipt.quantity - quantity
    _, kept_value = _split_value(receipt, quantity)
    kept = loan_to_value(receipt, encumbrance, value=kept_value)
    limit = encumbrance.max_ltv
    if limit is not None and kept.ratio > limit:
        raise LtvLimitExceeded(gettext(
            "Releasing %(released)s %(unit)s leaves %(kept)s %(unit)s worth %(value)s, "
            "%(net)s after a %(haircut)s haircut, against %(principal)s outstanding: a "
            "loan-to-value of %(ltv)s, above the limit of %(limit)s.",
            released=f"{quantity.normalize():f}", kept=f"{kept_quantity.normalize():f}",
            unit=receipt.unit, value=str(kept.value), net=str(kept.net_value),
            haircut=_pct(kept.haircut), principal=str(kept.principal), ltv=_pct(kept.ratio),
            limit=_pct(limit)), field="quantity")
    receipt.apply(ReceiptAction.PARTIAL_RELEASE, actor=actor, encumbrance_id=encumbrance.id,
                  note=reason)
    released, still = _children(receipt, quantity, actor=actor,
                                statuses=(ReceiptStatus.RELEASED, ReceiptStatus.PLEDGED),
                                note=gettext("split from %(number)s by a partial release",
                                             number=receipt.number))
    carried = registry.carry_forward((AssetKind.WAREHOUSE_RECEIPT, receipt.id),
                                     (AssetKind.WAREHOUSE_RECEIPT, still.id), actor=actor,
                                     reason=reason or "partial release")
    terms = _terms(encumbrance)
    if terms is not None:
        db.session.add(PledgeTerms(encumbrance_id=carried.id, receipt_id=still.id,
                                   margin_call_ltv=terms.margin_call_ltv,
                                   liquidation_ltv=terms.liquidation_ltv,
                                   cure_days=terms.cure_days))
    db.session.execute(ReceiptOffer.__table__.insert(), [
        {"receipt_id": child.id, "bank_org_id": offer.bank_org_id,
         "offered_by_id": offer.offered_by_id, "offered_at": offer.offered_at,
         "withdrawn_at": offer.withdrawn_at}
        for offer in db.session.execute(select(ReceiptOffer).where(
            ReceiptOffer.receipt_id == receipt.id)).scalars()
        for child in (released, still)])
    notify(receipt.depositor_org_id, "warehouse.receipt_partly_released",
           dedupe_key=f"receipt:{receipt.id}:partly_released",
           link=f"/warehouse/receipts/{released.id}", number=receipt.number,
           released=released.number, kept=still.number)
    return released, still


# --------------------------------------------------------------------------- operator

def split_receipt(receipt_id: int, quantity: Decimal, *, actor: User
                  ) -> tuple[WarehouseReceipt, WarehouseReceipt]:
    """The operator divides a free receipt in two (to sell or pledge part of the goods)."""
    quantity = _quantity(quantity)
    receipt = get_receipt(receipt_id, actor=actor, lock=True)
    authz.require(actor, "warehouse.operate", receipt, hide=False)
    next_status_or_refuse(receipt, ReceiptAction.SPLIT)
    if quantity >= receipt.quantity:
        raise ValidationFailed(gettext("Split off less than the whole quantity."),
                               field="quantity")
    status = receipt.status
    receipt.apply(ReceiptAction.SPLIT, actor=actor)
    return _children(receipt, quantity, actor=actor, statuses=(status, status),
                     note=gettext("split from %(number)s", number=receipt.number))


def deliver(receipt_id: int, *, actor: User, note: str | None = None) -> WarehouseReceipt:
    """The goods leave the warehouse."""
    receipt = get_receipt(receipt_id, actor=actor, lock=True)
    authz.require(actor, "warehouse.operate", receipt, hide=False)
    next_status_or_refuse(receipt, ReceiptAction.DELIVER)
    receipt.apply(ReceiptAction.DELIVER, actor=actor,
                  note=_text(note, "note", 500, required=False))
    return receipt


def cancel(receipt_id: int, *, actor: User, reason: str) -> WarehouseReceipt:
    receipt = get_receipt(receipt_id, actor=actor, lock=True)
    authz.require(actor, "warehouse.operate", receipt, hide=False)
    reason = _text(reason, "reason", 500)
    next_status_or_refuse(receipt, ReceiptAction.CANCEL)
    receipt.apply(ReceiptAction.CANCEL, actor=actor, note=reason)
    notify(receipt.depositor_org_id, "warehouse.receipt_cancelled",
           dedupe_key=f"receipt:{receipt.id}:cancelled",
           link=f"/warehouse/receipts/{receipt.id}", number=receipt.number, reason=reason)
    return receipt


def set_haircut(hs_prefix: str, haircut: Decimal, *, actor: User, name: str) -> GoodsCategory:
    authz.require(actor, "warehouse.set_haircut", hide=False)
    prefix = (hs_prefix or "").strip()
    if not re.fullmatch(r"\d{2,10}", prefix):
        raise ValidationFailed(gettext("An HS prefix has 2 to 10 digits (a chapter such as "
                                       "85 or a heading such as 8517)."), field="hs_prefix")
    if isinstance(haircut, (float, bool)) or not isinstance(haircut, Decimal) \
            or not haircut.is_finite() or not Decimal(0) <= haircut < 1 \
            or haircut != haircut.quantize(LTV_PLACES):
        raise ValidationFailed(gettext("The haircut is a fraction from 0 to below 1 (0.30 "
                                       "for 30%%), with at most 4 decimals."), field="haircut")
    name = _text(name, "name", 200)
    category = db.session.execute(select(GoodsCategory).where(
        GoodsCategory.hs_prefix == prefix).with_for_update()).scalar_one_or_none()
    before = category.haircut if category else None
    if category is None:
        category = GoodsCategory(hs_prefix=prefix, name=name, haircut=haircut,
                                 updated_at=clock.now(), updated_by_id=actor.id)
        db.session.add(category)
    else:
        category.name, category.haircut = name, haircut
        category.updated_at, category.updated_by_id = clock.now(), actor.id
    db.session.flush()
    audit.record("warehouse.haircut_set", actor=actor, obj=category,
                 changes={"hs_prefix": prefix, "haircut": [before, haircut], "name": name})
    _evaluate_matching(lambda r: r.hs_code.startswith(prefix), actor=actor)
    return category


# --------------------------------------------------------------------------- prices

@dataclass(frozen=True)
class PriceInput:
    hs_code: str
    unit: str
    unit_price: Decimal
    currency: str
    valid_from: date
    valid_to: date | None = None
    product: str | None = None
    source: str | None = None


def enter_price(price: PriceInput, *, actor: User, revalue: bool = True) -> GoodsPrice:
    """A price for goods from a date; the open period of the goods' current price ends the
    day before. Periods never overlap. Live receipts of those goods are revalued when the
    price applies today."""
    authz.require(actor, "warehouse.set_haircut", hide=False)
    hs_code = _hs_code(price.hs_code)
    unit = _text(price.unit, "unit", 20)
    product = _text(price.product, "product", 100, required=False) or ""
    currency = (price.currency or "").strip().upper()
    money = _price(price.unit_price, currency)
    if not isinstance(price.valid_from, date):
        raise ValidationFailed(gettext("Enter the date the price is valid from."),
                               field="valid_from")
    if price.valid_to is not None and price.valid_to < price.valid_from:
        raise ValidationFailed(gettext("The price's period ends before it starts."),
                               field="valid_to")
    source = _text(price.source, "source", 200, required=False) \
        or gettext("entered by %(email)s", email=actor.email)
    same = (GoodsPrice.hs_code == hs_code, GoodsPrice.unit == unit,
            GoodsPrice.product == product)
    existing = list(db.session.execute(select(GoodsPrice).where(*same)
                                       .order_by(GoodsPrice.valid_from)
                                       .with_for_update()).scalars())
    end = price.valid_to
    for other in existing:
        other_end = other.valid_to
        if other.valid_from == price.valid_from:
            raise Conflict(gettext("There is already a price of these goods from %(date)s.",
                                   date=other.valid_from.isoformat()), field="valid_from")
        if other.valid_from > price.valid_from:
            if end is None:
                end = other.valid_from - timedelta(days=1)   # up to the next known price
            elif end >= other.valid_from:
                raise Conflict(gettext("The period overlaps the price valid from %(date)s.",
                                       date=other.valid_from.isoformat()), field="valid_to")
        elif other_end is None or other_end >= price.valid_from:
            if other_end is not None and other_end > (end or other_end):
                raise Conflict(gettext("The period lies inside the price valid from "
                                       "%(date)s.", date=other.valid_from.isoformat()),
                               field="valid_from")
            other.valid_to = price.valid_from - timedelta(days=1)
    row = GoodsPrice(hs_code=hs_code, unit=unit, product=product, unit_price=money.amount,
                     currency=currency, valid_from=price.valid_from, valid_to=end,
                     source=source[:200], entered_by_id=actor.id, created_at=clock.now())
    db.session.add(row)
    db.session.flush()
    audit.record("warehouse.price_entered", actor=actor, obj=row,
                 changes={"hs_code": hs_code, "unit": unit, "product": product,
                          "unit_price": str(money), "valid_from": price.valid_from,
                          "valid_to": end, "source": source})
    if revalue and row.valid_from <= clock.today() and (end is None or end >= clock.today()):
        revalue_goods(row, actor=actor)
    return row


def current_price(receipt: WarehouseReceipt, on: date) -> GoodsPrice | None:
    """The price valid on ``on`` for the receipt's goods: its grade's if there is one,
    else its HS code's for any product."""
    for product in ((receipt.grade, "") if receipt.grade else ("",)):
        found = db.session.execute(select(GoodsPrice).where(
            GoodsPrice.hs_code == receipt.hs_code, GoodsPrice.unit == receipt.unit,
            GoodsPrice.product == product, GoodsPrice.valid_from <= on,
            or_(GoodsPrice.valid_to.is_(None), GoodsPrice.valid_to >= on))
            .order_by(GoodsPrice.valid_from.desc())).scalars().first()
        if found is not None:
            return found
    return None


def revalue_goods(price: GoodsPrice, *, actor: User | None, today: date | None = None) -> int:
    """Revalue every live receipt of the price's goods by its current price; pledged ones
    are then checked against their margin terms. Returns how many were revalued."""
    today = today or clock.today()
    conditions = [WarehouseReceipt.hs_code == price.hs_code,
                  WarehouseReceipt.unit == price.unit,
                  WarehouseReceipt.status.in_(list(LIVE) + [ReceiptStatus.EXPIRED])]
    if price.product:
        conditions.append(WarehouseReceipt.grade == price.product)
    receipts = list(db.session.execute(select(WarehouseReceipt).where(*conditions)
                                       .order_by(WarehouseReceipt.id)
                                       .with_for_update()).scalars())
    count = 0
    for receipt in receipts:
        applies = current_price(receipt, today)
        if applies is None or applies.id != price.id:
            continue   # a more specific price (its grade's) applies to this one
        last = db.session.execute(select(ReceiptValuation.price_id).where(
            ReceiptValuation.receipt_id == receipt.id)
            .order_by(ReceiptValuation.id.desc())).scalars().first()
        if last == price.id:
            continue   # valued at this price already
        value = _value(receipt.quantity, price.price)
        previous = receipt.value
        receipt.unit_price, receipt.currency = price.unit_price, price.currency
        receipt.value_amount, receipt.valuation_date = value.to_minor(), today
        receipt.valuation_source = f"{price.source} ({price.valid_from.isoformat()})"[:200]
        db.session.add(ReceiptValuation(receipt_id=receipt.id, price_id=price.id,
                                        unit_price=price.unit_price, currency=price.currency,
                                        value_amount=value.to_minor(), valuation_date=today,
                                        source=receipt.valuation_source, at=clock.now()))
        audit.record("warehouse.receipt_revalued", actor=actor,
                     org_id=receipt.operator_org_id, obj=receipt,
                     changes={"value": [str(previous), str(value)], "price_id": price.id})
        count += 1
        if receipt.status is ReceiptStatus.PLEDGED:
            evaluate_pledge(receipt, actor=actor, today=today)
    return count


def _evaluate_matching(match, *, actor: User | None) -> None:
    for receipt in db.session.execute(select(WarehouseReceipt).where(
            WarehouseReceipt.status == ReceiptStatus.PLEDGED)).scalars():
        if match(receipt):
            evaluate_pledge(receipt, actor=actor)


PRICE_COLUMNS = ("hs_code", "unit", "product", "unit_price", "currency", "valid_from",
                 "valid_to", "source")


class PriceFileError(ValidationFailed):
    code = "invalid_price_file"


def parse_price_csv(data: bytes) -> list[PriceInput]:
    """Prices from CSV (a header row with ``PRICE_COLUMNS``; product, valid_to and source
    may be empty). All rows or none: the first bad one is named by line and column."""
    import csv
    import io
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise PriceFileError(gettext("The file is not UTF-8 text."), field="file") from None
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in ("hs_code", "unit", "unit_price", "currency", "valid_from")
               if c not in (reader.fieldnames or [])]
    if missing:
        raise PriceFileError(gettext("The header lacks the column %(column)s.",
                                     column=missing[0]), field="file")
    prices = []
    for line, row in enumerate(reader, start=2):
        def cell(name: str) -> str:
            return (row.get(name) or "").strip()
        try:
            unit_price = Decimal(cell("unit_price"))
        except InvalidOperation:
            raise PriceFileError(gettext("Line %(line)s, unit_price: %(value)s is not a "
                                         "number.", line=line, value=cell("unit_price")[:30]),
                                 field="file") from None
        dates = {}
        for name in ("valid_from", "valid_to"):
            if cell(name) or name == "valid_from":
                try:
                    dates[name] = date.fromisoformat(cell(name))
                except ValueError:
                    raise PriceFileError(gettext(
                        "Line %(line)s, %(column)s: write the date as YYYY-MM-DD.",
                        line=line, column=name), field="file") from None
        prices.append(PriceInput(hs_code=cell("hs_code"), unit=cell("unit"),
                                 unit_price=unit_price, currency=cell("currency").upper(),
                                 valid_from=dates["valid_from"], valid_to=dates.get("valid_to"),
                                 product=cell("product") or None,
                                 source=cell("source") or None))
        if len(prices) > 10_000:
            raise PriceFileError(gettext("At most 10,000 prices a file."), field="file")
    if not prices:
        raise PriceFileError(gettext("The file holds no prices."), field="file")
    return prices


def import_prices(prices: list[PriceInput], *, actor: User, filename: str | None = None
                  ) -> list[GoodsPrice]:
    """Enter every price, or none: a refused one is named by its line."""
    rows = []
    for line, price in enumerate(prices, start=2):
        try:
            rows.append(enter_price(price, actor=actor))
        except ValidationFailed as exc:
            raise PriceFileError(gettext("Line %(line)s, %(column)s: %(reason)s", line=line,
                                         column=exc.field or "", reason=exc.message),
                                 field="file") from None
        except Conflict as exc:
            raise PriceFileError(gettext("Line %(line)s, %(column)s: %(reason)s", line=line,
                                         column=exc.field or "", reason=exc.message),
                                 field="file") from None
    audit.record("warehouse.prices_imported", actor=actor, object_type="GoodsPrice",
                 changes={"count": len(rows), "filename": filename})
    return rows


# --------------------------------------------------------------------------- public check

@dataclass(frozen=True)
class Verification:
    genuine: bool
    number: str | None = None
    goods: str | None = None
    hs_code: str | None = None
    quantity: Decimal | None = None
    unit: str | None = None
    status: ReceiptStatus | None = None
    pledged: bool = False
    warehouse: str | None = None
    warehouse_country: str | None = None
    issuer: str | None = None
    issue_date: date | None = None
    expiry_date: date | None = None


def verify(code: str | None) -> Verification:
    """What the public may know of the receipt with this code: whether it is genuine, its
    goods, quantity and current status (pledged or not) and its issuer; nothing about the
    depositor or its finances. One indexed lookup of the code's hash whatever the code."""
    digest = code_hash(code or "")
    receipt = db.session.execute(select(WarehouseReceipt).where(
        WarehouseReceipt.verification_hash == digest)).scalar_one_or_none()
    if receipt is None or not hmac.compare_digest(receipt.verification_hash, digest):
        return Verification(genuine=False)
    warehouse = db.session.get(Warehouse, receipt.warehouse_id)
    issuer = db.session.get(Organisation, receipt.operator_org_id)
    return Verification(
        genuine=True, number=receipt.number, goods=receipt.goods_description,
        hs_code=receipt.hs_code, quantity=receipt.quantity, unit=receipt.unit,
        status=receipt.status, pledged=receipt.status is ReceiptStatus.PLEDGED,
        warehouse=warehouse.name, warehouse_country=warehouse.country, issuer=issuer.name,
        issue_date=receipt.issue_date, expiry_date=receipt.expiry_date)


# --------------------------------------------------------------------------- daily

# Pledged receipts the daily job values in one go (their pledges, terms and calls read
# with one query each).
DAILY_BATCH = 1000


def _pledges(receipt_ids: list[int]):
    """(receipt, active pledge, terms, live call locked) for those of ``receipt_ids``
    with an active pledge under terms, in receipt id order."""
    receipts = {r.id: r for r in db.session.execute(select(WarehouseReceipt).where(
        WarehouseReceipt.id.in_(receipt_ids))).scalars()}
    pledges = registry.active_for_many(AssetKind.WAREHOUSE_RECEIPT, receipt_ids)
    ids = [e.id for e in pledges.values()]
    terms = {t.encumbrance_id: t for t in db.session.execute(select(PledgeTerms).where(
        PledgeTerms.encumbrance_id.in_(ids))).scalars()}
    calls = {c.encumbrance_id: c for c in db.session.execute(select(MarginCall).where(
        MarginCall.encumbrance_id.in_(ids), MarginCall.status != MarginCallStatus.CLOSED)
        .order_by(MarginCall.id).with_for_update()).scalars()}
    for receipt_id in receipt_ids:
        pledge = pledges.get(receipt_id)
        if pledge is not None and pledge.id in terms and receipt_id in receipts:
            yield receipts[receipt_id], pledge, terms[pledge.id], calls.get(pledge.id)


def daily(today: date) -> str:
    """Expire free receipts past their expiry date, apply prices that start today, and
    look at every pledged receipt's LTV (escalating calls whose cure period has passed)."""
    expired = 0
    for receipt in db.session.execute(select(WarehouseReceipt).where(
            WarehouseReceipt.expiry_date <= today,
            WarehouseReceipt.status.in_([ReceiptStatus.ISSUED, ReceiptStatus.RELEASED]))
            .with_for_update()).scalars():
        receipt.apply(ReceiptAction.EXPIRE, actor=None)
        notify(receipt.depositor_org_id, "warehouse.receipt_expired",
               dedupe_key=f"receipt:{receipt.id}:expired",
               link=f"/warehouse/receipts/{receipt.id}", number=receipt.number)
        expired += 1
    revalued = 0
    for price in db.session.execute(select(GoodsPrice).where(
            GoodsPrice.valid_from == today)).scalars():
        revalued += revalue_goods(price, actor=None, today=today)
    calls = 0
    pledged = db.session.execute(select(WarehouseReceipt.id).where(
        WarehouseReceipt.status == ReceiptStatus.PLEDGED).order_by(WarehouseReceipt.id)
    ).scalars().all()
    categories, quotes = _categories(), {}

    def rate(base: str, quote: str):
        if (base, quote) not in quotes:
            from finance_app.ledger.rates import find_rate
            quotes[(base, quote)] = find_rate(base, quote, clock.today())
        return quotes[(base, quote)]

    for start in range(0, len(pledged), DAILY_BATCH):
        for receipt, encumbrance, terms, call in _pledges(pledged[start:start + DAILY_BATCH]):
            ltv = loan_to_value(receipt, encumbrance, rate=rate,
                                haircut=haircut_for(receipt.hs_code, categories))
            if _evaluate(receipt, encumbrance, terms, call, ltv, actor=None,
                         today=today) is not None:
                calls += 1
    overdue = db.session.execute(select(WarehouseReceipt.id).where(
        WarehouseReceipt.status == ReceiptStatus.PLEDGED,
        WarehouseReceipt.expiry_date <= today)).all()
    return (f"{expired} receipts expired, {revalued} revalued, {calls} margin calls live, "
            f"{len(overdue)} pledged receipts past expiry")


def _register_daily() -> None:
    from finance_app import daily as daily_run
    daily_run.duty("warehouse")(daily)


_register_daily()


def _register_messages() -> None:
    from flask_babel import lazy_gettext as _l

    from finance_app.accounts.notifications import register_messages
    register_messages({
        "warehouse.receipt_issued": _l("Warehouse receipt %(number)s was issued to you by "
                                       "%(warehouse)s: %(goods)s."),
        "warehouse.receipt_offered": _l("%(depositor)s offers warehouse receipt %(number)s "
                                        "(worth %(value)s) as collateral."),
        "warehouse.receipt_pledged": _l("Warehouse receipt %(number)s is pledged to %(bank)s, "
                                        "securing %(principal)s."),
        "warehouse.receipt_released": _l("%(bank)s released its pledge of warehouse receipt "
                                         "%(number)s."),
        "warehouse.receipt_partly_released": _l(
            "Part of warehouse receipt %(number)s was released: %(released)s is free, "
            "%(kept)s stays pledged."),
        "warehouse.receipt_cancelled": _l("Warehouse receipt %(number)s was cancelled: "
                                          "%(reason)s"),
        "warehouse.receipt_expired": _l("Warehouse receipt %(number)s has expired."),
        "warehouse.margin_call_opened": _l(
            "Margin call on warehouse receipt %(number)s: the loan-to-value is %(ltv)s, above "
            "%(threshold)s. Bring it back to %(target)s by %(deadline)s by adding collateral "
            "or repaying."),
        "warehouse.margin_call_closed": _l("The margin call on warehouse receipt %(number)s "
                                           "is closed: the loan-to-value is %(ltv)s."),
        "warehouse.margin_call_escalated": _l(
            "SEVERE: the margin call on warehouse receipt %(number)s escalated "
            "(%(reason)s); the loan-to-value is %(ltv)s, liquidation threshold "
            "%(liquidation)s."),
    })


_register_messages()
