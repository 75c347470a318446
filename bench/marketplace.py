"""Marketplace benchmark: the SME's product list, the bank's review queue and the evidence
pack, on a database the size of a busy platform, beside a bare endpoint.

    .venv/bin/python bench/marketplace.py --db postgres
    .venv/bin/python bench/marketplace.py --db sqlite --samples 50
    .venv/bin/python bench/marketplace.py --db postgres --keep          # keep the database
    .venv/bin/python bench/marketplace.py --db postgres --reuse --profile

It fills a fresh database (PostgreSQL ``bench_marketplace``, or a temporary SQLite file)
with bulk SQL, not through the services (that would take hours): ``--smes`` SMEs and
``--banks`` banks with their users; ``--orders`` export orders with their payments,
customs inventories, waybills and match verdicts (most verified, some mismatched, some
incomplete: the newest not yet shipped), receivables for the B2B orders sold on terms
(open, settled, past due), three warehouse receipts an SME; a few products a bank of each
kind, two credit facilities an SME with their ledger accounts and limit bookings; and
``--loans`` loans, each on a request with its collateral and its targets (one to three
banks each), the banks' decisions (offers accepted, lapsed, rejections), instalments in
every status, active encumbrances on the collateral of live loans (released for the rest),
pledged receipts with their margin terms; open requests (a quarter as many as loans, the
review queues' work: no decision yet, prepared, approved, expired, withdrawn and redone)
and withdrawn ones. Every row respects the schema's CHECK and unique constraints and the
triggers (the ledger's balance checks included). Then VACUUM ANALYZE (ANALYZE on SQLite).

It measures, after a warm-up, ``--samples`` requests of each (wall time per request, each
in an app context and database session of its own, subjects rotating over many SMEs,
banks and requests):

a. the SME's product list with eligible amounts: ``marketplace.offers_for_sme``;
b. the bank's review queue, first page: ``queries.review_queue(bank_officer)``;
c. the evidence pack of a request sent to the bank: ``review.evidence_pack``;

through their HTTP endpoints with the Flask test client when the app has them (the JSON
API first, then the HTML pages; ``--via``, ``--marketplace-path`` and so on choose), else
as the service call plus the JSON serialisation of its result. Each is set beside a bare
endpoint added to the app in this process, measured in the same run, alternately with it:
one SELECT of the same number of rows from one table, returned as JSON. It prints p50, p95
and max, the SQL statements a request runs, the ratios to the baseline, and peak RSS; a
path whose p95 is above ``--target-ms`` (100) is profiled (``--profile``: all of them):
its statements grouped by text with their counts and time, EXPLAIN ANALYZE of the costliest
(EXPLAIN QUERY PLAN on SQLite), and the functions cProfile finds slowest. The report
names the indexes the models declare that the migrated schema lacks (a model change whose
migration is still to be written); ``--create-missing-indexes`` makes them first.
"""
from __future__ import annotations

import argparse
import cProfile
import hashlib
import io
import json
import pstats
import random
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    analyze, database_url, fresh_database, make_app, migrate, peak_rss_mb,
)

PG_DATABASE = "bench_marketplace"
DEFAULTS = {"postgres": dict(smes=10_000, orders=1_000_000, loans=100_000),
            "sqlite": dict(smes=1_000, orders=100_000, loans=10_000)}
TARGET_MS = 100.0

# Parties: fixed organisation ids, then the banks, then the SMEs.
PLATFORM_ORG, PAY_ORG, LOGISTICS_ORG, WAREHOUSE_ORG = 1, 2, 3, 4
BANK_BASE = 5
PAY_CODE, LOGISTICS_CODE, EBP_CODE = "4404990004", "4404980003", "PLATFORM01"
RECEIPTS_PER_SME = 3
OPEN_PER_LOAN, WITHDRAWN_PER_LOAN = 0.25, 0.05
CNY_PER = {"USD": Decimal("7.1865"), "EUR": Decimal("7.7528"), "CNY": Decimal(1)}

# Order categories (see ``category``): what the order's documents and verdict are.
UNSHIPPED_B2B, UNSHIPPED_B2C, OPEN_RECEIVABLE, PAID_B2C = 1, 2, 3, 4
SETTLED_RECEIVABLE, MISMATCH, UNPAID_B2C, OVERDUE_RECEIVABLE = 5, 6, 7, 8
TERMS = {UNSHIPPED_B2B: 90, OPEN_RECEIVABLE: 120, SETTLED_RECEIVABLE: 60,
         OVERDUE_RECEIVABLE: 30}
PAID = (PAID_B2C, SETTLED_RECEIVABLE, MISMATCH)
RECEIVABLE = (OPEN_RECEIVABLE, SETTLED_RECEIVABLE, OVERDUE_RECEIVABLE)
REASONS = {
    UNSHIPPED_B2B: [("inventory_missing",
                     "No customs inventory ties this order to a waybill yet.")],
    UNSHIPPED_B2C: [("payment_missing", "No payment has been filed for this order yet."),
                    ("inventory_missing",
                     "No customs inventory ties this order to a waybill yet.")],
    MISMATCH: [("payment_amount_mismatch",
                "The payment does not equal the order's payable amount.")],
    UNPAID_B2C: [("payment_missing", "No payment has been filed for this order yet.")],
}
VERDICT = {UNSHIPPED_B2B: "incomplete", UNSHIPPED_B2C: "incomplete", MISMATCH: "mismatch",
           UNPAID_B2C: "incomplete"}   # the others: verified


def category(o: int, k: int, per_sme: int) -> int:
    """The SME's ``k``-th order (0 the oldest), global number ``o``: the newest tenth not
    shipped yet, the next 15 % shipped on terms and not yet due, the rest a mix."""
    age = per_sme - 1 - k
    if age * 10 < per_sme:
        return UNSHIPPED_B2B if o % 2 == 0 else UNSHIPPED_B2C
    if age * 4 < per_sme:
        return OPEN_RECEIVABLE
    return {13: SETTLED_RECEIVABLE, 14: SETTLED_RECEIVABLE, 15: SETTLED_RECEIVABLE,
            16: MISMATCH, 17: UNPAID_B2C, 18: OVERDUE_RECEIVABLE}.get(k % 20, PAID_B2C)


def order_cents(o: int) -> int:
    return 50_000 + (o * 7919) % 4_950_000           # 500.00 to 50,000.00


def order_currency(o: int) -> str:
    return {17: "CNY", 18: "CNY", 19: "EUR"}.get((o * 7) % 20, "USD")


def order_age_days(k: int, per_sme: int) -> int:
    return 1 + (per_sme - 1 - k) * 365 // per_sme    # spread over the last year


# --------------------------------------------------------------------------- SQL per dialect

class Sql:
    """The few expressions the bulk inserts write differently on the two databases."""

    def __init__(self, kind: str):
        self.pg = kind == "postgres"

    def numbers(self, n: int) -> str:
        if self.pg:
            return f"generate_series(0::bigint, {n - 1}) AS g(i)"
        return (f"(WITH RECURSIVE g(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM g "
                f"WHERE i < {n - 1}) SELECT i FROM g) AS g")

    def days_before(self, day: date, expr: str) -> str:
        if self.pg:
            return f"(DATE '{day.isoformat()}' - CAST({expr} AS integer))"
        return f"date('{day.isoformat()}', '-' || ({expr}) || ' days')"

    def plus_days(self, date_expr: str, expr: str) -> str:
        if self.pg:
            return f"(({date_expr}) + CAST({expr} AS integer))"
        return f"date({date_expr}, '+' || ({expr}) || ' days')"

    def at(self, date_expr: str, clock_time: str) -> str:
        if self.pg:
            return f"(({date_expr}) + TIME '{clock_time}')"
        return f"(({date_expr}) || ' {clock_time}.000000')"

    def pad(self, expr: str, width: int) -> str:
        if self.pg:
            return f"lpad(CAST(({expr}) AS text), {width}, '0')"
        return f"printf('%0{width}d', {expr})"


class Writer:
    """Rows into a table: COPY on PostgreSQL, executemany on SQLite (values already as
    stored: scaled integers for ExactDecimal, enum values, dates)."""

    def __init__(self, kind: str, url: str):
        self.kind = kind
        if kind == "postgres":
            import psycopg
            self.conn = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"))
            self.conn.execute("SET synchronous_commit = off")
        else:
            import sqlite3
            self.conn = sqlite3.connect(url.split("///", 1)[1], isolation_level=None)
            for pragma in ("foreign_keys=ON", "journal_mode=WAL", "synchronous=OFF"):
                self.conn.execute(f"PRAGMA {pragma}")
            self.conn.execute("BEGIN")
        self.counts: dict[str, int] = defaultdict(int)

    def execute(self, sql: str) -> None:
        self.conn.execute(sql)

    def scalar(self, sql: str):
        return self.conn.execute(sql).fetchone()[0]

    def rows(self, table: str, columns: str, rows) -> None:
        names = [c.strip() for c in columns.split(",")]
        count = 0
        if self.kind == "postgres":
            with self.conn.cursor() as cursor:
                with cursor.copy(f"COPY {table} ({', '.join(names)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
                        count += 1
        else:
            marks = ", ".join("?" * len(names))
            sql = f"INSERT INTO {table} ({', '.join(names)}) VALUES ({marks})"
            batch = []
            for row in rows:
                batch.append(tuple(_sqlite_value(v) for v in row))
                if len(batch) >= 5000:
                    self.conn.executemany(sql, batch)
                    count += len(batch)
                    batch = []
            self.conn.executemany(sql, batch)
            count += len(batch)
        self.counts[table] += count

    def commit(self) -> None:
        if self.kind == "postgres":
            self.conn.commit()
        else:
            self.conn.execute("COMMIT")
            self.conn.execute("BEGIN")

    def close(self) -> None:
        self.commit()
        if self.kind == "sqlite":
            self.conn.execute("COMMIT")
        self.conn.close()


def _sqlite_value(value):
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, date):
        return value.isoformat()
    return value


