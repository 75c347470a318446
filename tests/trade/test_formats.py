"""CSV and JSON documents: file-level errors refuse the file, row errors reject the row."""
from __future__ import annotations

import json
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from finance_app.extensions import db
from finance_app.trade import formats, services
from finance_app.trade.models import Order, OrderLine
from finance_app.trade.states import DocumentSource
from tests.trade.builders import EBP, SME_CODE, parties

ORDERS_CSV = (
    "order_no,ebp_code,ebc_code,trade_mode,currency,goods_value,freight,buyer_name,"
    "consignee_country,app_time,gnum,item_name,qty,price,total_price\n"
    f"CSV-1,{EBP},{SME_CODE},9610,USD,30.00,5,Ana Costa,PT,2026-11-02 10:00:00,1,Mug,2,10.00,20.00\n"
    f"CSV-1,{EBP},{SME_CODE},9610,USD,30.00,5,Ana Costa,PT,2026-11-02 10:00:00,2,Plate,1,10.00,10.00\n"
    f"CSV-2,{EBP},{SME_CODE},9610,502,12.345678,0,Ana Costa,304,20261102,1,Cup,1,1,1\n"
    f"CSV-3,{EBP},{SME_CODE},9610,USD,-4,0,Ana Costa,PT,,1,Cup,1,1,1\n"
    f"CSV-4,{EBP},{SME_CODE},9610,USD,7.00,0,Ana Costa,PT,,1,Cup,7,1,7\n"
)


def test_csv_rows_become_orders_with_lines_and_bad_rows_are_rejected_alone(app):
    sme, _, _ = parties()
    docs = formats.documents_from_csv("order", ORDERS_CSV, direction="export")
    assert [d.fields["order_no"] for d in docs] == ["CSV-1", "CSV-2", "CSV-3", "CSV-4"]
    assert len(docs[0].lines) == 2 and docs[0].fields["goods_value"] == Decimal("30.00")
    assert any("at most 5 decimal places" in e for e in docs[1].errors)
    assert any("negative" in e for e in docs[2].errors)
    batch = services.ingest(docs, actor=sme, source=DocumentSource.CSV)
    db.session.commit()
    outcome = json.loads(batch.results)
    assert [r["accepted"] for r in outcome] == [True, False, False, True]
    assert db.session.execute(select(func.count(OrderLine.id))).scalar_one() == 3


@pytest.mark.parametrize("text, words", [
    ("", "empty"),
    ("order_no,colour\nX,red\n", "Unknown columns"),
])
def test_unusable_csv_refuses_the_file(text, words):
    with pytest.raises(formats.FormatError) as caught:
        formats.documents_from_csv("order", text)
    assert words in caught.value.message and caught.value.field == "file"


def test_unknown_kind_is_named():
    with pytest.raises(formats.FormatError) as caught:
        formats.documents_from_csv("invoice", "a\n1\n")
    assert caught.value.field == "kind"


def test_json_documents_floats_refused_and_fields_checked(app):
    sme, _, _ = parties()
    payload = {"kind": "order", "direction": "export", "documents": [
        {"order_no": "J-1", "ebp_code": EBP, "ebc_code": SME_CODE, "currency": "EUR",
         "goods_value": "50.00", "lines": [{"item_name": "Tea", "qty": "5", "price": "10",
                                            "total_price": "50"}]},
        {"order_no": "J-2", "ebp_code": EBP, "ebc_code": SME_CODE, "currency": "EUR",
         "goods_value": 50.5},
        {"order_no": "J-3", "ebp_code": EBP, "ebc_code": SME_CODE, "currency": "XYZ",
         "goods_value": "1", "colour": "red"},
        "not an object",
    ]}
    docs = formats.documents_from_json(payload)
    assert docs[0].errors == []
    assert any("not floating-point" in e for e in docs[1].errors)
    assert any("not a known currency" in e for e in docs[2].errors)
    assert any("colour" in e for e in docs[2].errors)
    assert docs[3].errors
    batch = services.ingest(docs, actor=sme, source=DocumentSource.JSON)
    db.session.commit()
    assert [r["accepted"] for r in json.loads(batch.results)] == [True, False, False, False]
    order = db.session.execute(select(Order)).scalar_one()
    assert order.currency == "EUR" and order.extra is None


@pytest.mark.parametrize("payload, field", [
    ([], None), ({"kind": "order"}, "documents"), ({"kind": "x", "documents": [{}]}, "kind"),
])
def test_json_file_level_errors(payload, field):
    with pytest.raises(formats.FormatError) as caught:
        formats.documents_from_json(payload)
    assert caught.value.field == field


def test_times_are_beijing_time_unless_they_carry_an_offset():
    from datetime import datetime
    assert formats.convert("app_time", "2026-11-02 10:00:00") == datetime(2026, 11, 2, 2, 0)
    assert formats.convert("app_time", "20261102100000") == datetime(2026, 11, 2, 2, 0)
    assert formats.convert("app_time", "2026-11-02T10:00:00+01:00") == datetime(2026, 11, 2, 9, 0)
    assert str(formats.convert("order_date", "2026-11-02")) == "2026-11-02"
