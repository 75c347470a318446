"""The marketplace: what an SME can borrow against what, and its financing requests.

**Collateral.** Each product kind finances one kind of asset:

* order financing: the SME's export orders that are neither shipped nor paid (no
  receivable yet, no payment filed) and whose documents so far agree (no mismatch);
* receivables financing: open receivables (verified B2B exports on payment terms) not yet
  due, at what is still outstanding; with ``require_verified`` the order's verdict must
  still be verified;
* warehouse-receipt loans: receipts the SME deposited, issued or released, not expired, at
  their value less the goods' haircut;
* policy financing: open receivables insured by an export credit policy (a shipment
  declared under a buyer's credit limit), at the insured part of what the buyer still
  owes; a bank finances only those whose indemnity is assigned to it.

A receivable whose indemnity is assigned to a bank can be financed by that bank only,
whatever the product: the claim would be paid to that bank.

An item already backing financing anywhere on the platform (the encumbrance registry) is
not available, and the SME is told which item and why.

**Eligible amount** at a product: the lowest of the advance rate times the collateral's
value (converted to the request's currency at the day's rate); for insured receivables,
the commercial-risk coverage times what is left of the buyers' credit limits for them and
times the policy's remaining maximum liability; and the available amount of the SME's
facility at that bank in that currency, if it has one. ``Eligibility.binding`` says which
of them binds.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, localcontext
from typing import Iterable, Sequence

from flask_babel import gettext
from sqlalchemy import exists, func, or_, select

from finance_app import authz, clock
from finance_app.accounts.models import Organisation, User
from finance_app.accounts.notifications import notify
from finance_app.accounts.states import FilingStatus, OrgKind
from finance_app.audit import services as audit
from finance_app.collateral.models import Encumbrance
from finance_app.collateral.states import AssetKind, EncumbranceStatus
from finance_app.errors import ValidationFailed
from finance_app.extensions import db
from finance_app.financing import products as catalogue
from finance_app.financing.lookup import visible
from finance_app.financing.models import (
    Facility, FinancingProduct, FinancingRequest, RequestCollateral, RequestTarget,
)
from finance_app.financing.schedule import MAX_TENOR_DAYS
from finance_app.financing.states import (
    ASSET_FOR_PRODUCT, OfferAction, OfferStatus, ProductKind, ProductStatus, RequestAction,
    RequestStatus,
)
from finance_app.ledger.rates import RateMissing, find_rate
from finance_app.money import Money, is_currency, minor_units, round_exact
from finance_app.trade.models import MatchVerdict, Order, Payment, Receivable, ReceivableStatus
from finance_app.trade.states import Direction, Verdict

MAX_ITEMS = 50
MAX_BANKS = 5
BINDING_ADVANCE = "advance"
BINDING_FACILITY = "facility"
BINDING_NONE = "no_collateral"
BINDING_BUYER_LIMIT = "buyer_limit"
BINDING_LIABILITY = "policy_liability"


# --------------------------------------------------------------------------- collateral

@dataclass
class Item:
    """One asset as collateral: its value in its own currency and, when it cannot back a
    request, why not."""
    kind: AssetKind
    id: int
    label: str
    value: Money | None
    problem: str | None = None
    detail: str | None = None      # the match verdict, the receipt's status, ...
    reserved_for: int | None = None   # the bank its insurance indemnity is assigned to
    cover: object | None = None       # insured receivables: insurance.queries.Cover
    ref: str | None = None            # receivables: their order's number

    @property
    def available(self) -> bool:
        return self.problem is None

    @property
    def key(self) -> str:
        return f"{self.kind.value}:{self.id}"


def _encumbered_ids(kind: AssetKind, ids: Iterable[int]) -> set[int]:
    ids = list(ids)
    if not ids:
        return set()
    return set(db.session.execute(select(Encumbrance.asset_id).where(
        Encumbrance.asset_kind == kind, Encumbrance.asset_id.in_(ids),
        Encumbrance.status == EncumbranceStatus.ACTIVE)).scalars())


def _payable(order: Order) -> Money:
    amount = order.actual_paid if order.actual_paid is not None else (
        order.goods_value + order.freight + order.tax_total - order.discount)
    return round_exact(amount, order.currency, ROUND_HALF_UP)


def _already(label: str) -> str:
    return gettext("%(asset)s already backs financing; it cannot back another until that is "
                   "repaid and released.", asset=label)


def _order_items(sme_org_id: int, ids: Sequence[int] | None, *, today: date) -> list[Item]:
    query = (select(Order, MatchVerdict.status).outerjoin(MatchVerdict,
                                                          MatchVerdict.order_id == Order.id)
             .where(Order.filer_org_id == sme_org_id).order_by(Order.id))
    if ids is not None:
        query = query.where(Order.id.in_(ids))
    else:
        query = query.where(
            Order.direction == Direction.EXPORT,
            ~exists().where(Receivable.order_id == Order.id),
            or_(MatchVerdict.status.is_(None), MatchVerdict.status == Verdict.INCOMPLETE),
            ~exists().where(Payment.order_no == Order.order_no,
                            or_(Payment.ebp_code == Order.ebp_code, Payment.ebp_code.is_(None))))
    rows = db.session.execute(query).all()
    orders = [order for order, _ in rows]
    with_receivable = set(db.session.execute(select(Receivable.order_id).where(
        Receivable.order_id.in_([o.id for o in orders]))).scalars()) if orders else set()
    paid = set()
    if orders:
        paid = {(no, code) for no, code in db.session.execute(
            select(Payment.order_no, Payment.ebp_code).where(
                Payment.order_no.in_({o.order_no for o in orders})))}
    pledged = _encumbered_ids(AssetKind.ORDER, [o.id for o in orders])
    items = []
    for order, verdict in rows:
        label = gettext("Order %(number)s", number=order.order_no)
        item = Item(AssetKind.ORDER, order.id, label, _payable(order),
                    detail=(verdict.value if verdict else None))
        if order.direction is not Direction.EXPORT:
            item.problem = gettext("%(asset)s is an import order; order financing is for "
                                   "exports.", asset=label)
        elif order.id in with_receivable:
            item.problem = gettext("%(asset)s has shipped and is now a receivable: finance it "
                                   "as a receivable.", asset=label)
        elif (order.order_no, order.ebp_code) in paid or (order.order_no, None) in paid:
            item.problem = gettext("%(asset)s has been paid.", asset=label)
        elif verdict is Verdict.MISMATCH:
            item.problem = gettext("%(asset)s: its documents do not agree (three-document "
                                   "matching found a mismatch).", asset=label)
        elif verdict is Verdict.VERIFIED:
            item.problem = gettext("%(asset)s has shipped and been paid.", asset=label)
        elif order.id in pledged:
            item.problem = _already(label)
        items.append(item)
    return items


def _paid_towards(orders: list[tuple[str, str]]) -> dict[tuple[str, str | None, str], Decimal]:
    """What payments filed for these (order number, platform) pairs add up to, by order
    number, platform (None: a payment naming no platform) and currency."""
    if not orders:
        return {}
    numbers = {number for number, _ in orders}
    rows = db.session.execute(select(Payment.order_no, Payment.ebp_code, Payment.currency,
                                     func.sum(Payment.amount))
                              .where(Payment.order_no.in_(numbers))
                              .group_by(Payment.order_no, Payment.ebp_code, Payment.currency))
    return {(number, code, currency): total for number, code, currency, total in rows}


def _receivable_facts(sme_org_id: int, ids: Sequence[int] | None, *, today: date):
    query = (select(Receivable, MatchVerdict.status, Order.order_no, Order.ebp_code)
             .join(Order, Order.id == Receivable.order_id)
             .outerjoin(MatchVerdict, MatchVerdict.order_id == Receivable.order_id)
             .where(Receivable.seller_org_id == sme_org_id).order_by(Receivable.id))
    if ids is not None:
        query = query.where(Receivable.id.in_(ids))
    else:
        query = query.where(Receivable.status == ReceivableStatus.OPEN,
                            Receivable.due_date > today)
    rows = db.session.execute(query).all()
    pledged = _encumbered_ids(AssetKind.RECEIVABLE, [r.id for r, _, _, _ in rows])
    order_pledged = _encumbered_ids(AssetKind.ORDER, [r.order_id for r, _, _, _ in rows])
    paid = _paid_towards([(number, code) for _, _, number, code in rows])
    assigned = dict(db.session.execute(select(Encumbrance.asset_id, Encumbrance.holder_org_id)
                                       .where(Encumbrance.asset_kind
                                              == AssetKind.INSURED_RECEIVABLE,
                                              Encumbrance.asset_id.in_([r.id for r, *_ in rows]),
                                              Encumbrance.status == EncumbranceStatus.ACTIVE))
                    .all()) if rows else {}
    return rows, pledged, order_pledged, paid, assigned


def _receivable_items(sme_org_id: int, ids: Sequence[int] | None, *, today: date,
                      require_verified: bool = True, memo: dict | None = None) -> list[Item]:
    key = ("receivable", sme_org_id, None if ids is None else tuple(ids), today)
    facts = memo.get(key) if memo is not None else None
    if facts is None:
        facts = _receivable_facts(sme_org_id, ids, today=today)
        if memo is not None:
            memo[key] = facts
    rows, pledged, order_pledged, paid, assigned = facts
    items = []
    for receivable, verdict, order_no, ebp_code in rows:
        label = gettext("Receivable of order %(number)s", number=order_no)
        settled = sum((paid.get((order_no, code, receivable.currency), Decimal(0))
                       for code in {ebp_code, None}), Decimal(0))
        left = max(receivable.amount - settled, Decimal(0))
        value = round_exact(left, receivable.currency, ROUND_HALF_UP)
        item = Item(AssetKind.RECEIVABLE, receivable.id, label, value,
                    detail=(verdict.value if verdict else None),
                    reserved_for=assigned.get(receivable.id), ref=order_no)
        if receivable.status is not ReceivableStatus.OPEN or value.amount <= 0:
            item.problem = gettext("%(asset)s has been paid.", asset=label)
        elif receivable.due_date <= today:
            item.problem = gettext("%(asset)s fell due on %(date)s.", asset=label,
                                   date=receivable.due_date.isoformat())
        elif require_verified and verdict is not Verdict.VERIFIED:
            item.problem = gettext("%(asset)s: its order is no longer verified by "
                                   "three-document matching.", asset=label)
        elif receivable.id in pledged or receivable.order_id in order_pledged:
            item.problem = _already(label)
        items.append(item)
    return items


def _insured_items(sme_org_id: int, ids: Sequence[int] | None, *, today: date,
                   require_verified: bool = True, memo: dict | None = None) -> list[Item]:
    """The SME's receivables as insured receivables: valued at the insured part of what
    the buyer still owes, each with its cover (without ``ids``, only insured ones)."""
    from finance_app.insurance.queries import cover_for_receivable, insured_receivable_ids
    items = []
    bases = _receivable_items(sme_org_id, ids, today=today, require_verified=require_verified,
                              memo=memo)
    insured = insured_receivable_ids([b.id for b in bases])   # one query; covers only for those
    for base in bases:
        cover = cover_for_receivable(base.id) if base.id in insured else None
        if cover is None and ids is None:
            continue
        label = gettext("Insured receivable of order %(number)s", number=base.ref)
        item = Item(AssetKind.INSURED_RECEIVABLE, base.id, label,
                    cover.insured_outstanding if cover else base.value, detail=base.detail,
                    reserved_for=base.reserved_for, cover=cover)
        if cover is None:
            item.problem = gettext("%(asset)s is not insured: declare its shipment under an "
                                   "export credit policy first.", asset=base.label)
        elif base.problem:
            item.problem = base.problem
        elif cover.overdue_reported or cover.claim_status is not None:
            item.problem = gettext("%(asset)s: the buyer's payment is overdue and has been "
                                   "reported to the insurer.", asset=label)
        elif cover.insured_outstanding.amount <= 0:
            item.problem = gettext("%(asset)s has been paid.", asset=label)
        items.append(item)
    return items


def _receipt_items(sme_org_id: int, ids: Sequence[int] | None, *, today: date) -> list[Item]:
    from finance_app.warehouse.models import WarehouseReceipt
    from finance_app.warehouse.services import haircut_for
    from finance_app.warehouse.states import ReceiptStatus
    usable = (ReceiptStatus.ISSUED, ReceiptStatus.RELEASED)
    query = select(WarehouseReceipt).where(WarehouseReceipt.depositor_org_id == sme_org_id) \
        .order_by(WarehouseReceipt.id)
    if ids is not None:
        query = query.where(WarehouseReceipt.id.in_(ids))
    else:
        query = query.where(WarehouseReceipt.status.in_(usable),
                            WarehouseReceipt.expiry_date > today)
    receipts = list(db.session.execute(query).scalars())
    pledged = _encumbered_ids(AssetKind.WAREHOUSE_RECEIPT, [r.id for r in receipts])
    items = []
    for receipt in receipts:
        label = gettext("Warehouse receipt %(number)s", number=receipt.number)
        with localcontext(prec=60):
            net = round_exact(receipt.value.amount * (1 - haircut_for(receipt.hs_code)),
                              receipt.currency, ROUND_DOWN)
        item = Item(AssetKind.WAREHOUSE_RECEIPT, receipt.id, label, net,
                    detail=receipt.status.value)
        if receipt.id in pledged or receipt.status is ReceiptStatus.PLEDGED:
            item.problem = _already(label)
        elif receipt.status not in usable:
            item.problem = gettext("%(asset)s cannot back a loan now: only an issued "
                                   "receipt can.", asset=label)
        elif receipt.expiry_date <= today:
            item.problem = gettext("%(asset)s expired on %(date)s.", asset=label,
                                   date=receipt.expiry_date.isoformat())
        items.append(item)
    return items


def collateral(sme_org_id: int, kind: ProductKind, ids: Sequence[int] | None = None, *,
               require_verified: bool = True, memo: dict | None = None) -> list[Item]:
    """The SME's assets of the kind ``kind`` finances: with ``ids``, those items whatever
    their state (each with its problem, if any); without, the items that could back a
    request now. ``memo``: a dict kept across calls for one page, so that asking for the
    same assets with and without ``require_verified`` reads them once."""
    today = clock.today()
    kind = ProductKind(kind)
    if kind is ProductKind.ORDER:
        return _order_items(sme_org_id, ids, today=today)
    if kind is ProductKind.RECEIVABLE:
        return _receivable_items(sme_org_id, ids, today=today,
                                 require_verified=require_verified, memo=memo)
    if kind is ProductKind.WAREHOUSE_RECEIPT:
        return _receipt_items(sme_org_id, ids, today=today)
    return _insured_items(sme_org_id, ids, today=today, require_verified=require_verified,
                          memo=memo)


def bank_problem(item: Item, product: FinancingProduct) -> str | None:
    """Why ``item``, free in itself, cannot back financing at ``product``'s bank: its
    insurance indemnity is assigned to another bank, or (policy financing) not to this
    one."""
    bank = product.bank_org_id
    if item.kind is AssetKind.INSURED_RECEIVABLE and item.reserved_for != bank:
        if item.reserved_for is None:
            name = db.session.get(Organisation, bank).name
            return gettext("%(asset)s: its indemnity is not assigned to %(bank)s; assign it "
                           "(the insurer acknowledges, the bank accepts) to finance it "
                           "there.", asset=item.label, bank=name)
        return gettext("%(asset)s: its indemnity is assigned to another bank; only that "
                       "bank can finance it.", asset=item.label)
    if item.kind is AssetKind.RECEIVABLE and item.reserved_for not in (None, bank):
        return gettext("%(asset)s: its insurance indemnity is assigned to another bank; only "
                       "that bank can finance it.", asset=item.label)
    return None


# --------------------------------------------------------------------------- eligibility

@dataclass
class Eligibility:
    """What the SME could borrow at one product, in ``currency``."""
    product: FinancingProduct
    currency: str
    collateral_value: Money
    advance_limit: Money
    facility_available: Money | None
    amount: Money
    binding: str
    reasons: list[str] = field(default_factory=list)   # why it is not eligible at all
    rate_notes: list[str] = field(default_factory=list)
    cover_limit: Money | None = None    # insured receivables: what the cover allows

    @property
    def eligible(self) -> bool:
        return not self.reasons and self.amount.amount > 0


class Rates:
    """The day's exchange rates, each looked up once however many items and products ask
    (a missing rate is remembered too), and the conversions made with them."""

    def __init__(self, on: date | None = None):
        self.on = on or clock.today()
        self._quotes: dict[tuple[str, str], object] = {}
        self.converted: dict[tuple[Money, str], tuple[Money, str | None]] = {}

    def quote(self, base: str, quote: str):
        key = (base, quote)
        if key not in self._quotes:
            try:
                self._quotes[key] = find_rate(base, quote, self.on)
            except RateMissing as exc:
                self._quotes[key] = exc
        found = self._quotes[key]
        if isinstance(found, RateMissing):
            raise found
        return found


def convert(value: Money, currency: str, rates: Rates | None = None
            ) -> tuple[Money, str | None]:
    """``value`` in ``currency`` at the day's rate (rounded down: collateral is never
    overstated), with a note of the rate used."""
    if value.currency == currency:
        return value, None
    rates = rates or Rates()
    done = rates.converted.get((value, currency))
    if done is not None:      # the same total for another product of the page
        return done
    quote = rates.quote(value.currency, currency)
    with localcontext(prec=80):
        converted = round_exact(value.amount * quote.rate, currency, ROUND_DOWN)
    shown = quote.rate.quantize(Decimal("0.000001"))   # a cross rate has many decimals
    sign = "=" if shown == quote.rate else "≈"
    note = f"1 {quote.base} {sign} {shown.normalize():f} {quote.quote} ({quote.rate_date})"
    rates.converted[(value, currency)] = converted, note
    return converted, note


def _totals(items: Iterable[Item]) -> dict[str, Money]:
    sums: dict[str, Decimal] = {}     # summed as Decimals, one Money a currency
    for item in items:
        if item.available and item.value is not None:
            currency = item.value.currency
            if currency not in sums:
                sums[currency] = Money.from_minor(0, currency).amount
            sums[currency] += item.value.amount
    return {currency: Money(amount, currency) for currency, amount in sums.items()}


def current_rating(sme_org_id: int) -> str | None:
    """The SME's current credit grade, if it has been rated."""
    from finance_app.oversight import ratings
    rating = ratings.current(sme_org_id)
    return rating.grade if rating is not None else None


