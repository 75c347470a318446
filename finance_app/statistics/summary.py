"""The orders' per-day summary (``OrderDay``) behind the dashboard's trade figures, and its
refresh by the daily job.

The summary holds the complete business days before ``SummaryState.covered_until`` (the
business date of the last refresh) as the orders and their verdicts stood at the refresh's
watermark ``changes_until``. The dashboard reads it for those days and groups the orders
themselves (the same GROUP BY as without a summary) for:

* the days from ``covered_until`` on (today, and any order dated later), and
* every day an order was filed, re-filed or re-matched on after the watermark
  (``Order.updated_at``, which filing sets with ``created_at`` and every re-filing moves;
  ``MatchVerdict.evaluated_at``), and the day a re-filed order had before
  (``DocumentVersion``).

So the figures are the orders' own at every moment, refreshed or not; a refresh only moves
work from the live GROUP BY to the summary. The watermark trails the refresh by ``SETTLE``,
so that a filing stamped before the refresh but committed after it is still seen as a
change. Should an SME move to another pilot-zone area, the summary's areas are out of date:
the figures for an area are then grouped from the orders until the next refresh rebuilds
the summary. With no summary yet, every figure is grouped from the orders.
"""
from __future__ import annotations

import hashlib
import json
import time as timer
from datetime import date, datetime, timedelta
from typing import Iterable

from sqlalchemy import (
    BigInteger, Integer, String, and_, case, cast, delete, func, insert, literal, null, or_,
    select, type_coerce,
)

from finance_app import clock
from finance_app.accounts.models import Organisation
from finance_app.extensions import db
from finance_app.financing.models import Decision, FinancingProduct, FinancingRequest, Loan
from finance_app.financing.models import RequestTarget
from finance_app.statistics.models import FinancingDay, FinancingFigure, OrderDay, SummaryState
from finance_app.statistics.queries import (
    Filters, _day_of, _during, _in_period, _in_zone, _order_day, day_start,
)
from finance_app.trade.models import DocumentVersion, MatchVerdict, Order
from finance_app.trade.states import DocumentKind, Verdict

STATE_ID = 1
SETTLE = timedelta(hours=1)              # the longest a filing transaction is expected to run
UTC_OFFSET = timedelta(hours=8)          # business days are China Standard Time
PAYABLE = Order.goods_value + Order.freight + Order.tax_total - Order.discount
VERIFIED = func.sum(case((MatchVerdict.status == Verdict.VERIFIED.value, 1), else_=0))


# --------------------------------------------------------------------------- what changed

def zones_digest() -> str:
    """A fingerprint of which organisation is filed in which pilot-zone area."""
    rows = db.session.execute(select(Organisation.id, Organisation.zone)
                              .where(Organisation.zone.is_not(None))
                              .order_by(Organisation.id)).all()
    return hashlib.sha256(";".join(f"{i}:{z}" for i, z in rows).encode()).hexdigest()


def _version_day(data: str) -> date | None:
    """The business day of a replaced order version, by the same rule as ``_order_day``."""
    values = json.loads(data)
    if values.get("order_date"):
        return date.fromisoformat(values["order_date"][:10])
    for key in ("app_time", "created_at"):
        if values.get(key):
            return (datetime.fromisoformat(values[key]) + UTC_OFFSET).date()
    return None


def changed_days(since: datetime) -> set[date]:
    """The business days whose orders the summary may not show as they are now: of every
    order filed, re-filed or re-matched after ``since``, and the days re-filed orders had."""
    day = _order_day()
    changed = select(Order.id).where(Order.updated_at > since)
    found = set(db.session.execute(select(day).where(Order.updated_at > since)
                                   .distinct()).scalars())
    # each re-matched order's day looked up by its id (a join would read every order)
    order_day = select(day).where(Order.id == MatchVerdict.order_id).scalar_subquery()
    found |= set(db.session.execute(select(order_day).where(MatchVerdict.evaluated_at > since)
                                    .distinct()).scalars())
    for data in db.session.execute(select(DocumentVersion.data).where(
            DocumentVersion.kind == DocumentKind.ORDER, DocumentVersion.replaced_at > since,
            DocumentVersion.document_id.in_(changed))).scalars():
        former = _version_day(data)
        if former is not None:
            found.add(former)
    return found


