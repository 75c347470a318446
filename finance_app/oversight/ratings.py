"""Credit ratings from the platform's own evidence.

Every SME starts at 50 points and each factor moves the score up or down:

=============  ==========================================================  ============
factor         evidence (as of the business date)                          points
=============  ==========================================================  ============
volume         verified export trade over the last 365 days, in CNY        -5 .. +15
trend          the last 180 days against the 180 before                     -5 .. +5
match_share    share of judged orders that passed three-document matching  -10 .. +10
age            days since the platform approved the SME's filing            -5 .. +5
punctuality    days late on instalments due, weighted by amount            -15 .. +10
defaults       loans in default                                            -50 .. 0
claims         export credit insurance claims on its buyers (two years)    -30 .. 0
alerts         open severe and high risk alerts about it                   -39 .. 0
=============  ==========================================================  ============

The score (0 to 100) maps to a grade: 85 AAA, 75 AA, 65 A, 55 BBB, 45 BB, 35 B, below C.
Each factor keeps its value and its points, so a rating says in plain words what moved
it; the SME's page adds what would improve it.

Ratings are recomputed for every filed SME by the daily job, and for one SME after a
repayment, a default or an insurance claim. A new rating row is kept only when the grade,
score or a factor changed (the history is the list of changes); otherwise the current
rating is marked confirmed on that date.

The reads are grouped by organisation (one query a factor for any number of SMEs), so the
daily run rates every SME in a few statements.
"""
from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Iterable, Sequence

from flask_babel import gettext
from sqlalchemy import and_, func, or_, select

from finance_app import clock
from finance_app.accounts.models import Organisation, User
from finance_app.accounts.states import FilingStatus, OrgKind
from finance_app.audit import services as audit
from finance_app.extensions import db
from finance_app.money import Money

GRADES = ("AAA", "AA", "A", "BBB", "BB", "B", "C")
THRESHOLDS = ((85, "AAA"), (75, "AA"), (65, "A"), (55, "BBB"), (45, "BB"), (35, "B"))
BASE = 50
YEAR, HALF = 365, 180

TRIGGERS = ("daily", "repayment", "default", "claim", "manual")


def grade_for(score: int) -> str:
    for floor, grade in THRESHOLDS:
        if score >= floor:
            return grade
    return "C"


@dataclass
class FactorResult:
    code: str
    points: int
    value: str                      # a plain figure: "1,234,567.89 CNY", "96.0%", "3"
    params: dict = field(default_factory=dict)   # what the sentence says, as numbers