# --------------------------------------------------------------------------- the world

@dataclass
class Sizes:
    smes: int
    per_sme: int          # orders per SME
    loans: int
    banks: int

    @property
    def orders(self) -> int:
        return self.smes * self.per_sme


def sme_org(s: int, sizes: Sizes) -> int:
    return BANK_BASE + sizes.banks + s


def sme_user(s: int, sizes: Sizes) -> int:
    return 3 + 2 * sizes.banks + s


def officer(b: int) -> int:
    return 3 + 2 * b


def approver(b: int) -> int:
    return 4 + 2 * b


def sme_code(s: int) -> str:
    return f"44{s:08d}"


def _credit_code(n: int) -> str:
    from stdnum.cn import uscc
    body = f"91440400MA{n:07d}"
    return body + uscc.calc_check_digit(body)


def fill_parties(w: Writer, sizes: Sizes, now: datetime) -> None:
    from finance_app.accounts import passwords
    joined = now - timedelta(days=400)
    orgs = [(PLATFORM_ORG, "platform_operator", "跨境金融平台运营有限公司", None),
            (PAY_ORG, "payment_institution", "湾区支付有限公司", PAY_CODE),
            (LOGISTICS_ORG, "logistics", "大湾区速运有限公司", LOGISTICS_CODE),
            (WAREHOUSE_ORG, "warehouse_operator", "横琴保税仓储有限公司", None)]
    orgs += [(BANK_BASE + b, "bank", f"湾区第{b + 1}商业银行", None) for b in range(sizes.banks)]
    orgs += [(sme_org(s, sizes), "sme", f"珠海出口企业{s + 1}有限公司", sme_code(s))
             for s in range(sizes.smes)]
    w.rows("organisations", "id, kind, name, name_en, country, credit_code, customs_code, "
           "contact_email, zone, filing_status, filed_at, decided_at, created_at",
           ((i, kind, name, None, "CN", _credit_code(i), code, f"contact{i}@bench.test",
             "Zhuhai Hengqin", "approved", joined, joined + timedelta(days=1), joined)
            for i, kind, name, code in orgs))
    hashed = passwords.hash_password("bench-password-2026")
    users = [(1, PLATFORM_ORG, ("officer", "approver")), (2, WAREHOUSE_ORG, ("officer",))]
    for b in range(sizes.banks):
        users += [(officer(b), BANK_BASE + b, ("officer",)),
                  (approver(b), BANK_BASE + b, ("approver",))]
    users += [(sme_user(s, sizes), sme_org(s, sizes), ("admin", "officer"))
              for s in range(sizes.smes)]
    w.rows("users", "id, org_id, email, name, password_hash, active, totp_secret, "
           "totp_enabled_at, failed_signins, created_at",
           ((i, org, f"user{i}@bench.test", f"User {i}", hashed, True,
             "JBSWY3DPEHPK3PXP" if "approver" in roles else None,
             joined if "approver" in roles else None, 0, joined) for i, org, roles in users))
    w.rows("user_roles", "user_id, role", ((i, role) for i, _, roles in users for role in roles))


def fill_trade(w: Writer, sql: Sql, sizes: Sizes, today: date) -> None:
    """Orders, payments, inventories, waybills, verdicts and receivables, as INSERT ...
    SELECT over a plan of the orders computed by the database itself."""
    S, K, O = sizes.smes, sizes.per_sme, sizes.orders
    cat = (f"CASE WHEN a * 10 < {K} THEN (CASE WHEN o % 2 = 0 THEN {UNSHIPPED_B2B} "
           f"ELSE {UNSHIPPED_B2C} END) WHEN a * 4 < {K} THEN {OPEN_RECEIVABLE} "
           f"ELSE (CASE k % 20 WHEN 13 THEN {SETTLED_RECEIVABLE} WHEN 14 THEN "
           f"{SETTLED_RECEIVABLE} WHEN 15 THEN {SETTLED_RECEIVABLE} WHEN 16 THEN {MISMATCH} "
           f"WHEN 17 THEN {UNPAID_B2C} WHEN 18 THEN {OVERDUE_RECEIVABLE} "
           f"ELSE {PAID_B2C} END) END")
    term = "CASE cat " + " ".join(f"WHEN {c} THEN {d}" for c, d in TERMS.items()) + " END"
    w.execute("DROP TABLE IF EXISTS bench_plan")
    w.execute(f"""
        CREATE TEMP TABLE bench_plan AS
        SELECT o, s, k, cat, cur, cents, term, odate,
               {sql.at('odate', '10:00:00')} AS otime,
               {sql.at(sql.plus_days('odate', '2'), '15:00:00')} AS stime,
               CASE WHEN term IS NULL THEN NULL ELSE {sql.plus_days('odate', 'term')} END
                   AS due
        FROM (SELECT o, s, k, cat, cur, cents, {term} AS term,
                     {sql.days_before(today, f'1 + (a * 365) / {K}')} AS odate
              FROM (SELECT o, s, k, a, {cat} AS cat,
                           CASE (o * 7) % 20 WHEN 17 THEN 'CNY' WHEN 18 THEN 'CNY'
                               WHEN 19 THEN 'EUR' ELSE 'USD' END AS cur,
                           50000 + (o * 7919) % 4950000 AS cents
                    FROM (SELECT i AS o, i % {S} AS s, i / {S} AS k,
                                 {K - 1} - i / {S} AS a FROM {sql.numbers(O)}) x) y) z""")
    number, code = f"'BM' || {sql.pad('o + 1', 9)}", f"'44' || {sql.pad('s', 8)}"
    mode = "CASE WHEN term IS NULL THEN '9610' ELSE '9710' END"
    country = "CASE o % 3 WHEN 0 THEN 'US' WHEN 1 THEN 'DE' ELSE 'GB' END"
    document = "'export', 1, 'ceb_xml'"
    w.execute(f"""
        INSERT INTO trade_orders (id, filer_org_id, direction, version, source, app_time,
            created_at, updated_at, order_no, order_type, ebp_code, ebp_name, ebc_code,
            trade_mode, currency, goods_value, freight, discount, tax_total, buyer_name,
            buyer_country, payment_term_days, order_date)
        SELECT o + 1, {sme_org(0, sizes)} + s, {document}, otime, otime, otime, {number},
               CASE WHEN term IS NULL THEN 'E' ELSE 'B' END, '{EBP_CODE}', 'Marketplace',
               {code}, {mode}, cur, cents * 1000, 0, 0, 0, 'Buyer ' || (o % 997), {country},
               term, odate
        FROM bench_plan ORDER BY o""")
    paid_at = sql.at(f"CASE WHEN cat = {SETTLED_RECEIVABLE} THEN due ELSE "
                     f"{sql.plus_days('odate', '1')} END", "12:00:00")
    w.execute(f"""
        INSERT INTO trade_payments (id, filer_org_id, direction, version, source, app_time,
            created_at, updated_at, order_no, ebp_code, ebc_code, pay_code, pay_name,
            pay_transaction_id, amount, currency, pay_time)
        SELECT o + 1, {PAY_ORG}, {document}, {paid_at}, {paid_at}, {paid_at}, {number},
               '{EBP_CODE}', {code}, '{PAY_CODE}', 'Bay Area Pay',
               'PAY' || {sql.pad('o + 1', 9)},
               (cents - CASE WHEN cat = {MISMATCH} THEN 1 ELSE 0 END) * 1000, cur, {paid_at}
        FROM bench_plan WHERE cat IN ({', '.join(map(str, PAID))}) ORDER BY o""")
    shipped = f"cat NOT IN ({UNSHIPPED_B2B}, {UNSHIPPED_B2C})"
    waybill_no = f"'WB' || {sql.pad('o + 1', 10)}"
    w.execute(f"""
        INSERT INTO trade_inventories (id, filer_org_id, direction, version, source,
            app_time, created_at, updated_at, cop_no, order_no, ebp_code, ebc_code,
            agent_code, logistics_code, logistics_no, trade_mode, country, currency,
            total_value, declared_at)
        SELECT o + 1, {sme_org(0, sizes)} + s, {document}, stime, stime, stime,
               'COP' || {sql.pad('o + 1', 9)}, {number}, '{EBP_CODE}', {code}, {code},
               '{LOGISTICS_CODE}', {waybill_no}, {mode}, {country}, cur, cents * 1000, stime
        FROM bench_plan WHERE {shipped} ORDER BY o""")
    w.execute(f"""
        INSERT INTO trade_waybills (id, filer_org_id, direction, version, source, app_time,
            created_at, updated_at, logistics_code, logistics_name, logistics_no, pack_no,
            goods_info, shipped_at)
        SELECT o + 1, {LOGISTICS_ORG}, {document}, stime, stime, stime, '{LOGISTICS_CODE}',
               'Greater Bay Express', {waybill_no}, 1, 'LED lamps', stime
        FROM bench_plan WHERE {shipped} ORDER BY o""")
    status = "CASE cat " + " ".join(f"WHEN {c} THEN '{v}'" for c, v in VERDICT.items()) \
        + " ELSE 'verified' END"
    reasons = "CASE cat " + " ".join(
        "WHEN {} THEN '{}'".format(c, json.dumps([{"code": a, "message": m} for a, m in r])
                                   .replace("'", "''"))
        for c, r in REASONS.items()) + " ELSE '[]' END"
    w.execute(f"""
        INSERT INTO trade_verdicts (id, order_id, status, reasons, payment_id, waybill_id,
            inventory_id, evaluated_at)
        SELECT o + 1, o + 1, {status}, {reasons},
               CASE WHEN cat IN ({', '.join(map(str, PAID))}) THEN o + 1 END,
               CASE WHEN {shipped} THEN o + 1 END, CASE WHEN {shipped} THEN o + 1 END, stime
        FROM bench_plan ORDER BY o""")
    w.execute(f"""
        INSERT INTO trade_receivables (id, order_id, seller_org_id, buyer_name, buyer_country,
            amount, currency, due_date, status, created_at)
        SELECT o + 1, o + 1, {sme_org(0, sizes)} + s, 'Buyer ' || (o % 997), {country},
               cents * 1000, cur, due,
               CASE WHEN cat = {SETTLED_RECEIVABLE} THEN 'settled' ELSE 'open' END, stime
        FROM bench_plan WHERE cat IN ({', '.join(map(str, RECEIVABLE))}) ORDER BY o""")
    w.execute("DROP TABLE bench_plan")
    w.commit()


