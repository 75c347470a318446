"""Statistics dashboard benchmark: the platform operator's dashboard page and its API on a
database the size of a busy zone, beside the plain SQL aggregates over the same data, and
the daily job for one business date.

    .venv/bin/python bench/dashboard.py --db postgres --keep     # fill, measure, keep
    .venv/bin/python bench/dashboard.py --db postgres --reuse    # measure the kept database
    .venv/bin/python bench/dashboard.py --db sqlite              # 100,000 orders, temporary

Before measuring it upgrades the schema (with ``--reuse`` too) and builds the statistics'
per-day order summary when it has none (``--rebuild-summary``: always), timed, then times
a refresh with nothing changed.

It fills a fresh database (PostgreSQL ``bench_dashboard``, or a temporary SQLite file) with
``bench/marketplace.py``'s bulk fill (10,000 SMEs, 1,000,000 orders with their documents,
verdicts and receivables, 100,000 loans with requests, decisions and instalments in every
status, daily exchange rates for the year), spreads the SMEs over four pilot-zone areas and
tops the risk alerts up to ``--alerts`` (100,000). Then, after a warm-up, it times
``--samples`` requests each (wall time, Flask test client, the operator signed in or with
its API token):

a. the dashboard page, every figure (``/statistics/``);
b. the page for one area and half a year (``/statistics/?zone=...&from=...&to=...``);
c. the API (``/api/v1/statistics``);

alternately with the baseline: the same aggregates as hand-written SQL (GROUP BY over the
orders with their verdicts, the requests, targets, decisions, loans with their instalments,
declarations and claims), no conversion, no rendering. It prints p50, p95, max, the SQL
statements a request runs and the ratios to the baseline, and the time each part of the
figures takes (trade from the per-day order summary, financing, loan quality, insurance);
then the daily job
(``finance_app.daily.run``) for one business date, timed, the first time (its duties' work
for the day) and again (nothing left to do), beside a plain SQL pass over what it reads.
"""
from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    analyze, database_url, fresh_database, make_app, migrate, peak_rss_mb,
)
from bench.marketplace import (  # noqa: E402
    DEFAULTS, PLATFORM_ORG, Sizes, Statements, Writer, fill, summary,
)

PG_DATABASE = "bench_dashboard"
ZONES = ("Zhuhai Hengqin", "Dongguan Humen", "Guangzhou Nansha", "Shenzhen Qianhai")
OPERATOR_USER = 1          # bench/marketplace.py's platform operator officer and approver
TARGET_MS = 500.0

BASELINE_SQL = [
    # the orders by day, currency, mode and country, with the verified count
    """SELECT o.order_date, o.currency, o.trade_mode, o.buyer_country, count(o.id),
              sum(o.goods_value + o.freight + o.tax_total - o.discount),
              sum(CASE WHEN v.status = 'verified' THEN 1 ELSE 0 END)
       FROM trade_orders o LEFT JOIN trade_verdicts v ON v.order_id = o.id
       GROUP BY o.order_date, o.currency, o.trade_mode, o.buyer_country""",
    "SELECT kind, currency, count(*), sum(amount) FROM financing_requests GROUP BY kind, currency",
    """SELECT t.bank_org_id, r.currency, count(*), sum(r.amount) FROM financing_request_targets t
       JOIN financing_requests r ON r.id = t.request_id GROUP BY t.bank_org_id, r.currency""",
    """SELECT d.kind, r.kind, d.bank_org_id, d.currency, count(*), sum(d.amount)
       FROM financing_decisions d JOIN financing_requests r ON r.id = d.request_id
       WHERE d.approved_at IS NOT NULL GROUP BY d.kind, r.kind, d.bank_org_id, d.currency""",
    """SELECT p.kind, l.bank_org_id, l.currency, count(*), sum(l.principal_amount)
       FROM financing_loans l JOIN financing_products p ON p.id = l.product_id
       GROUP BY p.kind, l.bank_org_id, l.currency""",
    """SELECT l.currency, l.status, count(*), sum(i.left_)
       FROM financing_loans l JOIN (SELECT loan_id, sum(principal_due - principal_paid) AS left_
                                    FROM financing_instalments GROUP BY loan_id) i
            ON i.loan_id = l.id
       WHERE l.status IN ('disbursed', 'overdue', 'defaulted') GROUP BY l.currency, l.status""",
    """SELECT d.currency, count(*), sum(d.insured_amount), sum(d.premium_amount)
       FROM insurance_declarations d JOIN trade_receivables r ON r.id = d.receivable_id
       GROUP BY d.currency""",
    """SELECT indemnity_currency, count(*), sum(indemnity_amount) FROM insurance_claims
       GROUP BY indemnity_currency""",
]
DAILY_BASELINE_SQL = [
    "SELECT count(*), sum(principal_due - principal_paid) FROM financing_instalments "
    "WHERE status IN ('pending', 'overdue') AND due_date < CURRENT_DATE",
    "SELECT count(*) FROM financing_decisions WHERE status = 'approved' "
    "AND expiry_date < CURRENT_DATE",
    "SELECT count(*) FROM risk_alerts WHERE status = 'open'",
    "SELECT count(*) FROM warehouse_receipts WHERE expiry_date < CURRENT_DATE",
]


