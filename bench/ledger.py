"""Ledger benchmark: transfers booked through ``ledger.book``, beside hand-written SQL.

    .venv/bin/python bench/ledger.py --transfers 100000 --db both
    .venv/bin/python bench/ledger.py --transfers 20000 --db postgres --clients 4

Each transfer is one database transaction, as a request makes it: a debit of one account
and a credit of another, 1.00 to 99.99 USD, with its own idempotency key, committed.
The accounts (``--accounts``, 1,000 by default, one in ten with a floor of zero that
the transfers never breach) are picked at random, so concurrent clients meet on the
same accounts now and then and wait for each other's row locks.

For each database (a temporary SQLite file, or a fresh PostgreSQL database dropped
afterwards) it runs, in the same schema, with the same triggers:

1. ``ledger.book``, by one client, then by ``--clients`` concurrent clients (processes);
2. the baseline: the same postings as plain SQL with the same locking (the two accounts
   locked in id order with SELECT ... FOR UPDATE, the transaction row, two entry rows with
   their running balances, both balances updated), by one client and then by
   ``--clients`` clients.

SQLite has one writer at a time, so its concurrent figures show what waiting for the
write lock costs, not parallel work. It prints transfers a second and the ratio of the
ledger to the baseline, and checks afterwards that every currency still sums to zero
and every account's balance equals the sum of its entries.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import sys
import tempfile
import time
from datetime import date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    fresh_database, make_app, migrate, statistics_kept_fresh,
)

CURRENCY = "USD"


def plan(transfers: int, accounts: int, seed: int) -> list[tuple[int, int, int]]:
    """(from account index, to account index, cents) for each transfer. A transfer never
    leaves a floored account: floored accounts only receive."""
    rng = random.Random(seed)
    floored = set(range(0, accounts, 10))
    sources = [i for i in range(accounts) if i not in floored]
    moves = []
    for _ in range(transfers):
        source = rng.choice(sources)
        target = rng.randrange(accounts)
        while target == source:
            target = rng.randrange(accounts)
        moves.append((source, target, rng.randint(100, 9999)))
    return moves


def open_accounts(app, accounts: int) -> list[int]:
    from finance_app.extensions import db
    from finance_app.ledger import services as ledger
    from finance_app.ledger.states import AccountType, OwnerKind
    from finance_app.money import Money
    from decimal import Decimal
    with app.app_context():
        ids = []
        for n in range(accounts):
            floor = Money(Decimal(0), CURRENCY) if n % 10 == 0 else None
            ids.append(ledger.account(owner_kind=OwnerKind.ORGANISATION, owner_id=n,
                                      purpose="bench", currency=CURRENCY,
                                      type=AccountType.ASSET, min_balance=floor).id)
        db.session.commit()
        db.session.remove()
        return ids


# --------------------------------------------------------------------------- clients

def book_with_ledger(url: str, ids: list[int], moves, tag: str, batch: int,
                     barrier=None) -> float:
    """``ledger.book`` per transfer and a commit each (``batch`` 1), or ``ledger.book_many``
    over ``batch`` transfers and a commit per batch."""
    from decimal import Decimal
    from finance_app.extensions import db
    from finance_app.ledger import services as ledger
    from finance_app.money import Money
    app = make_app(url)
    with app.app_context():
        db.session.execute(db.text("SELECT 1"))
        db.session.commit()
        if barrier is not None:
            barrier.wait()
        started = time.perf_counter()
        for first in range(0, len(moves), batch):
            requests = []
            for n in range(first, min(first + batch, len(moves))):
                source, target, cents = moves[n]
                amount = Money(Decimal(cents).scaleb(-2), CURRENCY)
                postings = [ledger.debit(ids[target], amount), ledger.credit(ids[source], amount)]
                if batch == 1:
                    ledger.book(postings, key=f"{tag}-{n}", kind="transfer")
                else:
                    requests.append(ledger.Request(postings, key=f"{tag}-{n}", kind="transfer"))
            if requests:
                refused = [o for o in ledger.book_many(requests) if o.error is not None]
                assert not refused, refused[0].error
            db.session.commit()
            db.session.expunge_all()
        seconds = time.perf_counter() - started
        db.session.remove()
    return seconds


def _connect(url: str):
    if url.startswith("sqlite"):
        import sqlite3
        connection = sqlite3.connect(url.split("///", 1)[1], isolation_level=None, timeout=60)
        connection.execute("PRAGMA foreign_keys=ON")
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA busy_timeout=60000")
        return connection, "?"
    import psycopg
    connection = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"),
                                 autocommit=False)
    return connection, "%s"


PG_WRITE = (
    "WITH entries AS (INSERT INTO ledger_entries (transaction_id, account_id, amount, "
    "currency, phase, balance_after, sequence, value_date) SELECT t, a, m, 'USD', 'posted', "
    "b, s, d FROM unnest(%s::integer[], %s::integer[], %s::bigint[], %s::bigint[], "
    "%s::integer[], %s::date[]) AS e(t, a, m, b, s, d)) "
    "UPDATE ledger_accounts AS x SET balance = v.balance, entry_count = v.entry_count "
    "FROM unnest(%s::integer[], %s::bigint[], %s::integer[]) AS v(id, balance, entry_count) "
    "WHERE x.id = v.id")


def book_with_sql(url: str, ids: list[int], moves, tag: str, batch: int,
                  barrier=None) -> float:
    """The same rows ``ledger.book`` writes, as plain SQL with the same locks and the same
    statements: the batch's accounts locked in id order (SELECT ... FOR UPDATE), the
    transaction rows in one INSERT ... RETURNING, their entries with running balances in
    one executemany, the accounts' new balances in another; a commit per batch."""
    connection, p = _connect(url)
    sqlite = p == "?"
    cursor = connection.cursor()
    insert_entry = ("INSERT INTO ledger_entries (transaction_id, account_id, amount, currency, "
                    "phase, balance_after, sequence, value_date) VALUES "
                    f"({p}, {p}, {p}, 'USD', 'posted', {p}, {p}, {p})")
    update = f"UPDATE ledger_accounts SET balance = {p}, entry_count = {p} WHERE id = {p}"
    today = date.today().isoformat() if sqlite else date.today()
    if barrier is not None:
        barrier.wait()
    started = time.perf_counter()
    for first in range(0, len(moves), batch):
        part = moves[first:first + batch]
        if sqlite:
            cursor.execute("BEGIN IMMEDIATE")
        touched = sorted({ids[a] for a, _, _ in part} | {ids[b] for _, b, _ in part})
        cursor.execute(f"SELECT id, balance, entry_count FROM ledger_accounts WHERE id IN "
                       f"({', '.join([p] * len(touched))}) ORDER BY id"
                       + ("" if sqlite else " FOR UPDATE"), touched)
        state = {row[0]: [row[1], row[2]] for row in cursor.fetchall()}
        now = datetime.utcnow()
        now = now.isoformat(" ") if sqlite else now
        values, params = [], []
        for n in range(first, first + len(part)):
            values.append(f"({p}, {p}, {p}, 'transfer', '', 'posted', {p}, 2, {p})")
            params += ["platform", f"{tag}-{n}", "0" * 64, today, now]
        cursor.execute("INSERT INTO ledger_transactions (scope, idempotency_key, request_hash, "
                       "kind, description, status, value_date, entry_count, booked_at) VALUES "
                       + ", ".join(values) + " RETURNING id, idempotency_key", params)
        by_key = {key: transaction_id for transaction_id, key in cursor.fetchall()}
        entries = []
        for n, (source, target, cents) in enumerate(part, start=first):
            transaction_id = by_key[f"{tag}-{n}"]
            for account, amount in ((ids[target], cents), (ids[source], -cents)):
                state[account][0] += amount
                state[account][1] += 1
                entries.append((transaction_id, account, amount, state[account][0],
                                state[account][1], today))
        if sqlite:
            cursor.executemany(insert_entry, entries)
            cursor.executemany(update, [(balance, count, account)
                                        for account, (balance, count) in state.items()])
        else:   # the best plain SQL for it: one statement, arrays in
            columns = [list(c) for c in zip(*entries)]
            cursor.execute(PG_WRITE, (*columns, list(state), [v[0] for v in state.values()],
                                      [v[1] for v in state.values()]))
        connection.commit() if not sqlite else cursor.execute("COMMIT")
    seconds = time.perf_counter() - started
    connection.close()
    return seconds


