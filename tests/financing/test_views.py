"""The financing pages, through the test client signed in as real users: the marketplace,
a request to two banks, the review with four eyes, the offers side by side, acceptance,
disbursement, a repayment, the contract, products and facilities; and each page in
Chinese."""
from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from finance_app import clock
from finance_app.accounts.states import Role
from finance_app.extensions import db
from finance_app.financing import products, review
from finance_app.financing.models import (
    Decision, FinancingProduct, FinancingRequest, Loan, Repayment,
)
from finance_app.financing.states import (
    LoanStatus, OfferStatus, ProductStatus, RepaymentStatus, RequestStatus,
)
from finance_app.financing.views import _pct
from tests.conftest import sign_in
from tests.financing.conftest import (
    make_product, offer, receivable, request_for, second_user, target_of, usd,
)

EN = {"Accept-Language": "en"}
ZH = {"Accept-Language": "zh-CN,zh;q=0.9"}


def text(response) -> str:
    return response.get_data(as_text=True)


def count(model) -> int:
    return db.session.execute(select(func.count()).select_from(model)).scalar_one()


def section(page: str, element_id: str) -> str:
    """The HTML of the element with that id, up to the end of its section/table/div."""
    start = page.index(f'id="{element_id}"')
    tag = page.rfind("<", 0, start)
    name = re.match(r"<(\w+)", page[tag:]).group(1)
    return page[tag:page.index(f"</{name}>", start)]


def dollars(money) -> str:
    return f"${money.amount:,.2f}"


@pytest.fixture
def clients(world, make_client):
    made = {}
    for name in ("sme", "other_sme", "bank", "bank_approver", "bank2", "bank2_approver",
                 "platform"):
        made[name] = make_client()
        sign_in(made[name], world[name])
    return made


@pytest.fixture
def market(world):
    """Two banks' receivables products (80 % and 90 % advance) and a verified receivable of
    USD 10,000."""
    return dict(p1=make_product(world["bank"]),
                p2=make_product(world["bank2"], max_advance_rate=Decimal("0.9000")),
                rec=receivable("B2B-1", amount="10000.00"))


def request_form(market, **changes):
    form = {"amount": "7000.00", "currency": "USD", "tenor_days": "90",
            "purpose": "Working capital for the next shipment",
            "collateral": [f"receivable:{market['rec'].id}"],
            "product_ids": [market["p1"].id, market["p2"].id]}
    form.update(changes)
    return form


# --------------------------------------------------------------------------- SME

def test_the_marketplace_shows_what_the_sme_could_borrow_and_what_limits_it(world, clients,
                                                                            market):
    page = text(clients["sme"].get("/financing/", headers=EN))
    first, second = (section(page, f"product-{market[p].id}") for p in ("p1", "p2"))
    assert "$8,000.00" in first and "$9,000.00" in second          # 80 % and 90 % of 10,000
    assert "the advance rate on the collateral binds" in first
    assert "Receivable of order B2B-1" in first and "$10,000.00" in first
    assert f'href="/financing/requests/new?product={market["p1"].id}&amp;currency=USD"' in first
    # a facility at the second bank smaller than the advance: the facility binds there
    products.grant_facility(actor=world["bank2_approver"], sme_org_id=world["sme"].org_id,
                            limit=usd("5000.00"), expiry_date=clock.today() + timedelta(365))
    db.session.commit()
    second = section(text(clients["sme"].get("/financing/", headers=EN)),
                     f"product-{market['p2'].id}")
    assert "$5,000.00" in second and "the facility&#39;s available amount binds" in second
    # in renminbi at the day's rate: 10,000 x 7.1865 x 80 %
    in_cny = section(text(clients["sme"].get("/financing/?currency=CNY", headers=EN)),
                     f"product-{market['p1'].id}")
    assert "57,492.00" in in_cny and "1 USD = 7.1865 CNY" in in_cny


