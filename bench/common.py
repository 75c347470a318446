"""What the benchmarks share: an empty database to measure on, the app on it, its schema."""
from __future__ import annotations

import logging
import os
import threading
from contextlib import contextmanager
from pathlib import Path

PG_SERVER = os.environ.get("BENCH_PG_SERVER", "postgresql+psycopg://postgres@127.0.0.1:5432")


def _pg_admin():
    from sqlalchemy import create_engine
    return create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")


def database_url(kind: str, name: str, folder: Path) -> str:
    """Where ``fresh_database`` puts the database ``name``."""
    if kind == "sqlite":
        return f"sqlite:///{folder / f'{name}.sqlite3'}"
    return f"{PG_SERVER}/{name}"


def _drop_sqlite(url: str) -> None:
    path = url.split("///", 1)[1]
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


@contextmanager
def fresh_database(kind: str, name: str, folder: Path, *, keep: bool = False):
    """A URL to an empty database, removed afterwards (unless ``keep``)."""
    from sqlalchemy import text
    url = database_url(kind, name, folder)
    if kind == "sqlite":
        _drop_sqlite(url)
        yield url
        if not keep:
            _drop_sqlite(url)
        return
    admin = _pg_admin()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url
    finally:
        if not keep:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def make_app(url: str):
    from config import Config
    from finance_app import create_app

    class BenchConfig(Config):
        SQLALCHEMY_DATABASE_URI = url
        SQLALCHEMY_ENGINE_OPTIONS: dict = {}
        RATELIMIT_ENABLED = False
        GC_FREEZE = True          # as in production

    return create_app(BenchConfig)


def migrate(app) -> None:
    from flask_migrate import upgrade
    from finance_app.extensions import db
    logging.disable(logging.INFO)     # alembic's env.py configures its own logging
    try:
        with app.app_context():
            upgrade()
            db.session.remove()
    finally:
        logging.disable(logging.NOTSET)


def analyze(url: str, *, vacuum: bool = False) -> None:
    """Fresh planner statistics for every table; with ``vacuum``, on PostgreSQL, also the
    visibility map a live database's autovacuum keeps (index-only scans need it) after a
    bulk load."""
    from sqlalchemy import create_engine, text
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("VACUUM ANALYZE" if vacuum and url.startswith("postgresql")
                          else "ANALYZE"))
    engine.dispose()


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB (Linux reports KiB)."""
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextmanager
def statistics_kept_fresh(url: str, every: float = 2.0):
    """ANALYZE every few seconds while a run goes on (PostgreSQL), as autovacuum keeps the
    statistics of a live database: here the tables grow from empty in seconds, faster
    than autovacuum looks, and plans made for empty tables would scan them whole."""
    if not url.startswith("postgresql"):
        yield
        return
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(every):
            analyze(url)

    thread = threading.Thread(target=loop, daemon=True)
    analyze(url)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