def _runs(days: Iterable[date]) -> list[tuple[date, date]]:
    """Consecutive days as (first, last) pairs."""
    runs: list[list[date]] = []
    for day in sorted(set(days)):
        if runs and day == runs[-1][1] + timedelta(days=1):
            runs[-1][1] = day
        else:
            runs.append([day, day])
    return [(a, b) for a, b in runs]


def on_days(days: Iterable[date], from_day: date | None = None):
    """Orders whose business day is one of ``days`` or ``from_day`` or later: the day rule
    itself, behind the same condition on the indexed columns it is made of (the order date;
    the filing times of orders without one), so only those orders are read."""
    day, runs = _order_day(), _runs(days)
    exact, dated, by_app, by_created = [], [], [], []
    for first, last in runs:
        exact.append(day.between(first, last))
        dated.append(Order.order_date.between(first, last))
        start, end = day_start(first), day_start(last + timedelta(days=1))
        by_app.append(and_(Order.app_time >= start, Order.app_time < end))
        by_created.append(and_(Order.created_at >= start, Order.created_at < end))
    if from_day is not None:
        exact.append(day >= from_day)
        dated.append(Order.order_date >= from_day)
        by_app.append(Order.app_time >= day_start(from_day))
        by_created.append(Order.created_at >= day_start(from_day))
    if not exact:
        return False
    undated = Order.order_date.is_(None)
    return and_(or_(or_(*dated), and_(undated, or_(*by_app)),
                    and_(undated, Order.app_time.is_(None), or_(*by_created))),
                or_(*exact))


# --------------------------------------------------------------------------- reading

def live_groups(f: Filters, *where) -> list[tuple]:
    """The orders grouped by day, currency, mode and country, from the orders themselves:
    (day, currency, mode, country, orders, payable in 10^-5 units, verified)."""
    day = _order_day().label("day")
    return db.session.execute(
        select(day, Order.currency, Order.trade_mode, Order.buyer_country,
               func.count(Order.id), func.sum(PAYABLE), VERIFIED)
        .select_from(Order).outerjoin(MatchVerdict, MatchVerdict.order_id == Order.id)
        .where(*_in_period(_order_day(), f), *_in_zone(Order.filer_org_id, f), *where)
        .group_by(day, Order.currency, Order.trade_mode, Order.buyer_country)).all()


def _stored_groups(f: Filters, state: SummaryState, stale: set[date]) -> list[tuple]:
    verified = func.sum(case((OrderDay.verdict == Verdict.VERIFIED, OrderDay.orders), else_=0))
    where = [OrderDay.day < state.covered_until, *_in_period(OrderDay.day, f)]
    if stale:
        where.append(OrderDay.day.not_in(sorted(stale)))
    if f.zone is not None:
        where.append(OrderDay.zone == f.zone)
    return db.session.execute(
        select(OrderDay.day, OrderDay.currency, OrderDay.trade_mode, OrderDay.buyer_country,
               func.sum(OrderDay.orders), type_coerce(func.sum(OrderDay.amount), BigInteger),
               verified)
        .where(*where)
        .group_by(OrderDay.day, OrderDay.currency, OrderDay.trade_mode,
                  OrderDay.buyer_country)).all()


def order_groups(f: Filters) -> list[tuple]:
    """What ``live_groups`` answers, read from the summary for the days it holds unchanged
    and from the orders for the others."""
    state = db.session.get(SummaryState, STATE_ID)
    if state is None or (f.zone is not None and state.zones_digest != zones_digest()):
        return live_groups(f)
    stale = {d for d in changed_days(state.changes_until) if d < state.covered_until}
    return _stored_groups(f, state, stale) + live_groups(f, on_days(stale, state.covered_until))


# --------------------------------------------------------------------------- financing

