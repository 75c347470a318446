"""Trade evidence in the browser: uploading, the verdict and its reasons, the documents side
by side, who sees what, and uploads that cannot be filed."""
from __future__ import annotations

import io
import re
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from finance_app.accounts.states import OrgKind, Role
from finance_app.extensions import db
from finance_app.trade import services
from finance_app.trade.models import IngestBatch, Order, OrderLine, Payment, Waybill
from finance_app.trade.states import Direction, DocumentSource
from tests.conftest import sign_in
from tests.factories import make_org_user
from tests.trade.builders import (
    EBP, LOGISTICS_CODE, PAY_CODE, SME_CODE, inventory, order, parties, payment, waybill,
)

ZH = {"Accept-Language": "zh-CN,zh;q=0.9"}
EN = {"Accept-Language": "en"}


# --------------------------------------------------------------------------- helpers

def csv_file(rows: list[dict]) -> bytes:
    header = list(rows[0])
    lines = [",".join(header)] + [",".join(str(row.get(h, "")) for h in header) for row in rows]
    return ("\n".join(lines) + "\n").encode()


ORDER_ROW = dict(order_no="ORD-1", ebp_code=EBP, ebp_name="Marketplace", ebc_code=SME_CODE,
                 trade_mode="9610", currency="USD", goods_value="100.00", freight="10.00",
                 buyer_name="Maria Silva", consignee="Maria Silva", consignee_country="BR",
                 app_time="2026-11-01 10:00:00", gnum="1", item_name="LED lamp", qty="4",
                 price="25", total_price="100.00")
PAYMENT_ROW = dict(order_no="ORD-1", ebp_code=EBP, ebc_code=SME_CODE, pay_code=PAY_CODE,
                   pay_transaction_id="TXN-1", payer_name="Maria Silva", amount="110.00",
                   currency="USD", pay_time="2026-11-01 11:00:00")
INVENTORY_ROW = dict(cop_no="COP-1", order_no="ORD-1", ebp_code=EBP, ebc_code=SME_CODE,
                     agent_code=SME_CODE, logistics_code=LOGISTICS_CODE, logistics_no="WB-1",
                     trade_mode="9610", country="BR", currency="USD",
                     declare_time="2026-11-02 09:00:00")
WAYBILL_ROW = dict(logistics_code=LOGISTICS_CODE, logistics_no="WB-1", consignee="Maria Silva",
                   freight="10.00", currency="USD")


def upload(client, filename: str, data: bytes, kind: str = "", direction: str = "export",
           headers=None):
    return client.post("/trade/upload", data={"file": (io.BytesIO(data), filename),
                                              "kind": kind, "direction": direction},
                       content_type="multipart/form-data", headers=headers or EN)


def text(response) -> str:
    return response.get_data(as_text=True)


def results(response) -> list[tuple[str, str]]:
    """(accepted yes/no, reason) per row of the result table."""
    rows = re.findall(r'<tr data-accepted="(yes|no)">(.*?)</tr>', text(response), re.S)
    return [(flag, re.sub(r"<[^>]+>", " ", body)) for flag, body in rows]


def flagged(page: str) -> set[tuple[str, str]]:
    """(row, document kind) of every cell marked as disagreeing."""
    found = set()
    for row, body in re.findall(r'<tr data-row="([a-z_]+)">(.*?)</tr>', page, re.S):
        for kind in re.findall(r'<td data-kind="([a-z]+)" class="flagged">', body):
            found.add((row, kind))
    return found


def count(model) -> int:
    db.session.expire_all()
    return db.session.execute(select(func.count()).select_from(model)).scalar_one()


def order_id(order_no: str = "ORD-1") -> int:
    return db.session.execute(select(Order.id).where(Order.order_no == order_no)).scalar_one()


def file(docs, actor, direction=Direction.EXPORT):
    services.ingest(docs, actor=actor, source=DocumentSource.JSON, direction=direction)
    db.session.commit()


@pytest.fixture
def trade(app, make_client):
    sme, logistics, payer = parties()
    clients = {}
    for name, user in (("sme", sme), ("logistics", logistics), ("payer", payer)):
        clients[name] = make_client()
        sign_in(clients[name], user)
    return sme, logistics, payer, clients