# ---- rates, warehouse, products, facilities (Python rows)

HAIRCUTS = {"85": 3000, "8518": 2500, "61": 3500, "94": 3000}     # 0.3000 is 30 %
GOODS = [("8518300000", "Bluetooth earphones TWS-500"), ("6109100000", "Cotton T-shirts"),
         ("9405409000", "LED lamps")]


def haircut(hs_code: str) -> Decimal:
    for n in range(len(hs_code), 1, -1):
        if hs_code[:n] in HAIRCUTS:
            return Decimal(HAIRCUTS[hs_code[:n]]) / 10000
    return Decimal("0.3")


def fill_reference(w: Writer, today: date, now: datetime) -> None:
    """A year of daily rates (CFETS for the RMB pairs, ECB for EUR/USD) and goods
    categories with their haircuts."""
    pairs = [("USD", "CNY", Decimal("7.1865"), "cfets"), ("EUR", "CNY", Decimal("7.7528"),
             "cfets"), ("HKD", "CNY", Decimal("0.9210"), "cfets"),
             ("GBP", "CNY", Decimal("9.0412"), "cfets"), ("JPY", "CNY", Decimal("0.0478"),
             "cfets"), ("EUR", "USD", Decimal("1.0788"), "ecb"),
             ("EUR", "GBP", Decimal("0.8571"), "ecb"), ("EUR", "JPY", Decimal("162.35"), "ecb")]
    rows = []
    for days in range(365):
        day = today - timedelta(days=days)
        if day.weekday() >= 5:
            continue
        for base, quote, rate, source in pairs:
            moved = rate * (1 + Decimal((days * 37) % 200 - 100) / 10000)
            rows.append((base, quote, int(moved.quantize(Decimal("0.0001")) * 10**10), day,
                         source, "bench", now))
    w.rows("ledger_exchange_rates", "base, quote, rate, rate_date, source, note, created_at",
           rows)
    w.rows("warehouse_goods_categories", "hs_prefix, name, haircut, updated_at",
           ((prefix, f"HS {prefix}", cut, now) for prefix, cut in HAIRCUTS.items()))


@dataclass
class Product:
    id: int
    bank: int
    kind: str
    variant: int
    currencies: str
    advance: int             # Ratio, scaled by 10**4
    rate_min: int            # Rate, scaled by 10**6
    rate_max: int
    day_count: int
    repayment: str
    require_verified: bool
    active: bool
    min_rating: str | None


def plan_products(sizes: Sizes) -> list[Product]:
    """Two products a bank of each kind it finances (and policy financing at a quarter of
    them); a third of them lend in CNY first, some only in USD; now and then one paused or
    needing a rating; half the banks' second receivables product takes unverified
    orders."""
    products, ident = [], 0
    currencies = ["USD,CNY", "CNY,USD", "USD,CNY", "USD", "CNY,USD", "USD,EUR,CNY"]
    advance = {"order": 6000, "receivable": 8000, "warehouse_receipt": 6000, "policy": 8500}
    for b in range(sizes.banks):
        kinds = [(k, v) for k in ("order", "receivable", "warehouse_receipt") for v in (0, 1)]
        if b % 4 == 0:
            kinds.append(("policy", 0))
        for kind, variant in kinds:
            ident += 1
            listed = currencies[(b + ident) % len(currencies)]
            products.append(Product(
                id=ident, bank=b, kind=kind, variant=variant, currencies=listed,
                advance=advance[kind] - 500 * variant, rate_min=40000 + 5000 * variant,
                rate_max=90000 + 10000 * variant,
                day_count=365 if listed.startswith("CNY") else 360,
                repayment="equal_instalments" if variant else "bullet",
                require_verified=not (kind == "receivable" and variant and b % 2 == 0),
                active=ident % 20 != 7, min_rating="BBB" if ident % 10 == 3 else None))
    return products


def fill_products(w: Writer, products: list[Product], now: datetime) -> None:
    names = {"order": "Order financing", "receivable": "Receivables financing",
             "warehouse_receipt": "Warehouse receipt loan", "policy": "Insured receivables"}
    w.rows("financing_products",
           "id, bank_org_id, name, kind, status, description, currencies, max_advance_rate, "
           "rate_min, rate_max, day_count, arrangement_fee_rate, max_tenor_days, "
           "repayment_type, penalty_rate, default_after_days, margin_call_ltv, "
           "liquidation_ltv, cure_days, min_rating, require_verified, require_insurance, "
           "created_at, created_by_id",
           ((p.id, BANK_BASE + p.bank, f"{names[p.kind]} {'ABCDEFGH'[p.variant]}", p.kind,
             "active" if p.active else "paused", None, p.currencies, p.advance, p.rate_min,
             p.rate_max, p.day_count, 5000, 180, p.repayment, 180000, 60,
             7500 if p.kind == "warehouse_receipt" else None,
             8500 if p.kind == "warehouse_receipt" else None,
             10 if p.kind == "warehouse_receipt" else None, p.min_rating, p.require_verified,
             p.kind == "policy", now - timedelta(days=380), officer(p.bank))
            for p in products))


def fill_facilities(w: Writer, sizes: Sizes, today: date, now: datetime) -> None:
    """Two USD facilities an SME, each with its three ledger accounts and the posted limit
    booking (limit debited, available credited), as ``grant_facility`` books it."""
    facilities, accounts, transactions, entries = [], [], [], []
    granted = today - timedelta(days=300)
    for s in range(sizes.smes):
        banks = sorted({s % sizes.banks, (s * 7 + 3) % sizes.banks})
        for b in banks:
            f = len(facilities) + 1
            limit = (200_000 + (s * 31 + b) % 8 * 100_000) * 100
            expiry = today + timedelta(days=200) if f % 20 else today - timedelta(days=10)
            bank = BANK_BASE + b
            facilities.append((f, bank, sme_org(s, sizes), "USD", limit, expiry, None, now,
                               approver(b)))
            key = f"facility:{bank}:{f}"
            base = 3 * (f - 1)
            accounts += [
                (base + 1, bank, "facility", f, key, "asset", "facility_limit", "USD",
                 f"Facility {f} limit USD", None, limit, 0, 0, 1, now),
                (base + 2, bank, "facility", f, key, "liability", "facility_available", "USD",
                 f"Facility {f} available USD", 0, -limit, 0, 0, 1, now),
                (base + 3, bank, "facility", f, key, "liability", "facility_used", "USD",
                 f"Facility {f} used USD", None, 0, 0, 0, 0, now)]
            transactions.append((f, f"org:{bank}", f"facility-{f}-limit-1",
                                 hashlib.sha256(key.encode()).hexdigest(), "facility_limit",
                                 f"Facility {f} limit 0 USD -> {limit / 100:.2f} USD",
                                 "posted", granted, 2, now, approver(b), "facility", f))
            entries += [(f, base + 1, limit, "USD", "posted", limit, 1, granted),
                        (f, base + 2, -limit, "USD", "posted", -limit, 1, granted)]
    w.rows("financing_facilities", "id, bank_org_id, sme_org_id, currency, limit_amount, "
           "expiry_date, note, created_at, created_by_id", facilities)
    w.rows("ledger_accounts", "id, org_id, owner_kind, owner_id, owner_key, type, purpose, "
           "currency, name, min_balance, balance, pending_debits, pending_credits, "
           "entry_count, created_at", accounts)
    w.rows("ledger_transactions", "id, scope, idempotency_key, request_hash, kind, "
           "description, status, value_date, entry_count, booked_at, actor_id, "
           "reference_kind, reference_id", transactions)
    w.rows("ledger_entries", "transaction_id, account_id, amount, currency, phase, "
           "balance_after, sequence, value_date", entries)
    w.commit()


# ---- receipts, requests, decisions, loans, instalments, encumbrances

@dataclass
class Asset:
    kind: str                 # the AssetKind value
    id: int
    label: str
    value: int                # minor units of ``currency`` (net of haircut for receipts)
    currency: str