# --------------------------------------------------------------------------- filling

def fill_dashboard(kind: str, url: str, alerts: int) -> dict:
    """The SMEs over four areas, and risk alerts up to ``alerts``."""
    started = time.perf_counter()
    w = Writer(kind, url)
    cases = " ".join(f"WHEN {i} THEN '{z}'" for i, z in enumerate(ZONES))
    w.execute(f"UPDATE organisations SET zone = CASE id % {len(ZONES)} {cases} END "
              "WHERE kind = 'sme'")
    have = w.scalar("SELECT count(*) FROM risk_alerts")
    smes = [r[0] for r in w.conn.execute(
        "SELECT id FROM organisations WHERE kind = 'sme' ORDER BY id").fetchall()]
    rules = ("instalment_overdue", "receivable_overdue", "mismatch_rate", "loan_defaulted")
    rows = ((rules[n % 4], ("low", "medium", "high", "severe")[n % 4], smes[n % len(smes)],
             None, "order", n, f"Bench alert {n}", "{}", ("open", "acknowledged",
                                                         "resolved")[n % 3],
             f"bench:{n}", "2026-01-01 00:00:00") for n in range(max(0, alerts - have)))
    w.rows("risk_alerts", "rule, severity, subject_org_id, party_org_id, object_type, "
           "object_id, message, evidence, status, dedupe_key, raised_at", rows)
    w.close()
    analyze(url)
    return {"alerts_added": max(0, alerts - have), "seconds": time.perf_counter() - started}


# --------------------------------------------------------------------------- measuring

def signed_in(app):
    """The operator's API token and a signed-in session, as a client would have them."""
    from finance_app import clock
    from finance_app.accounts.models import ApiToken, User, UserSession
    from finance_app.accounts.services import TOKEN_PREFIX, _token_digest
    from finance_app.extensions import db
    with app.app_context():
        user = db.session.get(User, OPERATOR_USER)
        assert user.org_id == PLATFORM_ORG
        raw = f"{TOKEN_PREFIX}bench-dashboard-{time.time_ns()}"
        sid = f"bench-dashboard-session-{time.time_ns()}"
        now = clock.now()
        db.session.add(ApiToken(org_id=user.org_id, user_id=user.id, name="bench",
                                prefix=raw[:12], token_hash=_token_digest(raw),
                                created_at=now, last_used_at=now))
        db.session.add(UserSession(token_hash=hashlib.sha256(sid.encode()).hexdigest(),
                                   user_id=user.id, created_at=now, last_seen_at=now,
                                   user_agent="bench"))
        db.session.commit()
        db.session.remove()
    page = app.test_client()
    with page.session_transaction() as session:
        session["sid"], session["_user_id"], session["_fresh"] = sid, str(OPERATOR_USER), False
    return page, {"Authorization": f"Bearer {raw}"}


def paths(today: date) -> dict[str, str]:
    start = (today.replace(day=1) - timedelta(days=150)).replace(day=1)
    return {"dashboard": "/statistics/",
            "one area, 6 months": f"/statistics/?zone={ZONES[1].replace(' ', '+')}"
                                  f"&from={start:%Y-%m}&to={today:%Y-%m}",
            "API": "/api/v1/statistics"}


def baseline(app) -> float:
    from sqlalchemy import text
    from finance_app.extensions import db
    started = time.perf_counter()
    with app.app_context():
        with db.engine.connect() as conn:
            for sql in BASELINE_SQL:
                conn.execute(text(sql)).fetchall()
    return time.perf_counter() - started


def measure(app, args) -> dict:
    from finance_app import clock
    from finance_app.extensions import db
    page, headers = signed_in(app)
    with app.app_context():
        statements = Statements(db.engine)
        today = clock.today()
    found = {}
    for name, url in paths(today).items():
        client_get = (lambda u=url: page.get(u)) if not url.startswith("/api/") \
            else (lambda u=url: page.get(u, headers=headers))
        for _ in range(args.warmup):
            response = client_get()
            if response.status_code != 200:
                raise RuntimeError(f"GET {url}: {response.status_code} "
                                   f"{response.get_data(as_text=True)[:500]}")
            baseline(app)
        before = statements.count
        client_get().get_data()
        counted = statements.count - before
        times, base = [], []
        for _ in range(args.samples):
            started = time.perf_counter()
            client_get().get_data()
            times.append(time.perf_counter() - started)
            base.append(baseline(app))
        found[name] = {"url": url, "statements": counted, "measured": summary(times),
                       "baseline": summary(base)}
    return found


