"""An SME pays a platform fee by card in a real browser, through the local Stripe server:
Stripe.js (the local server's stand-in) tokenises the card in the page, a declined card
is explained and a second card pays; the payment is booked and the SME reads its
statement; the operator sees the card money waiting to be paid out and records it."""
from __future__ import annotations

import re
from decimal import Decimal

import pyotp
import pytest

from finance_app.accounts.states import OrgKind, Role
from tests.browser.conftest import OPERATOR_PASSWORD, _sign_in, _sign_out

pytestmark = pytest.mark.browser


def _fill_card(page, number: str) -> None:
    element = page.locator("#card-element")
    element.locator("input[placeholder=number]").fill(number)
    element.locator("input[placeholder=exp_month]").fill("12")
    element.locator("input[placeholder=exp_year]").fill("31")
    element.locator("input[placeholder=cvc]").fill("123")
    element.locator("input[placeholder=postal_code]").fill("519000")


def test_an_sme_pays_a_fee_by_card_in_the_browser(app, live_server, browser_page, shots,
                                                  local_stripe, monkeypatch):
    from finance_app.extensions import db
    from finance_app.money import Money
    from finance_app.settlement import services
    from tests.factories import make_org_user

    monkeypatch.setitem(app.config, "STRIPE_JS_URL", f"{local_stripe.url}/js.stripe.com/v3/")
    base, page = live_server, browser_page
    operator = make_org_user(OrgKind.PLATFORM_OPERATOR, roles=(Role.ADMIN, Role.APPROVER))
    sme = make_org_user(OrgKind.SME, roles=(Role.ADMIN, Role.OFFICER),
                        name="珠海海岸线跨境电商有限公司")
    record = services.invoice_fee(payer_org_id=sme.org_id,
                                  amount=Money(Decimal("180.00"), "EUR"),
                                  description="Trade-evidence verification, 12 orders",
                                  actor=operator, key="browser-fee")
    db.session.commit()
    from finance_app import outbox
    outbox.run_due()   # the worker delivers the notice of the new fee
    record_id, sme_email = record.id, sme.email
    operator_email, operator_secret = operator.email, operator.totp_secret
    db.session.remove()

    _sign_in(page, base, sme_email, OPERATOR_PASSWORD)
    page.wait_for_url(re.compile(r"/dashboard$"))
    assert "Trade-evidence verification" in page.locator("#notices").inner_text()
    page.goto(f"{base}/settlement/")
    row = page.locator(f"tr[data-record='{record_id}']")
    assert "€180.00" in row.inner_text() and "To pay" in row.inner_text()
    row.locator("a").first.click()
    page.wait_for_url(re.compile(rf"/settlement/{record_id}$"))
    page.screenshot(path=str(shots / "card-01-payment.png"), full_page=True)
    page.click("#pay-card")
    page.wait_for_url(re.compile(rf"/settlement/{record_id}/card$"))
    page.locator("#card-element input").first.wait_for()

    # a declined card: the bank's answer, nothing booked, the form ready for another card
    _fill_card(page, "4000000000000341")
    page.screenshot(path=str(shots / "card-02-card-form.png"), full_page=True)
    page.click("#card-submit")
    page.wait_for_load_state()
    assert "declined" in page.locator(".flash.danger").inner_text()
    page.locator("#card-element input").first.wait_for()
    page.screenshot(path=str(shots / "card-03-declined.png"), full_page=True)

    _fill_card(page, "4242424242424242")
    page.click("#card-submit")
    page.wait_for_url(re.compile(rf"/settlement/{record_id}$"))
    assert "Paid by card. Thank you." in page.locator(".flash").inner_text()
    assert "Paid" in page.locator("#status").inner_text()
    page.screenshot(path=str(shots / "card-04-paid.png"), full_page=True)

    # the fee account is back to zero
    page.goto(f"{base}/ledger/accounts")
    assert "€0.00" in page.locator("table.accounts").inner_text()
    _sign_out(page)

    # the operator sees the card money in transit and records Stripe's payout
    _sign_in(page, base, operator_email, OPERATOR_PASSWORD)
    page.wait_for_url(re.compile(r"/signin/second-factor$"))
    page.fill("#code", pyotp.TOTP(operator_secret).now())
    page.click("#second-factor-form button[type=submit]")
    page.wait_for_url(re.compile(r"/dashboard$"))
    page.goto(f"{base}/settlement/reconciliation")
    assert "€180.00" in page.locator("#clearing").inner_text()
    assert "No breaks" in page.locator("#breaks").inner_text()
    page.screenshot(path=str(shots / "card-05-reconciliation.png"), full_page=True)
    page.goto(f"{base}/settlement/{record_id}")
    page.fill("#reference", "po_1QEUR20261201")
    page.click("#remit button[type=submit]")
    page.wait_for_url(re.compile(rf"/settlement/{record_id}$"))
    assert "Payout recorded and booked." in page.locator(".flash").inner_text()
    page.goto(f"{base}/settlement/reconciliation")
    clearing = page.locator("#clearing").inner_text()
    assert "€0.00" in clearing and "€180.00" not in clearing
    page.screenshot(path=str(shots / "card-06-paid-out.png"), full_page=True)