# --------------------------------------------------------------------------- the happy path

def test_a_trade_filed_by_csv_is_verified_and_the_sme_sees_it(trade):
    sme, logistics, payer, c = trade
    page = upload(c["sme"], "orders.csv", csv_file([ORDER_ROW]), "order")
    assert page.status_code == 200, text(page)[:3000]
    assert results(page)[0][0] == "yes"
    assert "1 accepted, 0 rejected." in text(page)
    assert upload(c["payer"], "payments.csv", csv_file([PAYMENT_ROW]), "payment").status_code \
        == 200
    assert upload(c["sme"], "inventories.csv", csv_file([INVENTORY_ROW]), "inventory") \
        .status_code == 200
    page = c["sme"].get("/trade/orders", headers=EN)
    assert 'data-verdict="incomplete"' in text(page) and "Waybill missing" in text(page)

    assert upload(c["logistics"], "waybills.csv", csv_file([WAYBILL_ROW]), "waybill") \
        .status_code == 200
    listing = text(c["sme"].get("/trade/orders", headers=EN))
    assert 'data-order="ORD-1"' in listing and 'data-verdict="verified"' in listing
    detail = c["sme"].get(f"/trade/orders/{order_id()}", headers=EN)
    assert detail.status_code == 200
    page = text(detail)
    assert "agree" in page and flagged(page) == set()
    # every document side by side, and each one's history
    for kind in ("order", "payment", "inventory", "waybill"):
        assert f'<th scope="col" data-kind="{kind}"' in page
        assert f'id="history-{kind}-' in page
    assert "US$" not in page and "$110.00" in page  # money in the page's locale
    # the upload is on record for the SME, with its outcome
    batches = text(c["sme"].get("/trade/batches", headers=EN))
    assert "orders.csv" in batches and "inventories.csv" in batches
    assert "payments.csv" not in batches and "waybills.csv" not in batches


def test_a_mismatch_is_explained_and_its_cells_are_highlighted(trade):
    sme, logistics, payer, c = trade
    upload(c["sme"], "orders.csv", csv_file([ORDER_ROW]), "order")
    upload(c["payer"], "p.csv", csv_file([{**PAYMENT_ROW, "amount": "105.00"}]), "payment")
    upload(c["sme"], "i.csv", csv_file([INVENTORY_ROW]), "inventory")
    upload(c["logistics"], "w.csv", csv_file([WAYBILL_ROW]), "waybill")

    listing = text(c["sme"].get("/trade/orders?verdict=mismatch", headers=EN))
    assert 'data-verdict="mismatch"' in listing and "Payment amount" in listing
    page = text(c["sme"].get(f"/trade/orders/{order_id()}", headers=EN))
    assert flagged(page) == {("amount", "order"), ("amount", "payment")}
    assert 'data-reason="payment_amount_mismatch"' in page
    assert "105.00" in page and "110.00" in page  # matching's sentence names both amounts

    chinese = text(c["sme"].get(f"/trade/orders/{order_id()}", headers=ZH))
    assert "不一致" in chinese and "支付金额与订单应付金额不一致" in chinese
    assert "三单对碰" in chinese and "运单" in chinese


def test_import_payer_and_consignee_mismatches_highlight_their_cells(trade):
    sme, logistics, payer, c = trade
    valid = "11010519491231002X"
    file([order(buyer_id_type="1", buyer_id_number=valid, buyer_name="张三", consignee="张三")],
         sme, Direction.IMPORT)
    file([payment(payer_name="李四", payer_id_type="1", payer_id_number=valid)], payer,
         Direction.IMPORT)
    file([waybill(order_no="ORD-1", consignee="王五")], logistics, Direction.IMPORT)
    page = text(c["sme"].get(f"/trade/orders/{order_id()}", headers=EN))
    # the payer's ID number is the buyer's: only the names disagree
    assert flagged(page) == {("buyer", "order"), ("buyer", "payment"), ("consignee", "order"),
                             ("consignee", "waybill")}
    # the waybill is shown to the SME as evidence for its order, though logistics filed it
    assert "王五" in page
    assert valid not in page and "110" in page  # personal ID numbers are masked


