"""The platform operator's statistics: the zone's cross-border trade, financing, loan quality
and export credit insurance, for a period and a pilot-zone area.

Every figure is a SQL aggregate (GROUP BY); Python only adds up and converts the groups,
whose number depends on the days, currencies, modes and countries, never on the rows.

* **Period**: a business date range (``clock``): an order by its order date (else the
  business date of its filing), a request by the day it was sent, a decision by the day it
  was approved, a loan by the day it was accepted (its quality: by the day it was
  disbursed), a declaration by the day it was declared, a claim by the day it was filed.
* **Area**: the pilot-zone area (``Organisation.zone``) of the SME concerned: the order's
  filer, the request's or loan's borrower, the declaration's or claim's insured.
* **CNY**: an order's amount at the rate of its own day (``ledger.rates.find_rate``), each
  group rounded once to the fen; financing and insurance amounts, and what is outstanding,
  at the rate of the period's last day (today at the latest). Currencies without a rate
  are listed in ``unconverted`` and left out of the CNY figures, never guessed.
* **Loan quality**: what is outstanding is the loans' principal not yet repaid (their
  instalments' positions, which the reconciliation proves equal to the ledger); overdue:
  of loans overdue or defaulted; non-performing: defaulted, or an instalment overdue more
  than 90 days.
* **Insurance**: exposure is the insured amount of declarations still unpaid (the buyer's
  receivable open), premiums those of declarations not cancelled, the claims ratio the
  indemnity paid over the premiums.
"""
from __future__ import annotations

import bisect
import calendar
import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Iterable, Mapping

from flask_babel import gettext
from sqlalchemy import Date, and_, case, cast, func, literal_column, or_, select

from finance_app import authz, clock
from finance_app.accounts.models import Organisation
from finance_app.accounts.states import OrgKind
from finance_app.errors import ValidationFailed
from finance_app.extensions import db
from finance_app.financing.models import Decision, FinancingRequest, Instalment, Loan
from finance_app.financing.states import InstalmentStatus, LoanStatus, ProductKind
from finance_app.insurance.models import Claim, ShipmentDeclaration
from finance_app.insurance.states import USES_LIMIT, ClaimStatus, DeclarationStatus
from finance_app.ledger import rates
from finance_app.ledger.models import ExchangeRate
from finance_app.money import minor_units
from finance_app.trade.models import Order, Receivable, ReceivableStatus
from finance_app.trade.states import TradeMode

TRADE_MODES = tuple(m.value for m in TradeMode)        # 9610, 9710, 9810, 1210
PRODUCT_KINDS = tuple(k.value for k in ProductKind)
NPL_DAYS = 90
ORDER_SCALE = Decimal(10) ** 5                         # trade amounts: ExactDecimal(5)
FEN = Decimal("0.01")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_DAY = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")


# --------------------------------------------------------------------------- filters

@dataclass(frozen=True)
class Filters:
    date_from: date | None = None
    date_to: date | None = None
    zone: str | None = None

    def as_args(self) -> dict[str, str]:
        """The filters as query arguments (for links and exports)."""
        args = {"from": self.date_from and self.date_from.isoformat(),
                "to": self.date_to and self.date_to.isoformat(), "zone": self.zone}
        return {k: v for k, v in args.items() if v}


def _period_end(value: str, field: str, *, end: bool) -> date:
    month, day = _MONTH.match(value), _DAY.match(value)
    if month is None and day is None:
        raise ValidationFailed(gettext(
            "%(value)s is not a month (YYYY-MM) or a date (YYYY-MM-DD).", value=value),
            field=field)
    year, mon = int((month or day).group(1)), int((month or day).group(2))
    if not 1 <= mon <= 12:
        raise ValidationFailed(gettext("%(value)s: there is no month %(month)s.",
                                       value=value, month=mon), field=field)
    if year < 1900:
        raise ValidationFailed(gettext("%(value)s is too far in the past.", value=value),
                               field=field)
    last = calendar.monthrange(year, mon)[1]
    if month is not None:
        return date(year, mon, last if end else 1)
    dom = int(day.group(3))
    if not 1 <= dom <= last:
        raise ValidationFailed(gettext("%(value)s is not a date of that month.", value=value),
                               field=field)
    return date(year, mon, dom)


