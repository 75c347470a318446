"""Cross-border e-commerce supply-chain finance platform."""
from __future__ import annotations

import logging
from pathlib import Path

from flask import Flask, g, redirect, request, session, url_for
from flask_login import current_user
from sqlalchemy import event
from sqlalchemy.engine import Engine

from config import CONFIGS, Config

ROOT = Path(__file__).resolve().parent.parent


def create_app(config: type[Config] | Config | str | None = None) -> Flask:
    app = Flask(__name__, template_folder=str(ROOT / "templates"),
                instance_path=str(ROOT / "instance"))
    if config is None:
        import os
        config = CONFIGS[os.environ.get("FINANCE_ENV", "development")]
    elif isinstance(config, str):
        config = CONFIGS[config]
    if isinstance(config, type):
        config = config()
    app.config.from_object(config)
    if app.config.get("TRUSTED_PROXIES"):
        from werkzeug.middleware.proxy_fix import ProxyFix
        hops = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)

    register_extensions(app)
    register_blueprints(app)
    register_request_hooks(app)
    register_error_handlers(app)
    register_template_helpers(app)
    register_commands(app)
    if not app.debug and not app.testing:
        logging.basicConfig(level=logging.INFO)
        # WeasyPrint reports every layout step at INFO; only its warnings matter here.
        logging.getLogger("weasyprint.progress").setLevel(logging.WARNING)
    if app.config.get("GC_FREEZE"):
        import gc
        gc.collect()
        gc.freeze()
    return app


def register_extensions(app: Flask) -> None:
    from finance_app.extensions import api, babel, csrf, db, limiter, login_manager, migrate
    from finance_app.i18n import select_locale

    db.init_app(app)
    with app.app_context():
        _configure_engine(db.engine)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True,
                     compare_type=True)
    login_manager.init_app(app)
    login_manager.session_protection = None  # sessions are server-side and revocable
    login_manager.login_view = "accounts.signin"
    csrf.init_app(app)
    babel.init_app(app, locale_selector=select_locale,
                   default_translation_directories=str(Path(__file__).parent / "translations"))
    app.config.setdefault("RATELIMIT_STORAGE_URI", "memory://")
    limiter.init_app(app)
    api.init_app(app)

    from finance_app.accounts import auth  # noqa: F401  (registers the login loaders)
    from finance_app.trade import models as _trade_models  # noqa: F401
    from finance_app.ledger import models as _ledger_models  # noqa: F401
    from finance_app.settlement import models as _settlement_models  # noqa: F401
    from finance_app import outbox as _outbox  # noqa: F401
    from finance_app.accounts import notifications as _notifications  # noqa: F401
    from finance_app import daily as _daily  # noqa: F401
    from finance_app.collateral import models as _collateral_models  # noqa: F401
    from finance_app.warehouse import models as _warehouse_models  # noqa: F401
    from finance_app.warehouse import services as _warehouse_services  # noqa: F401
    from finance_app.oversight import models as _oversight_models  # noqa: F401
    from finance_app.financing import models as _financing_models  # noqa: F401
    from finance_app.financing import loans as _financing_loans  # noqa: F401
    from finance_app.insurance import models as _insurance_models  # noqa: F401
    from finance_app.insurance import services as _insurance_services  # noqa: F401
    from finance_app.compensation import models as _compensation_models  # noqa: F401
    from finance_app.compensation import services as _compensation_services  # noqa: F401
    from finance_app.statistics import summary as _statistics_summary  # noqa: F401
    # oversight last: its daily duties (rules, then ratings) run after the others'
    from finance_app.oversight import rules as _oversight_rules  # noqa: F401
    from finance_app.oversight import ratings as _oversight_ratings  # noqa: F401


def _configure_engine(engine: Engine) -> None:
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _sqlite_connect(dbapi_connection, _record):  # pragma: no cover - exercised via SQLite
        # Let SQLAlchemy, not pysqlite, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _sqlite_begin(conn):  # pragma: no cover
        # SQLite has no SELECT ... FOR UPDATE: take the write lock at BEGIN instead, so a
        # read-then-write (a pledge, a ledger post) cannot interleave with another writer.
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def register_blueprints(app: Flask) -> None:
    from finance_app.accounts.views import bp as accounts_bp
    from finance_app.accounts.admin import bp as admin_bp
    from finance_app.api import register_api
    from finance_app.audit.views import bp as audit_bp
    from finance_app.main import bp as main_bp
    from finance_app.trade.views import bp as trade_bp
    from finance_app.ledger.views import bp as ledger_bp
    from finance_app.settlement.views import bp as settlement_bp, webhook_bp
    from finance_app.warehouse.views import bp as warehouse_bp, public_bp as verify_bp
    from finance_app.financing.views import bp as financing_bp
    from finance_app.insurance.views import bp as insurance_bp
    from finance_app.compensation.views import bp as compensation_bp
    from finance_app.oversight.views import bp as oversight_bp
    from finance_app.statistics.views import bp as statistics_bp

    app.register_blueprint(main_bp)
    app.register_blueprint(accounts_bp)
    app.register_blueprint(admin_bp)
    app.register_blueprint(audit_bp)
    app.register_blueprint(trade_bp)
    app.register_blueprint(ledger_bp)
    app.register_blueprint(settlement_bp)
    app.register_blueprint(webhook_bp)
    app.register_blueprint(warehouse_bp)
    app.register_blueprint(financing_bp)
    app.register_blueprint(verify_bp)
    app.register_blueprint(insurance_bp)
    app.register_blueprint(compensation_bp)
    app.register_blueprint(oversight_bp)
    app.register_blueprint(statistics_bp)
    register_api(app)


def register_request_hooks(app: Flask) -> None:
    from finance_app import authz
    from finance_app.accounts.auth import enforce_second_factor_enrolment

    @app.before_request
    def _authorise():
        authz.enforce_endpoint_policy()
        return enforce_second_factor_enrolment()

    @app.after_request
    def _security_headers(response):
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
            "script-src 'self'; frame-ancestors 'none'; form-action 'self'")
        if request.path.startswith("/api/"):
            response.headers["Cache-Control"] = "no-store"
        return response


def register_error_handlers(app: Flask) -> None:
    from finance_app.web import register_error_handlers as _register
    _register(app)


def register_template_helpers(app: Flask) -> None:
    from finance_app.i18n import register_filters
    register_filters(app)


def register_commands(app: Flask) -> None:
    from finance_app.cli import register
    register(app)