def _financing_sources() -> list[dict]:
    """Each financing figure: what it counts and sums, the time that gives its day, the SME
    whose area it is, and how to read its rows."""
    R, T, D, L, P = FinancingRequest, RequestTarget, Decision, Loan, FinancingProduct
    no_kind, no_bank = cast(null(), String(20)), cast(null(), Integer)
    return [
        dict(figure=literal(FinancingFigure.REQUEST.value, String(20)), kind=R.kind,
             bank=no_bank, currency=R.currency, group=[R.kind, R.currency], amount=R.amount,
             stamp=R.created_at, sme=R.sme_org_id, rows=lambda q: q.select_from(R),
             where=[]),
        dict(figure=literal(FinancingFigure.TARGET.value, String(20)), kind=no_kind,
             bank=T.bank_org_id, currency=R.currency, group=[T.bank_org_id, R.currency],
             amount=R.amount, stamp=R.created_at, sme=R.sme_org_id,
             rows=lambda q: q.select_from(T).join(R, R.id == T.request_id), where=[]),
        dict(figure=D.kind, kind=R.kind, bank=D.bank_org_id, currency=D.currency,
             group=[D.kind, R.kind, D.bank_org_id, D.currency], amount=D.amount,
             stamp=D.approved_at, sme=R.sme_org_id,
             rows=lambda q: q.select_from(D).join(R, R.id == D.request_id),
             where=[D.approved_at.is_not(None)]),
        dict(figure=literal(FinancingFigure.LOAN.value, String(20)), kind=P.kind,
             bank=L.bank_org_id, currency=L.currency, group=[P.kind, L.bank_org_id, L.currency],
             amount=L.principal_amount, stamp=L.accepted_at, sme=L.sme_org_id,
             rows=lambda q: q.select_from(L).join(P, P.id == L.product_id), where=[]),
    ]


def _stamped_on(stamp, days: Iterable[date], from_day: date | None = None):
    """Rows whose time falls on one of ``days`` (business days) or from ``from_day`` on."""
    found = [and_(stamp >= day_start(first), stamp < day_start(last + timedelta(days=1)))
             for first, last in _runs(days)]
    if from_day is not None:
        found.append(stamp >= day_start(from_day))
    return or_(*found) if found else False


def financing_changed_days(state: SummaryState) -> set[date]:
    """The business days financing rows were added to (or decisions approved on) since the
    summary's refresh."""
    found: set[date] = set()
    for stamp, ident, until, extra in (
            (FinancingRequest.created_at, FinancingRequest.id, state.request_id_until, []),
            (Decision.approved_at, Decision.id, state.decision_id_until,
             [Decision.approved_at.is_not(None)]),
            (Loan.accepted_at, Loan.id, state.loan_id_until, [])):
        found |= set(db.session.execute(select(_day_of(stamp)).where(
            or_(ident > until, stamp > state.changes_until), *extra).distinct()).scalars())
    return found


def _value(value):
    return getattr(value, "value", value)


def financing_groups(f: Filters, *, from_rows: bool = False) -> list[tuple]:
    """Financing by figure, product kind, bank and currency, in the period and area:
    (figure, kind, bank id, currency, count, amount in minor units); from the summary for
    the days it holds unchanged and from the financing rows for the others (all of them
    ``from_rows``)."""
    state = None if from_rows else db.session.get(SummaryState, STATE_ID)
    whole = state is None or (f.zone is not None and state.zones_digest != zones_digest())
    found = []
    if not whole:
        stale = {d for d in financing_changed_days(state) if d < state.covered_until}
        where = [FinancingDay.day < state.covered_until, *_in_period(FinancingDay.day, f)]
        if stale:
            where.append(FinancingDay.day.not_in(sorted(stale)))
        if f.zone is not None:
            where.append(FinancingDay.zone == f.zone)
        keys = (FinancingDay.figure, FinancingDay.product_kind, FinancingDay.bank_org_id,
                FinancingDay.currency)
        found += db.session.execute(select(*keys, func.sum(FinancingDay.count),
                                           func.sum(FinancingDay.amount))
                                    .where(*where).group_by(*keys)).all()
    for source in _financing_sources():
        stamp = source["stamp"]
        where = [*source["where"], *_during(stamp, f), *_in_zone(source["sme"], f)]
        if not whole:
            where.append(_stamped_on(stamp, stale, state.covered_until))
        found += db.session.execute(source["rows"](select(
            source["figure"], source["kind"], source["bank"], source["currency"], func.count(),
            func.sum(source["amount"]))).where(*where).group_by(*source["group"])).all()
    return [(FinancingFigure(_value(figure)), _value(kind), bank, code, count, units)
            for figure, kind, bank, code, count, units in found]