def _run(target, url, ids, moves, tag, batch, barrier, results):
    results.put(target(url, ids, moves, tag, batch, barrier))


def timed(target, url: str, ids: list[int], moves, tag: str, clients: int, batch: int
          ) -> dict:
    if clients <= 1:
        seconds = target(url, ids, moves, tag, batch)
    else:
        context = multiprocessing.get_context("spawn")
        barrier, results = context.Barrier(clients + 1), context.Queue()
        shares = [moves[c::clients] for c in range(clients)]
        processes = [context.Process(target=_run, args=(target, url, ids, share,
                                                         f"{tag}-c{c}", batch, barrier,
                                                         results))
                     for c, share in enumerate(shares)]
        for process in processes:
            process.start()
        barrier.wait()
        started = time.perf_counter()
        for _ in processes:
            results.get()
        seconds = time.perf_counter() - started
        for process in processes:
            process.join()
    return {"transfers": len(moves), "clients": clients, "batch": batch,
            "seconds": round(seconds, 2), "per_second": round(len(moves) / seconds, 1)}


def check(url: str) -> dict:
    from sqlalchemy import func, select
    from finance_app.extensions import db
    from finance_app.ledger.models import LedgerAccount, LedgerEntry
    app = make_app(url)
    with app.app_context():
        sums = dict(db.session.execute(select(LedgerAccount.currency,
                                              func.sum(LedgerAccount.balance))
                                       .group_by(LedgerAccount.currency)).all())
        entry_sums = (select(LedgerEntry.account_id, func.sum(LedgerEntry.amount).label("s"))
                      .group_by(LedgerEntry.account_id).subquery())
        off = db.session.execute(select(func.count()).select_from(LedgerAccount).outerjoin(
            entry_sums, entry_sums.c.account_id == LedgerAccount.id).where(
            LedgerAccount.balance != func.coalesce(entry_sums.c.s, 0))).scalar_one()
        below = db.session.execute(select(func.count()).select_from(LedgerAccount).where(
            LedgerAccount.min_balance.is_not(None),
            LedgerAccount.balance < LedgerAccount.min_balance)).scalar_one()
        entries = db.session.execute(select(func.count(LedgerEntry.id))).scalar_one()
        db.session.remove()
    return {"sum_per_currency": {k: int(v) for k, v in sums.items()},
            "accounts_off_their_entries": off, "accounts_below_floor": below,
            "entries": entries}