def test_a_line_total_mismatch_marks_the_line(trade):
    sme, logistics, payer, c = trade
    bad = [dict(gnum=1, item_name="Lamp", qty=Decimal(3), price=Decimal(20),
                total_price=Decimal(100)),
           dict(gnum=2, item_name="Cable", qty=Decimal(2), price=Decimal(5),
                total_price=Decimal(10))]
    file([order(lines=bad)], sme)
    page = text(c["sme"].get(f"/trade/orders/{order_id()}", headers=EN))
    assert re.search(r'<tr class="flagged" data-line="1">', page)
    assert re.search(r'<tr class="" data-line="2">', page)


def test_version_history_shows_what_a_correction_changed(trade):
    sme, logistics, payer, c = trade
    file([order()], sme)
    file([order(goods="120.00", app_type="2",
                lines=[dict(gnum=1, item_name="Lamp", qty=Decimal(4), price=Decimal(30),
                            total_price=Decimal(120))])], sme)
    page = text(c["sme"].get(f"/trade/orders/{order_id()}", headers=EN))
    history = page[page.index('id="history-order-'):]
    assert 'data-version="2"' in history and 'data-version="1"' in history
    assert "<code>goods_value</code>: 100.00000 → 120.00000" in history
    assert "First filed" in history


def test_an_xml_message_is_filed_with_each_document_judged(trade):
    sme, logistics, payer, c = trade
    xml = ceb_message("CEB303", [ceb_order("ORD-1"), ceb_order("ORD-2", goodsValue="1.123456")])
    page = upload(c["sme"], "CEB303_orders.xml", xml)
    assert page.status_code == 200, text(page)[:3000]
    outcome = results(page)
    assert [flag for flag, _ in outcome] == ["yes", "no"]
    assert "goodsValue" in outcome[1][1]  # the reason names the element
    assert "CEB303" in text(page)
    assert count(Order) == 1
    stored = db.session.execute(select(Order)).scalar_one()
    assert stored.goods_value == Decimal("100.00") and stored.currency == "USD"
    # a verdict the SME can read, in Chinese too
    page = text(c["sme"].get("/trade/orders", headers=ZH))
    assert "待补充" in page and "支付单缺失" in page


# --------------------------------------------------------------------------- who sees what

def test_logistics_sees_only_its_own_waybills_and_no_orders(app, make_client):
    sme, logistics, payer = parties()
    other = make_org_user(OrgKind.LOGISTICS, customs_code="4404980099")
    file([order(), inventory()], sme)
    file([waybill("WB-1")], logistics)
    file([waybill("WB-OTHER", logistics_code="4404980099", consignee="Someone Else")], other)
    page = make_client()
    sign_in(page, logistics)
    listing = page.get("/trade/documents", headers=EN)
    assert listing.status_code == 200
    body = text(listing)
    assert 'data-document="WB-1"' in body and "WB-OTHER" not in body and "Someone Else" not in body
    assert "Maria Silva" in body
    assert page.get("/trade/documents?kind=payment").status_code == 200
    assert "TXN-1" not in text(page.get("/trade/documents?kind=payment"))
    assert page.get("/trade/orders").status_code == 403
    assert page.get(f"/trade/orders/{order_id()}").status_code == 403
    other_batch = db.session.execute(select(IngestBatch.id).where(
        IngestBatch.org_id == other.org_id)).scalar_one()
    assert page.get(f"/trade/batches/{other_batch}").status_code == 404