@dataclass
class RatingResult:
    org_id: int
    factors: list[FactorResult]

    @property
    def score(self) -> int:
        return max(0, min(100, BASE + sum(f.points for f in self.factors)))

    @property
    def grade(self) -> str:
        return grade_for(self.score)

    def fingerprint(self) -> str:
        # the age counts up every day: only its points make a new rating
        body = json.dumps([[f.code, f.points, None if f.code == "age" else f.value]
                           for f in self.factors], sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(body.encode()).hexdigest()


# --------------------------------------------------------------------------- evidence

class _Cny:
    """Amounts in several currencies as CNY at the day's rate (each rate looked up once;
    a currency without a rate is left out and named)."""

    def __init__(self, on: date):
        self.on, self.rates, self.missing = on, {"CNY": Decimal(1)}, set()

    def __call__(self, amount: Decimal, currency: str) -> Decimal:
        if currency not in self.rates:
            from finance_app.ledger.rates import RateMissing, find_rate
            try:
                self.rates[currency] = find_rate(currency, "CNY", self.on).rate
            except (RateMissing, Exception):   # an unknown or unquoted currency
                self.rates[currency] = None
        rate = self.rates[currency]
        if rate is None:
            self.missing.add(currency)
            return Decimal(0)
        return amount * rate


def _since(column_date, column_created, start: date, end: date | None = None):
    """Orders placed from ``start`` (to before ``end``): by order date, else filing time."""
    begin = datetime.combine(start, time.min)
    cond = or_(column_date >= start, and_(column_date.is_(None), column_created >= begin))
    if end is not None:
        stop = datetime.combine(end, time.min)
        cond = and_(cond, or_(column_date < end,
                              and_(column_date.is_(None), column_created < stop)))
    return cond


def _in(column, org_ids: Sequence[int] | None):
    return column.in_(list(org_ids)) if org_ids is not None else True


def _verified_volume(org_ids, start: date, end: date | None, cny: _Cny) -> dict[int, Decimal]:
    from finance_app.trade.models import MatchVerdict, Order
    from finance_app.trade.states import Direction, Verdict
    rows = db.session.execute(
        select(Order.filer_org_id, Order.currency, func.sum(Order.goods_value))
        .join(MatchVerdict, MatchVerdict.order_id == Order.id)
        .where(_in(Order.filer_org_id, org_ids), Order.direction == Direction.EXPORT,
               MatchVerdict.status == Verdict.VERIFIED,
               _since(Order.order_date, Order.created_at, start, end))
        .group_by(Order.filer_org_id, Order.currency))
    totals: dict[int, Decimal] = defaultdict(Decimal)
    for org_id, currency, amount in rows:
        totals[org_id] += cny(Decimal(amount or 0), currency)
    return totals


def _judged(org_ids, start: date) -> dict[int, tuple[int, int]]:
    from finance_app.trade.models import MatchVerdict, Order
    from finance_app.trade.states import Verdict
    rows = db.session.execute(
        select(Order.filer_org_id, MatchVerdict.status, func.count())
        .join(MatchVerdict, MatchVerdict.order_id == Order.id)
        .where(_in(Order.filer_org_id, org_ids),
               MatchVerdict.status.in_([Verdict.VERIFIED, Verdict.MISMATCH]),
               _since(Order.order_date, Order.created_at, start))
        .group_by(Order.filer_org_id, MatchVerdict.status))
    found: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for org_id, status, n in rows:
        found[org_id][0 if status is Verdict.VERIFIED else 1] += n
    return {k: (v[0], v[1]) for k, v in found.items()}


def _lateness(org_ids, today: date, cny: _Cny) -> dict[int, tuple[Decimal, Decimal, int]]:
    """By SME: the amount of instalments due by today, the amount-weighted days late, and
    how many were late at all."""
    from finance_app.financing.models import Instalment, Loan
    from finance_app.financing.states import InstalmentStatus
    from finance_app.money import minor_units
    rows = db.session.execute(
        select(Loan.sme_org_id, Instalment.currency, Instalment.due_date, Instalment.paid_on,
               Instalment.status, Instalment.principal_due + Instalment.interest_due)
        .join(Loan, Loan.id == Instalment.loan_id)
        .where(_in(Loan.sme_org_id, org_ids), Instalment.due_date <= today))
    # summed in minor units by SME and currency, then converted once a currency
    sums: dict[tuple[int, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for org_id, currency, due, paid_on, status, units in rows:
        if status is InstalmentStatus.PAID:
            days = max(((paid_on or due) - due).days, 0)
        else:
            days = (today - due).days
        found = sums[(org_id, currency)]
        found[0] += units
        found[1] += units * days
        found[2] += days > 0
    weight: dict[int, Decimal] = defaultdict(Decimal)
    weighted: dict[int, Decimal] = defaultdict(Decimal)
    late: dict[int, int] = defaultdict(int)
    for (org_id, currency), (units, unit_days, late_count) in sums.items():
        places = -minor_units(currency)
        weight[org_id] += cny(Decimal(units).scaleb(places), currency)
        weighted[org_id] += cny(Decimal(unit_days).scaleb(places), currency)
        late[org_id] += late_count
    return {k: (weight[k], weighted[k], late[k]) for k in weight}


def _counts(org_column, status_column, statuses, org_ids, *where) -> dict[int, int]:
    rows = db.session.execute(select(org_column, func.count()).where(
        _in(org_column, org_ids), status_column.in_(list(statuses)), *where)
        .group_by(org_column))
    return dict(rows.all())


def _alerts(org_ids) -> dict[int, tuple[int, int]]:
    from finance_app.oversight.models import RiskAlert
    from finance_app.oversight.states import AlertStatus, Severity
    rows = db.session.execute(
        select(RiskAlert.subject_org_id, RiskAlert.severity, func.count())
        .where(_in(RiskAlert.subject_org_id, org_ids),
               RiskAlert.status != AlertStatus.RESOLVED,
               RiskAlert.severity.in_([Severity.SEVERE, Severity.HIGH]))
        .group_by(RiskAlert.subject_org_id, RiskAlert.severity))
    found: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for org_id, severity, n in rows:
        found[org_id][0 if severity is Severity.SEVERE else 1] += n
    return {k: (v[0], v[1]) for k, v in found.items()}


# --------------------------------------------------------------------------- factors

def _money(amount: Decimal) -> str:
    return f"{amount.quantize(Decimal('0.01'), ROUND_HALF_UP):,} CNY"


def _volume(total: Decimal) -> FactorResult:
    if total <= 0:
        points = -5
    elif total < 100_000:
        points = 0
    elif total < 1_000_000:
        points = 5
    elif total < 10_000_000:
        points = 10
    else:
        points = 15
    return FactorResult("volume", points, _money(total), {"amount": str(total)})


def _trend(recent: Decimal, before: Decimal) -> FactorResult:
    if recent <= 0 and before <= 0:
        return FactorResult("trend", 0, "—", {"change": None})
    if before <= 0:
        return FactorResult("trend", 3, "—", {"change": None, "new": True})
    change = (recent - before) / before
    points = 5 if change >= Decimal("0.2") else -5 if change <= Decimal("-0.3") else 0
    return FactorResult("trend", points, f"{change * 100:+.1f}%", {"change": str(change)})


def _match_share(judged: tuple[int, int] | None) -> FactorResult:
    verified, mismatched = judged or (0, 0)
    if verified + mismatched == 0:
        return FactorResult("match_share", 0, "—", {"judged": 0})
    share = Decimal(verified) / Decimal(verified + mismatched)
    points = 10 if share >= Decimal("0.95") else 5 if share >= Decimal("0.8") else \
        0 if share >= Decimal("0.6") else -10
    return FactorResult("match_share", points, f"{share * 100:.1f}%",
                        {"verified": verified, "mismatched": mismatched})


def _age(days: int) -> FactorResult:
    points = -5 if days < 90 else 0 if days < 365 else 3 if days < 730 else 5
    return FactorResult("age", points, str(days), {"days": days})


def _punctuality(found: tuple[Decimal, Decimal, int] | None) -> FactorResult:
    if not found or found[0] <= 0:
        return FactorResult("punctuality", 0, "—", {"instalments": 0})
    weight, weighted, late = found
    average = (weighted / weight).quantize(Decimal("0.1"), ROUND_HALF_UP)
    points = 10 if average <= Decimal("0.5") else 5 if average <= 7 else \
        -5 if average <= 30 else -15
    return FactorResult("punctuality", points, f"{average}", {"days": str(average),
                                                             "late": late})


def _defaults(n: int) -> FactorResult:
    return FactorResult("defaults", max(-25 * n, -50), str(n), {"count": n})


def _claims(paid: int, pending: int) -> FactorResult:
    points = max(-10 * paid, -20) + max(-5 * pending, -10)
    return FactorResult("claims", points, f"{paid} / {pending}",
                        {"paid": paid, "pending": pending})


def _alert_factor(found: tuple[int, int] | None) -> FactorResult:
    severe, high = found or (0, 0)
    points = max(-10 * severe, -30) + max(-3 * high, -9)
    return FactorResult("alerts", points, f"{severe} / {high}", {"severe": severe,
                                                                 "high": high})


def compute(org_ids: Sequence[int] | None = None, *, on: date | None = None
            ) -> dict[int, RatingResult]:
    """The rating each SME in ``org_ids`` (every filed SME: None) would get today."""
    from finance_app.financing.models import Loan
    from finance_app.financing.states import LoanStatus
    from finance_app.insurance.models import Claim
    from finance_app.insurance.states import ClaimStatus
    today = on or clock.today()
    query = select(Organisation.id, Organisation.decided_at, Organisation.created_at).where(
        Organisation.kind == OrgKind.SME, Organisation.filing_status == FilingStatus.APPROVED)
    if org_ids is not None:
        query = query.where(Organisation.id.in_(list(org_ids)))
    smes = db.session.execute(query).all()
    ids = None if org_ids is None else [row[0] for row in smes]
    cny = _Cny(today)
    year = _verified_volume(ids, today - timedelta(days=YEAR), None, cny)
    recent = _verified_volume(ids, today - timedelta(days=HALF), None, cny)
    before = _verified_volume(ids, today - timedelta(days=2 * HALF),
                              today - timedelta(days=HALF), cny)
    judged = _judged(ids, today - timedelta(days=YEAR))
    lateness = _lateness(ids, today, cny)
    defaults = _counts(Loan.sme_org_id, Loan.status, [LoanStatus.DEFAULTED], ids)
    two_years = Claim.filed_on >= today - timedelta(days=2 * YEAR)
    paid = _counts(Claim.insured_org_id, Claim.status,
                   [ClaimStatus.APPROVED, ClaimStatus.PAID], ids, two_years)
    pending = _counts(Claim.insured_org_id, Claim.status,
                      [ClaimStatus.FILED, ClaimStatus.UNDER_ASSESSMENT], ids, two_years)
    alerts = _alerts(ids)
    results = {}
    for org_id, decided_at, created_at in smes:
        since = (decided_at or created_at).date()
        results[org_id] = RatingResult(org_id, [
            _volume(year.get(org_id, Decimal(0))),
            _trend(recent.get(org_id, Decimal(0)), before.get(org_id, Decimal(0))),
            _match_share(judged.get(org_id)),
            _age(max((today - since).days, 0)),
            _punctuality(lateness.get(org_id)),
            _defaults(defaults.get(org_id, 0)),
            _claims(paid.get(org_id, 0), pending.get(org_id, 0)),
            _alert_factor(alerts.get(org_id)),
        ])
    return results


# --------------------------------------------------------------------------- storing

def rated_org(org_id: int, *, actor: User) -> Organisation:
    """The SME ``org_id`` if ``actor`` may see its rating; NotFound otherwise."""
    from finance_app import authz
    from finance_app.errors import NotFound
    org = db.session.get(Organisation, org_id)
    if org is None or org.kind is not OrgKind.SME \
            or not authz.can(actor, "oversight.read_rating", org):
        raise NotFound("organisation", org_id)
    return org


def current(org_id: int):
    """The SME's current rating (the latest), or None."""
    from finance_app.oversight.models import CreditRating
    return db.session.execute(select(CreditRating).where(CreditRating.org_id == org_id)
                              .order_by(CreditRating.id.desc()).limit(1)).scalar_one_or_none()


def current_grades(org_ids: Iterable[int]) -> dict[int, str]:
    from finance_app.oversight.models import CreditRating
    ids = list(org_ids)
    if not ids:
        return {}
    latest = (select(CreditRating.org_id, func.max(CreditRating.id).label("id"))
              .where(CreditRating.org_id.in_(ids)).group_by(CreditRating.org_id).subquery())
    return dict(db.session.execute(select(CreditRating.org_id, CreditRating.grade)
                                   .join(latest, latest.c.id == CreditRating.id)).all())


def history(org_id: int, limit: int = 50) -> list:
    from finance_app.oversight.models import CreditRating
    return list(db.session.execute(select(CreditRating).where(CreditRating.org_id == org_id)
                                   .order_by(CreditRating.computed_on.desc(),
                                             CreditRating.id.desc()).limit(limit)).scalars())


def _store(result: RatingResult, trigger: str, actor: User | None, today: date,
           previous=None) -> tuple[object, bool]:
    from finance_app.oversight.models import CreditRating, RatingFactor
    fingerprint = result.fingerprint()
    if previous is not None and previous.fingerprint == fingerprint:
        previous.confirmed_on = today
        return previous, False
    rating = CreditRating(org_id=result.org_id, grade=result.grade, score=result.score,
                          trigger=trigger, fingerprint=fingerprint, computed_on=today,
                          confirmed_on=today, computed_at=clock.now())
    rating.factors = [RatingFactor(position=i, code=f.code, points=f.points,
                                   value=f.value[:60], params=json.dumps(f.params,
                                                                         sort_keys=True))
                      for i, f in enumerate(result.factors)]
    db.session.add(rating)
    changes = {"grade": [previous.grade if previous else None, rating.grade],
               "score": [previous.score if previous else None, rating.score],
               "trigger": trigger}
    audit.record("oversight.rating_changed", actor=actor, org_id=result.org_id, obj=rating,
                 changes=changes)
    return rating, True


def rate(org_id: int, *, trigger: str = "manual", actor: User | None = None):
    """Recompute one SME's rating now; returns its current rating (None if it is not a
    filed SME)."""
    if trigger not in TRIGGERS:
        raise ValueError(trigger)
    results = compute([org_id])
    if org_id not in results:
        return None
    rating, _ = _store(results[org_id], trigger, actor, clock.today(), current(org_id))
    db.session.flush()
    return rating


def rate_all(today: date) -> str:
    """The daily duty: every filed SME rated for ``today``. Unchanged ratings are marked
    confirmed with one UPDATE, and the changed ones written with one INSERT for the
    ratings and one for their factors."""
    from finance_app.oversight.models import CreditRating, RatingFactor
    results = compute(on=today)
    latest = select(func.max(CreditRating.id)).group_by(CreditRating.org_id)
    previous = {row.org_id: row for row in db.session.execute(
        select(CreditRating.org_id, CreditRating.id, CreditRating.fingerprint,
               CreditRating.grade, CreditRating.score).where(CreditRating.id.in_(latest)))}
    confirmed, fresh = [], []
    for org_id, result in results.items():
        before = previous.get(org_id)
        if before is not None and before.fingerprint == result.fingerprint():
            confirmed.append(before.id)
        else:
            fresh.append((result, before))
    table = CreditRating.__table__
    for start in range(0, len(confirmed), 1000):
        db.session.execute(table.update().where(
            table.c.id.in_(confirmed[start:start + 1000])).values(confirmed_on=today))
    if fresh:
        now = clock.now()
        ids = db.session.execute(table.insert().returning(
            table.c.id, sort_by_parameter_order=True), [
            dict(org_id=r.org_id, grade=r.grade, score=r.score, trigger="daily",
                 fingerprint=r.fingerprint(), computed_on=today, confirmed_on=today,
                 computed_at=now) for r, _ in fresh]).scalars().all()
        db.session.execute(RatingFactor.__table__.insert(), [
            dict(rating_id=rating_id, position=i, code=f.code, points=f.points,
                 value=f.value[:60], params=json.dumps(f.params, sort_keys=True))
            for rating_id, (r, _) in zip(ids, fresh) for i, f in enumerate(r.factors)])
        for rating_id, (r, before) in zip(ids, fresh):
            audit.record("oversight.rating_changed", org_id=r.org_id,
                         object_type="CreditRating", object_id=rating_id,
                         changes={"grade": [before.grade if before else None, r.grade],
                                  "score": [before.score if before else None, r.score],
                                  "trigger": "daily"})
    return f"{len(results)} SMEs rated, {len(fresh)} ratings changed"


# --------------------------------------------------------------------------- words

def factor_label(code: str) -> str:
    return {
        "volume": gettext("Verified trade volume (12 months)"),
        "trend": gettext("Trend of verified trade"),
        "match_share": gettext("Orders passing three-document matching"),
        "age": gettext("Time on the platform"),
        "punctuality": gettext("Repayment punctuality"),
        "defaults": gettext("Loans in default"),
        "claims": gettext("Export credit insurance claims"),
        "alerts": gettext("Open severe and high risk alerts"),
    }.get(code, code)


def trigger_label(trigger: str) -> str:
    return {"daily": gettext("the daily run"), "repayment": gettext("after a repayment"),
            "default": gettext("after a default"), "claim": gettext("after an insurance claim"),
            "manual": gettext("recomputed by the platform")}.get(trigger, trigger)


def explain(factor) -> str:
    """What the factor found and how it moved the score, in a sentence."""
    p = json.loads(factor.params or "{}") if isinstance(factor.params, str) else factor.params
    points = factor.points
    if factor.code == "volume":
        text = gettext("Exports verified by three-document matching over the last 12 months: "
                       "%(value)s.", value=factor.value)
    elif factor.code == "trend":
        if p.get("new"):
            text = gettext("Verified trade started in the last six months.")
        elif p.get("change") is None:
            text = gettext("No verified trade in the last twelve months to compare.")
        else:
            text = gettext("The last six months against the six before: %(change)s.",
                           change=factor.value)
    elif factor.code == "match_share":
        if not p.get("judged", 1):
            text = gettext("No order has been judged by three-document matching yet.")
        else:
            text = gettext("%(verified)s of %(total)s judged orders passed (%(share)s).",
                           verified=p["verified"], total=p["verified"] + p["mismatched"],
                           share=factor.value)
    elif factor.code == "age":
        text = gettext("Filed and approved %(days)s days ago.", days=p.get("days"))
    elif factor.code == "punctuality":
        if not p.get("instalments", 1):
            text = gettext("No instalment has fallen due yet.")
        else:
            text = gettext("On average %(days)s days late, weighted by amount; instalments "
                           "paid or due late: %(late)s.", days=p["days"], late=p["late"])
    elif factor.code == "defaults":
        text = gettext("Loans in default: %(n)s.", n=p.get("count", 0))
    elif factor.code == "claims":
        text = gettext("Claims paid on its buyers: %(paid)s; being assessed: %(pending)s.",
                       paid=p.get("paid", 0), pending=p.get("pending", 0))
    elif factor.code == "alerts":
        text = gettext("%(severe)s severe and %(high)s high risk alerts are open.",
                       severe=p.get("severe", 0), high=p.get("high", 0))
    else:
        text = factor.code
    if points > 0:
        moved = gettext("+%(n)s points.", n=points)
    elif points < 0:
        moved = gettext("%(n)s points.", n=points)
    else:
        moved = gettext("No effect on the score.")
    return f"{text} {moved}"


MAX_POINTS = {"volume": 15, "trend": 5, "match_share": 10, "age": 5, "punctuality": 10,
              "defaults": 0, "claims": 0, "alerts": 0}


def advice(factor) -> str | None:
    """What the SME could do to gain points on this factor (None: nothing to gain)."""
    if factor.points >= MAX_POINTS.get(factor.code, 0):
        return None
    return {
        "volume": gettext("File the payment slips, waybills and inventories of your exports "
                          "so that more of your trade is verified: 10,000,000 CNY a year "
                          "scores highest."),
        "trend": gettext("Keep your verified exports growing: 20% more than the six months "
                         "before gains 5 points."),
        "match_share": gettext("Correct the documents that disagree (above all a payer who is "
                               "not the buyer): 95% passing gains 10 points."),
        "age": gettext("Time on the platform counts by itself: two years score highest."),
        "punctuality": gettext("Pay instalments on or before their due date: on time "
                               "throughout gains 10 points."),
        "defaults": gettext("Settle the loans in default with your banks."),
        "claims": gettext("Claims on your buyers weigh for two years; insure buyers with a "
                          "good record and follow up invoices early."),
        "alerts": gettext("Answer the open risk alerts with the platform operator so they can "
                          "be resolved."),
    }.get(factor.code)


def _register() -> None:
    from finance_app import daily as daily_run
    daily_run.duty("ratings")(rate_all)


_register()
