"""Filing trade documents and the verdicts they produce, through the service."""
from __future__ import annotations

import itertools
import json
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from finance_app.accounts.states import OrgKind
from finance_app.extensions import db
from finance_app.trade import services
from finance_app.trade.models import (
    DocumentVersion, MatchVerdict, Order, OrderLine, Payment, Receivable, ReceivableStatus,
)
from finance_app.trade.states import Direction, DocumentSource, Verdict
from tests.factories import make_org_user
from tests.trade.builders import inventory, order, parties, payment, waybill


def file(docs, actor=None, direction=Direction.EXPORT):
    batch = services.ingest(docs, actor=actor, source=DocumentSource.JSON, direction=direction)
    db.session.commit()
    return batch


def results(batch):
    return json.loads(batch.results)


def verdict(order_no="ORD-1"):
    o = db.session.execute(select(Order).where(Order.order_no == order_no)).scalar_one()
    v = db.session.execute(select(MatchVerdict).where(MatchVerdict.order_id == o.id)).scalar_one()
    return v.status, [r["code"] for r in json.loads(v.reasons)]


def test_a_complete_export_trade_is_verified(app):
    sme, logistics, payer = parties()
    file([order()], sme)
    assert verdict() == (Verdict.INCOMPLETE, ["payment_missing", "inventory_missing"])
    file([payment()], payer)
    file([inventory()], sme)
    assert verdict() == (Verdict.INCOMPLETE, ["waybill_missing"])
    file([waybill()], logistics)
    assert verdict() == (Verdict.VERIFIED, [])


@pytest.mark.parametrize("arrival", list(itertools.permutations(range(4))))
def test_the_verdict_does_not_depend_on_arrival_order(app, arrival):
    sme, logistics, payer = parties()
    docs = [(order(), sme), (payment(), payer), (inventory(), sme), (waybill(), logistics)]
    for i in arrival:
        file([docs[i][0]], docs[i][1])
    assert verdict() == (Verdict.VERIFIED, [])


def test_amount_and_line_mismatches_are_explained(app):
    sme, logistics, payer = parties()
    bad_lines = [dict(gnum=1, item_name="Lamp", qty=Decimal(3), price=Decimal(20),
                      total_price=Decimal(100))]
    file([order(lines=bad_lines)], sme)
    file([payment(amount="105.00")], payer)
    file([inventory(), waybill()], None)
    status, codes = verdict()
    assert status is Verdict.MISMATCH
    assert codes == ["line_total_mismatch", "payment_amount_mismatch"]
    o = db.session.execute(select(Order)).scalar_one()
    messages = [r["message"] for r in json.loads(o.verdict.reasons)]
    assert "105" in messages[1] and "110" in messages[1]


def test_import_payer_must_be_the_buyer_with_a_valid_id(app):
    sme, logistics, payer = parties()
    valid, bad_check_digit = "11010519491231002X", "110105194912310021"
    file([order(buyer_id_type="1", buyer_id_number=bad_check_digit,
                buyer_name="张三", consignee="张三")], sme, Direction.IMPORT)
    file([payment(payer_name="李四", payer_id_type="1", payer_id_number=valid)],
         payer, Direction.IMPORT)
    file([waybill(order_no="ORD-1", consignee="王五")], logistics, Direction.IMPORT)
    status, codes = verdict()
    assert status is Verdict.MISMATCH
    assert codes == ["buyer_id_invalid", "payer_not_buyer", "consignee_mismatch"]
    # corrected documents: same person, valid ID, right consignee -> verified
    file([order(buyer_id_type="1", buyer_id_number=valid, buyer_name="张三", consignee="张三",
                app_type="2")], sme, Direction.IMPORT)
    file([payment(payer_name="张三", payer_id_type="1", payer_id_number=valid, app_type="2")],
         payer, Direction.IMPORT)
    file([waybill(order_no="ORD-1", consignee="张三", app_type="2")], logistics, Direction.IMPORT)
    assert verdict() == (Verdict.VERIFIED, [])


def test_an_unfiled_filer_is_rejected_and_the_rest_of_the_batch_stands(app):
    sme, _, _ = parties()
    batch = file([order("ORD-1"), order("ORD-2", ebc_code="9999999999"), order("ORD-3")])
    outcome = results(batch)
    assert [r["accepted"] for r in outcome] == [True, False, True]
    assert "9999999999 belongs to no filed organisation" in outcome[1]["reason"]
    assert db.session.execute(select(func.count(Order.id))).scalar_one() == 2


def test_only_the_filer_files_its_documents(app):
    sme, logistics, payer = parties()
    other_sme = make_org_user(OrgKind.SME, customs_code="4419930002")
    batch = file([order(), waybill()], other_sme)
    assert [r["accepted"] for r in results(batch)] == [False, False]
    assert "may not file this order" in results(batch)[0]["reason"]
    batch = file([payment()], logistics)
    assert not results(batch)[0]["accepted"]
    # the SME may file the payment slip for its own order (its ebcCode)
    assert results(file([payment(txn="TXN-9")], sme))[0]["accepted"]


