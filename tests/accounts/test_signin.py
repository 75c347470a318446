"""Signing in and staying signed in: sessions, timeouts, revocation, lockout, rate limits,
the second factor and cookies, through the real forms."""
from __future__ import annotations

import re
import time
from pathlib import Path
from datetime import timedelta

import pyotp
import pytest
from sqlalchemy import select

from finance_app import clock
from finance_app.accounts.models import UserSession
from finance_app.accounts.states import OrgKind, Role
from finance_app.extensions import db, limiter
from tests.conftest import sign_in
from tests.factories import PASSWORD, make_org_user


def signed_in(client) -> bool:
    response = client.get("/dashboard")
    return response.status_code == 200


def test_sign_in_and_out(client):
    user = make_org_user()
    response = sign_in(client, user)
    assert response.headers["Location"].endswith("/dashboard")
    assert signed_in(client)
    client.post("/signout")
    assert not signed_in(client)
    row = db.session.execute(select(UserSession)).scalar_one()
    assert row.revoked_reason == "signed_out"


def test_wrong_password_gives_one_generic_message(client):
    user = make_org_user()
    for email, password in ((user.email, "wrong-password-123"), ("nobody@x.test", PASSWORD)):
        response = client.post("/signin", data={"email": email, "password": password})
        assert response.status_code == 422
        assert "e-mail address or password is not correct" in response.get_data(as_text=True)
    assert not signed_in(client)


def test_cookie_is_httponly_and_samesite_and_holds_no_user_data(client, app):
    sign_in(client, make_org_user())
    cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    assert cookie.http_only and cookie.same_site == "Lax"
    assert not cookie.secure  # development/test; production sets Secure (see next test)


def test_production_cookies_are_secure(monkeypatch):
    from config import ProductionConfig
    monkeypatch.setenv("SECRET_KEY", "x" * 32)
    monkeypatch.setenv("DATABASE_URL", "sqlite://")
    config = ProductionConfig()
    assert config.SESSION_COOKIE_SECURE and config.SESSION_COOKIE_HTTPONLY and config.GC_FREEZE
    monkeypatch.delenv("SECRET_KEY")
    with pytest.raises(KeyError):
        ProductionConfig()


def test_a_production_app_keeps_what_it_loaded_at_start_out_of_the_collectors_way():
    import gc

    from config import TestConfig
    from finance_app import create_app

    class Frozen(TestConfig):
        GC_FREEZE = True
    gc.unfreeze()
    try:
        create_app(TestConfig)
        assert gc.get_freeze_count() == 0
        create_app(Frozen)
        assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()


def test_idle_timeout_ends_the_session(client, app):
    sign_in(client, make_org_user())
    clock.advance(app.config["SESSION_IDLE_TIMEOUT"] - timedelta(minutes=1))
    assert signed_in(client)  # activity renews the idle window
    clock.advance(app.config["SESSION_IDLE_TIMEOUT"] + timedelta(minutes=1))
    assert not signed_in(client)
    row = db.session.execute(select(UserSession)).scalar_one()
    assert row.revoked_reason == "idle_timeout"


def test_absolute_timeout_ends_even_an_active_session(client, app):
    sign_in(client, make_org_user())
    step = app.config["SESSION_IDLE_TIMEOUT"] - timedelta(minutes=5)
    elapsed = timedelta(0)
    while elapsed < app.config["SESSION_ABSOLUTE_TIMEOUT"] - step:
        clock.advance(step)
        elapsed += step
        assert signed_in(client)
    clock.advance(step)
    assert not signed_in(client)
    row = db.session.execute(select(UserSession)).scalar_one()
    assert row.revoked_reason == "absolute_timeout"


def test_sign_out_everywhere_ends_other_browsers_at_once(app, make_client):
    user = make_org_user()
    laptop, phone = make_client(), make_client()
    sign_in(laptop, user)
    sign_in(phone, user)
    assert signed_in(laptop) and signed_in(phone)
    phone.post("/account/signout-everywhere")
    assert not signed_in(laptop) and not signed_in(phone)