def _summarise_financing(days_where) -> None:
    """Insert the financing summary rows of the days ``days_where(stamp)`` selects."""
    for source in _financing_sources():
        stamp = source["stamp"]
        day = _day_of(stamp).label("day")
        rows = source["rows"](select(day, source["figure"], Organisation.zone, source["kind"],
                                     source["bank"], source["currency"], func.count(),
                                     func.sum(source["amount"])))
        rows = rows.join(Organisation, Organisation.id == source["sme"]).where(
            *source["where"], days_where(stamp)).group_by(day, Organisation.zone,
                                                          *source["group"])
        db.session.execute(insert(FinancingDay).from_select(
            ["day", "figure", "zone", "product_kind", "bank_org_id", "currency", "count",
             "amount"], rows))


# --------------------------------------------------------------------------- refreshing

def _summarise(*where) -> None:
    """Insert the summary rows of the orders ``where`` selects."""
    day = _order_day().label("day")
    keys = (day, Organisation.zone, Order.trade_mode, Order.buyer_country, Order.currency,
            MatchVerdict.status)
    rows = (select(*keys, func.count(Order.id), func.sum(PAYABLE))
            .select_from(Order).join(Organisation, Organisation.id == Order.filer_org_id)
            .outerjoin(MatchVerdict, MatchVerdict.order_id == Order.id)
            .where(*where).group_by(*keys))
    db.session.execute(insert(OrderDay).from_select(
        ["day", "zone", "trade_mode", "buyer_country", "currency", "verdict", "orders",
         "amount"], rows))


def refresh(business_date: date | None = None, *, rebuild: bool = False) -> str:
    """Bring the summaries up to the days before ``business_date`` (today by default): the
    days changed since the last refresh and the days completed since, or, with ``rebuild``
    (or no summary yet, or an SME moved area), every day. Does not commit."""
    business_date = business_date or clock.today()
    started, now = timer.perf_counter(), clock.now()
    state = db.session.get(SummaryState, STATE_ID, with_for_update=True)
    digest = zones_digest()
    ids = db.session.execute(select(
        select(func.coalesce(func.max(FinancingRequest.id), 0)).scalar_subquery(),
        select(func.coalesce(func.max(Decision.id), 0)).scalar_subquery(),
        select(func.coalesce(func.max(Loan.id), 0)).scalar_subquery())).one()
    before = lambda stamp: _day_of(stamp) < business_date  # noqa: E731
    if rebuild or state is None or state.zones_digest != digest:
        db.session.execute(delete(OrderDay))
        db.session.execute(delete(FinancingDay))
        _summarise(_order_day() < business_date)
        _summarise_financing(before)
        days = db.session.execute(select(func.count(OrderDay.day.distinct()))).scalar_one()
        what = f"rebuilt, {days} days"
    else:
        completed = set()
        first = state.covered_until
        while first < business_date:                    # the days completed since
            completed.add(first)
            first += timedelta(days=1)
        order_days = {d for d in changed_days(state.changes_until) if d < business_date}
        financing_days = {d for d in financing_changed_days(state) if d < business_date}
        what = f"{len(order_days | completed)} days recomputed ({len(order_days)} changed " \
               f"since the last refresh); financing {len(financing_days | completed)} days " \
               f"({len(financing_days)} changed)"
        order_days |= completed
        financing_days |= completed
        db.session.execute(delete(OrderDay).where(or_(
            OrderDay.day.in_(sorted(order_days)), OrderDay.day >= business_date)))
        db.session.execute(delete(FinancingDay).where(or_(
            FinancingDay.day.in_(sorted(financing_days)), FinancingDay.day >= business_date)))
        if order_days:
            _summarise(on_days(order_days), _order_day() < business_date)
        if financing_days:
            _summarise_financing(lambda stamp: and_(_stamped_on(stamp, financing_days),
                                                    before(stamp)))
        days = len(order_days | financing_days)
    if state is None:
        state = SummaryState(id=STATE_ID)
        db.session.add(state)
    state.covered_until, state.changes_until = business_date, now - SETTLE
    state.zones_digest, state.refreshed_at, state.days_refreshed = digest, now, days
    state.request_id_until, state.decision_id_until, state.loan_id_until = ids
    db.session.flush()
    return f"summary up to {business_date - timedelta(days=1)}: {what} in " \
           f"{timer.perf_counter() - started:.1f} s"


def daily(business_date: date) -> str:
    """The daily duty: the summary brought up to the day before ``business_date``."""
    return refresh(business_date)


def _register() -> None:
    from finance_app import daily as daily_run
    daily_run.duty("statistics")(daily)


_register()