def zones() -> list[str]:
    """The pilot-zone areas SMEs have filed, in order."""
    return list(db.session.execute(
        select(Organisation.zone).where(Organisation.kind == OrgKind.SME,
                                        Organisation.zone.is_not(None))
        .distinct().order_by(Organisation.zone)).scalars())


def parse_filters(args: Mapping[str, Any]) -> Filters:
    """Filters from query arguments ``from``, ``to`` (a month or a date each: a month is
    its first day as a start and its last day as an end) and ``zone``; bad input is a
    ``ValidationFailed`` naming the field."""
    raw = {k: (str(args.get(k) or "")).strip() for k in ("from", "to", "zone")}
    start = _period_end(raw["from"], "from", end=False) if raw["from"] else None
    stop = _period_end(raw["to"], "to", end=True) if raw["to"] else None
    if start and stop and start > stop:
        raise ValidationFailed(gettext("The period ends (%(to)s) before it starts (%(start)s).",
                                       to=stop.isoformat(), start=start.isoformat()),
                               field="to")
    zone = raw["zone"] or None
    if zone is not None and zone not in zones():
        raise ValidationFailed(gettext("No SME is filed in the area %(zone)s.", zone=zone),
                               field="zone")
    return Filters(start, stop, zone)


# --------------------------------------------------------------------------- SQL helpers

def _dialect() -> str:
    return db.session.get_bind().dialect.name


def _day_of(column):
    """The business date (China Standard Time) of a stored naive-UTC time."""
    if _dialect() == "sqlite":
        return func.date(column, "+8 hours", type_=Date)
    return cast(column + literal_column("interval '8 hours'"), Date)


def _in_period(day, f: Filters) -> list:
    found = []
    if f.date_from is not None:
        found.append(day >= f.date_from)
    if f.date_to is not None:
        found.append(day <= f.date_to)
    return found


def day_start(day: date) -> datetime:
    """The stored (naive UTC) time a business day starts at."""
    return datetime.combine(day, time()) - timedelta(hours=8)


def _during(stamp, f: Filters) -> list:
    """The period as conditions on a stored naive-UTC time: the same days as
    ``_in_period(_day_of(stamp), f)``, but on PostgreSQL as a range of the column itself,
    which its index and the planner's estimates can use (SQLite compares the days)."""
    if _dialect() == "sqlite":
        return _in_period(_day_of(stamp), f)
    found = []
    if f.date_from is not None:
        found.append(stamp >= day_start(f.date_from))
    if f.date_to is not None:
        found.append(stamp < day_start(f.date_to + timedelta(days=1)))
    return found


def _in_zone(org_id_column, f: Filters) -> list:
    if f.zone is None:
        return []
    return [org_id_column.in_(select(Organisation.id).where(Organisation.zone == f.zone))]


def _order_day():
    return func.coalesce(Order.order_date, _day_of(Order.app_time), _day_of(Order.created_at),
                         type_=Date)


# --------------------------------------------------------------------------- CNY

_RATE_MEMO: dict[str, Any] = {"signature": None, "quotes": {}}


def _rate_signature() -> tuple:
    """Stored rates are only ever added: their count and last id say whether any changed."""
    return tuple(db.session.execute(
        select(func.count(ExchangeRate.id), func.max(ExchangeRate.id))).one())