def test_deactivating_a_user_ends_their_session_immediately(app, make_client):
    admin = make_org_user()
    from finance_app.accounts import services
    clerk = services.add_user(actor=admin, email="clerk@x.test", name="Clerk",
                              roles=["officer"], password=PASSWORD)
    db.session.commit()
    admin_client, clerk_client = make_client(), make_client()
    sign_in(admin_client, admin)
    sign_in(clerk_client, clerk)
    assert signed_in(clerk_client)
    response = admin_client.post(f"/organisation/users/{clerk.id}/deactivate")
    assert response.status_code == 302
    assert not signed_in(clerk_client)
    response = clerk_client.post("/signin", data={"email": clerk.email, "password": PASSWORD})
    assert response.status_code == 422
    assert "deactivated" in response.get_data(as_text=True)


def test_repeated_failures_lock_the_user_until_the_lockout_passes(client, app):
    user = make_org_user()
    for _ in range(app.config["MAX_FAILED_SIGNINS"]):
        client.post("/signin", data={"email": user.email, "password": "wrong-password-123"})
    response = client.post("/signin", data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 422 and "locked" in response.get_data(as_text=True)
    clock.advance(app.config["LOCKOUT_PERIOD"] + timedelta(seconds=1))
    assert sign_in(client, user).status_code == 302


def test_admin_unlocks_a_locked_user(app, make_client):
    admin = make_org_user()
    from finance_app.accounts import services
    clerk = services.add_user(actor=admin, email="clerk@x.test", name="Clerk",
                              roles=["officer"], password=PASSWORD)
    db.session.commit()
    c = make_client()
    for _ in range(app.config["MAX_FAILED_SIGNINS"]):
        c.post("/signin", data={"email": clerk.email, "password": "wrong-password-123"})
    admin_client = make_client()
    sign_in(admin_client, admin)
    admin_client.post(f"/organisation/users/{clerk.id}/unlock")
    assert sign_in(c, clerk).status_code == 302


@pytest.fixture
def rate_limited(app):
    from config import Config
    saved = app.config["SIGNIN_RATE_LIMIT"]
    app.config["SIGNIN_RATE_LIMIT"] = Config.SIGNIN_RATE_LIMIT
    limiter.reset()
    yield
    app.config["SIGNIN_RATE_LIMIT"] = saved


def test_sign_in_attempts_are_rate_limited(client, rate_limited):
    statuses = [client.post("/signin", data={"email": f"u{i}@x.test", "password": "x" * 12}
                            ).status_code for i in range(12)]
    assert statuses[:10] == [422] * 10
    assert statuses[10:] == [429, 429]


def test_rate_limit_also_counts_per_email_across_addresses(app, rate_limited):
    user = make_org_user()
    statuses = []
    for i in range(12):
        c = app.test_client()
        statuses.append(c.post("/signin", data={"email": user.email, "password": "bad-pass-123"},
                               environ_base={"REMOTE_ADDR": f"10.0.0.{i + 1}"}).status_code)
    assert 429 in statuses


WORKER = """
import os, sys
from flask_migrate import upgrade
from finance_app import create_app
from config import Config
class C(Config):
    SQLALCHEMY_DATABASE_URI = sys.argv[1]
    RATELIMIT_STORAGE_URI = os.environ["REDIS_URL"]
    SIGNIN_RATE_LIMIT = "10 per minute"
    WTF_CSRF_ENABLED = False
app = create_app(C)
with app.app_context():
    upgrade()
client = app.test_client()
codes = [client.post("/signin", data={"email": "x@y.test", "password": "p" * 12},
                     environ_base={"REMOTE_ADDR": "203.0.113.9"}).status_code
         for _ in range(int(sys.argv[2]))]
print(" ".join(map(str, codes)))
"""


def _redis_available() -> bool:
    try:
        import redis
        redis.Redis.from_url("redis://127.0.0.1:6379/0", socket_timeout=1).ping()
        return True
    except Exception:  # noqa: BLE001
        return False


@pytest.mark.skipif(not _redis_available(), reason="Redis is not running on 127.0.0.1:6379")
def test_two_workers_share_the_sign_in_limit_through_redis(tmp_path):
    """With REDIS_URL set, separate processes (gunicorn workers) count attempts together."""
    import os
    import subprocess
    import sys
    import uuid

    import redis
    db_index = 15
    store = redis.Redis.from_url(f"redis://127.0.0.1:6379/{db_index}")
    store.flushdb()
    env = dict(os.environ, REDIS_URL=f"redis://127.0.0.1:6379/{db_index}")
    database = f"sqlite:///{tmp_path / uuid.uuid4().hex}.sqlite3"
    outputs = []
    for attempts in (6, 6):
        result = subprocess.run([sys.executable, "-c", WORKER, database, str(attempts)],
                                capture_output=True, text=True, env=env, timeout=120,
                                cwd=str(Path(__file__).resolve().parents[2]))
        assert result.returncode == 0, result.stderr[-2000:]
        outputs.append(result.stdout.split())
    first, second = outputs
    assert first == ["422"] * 6
    assert second[:4] == ["422"] * 4 and second[4:] == ["429", "429"]
    assert store.keys("LIMITS*")
    store.flushdb()


class TestSecondFactor:
    def test_enrolment_then_sign_in_needs_the_code(self, client, app):
        user = make_org_user()
        sign_in(client, user)
        page = client.get("/account/second-factor").get_data(as_text=True)
        secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', page).group(1)
        assert "<svg" in page  # QR drawn locally
        response = client.post("/account/second-factor", data={"code": pyotp.TOTP(secret).now()})
        codes = re.findall(r"<code>([0-9a-f]{5}-[0-9a-f]{5})</code>", response.get_data(as_text=True))
        assert len(codes) == 10
        client.post("/signout")
        response = client.post("/signin", data={"email": user.email, "password": PASSWORD})
        assert response.headers["Location"].endswith("/signin/second-factor")
        assert not signed_in(client)
        wrong = client.post("/signin/second-factor", data={"code": "000000"})
        assert wrong.status_code == 422 and not signed_in(client)
        # a recovery code works once
        assert client.post("/signin/second-factor", data={"code": codes[0]}).status_code == 302
        assert signed_in(client)
        client.post("/signout")
        client.post("/signin", data={"email": user.email, "password": PASSWORD})
        assert client.post("/signin/second-factor", data={"code": codes[0]}).status_code == 422

    def test_a_code_cannot_be_replayed(self, client):
        user = make_org_user(OrgKind.PLATFORM_OPERATOR, roles=(Role.ADMIN,))
        code = pyotp.TOTP(user.totp_secret).now()
        client.post("/signin", data={"email": user.email, "password": PASSWORD})
        assert client.post("/signin/second-factor", data={"code": code}).status_code == 302
        client.post("/signout")
        client.post("/signin", data={"email": user.email, "password": PASSWORD})
        assert client.post("/signin/second-factor", data={"code": code}).status_code == 422

    def test_approvers_must_enrol_before_doing_anything(self, client):
        user = make_org_user(OrgKind.BANK, roles=(Role.APPROVER,))
        user.totp_secret, user.totp_enabled_at = None, None
        db.session.commit()
        sign_in(client, user)
        response = client.get("/dashboard")
        assert response.status_code == 302
        assert response.headers["Location"].endswith("/account/second-factor")

    def test_approvers_cannot_turn_it_off(self, client):
        user = make_org_user(OrgKind.BANK, roles=(Role.APPROVER,))
        sign_in(client, user)
        client.post("/account/second-factor/disable",
                    data={"code": pyotp.TOTP(user.totp_secret).now()})
        db.session.refresh(user)
        assert user.totp_enabled

    def test_pending_second_factor_expires(self, client):
        user = make_org_user(OrgKind.PLATFORM_OPERATOR, roles=(Role.ADMIN,))
        client.post("/signin", data={"email": user.email, "password": PASSWORD})
        with client.session_transaction() as s:
            s["pending_2fa"]["at"] = time.time() - 600
            s.modified = True
        response = client.post("/signin/second-factor",
                               data={"code": pyotp.TOTP(user.totp_secret).now()})
        assert response.headers["Location"].endswith("/signin")
        assert not signed_in(client)


def test_open_redirect_is_refused(client):
    user = make_org_user()
    client.get("/signin?next=https://evil.test/")
    response = sign_in(client, user)
    assert response.headers["Location"].endswith("/dashboard")


def test_next_page_after_sign_in(client):
    user = make_org_user()
    assert client.get("/organisation").status_code == 302
    client.get("/signin?next=/organisation")
    assert sign_in(client, user).headers["Location"].endswith("/organisation")


def test_changing_password_ends_sessions(app, make_client):
    user = make_org_user()
    a, b = make_client(), make_client()
    sign_in(a, user)
    sign_in(b, user)
    response = a.post("/account/password", data={"current_password": PASSWORD,
                                                 "new_password": "a-brand-new-secret-42"})
    assert response.status_code == 302
    assert not signed_in(a) and not signed_in(b)
    assert sign_in(a, user, "a-brand-new-secret-42").status_code == 302