def test_a_request_goes_to_two_banks_from_one_form(world, clients, market):
    form_page = clients["sme"].get(f"/financing/requests/new?product={market['p1'].id}",
                                   headers=EN)
    page = text(form_page)
    assert form_page.status_code == 200
    assert re.search(rf'value="{market["p1"].id}" id="product-{market["p1"].id}" checked', page)
    assert re.search(rf'value="{market["p2"].id}" id="product-{market["p2"].id}">', page)
    sent = clients["sme"].post(f"/financing/requests/new?product={market['p1'].id}",
                               data=request_form(market), headers=EN)
    assert sent.status_code == 302
    made = db.session.execute(select(FinancingRequest)).scalar_one()
    assert sent.headers["Location"].endswith(f"/financing/requests/{made.id}")
    assert {t.bank_org_id for t in made.targets} == {world["bank"].org_id,
                                                     world["bank2"].org_id}
    assert made.money == usd("7000.00") and made.tenor_days == 90
    detail = text(clients["sme"].get(f"/financing/requests/{made.id}", headers=EN))
    banks = section(detail, "banks")
    assert world["bank"].organisation.name in banks and world["bank2"].organisation.name in banks
    assert banks.count("Awaiting the bank's decision") == 2


@pytest.mark.parametrize("change, field, words", [
    ({"amount": "8500.00"}, "amount", "more than you can borrow"),
    ({"tenor_days": "200"}, "tenor_days", "lends for at most 180 days"),
    ({"amount": "12.345"}, "amount", "at most 2 decimal places"),
    ({"product_ids": []}, "product_ids", "Choose at least one bank"),
    ({"collateral": []}, "collateral", "Choose the collateral"),
])
def test_a_bad_request_is_explained_on_its_field_and_creates_nothing(world, clients, market,
                                                                     change, field, words):
    refused = clients["sme"].post(f"/financing/requests/new?product={market['p1'].id}",
                                  data=request_form(market, **change), headers=EN)
    assert refused.status_code == 422
    errors = re.findall(rf'<p class="error" data-field="{field}">([^<]*)</p>', text(refused))
    assert errors and words in errors[0], text(refused)[-3000:]
    assert count(FinancingRequest) == 0


def test_a_currency_another_bank_does_not_lend_in_is_refused(world, clients, market):
    dollars_only = make_product(world["bank2"], name="Dollar receivables",
                                currencies=["USD"])
    refused = clients["sme"].post(
        f"/financing/requests/new?product={market['p1'].id}", headers=EN,
        data=request_form(market, currency="CNY", amount="1000.00",
                          product_ids=[market["p1"].id, dollars_only.id]))
    assert refused.status_code == 422
    assert 'data-field="currency">Dollar receivables does not lend in CNY' in text(refused)
    assert count(FinancingRequest) == 0


# --------------------------------------------------------------------------- bank review

def test_the_bank_reviews_in_its_queue_and_another_bank_cannot_open_it(world, clients, market):
    made = request_for(world, [market["p1"]], [("receivable", market["rec"].id)])
    target = target_of(made, world["bank"])
    queue = text(clients["bank"].get("/financing/review", headers=EN))
    assert f'data-request="{made.id}"' in section(queue, "queue")
    pack = text(clients["bank"].get(f"/financing/review/{target.id}", headers=EN))
    sme = world["sme"].organisation
    assert sme.name in pack and sme.credit_code in pack and sme.customs_code in pack
    assert "Not rated yet" in section(pack, "rating")
    assert "$8,000.00" in section(pack, "eligible-now")
    collateral = section(pack, "collateral")
    assert "Receivable of order B2B-1" in collateral and "Verified" in collateral
    assert clients["bank2"].get(f"/financing/review/{target.id}").status_code == 404
    assert clients["bank2"].get(f"/financing/requests/{made.id}").status_code == 404
    assert f'data-request="{made.id}"' not in text(clients["bank2"].get("/financing/review"))


