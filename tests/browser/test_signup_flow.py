"""A new SME signs up in a real browser, the platform operator approves its filing.

The app runs behind a real HTTP server in a background thread, with CSRF protection on,
so the real forms and their tokens are exercised; Debian's chromium is driven through
Playwright.  Screenshots go to ``BROWSER_SCREENSHOTS`` (a folder) if set, else to the
test's temporary folder.
"""
from __future__ import annotations

import re

import pyotp
import pytest
from stdnum.cn import uscc

from finance_app.accounts.states import OrgKind, Role
from tests.browser.conftest import OPERATOR_PASSWORD, _sign_in, _sign_out

pytestmark = pytest.mark.browser

SME_PASSWORD = "harbour-lights-2024-tea"
SME_EMAIL = "founder@coastline-trade.test"
PENDING_TEXT = "pending review by the platform operator"


def _credit_code() -> str:
    body = "91440400MA0099001"
    return body + uscc.calc_check_digit(body)


def test_sme_signs_up_and_operator_approves_the_filing(app, live_server, browser_page, shots):
    from finance_app.extensions import db
    from tests.factories import make_org_user

    base, page = live_server, browser_page
    operator = make_org_user(OrgKind.PLATFORM_OPERATOR, roles=(Role.ADMIN, Role.APPROVER))
    operator_email, operator_secret = operator.email, operator.totp_secret
    assert operator_secret, "the platform operator must have a second factor"
    # Reading the user back opened a transaction (on SQLite a write lock): end it, so the
    # server thread can write.
    db.session.remove()

    # 1. The SME files its organisation through the sign-up form.
    page.goto(f"{base}/signup")
    assert page.locator("input[name=csrf_token]").first.get_attribute("value")
    page.select_option("#kind", "sme")
    page.fill("#name", "珠海海湾潮品跨境电商有限公司")
    page.fill("#name_en", "Zhuhai Bay Trend E-commerce Co., Ltd.")
    page.select_option("#country", "CN")
    page.fill("#credit_code", _credit_code())
    page.fill("#address", "横琴新区环岛东路 1 号")
    page.fill("#zone", "Zhuhai Hengqin")
    page.fill("#contact_name", "李娜")
    page.fill("#contact_email", "contact@coastline-trade.test")
    page.fill("#admin_name", "Li Na")
    page.fill("#email", SME_EMAIL)
    page.fill("#password", SME_PASSWORD)
    page.fill("#password_confirm", SME_PASSWORD)
    page.screenshot(path=str(shots / "01-signup-form.png"), full_page=True)
    page.click("#signup-form button[type=submit]")

    # 2. It lands on its dashboard, filing pending.
    page.wait_for_url(re.compile(r"/dashboard$"))
    status = page.locator("#filing-status")
    assert "珠海海湾潮品跨境电商有限公司" in status.inner_text()
    assert "Pending review" in status.locator(".badge").inner_text()
    assert "waits for the platform operator" in page.locator(".flash").inner_text()
    page.screenshot(path=str(shots / "02-sme-dashboard-pending.png"), full_page=True)

    # 3. Managing users waits for the approval: a 403 page says why.
    response = page.goto(f"{base}/organisation/users")
    assert response.status == 403
    assert PENDING_TEXT in page.locator(".error-message").inner_text()
    assert page.locator(".error-message").get_attribute("data-code") == "filing_not_approved"
    page.screenshot(path=str(shots / "03-sme-users-refused.png"), full_page=True)
    response = page.goto(f"{base}/organisation/tokens")
    assert response.status == 403
    assert PENDING_TEXT in page.locator(".error-message").inner_text()

    page.goto(f"{base}/dashboard")
    _sign_out(page)

    # 4. The platform operator signs in with the second factor ...
    _sign_in(page, base, operator_email, OPERATOR_PASSWORD)
    page.wait_for_url(re.compile(r"/signin/second-factor$"))
    page.fill("#code", pyotp.TOTP(operator_secret).now())
    page.screenshot(path=str(shots / "04-operator-second-factor.png"), full_page=True)
    page.click("#second-factor-form button[type=submit]")
    page.wait_for_url(re.compile(r"/dashboard$"))

    # ... opens the filing queue and the new SME's filing, and approves it.
    page.goto(f"{base}/operator/filings")
    row = page.locator("tr", has_text="珠海海湾潮品跨境电商有限公司")
    assert "Pending review" in row.inner_text()
    page.screenshot(path=str(shots / "05-operator-filing-queue.png"), full_page=True)
    row.locator("a").first.click()
    page.wait_for_url(re.compile(r"/operator/filings/\d+$"))
    assert _credit_code() in page.content()
    page.select_option("#action", "approve")
    page.fill("#reason", "Licence and credit code checked.")
    page.screenshot(path=str(shots / "06-operator-filing-detail.png"), full_page=True)
    page.click("#decision-form button[type=submit]")
    page.wait_for_url(re.compile(r"/operator/filings$"))
    assert "Decision recorded for 珠海海湾潮品跨境电商有限公司" in page.locator(".flash").inner_text()
    page.goto(f"{base}/operator/filings?status=approved")
    assert "珠海海湾潮品跨境电商有限公司" in page.locator("table").inner_text()
    _sign_out(page)

    # 5. The SME signs in again: approved, and it may now manage its users.
    _sign_in(page, base, SME_EMAIL, SME_PASSWORD)
    page.wait_for_url(re.compile(r"/dashboard$"))
    status = page.locator("#filing-status")
    assert "Approved" in status.locator(".badge").inner_text()
    assert "approved and can use the platform" in status.inner_text()
    page.screenshot(path=str(shots / "07-sme-dashboard-approved.png"), full_page=True)
    response = page.goto(f"{base}/organisation/users")
    assert response.status == 200
    assert SME_EMAIL in page.content()
    page.screenshot(path=str(shots / "08-sme-users.png"), full_page=True)