def test_the_operator_sees_every_order_mismatches_first(app, make_client):
    sme, logistics, payer = parties()
    operator = make_org_user(OrgKind.PLATFORM_OPERATOR, roles=(Role.OFFICER,))
    # the mismatched order is the oldest, the incomplete one the newest
    file([order("OLD-MISMATCH", app_time=order().fields["app_time"].replace(day=1))], sme)
    file([payment("OLD-MISMATCH", amount="1.00")], payer)
    file([order("VERIFIED", app_time=order().fields["app_time"].replace(day=5)),
          inventory("VERIFIED", waybill="WB-9", cop="COP-9")], sme)
    file([payment("VERIFIED", txn="TXN-9"), waybill("WB-9")], None)
    file([order("NEWEST", app_time=order().fields["app_time"].replace(day=9))], sme)
    page = make_client()
    sign_in(page, operator)
    body = text(page.get("/trade/orders", headers=EN))
    assert re.findall(r'data-order="([^"]+)"', body) == ["OLD-MISMATCH", "NEWEST", "VERIFIED"]
    sme_page = make_client()
    sign_in(sme_page, sme)
    body = text(sme_page.get("/trade/orders", headers=EN))
    assert re.findall(r'data-order="([^"]+)"', body) == ["NEWEST", "VERIFIED", "OLD-MISMATCH"]
    # the operator opens any order
    assert page.get(f"/trade/orders/{order_id('OLD-MISMATCH')}").status_code == 200


def test_filters_narrow_the_list(trade):
    sme, logistics, payer, c = trade
    file([order("A-1", buyer_name="Lisboa Imports Lda", trade_mode="9710"),
          order("B-2", buyer_name="Maria Silva")], sme)
    file([order("I-3", buyer_name="张三", consignee="张三")], sme, Direction.IMPORT)

    def listed(query: str) -> list[str]:
        return re.findall(r'data-order="([^"]+)"', text(c["sme"].get("/trade/orders" + query)))
    assert sorted(listed("")) == ["A-1", "B-2", "I-3"]
    assert listed("?counterparty=lisboa") == ["A-1"]
    assert listed("?counterparty=PLATFORM") != []  # the platform's code matches too
    assert listed("?trade_mode=9710") == ["A-1"]
    assert listed("?direction=import") == ["I-3"]
    assert listed("?date_from=2026-11-02") == []
    assert sorted(listed("?date_from=2026-11-01&date_to=2026-11-01")) == ["A-1", "B-2", "I-3"]
    assert listed("?verdict=verified") == []
    assert listed("?date_from=nonsense&counterparty=%25") == []  # ignored / escaped, no error


def test_another_sme_gets_404_for_the_order(trade, make_client):
    sme, logistics, payer, c = trade
    file([order(), payment()], None)
    stranger = make_org_user(OrgKind.SME, customs_code="4419930002")
    page = make_client()
    sign_in(page, stranger)
    for path in (f"/trade/orders/{order_id()}", "/trade/orders/987654"):
        response = page.get(path, headers=EN)
        assert response.status_code == 404
        assert "ORD-1" not in text(response) and "Maria" not in text(response)
    assert re.search(r'data-code="not_found">(.*?)<', text(page.get(
        f"/trade/orders/{order_id()}", headers=EN))).group(1) == re.search(
        r'data-code="not_found">(.*?)<', text(page.get("/trade/orders/987654",
                                                       headers=EN))).group(1)
    assert "ORD-1" not in text(page.get("/trade/orders"))
    assert "TXN-1" not in text(page.get("/trade/documents?kind=payment"))
    batch = db.session.execute(select(IngestBatch.id)).scalars().first()
    assert page.get(f"/trade/batches/{batch}").status_code == 404
    # banks see nothing here yet
    bank = make_org_user(OrgKind.BANK)
    bank_page = make_client()
    sign_in(bank_page, bank)
    assert bank_page.get("/trade/orders").status_code == 403
    assert bank_page.get("/trade/documents").status_code == 403


def test_an_sme_sees_payment_slips_that_name_it(trade):
    sme, logistics, payer, c = trade
    file([payment()], payer)
    body = text(c["sme"].get("/trade/documents?kind=payment", headers=EN))
    assert 'data-document="TXN-1"' in body
    assert 'data-document="TXN-1"' in text(c["payer"].get("/trade/documents?kind=payment"))


# --------------------------------------------------------------------------- bad uploads

BOMB = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
        b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
        b'<ceb:CEB303Message xmlns:ceb="http://www.chinaport.gov.cn/ceb">&lol3;'
        b'</ceb:CEB303Message>')