def build_summary(app, url: str, rebuild: bool) -> dict:
    """The per-day order summary built (if there is none, or asked to) and refreshed."""
    from finance_app.extensions import db
    from finance_app.statistics import summary
    from finance_app.statistics.models import SummaryState
    found = {}
    with app.app_context():
        if rebuild or db.session.get(SummaryState, summary.STATE_ID) is None:
            started = time.perf_counter()
            found["build_line"] = summary.refresh(rebuild=True)
            db.session.commit()
            found["build_s"] = time.perf_counter() - started
        db.session.remove()
    analyze(url)
    with app.app_context():
        started = time.perf_counter()
        found["refresh_line"] = summary.refresh()
        db.session.commit()
        found["refresh_s"] = time.perf_counter() - started
        db.session.remove()
    return found


def time_sections(app, samples: int) -> dict:
    """The median time of each part of the figures, called directly (no page)."""
    from finance_app.statistics import queries
    parts = {"trade": queries.trade_volume, "financing": queries.financing,
             "loan quality": queries.loan_quality, "insurance": queries.insurance}
    found = {}
    with app.app_context():
        for name, fn in parts.items():
            times = []
            for _ in range(samples):
                fx = queries.CnyRates()
                started = time.perf_counter()
                fn(queries.Filters(), fx)
                times.append(time.perf_counter() - started)
            found[name] = summary(times)["p50_ms"]
        from finance_app.extensions import db
        db.session.remove()
    return found


def time_daily(app, day: date) -> dict:
    from sqlalchemy import delete, text
    from finance_app import daily
    from finance_app.extensions import db
    duties = dict(daily.DUTIES)
    took: dict[str, float] = {}

    def timed(name, fn):
        def run(business_date):
            started = time.perf_counter()
            try:
                return fn(business_date)
            finally:
                took[name] = time.perf_counter() - started
        return run

    from finance_app import clock
    with app.app_context():
        if day > clock.today():      # a later business date: the platform's clock is on it
            clock.advance(day - clock.today())
        db.session.execute(delete(daily.DailyRun).where(daily.DailyRun.business_date == day))
        db.session.commit()
        daily.DUTIES.update({name: timed(name, fn) for name, fn in duties.items()})
        started = time.perf_counter()
        try:
            first_lines = daily.run(day)
        finally:
            daily.DUTIES.update(duties)
        first = time.perf_counter() - started
        first_duties = dict(took)
        db.session.execute(delete(daily.DailyRun).where(daily.DailyRun.business_date == day))
        db.session.commit()
        started = time.perf_counter()
        daily.run(day)
        again = time.perf_counter() - started
        started = time.perf_counter()
        with db.engine.connect() as conn:
            for sql in DAILY_BASELINE_SQL:
                conn.execute(text(sql)).fetchall()
        base = time.perf_counter() - started
        db.session.remove()
        clock.reset()
    return {"first_s": first, "again_s": again, "baseline_s": base, "lines": first_lines,
            "duties": first_duties}


# --------------------------------------------------------------------------- report

def report(db_kind: str, figures: dict) -> None:
    sizes = figures["sizes"]
    print(f"\n== statistics dashboard on {db_kind}: {sizes.smes:,} SMEs, {sizes.orders:,} "
          f"orders, {sizes.loans:,} loans, {figures['census']['alerts']:,} risk alerts ==")
    if "fill" in figures:
        fill_s = figures["fill"]
        print("fill: " + ", ".join(f"{k} {v:.0f} s" for k, v in fill_s.items())
              + f"; zones and alerts {figures['extra']['seconds']:.0f} s")
    if "schema_s" in figures:
        print(f"schema upgrade {figures['schema_s']:.1f} s")
    built = figures.get("summary", {})
    if "build_s" in built:
        print(f"summary build {built['build_s']:.1f} s: {built['build_line']}")
    if "refresh_s" in built:
        print(f"summary refresh {built['refresh_s'] * 1000:.0f} ms: {built['refresh_line']}")
    print(f"{'path':<20} {'SQL':>4} {'p50':>9} {'p95':>9} {'max':>9} "
          f"{'baseline p50/p95':>18} {'ratio p50/p95':>14}")
    for name, r in figures.get("paths", {}).items():
        m, b = r["measured"], r["baseline"]
        flag = "" if m["p95_ms"] <= TARGET_MS else f"  (above {TARGET_MS:.0f} ms)"
        print(f"{name:<20} {r['statements']:>4} {m['p50_ms']:>7.1f}ms {m['p95_ms']:>7.1f}ms "
              f"{m['max_ms']:>7.0f}ms {b['p50_ms']:>8.1f} / {b['p95_ms']:<7.1f} "
              f"{m['p50_ms'] / b['p50_ms']:>6.2f} / {m['p95_ms'] / b['p95_ms']:<5.2f}{flag}")
    if figures.get("sections"):
        print("parts, p50: " + ", ".join(f"{k} {v:.1f} ms"
                                         for k, v in figures["sections"].items()))
    d = figures.get("daily")
    if d:
        print(f"daily job for {figures['daily_date']}: {d['first_s']:.1f} s (again: "
              f"{d['again_s']:.1f} s); baseline SQL {d['baseline_s'] * 1000:.0f} ms, ratio "
              f"{d['first_s'] / d['baseline_s']:.0f}")
        print("  the first run's duties: " + ", ".join(
            f"{name} {seconds:.1f} s" for name, seconds in d["duties"].items()))
        for line in d["lines"]:
            print(f"  {line[:150]}")
    print(f"peak RSS {figures['peak_rss_mb']:.0f} MB")


