"""Financing products banks publish, and the credit facilities they grant SMEs.

Rates and ratios are fractions (``Decimal("0.065")`` is 6.5 %); the views turn the
percentages people type into them. A facility's limit, use and holds live in the ledger
(``financing.accounts``): its available account has a floor of zero, so a loan beyond the
facility is refused by the ledger itself.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from flask_babel import gettext
from sqlalchemy import select

from finance_app import authz, clock
from finance_app.accounts.models import Organisation, User
from finance_app.accounts.states import FilingStatus, OrgKind
from finance_app.audit import services as audit
from finance_app.errors import Conflict, ValidationFailed
from finance_app.extensions import db
from finance_app.financing import accounts
from finance_app.financing.lookup import visible
from finance_app.financing.models import Facility, FinancingProduct
from finance_app.financing.schedule import DAY_COUNTS, MAX_TENOR_DAYS
from finance_app.financing.states import ProductAction, ProductKind, ProductStatus, RepaymentType
from finance_app.ledger import services as ledger
from finance_app.money import Money, is_currency, minor_units

RATINGS = ("AAA", "AA", "A", "BBB", "BB", "B", "C")   # best first
RATE_PLACES = Decimal("0.000001")
RATIO_PLACES = Decimal("0.0001")
# What the product kinds usually advance (shown as guidance; the bank decides).
TYPICAL_ADVANCE = {
    ProductKind.ORDER: (Decimal("0.5"), Decimal("0.7")),
    ProductKind.RECEIVABLE: (Decimal("0.7"), Decimal("0.9")),
    ProductKind.WAREHOUSE_RECEIPT: (Decimal("0.5"), Decimal("0.7")),
    ProductKind.POLICY: (Decimal("0.7"), Decimal("0.9")),
}


@dataclass
class ProductTerms:
    """What a bank sets on a product; ``create_product`` checks every field."""
    name: str
    kind: ProductKind | str
    currencies: list[str]
    max_advance_rate: Decimal
    rate_min: Decimal
    rate_max: Decimal
    day_count: int
    max_tenor_days: int
    repayment_type: RepaymentType | str
    penalty_rate: Decimal
    default_after_days: int
    arrangement_fee_rate: Decimal = Decimal(0)
    margin_call_ltv: Decimal | None = None
    liquidation_ltv: Decimal | None = None
    cure_days: int | None = None
    min_rating: str | None = None
    require_verified: bool = True
    require_insurance: bool = False
    description: str | None = None


# --------------------------------------------------------------------------- checks

def _fraction(value: object, field: str, *, places: Decimal, upper: Decimal,
              allow_zero: bool = True) -> Decimal:
    if isinstance(value, (float, bool)) or not isinstance(value, Decimal) \
            or not value.is_finite():
        raise ValidationFailed(gettext("Enter a number."), field=field)
    if value != value.quantize(places) or value < 0 or value > upper \
            or (value == 0 and not allow_zero):
        raise ValidationFailed(gettext("Out of range: between %(low)s%% and %(high)s%%, with "
                                       "at most %(n)s decimals as a percentage.",
                                       low="0" if allow_zero else "0.01",
                                       high=f"{(upper * 100).normalize():f}",
                                       n=max(-places.as_tuple().exponent - 2, 0)), field=field)
    return value


def _whole(value: object, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationFailed(gettext("A whole number from %(low)s to %(high)s.", low=low,
                                       high=high), field=field)
    return value


def check_terms(terms: ProductTerms) -> ProductTerms:
    name = (terms.name or "").strip()
    if not 3 <= len(name) <= 200:
        raise ValidationFailed(gettext("Name the product (3 to 200 characters)."), field="name")
    try:
        kind = ProductKind(terms.kind)
    except ValueError:
        raise ValidationFailed(gettext("Choose the kind of financing."), field="kind") from None
    currencies = []
    for code in terms.currencies or []:
        code = (code or "").strip().upper()
        if not is_currency(code):
            raise ValidationFailed(gettext("%(code)s is not an ISO 4217 currency.", code=code),
                                   field="currencies")
        if code not in currencies:
            currencies.append(code)
    if not currencies or len(currencies) > 10:
        raise ValidationFailed(gettext("Offer one to ten currencies."), field="currencies")
    advance = _fraction(terms.max_advance_rate, "max_advance_rate", places=RATIO_PLACES,
                        upper=Decimal(1), allow_zero=False)
    rate_min = _fraction(terms.rate_min, "rate_min", places=RATE_PLACES, upper=Decimal("0.36"))
    rate_max = _fraction(terms.rate_max, "rate_max", places=RATE_PLACES, upper=Decimal("0.36"))
    if rate_min > rate_max:
        raise ValidationFailed(gettext("The lowest rate is above the highest."),
                               field="rate_min")
    if terms.day_count not in DAY_COUNTS:
        raise ValidationFailed(gettext("The day count is ACT/360 or ACT/365."),
                               field="day_count")
    tenor = _whole(terms.max_tenor_days, "max_tenor_days", 1, MAX_TENOR_DAYS)
    try:
        repayment = RepaymentType(terms.repayment_type)
    except ValueError:
        raise ValidationFailed(gettext("Choose bullet or equal instalments."),
                               field="repayment_type") from None
    penalty = _fraction(terms.penalty_rate, "penalty_rate", places=RATE_PLACES,
                        upper=Decimal("0.36"))
    default_after = _whole(terms.default_after_days, "default_after_days", 1, 365)
    fee = _fraction(terms.arrangement_fee_rate, "arrangement_fee_rate", places=RATE_PLACES,
                    upper=Decimal("0.1"))
    call = liquidation = cure = None
    if kind is ProductKind.WAREHOUSE_RECEIPT:
        from finance_app.warehouse.services import check_ltv_terms
        _, call, liquidation, cure = check_ltv_terms(advance, terms.margin_call_ltv,
                                                     terms.liquidation_ltv, terms.cure_days)
    rating = (terms.min_rating or "").strip().upper() or None
    if rating is not None and rating not in RATINGS:
        raise ValidationFailed(gettext("A rating is one of %(ratings)s.",
                                       ratings=", ".join(RATINGS)), field="min_rating")
    description = (terms.description or "").strip() or None
    if description and len(description) > 2000:
        raise ValidationFailed(gettext("At most 2,000 characters."), field="description")
    return ProductTerms(
        name=name, kind=kind, currencies=currencies, max_advance_rate=advance,
        rate_min=rate_min, rate_max=rate_max, day_count=terms.day_count,
        max_tenor_days=tenor, repayment_type=repayment, penalty_rate=penalty,
        default_after_days=default_after, arrangement_fee_rate=fee, margin_call_ltv=call,
        liquidation_ltv=liquidation, cure_days=cure, min_rating=rating,
        require_verified=bool(terms.require_verified),
        require_insurance=bool(terms.require_insurance) or kind is ProductKind.POLICY,
        description=description)


# --------------------------------------------------------------------------- products

def get_product(product_id: int, *, actor: User | None = None, lock: bool = False
                ) -> FinancingProduct:
    return visible(FinancingProduct, product_id, actor=actor, rule="financing.read_product",
                   what="financing product", lock=lock)


def create_product(terms: ProductTerms, *, actor: User) -> FinancingProduct:
    """A bank officer publishes a product (active at once)."""
    authz.require(actor, "financing.manage_products", actor.organisation, hide=False)
    terms = check_terms(terms)
    taken = db.session.execute(select(FinancingProduct.id).where(
        FinancingProduct.bank_org_id == actor.org_id,
        FinancingProduct.name == terms.name)).first()
    if taken:
        raise Conflict(gettext("You already have a product called %(name)s.", name=terms.name),
                       field="name")
    product = FinancingProduct(
        bank_org_id=actor.org_id, name=terms.name, kind=terms.kind,
        status=ProductStatus.ACTIVE, description=terms.description,
        currencies=",".join(terms.currencies), max_advance_rate=terms.max_advance_rate,
        rate_min=terms.rate_min, rate_max=terms.rate_max, day_count=terms.day_count,
        arrangement_fee_rate=terms.arrangement_fee_rate, max_tenor_days=terms.max_tenor_days,
        repayment_type=terms.repayment_type, penalty_rate=terms.penalty_rate,
        default_after_days=terms.default_after_days, margin_call_ltv=terms.margin_call_ltv,
        liquidation_ltv=terms.liquidation_ltv, cure_days=terms.cure_days,
        min_rating=terms.min_rating, require_verified=terms.require_verified,
        require_insurance=terms.require_insurance, created_at=clock.now(),
        created_by_id=actor.id)
    db.session.add(product)
    db.session.flush()
    audit.record("financing.product_created", actor=actor, obj=product,
                 changes={"name": product.name, "kind": product.kind.value,
                          "currencies": product.currencies,
                          "max_advance_rate": product.max_advance_rate,
                          "rate": [product.rate_min, product.rate_max],
                          "max_tenor_days": product.max_tenor_days})
    return product


def set_product_status(product_id: int, action: ProductAction | str, *, actor: User,
                       note: str | None = None) -> FinancingProduct:
    """Pause a product (no new requests; requests already sent go on) or resume it."""
    product = get_product(product_id, actor=actor, lock=True)
    authz.require(actor, "financing.manage_products", product, hide=False)
    try:
        action = ProductAction(action)
    except ValueError:
        raise ValidationFailed(gettext("Pause or resume."), field="action") from None
    product.apply(action, actor=actor, note=(note or "").strip()[:500] or None)
    return product


def advance_guidance(kind: ProductKind) -> tuple[Decimal, Decimal]:
    return TYPICAL_ADVANCE[ProductKind(kind)]


# --------------------------------------------------------------------------- facilities

@dataclass(frozen=True)
class FacilityFigures:
    limit: Money
    used: Money
    held: Money
    available: Money
    expired: bool


def get_facility(facility_id: int, *, actor: User | None = None, lock: bool = False
                 ) -> Facility:
    return visible(Facility, facility_id, actor=actor, rule="financing.read_facility",
                   what="facility", lock=lock)


def facility_for(bank_org_id: int, sme_org_id: int, currency: str) -> Facility | None:
    return db.session.execute(select(Facility).where(
        Facility.bank_org_id == bank_org_id, Facility.sme_org_id == sme_org_id,
        Facility.currency == currency)).scalar_one_or_none()


def figures(facility: Facility, *, opened: dict | None = None) -> FacilityFigures:
    """``opened``: its accounts as ``accounts.open_facility_accounts`` found them."""
    opened = opened or {}

    def account(purpose: str):
        found = opened.get((facility.id, purpose))
        return found if found is not None else accounts.facility_account(facility, purpose)

    available = account(accounts.FACILITY_AVAILABLE)
    used = account(accounts.FACILITY_USED)
    limit = account(accounts.FACILITY_LIMIT)
    return FacilityFigures(limit=ledger.balance(limit), used=ledger.balance(used),
                           held=available.money(available.pending_debits),
                           available=ledger.available(available),
                           expired=facility.expiry_date < clock.today())


def figures_of(facilities) -> dict[int, FacilityFigures]:
    """``figures`` of several facilities, by id, their accounts read in one query."""
    facilities = list(facilities)
    opened = accounts.open_facility_accounts(facilities)
    return {f.id: figures(f, opened=opened) for f in facilities}


def _sme(org_id: int) -> Organisation:
    org = db.session.get(Organisation, org_id) if isinstance(org_id, int) else None
    if org is None or org.kind is not OrgKind.SME:
        raise ValidationFailed(gettext("No SME with that id."), field="sme_org_id")
    if org.filing_status is not FilingStatus.APPROVED:
        raise ValidationFailed(gettext("%(name)s's filing is not approved.", name=org.name),
                               field="sme_org_id")
    return org


def _limit(limit: Money) -> int:
    if not isinstance(limit, Money) or limit.amount <= 0:
        raise ValidationFailed(gettext("The limit must be greater than zero."), field="limit")
    try:
        return limit.to_minor()
    except ValueError:
        raise ValidationFailed(gettext("%(currency)s amounts have at most %(n)s decimal "
                                       "places.", currency=limit.currency,
                                       n=minor_units(limit.currency)), field="limit") from None


def grant_facility(*, actor: User, sme_org_id: int, limit: Money, expiry_date: date,
                   note: str | None = None) -> Facility:
    """A bank approver grants an SME a credit line in one currency (one per bank, SME and
    currency: granting again changes the limit and the expiry)."""
    authz.require(actor, "financing.grant_facility", actor.organisation, hide=False)
    sme = _sme(sme_org_id)
    units = _limit(limit)
    if not isinstance(expiry_date, date) or expiry_date <= clock.today():
        raise ValidationFailed(gettext("The expiry date must be after today."),
                               field="expiry_date")
    facility = facility_for(actor.org_id, sme.id, limit.currency)
    if facility is None:
        facility = Facility(bank_org_id=actor.org_id, sme_org_id=sme.id,
                            currency=limit.currency, limit_amount=units,
                            expiry_date=expiry_date, note=(note or "").strip()[:500] or None,
                            created_at=clock.now(), created_by_id=actor.id)
        db.session.add(facility)
        db.session.flush()
        before = 0
    else:
        facility = get_facility(facility.id, lock=True)
        before = facility.limit_amount
        facility.limit_amount, facility.expiry_date = units, expiry_date
    change = units - before
    if change:
        limit_account = accounts.facility_account(facility, accounts.FACILITY_LIMIT)
        available = accounts.facility_account(facility, accounts.FACILITY_AVAILABLE)
        amount = Money.from_minor(abs(change), facility.currency)
        postings = ([ledger.debit(limit_account, amount), ledger.credit(available, amount)]
                    if change > 0 else
                    [ledger.debit(available, amount), ledger.credit(limit_account, amount)])
        changes = sum(1 for t in ledger.transaction_for("facility", facility.id)
                      if t.kind == "facility_limit")
        try:
            ledger.book(postings, key=f"facility-{facility.id}-limit-{changes + 1}",
                        kind="facility_limit", org_id=actor.org_id, actor=actor,
                        reference=("facility", facility.id),
                        description=f"Facility {facility.id} limit "
                                    f"{Money.from_minor(before, facility.currency)} -> {limit}")
        except ledger.InsufficientFunds:
            raise ValidationFailed(gettext(
                "The limit cannot go below what is used and held under it (%(used)s).",
                used=str(Money.from_minor(before, facility.currency)
                         - ledger.available(available))), field="limit") from None
    audit.record("financing.facility_granted", actor=actor, obj=facility,
                 changes={"sme_org_id": sme.id, "limit": [before, units],
                          "currency": facility.currency, "expiry_date": expiry_date})
    return facility