def rating_allows(rating: str | None, minimum: str | None) -> bool:
    if minimum is None:
        return True
    if rating is None:
        return False
    order = catalogue.RATINGS
    return order.index(rating) <= order.index(minimum)


_NO_FACILITY = object()


def eligibility(product: FinancingProduct, sme_org_id: int, items: Sequence[Item],
                currency: str | None = None, *, rates: Rates | None = None,
                facility=_NO_FACILITY, rating: str | None | object = _NO_FACILITY,
                facility_figures: catalogue.FacilityFigures | None = None) -> Eligibility:
    """What the SME can borrow at ``product`` against ``items``, in ``currency`` (the
    product's first by default). ``rates``, ``facility`` (and its ``facility_figures``)
    and ``rating`` may be given when the caller looked them up already (the marketplace
    page, for every product at once)."""
    currency = currency or product.currency_list[0]
    rates = rates or Rates()
    zero = Money.from_minor(0, currency)
    reasons, notes, total = [], [], zero
    if product.status is not ProductStatus.ACTIVE:
        reasons.append(gettext("The product is paused."))
    if currency not in product.currency_list:
        reasons.append(gettext("%(product)s does not lend in %(currency)s (it lends in "
                               "%(currencies)s).", product=product.name, currency=currency,
                               currencies=", ".join(product.currency_list)))
    if rating is _NO_FACILITY:
        rating = current_rating(sme_org_id)
    if not rating_allows(rating, product.min_rating):
        reasons.append(gettext("It needs a credit rating of %(minimum)s or better; yours is "
                               "%(rating)s.", minimum=product.min_rating,
                               rating=rating or gettext("not yet rated")))
    if product.require_insurance and product.kind is not ProductKind.POLICY:
        reasons.append(gettext("It needs receivables insured by an export credit policy."))
    usable = [i for i in items if i.available and bank_problem(i, product) is None]
    if items and not usable and any(i.available for i in items):
        reasons.append(next(bank_problem(i, product) for i in items if i.available))
    totals = _totals(usable)
    for value in totals.values():
        try:
            converted, note = convert(value, currency, rates)
        except RateMissing as exc:
            reasons.append(exc.message)
            continue
        total += converted
        if note and note not in notes:
            notes.append(note)
    with localcontext(prec=60):
        advance = round_exact(total.amount * product.max_advance_rate, currency, ROUND_DOWN)
    amount, binding, facility_left = advance, BINDING_ADVANCE, None
    cover_limit = None
    if product.kind is ProductKind.POLICY and usable:
        try:
            cover_limit, cover_binding = _cover_limit(usable, currency, rates, notes)
        except RateMissing as exc:
            reasons.append(exc.message)
        else:
            if cover_limit < amount:
                amount, binding = cover_limit, cover_binding
    if facility is _NO_FACILITY:
        facility = catalogue.facility_for(product.bank_org_id, sme_org_id, currency)
    if facility is not None:
        figures = facility_figures or catalogue.figures(facility)
        facility_left = zero if figures.expired else figures.available
        if facility_left < amount:
            amount, binding = facility_left, BINDING_FACILITY
    if not totals:
        binding = BINDING_NONE
    return Eligibility(product=product, currency=currency, collateral_value=total,
                       advance_limit=advance, facility_available=facility_left,
                       amount=amount, binding=binding, reasons=reasons, rate_notes=notes,
                       cover_limit=cover_limit)


