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


@contextmanager
def fresh_database(kind: str, name: str, folder: Path):
    """A URL to an empty database, removed afterwards."""
    from sqlalchemy import text
    if kind == "sqlite":
        path = folder / f"{name}.sqlite3"
        yield f"sqlite:///{path}"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    admin = _pg_admin()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{PG_SERVER}/{name}"
    finally:
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


def analyze(url: str) -> None:
    """Fresh planner statistics for every table."""
    from sqlalchemy import create_engine, text
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    engine.dispose()


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
