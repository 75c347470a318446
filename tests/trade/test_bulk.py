"""Filing in chunks: the bulk path gives exactly what filing one document at a time gives.

``services.ingest`` files documents ``CHUNK_SIZE`` at a time, with one existence query per
kind and one savepoint for a chunk's inserts, falling back to one document at a time when
that savepoint fails. These tests file the same several hundred documents three ways (one
batch in chunks, one batch forced down the per-document path, one document a batch) under
different key prefixes in one database, and compare every outcome, verdict and row count.
"""
from __future__ import annotations

import json
import random
import threading
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from finance_app.audit.models import AuditEvent
from finance_app.audit.services import verify_chain
from finance_app.extensions import db
from finance_app.trade import services
from finance_app.trade.models import (
    DocumentVersion, Inventory, MatchVerdict, Order, OrderLine, Payment, Receivable, Waybill,
)
from finance_app.trade.services import SimpleDocument
from finance_app.trade.states import Direction, DocumentKind, DocumentSource
from tests.trade.builders import EBP, SME_CODE, inventory, order, parties, payment, waybill

TRADES = 80


def documents(p: str) -> list[SimpleDocument]:
    """Several hundred documents under key prefix ``p``: complete trades in shuffled
    arrival orders, mismatches, duplicates within the batch, keys filed before it
    (``prefiled``), re-filings, rejections, B2B orders on terms and import trades."""
    docs: list[SimpleDocument] = []
    for i in range(TRADES):
        goods = f"{100 + i}.00"
        total = f"{100 + i + 10}.00"
        # On terms: verified, it becomes a receivable, which stays even if a later
        # re-filing changes the order; so no B2B order is re-filed here, or one batch and
        # one document at a time would differ by history, not by rule.
        b2b = i % 13 == 6 and i % 9 != 4
        trade = [
            order(f"{p}O-{i}", goods=goods,
                  lines=[dict(gnum=1, item_name="Lamp", qty=Decimal(1), price=Decimal(goods),
                              total_price=Decimal(goods))],
                  **(dict(trade_mode="9710", payment_term_days=60, freight="0") if b2b else {})),
            payment(f"{p}O-{i}", txn=f"{p}T-{i}",
                    amount=f"{100 + i}.00" if b2b else (total if i % 7 else "1.00")),
            inventory(f"{p}O-{i}", cop=f"{p}C-{i}", waybill=f"{p}W-{i}"),
            waybill(f"{p}W-{i}"),
        ]
        if i % 5 == 2:
            trade.pop(3)                               # the waybill never comes
        random.Random(i).shuffle(trade)
        docs += trade
        if i % 10 == 3:                                 # the same order again
            docs.append(order(f"{p}O-{i}", goods="999.00"))
        if i % 11 == 5:                                 # the same waybill again
            docs.append(waybill(f"{p}W-{i}"))
        if i % 9 == 4:                                  # corrected, in the same batch
            docs.append(order(f"{p}O-{i}", goods=goods, freight="0", app_type="2"))
    docs += [
        order(f"{p}PRE-1"),                             # filed before: refused
        order(f"{p}PRE-2", goods="90.00", freight="0", app_type="2"),   # re-filed
        order(f"{p}PRE-2", goods="95.00", freight="0", app_type="2"),   # and again
        payment(f"{p}PRE-2", txn=f"{p}PRE-T", amount="95.00"),
        order(f"{p}NEW-2", app_type="2"),              # appType 2 of a new key: filed
        order(f"{p}NEW-2"),                             # then refused as filed
        order(f"{p}BAD-1", goods="-1"),
        order(f"{p}BAD-2", currency=None),
        order(f"{p}BAD-3", ebc_code="9999999999"),
        order(f"{p}BAD-4", app_type="3"),
        order(f"{p}BAD-5" + "X" * 60),
        order(f"{p}BAD-6", lines=[dict(gnum=1, item_name="Lamp", price=Decimal(1),
                                       total_price=Decimal(1))]),          # no qty
        order(f"{p}BAD-7", lines=[dict(gnum=1, item_name="A", qty=Decimal(1),
                                       price=Decimal(50), total_price=Decimal(50)),
                                  dict(gnum=1, item_name="B", qty=Decimal(1),
                                       price=Decimal(50), total_price=Decimal(50))]),
        order(f"{p}BAD-8", goods="1.123456"),
        SimpleDocument("invoice", {"order_no": f"{p}X"}),
        SimpleDocument("order", {"order_no": f"{p}BAD-9"}, errors=["goodsValue: required"]),
        payment(f"{p}O-1", txn=f"{p}T-ANY", amount="0.00", ebp_code=None),   # any platform
        waybill(f"{p}W-ORD", order_no=f"{p}O-2"),       # names its order
        order(f"{p}IMP-1", direction="import", buyer_name="张三", consignee="张三"),
        payment(f"{p}IMP-1", txn=f"{p}IMP-T", direction="import", payer_name="张三"),
        waybill(f"{p}IMP-W", order_no=f"{p}IMP-1", consignee="张三", direction="import"),
    ]
    return docs