@pytest.mark.parametrize("filename, data, kind, expected", [
    ("notes.txt", b"these are not the documents you are looking for", "", "notes.txt is not a CEB"),
    ("bomb.xml", BOMB, "", "bomb.xml is not a CEB message we can file: The file contains a "
                           "DOCTYPE"),
    ("broken.xml", b"<ceb:CEB303Message><unclosed>", "", "broken.xml is not a CEB message"),
    ("garbage.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "order", "garbage.csv is not a "
                                                                       "text file"),
    ("columns.csv", b"colour,flavour\nred,sweet\n", "order", "columns.csv: Unknown columns "
                                                             "for a order: colour, flavour"),
    ("empty.csv", b"", "order", "empty.csv is empty"),
    ("huge.xml", b"<" + b" " * (20 * 1024 * 1024), "", "huge.xml is 20.0 MB; a file may be at "
                                                       "most 20 MB"),
])
def test_bad_uploads_say_why_and_store_nothing(trade, filename, data, kind, expected):
    sme, logistics, payer, c = trade
    response = upload(c["sme"], filename, data, kind)
    assert response.status_code == 422
    errors = re.findall(r'<p class="error" data-field="file">(.*?)</p>', text(response), re.S)
    assert errors and expected in errors[0].replace("&#39;", "'"), errors
    assert count(IngestBatch) == 0 and count(Order) == 0


def test_an_upload_beyond_the_request_limit_is_refused_on_the_form(trade):
    sme, logistics, payer, c = trade
    response = upload(c["sme"], "enormous.xml", b"<" * (21 * 1024 * 1024))
    assert response.status_code == 413
    assert "larger than 20 MB; nothing was stored" in text(response)
    assert 'id="upload-form"' in text(response)
    assert count(IngestBatch) == 0


def test_an_upload_with_nothing_accepted_is_422_and_stores_nothing(trade):
    sme, logistics, payer, c = trade
    rows = [{**ORDER_ROW, "currency": "XYZ"}, {**ORDER_ROW, "order_no": "ORD-2", "ebc_code":
                                                "9999999999"}]
    response = upload(c["sme"], "orders.csv", csv_file(rows), "order")
    assert response.status_code == 422
    outcome = results(response)
    assert [flag for flag, _ in outcome] == ["no", "no"]
    assert "currency" in outcome[0][1] and "9999999999" in outcome[1][1]
    assert "nothing was stored" in text(response)
    assert count(IngestBatch) == 0 and count(Order) == 0


def test_an_upload_needs_a_file_and_a_kind_the_organisation_files(trade):
    sme, logistics, payer, c = trade
    response = c["sme"].post("/trade/upload", data={"kind": "order"}, headers=EN)
    assert response.status_code == 422 and "Choose a file" in text(response)
    response = upload(c["logistics"], "orders.csv", csv_file([ORDER_ROW]), "order")
    assert response.status_code == 422
    assert "does not file this kind of document" in text(response)
    page = text(c["logistics"].get("/trade/upload", headers=EN))
    assert 'value="waybill"' in page and 'value="order"' not in page


# --------------------------------------------------------------------------- one document

def test_an_sme_files_an_order_on_the_web_form(trade):
    sme, logistics, payer, c = trade
    form = text(c["sme"].get("/trade/new?kind=order", headers=EN))
    assert f'value="{SME_CODE}"' in form  # the filer's code is filled in
    data = {"app_type": "1", "direction": "export", "order_no": "WEB-1", "ebp_code": EBP,
            "ebc_code": SME_CODE, "trade_mode": "9610", "currency": "usd",
            "goods_value": "0.3", "freight": "0.10000", "buyer_name": "Ana", "buyer_country": "PT",
            "lines-0-item_name": "Pin", "lines-0-qty": "3", "lines-0-price": "0.1",
            "lines-0-total_price": "0.3", "lines-2-item_name": "", "order_date": "2026-11-03"}
    response = c["sme"].post("/trade/new?kind=order", data=data, headers=EN)
    assert response.status_code == 302, text(response)[:3000]
    stored = db.session.execute(select(Order).where(Order.order_no == "WEB-1")).scalar_one()
    assert response.headers["Location"].endswith(f"/trade/orders/{stored.id}")
    assert (stored.goods_value, stored.freight, stored.currency) == (
        Decimal("0.3"), Decimal("0.1"), "USD")
    assert stored.payable == Decimal("0.4")  # exact: no float ever touched it
    assert [(l.qty, l.price, l.total_price) for l in stored.lines] == [
        (Decimal(3), Decimal("0.1"), Decimal("0.3"))]
    assert stored.source is DocumentSource.FORM and stored.app_time is not None


