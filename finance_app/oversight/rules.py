"""Risk rules: what the daily run looks for, and the thresholds the platform operator sets.

Each rule reads recent evidence with grouped SQL and raises alerts through
``services.raise_alert`` (a dedupe key each, so a second run raises nothing new):

* ``document_mismatch``: three-document matching found the documents disagree; high when
  the payer is not the buyer, medium otherwise.
* ``payer_many_buyers``: one payer paid for orders of many different buyers of one SME.
* ``split_orders``: several orders of one SME to one buyer on one day, each just under a
  threshold amount.
* ``round_tripping``: the seller itself (its name or credit code) paid its buyer's order.
* ``volume_spike``: an SME's orders of the last 30 days far above its monthly average of
  the six months before.
* ``double_pledge``: an attempt to pledge or finance collateral that already backs
  financing (the registry records every refused attempt).
* ``ltv_breach``: a pledged receipt's loan-to-value went above the margin-call threshold.
* ``buyer_concentration``: one buyer holds more than a set share of an SME's insured
  exposure.

Overdue instalments and defaults raise their alerts in financing, as they happen.
Thresholds live in ``risk_settings``; each has a default, a sensible range and a unit,
and a change is refused outside it.
"""
from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import ROUND_CEILING, Decimal, InvalidOperation
from typing import Any

from flask_babel import gettext, lazy_gettext as _l
from sqlalchemy import and_, func, or_, select

from finance_app import clock
from finance_app.accounts.models import Organisation, User
from finance_app.audit import services as audit
from finance_app.errors import ValidationFailed
from finance_app.extensions import db
from finance_app.oversight.models import RiskSetting
from finance_app.oversight.services import raise_alert
from finance_app.oversight.states import Severity


@dataclass(frozen=True)
class Setting:
    key: str
    label: Any
    default: Decimal
    low: Decimal
    high: Decimal
    whole: bool = False     # a count or a number of days


def _d(text: str) -> Decimal:
    return Decimal(text)


SETTINGS = {s.key: s for s in (
    Setting("scan_days", _l("Days of new documents each daily run looks at"), _d("3"),
            _d("1"), _d("31"), whole=True),
    Setting("payer_min_buyers", _l("Different buyers one payer may pay for"), _d("5"),
            _d("2"), _d("100"), whole=True),
    Setting("payer_window_days", _l("Window for one payer's buyers (days)"), _d("30"),
            _d("1"), _d("365"), whole=True),
    Setting("split_threshold_cny", _l("Order amount threshold watched for splitting (CNY)"),
            _d("5000"), _d("100"), _d("10000000")),
    Setting("split_margin", _l("How far under the threshold counts as just under"),
            _d("0.10"), _d("0.01"), _d("0.50")),
    Setting("split_min_orders", _l("Orders to one buyer on one day that count as split"),
            _d("3"), _d("2"), _d("50"), whole=True),
    Setting("spike_factor", _l("Volume spike: times the monthly average"), _d("3"),
            _d("1.5"), _d("50")),
    Setting("spike_min_cny", _l("Volume spike: smallest 30-day volume watched (CNY)"),
            _d("100000"), _d("0"), _d("1000000000")),
    Setting("concentration_max_share", _l("Largest share of insured exposure on one buyer"),
            _d("0.60"), _d("0.10"), _d("1.00")),
)}


def values() -> dict[str, Decimal]:
    """Every threshold as it stands (the operator's, else the default)."""
    stored = dict(db.session.execute(select(RiskSetting.key, RiskSetting.value)).all())
    return {key: Decimal(stored[key]) if key in stored else s.default
            for key, s in SETTINGS.items()}