def prefile(p: str) -> None:
    services.ingest([order(f"{p}PRE-1"), order(f"{p}PRE-2")], actor=None,
                    source=DocumentSource.JSON)
    db.session.commit()


def outcome(results: list[dict], p: str) -> list[tuple]:
    """(kind, key without prefix or filer code, accepted, reason, version) per document."""
    return [(r["kind"], r["key"].replace(p, "").split(" / ")[-1], r["accepted"],
             (r["reason"] or "").replace(p, ""), r["version"]) for r in results]


def verdicts(p: str) -> dict[str, tuple]:
    rows = db.session.execute(
        select(Order.order_no, MatchVerdict.status, MatchVerdict.reasons)
        .join(MatchVerdict, MatchVerdict.order_id == Order.id)
        .where(Order.order_no.startswith(p))).all()
    return {no.replace(p, ""): (status, [(r["code"], r["message"].replace(p, ""))
                                         for r in json.loads(reasons)])
            for no, status, reasons in rows}


def counts(p: str) -> dict[str, int]:
    def count(query):
        return db.session.execute(query).scalar_one()
    orders = select(Order.id).where(Order.order_no.startswith(p))
    return {
        "orders": count(select(func.count()).select_from(orders.subquery())),
        "lines": count(select(func.count(OrderLine.id)).where(OrderLine.order_id.in_(orders))),
        "payments": count(select(func.count(Payment.id))
                          .where(Payment.pay_transaction_id.startswith(p))),
        "waybills": count(select(func.count(Waybill.id)).where(Waybill.logistics_no.startswith(p))),
        "inventories": count(select(func.count(Inventory.id))
                             .where(Inventory.cop_no.startswith(p))),
        "verdicts": count(select(func.count(MatchVerdict.id))
                          .where(MatchVerdict.order_id.in_(orders))),
        "versions": count(select(func.count(DocumentVersion.id)).where(
            DocumentVersion.kind == DocumentKind.ORDER, DocumentVersion.document_id.in_(orders))),
        "receivables": count(select(func.count(Receivable.id))
                             .where(Receivable.order_id.in_(orders))),
    }


def events() -> dict[str, int]:
    return dict(db.session.execute(
        select(AuditEvent.action, func.count()).group_by(AuditEvent.action)).all())


def file_as_one_batch(p: str) -> list[tuple]:
    batch = services.ingest(documents(p), actor=None, source=DocumentSource.JSON,
                            direction=Direction.EXPORT)
    db.session.commit()
    return outcome(json.loads(batch.results), p)


def file_one_at_a_time(p: str) -> list[tuple]:
    prefile(p)
    results: list[dict] = []
    for document in documents(p):
        batch = services.ingest([document], actor=None, source=DocumentSource.JSON,
                                direction=Direction.EXPORT)
        db.session.commit()
        results += json.loads(batch.results)
    return outcome(results, p)


@pytest.mark.parametrize("chunk, in_list", [(1000, 500), (7, 3)],
                         ids=["one chunk", "chunks of 7"])