def census(app) -> dict:
    from sqlalchemy import text
    from finance_app.extensions import db
    with app.app_context():
        with db.engine.connect() as conn:
            return {"alerts": conn.execute(text("SELECT count(*) FROM risk_alerts")).scalar()}


def bench(db_kind: str, args, folder: Path) -> dict:
    defaults = DEFAULTS[db_kind]
    smes, orders = args.smes or defaults["smes"], args.orders or defaults["orders"]
    sizes = Sizes(smes=smes, per_sme=max(1, orders // smes),
                  loans=args.loans or defaults["loans"], banks=args.banks)
    alerts = args.alerts if args.alerts is not None else (
        100_000 if db_kind == "postgres" else 10_000)
    figures: dict = {"sizes": sizes}

    def run(url: str) -> None:
        app = make_app(url)
        app.config["PROPAGATE_EXCEPTIONS"] = True
        started = time.perf_counter()
        migrate(app)
        figures["schema_s"] = time.perf_counter() - started
        analyze(url, vacuum=True)    # what autovacuum does after an upgrade's rewrites
        figures["summary"] = build_summary(app, url, args.rebuild_summary)
        figures["census"] = census(app)
        if not args.daily_only:
            figures["paths"] = measure(app, args)
            figures["sections"] = time_sections(app, max(3, args.samples // 3))
        if not args.skip_daily:
            from finance_app import clock
            with app.app_context():
                day = date.fromisoformat(args.daily_date) if args.daily_date else clock.today()
            figures["daily_date"] = day
            figures["daily"] = time_daily(app, day)
        figures["peak_rss_mb"] = peak_rss_mb()

    if args.reuse:
        run(database_url(db_kind, PG_DATABASE, folder))
        return figures
    with fresh_database(db_kind, PG_DATABASE, folder, keep=args.keep) as url:
        app = make_app(url)
        migrate(app)
        with app.app_context():
            from finance_app.extensions import db
            db.engine.dispose()
        figures["fill"] = fill(db_kind, url, sizes, args.seed)
        figures["extra"] = fill_dashboard(db_kind, url, alerts)
        run(url)
        if args.keep:
            print(f"kept the database: {url}")
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="postgres")
    parser.add_argument("--smes", type=int, default=None)
    parser.add_argument("--orders", type=int, default=None)
    parser.add_argument("--loans", type=int, default=None)
    parser.add_argument("--banks", type=int, default=20)
    parser.add_argument("--alerts", type=int, default=None,
                        help="risk alerts in all (default 100,000; 10,000 on SQLite)")
    parser.add_argument("--samples", type=int, default=30, help="timed requests a path")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--reuse", action="store_true",
                        help="measure the database a --keep run left, without filling")
    parser.add_argument("--rebuild-summary", action="store_true",
                        help="rebuild the per-day order summary even if there is one")
    parser.add_argument("--skip-daily", action="store_true", help="do not time the daily job")
    parser.add_argument("--daily-only", action="store_true",
                        help="time the daily job only, not the dashboard")
    parser.add_argument("--daily-date", default=None, help="business date (default today)")
    parser.add_argument("--seed", type=int, default=20261201)
    args = parser.parse_args(argv)
    kept = Path(tempfile.gettempdir())
    with tempfile.TemporaryDirectory(prefix="bench_dashboard_") as tmp:
        folder = kept if args.keep or args.reuse else Path(tmp)
        report(args.db, bench(args.db, args, folder))


if __name__ == "__main__":
    main()
