"""The platform operator opens the statistics dashboard in a real browser with every
request outside 127.0.0.1 blocked: the charts are drawn by the app's own copy of plotly.js,
with the figures' data in them, in English and in Chinese."""
from __future__ import annotations

import re
from decimal import Decimal
from urllib.parse import urlsplit

import pyotp
import pytest

from finance_app.accounts.states import OrgKind, Role
from tests.browser.conftest import OPERATOR_PASSWORD, _sign_in

pytestmark = pytest.mark.browser


def _world():
    from finance_app import clock
    from finance_app.extensions import db
    from finance_app.ledger import rates
    from finance_app.trade import services as trade
    from finance_app.trade.states import Direction, DocumentSource
    from tests.factories import make_org_user
    from tests.trade.builders import SME_CODE, order
    operator = make_org_user(OrgKind.PLATFORM_OPERATOR, roles=(Role.ADMIN, Role.APPROVER))
    make_org_user(OrgKind.SME, customs_code=SME_CODE, zone="Zhuhai Hengqin")
    rates.enter_rate("USD", "CNY", Decimal("7.2000"), clock.today(), actor=operator, note="t")
    docs = [order(f"S-{n}", goods=f"{100 * (n + 1)}.00", freight="0",
                  trade_mode=("9610", "9710")[n % 2], order_type=("E", "B")[n % 2],
                  consignee_country=("BR", "PT", "MX")[n % 3], order_date=clock.today())
            for n in range(6)]
    trade.ingest(docs, actor=None, source=DocumentSource.JSON, direction=Direction.EXPORT)
    db.session.commit()
    email, secret = operator.email, operator.totp_secret
    db.session.remove()     # let the server thread write (SQLite)
    return email, secret


def test_the_dashboard_draws_its_charts_offline(app, live_server, browser_page, shots):
    email, secret = _world()
    base, page = live_server, browser_page
    blocked = []

    def only_loopback(route):
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    page.context.route("**/*", only_loopback)
    _sign_in(page, base, email, OPERATOR_PASSWORD)
    page.wait_for_url(re.compile(r"/signin/second-factor$"))
    page.fill("#code", pyotp.TOTP(secret).now())
    page.click("#second-factor-form button[type=submit]")
    page.wait_for_load_state()
    page.click("nav >> text=Statistics")
    page.wait_for_url(re.compile(r"/statistics/$"))
    page.wait_for_selector("#chart-volume-month[data-drawn=true] svg.main-svg")
    # the stacked bars by trade mode: a trace per mode, each with its bars
    traces = page.locator("#chart-volume-month g.trace.bars")
    assert traces.count() == 2
    assert page.locator("#chart-volume-month g.trace.bars path").count() >= 2
    assert page.locator("#chart-country g.trace.bars path").count() == 3
    # 9710: 200 + 400 + 600 USD at 7.20
    assert "8,640.00" in page.locator("#table-volume_by_mode").inner_text()
    page.screenshot(path=str(shots / "statistics-en.png"), full_page=True)
    page.click("form.lang button[lang^=zh]")
    page.wait_for_load_state()
    if "/statistics/" not in page.url:
        page.goto(f"{base}/statistics/")
    page.wait_for_selector("#chart-country[data-drawn=true] svg.main-svg")
    assert "统计监测" in page.content()
    page.screenshot(path=str(shots / "statistics-zh.png"), full_page=True)
    assert blocked == []