def set_thresholds(changes: dict[str, Any], *, actor: User) -> dict[str, Decimal]:
    """The platform operator changes thresholds; each is checked against its range and the
    whole change is refused if one is out of it."""
    from finance_app import authz
    authz.require(actor, "oversight.configure", actor.organisation, hide=False)
    current = values()
    checked: dict[str, Decimal] = {}
    for key, raw in changes.items():
        setting = SETTINGS.get(key)
        if setting is None:
            raise ValidationFailed(gettext("There is no threshold called %(key)s.", key=key),
                                   field=key)
        try:
            value = raw if isinstance(raw, Decimal) else Decimal(str(raw).strip())
        except (InvalidOperation, ValueError):
            raise ValidationFailed(gettext("Enter a number."), field=key) from None
        if isinstance(raw, (bool, float)) or not value.is_finite():
            raise ValidationFailed(gettext("Enter a number."), field=key)
        if setting.whole and value != value.to_integral_value():
            raise ValidationFailed(gettext("Enter a whole number."), field=key)
        if not setting.low <= value <= setting.high:
            raise ValidationFailed(gettext(
                "%(label)s must be between %(low)s and %(high)s.", label=str(setting.label),
                low=setting.low, high=setting.high), field=key, code="out_of_range")
        if value.as_tuple().exponent < -4:
            raise ValidationFailed(gettext("At most 4 decimals."), field=key)
        checked[key] = value
    for key in sorted(checked):
        value = checked[key]
        if value == current[key]:
            continue
        row = _locked_setting(key)
        before = Decimal(row.value)          # as it stands under the lock
        if value == before:
            continue
        row.value, row.updated_at, row.updated_by_id = str(value), clock.now(), actor.id
        audit.record("oversight.threshold_changed", actor=actor, object_type="RiskSetting",
                     object_id=key, changes={"value": [str(before), str(value)]})
    db.session.flush()
    return values()


def _locked_setting(key: str) -> RiskSetting:
    """The threshold's row, locked; made with the default first if it has none (two
    operators saving it for the first time at once: one makes it, both then take turns)."""
    from sqlalchemy.dialects.postgresql import insert as pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert
    insert = pg_insert if db.session.get_bind().dialect.name == "postgresql" else sqlite_insert
    db.session.execute(insert(RiskSetting).values(
        key=key, value=str(SETTINGS[key].default), updated_at=clock.now())
        .on_conflict_do_nothing(index_elements=["key"]))
    return db.session.execute(select(RiskSetting).where(RiskSetting.key == key)
                              .with_for_update().execution_options(populate_existing=True)
                              ).scalar_one()


# --------------------------------------------------------------------------- helpers