def test_a_batch_gives_what_one_document_at_a_time_gives(app, monkeypatch, chunk, in_list):
    parties()
    monkeypatch.setattr(services, "CHUNK_SIZE", chunk)
    monkeypatch.setattr(services, "IN_LIST", in_list)
    prefile("A.")
    before = events()
    in_bulk = file_as_one_batch("A.")
    after = events()
    one_by_one = file_one_at_a_time("B.")

    assert in_bulk == one_by_one
    assert verdicts("A.") == verdicts("B.")
    assert counts("A.") == counts("B.")

    assert len(in_bulk) > 300
    assert "already filed" in dict((r[1], r[3]) for r in in_bulk if not r[2])["O-3"]
    assert "already filed" in dict((r[1], r[3]) for r in in_bulk if not r[2])["W-5"]
    assert [r[4] for r in in_bulk if r[1] == "O-4" and r[2]] == [1, 2]
    tail = in_bulk[-21:]                 # the documents after the trades, in order
    assert [(r[2], r[4]) for r in tail[:6]] == [
        (False, None), (True, 2), (True, 3), (True, 1), (True, 1), (False, None)]
    assert "already filed" in tail[0][3] and "already filed" in tail[5][3]
    reasons = [r[3] for r in tail[6:16]]
    assert "negative" in reasons[0] and "currency" in reasons[1]
    assert "9999999999 belongs to no filed organisation" in reasons[2]
    assert "appType 3" in reasons[3] and "at most 60 characters" in reasons[4]
    assert reasons[5] == "'qty'" and "already filed" in reasons[6]   # a repeated line
    assert "cannot be stored" in reasons[7] and reasons[8] == "Unknown document kind."
    assert reasons[9] == "goodsValue: required"
    assert all(r[2] for r in tail[16:])

    judged = verdicts("A.")
    assert judged["O-1"][0].value == "verified"
    assert judged["O-7"][0].value == "mismatch"            # paid 1.00
    assert judged["O-2"][0].value == "incomplete"          # its waybill never came
    assert judged["O-12"] == (judged["O-12"][0], [(
        "waybill_missing", "The inventory names waybill W-12, which has not been filed yet.")])
    assert judged["IMP-1"][0].value == "verified"
    n = counts("A.")
    assert n["orders"] == TRADES + 3 + 1 and n["verdicts"] == n["orders"]
    assert n["lines"] == n["orders"] and n["receivables"] > 0
    assert n["payments"] == TRADES + 3 and n["inventories"] == TRADES

    # One batch, one audit event for the filing, one for the verdicts (one organisation
    # files every order), one per receivable; no event per order.
    added = {action: after.get(action, 0) - before.get(action, 0) for action in after}
    assert added == {"trade.documents_filed": 1, "trade.verdicts_changed": 1,
                     "trade.receivable_created": n["receivables"]}
    assert "trade.verdict_changed" not in after
    assert verify_chain().ok


def test_the_per_document_path_gives_the_same(app, monkeypatch):
    """Every chunk's savepoint 'fails': the whole batch goes one document at a time."""
    parties()
    prefile("A.")
    in_bulk = file_as_one_batch("A.")
    monkeypatch.setattr(services, "_file_together", lambda pending, filing: None)
    prefile("C.")
    by_document = file_as_one_batch("C.")
    assert in_bulk == by_document
    assert verdicts("A.") == verdicts("C.")
    assert counts("A.") == counts("C.")


def test_a_failed_chunk_is_filed_again_document_by_document(app, monkeypatch):
    """A key filed by someone else between the existence check and the insert makes the
    chunk's insert fail; each document of the chunk then gets its own outcome."""
    parties()
    services.ingest([order("TAKEN")], actor=None, source=DocumentSource.JSON)
    db.session.commit()
    filed_keys = services._filed_keys
    monkeypatch.setattr(services, "_filed_keys", lambda pending: {
        key for key in filed_keys(pending) if key[1] != (EBP, "TAKEN")})
    one_by_one = []
    file_one = services._file_one
    monkeypatch.setattr(services, "_file_one",
                        lambda p, filing: one_by_one.append(p.key) or file_one(p, filing))

    docs = ([order(f"N-{i}") for i in range(12)] + [order("TAKEN"), order("N-3"),
            order("N-5", goods="-2"), payment("N-1"), inventory("N-1"), waybill("WB-1"),
            order("N-4", goods="104.00", freight="0", app_type="2")])
    batch = services.ingest(docs, actor=None, source=DocumentSource.JSON)
    db.session.commit()
    results = [(r["key"], r["accepted"], r["reason"], r["version"])
               for r in json.loads(batch.results)]

    assert len(one_by_one) == len(docs) - 1         # all but the negative amount
    assert results[:12] == [(f"{EBP} / N-{i}", True, None, 1) for i in range(12)]
    assert results[12][:2] == (f"{EBP} / TAKEN", False) and "already filed" in results[12][2]
    assert results[13][:2] == (f"{EBP} / N-3", False) and "already filed" in results[13][2]
    assert results[14][1] is False and "negative" in results[14][2]
    assert [r[1] for r in results[15:18]] == [True, True, True]
    assert results[18] == (f"{EBP} / N-4", True, None, 2)
    assert (batch.accepted, batch.rejected) == (16, 3)
    assert db.session.execute(select(func.count(Order.id))).scalar_one() == 13
    assert db.session.execute(select(func.count(OrderLine.id))).scalar_one() == 13
    assert db.session.execute(select(func.count(MatchVerdict.id))).scalar_one() == 13
    assert db.session.execute(select(MatchVerdict.status).join(Order).where(
        Order.order_no == "N-1")).scalar_one().value == "verified"
    assert verify_chain().ok