def test_four_eyes_on_the_page_and_the_draft_stays_hidden_from_the_sme(world, clients,
                                                                       market, make_client):
    made = request_for(world, [market["p1"]], [("receivable", market["rec"].id)],
                       amount="5000.00")
    target = target_of(made, world["bank"])
    pack = text(clients["bank_approver"].get(f"/financing/review/{target.id}", headers=EN))
    offer_form = section(pack, "offer-form")
    assert 'value="5000.00"' in offer_form and 'value="25.00"' in offer_form  # 0.5 % fee
    prepared = clients["bank_approver"].post(
        f"/financing/review/{target.id}/offer", headers=EN,
        data={"amount": "5000.00", "annual_rate": "6.5", "tenor_days": "90", "fees": "25.00",
              "expiry_date": str(clock.today() + timedelta(days=10)),
              "conditions": "Buyer's acknowledgement of the assignment"})
    assert prepared.status_code == 302
    decision = db.session.execute(select(Decision)).scalar_one()
    assert decision.annual_rate == Decimal("0.065") and decision.status is OfferStatus.PREPARED
    # the one who prepared it sees the approval refused, and is told why
    pack = text(clients["bank_approver"].get(f"/financing/review/{target.id}", headers=EN))
    assert re.search(rf'<button type="button" disabled id="approve-{decision.id}"', pack)
    assert "another person approves it (four eyes)" in section(pack, "four-eyes")
    refused = clients["bank_approver"].post(f"/financing/decisions/{decision.id}/approve",
                                            headers=EN)
    assert refused.status_code == 403
    assert "Another person approves what you prepared (four eyes)." in text(refused)
    # the officer who is no approver is told an approver approves it
    officer_page = text(clients["bank"].get(f"/financing/review/{target.id}", headers=EN))
    assert "An approver of your bank approves it." in officer_page
    # the SME does not see the draft
    sme_page = text(clients["sme"].get(f"/financing/requests/{made.id}", headers=EN))
    assert 'id="offers"' not in sme_page and "6.50%" not in sme_page
    # another approver approves it; now the SME sees it
    colleague = second_user(world["bank"], Role.APPROVER)
    other = make_client()
    sign_in(other, colleague)
    assert other.post(f"/financing/decisions/{decision.id}/approve").status_code == 302
    db.session.refresh(decision)
    assert decision.status is OfferStatus.APPROVED and decision.approved_by_id == colleague.id
    sme_page = text(clients["sme"].get(f"/financing/requests/{made.id}", headers=EN))
    assert "6.50%" in section(sme_page, "offers")


def test_a_rejection_reaches_the_sme_with_its_reasons(world, clients, market):
    made = request_for(world, [market["p1"]], [("receivable", market["rec"].id)])
    target = target_of(made, world["bank"])
    short = clients["bank"].post(f"/financing/review/{target.id}/reject", headers=EN,
                                 data={"reasons": ["credit_history"], "text": "No."})
    assert short.status_code == 422 and 'data-field="text"' in text(short)
    assert clients["bank"].post(f"/financing/review/{target.id}/reject", headers=EN, data={
        "reasons": ["credit_history", "outside_appetite"],
        "text": "We do not lend against this buyer yet."}).status_code == 302
    decision = db.session.execute(select(Decision)).scalar_one()
    assert clients["bank_approver"].post(f"/financing/decisions/{decision.id}/approve"
                                         ).status_code == 302
    rejections = section(text(clients["sme"].get(f"/financing/requests/{made.id}",
                                                 headers=EN)), "rejections")
    assert "Credit history, Outside our risk appetite" in rejections
    assert "We do not lend against this buyer yet." in rejections and "Rejected" in rejections


# --------------------------------------------------------------------------- offers to loans