def _cover_limit(items: Sequence[Item], currency: str, rates: Rates, notes: list[str]
                 ) -> tuple[Money, str]:
    """What the insurance behind ``items`` allows, in ``currency``: for each policy, the
    coverage times the lower of what is left of its buyers' limits for these receivables
    (the limit less the buyer's other unpaid insured shipments) and of its remaining
    maximum liability; and which of the two binds."""
    policies: dict[int, list] = {}
    for item in items:
        policies.setdefault(item.cover.policy_id, []).append(item.cover)
    total, binding = Money.from_minor(0, currency), BINDING_BUYER_LIMIT
    for covers in policies.values():
        first = covers[0]
        limits: dict[int, list] = {}
        for cover in covers:
            limits.setdefault(cover.buyer_limit_id, []).append(cover)
        room = Decimal(0)
        for same in limits.values():
            left = (same[0].limit_approved.amount - same[0].limit_used.amount
                    + sum(c.limit_share.amount for c in same))
            room += max(left, Decimal(0))
        liability = first.remaining_max_liability.amount
        with localcontext(prec=60):
            by_limit = round_exact(room * first.coverage, first.limit_approved.currency,
                                   ROUND_DOWN)
            by_liability = round_exact(liability * first.coverage,
                                       first.remaining_max_liability.currency, ROUND_DOWN)
        cap = by_limit
        if by_liability < by_limit:
            cap, binding = by_liability, BINDING_LIABILITY
        converted, note = convert(cap, currency, rates)
        total += converted
        if note and note not in notes:
            notes.append(note)
    return total, binding