@pytest.mark.parametrize("field, value, message", [
    ("goods_value", "1e5", "Enter an amount such as 1234.50"),
    ("goods_value", "12.345678", "Enter an amount such as 1234.50"),
    ("goods_value", "-3", "Enter an amount such as 1234.50"),
    ("currency", "ABC", "ISO 4217"),
    ("order_no", "x" * 61, "60"),
    ("lines-0-qty", "", "leave the whole line empty"),
])
def test_the_order_form_refuses_bad_values(trade, field, value, message):
    sme, logistics, payer, c = trade
    data = {"app_type": "1", "direction": "export", "order_no": "WEB-1", "ebp_code": EBP,
            "ebc_code": SME_CODE, "trade_mode": "9610", "currency": "USD",
            "goods_value": "100", "lines-0-item_name": "Pin", "lines-0-qty": "1",
            "lines-0-price": "100", "lines-0-total_price": "100", field: value}
    response = c["sme"].post("/trade/new?kind=order", data=data, headers=EN)
    assert response.status_code == 422
    assert message in text(response)
    assert count(Order) == 0 and count(OrderLine) == 0


def test_a_rejected_form_document_says_why(trade):
    sme, logistics, payer, c = trade
    file([order()], sme)
    data = {"app_type": "1", "direction": "export", "order_no": "ORD-1", "ebp_code": EBP,
            "ebc_code": SME_CODE, "trade_mode": "9610", "currency": "USD",
            "goods_value": "100"}
    response = c["sme"].post("/trade/new?kind=order", data=data, headers=EN)
    assert response.status_code == 422
    assert "already filed" in text(response)


def test_logistics_files_a_waybill_on_the_web_form(trade):
    sme, logistics, payer, c = trade
    page = text(c["logistics"].get("/trade/new?kind=order", headers=EN))
    assert 'name="logistics_no"' in page and 'name="goods_value"' not in page  # waybills only
    data = {"app_type": "1", "direction": "export", "logistics_code": LOGISTICS_CODE,
            "logistics_no": "WB-77", "freight": "12.50", "currency": "EUR",
            "shipped_at": "2026-11-03T08:30"}
    response = c["logistics"].post("/trade/new?kind=waybill", data=data, headers=EN)
    assert response.status_code == 302, text(response)[:2000]
    stored = db.session.execute(select(Waybill)).scalar_one()
    assert stored.freight == Decimal("12.50") and stored.filer_org_id == logistics.org_id
    assert stored.shipped_at.hour == 0 and stored.shipped_at.minute == 30  # 08:30 CST is UTC
    assert 'data-document="WB-77"' in text(c["logistics"].get("/trade/documents"))


def test_a_payment_institution_files_a_payment_slip(trade):
    sme, logistics, payer, c = trade
    data = {"app_type": "1", "direction": "export", "order_no": "ORD-1", "ebp_code": EBP,
            "ebc_code": SME_CODE, "pay_code": PAY_CODE, "pay_transaction_id": "TXN-5",
            "amount": "110.00", "currency": "USD"}
    response = c["payer"].post("/trade/new?kind=payment", data=data, headers=EN)
    assert response.status_code == 302, text(response)[:2000]
    assert count(Payment) == 1


# --------------------------------------------------------------------------- CEB XML

NS = 'xmlns:ceb="http://www.chinaport.gov.cn/ceb"'
GUID = "4CDE1CFD-EDED-46B1-946C-B8022E42FC94"
BASE_TRANSFER = (f"<ceb:BaseTransfer><ceb:copCode>{SME_CODE}</ceb:copCode><ceb:copName>Zhuhai "
                 "Coastline</ceb:copName><ceb:dxpMode>DXP</ceb:dxpMode><ceb:dxpId>"
                 "DXPENT0000000001</ceb:dxpId></ceb:BaseTransfer>")


