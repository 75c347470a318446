"""Application settings, read from the environment.

``Config`` is development (the default), ``TestConfig`` the test suite's and
``ProductionConfig`` what gunicorn runs.  Secrets come from the environment;
production refuses to start without them.
"""
from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent
INSTANCE_DIR = BASE_DIR / "instance"


def _database_url() -> str:
    url = os.environ.get("DATABASE_URL")
    if url:
        # Heroku-style URLs name the dialect "postgres"; SQLAlchemy wants psycopg 3.
        if url.startswith("postgres://"):
            url = "postgresql+psycopg://" + url[len("postgres://"):]
        elif url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url[len("postgresql://"):]
        return url
    INSTANCE_DIR.mkdir(exist_ok=True)
    return f"sqlite:///{INSTANCE_DIR / 'finance.sqlite3'}"


class Config:
    ENV_NAME = "development"
    SECRET_KEY = os.environ.get("SECRET_KEY", "dev-only-secret-key-change-me")
    SQLALCHEMY_DATABASE_URI = _database_url()
    SQLALCHEMY_ENGINE_OPTIONS: dict = {"pool_pre_ping": True}

    # Sessions: the cookie only carries a server-side session id (see accounts.sessions).
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = False
    SESSION_COOKIE_NAME = "finance_session"
    SESSION_IDLE_TIMEOUT = timedelta(minutes=30)
    SESSION_ABSOLUTE_TIMEOUT = timedelta(hours=12)
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"

    WTF_CSRF_ENABLED = True
    WTF_CSRF_TIME_LIMIT = None  # the session's own timeouts bound a token's life

    # Sign-in throttling: per client address and per e-mail address.
    REDIS_URL = os.environ.get("REDIS_URL")
    RATELIMIT_STORAGE_URI = os.environ.get("REDIS_URL") or "memory://"
    RATELIMIT_ENABLED = True
    SIGNIN_RATE_LIMIT = "10 per minute;50 per hour"
    MAX_FAILED_SIGNINS = 5
    LOCKOUT_PERIOD = timedelta(minutes=15)

    BABEL_DEFAULT_LOCALE = "en"
    BABEL_DEFAULT_TIMEZONE = "Asia/Shanghai"
    LANGUAGES = {"en": "English", "zh_CN": "中文"}

    API_TITLE = "Cross-border Supply-chain Finance Platform API"
    API_VERSION = "v1"
    OPENAPI_VERSION = "3.0.3"
    OPENAPI_URL_PREFIX = "/api/v1"
    OPENAPI_JSON_PATH = "openapi.json"

    MAX_CONTENT_LENGTH = 20 * 1024 * 1024
    # Number of reverse proxies in front of the app (sets client address and scheme from
    # X-Forwarded-For/-Proto, so rate limits count real clients). 0: none.
    TRUSTED_PROXIES = int(os.environ.get("TRUSTED_PROXIES", "0"))
    DEMO_PASSWORD = os.environ.get("DEMO_PASSWORD", "demo-password")
    TOTP_ISSUER = "CBEC Finance Platform"

    # Card payments (Stripe). Without a secret key, card payments are switched off and
    # everything is paid by bank transfer. STRIPE_API_BASE and STRIPE_JS_URL point the
    # SDK and the browser elsewhere (a local Stripe-compatible server in tests).
    STRIPE_SECRET_KEY = os.environ.get("STRIPE_SECRET_KEY")
    STRIPE_PUBLISHABLE_KEY = os.environ.get("STRIPE_PUBLISHABLE_KEY")
    STRIPE_WEBHOOK_SECRET = os.environ.get("STRIPE_WEBHOOK_SECRET")
    STRIPE_API_BASE = os.environ.get("STRIPE_API_BASE")
    STRIPE_JS_URL = os.environ.get("STRIPE_JS_URL", "https://js.stripe.com/v3/")
    STRIPE_TIMEOUT = 10
    STRIPE_NETWORK_RETRIES = 2
    STRIPE_WEBHOOK_TOLERANCE = 300   # seconds: an older signature is stale


class TestConfig(Config):
    ENV_NAME = "test"
    TESTING = True
    SECRET_KEY = "test-secret-key"
    SQLALCHEMY_DATABASE_URI = os.environ.get("TEST_DATABASE_URL") or "sqlite://"
    WTF_CSRF_ENABLED = False
    RATELIMIT_STORAGE_URI = "memory://"
    # Limits stay on (the limiter is real) but high; rate-limit tests set the real figure.
    SIGNIN_RATE_LIMIT = "10000 per minute"
    # argon2 at full cost makes a large suite slow; the scheme is the same.
    ARGON2_TIME_COST = 1
    ARGON2_MEMORY_COST = 1024
    # Stripe: a local Stripe-compatible server that the tests start (tests/stripe_server.py)
    STRIPE_SECRET_KEY = "sk_test_local"
    STRIPE_PUBLISHABLE_KEY = "pk_test_local"
    STRIPE_WEBHOOK_SECRET = "whsec_test_local"
    STRIPE_API_BASE = "http://127.0.0.1:9"   # nothing listens: set by the fixture
    STRIPE_NETWORK_RETRIES = 0
    STRIPE_TIMEOUT = 5


class ProductionConfig(Config):
    ENV_NAME = "production"
    # Everything loaded at start (modules, the ORM's and the catalogues' objects) is moved
    # out of the garbage collector's sight: a full collection then looks only at what
    # requests made, instead of pausing a request for the whole heap (about 0.2 s).
    GC_FREEZE = True
    SESSION_COOKIE_SECURE = True
    REMEMBER_COOKIE_SECURE = True
    PREFERRED_URL_SCHEME = "https"

    def __init__(self) -> None:
        # A missing secret must stop the app at start, not sign sessions with a default.
        self.SECRET_KEY = os.environ["SECRET_KEY"]
        if "DATABASE_URL" not in os.environ:
            raise RuntimeError("DATABASE_URL must be set in production")


CONFIGS = {"development": Config, "test": TestConfig, "production": ProductionConfig}