def _h(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _start(days: int, today: date) -> datetime:
    return datetime.combine(today - timedelta(days=days), time.min)


def _order_when(order_cls, start: date, end: date):
    """Orders placed from ``start`` to ``end`` (inclusive): by order date, else filing."""
    begin, stop = datetime.combine(start, time.min), datetime.combine(end, time.max)
    return or_(and_(order_cls.order_date >= start, order_cls.order_date <= end),
               and_(order_cls.order_date.is_(None), order_cls.created_at >= begin,
                    order_cls.created_at <= stop))


def _cny(on: date):
    from finance_app.oversight.ratings import _Cny
    return _Cny(on)


def _to_currency(amount_cny: Decimal, currency: str, cny) -> Decimal | None:
    cny(Decimal(0), currency)            # looks the rate up once
    rate = cny.rates.get(currency)
    return None if not rate else amount_cny / rate


# --------------------------------------------------------------------------- rules

def document_mismatch(today: date, th: dict[str, Decimal]) -> int:
    from finance_app.trade.models import MatchVerdict, Order
    from finance_app.trade.states import Verdict
    rows = db.session.execute(
        select(Order.id, Order.order_no, Order.filer_org_id, Order.buyer_name,
               MatchVerdict.reasons)
        .join(MatchVerdict, MatchVerdict.order_id == Order.id)
        .where(MatchVerdict.status == Verdict.MISMATCH,
               MatchVerdict.evaluated_at >= _start(int(th["scan_days"]), today)))
    raised = 0
    for order_id, order_no, org_id, buyer, reasons in rows:
        found = json.loads(reasons or "[]")
        codes = [r.get("code") for r in found]
        payer = "payer_not_buyer" in codes
        message = gettext("Order %(no)s: the payer is not the buyer.", no=order_no) if payer \
            else gettext("Order %(no)s: its documents disagree (three-document matching).",
                         no=order_no)
        raised += raise_alert(
            "document_mismatch", severity=Severity.HIGH if payer else Severity.MEDIUM,
            subject_org_id=org_id, message=message, dedupe_key=f"mismatch:order:{order_id}",
            object_type="Order", object_id=order_id,
            evidence={"order_no": order_no, "buyer": buyer, "reasons": found})
    return raised


def payer_many_buyers(today: date, th: dict[str, Decimal]) -> int:
    from finance_app.trade.models import Order, Payment
    window = int(th["payer_window_days"])
    payer = func.lower(func.trim(Payment.payer_name))
    rows = db.session.execute(
        select(Order.filer_org_id, payer, func.count(func.distinct(
            func.lower(func.trim(Order.buyer_name)))), func.count(func.distinct(Order.id)))
        .join(Order, and_(Order.order_no == Payment.order_no,
                          or_(Payment.ebp_code.is_(None), Payment.ebp_code == Order.ebp_code)))
        .where(Payment.created_at >= _start(window, today), Payment.payer_name.is_not(None),
               Order.buyer_name.is_not(None))
        .group_by(Order.filer_org_id, payer)
        .having(func.count(func.distinct(func.lower(func.trim(Order.buyer_name))))
                >= int(th["payer_min_buyers"])))
    raised = 0
    for org_id, name, buyers, orders in rows:
        raised += raise_alert(
            "payer_many_buyers", severity=Severity.HIGH, subject_org_id=org_id,
            message=gettext("One payer (%(payer)s) paid for %(buyers)s different buyers' "
                            "orders in %(days)s days.", payer=name, buyers=buyers, days=window),
            dedupe_key=f"payer_many_buyers:{org_id}:{_h(name)}:{today:%Y-%m}",
            evidence={"payer": name, "buyers": buyers, "orders": orders,
                      "window_days": window})
    return raised


def split_orders(today: date, th: dict[str, Decimal]) -> int:
    from finance_app.trade.models import Order
    start = today - timedelta(days=int(th["scan_days"]))
    cny = _cny(today)
    currencies = db.session.execute(select(func.distinct(Order.currency)).where(
        Order.order_date >= start)).scalars().all()
    bands = []
    for currency in currencies:
        top = _to_currency(th["split_threshold_cny"], currency, cny)
        if top is None:
            continue
        step = Decimal("0.00001")            # what the amount columns hold
        low = (top * (1 - th["split_margin"])).quantize(step, ROUND_CEILING)
        bands.append(and_(Order.currency == currency, Order.goods_value >= low,
                          Order.goods_value < top.quantize(step, ROUND_CEILING)))
    if not bands:
        return 0
    buyer = func.lower(func.trim(Order.buyer_name))
    rows = db.session.execute(
        select(Order.filer_org_id, buyer, Order.order_date, func.count(),
               func.sum(Order.goods_value), func.min(Order.currency))
        .where(Order.order_date >= start, Order.buyer_name.is_not(None), or_(*bands))
        .group_by(Order.filer_org_id, buyer, Order.order_date)
        .having(func.count() >= int(th["split_min_orders"])))
    raised = 0
    for org_id, name, day, n, total, currency in rows:
        raised += raise_alert(
            "split_orders", severity=Severity.MEDIUM, subject_org_id=org_id,
            message=gettext("%(n)s orders to %(buyer)s on %(date)s, each just under "
                            "%(threshold)s CNY.", n=n, buyer=name, date=day.isoformat(),
                            threshold=th["split_threshold_cny"]),
            dedupe_key=f"split:{org_id}:{_h(name)}:{day.isoformat()}",
            evidence={"buyer": name, "date": day.isoformat(), "orders": n,
                      "total": str(total), "currency": currency,
                      "threshold_cny": str(th["split_threshold_cny"])})
    return raised


def round_tripping(today: date, th: dict[str, Decimal]) -> int:
    from finance_app.trade.models import Order, Payment
    payer = func.lower(func.trim(Payment.payer_name))
    rows = db.session.execute(
        select(Order.id, Order.order_no, Order.filer_org_id, Payment.payer_name)
        .join(Order, and_(Order.order_no == Payment.order_no,
                          or_(Payment.ebp_code.is_(None), Payment.ebp_code == Order.ebp_code)))
        .join(Organisation, Organisation.id == Order.filer_org_id)
        .where(Payment.created_at >= _start(int(th["scan_days"]), today),
               or_(payer == func.lower(func.trim(Organisation.name)),
                   payer == func.lower(func.trim(Organisation.name_en)),
                   Payment.payer_id_number == Organisation.credit_code)))
    raised = 0
    for order_id, order_no, org_id, name in rows:
        raised += raise_alert(
            "round_tripping", severity=Severity.SEVERE, subject_org_id=org_id,
            message=gettext("Order %(no)s was paid by the seller itself (%(payer)s).",
                            no=order_no, payer=name),
            dedupe_key=f"round_trip:order:{order_id}", object_type="Order",
            object_id=order_id, evidence={"order_no": order_no, "payer": name})
    return raised


def volume_spike(today: date, th: dict[str, Decimal]) -> int:
    from finance_app.trade.models import Order
    cny = _cny(today)
    recent_from, base_from = today - timedelta(days=29), today - timedelta(days=29 + 180)
    recent = _volumes(_order_when(Order, recent_from, today), cny)
    if not recent:
        return 0
    base = _volumes(_order_when(Order, base_from, recent_from - timedelta(days=1)), cny,
                    org_ids=list(recent))
    raised = 0
    for org_id, amount in recent.items():
        monthly = base.get(org_id, Decimal(0)) / 6
        if amount < th["spike_min_cny"] or monthly <= 0 or amount <= th["spike_factor"] * monthly:
            continue
        raised += raise_alert(
            "volume_spike", severity=Severity.MEDIUM, subject_org_id=org_id,
            message=gettext("Orders of the last 30 days (%(recent)s CNY) are %(times)s times "
                            "the monthly average of the six months before.",
                            recent=f"{amount:,.2f}", times=f"{amount / monthly:.1f}"),
            dedupe_key=f"spike:{org_id}:{today:%Y-%m}",
            evidence={"recent_cny": f"{amount:.2f}", "monthly_average_cny": f"{monthly:.2f}"})
    return raised


def _volumes(when, cny, org_ids=None) -> dict[int, Decimal]:
    from finance_app.trade.models import Order
    query = select(Order.filer_org_id, Order.currency, func.sum(Order.goods_value)) \
        .where(when).group_by(Order.filer_org_id, Order.currency)
    if org_ids is not None:
        query = query.where(Order.filer_org_id.in_(org_ids))
    totals: dict[int, Decimal] = defaultdict(Decimal)
    for org_id, currency, amount in db.session.execute(query):
        totals[org_id] += cny(Decimal(amount or 0), currency)
    return totals


def double_pledge(today: date, th: dict[str, Decimal]) -> int:
    from finance_app.audit.models import AuditEvent
    from finance_app.collateral.services import BLOCKED_ACTION
    rows = db.session.execute(select(AuditEvent).where(
        AuditEvent.action == BLOCKED_ACTION,
        AuditEvent.created_at >= _start(int(th["scan_days"]), today))).scalars()
    raised = 0
    for event in rows:
        changes = json.loads(event.changes or "{}")
        owner = _asset_owner(changes.get("asset_kind"), changes.get("asset_id"))
        if owner is None:
            continue
        raised += raise_alert(
            "double_pledge", severity=Severity.HIGH, subject_org_id=owner,
            party_org_id=event.org_id,
            message=gettext("An attempt to pledge or finance %(asset)s, which already backs "
                            "financing.", asset=event.object_id),
            dedupe_key=f"blocked:{event.id}", object_type="CollateralAsset",
            object_id=changes.get("asset_id"),
            evidence={"asset": event.object_id, "attempt_by_org": event.org_id,
                      "at": event.created_at.isoformat(),
                      "financing_ref": changes.get("financing_ref")})
    return raised


def _asset_owner(kind: str | None, asset_id: Any) -> int | None:
    from finance_app.trade.models import Order, Receivable
    from finance_app.warehouse.models import WarehouseReceipt
    if not isinstance(asset_id, int):
        return None
    if kind == "order":
        return db.session.execute(select(Order.filer_org_id).where(
            Order.id == asset_id)).scalar()
    if kind in ("receivable", "insured_receivable"):
        return db.session.execute(select(Receivable.seller_org_id).where(
            Receivable.id == asset_id)).scalar()
    if kind == "warehouse_receipt":
        return db.session.execute(select(WarehouseReceipt.depositor_org_id).where(
            WarehouseReceipt.id == asset_id)).scalar()
    return None


def ltv_breach(today: date, th: dict[str, Decimal]) -> int:
    from finance_app.warehouse.models import MarginCall, WarehouseReceipt
    from finance_app.warehouse.states import MarginCallStatus
    rows = db.session.execute(
        select(MarginCall, WarehouseReceipt.number).join(
            WarehouseReceipt, WarehouseReceipt.id == MarginCall.receipt_id)
        .where(MarginCall.status.in_([MarginCallStatus.OPEN, MarginCallStatus.ESCALATED])))
    raised = 0
    for call, number in rows:
        raised += raise_alert(
            "ltv_breach", severity=Severity.SEVERE if call.status is MarginCallStatus.ESCALATED
            else Severity.HIGH, subject_org_id=call.depositor_org_id,
            party_org_id=call.bank_org_id,
            message=gettext("Receipt %(number)s: loan-to-value %(ltv)s is above the "
                            "margin-call threshold %(threshold)s.", number=number,
                            ltv=f"{call.last_ltv * 100:.2f}%",
                            threshold=f"{call.threshold * 100:.2f}%"),
            dedupe_key=f"ltv:{call.id}:{call.status.value}", object_type="MarginCall",
            object_id=call.id, evidence={"receipt": number, "ltv": str(call.last_ltv),
                                         "threshold": str(call.threshold),
                                         "cure_deadline": call.cure_deadline.isoformat()})
    return raised


def buyer_concentration(today: date, th: dict[str, Decimal]) -> int:
    from finance_app.insurance.models import BuyerLimit, ShipmentDeclaration
    from finance_app.insurance.states import USES_LIMIT
    from finance_app.trade.models import Receivable, ReceivableStatus
    rows = db.session.execute(
        select(ShipmentDeclaration.insured_org_id, BuyerLimit.id, BuyerLimit.buyer_name,
               BuyerLimit.currency, BuyerLimit.insurer_org_id,
               func.sum(ShipmentDeclaration.limit_used_amount))
        .join(BuyerLimit, BuyerLimit.id == ShipmentDeclaration.buyer_limit_id)
        .join(Receivable, Receivable.id == ShipmentDeclaration.receivable_id)
        .where(ShipmentDeclaration.status.in_(list(USES_LIMIT)),
               Receivable.status == ReceivableStatus.OPEN,
               ShipmentDeclaration.limit_used_amount > 0)
        .group_by(ShipmentDeclaration.insured_org_id, BuyerLimit.id, BuyerLimit.buyer_name,
                  BuyerLimit.currency, BuyerLimit.insurer_org_id))
    exposure: dict[tuple[int, str], list] = defaultdict(list)
    for org_id, limit_id, buyer, currency, insurer_id, units in rows:
        exposure[(org_id, currency)].append((limit_id, buyer, insurer_id, int(units)))
    raised = 0
    for (org_id, currency), buyers in exposure.items():
        total = sum(units for *_, units in buyers)
        if len(buyers) < 2:
            continue        # one insured buyer: nothing to compare it with
        for limit_id, buyer, insurer_id, units in buyers:
            share = Decimal(units) / Decimal(total)
            if share <= th["concentration_max_share"]:
                continue
            raised += raise_alert(
                "buyer_concentration", severity=Severity.MEDIUM, subject_org_id=org_id,
                party_org_id=insurer_id,      # the insurer of the buyer's limit
                message=gettext("%(buyer)s holds %(share)s of the insured exposure in "
                                "%(currency)s.", buyer=buyer, share=f"{share * 100:.1f}%",
                                currency=currency),
                dedupe_key=f"concentration:{org_id}:{limit_id}:{today:%Y-%m}",
                object_type="BuyerLimit", object_id=limit_id,
                evidence={"buyer": buyer, "share": f"{share:.4f}", "currency": currency,
                          "max_share": str(th["concentration_max_share"])})
    return raised


RULES = (document_mismatch, payer_many_buyers, split_orders, round_tripping, volume_spike,
         double_pledge, ltv_breach, buyer_concentration)


def run_rules(today: date) -> str:
    """The daily duty: every rule once over the recent evidence."""
    th = values()
    counts = {rule.__name__: rule(today, th) for rule in RULES}
    raised = sum(counts.values())
    detail = ", ".join(f"{name} {n}" for name, n in counts.items() if n)
    return f"{raised} risk alerts raised" + (f" ({detail})" if detail else "")


def _register() -> None:
    from finance_app import daily as daily_run
    daily_run.duty("risk_rules")(run_rules)


_register()
