"""The whole financing path in a real browser, against an electronic warehouse receipt.

A Chinese SME (its pages in Chinese) holds an issued warehouse receipt; two banks each
publish an active warehouse-receipt loan product (their staff read English). The SME opens
the marketplace, sees what it could borrow against the receipt and sends one request to
both banks. At each bank an officer opens the review queue and the evidence pack and
prepares an offer (bank 1 dearer, bank 2 cheaper), and an approver (another person, with
the second factor) approves it. The SME compares the offers side by side and accepts the
cheaper one: the other lapses and the contract PDF is there. Bank 2's officer records the
disbursement; the SME repays in full by card through the local Stripe server. The loan is
repaid, the receipt's pledge released, and the ledger shows exactly one disbursement and
one repayment."""
from __future__ import annotations

import re
from datetime import timedelta
from decimal import ROUND_DOWN, Decimal

import pyotp
import pytest

from finance_app.accounts.states import OrgKind, Role
from tests.browser.conftest import OPERATOR_PASSWORD, _sign_in
from tests.browser.test_card_payment import _fill_card

pytestmark = pytest.mark.browser

AMOUNT = Decimal("10000.00")
SME_NAME = "珠海海岸线跨境电商有限公司"


def _setup():
    """Everything that is not the point of the test, through the services."""
    from finance_app import clock
    from finance_app.extensions import db
    from finance_app.financing import products
    from finance_app.warehouse import services as warehouse
    from finance_app.warehouse.states import WarehouseKind
    from tests.factories import UserFactory, make_org_user

    # disbursement and repayment fall on one business day (China Standard Time): never run
    # the path across its midnight, or a day's interest would be owed after the payment
    business = clock.now() + timedelta(hours=8)
    if business.hour == 23 and business.minute >= 50:
        clock.advance(timedelta(hours=-1))
    sme = make_org_user(OrgKind.SME, roles=(Role.ADMIN, Role.OFFICER), name=SME_NAME,
                        name_en="Zhuhai Coastline Cross-border E-commerce Co., Ltd.")
    sme.locale = "zh_CN"
    operator = make_org_user(OrgKind.WAREHOUSE_OPERATOR, roles=(Role.OFFICER,),
                             name="珠海保税物流园有限公司")
    place = warehouse.register_warehouse(
        actor=operator, name="Zhuhai Bonded Logistics Park, Hall 3", kind=WarehouseKind.BONDED,
        address="Hongwan Port, Xiangzhou, Zhuhai", country="CN")
    receipt = warehouse.issue_receipt(
        actor=operator, warehouse_id=place.id, depositor_org_id=sme.org_id,
        expiry_date=clock.today() + timedelta(days=180),
        goods=warehouse.Goods(description="Bluetooth earphones, model TWS-500, boxed",
                              hs_code="8518300000", quantity=Decimal("1000"), unit="pcs",
                              unit_price=Decimal("25.80"), currency="USD", insured=True))
    banks = []
    for n, (name, low, high) in enumerate((("Hengqin Harbour Bank", "0.060000", "0.090000"),
                                           ("Pearl River Trade Bank", "0.050000", "0.080000")),
                                          start=1):
        officer = make_org_user(OrgKind.BANK, roles=(Role.OFFICER,), name=name)
        approver = UserFactory(organisation=officer.organisation, roles=[Role.APPROVER])
        db.session.flush()
        product = products.create_product(products.ProductTerms(
            name=f"Warehouse-receipt loan {n}", kind="warehouse_receipt",
            currencies=["USD"], max_advance_rate=Decimal("0.6000"),
            rate_min=Decimal(low), rate_max=Decimal(high), day_count=360,
            max_tenor_days=180, repayment_type="bullet", penalty_rate=Decimal("0.180000"),
            default_after_days=60, arrangement_fee_rate=Decimal("0.005000"),
            margin_call_ltv=Decimal("0.7500"), liquidation_ltv=Decimal("0.8500"),
            cure_days=10), actor=officer)
        banks.append(dict(name=name, org_id=officer.org_id, product_id=product.id,
                          officer=officer.email, approver=approver.email,
                          secret=approver.totp_secret))
    net = (receipt.value.amount * (1 - warehouse.haircut_for(receipt.hs_code))).quantize(
        Decimal("0.01"), rounding=ROUND_DOWN)
    eligible = (net * Decimal("0.6000")).quantize(Decimal("0.01"), rounding=ROUND_DOWN)
    db.session.commit()
    world = dict(sme=sme.email, sme_org_id=sme.org_id, receipt_id=receipt.id,
                 receipt_number=receipt.number, eligible=eligible, banks=banks)
    # reading the objects back opened a transaction: end it, so the server thread can write
    db.session.remove()
    return world