@dataclass
class ProductView:
    product: FinancingProduct
    bank_name: str
    eligibility: Eligibility
    items: list[Item]


def visible_products(*, kind: ProductKind | None = None, bank_org_id: int | None = None,
                     active_only: bool = True) -> list[FinancingProduct]:
    query = select(FinancingProduct).order_by(FinancingProduct.kind, FinancingProduct.id)
    if active_only:
        query = query.where(FinancingProduct.status == ProductStatus.ACTIVE)
    if kind is not None:
        query = query.where(FinancingProduct.kind == kind)
    if bank_org_id is not None:
        query = query.where(FinancingProduct.bank_org_id == bank_org_id)
    return list(db.session.execute(query).scalars())


def offers_for_sme(actor: User, *, currency: str | None = None) -> list[ProductView]:
    """Every active product with what the SME could borrow there against what it has now,
    eligible ones first, the largest amounts first."""
    authz.require(actor, "financing.browse", actor.organisation, hide=False)
    sme = actor.org_id
    products = visible_products()
    by_kind: dict[tuple[ProductKind, bool], list[Item]] = {}
    names = dict(db.session.execute(select(Organisation.id, Organisation.name).where(
        Organisation.id.in_({p.bank_org_id for p in products}))).all()) if products else {}
    facilities = {(f.bank_org_id, f.currency): f for f in db.session.execute(
        select(Facility).where(Facility.sme_org_id == sme)).scalars()}
    rates, rating = Rates(), current_rating(sme)
    chosen = {p.id: currency if currency in p.currency_list else p.currency_list[0]
              for p in products}
    used = {facilities[key].id: facilities[key] for key in
            {(p.bank_org_id, chosen[p.id]) for p in products} if key in facilities}
    figures = catalogue.figures_of(used.values())   # each facility's, read once
    memo: dict = {}
    views = []
    for product in products:
        key = (product.kind, product.require_verified)
        if key not in by_kind:
            by_kind[key] = collateral(sme, product.kind,
                                      require_verified=product.require_verified, memo=memo)
        items = by_kind[key]
        facility = facilities.get((product.bank_org_id, chosen[product.id]))
        result = eligibility(product, sme, items, chosen[product.id], rates=rates,
                             rating=rating, facility=facility,
                             facility_figures=figures.get(getattr(facility, "id", None)))
        views.append(ProductView(product, names.get(product.bank_org_id, "?"), result,
                                 _as_seen_by(product, items)))
    views.sort(key=lambda v: (not v.eligibility.eligible, v.eligibility.currency,
                              -v.eligibility.amount.amount, v.product.id))
    return views