def test_compare_accept_disburse_repay_and_download_the_contract(world, clients, market):
    made = request_for(world, [market["p1"], market["p2"]],
                       [("receivable", market["rec"].id)], amount="7000.00")
    first = offer(world, made, "bank", amount="7000.00", rate="0.070000")
    better = offer(world, made, "bank2", amount="7000.00", rate="0.060000")
    page = text(clients["sme"].get(f"/financing/requests/{made.id}", headers=EN))
    compared = section(page, "offers")
    for decision in (first, better):
        cost = review.decision_cost(decision)
        assert dollars(cost.total) in compared and _pct(cost.apr) in compared
        assert f'id="accept-{decision.id}"' in compared
    assert "APR" in compared and "Total cost" in compared
    accepted = clients["sme"].post(f"/financing/offers/{better.id}/accept", headers=EN)
    assert accepted.status_code == 302
    loan = db.session.execute(select(Loan)).scalar_one()
    assert accepted.headers["Location"].endswith(f"/financing/loans/{loan.id}")
    page = text(clients["sme"].get(f"/financing/requests/{made.id}", headers=EN))
    compared = section(page, "offers")
    assert re.search(rf'data-offer="{first.id}">[^<]*<br><span [^>]*data-status="lapsed">Lapsed',
                     compared)
    assert 'id="accept-' not in compared and f"/financing/loans/{loan.id}" in page
    # the receivable now backs the loan: the marketplace says so
    market_page = text(clients["sme"].get("/financing/", headers=EN))
    assert "already backs financing" in section(market_page, f"product-{market['p1'].id}")

    # the bank disburses; the first bank cannot see the loan
    assert clients["bank"].get(f"/financing/loans/{loan.id}").status_code == 404
    bank_page = text(clients["bank2"].get(f"/financing/loans/{loan.id}", headers=EN))
    assert 'value="USD"' in section(bank_page, "disburse")
    assert clients["bank2"].post(f"/financing/loans/{loan.id}/disburse", headers=EN, data={
        "reference": "HX-DISB-0001", "receive_currency": "USD"}).status_code == 302
    db.session.refresh(loan)
    assert loan.status is LoanStatus.DISBURSED

    # the SME repays: too much is refused on the field, then a transfer starts
    page = text(clients["sme"].get(f"/financing/loans/{loan.id}", headers=EN))
    assert 'data-instalment="1"' in section(page, "schedule")
    assert "$7,000.00" in section(page, "owed-total")
    key = re.search(r'name="idempotency_key" type="hidden" value="([0-9a-f]{32})"',
                    page).group(1)
    too_much = clients["sme"].post(f"/financing/loans/{loan.id}/repay", headers=EN, data={
        "amount": "90000.00", "currency": "USD", "method": "bank_transfer",
        "idempotency_key": key})
    assert too_much.status_code == 422
    assert re.search(r'data-field="amount">That is more than you owe today', text(too_much))
    started = clients["sme"].post(f"/financing/loans/{loan.id}/repay", headers=EN, data={
        "amount": "1000.00", "currency": "USD", "method": "bank_transfer",
        "idempotency_key": key})
    assert started.status_code == 302
    repayment = db.session.execute(select(Repayment)).scalar_one()
    assert repayment.status is RepaymentStatus.PENDING and repayment.money == usd("1000.00")
    assert started.headers["Location"].endswith(f"/settlement/{repayment.settlement_record_id}")
    assert clients["sme"].get(started.headers["Location"]).status_code == 200
    page = text(clients["sme"].get(f"/financing/loans/{loan.id}", headers=EN))
    assert f'href="/settlement/{repayment.settlement_record_id}"' in section(page, "repayments")

    # the contract: its SME, its bank and the operator download it; the other bank does not
    for name in ("sme", "bank2", "platform"):
        pdf = clients[name].get(f"/financing/loans/{loan.id}/contract.pdf")
        assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF"), name
        assert pdf.mimetype == "application/pdf"
        assert "inline" in pdf.headers["Content-Disposition"]
    assert clients["bank"].get(f"/financing/loans/{loan.id}/contract.pdf").status_code == 404


