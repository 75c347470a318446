"""Ingest benchmark: CEB export messages filed and matched, end to end.

    .venv/bin/python bench/ingest.py --orders 100000 --db postgres
    .venv/bin/python bench/ingest.py --orders 100000 --db both --compare-memory

Generates ``--orders`` export orders with their receipts (CEB403), waybills (CEB505) and
customs inventories (CEB603) as CEB messages valid against the 202205 XSD, written to a
temporary folder as strings, one file at a time (100 documents a message, the most the
schema allows). One order in ``--mismatch-every`` is paid a cent short, so its verdict is
a mismatch; every other order ends verified.

For each database (a temporary SQLite file, or a fresh PostgreSQL database
``finance_bench`` dropped afterwards) it migrates the schema, files the three filers and
then runs, in this order:

1. end to end: every file read, ``parse_message``-d, ``services.ingest``-ed and committed,
   one transaction a file, as ``flask ingest-ceb`` does;
2. the baseline, in the same run: the same rows (orders, order lines, receipts, waybills,
   inventories), already parsed, bulk-inserted into an empty schema with
   ``insert(table)`` executemany, one transaction a file (on PostgreSQL also with COPY);
3. parse only: ``parse_message`` over every file, no database.

It prints documents a second for each, the ratio of end to end to the baseline, the
verdict counts, and peak RSS. ``--compare-memory`` runs each database at 10,000 orders and
at ``--orders`` in fresh processes and compares their peak RSS: it should not grow with
the number of documents. ``--json`` prints one JSON object of figures at the end.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    fresh_database, make_app, migrate, statistics_kept_fresh,
)

PG_DATABASE, PG_BASELINE = "finance_bench", "finance_bench_baseline"

SME_CODE, LOGISTICS_CODE, PAY_CODE = "4404930001", "4404980003", "4404990004"
EBP_CODE = "PLATFORM01"        # the marketplace; it need not be filed
PER_MESSAGE = 100              # both XSD sets allow at most 100 documents a message
KINDS = (("CEB303", "order"), ("CEB403", "payment"), ("CEB603", "inventory"),
         ("CEB505", "waybill"))


# --------------------------------------------------------------------------- generation

NS = 'xmlns:ceb="http://www.chinaport.gov.cn/ceb"'
APP_TIME = "20261101093000"


def _money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def _guid(n: int, kind: int) -> str:
    return f"{n:08X}-0000-4000-8000-{kind:012X}"


def _lines(n: int) -> list[tuple[int, int, int]]:
    """(gnum, quantity, unit price in cents) of order n's 1 to 3 lines."""
    return [(k, 1 + (n + k) % 5, 500 + (n * 37 + k * 11) % 20000)
            for k in range(1, 2 + n % 3)]


def _amounts(n: int) -> tuple[int, int]:
    goods = sum(qty * price for _, qty, price in _lines(n))
    return goods, 800 + (n % 5) * 100   # goods value and freight, in cents


def _order(n: int) -> str:
    goods, freight = _amounts(n)
    items = "".join(
        f"<ceb:OrderList><ceb:gnum>{k}</ceb:gnum><ceb:itemNo>SKU-{k:03d}</ceb:itemNo>"
        f"<ceb:itemName>LED 灯具 {k}</ceb:itemName><ceb:unit>011</ceb:unit>"
        f"<ceb:currency>502</ceb:currency><ceb:qty>{qty}</ceb:qty>"
        f"<ceb:price>{_money(price)}</ceb:price><ceb:totalPrice>{_money(qty * price)}"
        f"</ceb:totalPrice></ceb:OrderList>" for k, qty, price in _lines(n))
    return (f"<ceb:Order><ceb:OrderHead><ceb:guid>{_guid(n, 303)}</ceb:guid>"
            f"<ceb:appType>1</ceb:appType><ceb:appTime>{APP_TIME}</ceb:appTime>"
            f"<ceb:appStatus>2</ceb:appStatus><ceb:orderType>E</ceb:orderType>"
            f"<ceb:orderNo>BENCH{n:09d}</ceb:orderNo><ceb:ebpCode>{EBP_CODE}</ceb:ebpCode>"
            f"<ceb:ebpName>Marketplace</ceb:ebpName><ceb:ebcCode>{SME_CODE}</ceb:ebcCode>"
            f"<ceb:ebcName>珠海海岸线贸易有限公司</ceb:ebcName>"
            f"<ceb:goodsValue>{_money(goods)}</ceb:goodsValue>"
            f"<ceb:freight>{_money(freight)}</ceb:freight><ceb:currency>502</ceb:currency>"
            f"</ceb:OrderHead>{items}</ceb:Order>")