def _as_seen_by(product: FinancingProduct, items: list[Item]) -> list[Item]:
    """The items as ``product``'s bank may take them: those whose indemnity stands in the
    way carry that as their problem (copies: the list is shared between products)."""
    shown = []
    for item in items:
        problem = bank_problem(item, product) if item.available else None
        shown.append(replace(item, problem=problem) if problem else item)
    return shown


# --------------------------------------------------------------------------- requests

@dataclass(frozen=True)
class RequestInput:
    amount: Money
    tenor_days: int
    purpose: str
    collateral: list[tuple[str, int]]       # (asset kind, id)
    product_ids: list[int]                  # one product per bank


def get_request(request_id: int, *, actor: User | None = None, lock: bool = False
                ) -> FinancingRequest:
    return visible(FinancingRequest, request_id, actor=actor, rule="financing.read_request",
                   what="financing request", lock=lock)


def _amount(amount: object) -> Money:
    if not isinstance(amount, Money):
        raise ValidationFailed(gettext("Enter the amount and its currency."), field="amount")
    if amount.amount <= 0:
        raise ValidationFailed(gettext("The amount must be greater than zero."), field="amount")
    try:
        amount.to_minor()
    except ValueError:
        raise ValidationFailed(gettext("%(currency)s amounts have at most %(n)s decimal "
                                       "places.", currency=amount.currency,
                                       n=minor_units(amount.currency)), field="amount") from None
    return amount