def test_an_offer_refused_at_acceptance_says_why_on_the_request(world, clients, market):
    made = request_for(world, [market["p1"]], [("receivable", market["rec"].id)])
    decision = offer(world, made, "bank", amount="5000.00")
    review.withdraw_decision(decision.id, actor=world["bank"], note="re-pricing")
    db.session.commit()
    refused = clients["sme"].post(f"/financing/offers/{decision.id}/accept", headers=EN)
    assert refused.status_code == 409 and "The bank withdrew this offer." in text(refused)
    assert count(Loan) == 0


def test_the_bank_cancels_before_disbursement_and_the_sme_withdraws_a_request(world, clients,
                                                                              market):
    made = request_for(world, [market["p1"]], [("receivable", market["rec"].id)])
    decision = offer(world, made, "bank", amount="5000.00")
    clients["sme"].post(f"/financing/offers/{decision.id}/accept")
    loan = db.session.execute(select(Loan)).scalar_one()
    page = text(clients["bank_approver"].get(f"/financing/loans/{loan.id}", headers=EN))
    assert 'id="cancel"' in page
    assert clients["bank_approver"].post(f"/financing/loans/{loan.id}/cancel",
                                         data={"reason": "The buyer went bankrupt"}
                                         ).status_code == 302
    db.session.refresh(loan)
    assert loan.status is LoanStatus.CANCELLED
    again = request_for(world, [market["p2"]], [("receivable", market["rec"].id)])
    assert clients["sme"].post(f"/financing/requests/{again.id}/withdraw").status_code == 302
    db.session.refresh(again)
    assert again.status is RequestStatus.WITHDRAWN


# --------------------------------------------------------------------------- products

def test_products_are_published_paused_and_resumed(world, clients, market):
    form = {"name": "Warehouse receipts, USD", "kind": "warehouse_receipt",
            "currencies": "usd, cny", "max_advance_rate": "60", "rate_min": "5.5",
            "rate_max": "9", "day_count": "360", "arrangement_fee_rate": "0.25",
            "max_tenor_days": "180", "repayment_type": "bullet", "penalty_rate": "18",
            "default_after_days": "60", "margin_call_ltv": "75", "liquidation_ltv": "85",
            "cure_days": "10", "min_rating": "", "require_verified": "y"}
    page = text(clients["bank"].get("/financing/products/new", headers=EN))
    assert "Warehouse-receipt loan: 50.00% – 70.00%" in section(page, "advance-guidance")
    wrong = clients["bank"].post("/financing/products/new", headers=EN,
                                 data={**form, "rate_min": "10"})
    assert wrong.status_code == 422
    assert 'data-field="rate_min">The lowest rate is above the highest.' in text(wrong)
    assert clients["bank"].post("/financing/products/new", data=form).status_code == 302
    made = db.session.execute(select(FinancingProduct).where(
        FinancingProduct.name == "Warehouse receipts, USD")).scalar_one()
    assert (made.max_advance_rate, made.rate_min, made.arrangement_fee_rate,
            made.margin_call_ltv, made.currency_list) == (
        Decimal("0.6"), Decimal("0.055"), Decimal("0.0025"), Decimal("0.75"), ["USD", "CNY"])

    p1 = market["p1"]
    assert clients["bank2"].post(f"/financing/products/{p1.id}/status",
                                 data={"action": "pause"}).status_code == 403
    assert clients["bank"].post(f"/financing/products/{p1.id}/status",
                                data={"action": "pause"}).status_code == 302
    db.session.refresh(p1)
    assert p1.status is ProductStatus.PAUSED
    listing = section(text(clients["bank"].get("/financing/products", headers=EN)),
                      f"resume-{p1.id}")
    assert "Resume" in listing
    assert f'id="product-{p1.id}"' not in text(clients["sme"].get("/financing/"))
    closed = clients["sme"].get(f"/financing/requests/new?product={p1.id}")
    assert closed.status_code == 302 and closed.headers["Location"].endswith("/financing/")
    assert clients["bank"].post(f"/financing/products/{p1.id}/status",
                                data={"action": "resume"}).status_code == 302
    db.session.refresh(p1)
    assert p1.status is ProductStatus.ACTIVE
    # the operator reads every bank's products, and changes none
    operator = text(clients["platform"].get("/financing/products", headers=EN))
    assert f'data-product="{p1.id}"' in operator and 'id="pause-' not in operator