def _receipt(n: int, mismatch_every: int) -> str:
    goods, freight = _amounts(n)
    paid = goods + freight - (1 if mismatch_every and n % mismatch_every == 0 else 0)
    return (f"<ceb:Receipts><ceb:guid>{_guid(n, 403)}</ceb:guid><ceb:appType>1</ceb:appType>"
            f"<ceb:appTime>{APP_TIME}</ceb:appTime><ceb:appStatus>2</ceb:appStatus>"
            f"<ceb:ebpCode>{EBP_CODE}</ceb:ebpCode><ceb:ebpName>Marketplace</ceb:ebpName>"
            f"<ceb:ebcCode>{SME_CODE}</ceb:ebcCode>"
            f"<ceb:ebcName>珠海海岸线贸易有限公司</ceb:ebcName>"
            f"<ceb:orderNo>BENCH{n:09d}</ceb:orderNo><ceb:payCode>{PAY_CODE}</ceb:payCode>"
            f"<ceb:payName>湾区支付有限公司</ceb:payName><ceb:payNo>PAY{n:09d}</ceb:payNo>"
            f"<ceb:charge>{_money(paid)}</ceb:charge><ceb:currency>502</ceb:currency>"
            f"<ceb:accountingDate>20261101110000</ceb:accountingDate></ceb:Receipts>")


def _inventory(n: int) -> str:
    items = "".join(
        f"<ceb:InventoryList><ceb:gnum>{k}</ceb:gnum><ceb:itemNo>SKU-{k:03d}</ceb:itemNo>"
        f"<ceb:gcode>9405409000</ceb:gcode><ceb:gname>LED 灯具</ceb:gname>"
        f"<ceb:gmodel>5W</ceb:gmodel><ceb:barCode>69{n:011d}</ceb:barCode>"
        f"<ceb:country>502</ceb:country><ceb:currency>502</ceb:currency>"
        f"<ceb:qty>{qty}</ceb:qty><ceb:qty1>{qty}</ceb:qty1><ceb:unit>011</ceb:unit>"
        f"<ceb:unit1>011</ceb:unit1><ceb:price>{_money(price)}</ceb:price>"
        f"<ceb:totalPrice>{_money(qty * price)}</ceb:totalPrice></ceb:InventoryList>"
        for k, qty, price in _lines(n))
    return (f"<ceb:Inventory><ceb:InventoryHead><ceb:guid>{_guid(n, 603)}</ceb:guid>"
            f"<ceb:appType>1</ceb:appType><ceb:appTime>{APP_TIME}</ceb:appTime>"
            f"<ceb:appStatus>2</ceb:appStatus><ceb:customsCode>5141</ceb:customsCode>"
            f"<ceb:ebpCode>{EBP_CODE}</ceb:ebpCode><ceb:ebpName>Marketplace</ceb:ebpName>"
            f"<ceb:orderNo>BENCH{n:09d}</ceb:orderNo>"
            f"<ceb:logisticsCode>{LOGISTICS_CODE}</ceb:logisticsCode>"
            f"<ceb:logisticsName>大湾区速运</ceb:logisticsName>"
            f"<ceb:logisticsNo>WB{n:010d}</ceb:logisticsNo><ceb:copNo>COP{n:09d}</ceb:copNo>"
            f"<ceb:ieFlag>E</ceb:ieFlag><ceb:portCode>5141</ceb:portCode>"
            f"<ceb:ieDate>20261102</ceb:ieDate><ceb:statisticsFlag>A</ceb:statisticsFlag>"
            f"<ceb:agentCode>{SME_CODE}</ceb:agentCode>"
            f"<ceb:agentName>珠海海岸线贸易有限公司</ceb:agentName>"
            f"<ceb:ebcCode>{SME_CODE}</ceb:ebcCode>"
            f"<ceb:ebcName>珠海海岸线贸易有限公司</ceb:ebcName>"
            f"<ceb:ownerCode>{SME_CODE}</ceb:ownerCode>"
            f"<ceb:ownerName>珠海海岸线贸易有限公司</ceb:ownerName>"
            f"<ceb:tradeMode>9610</ceb:tradeMode><ceb:trafMode>5</ceb:trafMode>"
            f"<ceb:country>502</ceb:country><ceb:POD>USLA</ceb:POD>"
            f"<ceb:freight>0</ceb:freight><ceb:fCurrency>502</ceb:fCurrency>"
            f"<ceb:fFlag>3</ceb:fFlag><ceb:insuredFee>0</ceb:insuredFee>"
            f"<ceb:iCurrency>502</ceb:iCurrency><ceb:iFlag>3</ceb:iFlag>"
            f"<ceb:wrapType>2</ceb:wrapType><ceb:packNo>1</ceb:packNo>"
            f"<ceb:grossWeight>1.2</ceb:grossWeight><ceb:netWeight>1.0</ceb:netWeight>"
            f"</ceb:InventoryHead>{items}</ceb:Inventory>")