def _products(ids: Sequence[int]) -> list[FinancingProduct]:
    if not ids:
        raise ValidationFailed(gettext("Choose at least one bank's product."),
                               field="product_ids")
    if len(set(ids)) != len(ids) or len(ids) > MAX_BANKS:
        raise ValidationFailed(gettext("Choose up to %(n)s different products.", n=MAX_BANKS),
                               field="product_ids")
    found = {p.id: p for p in db.session.execute(select(FinancingProduct).where(
        FinancingProduct.id.in_([i for i in ids if isinstance(i, int)]))).scalars()}
    products = []
    for ident in ids:
        product = found.get(ident)
        if product is None:
            raise ValidationFailed(gettext("No product with the id %(id)s.", id=ident),
                                   field="product_ids")
        if product.status is not ProductStatus.ACTIVE:
            raise ValidationFailed(gettext("%(product)s is paused; it takes no new requests.",
                                           product=product.name), field="product_ids")
        products.append(product)
    banks = [p.bank_org_id for p in products]
    if len(set(banks)) != len(banks):
        raise ValidationFailed(gettext("Send the request to each bank through one product "
                                       "only."), field="product_ids")
    kinds = {p.kind for p in products}
    if len(kinds) != 1:
        raise ValidationFailed(gettext("The products chosen finance different things; choose "
                                       "products of one kind."), field="product_ids")
    return products


