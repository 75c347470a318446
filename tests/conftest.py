"""Test fixtures.

The schema is built once per run by ``alembic upgrade head`` (never ``create_all``), so
constraints, triggers and migrations are what the tests exercise.  Tests commit for real,
like the app does.  Isolation per test: on SQLite a fresh copy of the migrated database
file; on PostgreSQL one TRUNCATE of every table, skipped when nothing has written since
the last one (most unit tests only read).

Set ``TEST_DATABASE_URL`` (e.g. ``postgresql+psycopg://postgres@127.0.0.1:5432/test``) to
run the suite on PostgreSQL; it uses that database's ``public`` schema and rebuilds it.
"""
from __future__ import annotations

import contextvars
import os
import shutil
from pathlib import Path

import pyotp
import pytest
from flask_migrate import upgrade
from sqlalchemy import create_engine, event, make_url, text

from flask.testing import FlaskClient

from config import TestConfig
from finance_app import clock, create_app
from finance_app.extensions import db, limiter

DEMO_PASSWORD = "correct-horse-battery-9"


def _normalise(url: str) -> str:
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


DATABASE_URL = _normalise(os.environ.get("TEST_DATABASE_URL", ""))
IS_POSTGRES = DATABASE_URL.startswith("postgresql")


def pytest_configure(config):
    config.addinivalue_line("markers", "sqlite_only: only meaningful on SQLite")


def pytest_collection_modifyitems(config, items):
    skip_pg = pytest.mark.skip(reason="needs PostgreSQL (set TEST_DATABASE_URL)")
    for item in items:
        if "postgres" in item.keywords and not IS_POSTGRES:
            item.add_marker(skip_pg)


class IsolatedClient(FlaskClient):
    """A test client whose requests run like a server's: each in its own app context, with
    its own ``g``, database session and transaction, never the test's.

    The test's own session is committed first, so what the test set up is visible to the
    request and nothing the test holds open blocks it (SQLite takes the write lock at BEGIN).
    """

    _inside = False

    def open(self, *args, **kwargs):
        if self._inside:   # a redirect being followed: already in the request's context
            return super().open(*args, **kwargs)
        db.session.commit()

        def run():
            self._inside = True
            try:
                return FlaskClient.open(self, *args, **kwargs)
            finally:
                self._inside = False
        return contextvars.Context().run(run)


@pytest.fixture(scope="session")
def database_url(request, tmp_path_factory) -> str:
    if IS_POSTGRES:
        url = DATABASE_URL
        worker = getattr(request.config, "workerinput", {}).get("workerid")
        if worker:   # pytest-xdist: each worker on a database of its own, beside the given one
            base = make_url(DATABASE_URL)
            name = f"{base.database}_{worker}"
            admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            admin.dispose()
            url = base.set(database=name).render_as_string(hide_password=False)

            def drop() -> None:
                engine = create_engine(base.set(database="postgres"),
                                       isolation_level="AUTOCOMMIT")
                with engine.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                engine.dispose()
            request.addfinalizer(drop)
        engine = create_engine(url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
        return url
    folder = tmp_path_factory.mktemp("db")
    return f"sqlite:///{folder / 'test.sqlite3'}"


@pytest.fixture(scope="session")
def app(database_url):
    class _Config(TestConfig):
        SQLALCHEMY_DATABASE_URI = database_url

    application = create_app(_Config)
    application.test_client_class = IsolatedClient
    with application.app_context():
        upgrade()
        db.session.remove()
        if not IS_POSTGRES:
            db.engine.dispose()  # checkpoints the WAL into the file
            path = Path(db.engine.url.database)
            template = path.with_suffix(".template")
            shutil.copyfile(path, template)
            application.config["_SQLITE_TEMPLATE"] = (path, template)
        else:
            tables = [t.name for t in db.metadata.sorted_tables]
            application.config["_PG_TABLES"] = tables
            _watch_writes(application)
    yield application


# Statements that change nothing: a test that ran only these leaves the database as it
# found it, and the next one need not truncate every table (a third of a second or more).
_READ_ONLY = ("SELECT", "SHOW", "BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")


def _watch_writes(app) -> None:
    state = app.config["_PG_WRITTEN"] = {"written": True}

    @event.listens_for(db.engine, "before_cursor_execute")
    def _seen(conn, cursor, statement, parameters, context, executemany):
        if not state["written"] and not statement.lstrip().upper().startswith(_READ_ONLY):
            state["written"] = True


def _reset_database(app) -> None:
    if IS_POSTGRES:
        state = app.config["_PG_WRITTEN"]
        if not state["written"]:
            return
        tables = ", ".join(f'"{t}"' for t in app.config["_PG_TABLES"])
        with db.engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        state["written"] = False
        return
    path, template = app.config["_SQLITE_TEMPLATE"]
    db.engine.dispose()
    for suffix in ("-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    shutil.copyfile(template, path)


@pytest.fixture(autouse=True)
def _fresh_state(request, app):
    """Every test starts with an empty migrated database, fresh limits and the real clock."""
    needs_db = "app" in request.fixturenames or "db_session" in request.fixturenames
    ctx = app.app_context()
    ctx.push()
    if needs_db:
        _reset_database(app)
    limiter.reset()
    clock.reset()
    yield
    db.session.remove()
    clock.reset()
    ctx.pop()


@pytest.fixture
def db_session(app):
    return db.session


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def make_client(app):
    return app.test_client


# --------------------------------------------------------------------------- builders

@pytest.fixture
def factories(app):
    from tests import factories as f
    return f


@pytest.fixture
def org_user(app):
    """Create an organisation of a kind, with one user and roles; returns the user."""
    from tests.factories import make_org_user
    return make_org_user


def sign_in(client, user, password: str = DEMO_PASSWORD, *, follow: bool = False):
    """Sign in through the real form (and the second factor if the user has one)."""
    response = client.post("/signin", data={"email": user.email, "password": password},
                           follow_redirects=False)
    if response.status_code == 302 and response.headers["Location"].endswith("/signin/second-factor"):
        code = pyotp.TOTP(user.totp_secret).now()
        response = client.post("/signin/second-factor", data={"code": code})
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    if follow:
        return client.get(response.headers["Location"])
    return response


@pytest.fixture
def login(client):
    def _login(user, password: str = DEMO_PASSWORD, the_client=None):
        return sign_in(the_client or client, user, password)
    return _login


# --------------------------------------------------------------------------- Stripe

@pytest.fixture(scope="session")
def _local_stripe():
    from tests import stripe_server
    server = stripe_server.start()
    yield server
    server.stop()


@pytest.fixture
def local_stripe(app, _local_stripe):
    """The app's Stripe SDK calls go to a real local Stripe-compatible server."""
    previous = app.config["STRIPE_API_BASE"]
    app.config["STRIPE_API_BASE"] = _local_stripe.url
    _local_stripe.flush()
    yield _local_stripe
    app.config["STRIPE_API_BASE"] = previous