def _waybill(n: int) -> str:
    return (f"<ceb:Logistics><ceb:guid>{_guid(n, 505)}</ceb:guid><ceb:appType>1</ceb:appType>"
            f"<ceb:appTime>{APP_TIME}</ceb:appTime><ceb:appStatus>2</ceb:appStatus>"
            f"<ceb:logisticsCode>{LOGISTICS_CODE}</ceb:logisticsCode>"
            f"<ceb:logisticsName>大湾区速运</ceb:logisticsName>"
            f"<ceb:logisticsNo>WB{n:010d}</ceb:logisticsNo><ceb:freight>8.00</ceb:freight>"
            f"<ceb:insuredFee>0</ceb:insuredFee><ceb:currency>502</ceb:currency>"
            f"<ceb:grossWeight>1.2</ceb:grossWeight><ceb:packNo>1</ceb:packNo>"
            f"<ceb:goodsInfo>LED 灯具</ceb:goodsInfo></ceb:Logistics>")


def _base_transfer(code: str) -> str:
    return (f"<ceb:BaseTransfer><ceb:copCode>{code}</ceb:copCode><ceb:copName>Bench</ceb:copName>"
            "<ceb:dxpMode>DXP</ceb:dxpMode><ceb:dxpId>DXPENT0000000001</ceb:dxpId>"
            "</ceb:BaseTransfer>")


def generate(folder: Path, orders: int, per_message: int, mismatch_every: int) -> list[Path]:
    """Write the messages, one file at a time; returns them in filing order (for each
    group of orders: the orders, their receipts, inventories, then waybills)."""
    documents = {"CEB303": _order, "CEB403": lambda n: _receipt(n, mismatch_every),
                 "CEB603": _inventory, "CEB505": _waybill}
    senders = {"CEB303": SME_CODE, "CEB403": PAY_CODE, "CEB603": SME_CODE,
               "CEB505": LOGISTICS_CODE}
    files = []
    for group, start in enumerate(range(1, orders + 1, per_message), start=1):
        numbers = range(start, min(start + per_message, orders + 1))
        for message_type, _ in KINDS:
            path = folder / f"{group:06d}_{message_type}.xml"
            with path.open("w", encoding="utf-8") as out:
                out.write(f'<?xml version="1.0" encoding="UTF-8"?><ceb:{message_type}Message '
                          f'guid="{_guid(group, int(message_type[3:]) * 1000)}" version="1.0" '
                          f'{NS}>')
                make = documents[message_type]
                for n in numbers:
                    out.write(make(n))
                out.write(_base_transfer(senders[message_type]))
                out.write(f"</ceb:{message_type}Message>")
            files.append(path)
    return files