def _collateral_refs(refs: Sequence[tuple[str, int]], kind: ProductKind) -> list[int]:
    if not refs:
        raise ValidationFailed(gettext("Choose the collateral for the request."),
                               field="collateral")
    if len(refs) > MAX_ITEMS:
        raise ValidationFailed(gettext("At most %(n)s collateral items.", n=MAX_ITEMS),
                               field="collateral")
    wanted = ASSET_FOR_PRODUCT[kind]
    ids = []
    for ref in refs:
        try:
            asset_kind, asset_id = ref
            asset_kind = AssetKind(asset_kind)
        except (TypeError, ValueError):
            raise ValidationFailed(gettext("Name each collateral item by its kind and id."),
                                   field="collateral") from None
        if isinstance(asset_id, bool) or not isinstance(asset_id, int) or asset_id <= 0:
            raise ValidationFailed(gettext("Name each collateral item by its kind and id."),
                                   field="collateral")
        if asset_kind.value != wanted:
            raise ValidationFailed(gettext(
                "These products finance %(wanted)s, not %(kind)s.",
                wanted=asset_kind_label(AssetKind(wanted)), kind=asset_kind_label(asset_kind)),
                field="collateral")
        if asset_id in ids:
            raise ValidationFailed(gettext("An item is named twice."), field="collateral")
        ids.append(asset_id)
    return ids


def check_items(sme_org_id: int, kind: ProductKind, ids: Sequence[int], *,
                require_verified: bool) -> list[Item]:
    """The named items, each the SME's own and free to back a request; else the error
    names the item and why."""
    items = {item.id: item for item in collateral(sme_org_id, kind, ids,
                                                  require_verified=require_verified)}
    ordered = []
    for ident in ids:
        item = items.get(ident)
        if item is None:
            raise ValidationFailed(gettext(
                "No %(kind)s with the id %(id)s among yours.",
                kind=asset_kind_label(AssetKind(ASSET_FOR_PRODUCT[kind])), id=ident),
                field="collateral")
        if item.problem:
            raise ValidationFailed(item.problem, field="collateral", code="collateral_unavailable")
        ordered.append(item)
    return ordered


def submit_request(data: RequestInput, *, actor: User) -> FinancingRequest:
    """The SME asks for financing against chosen collateral, from one or several banks at
    once (through one product each)."""
    authz.require(actor, "financing.request", actor.organisation, hide=False)
    amount = _amount(data.amount)
    if not is_currency(amount.currency):
        raise ValidationFailed(gettext("Unknown currency."), field="currency")
    tenor = data.tenor_days
    if isinstance(tenor, bool) or not isinstance(tenor, int) or not 1 <= tenor <= MAX_TENOR_DAYS:
        raise ValidationFailed(gettext("The tenor is 1 to %(n)s days.", n=MAX_TENOR_DAYS),
                               field="tenor_days")
    purpose = (data.purpose or "").strip()
    if not 3 <= len(purpose) <= 500:
        raise ValidationFailed(gettext("Say what the money is for (3 to 500 characters)."),
                               field="purpose")
    products = _products(data.product_ids)
    kind = products[0].kind
    ids = _collateral_refs(data.collateral, kind)
    for product in products:
        if amount.currency not in product.currency_list:
            raise ValidationFailed(gettext(
                "%(product)s does not lend in %(currency)s (it lends in %(currencies)s).",
                product=product.name, currency=amount.currency,
                currencies=", ".join(product.currency_list)), field="currency")
        if tenor > product.max_tenor_days:
            raise ValidationFailed(gettext(
                "%(product)s lends for at most %(n)s days.", product=product.name,
                n=product.max_tenor_days), field="tenor_days")
    strict = any(p.require_verified for p in products)
    items = check_items(actor.org_id, kind, ids, require_verified=strict)
    for product in products:
        for item in items:
            problem = bank_problem(item, product)
            if problem:
                raise ValidationFailed(problem, field="collateral",
                                       code="collateral_unavailable")
    request = FinancingRequest(sme_org_id=actor.org_id, kind=kind, amount=amount.to_minor(),
                               currency=amount.currency, tenor_days=tenor, purpose=purpose,
                               status=RequestStatus.SUBMITTED, created_at=clock.now(),
                               created_by_id=actor.id)
    db.session.add(request)
    db.session.flush()
    targets = []
    for product in products:
        result = eligibility(product, actor.org_id, items, amount.currency)
        if result.reasons:
            raise ValidationFailed(f"{product.name}: {result.reasons[0]}", field="product_ids")
        if amount > result.amount:
            raise ValidationFailed(gettext(
                "%(amount)s is more than you can borrow at %(product)s: at most %(eligible)s "
                "(%(binding)s).", amount=str(amount), product=product.name,
                eligible=str(result.amount), binding=binding_label(result.binding)),
                field="amount", code="above_eligible_amount")
        target = RequestTarget(request_id=request.id, product_id=product.id,
                               bank_org_id=product.bank_org_id,
                               eligible_amount=result.amount.to_minor(),
                               binding=result.binding, created_at=clock.now())
        db.session.add(target)
        targets.append(target)
    for item in items:
        db.session.add(RequestCollateral(request_id=request.id, asset_kind=item.kind,
                                         asset_id=item.id, label=item.label[:200],
                                         value_amount=item.value.to_minor(),
                                         value_currency=item.value.currency))
    db.session.flush()
    if kind is ProductKind.WAREHOUSE_RECEIPT:
        from finance_app.warehouse.services import offer_to_banks
        for item in items:   # the banks asked may read the receipts they would take
            offer_to_banks(item.id, [t.bank_org_id for t in targets], actor=actor)
    audit.record("financing.request_submitted", actor=actor, obj=request,
                 changes={"amount": str(amount), "tenor_days": tenor, "kind": kind.value,
                          "collateral": [i.key for i in items],
                          "banks": [t.bank_org_id for t in targets]})
    sme = actor.organisation
    for target in targets:
        notify(target.bank_org_id, "financing.request_received",
               dedupe_key=f"request:{request.id}:bank:{target.bank_org_id}",
               link=f"/financing/review/{target.id}", sme=sme.name, amount=str(amount),
               tenor=tenor)
    return request