def _element(tag: str, fields: dict, children: str = "") -> str:
    inner = "".join(f"<ceb:{k}>{v}</ceb:{k}>" for k, v in fields.items() if v is not None)
    return f"<ceb:{tag}>{inner}{children}</ceb:{tag}>"


def ceb_message(message_type: str, documents: list[str]) -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?><ceb:{message_type}Message guid="{GUID}" '
            f'version="1.0" {NS}>{"".join(documents)}{BASE_TRANSFER}</ceb:{message_type}Message>'
            ).encode()


def ceb_order(order_no: str, **changes) -> str:
    head = dict(guid=GUID, appType="1", appTime="20261101180000", appStatus="2",
                orderType="E", orderNo=order_no, ebpCode=EBP, ebpName="Marketplace",
                ebcCode=SME_CODE, ebcName="Zhuhai Coastline", goodsValue="100.00",
                freight="10.00", currency="502")
    head.update(changes)
    item = dict(gnum="1", itemNo="A1", itemName="LED lamp", unit="011", currency="502",
                qty="4", price="25", totalPrice="100.00")
    return _element("Order", {}, _element("OrderHead", head) + _element("OrderList", item))


def test_uploads_keep_csrf_protection_and_the_size_limit(app, trade):
    sme, logistics, payer, c = trade
    app.config["WTF_CSRF_ENABLED"] = True
    try:
        refused = upload(c["sme"], "orders.csv", csv_file([ORDER_ROW]), "order")
        assert refused.status_code == 400 and count(Order) == 0
        page = text(c["sme"].get("/trade/upload"))
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
        response = c["sme"].post("/trade/upload", data={
            "file": (io.BytesIO(csv_file([ORDER_ROW])), "orders.csv"), "kind": "order",
            "direction": "export", "csrf_token": token}, content_type="multipart/form-data")
        assert response.status_code == 200 and count(Order) == 1
        # a body beyond the limit is refused before the token is even read, on the form
        response = upload(c["sme"], "enormous.xml", b"<" * (21 * 1024 * 1024))
        assert response.status_code == 413
        assert "larger than 20 MB; nothing was stored" in text(response)
    finally:
        app.config["WTF_CSRF_ENABLED"] = False


# --------------------------------------------------------------------------- receivables

def test_the_sme_sees_its_receivables_with_what_is_still_owed(trade, make_client):
    sme, logistics, payer, c = trade
    file([order(trade_mode="9710", order_type="B", payment_term_days=60,
                goods="1000.00", freight="0", buyer_name="Lisboa Imports Lda"),
          inventory(trade_mode="9710")], sme)
    file([waybill()], logistics)
    file([payment(amount="250.00")], payer)
    page = text(c["sme"].get("/trade/receivables", headers=EN))
    row = re.search(r'<tr data-order="ORD-1">(.*?)</tr>', page, re.S).group(1)
    assert "Lisboa Imports Lda" in row and "$1,000.00" in row and "$750.00" in row
    assert "Open" in row and "Dec 31, 2026" in row
    # filtered to settled: nothing; in Chinese: translated
    assert 'data-order="ORD-1"' not in text(c["sme"].get("/trade/receivables?status=settled",
                                                         headers=EN))
    assert "应收账款" in text(c["sme"].get("/trade/receivables", headers=ZH))
    # another SME sees none of it; the operator sees it with the seller's name
    other = make_client()
    sign_in(other, make_org_user(OrgKind.SME))
    assert 'data-order="ORD-1"' not in text(other.get("/trade/receivables", headers=EN))
    operator = make_client()
    sign_in(operator, make_org_user(OrgKind.PLATFORM_OPERATOR, roles=(Role.OFFICER,)))
    listing = text(operator.get("/trade/receivables", headers=EN))
    assert 'data-order="ORD-1"' in listing and sme.organisation.name in listing
    # a status that does not exist lists everything rather than failing
    assert c["sme"].get("/trade/receivables?status=maybe&page=x").status_code == 200