def bench(kind: str, args, folder: Path) -> dict:
    figures = {}
    with fresh_database(kind, "finance_bench_ledger", folder) as url:
        app = make_app(url)
        migrate(app)
        ids = open_accounts(app, args.accounts)
        for batch in sorted({1, args.batch}):
            moves = plan(args.transfers if batch > 1 else args.single, args.accounts,
                         args.seed + batch)
            for clients in sorted({1, args.clients}):
                tag = f"{batch}-{clients}"
                with statistics_kept_fresh(url):
                    figures[f"ledger {tag}"] = timed(book_with_ledger, url, ids, moves,
                                                     f"l{tag}", clients, batch)
                    figures[f"baseline {tag}"] = timed(book_with_sql, url, ids, moves,
                                                       f"b{tag}", clients, batch)
        figures["check"] = check(url)
    return figures


def report(kind: str, figures: dict) -> None:
    print(f"\n{kind}")
    for name, ledger in figures.items():
        if not name.startswith("ledger "):
            continue
        baseline = figures["baseline " + name.split(" ", 1)[1]]
        ratio = ledger["per_second"] / baseline["per_second"]
        print(f"  {ledger['transfers']:>7,} transfers, {ledger['clients']} client(s), "
              f"{ledger['batch']:>3} per commit: ledger {ledger['per_second']:>8,.0f}/s   "
              f"baseline SQL {baseline['per_second']:>8,.0f}/s   ratio {ratio:.2f}")
    check_ = figures["check"]
    print(f"  after: {check_['entries']:,} entries; sum per currency "
          f"{check_['sum_per_currency']}; accounts off their entries "
          f"{check_['accounts_off_their_entries']}; below their floor "
          f"{check_['accounts_below_floor']}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--transfers", type=int, default=100_000)
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--batch", type=int, default=100,
                        help="transfers per commit in the batched runs (book_many)")
    parser.add_argument("--single", type=int, default=10_000,
                        help="transfers in the runs with a commit per transfer")
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--seed", type=int, default=20261201)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for kind in (("sqlite", "postgres") if args.db == "both" else (args.db,)):
            results[kind] = bench(kind, args, Path(tmp))
            report(kind, results[kind])
    if args.json:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