def withdraw_request(request_id: int, *, actor: User) -> FinancingRequest:
    """The SME withdraws a request it has not accepted an offer on; the banks' offers lapse."""
    request = get_request(request_id, actor=actor, lock=True)
    authz.require(actor, "financing.manage_request", request, hide=False)
    if request.status is RequestStatus.WITHDRAWN:
        return request
    request.apply(RequestAction.WITHDRAW, actor=actor)
    lapse_others(request, keep=None, actor=actor, reason="withdrawn")
    return request


LAPSED_NOTICES = {"accepted": "financing.offer_lapsed_accepted",
                  "withdrawn": "financing.offer_lapsed_withdrawn"}


def lapse_others(request: FinancingRequest, *, keep: int | None, actor: User | None,
                 reason: str) -> int:
    """Every live offer on the request but ``keep`` lapses (``reason``: "accepted", another
    offer was, or "withdrawn", the request was); returns how many."""
    notice = LAPSED_NOTICES[reason]
    from finance_app.financing.models import Decision
    from finance_app.financing.states import DecisionKind
    live = db.session.execute(select(Decision).where(
        Decision.request_id == request.id,
        Decision.status.in_([OfferStatus.PREPARED, OfferStatus.APPROVED]),
        Decision.kind == DecisionKind.OFFER).with_for_update()).scalars().all()
    count = 0
    for decision in live:
        if decision.id == keep:
            continue
        decision.apply(OfferAction.LAPSE, actor=actor, note=reason)   # a code, for the record
        count += 1
        if decision.approved_at is not None:
            notify(decision.bank_org_id, notice, dedupe_key=f"offer:{decision.id}:lapsed",
                   link=f"/financing/review/{decision.target_id}", request=request.id)
    return count


def asset_kind_label(kind: AssetKind) -> str:
    return {AssetKind.ORDER: gettext("orders"), AssetKind.RECEIVABLE: gettext("receivables"),
            AssetKind.WAREHOUSE_RECEIPT: gettext("warehouse receipts"),
            AssetKind.INSURED_RECEIVABLE: gettext("insured receivables")}[AssetKind(kind)]


def binding_label(binding: str) -> str:
    # only the label asked for is translated: the marketplace asks once for every product
    if binding == BINDING_ADVANCE:
        return gettext("the advance rate on the collateral binds")
    if binding == BINDING_FACILITY:
        return gettext("the facility's available amount binds")
    if binding == BINDING_NONE:
        return gettext("no collateral of this kind is available")
    if binding == BINDING_BUYER_LIMIT:
        return gettext("the buyer's remaining credit limit times the coverage binds")
    if binding == BINDING_LIABILITY:
        return gettext("the policy's remaining maximum liability times the coverage binds")
    return binding


def sme_is_filed(org: Organisation) -> bool:
    return org.kind is OrgKind.SME and org.filing_status is FilingStatus.APPROVED
