"""Buyer limits under real concurrency (PostgreSQL, threads released together): shipments
racing for the last of a buyer's limit are insured for no more than the limit, in total."""
from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from finance_app.accounts.models import User
from finance_app.extensions import db
from finance_app.insurance import services
from finance_app.insurance.models import InsuranceStatusChange, ShipmentDeclaration
from finance_app.ledger.models import LedgerTransaction
from finance_app.money import Money
from finance_app.settlement.models import SettlementRecord
from finance_app.settlement.states import ObligationKind
from tests.insurance.conftest import approved_limit, shipped
from tests.ledger.test_concurrency import THREADS, run_together

pytestmark = pytest.mark.postgres


def count(model, *where) -> int:
    query = select(func.count()).select_from(model)
    for condition in where:
        query = query.where(condition)
    return db.session.execute(query).scalar_one()


def test_shipments_racing_for_a_limit_are_insured_for_the_limit_and_no_more(app, world,
                                                                           policy):
    limit = approved_limit(world, policy, amount="95000.00")
    orders = [shipped(f"ORD-{n}", goods="10000.00").id for n in range(THREADS)]
    limit_id, sme_id = limit.id, world["sme"].id
    db.session.remove()

    def attempt(n: int):
        actor = db.session.get(User, sme_id)
        declaration = services.declare_shipment(actor=actor, buyer_limit_id=limit_id,
                                                order_id=orders[n])
        return declaration.insured_amount

    results, errors = run_together(app, attempt)
    assert errors == []
    insured = sorted(results, reverse=True)
    # nine fully insured, one for the last 5,000.00, ten wholly uninsured
    assert insured == [1000000] * 9 + [500000] + [0] * 10
    declarations = db.session.execute(select(ShipmentDeclaration)).scalars().all()
    assert len(declarations) == THREADS
    assert sum(d.insured_amount for d in declarations) == 9500000
    assert all(d.insured_amount + d.uninsured_amount == 1000000 for d in declarations)
    limit = services.get_limit(limit_id)
    assert services.limit_remaining(limit) == Money(Decimal("0.00"), "USD")
    # side effects: one premium booking and one payment record per insured shipment
    assert count(LedgerTransaction, LedgerTransaction.kind == "insurance_premium") == 10
    assert count(SettlementRecord,
                 SettlementRecord.obligation_kind == ObligationKind.PREMIUM) == 10
    assert count(InsuranceStatusChange, InsuranceStatusChange.action == "declare") == THREADS


def test_two_declarations_for_the_last_of_a_limit_are_not_both_insured(app, world, policy):
    import threading
    limit = approved_limit(world, policy, amount="10000.00")
    orders = [shipped(f"ORD-{n}", goods="10000.00").id for n in range(2)]
    limit_id, sme_id = limit.id, world["sme"].id
    db.session.remove()
    start, results, errors = threading.Barrier(2, timeout=30), [None, None], []

    def worker(n: int) -> None:
        with app.app_context():
            try:
                start.wait()
                results[n] = services.declare_shipment(
                    actor=db.session.get(User, sme_id), buyer_limit_id=limit_id,
                    order_id=orders[n]).insured_amount
                db.session.commit()
            except BaseException as exc:  # noqa: BLE001 - reported by the test
                db.session.rollback()
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(results) == [0, 1000000]
    assert count(SettlementRecord,
                 SettlementRecord.obligation_kind == ObligationKind.PREMIUM) == 1


def test_a_loan_and_an_assignment_to_two_banks_at_once_do_not_both_take_a_receivable(
        app, world, policy):
    """Bank B's receivables loan is accepted while bank A accepts the receivable's indemnity
    assignment: one of them wins, the other is refused, and the receivable is never financed
    by one bank with its claim paid to another."""
    import threading

    from finance_app.collateral.models import Encumbrance
    from finance_app.collateral.states import AssetKind, EncumbranceStatus
    from finance_app.accounts.states import Role
    from finance_app.errors import DomainError
    from finance_app.financing import loans, products
    from finance_app.financing.models import Loan
    from finance_app.financing.products import ProductTerms
    from tests.financing.conftest import second_user
    from tests.insurance.conftest import declare
    from tests.insurance.test_policy_financing import acknowledged, approved_offer, ask

    approver = second_user(world["other_bank"], Role.APPROVER)
    product = products.create_product(ProductTerms(
        name="receivables", kind="receivable", currencies=["USD"],
        max_advance_rate=Decimal("0.8000"), rate_min=Decimal("0.030000"),
        rate_max=Decimal("0.080000"), day_count=360, max_tenor_days=180,
        repayment_type="bullet", penalty_rate=Decimal("0.120000"), default_after_days=90,
        arrangement_fee_rate=Decimal("0")), actor=world["other_bank"])
    db.session.commit()
    limit = approved_limit(world, policy)
    declaration = declare(world, limit, shipped("ORD-1", goods="40000.00"))
    request = ask(world, product, declaration.receivable_id, kind="receivable")
    decision = approved_offer(world, request, "other_bank", approver=approver)
    assignment = acknowledged(world, declaration)
    ids = dict(decision=decision.id, assignment=assignment.id, sme=world["sme"].id,
               bank=world["bank"].id, receivable=declaration.receivable_id)
    db.session.remove()
    start, done, errors = threading.Barrier(2, timeout=30), [], []

    def worker(which: str) -> None:
        with app.app_context():
            try:
                start.wait()
                if which == "loan":
                    loans.accept_offer(ids["decision"], actor=db.session.get(User, ids["sme"]))
                else:
                    services.accept_assignment(ids["assignment"],
                                               actor=db.session.get(User, ids["bank"]))
                db.session.commit()
                done.append(which)
            except DomainError as exc:
                db.session.rollback()
                errors.append((which, exc.code))
            finally:
                db.session.remove()

    threads = [threading.Thread(target=worker, args=(w,)) for w in ("loan", "assignment")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(done) == 1 and len(errors) == 1, (done, errors)
    live = db.session.execute(select(Encumbrance).where(
        Encumbrance.asset_id == ids["receivable"],
        Encumbrance.asset_kind.in_([AssetKind.RECEIVABLE, AssetKind.INSURED_RECEIVABLE]),
        Encumbrance.status == EncumbranceStatus.ACTIVE)).scalars().all()
    assert len(live) == 1
    assert count(Loan) == (1 if done == ["loan"] else 0)