@dataclass
class Pools:
    """An SME's assets by what they can back: ``free`` could back a request now, ``past``
    back the loans already repaid or cancelled."""
    free: dict[str, list[Asset]] = field(default_factory=dict)
    past: dict[str, list[Asset]] = field(default_factory=dict)


def _usd(asset: Asset) -> int:
    return int(Decimal(asset.value) * CNY_PER[asset.currency] / CNY_PER["USD"])


def fill_receipts(w: Writer, sizes: Sizes, today: date, now: datetime
                  ) -> tuple[list[list], dict[int, list[Asset]]]:
    """The warehouse, and three receipts an SME (their rows are written with the loans,
    which decide which are pledged)."""
    w.rows("warehouses", "id, operator_org_id, name, kind, address, country, created_at",
           [(1, WAREHOUSE_ORG, "Hengqin Bonded Park", "bonded", "Hengqin, Zhuhai", "CN",
             now - timedelta(days=390))])
    receipts, by_sme = [], {}
    for s in range(sizes.smes):
        by_sme[s] = []
        for r in range(RECEIPTS_PER_SME):
            ident = s * RECEIPTS_PER_SME + r + 1
            hs, goods = GOODS[(s + r) % len(GOODS)]
            quantity = 1000 + (ident * 37) % 4000
            price_cents = 500 + (ident * 53) % 2500
            value = quantity * price_cents
            number = f"WR-{today.year}-{ident:06d}"
            net = int(Decimal(value) * (1 - haircut(hs)))
            by_sme[s].append(Asset("warehouse_receipt", ident,
                                   f"Warehouse receipt {number}", net, "USD"))
            receipts.append([ident, number, hashlib.sha256(number.encode()).hexdigest(), 1,
                             WAREHOUSE_ORG, sme_org(s, sizes), goods, hs, quantity * 10**5,
                             "pcs", f"Zone {r + 1}", price_cents * 10**4, "USD", value,
                             today - timedelta(days=60), "operator appraisal",
                             hashlib.md5(number.encode()).hexdigest(), r == 0,
                             today - timedelta(days=60), today + timedelta(days=120),
                             "issued", now - timedelta(days=60), now - timedelta(days=60)])
    return receipts, by_sme


def plan_pools(sizes: Sizes, receipts: dict[int, list[Asset]], s: int) -> Pools:
    K, S = sizes.per_sme, sizes.smes
    pools = Pools(free={"order": [], "receivable": [],
                        "warehouse_receipt": list(receipts[s])},
                  past={"order": [], "receivable": [], "warehouse_receipt": list(receipts[s])})
    for k in range(K):
        o = s + S * k
        c = category(o, k, K)
        number = f"BM{o + 1:09d}"
        if c in (UNSHIPPED_B2B, UNSHIPPED_B2C, UNPAID_B2C):
            pools.free["order"].append(Asset("order", o + 1, f"Order {number}",
                                             order_cents(o), order_currency(o)))
        elif c == OPEN_RECEIVABLE:
            pools.free["receivable"].append(Asset("receivable", o + 1,
                                                  f"Receivable of order {number}",
                                                  order_cents(o), order_currency(o)))
        elif c == SETTLED_RECEIVABLE:
            pools.past["receivable"].append(Asset("receivable", o + 1,
                                                  f"Receivable of order {number}",
                                                  order_cents(o), order_currency(o)))
        elif c == PAID_B2C and len(pools.past["order"]) < 10:
            pools.past["order"].append(Asset("order", o + 1, f"Order {number}",
                                             order_cents(o), order_currency(o)))
    for kind in pools.free:      # the most recent first
        pools.free[kind].reverse()
    return pools


LOAN_STATUSES = ([("repaid", 50), ("disbursed", 30), ("overdue", 5), ("defaulted", 2),
                  ("awaiting_disbursement", 5), ("cancelled", 8)])
LIVE = ("awaiting_disbursement", "disbursed", "overdue", "defaulted")
KIND_OF_LOAN = ["receivable"] * 5 + ["order"] * 3 + ["warehouse_receipt"] * 2


def _loan_status(n: int) -> str:
    h = (n * 2654435761) % 100
    for status, share in LOAN_STATUSES:
        if h < share:
            return status
        h -= share
    return "repaid"


@dataclass
class RequestPlan:
    s: int
    kind: str
    items: list[Asset]
    state: str                       # loan status, "submitted" or "withdrawn"
    created: datetime
    variant: int = 0                 # which of a bank's two products (1: instalments)
    start: date | None = None        # disbursement date
    accepted: datetime | None = None


def _loan_start(status: str, variant: int, today: date, rng: random.Random) -> date:
    """When a loan in ``status`` was disbursed (or will be): a bullet loan falls due after
    its 90 days, a loan in instalments a month after it starts."""
    first_due = 90 if variant == 0 else 30
    if status == "repaid":
        return today - timedelta(days=120 + rng.randrange(230))
    if status == "cancelled":
        return today - timedelta(days=5 + rng.randrange(300))
    if status == "awaiting_disbursement":
        return today + timedelta(days=rng.randrange(3))
    if status == "disbursed":
        return today - timedelta(days=1 + rng.randrange(first_due - 2))
    if status == "overdue":                   # overdue by 1 to 45 days
        return today - timedelta(days=first_due + 2 + rng.randrange(45))
    return today - timedelta(days=first_due + 62 + rng.randrange(60))   # defaulted