def test_refiling_replaces_the_document_keeps_history_and_reevaluates(app):
    sme, logistics, payer = parties()
    file([order(), inventory(), waybill()], None)
    file([payment(amount="120.00")], payer)
    assert verdict()[0] is Verdict.MISMATCH
    again = file([order()], sme)
    assert "already filed" in results(again)[0]["reason"]
    refiled = file([order(goods="110.00", freight="10.00", app_type="2",
                          lines=[dict(gnum=1, item_name="Lamp", qty=Decimal(2),
                                      price=Decimal(55), total_price=Decimal(110))])], sme)
    assert results(refiled)[0]["version"] == 2
    assert verdict() == (Verdict.VERIFIED, [])
    old = db.session.execute(select(DocumentVersion)).scalar_one()
    assert old.version == 1 and '"goods_value":"100.00000"' in old.data
    assert db.session.execute(select(func.count(OrderLine.id))).scalar_one() == 1


def test_uniqueness_per_platform_payment_company_and_carrier(app):
    sme, logistics, payer = parties()
    file([order(), payment(), waybill()], None)
    batch = file([order(), payment(), waybill()], None)
    assert [r["accepted"] for r in results(batch)] == [False, False, False]
    # the same order number on another platform is another order
    assert results(file([order(ebp_code="OTHERPLAT")], sme))[0]["accepted"]


def test_bad_values_are_rejected_per_document(app):
    sme, _, _ = parties()
    batch = file([order("A", goods="-1"), order("B", currency=None), order("C")], sme)
    outcome = results(batch)
    assert [r["accepted"] for r in outcome] == [False, False, True]
    assert "goods_value" in outcome[0]["reason"] and "negative" in outcome[0]["reason"]
    assert "currency" in outcome[1]["reason"]


def test_large_amounts_are_stored_exactly(app):
    sme, _, _ = parties()
    big = "12345678912345.12345"
    file([order(goods=big, freight="0", lines=[])], sme)
    db.session.expire_all()
    stored = db.session.execute(select(Order)).scalar_one()
    assert stored.goods_value == Decimal(big)


def test_verified_b2b_export_on_terms_becomes_a_receivable_settled_by_payments(app):
    sme, logistics, payer = parties()
    b2b = order(trade_mode="9710", order_type="B", payment_term_days=90, goods="1000.00",
                freight="0", lines=[], buyer_name="Lisboa Imports Lda")
    file([b2b, inventory(trade_mode="9710"), waybill()], None)
    assert verdict() == (Verdict.VERIFIED, [])
    receivable = db.session.execute(select(Receivable)).scalar_one()
    assert (receivable.amount, receivable.currency, receivable.status) == (
        Decimal("1000.00000"), "USD", ReceivableStatus.OPEN)
    assert receivable.due_date.isoformat() == "2027-01-30"  # 1 Nov 2026 + 90 days
    file([payment(amount="400.00")], payer)
    assert services.outstanding(receivable) == Decimal("600.00000")
    file([payment(amount="600.00", txn="TXN-2")], payer)
    db.session.refresh(receivable)
    assert receivable.status is ReceivableStatus.SETTLED
    assert services.outstanding(receivable) == 0
    overpaid = file([payment(amount="1.00", txn="TXN-3")], payer)
    assert verdict() == (Verdict.MISMATCH, ["payment_amount_mismatch"])
    assert db.session.execute(select(func.count(Payment.id))).scalar_one() == 3
    assert results(overpaid)[0]["accepted"]


def test_verdicts_command_prints_one_json_object_per_order(app):
    sme, logistics, payer = parties()
    file([order("ORD-1"), order("ORD-2"), payment("ORD-1", amount="99.00")], None)
    lines = app.test_cli_runner().invoke(args=["verdicts", "--json"]).output.splitlines()
    rows = [json.loads(line) for line in lines]
    assert [(r["order_no"], r["ebp_code"], r["verdict"]) for r in rows] == [
        ("ORD-1", "PLATFORM01", "mismatch"), ("ORD-2", "PLATFORM01", "incomplete")]
    assert rows[0]["reasons"][0] == {
        "code": "payment_amount_mismatch",
        "message": "The payment of 99.00 USD does not equal the order's 110.00 USD."}


def test_a_corrected_inventory_moves_the_order_to_its_new_waybill(app):
    """The waybill link lives on the inventory: re-filing it re-judges the order."""
    sme, logistics, payer = parties()
    file([order(), payment(), waybill("WB-1"), waybill("WB-2")], None)
    file([inventory(waybill="WB-9")], sme)
    assert verdict() == (Verdict.INCOMPLETE, ["waybill_missing"])
    file([inventory(waybill="WB-2", app_type="2")], sme)
    assert verdict() == (Verdict.VERIFIED, [])
    o = db.session.execute(select(Order)).scalar_one()
    from finance_app.trade.models import Waybill
    assert db.session.get(Waybill, o.verdict.waybill_id).logistics_no == "WB-2"