def test_facilities_are_granted_by_an_approver(world, clients):
    assert 'id="grant-note"' in text(clients["bank"].get("/financing/facilities", headers=EN))
    form = {"sme_org_id": world["sme"].org_id, "limit": "50000.00", "currency": "USD",
            "expiry_date": str(clock.today() + timedelta(days=365)), "note": "Annual line"}
    past = clients["bank_approver"].post("/financing/facilities", headers=EN,
                                         data={**form, "expiry_date": str(clock.today())})
    assert past.status_code == 422 and 'data-field="expiry_date"' in text(past)
    assert clients["bank_approver"].post("/financing/facilities", data=form).status_code == 302
    row = section(text(clients["bank_approver"].get("/financing/facilities", headers=EN)),
                  "facilities")
    assert world["sme"].organisation.name in row and row.count("$50,000.00") == 2
    assert "$50,000.00" in text(clients["sme"].get("/financing/facilities", headers=EN))
    assert "$50,000.00" not in text(clients["other_sme"].get("/financing/facilities"))


# --------------------------------------------------------------------------- in Chinese

def _heading(page: str) -> str:
    h1 = re.search(r"<h1>(.*?)</h1>", page, re.S).group(1)
    return re.sub(r"<[^>]+>", " ", re.sub(r"<small>.*?</small>", "", h1, flags=re.S))


def test_every_page_reads_in_chinese(world, clients, market):
    made = request_for(world, [market["p1"], market["p2"]],
                       [("receivable", market["rec"].id)], amount="7000.00")
    offer(world, made, "bank", amount="7000.00", rate="0.070000")
    better = offer(world, made, "bank2", amount="7000.00", rate="0.060000")
    clients["sme"].post(f"/financing/offers/{better.id}/accept")
    loan = db.session.execute(select(Loan)).scalar_one()
    target = target_of(made, world["bank2"])
    pages = [
        ("sme", "/financing/", "融资市场"),
        ("sme", f"/financing/requests/new?product={market['p1'].id}", "申请融资"),
        ("sme", "/financing/requests", "我的融资申请"),
        ("sme", f"/financing/requests/{made.id}", "融资申请"),
        ("sme", "/financing/loans", "贷款"),
        ("sme", f"/financing/loans/{loan.id}", "贷款"),
        ("sme", "/financing/facilities", "授信额度"),
        ("bank2", "/financing/review", "审查队列"),
        ("bank2", f"/financing/review/{target.id}", "尽调材料"),
        ("bank2", "/financing/products", "融资产品"),
        ("bank2", "/financing/products/new", "发布融资产品"),
        ("bank2", f"/financing/loans/{loan.id}", "贷款"),
        ("platform", "/financing/requests", "融资申请"),
    ]
    for who, path, words in pages:
        response = clients[who].get(path, headers=ZH)
        assert response.status_code == 200, path
        page = text(response)
        heading = _heading(page)
        assert words in heading, (path, heading)
        assert not re.search(r"[A-Za-z]{3,}", heading), (path, heading)
        nav = re.sub(r"<[^>]+>", " ", section(page, "financing-nav"))
        assert not re.search(r"[A-Za-z]{3,}", nav), (path, nav)
