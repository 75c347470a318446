"""The dashboard's figures on a small known world, against what they must be."""
from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from finance_app import clock, daily
from finance_app.errors import Forbidden, ValidationFailed
from finance_app.extensions import db
from finance_app.financing import loans, review
from finance_app.financing.models import Loan
from finance_app.financing.states import LoanStatus
from finance_app.statistics import queries
from finance_app.statistics.queries import Filters
from tests.financing.conftest import file, make_product, offer, receivable, request_for
from tests.statistics.conftest import DONGGUAN_CODE
from tests.trade.builders import inventory, order, payment, waybill

D = Decimal


def figures(world, **filters):
    return queries.dashboard(queries.parse_filters(filters), actor=world["platform"])


def trade_world():
    """A 9610 parcel to Brazil, paid and shipped (verified), on 15 October; a 9710 B2B order
    to Portugal in EUR on 5 November (not shipped yet); a Dongguan SME's parcel to Mexico
    on 10 November (no payment yet)."""
    file([order("P-1", goods="100.00", freight="10.00", order_date=date(2026, 10, 15)),
          payment("P-1", amount="110.00"), inventory("P-1"), waybill("WB-1")])
    file([order("B-1", trade_mode="9710", order_type="B", payment_term_days=60,
                goods="1000.00", freight="0", currency="EUR", lines=[],
                consignee_country="PT", order_date=date(2026, 11, 5))])
    file([order("M-1", goods="200.00", freight="0", consignee_country="MX",
                ebc_code=DONGGUAN_CODE, order_date=date(2026, 11, 10))])


def by_key(rows):
    return {r["key"]: r for r in rows}


def test_trade_volume_by_mode_country_currency_and_month_in_cny_at_each_days_rate(world):
    trade_world()
    trade = figures(world)["trade"]
    # 110.00 USD x 7.00 (1 Oct) + 1000.00 EUR x 8.00 (1 Oct) + 200.00 USD x 7.20 (2 Nov)
    assert trade["totals"]["orders"] == 3
    assert trade["totals"]["amount_cny"] == D("770.00") + D("8000.00") + D("1440.00")
    modes = by_key(trade["by_mode"])
    assert [r["key"] for r in trade["by_mode"]] == ["9610", "9710", "9810", "1210"]
    assert (modes["9610"]["orders"], modes["9610"]["amount_cny"]) == (2, D("2210.00"))
    assert (modes["9710"]["orders"], modes["9710"]["amount_cny"]) == (1, D("8000.00"))
    assert modes["9810"]["orders"] == modes["1210"]["orders"] == 0
    assert [(r["key"], r["amount_cny"]) for r in trade["by_country"]] == [
        ("PT", D("8000.00")), ("MX", D("1440.00")), ("BR", D("770.00"))]
    currencies = by_key(trade["by_currency"])
    assert (currencies["USD"]["orders"], currencies["USD"]["amount"]) == (2, D("310.00"))
    assert (currencies["EUR"]["amount"], currencies["EUR"]["amount_cny"]) == (
        D("1000.00"), D("8000.00"))
    months = by_key(trade["by_month"])
    assert list(months) == ["2026-10", "2026-11"]
    assert months["2026-10"]["amount_cny"] == D("770.00")
    assert months["2026-11"]["by_mode"] == {"9710": D("8000.00"), "9610": D("1440.00")}


def test_the_share_verified_counts_three_document_matches(world):
    trade_world()
    trade = figures(world)["trade"]
    assert (trade["totals"]["verified"], trade["totals"]["verified_share"]) == (1, D("0.3333"))
    assert by_key(trade["by_mode"])["9610"]["verified_share"] == D("0.5000")
    assert by_key(trade["by_mode"])["9810"]["verified_share"] is None
    assert by_key(trade["by_month"])["2026-10"]["verified_share"] == D("1.0000")


@pytest.mark.parametrize("filters,orders,amount", [
    ({"zone": "Dongguan Humen"}, 1, "1440.00"),
    ({"zone": "Zhuhai Hengqin"}, 2, "8770.00"),
    ({"from": "2026-11"}, 2, "9440.00"),
    ({"to": "2026-10"}, 1, "770.00"),
    ({"from": "2026-11-06", "to": "2026-11-30"}, 1, "1440.00"),
    ({"from": "2026-11", "zone": "Zhuhai Hengqin"}, 1, "8000.00"),
    ({"from": "2025-01", "to": "2025-12"}, 0, "0"),
])
def test_filters_by_period_and_area(world, filters, orders, amount):
    trade_world()
    totals = figures(world, **filters)["trade"]["totals"]
    assert (totals["orders"], totals["amount_cny"]) == (orders, D(amount))