class CnyRates:
    """The CNY rate of (currency, day) pairs as ``find_rate`` answers them, asked once per
    stored rate date that can matter (the latest on or before the day of any rate of the
    currency or of the EUR/CNY pivot), and remembered until a rate is added."""

    def __init__(self):
        signature = _rate_signature()
        if _RATE_MEMO["signature"] != signature:
            _RATE_MEMO.update(signature=signature, quotes={})
        self._quotes: dict = _RATE_MEMO["quotes"]
        self._dates: dict[str, list[date]] = {}
        self.missing: set[str] = set()

    def _relevant_dates(self, currencies: set[str]) -> None:
        wanted = currencies - set(self._dates) - {"CNY"}
        if not wanted:
            return
        rows = db.session.execute(select(ExchangeRate.base, ExchangeRate.quote,
                                         ExchangeRate.rate_date).where(or_(
            ExchangeRate.base.in_(wanted), ExchangeRate.quote.in_(wanted),
            and_(ExchangeRate.base.in_(rates.PIVOTS), ExchangeRate.quote.in_(rates.PIVOTS))))
            .distinct()).all()
        pivot = {r.rate_date for r in rows if {r.base, r.quote} <= set(rates.PIVOTS)}
        for currency in wanted:
            own = {r.rate_date for r in rows if currency in (r.base, r.quote)}
            self._dates[currency] = sorted(own | pivot) if own else []

    def rate(self, currency: str, day: date) -> Decimal | None:
        if currency == "CNY":
            return Decimal(1)
        self._relevant_dates({currency})
        known = self._dates[currency]
        at = bisect.bisect_right(known, min(day, clock.today()))
        if at == 0:
            self.missing.add(currency)
            return None
        key = (currency, known[at - 1])
        if key not in self._quotes:
            try:
                self._quotes[key] = rates.find_rate(currency, "CNY", key[1]).rate
            except ValidationFailed:
                self._quotes[key] = None
        if self._quotes[key] is None:
            self.missing.add(currency)
        return self._quotes[key]

    def cny(self, amount: Decimal, currency: str, day: date) -> Decimal | None:
        rate = self.rate(currency, day)
        if rate is None:
            return None
        return (amount * rate).quantize(FEN, rounding=ROUND_HALF_UP)

    def prepare(self, currencies: Iterable[str]) -> None:
        self._relevant_dates(set(currencies))


def _add(total: Decimal | None, value: Decimal | None) -> Decimal:
    return (total or Decimal(0)) + (value or Decimal(0))


def _share(part: int | Decimal, whole: int | Decimal) -> Decimal | None:
    if not whole:
        return None
    return (Decimal(part) / Decimal(whole)).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)


def _minor(units: int | None, currency: str) -> Decimal:
    return Decimal(units or 0).scaleb(-minor_units(currency))


def rate_day(f: Filters) -> date:
    """The day stocks and financing amounts are converted at: the period's end, or today."""
    today = clock.today()
    return min(f.date_to, today) if f.date_to else today


# --------------------------------------------------------------------------- trade

def _volume_row(key: str) -> dict:
    return {"key": key, "orders": 0, "verified": 0, "amount_cny": Decimal(0)}


def _finish(rows: Iterable[dict]) -> list[dict]:
    done = []
    for row in rows:
        row["verified_share"] = _share(row["verified"], row["orders"])
        done.append(row)
    return done


def trade_volume(f: Filters, fx: CnyRates) -> dict:
    """Orders by trade mode, destination country, currency and month: counts, amounts (in
    CNY at each day's rate, and per currency) and the share verified by three-document
    matching. One GROUP BY by day, currency, mode and country: over the per-day summary for
    the days it holds unchanged, over the orders for the others (``summary``)."""
    from finance_app.statistics import summary      # it builds on this module's helpers
    groups = summary.order_groups(f)
    fx.prepare({g[1] for g in groups})
    totals = _volume_row("total")
    by_mode = {m: _volume_row(m) for m in TRADE_MODES}
    by_country: dict[str, dict] = {}
    by_currency: dict[str, dict] = {}
    by_month: dict[str, dict] = {}
    for when, currency, mode, country, count, units, nverified in groups:
        amount = Decimal(units or 0) / ORDER_SCALE
        cny = fx.cny(amount, currency, when)
        month = when.strftime("%Y-%m")
        mode_key = mode or "—"
        for row in (totals, by_mode.setdefault(mode_key, _volume_row(mode_key)),
                    by_country.setdefault(country or "—", _volume_row(country or "—")),
                    by_currency.setdefault(currency, {**_volume_row(currency),
                                                      "amount": Decimal(0)}),
                    by_month.setdefault(month, {**_volume_row(month), "by_mode": {}})):
            row["orders"] += count
            row["verified"] += int(nverified or 0)
            row["amount_cny"] = _add(row["amount_cny"], cny)
        by_currency[currency]["amount"] += amount
        modes = by_month[month]["by_mode"]
        modes[mode_key] = _add(modes.get(mode_key), cny)
    return {
        "totals": _finish([totals])[0],
        "by_mode": _finish(by_mode.values()),
        "by_country": _finish(sorted(by_country.values(),
                                     key=lambda r: (-r["amount_cny"], r["key"]))),
        "by_currency": _finish(sorted(by_currency.values(), key=lambda r: r["key"])),
        "by_month": _finish(by_month[m] for m in sorted(by_month)),
    }


