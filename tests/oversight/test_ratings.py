"""Credit ratings from the platform's own evidence: each factor's value and points as the
rules say, the grade, history kept only on change, recomputation after repayments and
defaults, and who sees what (the SME its own with advice; the banks it asked in the
evidence pack; nobody else)."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from finance_app import clock, daily
from finance_app.extensions import db
from finance_app.financing import loans, review
from finance_app.oversight import ratings
from finance_app.oversight.models import CreditRating
from tests.conftest import sign_in
from tests.financing.conftest import (  # noqa: F401  (world: a fixture)
    file, make_product, offer, receivable, request_for, world,
)
from tests.financing.test_loans import disbursed_loan, repay
from tests.trade.builders import inventory, order, payment, waybill


def factors(rating) -> dict[str, tuple[str, int]]:
    return {f.code: (f.value, f.points) for f in rating.factors}


def rating_rows(org_id: int) -> int:
    return db.session.execute(select(func.count()).select_from(CreditRating).where(
        CreditRating.org_id == org_id)).scalar_one()


def test_a_new_sme_without_evidence(world):
    rating = ratings.rate(world["sme"].org_id)
    db.session.commit()
    found = factors(rating)
    assert found["volume"] == ("0.00 CNY", -5)            # nothing verified
    assert found["age"][1] == -5                           # filed today
    assert all(points == 0 for code, (_, points) in found.items()
               if code not in ("volume", "age"))
    assert (rating.score, rating.grade) == (40, "B")
    texts = [ratings.explain(f) for f in rating.factors]
    assert "No instalment has fallen due yet. No effect on the score." in texts
    assert ratings.advice(rating.factors[0]).startswith("File the payment slips")


def test_verified_trade_and_matching_raise_the_score(world):
    for n in range(3):
        receivable(f"B2B-{n}", amount="10000.00")            # verified, 10,000 USD each
    # a retail order whose payer is not its buyer: judged a mismatch
    file([order("R-1", goods="100.00", freight="0", buyer_name="Maria Silva",
                order_date=clock.today()),
          payment("R-1", amount="100.00", txn="T-R-1", payer_name="Carlos Mendes"),
          inventory("R-1", waybill="WB-R-1", cop="COP-R-1"), waybill("WB-R-1")])
    rating = ratings.rate(world["sme"].org_id)
    found = factors(rating)
    # 30,000 USD at 7.1865: 215,595.00 CNY (100,000 to 1,000,000: +5)
    assert found["volume"] == ("215,595.00 CNY", 5)
    assert found["trend"] == ("—", 3)                      # new trade this half-year
    assert found["match_share"] == ("75.0%", 0)            # 3 of 4 judged orders passed
    assert rating.score == 50 + 5 + 3 + 0 - 5
    assert rating.grade == "BB"


def test_history_is_kept_only_when_the_rating_changes(world):
    org_id = world["sme"].org_id
    first = ratings.rate(org_id)
    db.session.commit()
    with clock.frozen_at(clock.now() + timedelta(days=1)):
        again = ratings.rate(org_id)
        db.session.commit()
    assert again.id == first.id and rating_rows(org_id) == 1
    assert again.confirmed_on == first.computed_on + timedelta(days=1)
    receivable("B2B-1", amount="20000.00")
    changed = ratings.rate(org_id)
    db.session.commit()
    assert changed.id != first.id and rating_rows(org_id) == 2
    assert [r.id for r in ratings.history(org_id)] == [changed.id, first.id]


def test_the_daily_run_rates_every_filed_sme_once_a_day(world):
    lines = daily.run(clock.today())
    assert any(line.startswith("ratings: 2 SMEs rated, 2 ratings changed") for line in lines)
    assert any("already done" in line for line in daily.run(clock.today())
               if line.startswith("ratings"))
    assert rating_rows(world["sme"].org_id) == 1 and rating_rows(world["other_sme"].org_id) == 1


def test_a_late_repayment_and_a_default_lower_the_rating(world):
    loan, _ = disbursed_loan(world, amount="6000.00", tenor=30, default_after_days=20)
    org_id = world["sme"].org_id
    before = ratings.rate(org_id)
    db.session.commit()
    # 25 days past the due date: overdue beyond the product's 20 days, the loan defaults
    day = loans.instalments(loan)[0].due_date + timedelta(days=25)
    with clock.frozen_at(clock.now() + timedelta(days=(day - clock.today()).days)):
        daily.run(clock.today())
        db.session.refresh(loan)
        assert loan.status.value == "defaulted"
        now = ratings.current(org_id)
        assert now.trigger in ("default", "daily") and now.id != before.id
        found = factors(now)
        assert found["defaults"] == ("1", -25)
        assert found["punctuality"] == ("25.0", -5)        # 25 days late on all of it
        assert now.score < before.score


def test_a_repayment_recomputes_the_rating(world):
    loan, _ = disbursed_loan(world, amount="6000.00", tenor=30)
    org_id = world["sme"].org_id
    day = loans.instalments(loan)[0].due_date + timedelta(days=3)
    with clock.frozen_at(clock.now() + timedelta(days=(day - clock.today()).days)):
        repay(world, loan, loans.position(loan).total, "late-by-3")
        rating = ratings.current(org_id)
        assert rating.trigger == "repayment"
        assert factors(rating)["punctuality"] == ("3.0", 5)  # 3 days late: up to 7 is +5


def test_who_sees_a_rating(world, make_client):
    sme = world["sme"]
    ratings.rate(sme.org_id)
    db.session.commit()
    own = make_client()
    sign_in(own, sme)
    page = own.get("/oversight/rating")
    assert page.status_code == 200 and "What would improve it" in page.text
    assert "File the payment slips" in page.text
    bank = make_client()
    sign_in(bank, world["bank"])
    assert bank.get(f"/oversight/ratings/{sme.org_id}").status_code == 404   # no relation
    # once the SME asks the bank for financing, the bank sees the rating in the pack
    product = make_product(world["bank"])
    rec = receivable("B2B-9", amount="10000.00", days=200)
    request = request_for(world, [product], [("receivable", rec.id)], amount="5000.00")
    target = request.targets[0]
    pack = review.evidence_pack(target.id, actor=world["bank"])
    assert pack.rating == ratings.current(sme.org_id).grade
    page = bank.get(f"/financing/review/{target.id}")
    assert "Orders passing three-document matching" in page.text
    assert "What would improve it" not in page.text
    assert bank.get(f"/oversight/ratings/{sme.org_id}").status_code == 200
    other = make_client()
    sign_in(other, world["bank2"])
    assert other.get(f"/oversight/ratings/{sme.org_id}").status_code == 404


def test_rating_over_the_api(app, world):
    from tests.oversight.test_alerts import Api
    sme = world["sme"]
    ratings.rate(sme.org_id)
    db.session.commit()
    body = Api(app, sme).get(f"/api/v1/oversight/ratings/{sme.org_id}").get_json()
    assert body["grade"] == ratings.current(sme.org_id).grade
    assert [f["code"] for f in body["factors"]][:3] == ["volume", "trend", "match_share"]
    assert body["factors"][0]["advice"]
    assert Api(app, world["bank"]).get(
        f"/api/v1/oversight/ratings/{sme.org_id}").status_code == 404
    assert Api(app, world["platform"]).get(
        f"/api/v1/oversight/ratings/{sme.org_id}").get_json()["factors"][0]["advice"] is None


@pytest.mark.parametrize("score, grade", [(100, "AAA"), (85, "AAA"), (84, "AA"), (75, "AA"),
                                          (65, "A"), (55, "BBB"), (45, "BB"), (35, "B"),
                                          (34, "C"), (0, "C")])
def test_grades(score, grade):
    assert ratings.grade_for(score) == grade


def test_amounts_in_a_currency_without_a_rate_are_left_out(world):
    assert ratings._Cny(clock.today())(Decimal("100"), "JPY") == 0