def plan_requests(sizes: Sizes, receipts: dict[int, list[Asset]], today: date,
                  now: datetime, rng: random.Random) -> list[RequestPlan]:
    """Each SME's loans (round robin over the SMEs), then its open and withdrawn requests,
    collateral drawn from its own assets: live loans and open requests each from what is
    still free, repaid and cancelled loans from the assets they financed back then."""
    S = sizes.smes
    loans_of = [sizes.loans // S + (1 if s < sizes.loans % S else 0) for s in range(S)]
    opened = int(sizes.loans * OPEN_PER_LOAN)
    open_of = [opened // S + (1 if s < opened % S else 0) for s in range(S)]
    withdrawn = int(sizes.loans * WITHDRAWN_PER_LOAN)
    plans = []
    n = 0
    for s in range(S):
        pools = plan_pools(sizes, receipts, s)
        past_turn = defaultdict(int)

        def take(kind: str, count: int, live: bool) -> list[Asset]:
            if live:
                free = pools.free[kind]
                taken, pools.free[kind] = free[:count], free[count:]
                return taken
            past = pools.past[kind]
            if not past:
                return []
            taken = [past[(past_turn[kind] + i) % len(past)] for i in range(count)]
            past_turn[kind] += count
            return list({a.id: a for a in taken}.values())

        for j in range(loans_of[s]):
            n += 1
            status = _loan_status(n)
            kind = KIND_OF_LOAN[(j + s) % len(KIND_OF_LOAN)]
            items = take(kind, 1 + n % 2, status in LIVE)
            if not items:                    # nothing free any more: an old, repaid loan
                status = "repaid"
                items = take(kind, 1 + n % 2, False)
            variant = n % 3 == 0
            start = _loan_start(status, variant, today, rng)
            accepted = min(datetime.combine(start - timedelta(days=2), datetime.min.time())
                           + timedelta(hours=2 + rng.randrange(8)), now)
            plans.append(RequestPlan(s, kind, items, status,
                                     accepted - timedelta(days=3 + rng.randrange(5)),
                                     variant=int(variant), start=start, accepted=accepted))
        for j in range(open_of[s]):
            kind = KIND_OF_LOAN[(j * 3 + s) % len(KIND_OF_LOAN)]
            items = take(kind, 1 + j % 2, True) or take("order", 1, True)
            if items:
                plans.append(RequestPlan(s, items[0].kind, items, "submitted",
                                         now - timedelta(minutes=rng.randrange(14 * 1440)),
                                         variant=j % 2))
    for j in range(withdrawn):
        s = (j * 7919) % S
        kind = KIND_OF_LOAN[j % len(KIND_OF_LOAN)]
        pools = plan_pools(sizes, receipts, s)
        items = pools.past[kind][:1] or pools.past["receivable"][:1]
        if items:
            plans.append(RequestPlan(s, items[0].kind, items, "withdrawn",
                                     now - timedelta(minutes=rng.randrange(200 * 1440)),
                                     variant=j % 2))
    plans.sort(key=lambda p: p.created)
    return plans


def fill_financing(w: Writer, sizes: Sizes, products: list[Product], receipts_rows: list,
                   receipts: dict[int, list[Asset]], today: date, now: datetime,
                   seed: int) -> None:
    from finance_app.financing.schedule import RepaymentType, build_schedule
    from finance_app.money import Money
    rng = random.Random(seed)
    plans = plan_requests(sizes, receipts, today, now, rng)
    by_bank_kind = defaultdict(list)
    for p in products:
        by_bank_kind[(p.bank, p.kind)].append(p)
    requests, collateral, targets, decisions, loans, instalments = [], [], [], [], [], []
    encumbrances, assets, pledge_terms, offers, alerts = [], {}, [], set(), []
    receipt_status = {}
    ids = defaultdict(int)

    def next_id(name: str) -> int:
        ids[name] += 1
        return ids[name]

    for plan in plans:
        request_id = next_id("request")
        value_usd = sum(_usd(a) for a in plan.items)
        count = 1 + rng.randrange(3)
        banks = []
        first = (request_id * 7 + plan.s) % sizes.banks
        while len(banks) < min(count, sizes.banks):
            if first not in banks:
                banks.append(first)
            first = (first + 1 + rng.randrange(sizes.banks)) % sizes.banks
        tenor = 90
        is_loan = plan.state not in ("submitted", "withdrawn")
        chosen = []
        for b in banks:            # a loan's products as they were; an open request's active
            options = by_bank_kind[(b, plan.kind)]
            variant = [p for p in options if p.variant == plan.variant]
            if not is_loan:
                variant = [p for p in variant if p.active] or [p for p in options if p.active]
            chosen.append((variant or options)[0])
        advance = min(Decimal(p.advance) / 10000 for p in chosen)
        eligible = max(int(value_usd * advance), 10_000)
        amount = max(eligible * 8 // 10, 10_000)
        created = plan.created
        user = sme_user(plan.s, sizes)
        status = "accepted" if is_loan else plan.state
        request_row = [request_id, sme_org(plan.s, sizes), plan.kind, amount, "USD", tenor,
                       "Working capital for the next shipments", status, None, created, user]
        requests.append(request_row)
        for a in plan.items:
            collateral.append((request_id, a.kind, a.id, a.label, a.value, a.currency))
            if a.kind == "warehouse_receipt":
                offers.update((a.id, BANK_BASE + b) for b in banks)
        for position, (b, product) in enumerate(zip(banks, chosen)):
            target_id = next_id("target")
            bank = BANK_BASE + b
            binding = "facility" if (plan.s % sizes.banks == b and eligible > 50_000_000) \
                else "advance"
            targets.append((target_id, request_id, product.id, bank, eligible, binding,
                            created))
            rate = product.rate_min + (product.rate_max - product.rate_min) * \
                ((request_id + b) % 5) // 4
            prepared = min(created + timedelta(hours=4 + rng.randrange(40)), now)
            approved_at = min(prepared + timedelta(hours=1 + rng.randrange(20)), now)
            fees = amount * 5 // 1000

            def decision(kind: str, status: str, *, approved: bool = True,
                         accepted_at: datetime | None = None, at: datetime = prepared):
                ident = next_id("decision")
                offer = kind == "offer"
                expiry = (at + timedelta(days=14)).date()
                if status == "expired":
                    expiry = today - timedelta(days=1)
                elif status in ("prepared", "approved"):
                    expiry = max(expiry, today + timedelta(days=3 + ident % 7))
                decisions.append((
                    ident, request_id, target_id, bank, kind, status,
                    amount if offer else None, "USD", rate if offer else None,
                    tenor if offer else None, fees if offer else None, None,
                    expiry if offer else None,
                    None if offer else "insufficient_collateral",
                    None if offer else "The collateral does not cover the amount asked.",
                    officer(b), at, approver(b) if approved else None,
                    approved_at if approved else None, accepted_at,
                    round((approved_at - created).total_seconds()) if approved else None))
                return ident

            h = (target_id * 2654435761) % 100
            if is_loan and position == 0:
                accepted_id = decision("offer", "accepted", accepted_at=plan.accepted)
                request_row[8] = accepted_id
                loan_rows(plan, request_id, accepted_id, product, amount, fees, rate, b,
                          loans, instalments, encumbrances, assets, pledge_terms,
                          receipt_status, alerts, next_id, sizes, today,
                          build_schedule, RepaymentType, Money)
            elif is_loan:
                if h < 60:
                    decision("offer", "lapsed")
                elif h < 90:
                    decision("rejection", "approved")
            elif plan.state == "withdrawn":
                if h < 50:
                    decision("offer", "lapsed", approved=h < 30)
            else:                            # an open request in the bank's queue
                if h < 5:                    # withdrawn, then a new one prepared
                    decision("offer", "withdrawn")
                    decision("offer", "prepared", approved=False,
                             at=min(approved_at + timedelta(hours=2), now))
                elif h < 10:
                    decision("rejection", "withdrawn", approved=False)
                elif h < 20:
                    decision("offer" if h % 2 else "rejection", "prepared", approved=False)
                elif h < 50:
                    decision("offer", "approved")
                elif h < 58:
                    decision("rejection", "approved")
                elif h < 62:
                    decision("offer", "expired")
                # else: nothing yet
    for receipt in receipts_rows:
        receipt[20] = receipt_status.get(receipt[0], "issued")
    w.rows("warehouse_receipts",
           "id, number, verification_hash, warehouse_id, operator_org_id, depositor_org_id, "
           "goods_description, hs_code, quantity, unit, storage_location, unit_price, "
           "currency, value_amount, valuation_date, valuation_source, code_nonce, insured, "
           "issue_date, expiry_date, status, status_changed_at, created_at", receipts_rows)
    w.rows("warehouse_receipt_offers", "receipt_id, bank_org_id, offered_at",
           ((r, b, now - timedelta(days=30)) for r, b in sorted(offers)))
    w.rows("financing_requests", "id, sme_org_id, kind, amount, currency, tenor_days, "
           "purpose, status, accepted_offer_id, created_at, created_by_id", requests)
    w.rows("financing_request_collateral", "request_id, asset_kind, asset_id, label, "
           "value_amount, value_currency", collateral)
    w.rows("financing_request_targets", "id, request_id, product_id, bank_org_id, "
           "eligible_amount, binding, created_at", targets)
    w.rows("financing_decisions", "id, request_id, target_id, bank_org_id, kind, status, "
           "amount, currency, annual_rate, tenor_days, fees_amount, conditions, expiry_date, "
           "reason_codes, reason_text, prepared_by_id, prepared_at, approved_by_id, "
           "approved_at, accepted_at, seconds_to_decision", decisions)
    w.rows("financing_loans", "id, decision_id, request_id, product_id, bank_org_id, "
           "sme_org_id, principal_amount, currency, annual_rate, day_count, tenor_days, "
           "fees_amount, repayment_type, penalty_rate, default_after_days, status, "
           "accepted_at, accepted_by_id, disbursed_at, disbursed_on, maturity_date, "
           "closed_at, created_at", loans)
    w.rows("financing_instalments", "loan_id, bank_org_id, number, period_start, due_date, "
           "currency, principal_due, interest_due, principal_paid, interest_paid, "
           "interest_recognised, penalty_accrued, penalty_paid, status, overdue_since, "
           "paid_on", instalments)
    w.rows("collateral_assets", "asset_kind, asset_id, created_at",
           ((kind, ident, at) for (kind, ident), at in sorted(assets.items())))
    w.rows("encumbrances", "id, asset_kind, asset_id, holder_org_id, financing_kind, "
           "financing_ref, secured_amount, secured_currency, max_ltv, status, since, "
           "created_at, created_by_id, released_at, release_reason", encumbrances)
    w.rows("warehouse_pledge_terms", "encumbrance_id, receipt_id, margin_call_ltv, "
           "liquidation_ltv, cure_days", pledge_terms)
    w.rows("risk_alerts", "rule, severity, subject_org_id, party_org_id, object_type, "
           "object_id, message, evidence, status, dedupe_key, raised_at", alerts)
    w.commit()


FINANCING_KIND = {"order": "order_financing", "receivable": "receivable_assignment",
                  "warehouse_receipt": "warehouse_receipt_loan"}


def loan_rows(plan: RequestPlan, request_id: int, decision_id: int, product: Product,
              amount: int, fees: int, rate: int, b: int, loans, instalments, encumbrances,
              assets, pledge_terms, receipt_status, alerts, next_id, sizes: Sizes,
              today: date, build_schedule, RepaymentType, Money) -> None:
    loan_id = next_id("loan")
    status, start, accepted = plan.state, plan.start, plan.accepted
    bank = BANK_BASE + b
    disbursed = status not in ("awaiting_disbursement", "cancelled")
    schedule = build_schedule(Money.from_minor(amount, "USD"),
                              Decimal(rate) / 10**6, product.day_count, start, 90,
                              RepaymentType(product.repayment)) if disbursed else None
    closed = None
    if status == "cancelled":
        closed = accepted + timedelta(days=1)
    period = start
    last_due = None
    for i in schedule.instalments if schedule else ():
        principal, interest = i.principal.to_minor(), i.interest.to_minor()
        due, paid, overdue_since, row_status, penalty = i.due_date, False, None, "pending", 0
        paid_on = None
        if status == "repaid" or (status == "disbursed" and due < today):
            paid, row_status = True, "paid"
            late = (loan_id * 31 + i.number) % 10 == 0
            paid_on = due + timedelta(days=(loan_id % 20) + 1 if late else 0)
            if late:
                overdue_since, penalty = due + timedelta(days=1), max(principal // 2000, 1)
        elif status in ("overdue", "defaulted") and due < today:
            row_status, overdue_since = "overdue", due + timedelta(days=1)
            penalty = max(principal * (today - due).days * 18 // 36500, 1)
        instalments.append((
            loan_id, bank, i.number, period, due, "USD", principal, interest,
            principal if paid else 0, interest if paid else 0,
            interest if due < today or paid else 0, penalty, penalty if paid else 0,
            row_status, overdue_since, paid_on))
        period = last_due = due
    if status == "repaid":
        closed = datetime.combine(last_due, datetime.min.time()) + timedelta(hours=15)
    disbursed_at = datetime.combine(start, datetime.min.time()) + timedelta(hours=3) \
        if disbursed else None
    loans.append((loan_id, decision_id, request_id, product.id, bank, sme_org(plan.s, sizes),
                  amount, "USD", rate, product.day_count, 90, fees, product.repayment, 180000,
                  60, status, accepted, sme_user(plan.s, sizes), disbursed_at,
                  start if disbursed else None, start + timedelta(days=90) if disbursed else None,
                  closed, accepted))
    live = status in LIVE
    share = amount // len(plan.items)
    for n, asset in enumerate(plan.items):
        ident = next_id("encumbrance")
        secured = share if n < len(plan.items) - 1 else amount - share * (len(plan.items) - 1)
        assets.setdefault((asset.kind, asset.id), accepted)
        encumbrances.append((
            ident, asset.kind, asset.id, bank, FINANCING_KIND[asset.kind], f"loan:{loan_id}",
            secured, "USD", product.advance if asset.kind == "warehouse_receipt" else None,
            "active" if live else "released", accepted, accepted, officer(b),
            None if live else closed, None if live else
            f"loan {loan_id} {'repaid' if status == 'repaid' else 'cancelled'}"))
        if asset.kind == "warehouse_receipt":
            pledge_terms.append((ident, asset.id, 7500, 8500, 10))
            if live:
                receipt_status[asset.id] = "pledged"
            else:
                receipt_status.setdefault(asset.id, "released")
    if status in ("overdue", "defaulted"):
        alerts.append(("instalment_overdue", "high" if status == "defaulted" else "medium",
                       sme_org(plan.s, sizes), bank, "Loan", loan_id,
                       f"Loan {loan_id}: an instalment is overdue.", "{}", "open",
                       f"loan:{loan_id}:overdue", accepted + timedelta(days=40)))


def fix_sequences(w: Writer) -> None:
    if w.kind != "postgres":
        return
    tables = [r[0] for r in w.conn.execute(
        "SELECT table_name FROM information_schema.columns WHERE column_name = 'id' "
        "AND table_schema = 'public' AND column_default LIKE 'nextval%'").fetchall()]
    for table in tables:
        w.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                  f"COALESCE((SELECT max(id) FROM {table}), 0) + 1, false)")
    w.commit()


def missing_indexes(url: str, *, create: bool = False) -> list[str]:
    """Indexes the models declare that the migrated database lacks (a model change whose
    migration is not written yet); with ``create``, made here, so that the figures are
    those of the models' schema."""
    from sqlalchemy import create_engine, inspect
    from finance_app.extensions import db
    engine = create_engine(url)
    inspector = inspect(engine)
    missing = []
    for table in db.metadata.sorted_tables:
        if not inspector.has_table(table.name):
            continue
        have = {i["name"] for i in inspector.get_indexes(table.name)}
        for index in sorted(table.indexes, key=lambda i: i.name):
            if index.name not in have:
                missing.append(index.name)
                if create:
                    index.create(bind=engine)
    if create and missing and url.startswith("postgresql"):
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE")
    engine.dispose()
    return missing


def fill(kind: str, url: str, sizes: Sizes, seed: int) -> dict:
    from finance_app import clock
    now, today = clock.now().replace(microsecond=0), clock.today()
    w, sql = Writer(kind, url), Sql(kind)
    phases = {}
    started = time.perf_counter()
    fill_parties(w, sizes, now)
    fill_reference(w, today, now)
    w.commit()
    phases["parties"] = time.perf_counter() - started
    mark = time.perf_counter()
    fill_trade(w, sql, sizes, today)
    phases["trade"] = time.perf_counter() - mark
    mark = time.perf_counter()
    products = plan_products(sizes)
    fill_products(w, products, now)
    fill_facilities(w, sizes, today, now)
    receipts_rows, receipts = fill_receipts(w, sizes, today, now)
    fill_financing(w, sizes, products, receipts_rows, receipts, today, now, seed)
    fix_sequences(w)
    phases["financing"] = time.perf_counter() - mark
    w.close()
    mark = time.perf_counter()
    analyze(url, vacuum=True)
    phases["analyze"] = time.perf_counter() - mark
    phases["total"] = time.perf_counter() - started
    return phases


def census(app) -> dict:
    """What the database holds, to print beside the figures (and check the fill)."""
    from sqlalchemy import func, select
    from finance_app.collateral.models import Encumbrance
    from finance_app.extensions import db
    from finance_app.financing.models import (
        Decision, FinancingProduct, FinancingRequest, Instalment, Loan, RequestTarget,
    )
    from finance_app.trade.models import MatchVerdict, Order, Receivable

    def count(model, *where):
        return db.session.execute(select(func.count()).select_from(model).where(*where)
                                  ).scalar_one()

    def by(column):
        return {str(k.value if hasattr(k, "value") else k): v for k, v in db.session.execute(
            select(column, func.count()).group_by(column)).all()}

    with app.app_context():
        per_bank = db.session.execute(select(func.count()).select_from(RequestTarget)
                                      .group_by(RequestTarget.bank_org_id)).scalars().all()
        result = {"orders": count(Order), "verdicts": by(MatchVerdict.status),
                  "receivables": by(Receivable.status), "products": count(FinancingProduct),
                  "requests": by(FinancingRequest.status), "targets": count(RequestTarget),
                  "targets_per_bank": [min(per_bank, default=0), max(per_bank, default=0)],
                  "decisions": count(Decision), "loans": by(Loan.status),
                  "instalments": by(Instalment.status),
                  "active_encumbrances": count(Encumbrance, Encumbrance.status == "active")}
        db.session.remove()
    return result


# --------------------------------------------------------------------------- serialising

def _money(value) -> dict | None:
    return None if value is None else {"amount": str(value.amount), "currency": value.currency}


def _item(item) -> dict:
    return {"kind": item.kind.value, "id": item.id, "label": item.label,
            "value": _money(item.value), "problem": item.problem, "detail": item.detail}


def _eligibility(e) -> dict:
    return {"eligible": e.eligible, "amount": _money(e.amount), "binding": e.binding,
            "collateral_value": _money(e.collateral_value),
            "advance_limit": _money(e.advance_limit),
            "facility_available": _money(e.facility_available), "reasons": e.reasons,
            "rate_notes": e.rate_notes}


def product_views_json(views) -> list[dict]:
    return [{"product": {"id": v.product.id, "name": v.product.name,
                         "kind": v.product.kind.value, "currencies": v.product.currency_list,
                         "rate_min": str(v.product.rate_min),
                         "rate_max": str(v.product.rate_max),
                         "max_tenor_days": v.product.max_tenor_days},
             "bank": v.bank_name, "eligibility": _eligibility(v.eligibility),
             "items": [_item(i) for i in v.items]} for v in views]


def _decision(d) -> dict | None:
    if d is None:
        return None
    return {"id": d.id, "kind": d.kind.value, "status": d.status.value,
            "amount": _money(d.money), "annual_rate": str(d.annual_rate)
            if d.annual_rate is not None else None, "tenor_days": d.tenor_days,
            "prepared_at": d.prepared_at.isoformat(),
            "approved_at": d.approved_at.isoformat() if d.approved_at else None}


def queue_json(page) -> dict:
    return {"page": page.page, "pages": page.pages, "total": page.total,
            "items": [{"target_id": r.target.id, "product_id": r.target.product_id,
                       "eligible_amount": r.target.eligible_amount,
                       "binding": r.target.binding,
                       "request": {"id": r.request.id, "sme_org_id": r.request.sme_org_id,
                                   "kind": r.request.kind.value,
                                   "amount": _money(r.request.money),
                                   "tenor_days": r.request.tenor_days,
                                   "status": r.request.status.value,
                                   "created_at": r.request.created_at.isoformat()},
                       "decision": _decision(r.decision)} for r in page.items]}


def evidence_json(pack) -> dict:
    h = pack.history
    return {"target_id": pack.target.id,
            "request": {"id": pack.request.id, "amount": _money(pack.request.money),
                        "kind": pack.request.kind.value, "status": pack.request.status.value,
                        "tenor_days": pack.request.tenor_days},
            "sme": {"id": pack.sme.id, "name": pack.sme.name}, "rating": pack.rating,
            "items": [{"item": _item(e.item), "verdict": e.verdict,
                       "verdict_reasons": e.verdict_reasons, "pledge": e.pledge,
                       "insured": e.insured} for e in pack.items],
            "history": {"member_since": h.member_since.isoformat(), "orders": h.orders,
                        "verified": h.verified, "mismatched": h.mismatched, "loans": h.loans,
                        "repaid_late": h.repaid_late, "max_days_late": h.max_days_late},
            "alerts": [{"id": a.id, "rule": a.rule, "severity": a.severity.value,
                        "message": a.message} for a in pack.alerts],
            "eligibility": _eligibility(pack.eligibility),
            "decisions": [_decision(d) for d in pack.decisions]}


# --------------------------------------------------------------------------- measuring

BASELINE_TABLE = {"products": "financing_products", "queue": "financing_request_targets",
                  "evidence": "financing_request_collateral"}
CANDIDATES = {   # JSON API first, then the HTML pages
    "products": ["/api/v1/financing/marketplace", "/api/v1/financing/products/eligible",
                 "/financing/marketplace", "/financing/"],
    "queue": ["/api/v1/financing/review", "/api/v1/financing/review-queue",
              "/api/v1/financing/queue", "/financing/review", "/financing/review/"],
    "evidence": ["/api/v1/financing/review/{id}", "/api/v1/financing/targets/{id}",
                 "/api/v1/financing/review/{id}/evidence", "/financing/review/{id}"],
}
TITLES = {"products": "SME product list (offers_for_sme)",
          "queue": "bank review queue, page 1 (review_queue)",
          "evidence": "evidence pack (evidence_pack)"}


class Statements:
    """Counts (and, while ``recording``, times) every SQL statement the engine runs."""

    def __init__(self, engine):
        from sqlalchemy import event
        self.count, self.recording, self.log = 0, False, []
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, conn, cursor, statement, parameters, context, executemany):
        self.count += 1
        context._bench_started = time.perf_counter()

    def _after(self, conn, cursor, statement, parameters, context, executemany):
        if self.recording:
            self.log.append((statement, parameters,
                             time.perf_counter() - context._bench_started))


def add_baseline_route(app) -> None:
    """The bare endpoint: one SELECT of ``n`` rows of one table, as JSON."""
    from flask import jsonify, request
    from sqlalchemy import text
    from finance_app import authz
    from finance_app.extensions import db

    @authz.allow(authz.PUBLIC)
    def rows():
        table = request.args["table"]
        if table not in BASELINE_TABLE.values():
            return jsonify({"error": "unknown table"}), 404
        found = db.session.execute(text(
            f"SELECT * FROM {table} WHERE id > :start ORDER BY id LIMIT :n"),
            {"start": int(request.args.get("start", 0)), "n": int(request.args["n"])})
        return jsonify([dict(row._mapping) for row in found])

    app.add_url_rule("/_bench/rows", "bench_rows", rows)


def find_endpoints(app, args) -> dict[str, str | None]:
    from werkzeug.exceptions import HTTPException
    from werkzeug.routing import RequestRedirect
    adapter = app.url_map.bind("localhost")
    chosen = {}
    for name, paths in CANDIDATES.items():
        given = getattr(args, f"{name}_path")
        if args.via == "service":
            chosen[name] = None
            continue
        if given:
            chosen[name] = given
            continue
        chosen[name] = None
        for path in paths:
            try:
                adapter.match(path.format(id=1), method="GET")
            except RequestRedirect:
                continue
            except HTTPException:
                continue
            chosen[name] = path
            break
        if chosen[name] is None and args.via == "http":
            raise SystemExit(f"no endpoint found for {name}; tried {', '.join(paths)}")
    return chosen


def subjects(app, count: int) -> dict:
    """Who the samples are about: SME users spread over all SMEs, every bank's officer, and
    requests open at the banks (their targets)."""
    from sqlalchemy import func, select
    from finance_app.accounts.models import Organisation, User, UserRole
    from finance_app.extensions import db
    from finance_app.financing.models import FinancingRequest, RequestTarget
    with app.app_context():
        smes = db.session.execute(select(User.id).join(Organisation).where(
            Organisation.kind == "sme").order_by(User.id)).scalars().all()
        officers = db.session.execute(
            select(User.id, User.org_id).join(Organisation).join(UserRole).where(
                Organisation.kind == "bank", UserRole.role == "officer").order_by(User.id)
        ).all()
        total = db.session.execute(select(func.count()).select_from(RequestTarget).join(
            FinancingRequest).where(FinancingRequest.status == "submitted")).scalar_one()
        step = max(1, total // count)
        targets = db.session.execute(
            select(RequestTarget.id, RequestTarget.bank_org_id).join(FinancingRequest)
            .where(FinancingRequest.status == "submitted").order_by(RequestTarget.id)
        ).all()[::step][:count]
        db.session.remove()
    bank_officer = {org: user for user, org in officers}
    return {"products": [(u, None) for u in smes[::max(1, len(smes) // count)][:count]],
            "queue": [(u, None) for u, _ in officers],
            "evidence": [(bank_officer[org], t) for t, org in targets]}


def prepare_http(app, users: set[int]) -> dict[int, dict]:
    """A live API token and a signed-in session for each user, as a client would have."""
    from finance_app import clock
    from finance_app.accounts.models import ApiToken, User, UserSession
    from finance_app.accounts.services import TOKEN_PREFIX, _token_digest
    from finance_app.extensions import db
    auth = {}
    with app.app_context():
        for ident in sorted(users):
            user = db.session.get(User, ident)
            raw = f"{TOKEN_PREFIX}bench-{ident}-{time.time_ns()}"
            sid = f"bench-session-{ident}-{time.time_ns()}"
            now = clock.now()
            db.session.add(ApiToken(org_id=user.org_id, user_id=ident, name="bench",
                                    prefix=raw[:12], token_hash=_token_digest(raw),
                                    created_at=now, last_used_at=now))
            db.session.add(UserSession(token_hash=hashlib.sha256(sid.encode()).hexdigest(),
                                       user_id=ident, created_at=now, last_seen_at=now,
                                       user_agent="bench"))
            auth[ident] = {"token": raw, "sid": sid}
        db.session.commit()
        db.session.remove()
    return auth


class Runner:
    """One request of a path for a subject, timed: through the endpoint when there is one,
    else the service call and the JSON serialisation of its result."""

    def __init__(self, app, endpoints: dict, auth: dict):
        self.app, self.endpoints, self.auth = app, endpoints, auth
        self.client = app.test_client()
        self.clients: dict[int, object] = {}
        self._rows: dict[tuple, int] = {}

    def _client(self, user: int):
        client = self.clients.get(user)
        if client is None:
            client = self.app.test_client()
            with client.session_transaction() as session:
                session["sid"] = self.auth[user]["sid"]
                session["_user_id"] = str(user)
                session["_fresh"] = False
            self.clients[user] = client
        return client

    def service(self, name: str, user_id: int, target: int | None):
        from finance_app.accounts.models import User
        from finance_app.extensions import db
        from finance_app.financing import marketplace, queries, review
        user = db.session.get(User, user_id)
        if name == "products":
            views = marketplace.offers_for_sme(user)
            return len(views), json.dumps(product_views_json(views), default=str)
        if name == "queue":
            page = queries.review_queue(user)
            return len(page.items), json.dumps(queue_json(page), default=str)
        pack = review.evidence_pack(target, actor=user)
        return len(pack.items) + len(pack.decisions), json.dumps(evidence_json(pack),
                                                                 default=str)

    def rows(self, name: str, user_id: int, target: int | None) -> int:
        """How many rows the path returns for the subject (for the baseline)."""
        key = (name, user_id, target)
        if key not in self._rows:
            with self.app.test_request_context():
                self._rows[key] = self.service(name, user_id, target)[0]
        return self._rows[key]

    def run(self, name: str, user_id: int, target: int | None) -> float:
        path = self.endpoints[name]
        started = time.perf_counter()
        if path is None:
            with self.app.test_request_context():
                self._rows[(name, user_id, target)] = self.service(name, user_id, target)[0]
        else:
            url = path.format(id=target)
            if url.startswith("/api/"):
                response = self.client.get(url, headers={
                    "Authorization": f"Bearer {self.auth[user_id]['token']}"})
            else:
                response = self._client(user_id).get(url)
            response.get_data()
            if response.status_code != 200:
                raise RuntimeError(f"GET {url}: {response.status_code} "
                                   f"{response.get_data(as_text=True)[:300]}")
        return time.perf_counter() - started

    def baseline(self, name: str, rows: int, turn: int) -> float:
        started = time.perf_counter()
        response = self.client.get(f"/_bench/rows?table={BASELINE_TABLE[name]}&n={rows}"
                                   f"&start={(turn * 97) % 1000}")
        response.get_data()
        if response.status_code != 200:
            raise RuntimeError(f"baseline: {response.status_code}")
        return time.perf_counter() - started


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))]


def summary(values: list[float]) -> dict:
    return {"p50_ms": _percentile(values, 0.5) * 1000, "p95_ms": _percentile(values, 0.95)
            * 1000, "max_ms": max(values) * 1000, "n": len(values)}


def measure(app, runner: Runner, who: dict, statements: Statements, args) -> dict:
    """Warm-up, then the samples: each request of the path followed by the baseline for
    the same number of rows, so that both meet the same machine."""
    results = {}
    for name in ("products", "queue", "evidence"):
        people = who[name]
        for turn in range(args.warmup):
            subject = people[turn % len(people)]
            runner.run(name, *subject)
            runner.baseline(name, max(runner.rows(name, *subject), 1), turn)
        times, base, queries, sizes = [], [], [], []
        for turn in range(args.samples):
            subject = people[turn % len(people)]
            before = statements.count
            times.append(runner.run(name, *subject))
            queries.append(statements.count - before)
            rows = runner.rows(name, *subject)
            base.append(runner.baseline(name, max(rows, 1), turn))
            sizes.append(rows)
        results[name] = {"via": runner.endpoints[name] or "service + JSON",
                         "rows_median": _percentile(sizes, 0.5), "rows_max": max(sizes),
                         "queries_median": _percentile(queries, 0.5),
                         "queries_max": max(queries), "measured": summary(times),
                         "baseline": summary(base)}
    return results


def profile(app, runner: Runner, who: dict, statements: Statements, name: str,
            dialect: str) -> dict:
    """Where the time goes in one request of the path (the subject of the slowest
    sample kind): statements grouped by text, EXPLAIN of the costliest, cProfile."""
    from finance_app.extensions import db
    user, target = who[name][0]
    statements.log, statements.recording = [], True
    runner.run(name, user, target)
    statements.recording = False
    groups = defaultdict(lambda: [0, 0.0, None, 0.0])
    for statement, parameters, seconds in statements.log:
        group = groups[statement]
        group[0] += 1
        group[1] += seconds
        if seconds >= group[3]:
            group[2], group[3] = parameters, seconds
    top = sorted(groups.items(), key=lambda kv: -kv[1][1])[:6]
    report = {"statements": len(statements.log),
              "sql_ms": sum(s for _, _, s in statements.log) * 1000, "top": []}
    for statement, (count, seconds, parameters, _) in top:
        report["top"].append({"count": count, "ms": seconds * 1000,
                              "sql": " ".join(statement.split())})
    with app.app_context():
        connection = db.engine.raw_connection()
        try:
            cursor = connection.cursor()
            for statement, (count, seconds, parameters, _) in top[:2]:
                prefix = "EXPLAIN (ANALYZE, BUFFERS) " if dialect == "postgres" \
                    else "EXPLAIN QUERY PLAN "
                cursor.execute(prefix + statement, parameters)
                plan = [" ".join(str(c) for c in row) for row in cursor.fetchall()]
                next(t for t in report["top"] if t["sql"] == " ".join(statement.split())
                     )["plan"] = plan
            connection.rollback()
        finally:
            connection.close()
    profiler = cProfile.Profile()
    profiler.enable()
    runner.run(name, user, target)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(
        r"finance_app/(?!extensions)", 14)
    report["cprofile"] = [line for line in out.getvalue().splitlines()
                          if "finance_app" in line or "ncalls" in line]
    return report


# --------------------------------------------------------------------------- report

def report(db_kind: str, sizes: Sizes, figures: dict, target_ms: float) -> None:
    fill_ = figures.get("fill")
    c = figures["census"]
    print(f"\n== {db_kind}: {sizes.smes:,} SMEs, {c['orders']:,} orders, "
          f"{sum(c['loans'].values()):,} loans, {sizes.banks} banks ==")
    if fill_:
        print(f"fill            {fill_['total']:.1f} s (parties {fill_['parties']:.1f}, "
              f"trade {fill_['trade']:.1f}, financing {fill_['financing']:.1f}, "
              f"{'VACUUM ANALYZE' if db_kind == 'postgres' else 'ANALYZE'} "
              f"{fill_['analyze']:.1f})")
    print(f"contents        verdicts {c['verdicts']}; receivables {c['receivables']}; "
          f"{c['products']} products; requests {c['requests']}; {c['targets']:,} targets "
          f"({c['targets_per_bank'][0]:,} to {c['targets_per_bank'][1]:,} a bank), "
          f"{c['decisions']:,} decisions; loans {c['loans']}; instalments "
          f"{c['instalments']}; {c['active_encumbrances']:,} active encumbrances")
    print(f"\n{'path':42} {'via':30} {'rows':>5} {'SQL':>5} {'p50 ms':>8} {'p95 ms':>8} "
          f"{'max ms':>8} | {'base p50':>8} {'base p95':>8} | {'x p50':>6} {'x p95':>6}")
    for name, r in figures["paths"].items():
        m, b = r["measured"], r["baseline"]
        flag = "" if m["p95_ms"] <= target_ms else f"  > {target_ms:.0f} ms"
        print(f"{TITLES[name]:42} {r['via'][:30]:30} {r['rows_median']:>5} "
              f"{r['queries_median']:>5} {m['p50_ms']:8.1f} {m['p95_ms']:8.1f} "
              f"{m['max_ms']:8.1f} | {b['p50_ms']:8.2f} {b['p95_ms']:8.2f} | "
              f"{m['p50_ms'] / b['p50_ms']:6.0f} {m['p95_ms'] / b['p95_ms']:6.0f}{flag}")
    print(f"({figures['samples']} samples each after {figures['warmup']} warm-up requests; "
          f"rows and SQL: medians per request; baseline: GET of the same number of rows of "
          f"one table as JSON; x: ratio to it)")
    print(f"peak RSS        {figures['peak_rss_mb']:.0f} MB")
    if figures.get("missing_indexes"):
        print(f"indexes         the models declare {', '.join(figures['missing_indexes'])}, "
              f"which the migrations do not create: "
              f"{'created for this run' if figures['indexes_created'] else 'measured without them'}"
              f" (--create-missing-indexes)")
    for name, p in figures.get("profiles", {}).items():
        print(f"\n-- profile: {TITLES[name]}: {p['statements']} statements, "
              f"{p['sql_ms']:.1f} ms in the database driver")
        for t in p["top"]:
            print(f"  {t['count']:>5} x {t['ms']:8.1f} ms  {t['sql'][:150]}")
            for line in t.get("plan", [])[:14]:
                print(f"        | {line[:140]}")
        print("  cProfile, by cumulative time (finance_app only):")
        for line in p["cprofile"][:16]:
            print(f"    {line[:150]}")


def bench(db_kind: str, args, folder: Path) -> dict:
    defaults = DEFAULTS[db_kind]
    smes = args.smes or defaults["smes"]
    orders = args.orders or defaults["orders"]
    sizes = Sizes(smes=smes, per_sme=max(1, orders // smes), loans=args.loans
                  or defaults["loans"], banks=args.banks)
    if sizes.per_sme < 20:
        raise SystemExit("give each SME at least 20 orders (--orders >= 20 x --smes)")
    figures: dict = {"db": db_kind, "samples": args.samples, "warmup": args.warmup,
                     "sizes": sizes}
    figures["indexes_created"] = args.create_missing_indexes
    if args.reuse:
        url = database_url(db_kind, PG_DATABASE, folder)
        make_app(url)       # the models, for the indexes they declare
        figures["missing_indexes"] = missing_indexes(url, create=args.create_missing_indexes)
        figures.update(run_paths(db_kind, url, sizes, args))
        return figures
    with fresh_database(db_kind, PG_DATABASE, folder, keep=args.keep) as url:
        app = make_app(url)
        migrate(app)
        with app.app_context():
            from finance_app.extensions import db
            db.engine.dispose()
        figures["missing_indexes"] = missing_indexes(url, create=args.create_missing_indexes)
        figures["fill"] = fill(db_kind, url, sizes, args.seed)
        figures.update(run_paths(db_kind, url, sizes, args))
        if args.keep:
            print(f"kept the database: {url}")
    return figures


def run_paths(db_kind: str, url: str, sizes: Sizes, args) -> dict:
    app = make_app(url)
    app.config["PROPAGATE_EXCEPTIONS"] = True
    add_baseline_route(app)
    with app.app_context():
        from finance_app.extensions import db
        statements = Statements(db.engine)
    figures = {"census": census(app)}
    endpoints = find_endpoints(app, args)
    who = subjects(app, args.subjects)
    users = {u for people in who.values() for u, _ in people}
    auth = prepare_http(app, users) if any(endpoints.values()) else {}
    runner = Runner(app, endpoints, auth)
    figures["paths"] = measure(app, runner, who, statements, args)
    figures["profiles"] = {}
    for name, r in figures["paths"].items():
        if args.profile or r["measured"]["p95_ms"] > args.target_ms:
            figures["profiles"][name] = profile(app, runner, who, statements, name, db_kind)
    figures["peak_rss_mb"] = peak_rss_mb()
    with app.app_context():
        db.engine.dispose()
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--smes", type=int, default=None,
                        help="SMEs (default 10,000 on PostgreSQL, 1,000 on SQLite)")
    parser.add_argument("--orders", type=int, default=None,
                        help="orders, spread evenly over the SMEs (default 1,000,000; "
                             "100,000 on SQLite)")
    parser.add_argument("--loans", type=int, default=None,
                        help="loans (default 100,000; 10,000 on SQLite)")
    parser.add_argument("--banks", type=int, default=20)
    parser.add_argument("--samples", type=int, default=100, help="timed requests a path")
    parser.add_argument("--warmup", type=int, default=5, help="untimed requests a path first")
    parser.add_argument("--subjects", type=int, default=50,
                        help="SMEs and open requests the samples rotate over")
    parser.add_argument("--via", choices=["auto", "service", "http"], default="auto",
                        help="auto: the endpoints if the app has them, else the services")
    parser.add_argument("--products-path", default=None,
                        help="the product list's endpoint, e.g. /api/v1/financing/marketplace")
    parser.add_argument("--queue-path", default=None, help="the review queue's endpoint")
    parser.add_argument("--evidence-path", default=None,
                        help="the evidence pack's endpoint, {id} for the target id")
    parser.add_argument("--target-ms", type=float, default=TARGET_MS,
                        help="profile a path whose p95 is above this")
    parser.add_argument("--profile", action="store_true", help="profile every path")
    parser.add_argument("--keep", action="store_true",
                        help="keep the database afterwards (SQLite: in the temp folder)")
    parser.add_argument("--reuse", action="store_true",
                        help="measure on the database a --keep run left, without filling")
    parser.add_argument("--create-missing-indexes", action="store_true",
                        help="create the indexes the models declare and the migrations do "
                             "not (yet) before filling (with --reuse: before measuring)")
    parser.add_argument("--seed", type=int, default=20261201)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    results = []
    kept = Path(tempfile.gettempdir())
    with tempfile.TemporaryDirectory(prefix="bench_marketplace_") as tmp:
        for db_kind in (["sqlite", "postgres"] if args.db == "both" else [args.db]):
            folder = kept if args.keep or args.reuse else Path(tmp)
            figures = bench(db_kind, args, folder)
            report(db_kind, figures["sizes"], figures, args.target_ms)
            results.append(figures)
    if args.json:
        print(json.dumps(results, default=str))


if __name__ == "__main__":
    main()