def test_a_currency_without_a_rate_is_named_and_left_out_of_cny_never_guessed(world):
    trade_world()
    file([order("G-1", goods="50.00", freight="0", currency="GBP",
                order_date=date(2026, 11, 12))])
    result = figures(world)
    assert result["unconverted"] == ["GBP"]
    assert result["trade"]["totals"]["amount_cny"] == D("10210.00")
    assert by_key(result["trade"]["by_currency"])["GBP"]["amount"] == D("50.00")


@pytest.mark.parametrize("filters,field", [
    ({"from": "2026-13"}, "from"), ({"to": "2026-02-30"}, "to"), ({"from": "26-1"}, "from"),
    ({"from": "2026-05", "to": "2026-04"}, "to"), ({"zone": "Atlantis"}, "zone"),
])
def test_bad_filters_are_refused_with_the_field(world, filters, field):
    with pytest.raises(ValidationFailed) as refused:
        queries.parse_filters(filters)
    assert refused.value.field == field and refused.value.message


def test_a_month_runs_from_its_first_to_its_last_day(world):
    assert queries.parse_filters({"from": "2024-02", "to": "2024-02"}) == Filters(
        date(2024, 2, 1), date(2024, 2, 29), None)


def test_only_the_platform_operator_gets_the_figures(world):
    for who in ("sme", "bank", "insurer"):
        with pytest.raises(Forbidden):
            queries.dashboard(Filters(), actor=world[who])


# --------------------------------------------------------------------------- financing

def _loan(world, no, amount, tenor, product, *, hours_to_offer, **extra):
    rec = receivable(no, amount="20000.00", days=200)
    request = request_for(world, [product], [("receivable", rec.id)], amount=amount,
                          tenor=tenor)
    clock.advance(timedelta(hours=hours_to_offer))
    decision = offer(world, request, amount=amount, tenor=tenor, **extra)
    loan = loans.accept_offer(decision.id, actor=world["sme"])
    db.session.commit()
    loans.disburse(loan.id, actor=world["bank"], reference=f"HX-{no}")
    db.session.commit()
    return request, loan


def financing_world(world):
    """Three loans of the first bank (current, overdue 41 days, defaulted) and a request
    the second bank rejected; decisions 2, 6, 1 and 3 hours after their requests."""
    current = make_product(world["bank"], name="Receivables 180", max_tenor_days=180)
    lenient = make_product(world["bank"], name="Receivables lenient", default_after_days=120)
    strict = make_product(world["bank"], name="Receivables strict", default_after_days=10)
    other = make_product(world["bank2"], name="Other bank")
    rec = receivable("R-0", amount="20000.00", days=200)
    first = request_for(world, [current, other], [("receivable", rec.id)], amount="5000.00",
                        tenor=180)
    clock.advance(timedelta(hours=2))
    decision = offer(world, first, amount="5000.00", tenor=180)
    clock.advance(timedelta(hours=4))
    target = next(t for t in first.targets if t.bank_org_id == world["bank2"].org_id)
    rejection = review.prepare_rejection(target.id, reasons=["outside_appetite"], text="Not this time.",
                                         actor=world["bank2"])
    db.session.commit()
    review.approve(rejection.id, actor=world["bank2_approver"])
    db.session.commit()
    loan = loans.accept_offer(decision.id, actor=world["sme"])
    db.session.commit()
    loans.disburse(loan.id, actor=world["bank"], reference="HX-R-0")
    db.session.commit()
    _loan(world, "R-1", "3000.00", 30, lenient, hours_to_offer=1)
    _loan(world, "R-2", "2000.00", 30, strict, hours_to_offer=3)
    clock.advance(timedelta(days=41))
    daily.run()
    db.session.commit()