def _sign_out(page) -> None:
    page.click("#signout")
    page.wait_for_url(re.compile(r"/signin$"))


def _sign_in_bank(page, base, email, secret=None) -> None:
    _sign_in(page, base, email, OPERATOR_PASSWORD)
    if secret:
        page.wait_for_url(re.compile(r"/signin/second-factor$"))
        page.fill("#code", pyotp.TOTP(secret).now())
        page.click("#second-factor-form button[type=submit]")
    page.wait_for_url(re.compile(r"/dashboard$"))


def _usd(amount: Decimal) -> str:
    return f"${amount:,.2f}"


def test_the_financing_path_against_a_warehouse_receipt(app, live_server, browser_page, shots,
                                                        local_stripe, monkeypatch):
    from playwright.sync_api import expect   # here: browser_page skips (or fails in CI) without it
    from sqlalchemy import func, select

    from finance_app.collateral.models import Encumbrance
    from finance_app.collateral.states import AssetKind, EncumbranceStatus
    from finance_app.extensions import db
    from finance_app.financing import accounts
    from finance_app.financing.models import Decision, Loan
    from finance_app.financing.states import LoanStatus, OfferStatus
    from finance_app.ledger import services as ledger
    from finance_app.ledger.models import LedgerTransaction
    from finance_app.money import Money
    from finance_app.settlement.models import SettlementRecord
    from finance_app.settlement.states import SettlementStatus
    from finance_app.warehouse.models import ReceiptStatusChange, WarehouseReceipt
    from finance_app.warehouse.states import ReceiptAction, ReceiptStatus

    monkeypatch.setitem(app.config, "STRIPE_JS_URL", f"{local_stripe.url}/js.stripe.com/v3/")
    base, page = live_server, browser_page
    w = _setup()
    bank1, bank2 = w["banks"]
    shot = iter(range(1, 100))

    def snap(name: str) -> None:
        page.screenshot(path=str(shots / f"fin-{next(shot):02d}-{name}.png"), full_page=True)

    # 1. The SME opens the marketplace: both products, what it could borrow against the receipt
    _sign_in(page, base, w["sme"], OPERATOR_PASSWORD)
    page.wait_for_url(re.compile(r"/dashboard$"))
    page.locator("header nav a[href='/financing/']").click()
    page.wait_for_url(re.compile(r"/financing/$"))
    for bank in (bank1, bank2):
        card = page.locator(f"#product-{bank['product_id']}")
        expect(card.locator("[data-eligible]")).to_have_attribute(
            "data-eligible", str(w["eligible"]))
        expect(card.locator(f"li[data-item='warehouse_receipt:{w['receipt_id']}']")) \
            .to_contain_text(w["receipt_number"])
    snap("sme-marketplace")

    # 2. ... requests financing against the receipt and sends it to both banks
    page.click(f"#request-{bank1['product_id']}")
    page.wait_for_url(re.compile(r"/financing/requests/new\?"))
    item = f"warehouse_receipt:{w['receipt_id']}"
    expect(page.locator(f"input[name=collateral][value='{item}']")).to_be_checked()
    page.fill("#amount", str(AMOUNT))
    page.fill("#tenor_days", "90")
    page.fill("#purpose", "采购下一批货物的营运资金 (working capital for the next shipment)")
    page.check(f"#product-{bank2['product_id']}")
    expect(page.locator(f"#product-{bank1['product_id']}")).to_be_checked()
    snap("sme-new-request")
    page.click("#submit-request")
    page.wait_for_url(re.compile(r"/financing/requests/\d+$"))
    request_id = int(page.url.rsplit("/", 1)[1])
    expect(page.locator(".flash.success")).to_contain_text(bank1["name"])
    expect(page.locator(".flash.success")).to_contain_text(bank2["name"])
    expect(page.locator("#banks tbody tr")).to_have_count(2)
    expect(page.locator("#collateral")).to_contain_text(w["receipt_number"])
    snap("sme-request-sent")
    _sign_out(page)

    # 3. At each bank the officer prepares an offer, another person approves it
    offers = {}
    for n, (bank, rate) in enumerate(((bank1, "7.5"), (bank2, "6.25")), start=1):
        _sign_in_bank(page, base, bank["officer"])
        page.goto(f"{base}/financing/review")
        row = page.locator(f"#queue tr[data-request='{request_id}']")
        expect(row).to_contain_text(SME_NAME)
        snap(f"bank{n}-queue")
        row.locator("a").first.click()
        page.wait_for_url(re.compile(r"/financing/review/\d+$"))
        target_path = page.url[len(base):]
        expect(page.locator(f"#collateral tr[data-item='warehouse_receipt:{w['receipt_id']}']")) \
            .to_contain_text(w["receipt_number"])
        expect(page.locator("#eligible-now")).to_have_text(_usd(w["eligible"]))
        expect(page.locator("#sme")).to_contain_text(SME_NAME)
        # the bank reads of the SME's collateral, in English, not of "your collateral"
        expect(page.locator("#eligibility")).not_to_contain_text("your collateral")
        expect(page.locator("#collateral")).to_contain_text(
            f"Warehouse receipt {w['receipt_number']}")
        page.fill("#amount", str(AMOUNT))
        page.fill("#annual_rate", rate)
        page.fill("#conditions", "Goods stay insured in the bonded warehouse.")
        snap(f"bank{n}-evidence-pack")
        page.click("#prepare-offer")
        page.wait_for_url(re.compile(re.escape(target_path) + "$"))
        decision = page.locator(".decision.live")
        expect(decision.locator("[data-status]")).to_have_attribute("data-status", "prepared")
        expect(page.locator("#four-eyes")).to_be_visible()     # not by the one who prepared it
        offers[n] = int(decision.get_attribute("data-decision"))
        snap(f"bank{n}-offer-prepared")
        _sign_out(page)

        _sign_in_bank(page, base, bank["approver"], bank["secret"])
        page.goto(f"{base}{target_path}")
        page.click(f"#approve-{offers[n]}")
        page.wait_for_url(re.compile(re.escape(target_path) + "$"))
        expect(page.locator(f"#decision-{offers[n]} [data-status]")).to_have_attribute(
            "data-status", "approved")
        snap(f"bank{n}-offer-approved")
        _sign_out(page)

    # 4. The SME compares the offers side by side and accepts the cheaper one
    _sign_in(page, base, w["sme"], OPERATOR_PASSWORD)
    page.wait_for_url(re.compile(r"/dashboard$"))
    page.goto(f"{base}/financing/requests/{request_id}")
    compare = page.locator("#offers")
    expect(compare.locator("thead th[data-offer]")).to_have_count(2)
    expect(compare.locator(f"tr[data-row=rate] td[data-offer='{offers[1]}']")).to_have_text("7.50%")
    expect(compare.locator(f"tr[data-row=rate] td[data-offer='{offers[2]}']")).to_have_text("6.25%")
    expect(compare.locator(f"tr[data-row=apr] td[data-offer='{offers[2]}'] #lowest-apr")) \
        .to_be_visible()
    snap("sme-offers-side-by-side")
    page.click(f"#accept-{offers[2]}")
    page.wait_for_url(re.compile(r"/financing/loans/\d+$"))
    loan_id = int(page.url.rsplit("/", 1)[1])
    expect(page.locator("h1 [data-status]")).to_have_attribute(
        "data-status", "awaiting_disbursement")
    receipt_row = page.locator(
        f"#loan-collateral tr[data-item='warehouse_receipt:{w['receipt_id']}']")
    expect(receipt_row).to_have_attribute("data-encumbrance", "active")
    expect(receipt_row).to_contain_text(bank2["name"])
    snap("sme-loan-accepted")
    href = page.locator("#contract-pdf").get_attribute("href")
    assert href == f"/financing/loans/{loan_id}/contract.pdf"
    pdf = page.request.get(base + href)      # with the SME's session cookie
    assert pdf.status == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.body()[:5] == b"%PDF-"
    page.goto(f"{base}/financing/requests/{request_id}")
    expect(compare.locator(f"thead th[data-offer='{offers[1]}'] [data-status]")) \
        .to_have_attribute("data-status", "lapsed")
    expect(compare.locator(f"thead th[data-offer='{offers[2]}'] [data-status]")) \
        .to_have_attribute("data-status", "accepted")
    expect(page.locator("#loan-link a")).to_have_attribute("href", f"/financing/loans/{loan_id}")
    snap("sme-request-accepted")
    page.goto(f"{base}/warehouse/receipts/{w['receipt_id']}")
    expect(page.locator("#pledge")).to_contain_text(bank2["name"])
    expect(page.locator("#financing-loan")).to_have_attribute("href",
                                                              f"/financing/loans/{loan_id}")
    snap("sme-receipt-pledged")
    _sign_out(page)

    # 5. Bank 2's officer records the disbursement
    _sign_in_bank(page, base, bank2["officer"])
    page.goto(f"{base}/financing/loans/{loan_id}")
    page.fill("#reference", "PRTB-DISB-20261201-0001")
    snap("bank2-disburse")
    page.click("#disburse-button")
    page.wait_for_url(re.compile(rf"/financing/loans/{loan_id}$"))
    expect(page.locator("h1 [data-status]")).to_have_attribute("data-status", "disbursed")
    expect(page.locator("#schedule tbody tr")).to_have_count(1)
    snap("bank2-disbursed")
    _sign_out(page)

    # 6. The SME repays in full, by card through the local Stripe server
    _sign_in(page, base, w["sme"], OPERATOR_PASSWORD)
    page.wait_for_url(re.compile(r"/dashboard$"))
    page.goto(f"{base}/financing/loans/{loan_id}")
    owed = page.locator("#owed-total").inner_text()
    page.select_option("#method", "card")
    snap("sme-repay")
    page.click("#repay-button")
    page.wait_for_url(re.compile(r"/settlement/\d+$"))
    record_id = int(page.url.rsplit("/", 1)[1])
    expect(page.locator("#amount")).to_have_text(owed)
    snap("sme-repayment-record")
    page.click("#pay-card")
    page.wait_for_url(re.compile(rf"/settlement/{record_id}/card$"))
    page.locator("#card-element input").first.wait_for()
    _fill_card(page, "4242424242424242")
    snap("sme-card-form")
    page.click("#card-submit")
    page.wait_for_url(re.compile(rf"/settlement/{record_id}$"))
    expect(page.locator("#status [class*=status-approved]")).to_be_visible()
    snap("sme-card-paid")

    page.click("#subject")                   # the payment leads back to its loan
    page.wait_for_url(re.compile(rf"/financing/loans/{loan_id}$"))
    expect(page.locator("h1 [data-status]")).to_have_attribute("data-status", "repaid")
    expect(page.locator("#repay")).to_have_count(0)
    expect(page.locator("#repayments tbody tr [data-status]")).to_have_attribute(
        "data-status", "applied")
    expect(page.locator(f"#loan-collateral tr[data-item='warehouse_receipt:{w['receipt_id']}']")) \
        .to_have_attribute("data-encumbrance", "released")
    snap("sme-loan-repaid")
    page.goto(f"{base}/warehouse/receipts/{w['receipt_id']}")
    expect(page.locator("#pledge")).to_have_count(0)
    snap("sme-receipt-released")

    # the database agrees, and each side effect happened exactly once
    db.session.remove()
    loan = db.session.get(Loan, loan_id)
    assert loan.status is LoanStatus.REPAID and loan.bank_org_id == bank2["org_id"]
    assert loan.principal == Money(AMOUNT, "USD") and loan.annual_rate == Decimal("0.0625")
    assert db.session.get(Decision, offers[1]).status is OfferStatus.LAPSED
    assert db.session.get(Decision, offers[2]).status is OfferStatus.ACCEPTED
    receipt = db.session.get(WarehouseReceipt, w["receipt_id"])
    assert receipt.status is ReceiptStatus.RELEASED
    pledges = db.session.execute(select(Encumbrance).where(
        Encumbrance.asset_kind == AssetKind.WAREHOUSE_RECEIPT,
        Encumbrance.asset_id == w["receipt_id"])).scalars().all()
    assert [(p.status, p.holder_org_id) for p in pledges] == [
        (EncumbranceStatus.RELEASED, bank2["org_id"])]
    assert db.session.execute(select(func.count()).select_from(Encumbrance).where(
        Encumbrance.status == EncumbranceStatus.ACTIVE)).scalar_one() == 0
    assert [c.action for c in db.session.execute(select(ReceiptStatusChange).where(
        ReceiptStatusChange.receipt_id == w["receipt_id"]).order_by(ReceiptStatusChange.id))
        .scalars()] == [ReceiptAction.ISSUE, ReceiptAction.PLEDGE, ReceiptAction.RELEASE]
    assert db.session.execute(select(func.count()).select_from(Loan)).scalar_one() == 1

    def transactions(kind: str) -> int:
        return db.session.execute(select(func.count()).select_from(LedgerTransaction).where(
            LedgerTransaction.kind == kind)).scalar_one()
    assert transactions("loan_disbursement") == 1
    assert transactions("loan_repayment") == 1
    usd0 = Money(Decimal("0.00"), "USD")
    fees = loan.fees
    for purpose in (accounts.PRINCIPAL, accounts.INTEREST, accounts.PENALTY,
                    accounts.UNAPPLIED, accounts.DISBURSEMENT):
        assert ledger.balance(accounts.loan_account(loan, purpose)) == usd0, purpose
    assert ledger.balance(accounts.bank_account(bank2["org_id"], accounts.FEE_INCOME,
                                                "USD")) == fees
    # the bank paid out the principal less the fees; the card money waits at Stripe for the
    # platform's payout to the bank, so its lending account shows only the disbursement
    assert ledger.balance(accounts.bank_account(bank2["org_id"], accounts.LENDING_CASH,
                                                "USD")) == Money(-(AMOUNT - fees.amount), "USD")
    card = db.session.get(SettlementRecord, record_id)
    assert card.status is SettlementStatus.PAID and card.awaiting_remittance
    assert card.money == Money(AMOUNT, "USD")
    db.session.remove()