# --------------------------------------------------------------------------- databases

def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024   # Linux: KiB


def _rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _process_cpu(pid: int) -> float:
    """CPU seconds (user + system) another process of this machine has used."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def file_filers() -> None:
    from stdnum.cn import uscc
    from finance_app import clock
    from finance_app.accounts.models import Organisation
    from finance_app.accounts.states import FilingStatus, OrgKind
    from finance_app.extensions import db

    for n, (kind, code, name) in enumerate([
            (OrgKind.SME, SME_CODE, "珠海海岸线贸易有限公司"),
            (OrgKind.LOGISTICS, LOGISTICS_CODE, "大湾区速运有限公司"),
            (OrgKind.PAYMENT_INSTITUTION, PAY_CODE, "湾区支付有限公司")], start=1):
        body = f"91440400MA{n:07d}"
        db.session.add(Organisation(
            kind=kind, name=name, country="CN", credit_code=body + uscc.calc_check_digit(body),
            customs_code=code, contact_email=f"bench{n}@example.test", zone="Zhuhai Hengqin",
            filing_status=FilingStatus.APPROVED, filed_at=clock.now()))
    db.session.commit()


# --------------------------------------------------------------------------- runs

def file_messages(app, files: list[Path], chunk: int | None, barrier=None) -> dict:
    """What ``flask ingest-ceb`` does for each file: read, parse, ingest, commit. The
    clock starts after a warm-up (schemas loaded, a connection open) and, with a
    barrier, when every worker is ready."""
    from sqlalchemy import text
    from finance_app.extensions import db
    from finance_app.trade import services
    from finance_app.trade.ceb import parse_message
    from finance_app.trade.states import Direction, DocumentSource

    if chunk:
        services.CHUNK_SIZE = chunk
    accepted = rejected = 0
    rss, tenths = [], []
    phases = dict.fromkeys(("parse", "ingest", "commit"), 0.0)
    clock = time.perf_counter
    with app.app_context():
        parse_message(files[0].read_bytes())
        backend = None
        if db.engine.dialect.name == "postgresql":   # to read its CPU time from /proc
            backend = db.session.execute(text("SELECT pg_backend_pid()")).scalar_one()
        db.session.rollback()
        if barrier is not None:
            barrier.wait()
        started, cpu_started = clock(), time.process_time()
        backend_started = _process_cpu(backend) if backend else 0.0
        for i, path in enumerate(files):
            t0 = clock()
            message = parse_message(path.read_bytes())
            t1 = clock()
            batch = services.ingest(message.documents, actor=None,
                                    source=DocumentSource.CEB_XML,
                                    direction=Direction(message.direction), filename=path.name,
                                    message_type=message.message_type,
                                    warnings=message.warnings)
            accepted, rejected = accepted + batch.accepted, rejected + batch.rejected
            t2 = clock()
            db.session.commit()
            t3 = clock()
            phases["parse"] += t1 - t0
            phases["ingest"] += t2 - t1
            phases["commit"] += t3 - t2
            if (i + 1) % max(1, len(files) // 10) == 0:
                rss.append(round(_rss_mb(), 1))
                tenths.append(round(t3 - started, 2))
        seconds = clock() - started
        cpu = time.process_time() - cpu_started
        backend_cpu = _process_cpu(backend) - backend_started if backend else None
        db.session.remove()
    return {"accepted": accepted, "rejected": rejected, "seconds": seconds,
            "tenths": tenths,
            "cpu_seconds": cpu, "server_cpu_seconds": backend_cpu, "phase_seconds": phases, "rss_samples_mb": rss,
            "peak_rss_mb": _peak_rss_mb()}


def _worker(url: str, files: list[Path], chunk: int | None, barrier, results) -> None:
    results.put(file_messages(make_app(url), files, chunk, barrier))


def run_end_to_end(app, url: str, files: list[Path], chunk: int | None,
                   workers: int = 1) -> dict:
    """``file_messages`` in this process, or in ``workers`` processes that each take
    whole groups of orders (an order's four messages stay with one worker, in order)."""
    import multiprocessing
    from sqlalchemy import func, select
    from finance_app.audit.services import verify_chain
    from finance_app.extensions import db
    from finance_app.trade.models import MatchVerdict, Order

    with app.app_context():
        file_filers()
    if workers <= 1:
        parts = [file_messages(app, files, chunk)]
        seconds = parts[0]["seconds"]
    else:
        context = multiprocessing.get_context("spawn")
        barrier, results = context.Barrier(workers + 1), context.Queue()
        shares = [[p for p in files if (int(p.name.split("_")[0]) - 1) % workers == w]
                  for w in range(workers)]
        processes = [context.Process(target=_worker, args=(url, share, chunk, barrier, results))
                     for share in shares]
        for process in processes:
            process.start()
        barrier.wait()
        started = time.perf_counter()
        parts = [results.get() for _ in processes]
        seconds = time.perf_counter() - started
        for process in processes:
            process.join()
    with app.app_context():
        verdicts = {status.value: count for status, count in db.session.execute(
            select(MatchVerdict.status, func.count()).group_by(MatchVerdict.status))}
        orders = db.session.execute(select(func.count(Order.id))).scalar_one()
        chain = verify_chain()
        db.session.remove()
    accepted = sum(p["accepted"] for p in parts)
    rejected = sum(p["rejected"] for p in parts)
    phases = {name: sum(p["phase_seconds"][name] for p in parts)
              for name in ("parse", "ingest", "commit")}
    return {"documents": accepted + rejected, "accepted": accepted, "rejected": rejected,
            "seconds": seconds, "docs_per_second": (accepted + rejected) / seconds,
            "workers": max(1, workers), "cpu_seconds": sum(p["cpu_seconds"] for p in parts),
            "server_cpu_seconds": (sum(p["server_cpu_seconds"] for p in parts)
                                   if parts[0]["server_cpu_seconds"] is not None else None),
            "phase_seconds": phases, "orders": orders, "verdicts": verdicts,
            "audit_chain": str(chain), "audit_ok": chain.ok,
            "rss_samples_mb": parts[0]["rss_samples_mb"], "tenths": parts[0]["tenths"],
            "peak_rss_mb": max(p["peak_rss_mb"] for p in parts)}


def _baseline_rows(message, ids: dict[str, int], org_ids: dict[str, int], now: datetime
                   ) -> dict[str, list[dict]]:
    """The rows ``ingest`` stores for a message, built as plainly as possible."""
    from finance_app.audit.services import canonical_json
    from finance_app.trade.services import MODELS, RENAMES, _COLUMNS
    from finance_app.trade.states import DocumentKind

    filer_field = {"order": "ebc_code", "payment": "pay_code", "waybill": "logistics_code",
                   "inventory": "agent_code"}
    rows: dict[str, list[dict]] = {}
    for document in message.documents:
        kind = DocumentKind(document.kind)
        columns = _COLUMNS[kind]
        row = dict.fromkeys(c.key for c in MODELS[kind].__table__.columns)
        extra = {}
        for name, value in document.fields.items():
            name = RENAMES.get(name, name)
            if name in columns:
                row[name] = value
            elif name == "extra":
                extra.update(value)
            elif value not in (None, ""):
                extra[name] = value
        ids[kind.value] += 1
        row.update(id=ids[kind.value], filer_org_id=org_ids[document.fields[filer_field[kind]]],
                   direction=message.direction, source="ceb_xml", version=1,
                   guid=document.guid, extra=canonical_json(extra) if extra else None,
                   created_at=now, updated_at=now)
        for name in ("freight", "discount", "tax_total"):
            if name in row and row[name] is None:
                row[name] = Decimal(0)
        rows.setdefault(kind.value, []).append(row)
        for k, line in enumerate(document.lines if kind is DocumentKind.ORDER else (),
                                 start=1):
            ids["line"] += 1
            rows.setdefault("line", []).append(dict(
                id=ids["line"], order_id=row["id"], gnum=line["gnum"] or k,
                item_no=line["item_no"], item_name=line["item_name"] or "", unit=line["unit"],
                qty=line["qty"], price=line["price"], total_price=line["total_price"]))
    return rows


def run_baseline(app, files: list[Path], copy: bool = False) -> dict:
    """The same rows, parsed beforehand (untimed), bulk-inserted: one executemany
    ``insert(table)`` (or COPY) per table and file, one transaction a file."""
    from sqlalchemy import select
    from finance_app import clock
    from finance_app.accounts.models import Organisation
    from finance_app.db import ExactDecimal
    from finance_app.extensions import db
    from finance_app.trade.ceb import parse_message
    from finance_app.trade.models import Inventory, Order, OrderLine, Payment, Waybill

    tables = {"order": Order.__table__, "line": OrderLine.__table__,
              "payment": Payment.__table__, "waybill": Waybill.__table__,
              "inventory": Inventory.__table__}
    ids = dict.fromkeys(tables, 0)
    seconds, documents = 0.0, 0
    with app.app_context():
        file_filers()
        org_ids = dict(db.session.execute(
            select(Organisation.customs_code, Organisation.id)).all())
        now = clock.now()
        for path in files:
            message = parse_message(path.read_bytes())
            rows = _baseline_rows(message, ids, org_ids, now)
            documents += len(message.documents)
            started = time.perf_counter()
            if copy:
                _copy_rows(db, tables, rows, ExactDecimal)
            else:
                for name in ("order", "line", "payment", "waybill", "inventory"):
                    if rows.get(name):
                        db.session.execute(tables[name].insert(), rows[name])
                db.session.commit()
            seconds += time.perf_counter() - started
        db.session.remove()
    return {"documents": documents, "seconds": seconds, "docs_per_second": documents / seconds}


def _copy_rows(db, tables, rows, exact_type) -> None:
    """psycopg COPY of the rows, values converted as the column types would."""
    from enum import Enum
    connection = db.session.connection().connection.driver_connection
    with connection.cursor() as cursor:
        for name in ("order", "line", "payment", "waybill", "inventory"):
            if not rows.get(name):
                continue
            table = tables[name]
            columns = [c for c in table.columns]
            converters = [c.type.process_bind_param if isinstance(c.type, exact_type) else None
                          for c in columns]
            sql = f"COPY {table.name} ({', '.join(c.name for c in columns)}) FROM STDIN"
            with cursor.copy(sql) as copy:
                for row in rows[name]:
                    values = []
                    for column, convert in zip(columns, converters):
                        value = row[column.key]
                        if convert is not None:
                            value = convert(value, None)
                        elif isinstance(value, Enum):
                            value = value.value
                        values.append(value)
                    copy.write_row(values)
    db.session.commit()


def run_parse_only(files: list[Path]) -> dict:
    from finance_app.trade.ceb import parse_message
    documents, errors = 0, 0
    started = time.perf_counter()
    for path in files:
        message = parse_message(path.read_bytes())
        documents += len(message.documents)
        errors += len(message.rejected) + len(message.warnings)
    seconds = time.perf_counter() - started
    return {"documents": documents, "seconds": seconds, "docs_per_second": documents / seconds,
            "errors": errors}


def check_messages_are_valid(files: list[Path], per_message: int) -> None:
    """The generated messages are valid: no rejected document and no warning (but the
    one that more than 100 documents in a message earns)."""
    from finance_app.trade.ceb import MAX_DOCUMENTS, parse_message
    for path in files[:len(KINDS)]:
        message = parse_message(path.read_bytes())
        assert message.schema_version == "202205", path
        assert not message.rejected, (path, message.rejected[0].errors)
        expected = 1 if per_message > MAX_DOCUMENTS else 0
        assert len(message.warnings) == expected, (path, message.warnings)


# --------------------------------------------------------------------------- driver

def bench_database(db_kind: str, files: list[Path], folder: Path, args) -> dict:
    figures: dict = {"db": db_kind}
    with fresh_database(db_kind, PG_DATABASE, folder) as url:
        app = make_app(url)
        migrate(app)
        with statistics_kept_fresh(url):
            figures["end_to_end"] = run_end_to_end(app, url, files, args.chunk,
                                                      args.workers)
        with app.app_context():
            from finance_app.extensions import db
            db.engine.dispose()
    baselines = [("insert", False)] + ([("copy", True)] if db_kind == "postgres" else [])
    for name, copy in baselines:
        with fresh_database(db_kind, PG_BASELINE, folder) as url:
            app = make_app(url)
            migrate(app)
            with statistics_kept_fresh(url):
                figures[f"baseline_{name}"] = run_baseline(app, files, copy=copy)
            with app.app_context():
                from finance_app.extensions import db
                db.engine.dispose()
    figures["peak_rss_mb"] = _peak_rss_mb()
    return figures


def report(figures: dict, orders: int, mismatch_every: int) -> None:
    e2e = figures["end_to_end"]
    expected_mismatch = orders // mismatch_every if mismatch_every else 0
    print(f"\n== {figures['db']}: {orders:,} orders, {e2e['documents']:,} documents, "
          f"{e2e['workers']} ingesting process{'es' if e2e['workers'] > 1 else ''} ==")
    print(f"end to end      {e2e['seconds']:8.1f} s  {e2e['docs_per_second']:10,.0f} docs/s  "
          f"({e2e['accepted']:,} accepted, {e2e['rejected']:,} rejected)")
    phases = e2e["phase_seconds"]
    print(f"  of which       parse {phases['parse']:.1f} s, ingest and match "
          f"{phases['ingest']:.1f} s, commit {phases['commit']:.1f} s; "
          f"CPU used by the ingesting process{'es' if e2e['workers'] > 1 else ''}: "
          f"{e2e['cpu_seconds']:.1f} s"
          + (f", by their PostgreSQL backend{'s' if e2e['workers'] > 1 else ''}: "
             f"{e2e['server_cpu_seconds']:.1f} s" if e2e["server_cpu_seconds"] is not None
             else ""))
    for name in ("insert", "copy"):
        base = figures.get(f"baseline_{name}")
        if base:
            print(f"baseline {name:6} {base['seconds']:8.1f} s  {base['docs_per_second']:10,.0f}"
                  f" docs/s  end to end takes {e2e['seconds'] / base['seconds']:.1f}x as long")
    print(f"verdicts        {e2e['verdicts']} (expected {orders - expected_mismatch:,} verified, "
          f"{expected_mismatch:,} mismatch) on {e2e['orders']:,} orders")
    print(f"audit           {e2e['audit_chain']}")
    tenths = e2e["tenths"]
    if len(tenths) >= 2:
        steps = [b - a for a, b in zip([0.0] + tenths, tenths)]
        print(f"seconds per tenth of the files: {', '.join(f'{x:.2f}' for x in steps)}")
    print(f"RSS after each tenth of the files (MB): {e2e['rss_samples_mb']}")
    print(f"peak RSS        {e2e['peak_rss_mb']:.0f} MB after end to end, "
          f"{figures['peak_rss_mb']:.0f} MB at the end of this database's runs")


def compare_memory(args) -> None:
    """Each size in a fresh process, so each peak RSS is its own."""
    sizes = sorted({10_000, args.orders})
    rows = []
    for db_kind in _databases(args.db):
        for size in sizes:
            command = [sys.executable, str(Path(__file__).resolve()), "--orders", str(size),
                       "--db", db_kind, "--json", "--skip-baseline", "--skip-parse"]
            if args.chunk:
                command += ["--chunk", str(args.chunk)]
            command += ["--workers", str(args.workers), "--per-message", str(args.per_message)]
            out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            result = json.loads(out.strip().splitlines()[-1])
            e2e = result["databases"][0]["end_to_end"]
            rows.append((db_kind, size, e2e["documents"], e2e["docs_per_second"],
                         e2e["peak_rss_mb"]))
    print("\n== peak RSS by size (each run in a fresh process) ==")
    for db_kind, size, docs, rate, peak in rows:
        print(f"{db_kind:9} {size:>8,} orders  {docs:>9,} documents  {rate:8,.0f} docs/s  "
              f"peak RSS {peak:6.0f} MB")
    for db_kind in _databases(args.db):
        small, large = [r for r in rows if r[0] == db_kind][0], [r for r in rows
                                                                  if r[0] == db_kind][-1]
        print(f"{db_kind}: {large[2] / small[2]:.0f}x the documents, peak RSS x"
              f"{large[4] / small[4]:.2f} ({large[4] - small[4]:+.0f} MB)")


def _databases(choice: str) -> list[str]:
    return ["sqlite", "postgres"] if choice == "both" else [choice]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--chunk", type=int, default=None,
                        help="documents filed together by services.ingest (its CHUNK_SIZE)")
    parser.add_argument("--workers", type=int, default=1,
                        help="ingesting processes, each taking whole groups of orders")
    parser.add_argument("--per-message", type=int, default=PER_MESSAGE,
                        help="documents a message (the XSD allows at most 100)")
    parser.add_argument("--mismatch-every", type=int, default=100,
                        help="one order in N is paid a cent short (0: none)")
    parser.add_argument("--compare-memory", action="store_true",
                        help="also compare peak RSS of a 10,000-order run and this size")
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--skip-parse", action="store_true")
    parser.add_argument("--keep", type=Path, default=None,
                        help="write the messages to this folder and keep them")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)

    if args.compare_memory:
        main([a for a in (argv or sys.argv[1:]) if a != "--compare-memory"])
        compare_memory(args)
        return

    folder = Path(tempfile.mkdtemp(prefix="finance_bench_"))
    data = args.keep or folder / "messages"
    data.mkdir(parents=True, exist_ok=True)
    result: dict = {"orders": args.orders, "databases": []}
    try:
        started = time.perf_counter()
        files = generate(data, args.orders, args.per_message, args.mismatch_every)
        size = sum(p.stat().st_size for p in files)
        if not args.json:
            print(f"generated {len(files):,} messages ({size / 2**20:,.0f} MB, "
                  f"{args.orders * len(KINDS):,} documents) in "
                  f"{time.perf_counter() - started:.1f} s into {data}")
        check_messages_are_valid(files, args.per_message)
        for db_kind in _databases(args.db):
            if args.skip_baseline:
                with fresh_database(db_kind, PG_DATABASE, folder) as url:
                    app = make_app(url)
                    migrate(app)
                    figures = {"db": db_kind, "end_to_end": run_end_to_end(
                        app, url, files, args.chunk, args.workers)}
                    with app.app_context():
                        from finance_app.extensions import db
                        db.engine.dispose()
                figures["peak_rss_mb"] = _peak_rss_mb()
            else:
                figures = bench_database(db_kind, files, folder, args)
            result["databases"].append(figures)
            if not args.json:
                report(figures, args.orders, args.mismatch_every)
        if not args.skip_parse:
            result["parse_only"] = run_parse_only(files)
            if not args.json:
                parse = result["parse_only"]
                print(f"\nparse only      {parse['seconds']:8.1f} s  "
                      f"{parse['docs_per_second']:10,.0f} docs/s  (parse_message, no database)")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if args.json:
        print(json.dumps(result, default=str))


if __name__ == "__main__":
    main()