def test_financing_by_kind_bank_and_currency_with_the_approval_rate_and_time_to_decision(world):
    financing_world(world)
    fin = figures(world)["financing"]
    totals = fin["totals"]
    assert (totals["requests"], totals["offers"], totals["rejections"], totals["loans"]) == (
        3, 3, 1, 3)
    # 10,000.00 USD requested, offered and lent, at 7.20 (the rate of 2 November)
    assert totals["requested_cny"] == totals["offered_cny"] == totals["lent_cny"] == D("72000.00")
    assert totals["approval_rate"] == D("0.7500")
    banks = {r["label"]: r for r in fin["by_bank"]}
    first = banks[world["bank"].organisation.name]
    second = banks[world["bank2"].organisation.name]
    assert (first["requests"], first["offers"], first["loans"], first["approval_rate"]) == (
        3, 3, 3, D("1.0000"))
    assert (second["requests"], second["offers"], second["rejections"],
            second["approval_rate"]) == (1, 0, 1, D("0.0000"))
    assert second["requested_cny"] == D("36000.00")
    kinds = by_key(fin["by_kind"])
    assert kinds["receivable"]["loans"] == 3 and kinds["order"]["loans"] == 0
    usd = by_key(fin["by_currency"])["USD"]
    assert (usd["requested"], usd["offered"], usd["lent"]) == (
        D("10000.00"), D("10000.00"), D("10000.00"))
    # decisions 2, 6, 1 and 3 hours after their requests
    assert fin["decisions"] == 4
    assert (fin["decision_hours_median"], fin["decision_hours_mean"]) == (D("2.5"), D("3.0"))


def test_loan_quality_outstanding_overdue_and_non_performing(world):
    financing_world(world)
    quality = figures(world)["loans"]
    # 5,000 current, 3,000 overdue 41 days, 2,000 defaulted: USD at 7.20
    assert (quality["loans"], quality["overdue_loans"], quality["npl_loans"]) == (3, 2, 1)
    assert quality["outstanding_cny"] == D("72000.00")
    assert (quality["overdue_cny"], quality["npl_cny"]) == (D("36000.00"), D("14400.00"))
    assert (quality["overdue_ratio"], quality["npl_ratio"]) == (D("0.5000"), D("0.2000"))
    usd = quality["by_currency"][0]
    assert (usd["outstanding"], usd["overdue"], usd["npl"]) == (
        D("10000.00"), D("5000.00"), D("2000.00"))


def test_an_instalment_overdue_more_than_90_days_is_non_performing(world):
    financing_world(world)
    clock.advance(timedelta(days=84))        # the lenient loan: 94 days overdue, not defaulted
    daily.run()
    db.session.commit()
    assert db.session.execute(select(func.count()).where(
        Loan.status == LoanStatus.DEFAULTED)).scalar_one() == 1
    quality = figures(world)["loans"]
    assert quality["npl_cny"] == D("36000.00") and quality["npl_ratio"] == D("0.5000")


def test_financing_follows_the_area_and_period(world):
    financing_world(world)
    assert figures(world, zone="Dongguan Humen")["financing"]["totals"]["requests"] == 0
    assert figures(world, zone="Dongguan Humen")["loans"]["outstanding_cny"] == 0
    assert figures(world, to="2026-10")["financing"]["totals"]["loans"] == 0
    assert figures(world, **{"from": "2026-11"})["financing"]["totals"]["loans"] == 3


# --------------------------------------------------------------------------- insurance

def test_insured_exposure_premiums_and_claims_ratio(world):
    from finance_app.insurance import services as insurance
    from tests.insurance.conftest import approved_limit, buyer_pays, declare, shipped, terms
    policy = insurance.issue_policy(terms(world), actor=world["insurer"])
    db.session.commit()
    limit = approved_limit(world, policy)
    ship = datetime(2026, 11, 10, 8, 0)
    first = declare(world, limit, shipped("I-1", goods="30000.00", ship=ship))
    second = declare(world, limit, shipped("I-2", goods="12000.00", ship=ship))
    buyer_pays("I-2", amount="12000.00")           # the second invoice is paid: no exposure
    ins = figures(world)["insurance"]
    premiums = D(first.premium_amount + second.premium_amount) / 100
    assert premiums > 0
    usd = ins["by_currency"][0]
    assert (usd["currency"], usd["declarations"], usd["exposure"], usd["premiums"]) == (
        "USD", 2, D("30000.00"), premiums)
    assert ins["exposure_cny"] == D("216000.00")            # 30,000.00 USD at 7.20
    assert ins["premiums_cny"] == (premiums * D("7.2")).quantize(D("0.01"))
    assert (ins["claims"], ins["indemnity_paid_cny"], ins["claims_ratio"]) == (0, 0, D("0"))
    assert figures(world, zone="Dongguan Humen")["insurance"]["declarations"] == 0