# --------------------------------------------------------------------------- financing

def _financing_row(key: str, label: str | None = None) -> dict:
    return {"key": key, "label": label or key, "requests": 0, "requested_cny": Decimal(0),
            "offers": 0, "offered_cny": Decimal(0), "rejections": 0, "loans": 0,
            "lent_cny": Decimal(0)}


def _currency_row(currency: str) -> dict:
    return {**_financing_row(currency), "requested": Decimal(0), "offered": Decimal(0),
            "lent": Decimal(0)}


def _decision_times(f: Filters) -> tuple[Decimal | None, Decimal | None, int]:
    """Median and mean hours from a request to each bank's approved decision on it (kept
    on the decision when approved; the request is read only for its SME's area)."""
    where = [Decision.approved_at.is_not(None), *_during(Decision.approved_at, f)]
    base = select(Decision.seconds_to_decision.label("s")).where(*where)
    if f.zone is not None:
        base = base.join(FinancingRequest, FinancingRequest.id == Decision.request_id).where(
            *_in_zone(FinancingRequest.sme_org_id, f))
    values = base.subquery().c.s
    if _dialect() == "postgresql":              # one pass over the decisions for all three
        count, mean, median = db.session.execute(select(
            func.count(values), func.avg(values),
            func.percentile_cont(0.5).within_group(values))).one()
        if not count:
            return None, None, 0
    else:
        count, mean = db.session.execute(select(func.count(values), func.avg(values))).one()
        if not count:
            return None, None, 0
        ordered = select(values).order_by(values)
        middle = db.session.execute(ordered.limit(2 - count % 2)
                                    .offset((count - 1) // 2)).scalars().all()
        median = sum(Decimal(str(v)) for v in middle) / len(middle)
    hours = lambda s: (Decimal(str(s)) / 3600).quantize(Decimal("0.1"),  # noqa: E731
                                                        rounding=ROUND_HALF_UP)
    return hours(median), hours(mean), count


def financing(f: Filters, fx: CnyRates) -> dict:
    """Requests, offers, rejections and loans by product kind, by bank and by currency, the
    approval rate (offers among the banks' approved decisions) and the time to decision."""
    on = rate_day(f)
    names = dict(db.session.execute(select(Organisation.id, Organisation.name).where(
        Organisation.kind == OrgKind.BANK)).all())
    by_kind = {k: _financing_row(k) for k in PRODUCT_KINDS}
    by_bank: dict[int, dict] = {}
    by_currency: dict[str, dict] = {}
    totals = _financing_row("total")

    def bank(bank_id: int) -> dict:
        return by_bank.setdefault(bank_id, _financing_row(str(bank_id), names.get(bank_id)))

    def currency_row(code: str) -> dict:
        return by_currency.setdefault(code, _currency_row(code))

    from finance_app.statistics import summary      # it builds on this module's helpers
    from finance_app.statistics.models import FinancingFigure as Fig
    groups = summary.financing_groups(f)
    fx.prepare({g[3] for g in groups})
    for figure, kind, bank_id, code, count, units in groups:
        amount = _minor(units, code)
        if figure is Fig.TARGET:
            row = bank(bank_id)
            row["requests"] += count
            row["requested_cny"] = _add(row["requested_cny"], fx.cny(amount, code, on))
            continue
        rows = [totals, by_kind[kind], currency_row(code)]
        if figure is Fig.REQUEST:
            cny = fx.cny(amount, code, on)
            for row in rows:
                row["requests"] += count
                row["requested_cny"] = _add(row["requested_cny"], cny)
            by_currency[code]["requested"] += amount
            continue
        rows.insert(2, bank(bank_id))
        if figure is Fig.REJECTION:
            for row in rows:
                row["rejections"] += count
            continue
        cny = fx.cny(amount, code, on)
        measure = ("offers", "offered") if figure is Fig.OFFER else ("loans", "lent")
        for row in rows:
            row[measure[0]] += count
            row[f"{measure[1]}_cny"] = _add(row[f"{measure[1]}_cny"], cny)
        by_currency[code][measure[1]] += amount

    median, mean, decided = _decision_times(f)
    every = [totals, *by_kind.values(), *by_bank.values(), *by_currency.values()]
    for row in every:
        row["approval_rate"] = _share(row["offers"], row["offers"] + row["rejections"])
    return {"totals": totals, "by_kind": list(by_kind.values()),
            "by_bank": sorted(by_bank.values(), key=lambda r: r["label"]),
            "by_currency": sorted(by_currency.values(), key=lambda r: r["key"]),
            "decisions": decided, "decision_hours_median": median,
            "decision_hours_mean": mean}


# --------------------------------------------------------------------------- loan quality

def loan_quality(f: Filters, fx: CnyRates) -> dict:
    """What live loans (disbursed in the period) still owe in principal, how much of it is
    overdue and how much non-performing, per currency and in CNY."""
    today, on = clock.today(), rate_day(f)
    left = Instalment.principal_due - Instalment.principal_paid
    oldest_overdue = func.min(case((Instalment.status == InstalmentStatus.OVERDUE.value,
                                    Instalment.overdue_since)))
    # a live loan owes only on its unpaid instalments (the open-instalment index finds them)
    per_loan = (select(Instalment.loan_id.label("loan_id"), func.sum(left).label("left"),
                       oldest_overdue.label("since"))
                .where(Instalment.status.in_([InstalmentStatus.PENDING.value,
                                              InstalmentStatus.OVERDUE.value]))
                .group_by(Instalment.loan_id).subquery())
    npl = or_(Loan.status == LoanStatus.DEFAULTED.value,
              per_loan.c.since <= today - timedelta(days=NPL_DAYS))
    overdue = Loan.status.in_([LoanStatus.OVERDUE.value, LoanStatus.DEFAULTED.value])
    klass = case((npl, "npl"), (overdue, "overdue"), else_="current").label("class")
    groups = db.session.execute(
        select(Loan.currency, klass, func.count(), func.sum(per_loan.c.left))
        .join(per_loan, per_loan.c.loan_id == Loan.id)
        .where(Loan.status.in_([s.value for s in (LoanStatus.DISBURSED, LoanStatus.OVERDUE,
                                                  LoanStatus.DEFAULTED)]),
               *_in_period(Loan.disbursed_on, f), *_in_zone(Loan.sme_org_id, f))
        .group_by(Loan.currency, klass)).all()
    fields = ("outstanding", "overdue", "npl")
    totals = {"loans": 0, "overdue_loans": 0, "npl_loans": 0,
              **{f"{k}_cny": Decimal(0) for k in fields}}
    by_currency: dict[str, dict] = {}
    for code, klass_, count, units in groups:
        amount = _minor(units, code)
        cny = fx.cny(amount, code, on)
        row = by_currency.setdefault(code, {"currency": code, "loans": 0, **{
            k: Decimal(0) for k in fields}, **{f"{k}_cny": Decimal(0) for k in fields}})
        parts = ["outstanding"] + (["overdue"] if klass_ in ("overdue", "npl") else []) \
            + (["npl"] if klass_ == "npl" else [])
        row["loans"] += count
        totals["loans"] += count
        totals["overdue_loans"] += count if "overdue" in parts else 0
        totals["npl_loans"] += count if "npl" in parts else 0
        for part in parts:
            row[part] += amount
            row[f"{part}_cny"] = _add(row[f"{part}_cny"], cny)
            totals[f"{part}_cny"] = _add(totals[f"{part}_cny"], cny)
    for row in (totals, *by_currency.values()):
        row["overdue_ratio"] = _share(row["overdue_cny"], row["outstanding_cny"])
        row["npl_ratio"] = _share(row["npl_cny"], row["outstanding_cny"])
    return {**totals, "by_currency": sorted(by_currency.values(), key=lambda r: r["currency"])}


# --------------------------------------------------------------------------- insurance

def insurance(f: Filters, fx: CnyRates) -> dict:
    """Insured exposure (declarations in the period still unpaid), premiums (of those not
    cancelled) and claims with the indemnity paid, per currency and in CNY."""
    on = rate_day(f)
    declared = [*_in_period(ShipmentDeclaration.declared_on, f),
                *_in_zone(ShipmentDeclaration.insured_org_id, f)]
    unpaid = and_(ShipmentDeclaration.status.in_([s.value for s in USES_LIMIT]),
                  Receivable.status == ReceivableStatus.OPEN.value)
    rows: dict[str, dict] = {}

    def row(code: str) -> dict:
        return rows.setdefault(code, {"currency": code, "declarations": 0,
                                      "exposure": Decimal(0), "premiums": Decimal(0),
                                      "claims": 0, "claims_paid": 0,
                                      "indemnity_paid": Decimal(0)})

    for code, count, exposure, premiums in db.session.execute(
            select(ShipmentDeclaration.currency, func.count(),
                   func.sum(case((unpaid, ShipmentDeclaration.insured_amount), else_=0)),
                   func.sum(ShipmentDeclaration.premium_amount))
            .join(Receivable, Receivable.id == ShipmentDeclaration.receivable_id)
            .where(ShipmentDeclaration.status != DeclarationStatus.CANCELLED.value, *declared)
            .group_by(ShipmentDeclaration.currency)):
        target = row(code)
        target["declarations"] += count
        target["exposure"] += _minor(exposure, code)
        target["premiums"] += _minor(premiums, code)
    paid = Claim.status == ClaimStatus.PAID.value
    for code, count, npaid, indemnity in db.session.execute(
            select(Claim.indemnity_currency, func.count(), func.sum(case((paid, 1), else_=0)),
                   func.sum(case((paid, Claim.indemnity_amount), else_=0)))
            .where(*_in_period(Claim.filed_on, f), *_in_zone(Claim.insured_org_id, f))
            .group_by(Claim.indemnity_currency)):
        target = row(code)
        target["claims"] += count
        target["claims_paid"] += int(npaid or 0)
        target["indemnity_paid"] += _minor(indemnity, code)
    keys = ("exposure", "premiums", "indemnity_paid")
    totals = {"declarations": 0, "claims": 0, "claims_paid": 0,
              **{f"{k}_cny": Decimal(0) for k in keys}}
    for target in rows.values():
        for key in keys:
            target[f"{key}_cny"] = fx.cny(target[key], target["currency"], on)
            totals[f"{key}_cny"] = _add(totals[f"{key}_cny"], target[f"{key}_cny"])
        for key in ("declarations", "claims", "claims_paid"):
            totals[key] += target[key]
        target["claims_ratio"] = _share(target["indemnity_paid"], target["premiums"])
    totals["claims_ratio"] = _share(totals["indemnity_paid_cny"], totals["premiums_cny"])
    return {**totals, "by_currency": sorted(rows.values(), key=lambda r: r["currency"])}


# --------------------------------------------------------------------------- everything

def dashboard(f: Filters, *, actor) -> dict:
    """Every figure of the dashboard for the filters (the platform operator's only)."""
    authz.require(actor, "statistics.read")
    fx = CnyRates()
    figures = {"trade": trade_volume(f, fx), "financing": financing(f, fx),
               "loans": loan_quality(f, fx), "insurance": insurance(f, fx)}
    return {"filters": f, "as_of": clock.today(), "rate_day": rate_day(f),
            "unconverted": sorted(fx.missing), **figures}