@pytest.mark.postgres
def test_a_concurrent_filer_between_check_and_insert(app, monkeypatch):
    """The real race: another transaction commits a key after this chunk checked it."""
    parties()
    filed_keys = services._filed_keys
    raced = []

    def then_someone_files_it(pending):
        found = filed_keys(pending)
        if not raced and any(p.key == f"{EBP} / RACE" for p in pending):
            raced.append(True)
            def other():
                with app.app_context():
                    services.ingest([order("RACE")], actor=None, source=DocumentSource.JSON)
                    db.session.commit()
            thread = threading.Thread(target=other)
            thread.start()
            thread.join()
        return found

    monkeypatch.setattr(services, "_filed_keys", then_someone_files_it)
    batch = services.ingest([order("A"), order("RACE"), order("B")], actor=None,
                            source=DocumentSource.JSON)
    db.session.commit()
    results = json.loads(batch.results)
    assert raced and [r["accepted"] for r in results] == [True, False, True]
    assert "already filed" in results[1]["reason"]
    assert db.session.execute(select(func.count(Order.id))).scalar_one() == 3
    assert db.session.execute(select(func.count(MatchVerdict.id))).scalar_one() == 3


@pytest.mark.postgres
def test_concurrent_batches_store_each_key_once(app, monkeypatch):
    """Four filers send overlapping batches at once: each key is stored once, every
    repeat is refused as already filed, nothing escapes, every order has one verdict.

    The filers check their keys together and only then insert, so their chunks collide
    for certain: all but one fall back to filing document by document."""
    parties()
    keys = 160
    checked = threading.Barrier(4, timeout=10)
    filed_keys, file_together = services._filed_keys, services._file_together
    fallbacks = []

    def filed_keys_together(pending):
        found = filed_keys(pending)
        try:
            checked.wait()
        except threading.BrokenBarrierError:
            pass
        return found

    def counting(pending, filing):
        result = file_together(pending, filing)
        if result is None:
            fallbacks.append(len(pending))
        return result

    monkeypatch.setattr(services, "_filed_keys", filed_keys_together)
    monkeypatch.setattr(services, "_file_together", counting)

    def trade(i: int) -> list[SimpleDocument]:
        return [order(f"K-{i}"), payment(f"K-{i}", txn=f"T-{i}"),
                inventory(f"K-{i}", cop=f"C-{i}", waybill=f"W-{i}"), waybill(f"W-{i}")]

    plans = []
    for t in range(4):
        numbers = [(t * 40 + k) % keys for k in range(100)]        # overlapping windows
        docs = [d for i in numbers for d in trade(i)]
        random.Random(t).shuffle(docs)
        plans.append([docs[:150], docs[150:300], docs[300:]])      # three batches each

    start = threading.Barrier(4)
    outcomes: list[dict] = []
    errors: list[BaseException] = []

    def filer(batches):
        try:
            with app.app_context():
                start.wait()
                for docs in batches:
                    batch = services.ingest(docs, actor=None, source=DocumentSource.JSON)
                    outcomes.extend(json.loads(batch.results))
                    db.session.commit()
        except BaseException as exc:   # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=filer, args=(plan,)) for plan in plans]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert fallbacks
    filed = {(r["kind"], r["key"]) for r in outcomes}
    accepted = [(r["kind"], r["key"]) for r in outcomes if r["accepted"]]
    assert sorted(accepted) == sorted(filed)       # each key accepted exactly once
    refused = [r["reason"] for r in outcomes if not r["accepted"]]
    assert len(refused) == len(outcomes) - len(filed) > 0
    assert all("already filed" in reason for reason in refused), set(refused)
    for model, key in ((Order, Order.order_no), (Payment, Payment.pay_transaction_id),
                       (Inventory, Inventory.cop_no), (Waybill, Waybill.logistics_no)):
        per_key = db.session.execute(select(key, func.count()).group_by(key)).all()
        assert per_key and all(n == 1 for _, n in per_key), model
    orders = db.session.execute(select(func.count(Order.id))).scalar_one()
    assert orders == len({k for kind, k in filed if kind == "order"})
    assert db.session.execute(select(func.count(MatchVerdict.id))).scalar_one() == orders
    assert db.session.execute(select(func.count(func.distinct(MatchVerdict.order_id)))
                              ).scalar_one() == orders
    assert verify_chain().ok
