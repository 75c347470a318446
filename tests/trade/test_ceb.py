"""Reading customs CEB messages: the official samples, then hostile and broken input.

No database and no app: ``parse_message`` is pure. The official samples live outside the
project (read from ``../shared`` here, never by the app); the other tests build their
messages inline.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from lxml import etree

from finance_app.trade import ceb
from finance_app.trade.ceb import CebFileError, ParsedMessage, parse_message

CEB_DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "ceb"
needs_samples = pytest.mark.skipif(not CEB_DATA.is_dir(), reason="customs samples not present")

FILED = {"CEB303", "CEB403", "CEB505", "CEB603", "CEB311", "CEB411", "CEB511", "CEB621"}
BASE_TRANSFER_TWICE = ("Envelope: BaseTransfer 2 is not allowed here (expected one of "
                       "BaseSubscribe, Signature, ExtendMessage)")


def sample(relative: str) -> bytes:
    return (CEB_DATA / relative).read_bytes()


def read(relative: str) -> ParsedMessage:
    return parse_message(sample(relative))


def outcome(message: ParsedMessage) -> dict[int, list[str]]:
    return {d.index: d.errors for d in message.documents}


# --------------------------------------------------------------------------- samples

# (sample, direction, documents, errors every document carries, message warnings)
SAMPLES = [
    ("samples_202205/export/CEB303Message.xml", "export", 10,
     ["currency (OrderList 1): 'aaa' is neither a customs currency code nor an ISO 4217 "
      "currency code"], [BASE_TRANSFER_TWICE]),
    ("samples_202205/export/CEB403Message.xml", "export", 10, [], [BASE_TRANSFER_TWICE]),
    ("samples_202205/export/CEB505Message.xml", "export", 10, [], [BASE_TRANSFER_TWICE]),
    ("samples_202205/export/CEB603Message.xml", "export", 10,
     ["country: '001' is neither a customs country code nor an ISO 3166 country code",
      "ieFlag: must be E in an export inventory, not 'a'"], [BASE_TRANSFER_TWICE]),
    ("samples_202205/import/CEB311Message.xml", "import", 6, [], []),
    ("samples_202205/import/CEB411Message.xml", "import", 10, [], []),
    ("samples_202205/import/CEB511Message.xml", "import", 6, [], []),
    ("samples_202205/import/CEB621Message.xml", "import", 10, [], []),
    ("samples_2018_113/import/CEB311Message.xml", "import", 6, [], []),
    ("samples_2018_113/import/CEB411Message.xml", "import", 10, [], []),
    ("samples_2018_113/import/CEB511Message.xml", "import", 6, [], []),
    ("samples_2018_113/import/CEB621Message.xml", "import", 10, [], []),
]


@needs_samples
@pytest.mark.parametrize("relative, direction, count, errors, warnings", SAMPLES,
                         ids=[s[0].replace("samples_", "").replace("Message.xml", "")
                              for s in SAMPLES])
def test_every_filed_sample(relative, direction, count, errors, warnings):
    message = read(relative)
    assert message.message_type == Path(relative).name[:6]
    assert message.direction == direction
    assert message.schema_version == "202205"   # the 2018 samples validate under 202205 too
    assert message.warnings == warnings
    assert outcome(message) == {i: errors for i in range(1, count + 1)}
    assert [d.index for d in message.documents] == list(range(1, count + 1))
    assert all(d.app_type == "1" for d in message.documents)


@needs_samples
def test_every_filed_sample_is_covered():
    on_disk = {str(p.relative_to(CEB_DATA)) for p in CEB_DATA.glob("samples_*/*/*.xml")
               if p.name[:6] in FILED}
    assert on_disk == {s[0] for s in SAMPLES}


UNFILED = sorted(str(p.relative_to(CEB_DATA)) for p in CEB_DATA.glob("samples_*/*/*.xml")
                 if p.name[:6] not in FILED) if CEB_DATA.is_dir() else []


@needs_samples
@pytest.mark.parametrize("relative", UNFILED)
def test_samples_of_other_types_are_refused(relative):
    with pytest.raises(CebFileError, match=rf"Message type {Path(relative).name[:6]} is not "
                                           "filed on this platform"):
        read(relative)


@needs_samples
def test_there_are_unfiled_samples():
    assert len(UNFILED) == 43   # receipts, returns, arrivals, departures, summaries, ...


@needs_samples
def test_export_order_sample():
    message = read("samples_202205/export/CEB303Message.xml")
    assert (message.message_guid, message.sender_code) == (
        "311af125-6fed-4603-8c5d-49b1fa4b4b9b", "1105910159")
    order = message.documents[0]
    assert order.kind == "order" and order.guid == "704ea0f1-b229-4e89-9f2f-c2e550e95c86"
    f = order.fields
    assert f["order_no"] == "order2018050711340001" and f["order_type"] == "E"
    assert f["goods_value"] == Decimal("12345678912345.12345")
    assert str(f["goods_value"]) == "12345678912345.12345"      # every digit, no float
    assert f["freight"] == Decimal("0") and isinstance(f["freight"], Decimal)
    assert f["currency"] == "CNY"                                 # customs 142
    assert f["ebp_code"] == f["ebc_code"] == "1105910159"
    assert f["ebc_name"] == "东方物通科技(北京)有限公司"
    assert f["app_time"] == datetime(2018, 5, 7, 7, 30, 1)        # 15:30:01 in Beijing
    assert f["app_status"] == "2" and f["note"] == "test"
    assert f["consignee_country"] is None and f["actual_paid"] is None
    assert f["extra"] == {}
    assert order.filer_codes == {"ebc_code": "1105910159"}
    (line,) = order.lines
    assert line["gnum"] == 1 and line["item_no"] == "AF001-001"
    assert line["item_name"] == "小米盒子" and line["unit"] == "aaa"
    assert (line["qty"], line["price"], line["total_price"]) == (
        Decimal("100"), Decimal("20"), Decimal("2000"))
    assert line["currency"] is None                               # 'aaa' is refused


@needs_samples
def test_export_receipt_sample():
    receipt = read("samples_202205/export/CEB403Message.xml").documents[9]
    assert receipt.kind == "payment" and receipt.index == 10
    f = receipt.fields
    assert f["order_no"] == "order2018050711340001"
    assert f["amount"] == Decimal("200.50") and f["currency"] == "CNY"
    assert f["pay_code"] == "1105910159" and f["pay_transaction_id"] == "P20180507001"
    assert f["pay_time"] == datetime(2018, 5, 7, 7, 30, 1)        # accountingDate
    assert f["payer_name"] is None
    assert receipt.filer_codes == {"pay_code": "1105910159", "ebc_code": "1105910159"}
    assert receipt.lines == []


@needs_samples
def test_export_waybill_sample():
    waybill = read("samples_202205/export/CEB505Message.xml").documents[0]
    assert waybill.kind == "waybill"
    f = waybill.fields
    assert f["logistics_code"] == "1105910159" and f["logistics_no"] == "L2018050700001"
    assert (f["freight"], f["insured_fee"], f["weight"]) == (
        Decimal("20.50"), Decimal("30.50"), Decimal("50.50"))
    assert f["currency"] == "CNY" and f["pack_no"] == 9 and f["goods_info"] == "包裹"
    assert f["order_no"] is None and f["consignee"] is None       # not in export waybills
    assert f["ebc_telephone"] == "15088795220"
    assert waybill.filer_codes == {"logistics_code": "1105910159"}


@needs_samples
def test_export_inventory_sample():
    message = read("samples_202205/export/CEB603Message.xml")
    assert [d.fields["app_status"] for d in message.documents] == ["2"] + ["1"] * 9
    inventory = message.documents[0]
    f = inventory.fields
    assert (f["cop_no"], f["order_no"], f["logistics_no"]) == (
        "Cop20180507001", "order2018050711340001", "L2018050700001")
    assert f["trade_mode"] == "0101" and f["customs_code"] == "1500"
    assert f["agent_code"] == f["ebc_code"] == "1105910159"
    assert f["ie_date"] == date(2018, 5, 8) and f["declare_date"] is None
    assert f["declare_time"] == f["app_time"] == datetime(2018, 5, 7, 7, 30, 1)
    assert (f["freight"], f["freight_currency"]) == (Decimal("50.36"), "CNY")
    assert (f["insured_fee"], f["insured_fee_currency"]) == (Decimal("52.32"), "CNY")
    assert (f["gross_weight"], f["net_weight"]) == (Decimal("80.25"), Decimal("70.25"))
    assert f["country"] is None                                    # '001' is refused
    assert f["currency"] == "CNY" and f["total_value"] == Decimal("200")
    assert inventory.filer_codes == {"agent_code": "1105910159", "ebc_code": "1105910159"}
    (line,) = inventory.lines
    assert line["gcode"] == "8541401000" and line["country"] == "JP"   # customs 116
    assert (line["qty"], line["qty1"], line["qty2"]) == (
        Decimal("100"), Decimal("200"), Decimal("300"))


@needs_samples
@pytest.mark.parametrize("version", ["202205", "2018_113"])
def test_import_order_sample(version):
    message = read(f"samples_{version}/import/CEB311Message.xml")
    assert message.sender_code == "1101180326"
    order = message.documents[0]
    f = order.fields
    assert f["order_no"] == "order20160321116421002" and f["order_type"] == "I"
    assert (f["goods_value"], f["freight"], f["discount"], f["tax_total"], f["actual_paid"]) \
        == (Decimal("14000"), Decimal("5000"), Decimal("0"), Decimal("50"), Decimal("19050"))
    assert f["currency"] == "CNY"
    assert (f["buyer_reg_no"], f["buyer_name"], f["buyer_id_type"], f["buyer_id_number"]) == (
        "ID20160001", "aa", "1", "130681136250023332")
    assert (f["pay_code"], f["pay_transaction_id"]) == ("1105910159", "20160001634226001")
    assert (f["consignee"], f["consignee_telephone"], f["consignee_address"]) == (
        "焦洪宇", "13522652231", "北京市海淀区")
    assert f["consignee_country"] == "CN" and f["trade_mode"] is None
    assert f["app_time"] == datetime(2016, 3, 8, 3, 27, 1)
    assert [(l["gnum"], l["item_no"], l["qty"], l["price"], l["total_price"], l["country"],
             l["currency"]) for l in order.lines] == [
        (1, "AF001-001", Decimal("100"), Decimal("20"), Decimal("2000"), "JP", "CNY"),
        (2, "AF001-002", Decimal("200"), Decimal("10"), Decimal("12000"), "JP", "CNY")]
    assert order.filer_codes == {"ebc_code": "1105910159"}


@needs_samples
@pytest.mark.parametrize("version", ["202205", "2018_113"])
def test_import_payment_sample(version):
    message = read(f"samples_{version}/import/CEB411Message.xml")
    assert [d.fields["order_no"] for d in message.documents] == [
        "order2016030811340007", "order2016030811340008"] * 5
    assert [d.fields["pay_transaction_id"] for d in message.documents] == [
        "P0242250007", "P0242250008"] * 5
    payment = message.documents[1]
    assert payment.guid == "4CDE1CFD-EDED-46B1-946C-B8022E42FC95"
    f = payment.fields
    assert (f["amount"], f["currency"]) == (Decimal("19050"), "CNY")
    assert (f["payer_id_type"], f["payer_id_number"], f["payer_name"]) == (
        "1", "130625021345225322", "支付人")
    assert f["pay_time"] == datetime(2016, 3, 15, 7, 35, 55)
    assert f["ebp_code"] == "1101110325" and f["ebc_code"] is None
    assert payment.filer_codes == {"pay_code": "1101110323", "ebc_code": None}


@needs_samples
@pytest.mark.parametrize("version", ["202205", "2018_113"])
def test_import_waybill_sample(version):
    message = read(f"samples_{version}/import/CEB511Message.xml")
    assert [d.fields["order_no"][-3:] for d in message.documents] == [
        "002", "003", "004", "004", "006", "008"]
    f = message.documents[0].fields
    assert (f["logistics_code"], f["logistics_no"], f["bill_no"]) == (
        "1101180326", "L201603081138007", "TY201603081344007")
    assert (f["freight"], f["insured_fee"], f["weight"], f["pack_no"]) == (
        Decimal("5000"), Decimal("200"), Decimal("4000"), 6000)
    assert (f["consignee"], f["consignee_telephone"]) == ("李小可", "13936921298")


@needs_samples
@pytest.mark.parametrize("version", ["202205", "2018_113"])
def test_import_inventory_sample(version):
    message = read(f"samples_{version}/import/CEB621Message.xml")
    assert [d.fields["country"] for d in message.documents] == ["JP", "CN"] * 5
    f = message.documents[0].fields
    assert (f["cop_no"], f["order_no"], f["logistics_no"]) == (
        "NBBH20160308005", "order2016030811340001", "L201603081138007")
    assert f["invt_no"] is None and f["pre_no"] is None             # empty elements
    assert (f["trade_mode"], f["agent_code"], f["ebc_code"]) == ("9610", "1105910159",
                                                                 "1101110325")
    assert f["declare_date"] == date(2016, 3, 8) and f["ie_date"] == date(2016, 3, 8)
    assert f["currency"] == "CNY" and f["total_value"] == Decimal("32")
    assert [(l["gnum"], l["total_price"], l["trade_country"]) for l in
            message.documents[0].lines] == [(1, Decimal("20"), "JP"), (2, Decimal("12"), None)]
    assert message.documents[0].filer_codes == {"agent_code": "1105910159",
                                                "ebc_code": "1101110325"}


@needs_samples
def test_shipped_schemas_match_the_samples():
    """Both shipped schema sets load offline; the 2018 import samples validate against
    both; the export samples fail only on their repeated BaseTransfer."""
    for relative, *_ in SAMPLES:
        root = etree.fromstring(sample(relative))
        direction = "export" if "/export/" in relative else "import"
        for version in ("202205", "2018"):
            schema = ceb._schema(version, direction)
            valid = schema.validate(root)
            if direction == "import":
                assert valid, (relative, version, schema.error_log)
            else:
                assert [e.path.rsplit("/", 1)[-1] for e in schema.error_log] == [
                    "ceb:BaseTransfer[2]"]


def test_schemas_ship_inside_the_package():
    package = Path(ceb.__file__).parent
    for path in ceb.SCHEMA_FILES.values():
        assert path.is_file() and package in path.parents


# --------------------------------------------------------------------------- inline messages

NS = 'xmlns:ceb="http://www.chinaport.gov.cn/ceb"'
BASE = ("<ceb:BaseTransfer><ceb:copCode>4404930001</ceb:copCode><ceb:copName>Zhuhai "
        "Coastline</ceb:copName><ceb:dxpMode>DXP</ceb:dxpMode><ceb:dxpId>DXPENT0000000001"
        "</ceb:dxpId></ceb:BaseTransfer>")
GUID = "4CDE1CFD-EDED-46B1-946C-B8022E42FC94"


def element(tag: str, fields: dict, children: str = "") -> str:
    inner = "".join(f"<ceb:{k}>{v}</ceb:{k}>" for k, v in fields.items() if v is not None)
    return f"<ceb:{tag}>{inner}{children}</ceb:{tag}>"


def message(message_type: str, documents: list[str], envelope: str = BASE) -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?><ceb:{message_type}Message guid="{GUID}" '
            f'version="1.0" {NS}>{"".join(documents)}{envelope}</ceb:{message_type}Message>'
            ).encode()


def receipt(n: int = 1, **changes) -> str:
    fields = dict(guid=GUID, appType="1", appTime="20260301093000", appStatus="2",
                  ebpCode="PLATFORM01", ebpName="Marketplace", ebcCode="4404930001",
                  ebcName="Zhuhai Coastline", orderNo=f"ORD-{n}", payCode="4404990004",
                  payName="Bay Area Payments", payNo=f"TXN-{n}", charge="110.00",
                  currency="502", accountingDate="20260301100000", note=None)
    fields.update(changes)
    return element("Receipts", fields)


def export_order(n: int = 1, line: dict | None = None, **changes) -> str:
    head = dict(guid=GUID, appType="1", appTime="20260301093000", appStatus="2",
                orderType="E", orderNo=f"ORD-{n}", ebpCode="PLATFORM01",
                ebpName="Marketplace", ebcCode="4404930001", ebcName="Zhuhai Coastline",
                goodsValue="100.00", freight="10.00", currency="502", note=None)
    head.update(changes)
    item = dict(gnum="1", itemNo="A1", itemName="LED lamp", unit="011", currency="502",
                qty="4", price="25", totalPrice="100.00")
    item.update(line or {})
    return element("Order", {}, element("OrderHead", head) + element("OrderList", item))


def import_order(n: int = 1, lines: list[dict] | None = None, **changes) -> str:
    head = dict(guid=GUID, appType="1", appTime="20260301093000", appStatus="2",
                orderType="I", orderNo=f"IMP-{n}", ebpCode="PLATFORM01",
                ebpName="Marketplace", ebcCode="4404930001", ebcName="Zhuhai Coastline",
                goodsValue="200", freight="10", discount="0", taxTotal="18.20",
                acturalPaid="228.20", currency="142", buyerRegNo="buyer-1",
                buyerName="李小宝", buyerTelephone="13800000000", buyerIdType="1",
                buyerIdNumber="110101199003070000", consignee="李小宝",
                consigneeTelephone="13800000000", consigneeAddress="广东省珠海市横琴")
    head.update(changes)
    items = []
    for k, overrides in enumerate(lines or [{}, {}], start=1):
        item = dict(gnum=str(k), itemNo=f"SKU-{k}", itemName="奶粉", gmodel="800g", unit="122",
                    qty="1", price="100", totalPrice="100", currency="142", country="601")
        item.update(overrides)
        items.append(element("OrderList", item))
    return element("Order", {}, element("OrderHead", head) + "".join(items))


def test_values_are_typed_and_times_are_utc():
    parsed = parse_message(message("CEB403", [receipt()]))
    assert parsed.warnings == [] and parsed.schema_version == "202205"
    (doc,) = parsed.documents
    assert doc.accepted and doc.guid == GUID and doc.app_type == "1"
    assert doc.fields["amount"] == Decimal("110.00") and doc.fields["currency"] == "USD"
    assert doc.fields["app_time"] == datetime(2026, 3, 1, 1, 30)   # 09:30 China Standard Time
    assert doc.fields["pay_time"] == datetime(2026, 3, 1, 2, 0)
    assert "guid" not in doc.fields and "app_type" not in doc.fields


def test_each_document_is_judged_on_its_own():
    documents = [
        receipt(1),
        receipt(2, charge="1.123456"),
        receipt(3, charge="-5.00"),
        receipt(4, currency="999"),
        receipt(5, orderNo=None),
        receipt(6),
        receipt(7, appTime="20261345000000"),
        receipt(8, accountingDate="2026"),
        receipt(9, appType="9"),
        receipt(10, charge="abc"),
        receipt(11, payCode="X" * 19),
        receipt(12, currency="USD"),          # an ISO code is accepted as is
    ]
    parsed = parse_message(message("CEB403", documents))
    assert outcome(parsed) == {
        1: [],
        2: ["charge: '1.123456' has more than 5 decimals"],
        3: ["charge: must not be negative (got -5.00)"],
        4: ["currency: '999' is neither a customs currency code nor an ISO 4217 currency code"],
        5: ["orderNo: required element is missing (found payCode in its place)"],
        6: [],
        7: ["appTime: '20261345000000' is not a real date and time (YYYYMMDDhhmmss)"],
        8: ["accountingDate: must be exactly 14 characters long (it has 4)"],
        9: ["appType: must be 1 (new), 2 (change) or 3 (delete), not '9'"],
        10: ["charge: 'abc' is not a number"],
        11: ["payCode: is too long: 19 characters, at most 18 allowed"],
        12: [],
    }
    assert parsed.warnings == []
    assert parsed.documents[2].fields["amount"] == Decimal("-5.00")   # kept, but refused
    assert parsed.documents[11].fields["currency"] == "USD"


def test_order_errors_name_the_element_and_the_line():
    documents = [
        import_order(1),
        import_order(2, goodsValue="200.000001"),
        import_order(3, lines=[{}, {"price": "-3"}]),
        import_order(4, lines=[{}, {"country": "000"}]),
        import_order(5, currency="999"),                      # import orders are in RMB
        import_order(6, buyerName=None),
        import_order(7, lines=[{"qty": "1.5.2"}, {}]),
        import_order(8, lines=[{}, {"country": "701"}]),
        import_order(9),
    ]
    parsed = parse_message(message("CEB311", documents))
    assert outcome(parsed) == {
        1: [],
        2: ["goodsValue: '200.000001' has more than 5 decimals"],
        3: ["price (OrderList 2): must not be negative (got -3)"],
        4: ["country (OrderList 2): '000' is neither a customs country code nor an ISO 3166 "
            "country code"],
        5: ["currency: must be 142 (got '999')"],
        6: ["buyerName: required element is missing (found buyerTelephone in its place)"],
        7: ["qty (OrderList 1): '1.5.2' is not a number"],
        8: ["country (OrderList 2): customs country code 701 (国(地)别不详的) names no single "
            "country in ISO 3166"],
        9: [],
    }
    assert parsed.documents[0].lines[0]["country"] == "AU"             # customs 601


def test_export_order_with_unknown_codes():
    documents = [export_order(1), export_order(2, currency="999"),
                 export_order(3, line={"currency": "888"}), export_order(4, currency="300")]
    parsed = parse_message(message("CEB303", documents))
    assert outcome(parsed) == {
        1: [],
        2: ["currency: '999' is neither a customs currency code nor an ISO 4217 currency code"],
        3: ["currency (OrderList 1): '888' is neither a customs currency code nor an ISO 4217 "
            "currency code"],
        4: [],
    }
    assert parsed.documents[3].fields["currency"] == "EUR"


def test_missing_and_unknown_elements_in_orders():
    no_lines = element("Order", {}, element("OrderHead", {"guid": GUID}))
    documents = [export_order(1), no_lines, export_order(3, bogus="x"), export_order(4)]
    parsed = parse_message(message("CEB303", documents))
    assert parsed.documents[0].accepted and parsed.documents[3].accepted
    assert parsed.documents[1].errors == ["appType: required element is missing",
                                          "OrderList: required element is missing"]
    assert parsed.documents[2].errors == ["bogus: unknown element, not part of OrderHead"]


def test_elements_out_of_order_or_from_the_other_direction():
    swapped = export_order(2).replace("<ceb:goodsValue>100.00</ceb:goodsValue>", "").replace(
        "<ceb:currency>502</ceb:currency></ceb:OrderHead>",
        "<ceb:currency>502</ceb:currency><ceb:goodsValue>100.00</ceb:goodsValue></ceb:OrderHead>")
    documents = [export_order(1), swapped, export_order(3, note=None, buyerName="Maria")]
    parsed = parse_message(message("CEB303", documents))
    assert outcome(parsed) == {
        1: [],
        2: ["freight: element not allowed at this position (expected goodsValue)"],
        3: ["buyerName: unknown element, not part of OrderHead"],   # an import-order element
    }


def test_the_2018_schema_is_used_when_it_accepts_more():
    """The 2018 set allowed 50-character platform codes; 202205 allows 18."""
    long_code = "P" * 30
    parsed = parse_message(message("CEB403", [receipt(1, ebpCode=long_code), receipt(2)]))
    assert parsed.schema_version == "2018"
    assert all(d.accepted for d in parsed.documents)
    assert parsed.documents[0].fields["ebp_code"] == long_code

    mixed = parse_message(message("CEB403", [receipt(1, ebpCode=long_code),
                                             receipt(2, charge="1.123456"), receipt(3)]))
    assert mixed.schema_version == "2018"
    assert outcome(mixed) == {1: [], 2: ["charge: '1.123456' has more than 5 decimals"], 3: []}

    current = parse_message(message("CEB403", [receipt(1, payNo="T" * 61), receipt(2)]))
    assert current.schema_version == "202205"      # 2018 refuses it too: no reason to switch
    assert current.documents[0].errors == [
        "payNo: is too long: 61 characters, at most 60 allowed"]


def test_envelope_problems_are_warnings():
    twice = parse_message(message("CEB403", [receipt(1), receipt(2, charge="-1")], BASE + BASE))
    assert twice.warnings == [BASE_TRANSFER_TWICE]
    assert outcome(twice) == {1: [], 2: ["charge: must not be negative (got -1)"]}

    missing = parse_message(message("CEB403", [receipt(1)], envelope=""))
    assert missing.warnings == ["Envelope: BaseTransfer is missing"]
    assert missing.documents[0].accepted and missing.sender_code is None

    no_guid = message("CEB403", [receipt(1)]).replace(f'guid="{GUID}" '.encode(), b"")
    parsed = parse_message(no_guid)
    assert parsed.warnings == ["Envelope: CEB403Message: The attribute 'guid' is required but "
                               "missing"]
    assert parsed.documents[0].accepted and parsed.message_guid is None


def test_more_than_100_documents():
    """libxml2 stops checking after the 101st document; those are checked again."""
    documents = [receipt(n) for n in range(1, 104)]
    documents[49] = receipt(50, charge="-1")
    documents[101] = receipt(102, charge="x")
    documents[102] = receipt(103, charge="1.1234567")
    parsed = parse_message(message("CEB403", documents))
    assert len(parsed.documents) == 103
    assert {i: e for i, e in outcome(parsed).items() if e} == {
        50: ["charge: must not be negative (got -1)"],
        102: ["charge: 'x' is not a number"],
        103: ["charge: '1.1234567' has more than 5 decimals"],
    }
    assert parsed.warnings == [
        "Envelope: Receipts documents 101 to 103 are out of place (expected BaseTransfer): a "
        "message holds at most 100 documents, all before BaseTransfer"]


def test_documents_after_the_envelope_are_still_checked():
    documents = [receipt(1), BASE, receipt(2, charge="1.1234567"), receipt(3)]
    parsed = parse_message(message("CEB403", documents, envelope=""))
    assert outcome(parsed) == {1: [], 2: ["charge: '1.1234567' has more than 5 decimals"],
                               3: []}
    assert parsed.warnings[0].startswith("Envelope: Receipts documents 2 to 3 are out of place")


def test_default_namespace_on_one_line():
    """Errors are attributed by node path, not by line number."""
    data = message("CEB403", [receipt(1), receipt(2, charge="-2"), receipt(3)])
    data = data.replace(b"ceb:", b"").replace(b"xmlns:ceb=", b"xmlns=")
    assert b"\n" not in data
    parsed = parse_message(data)
    assert outcome(parsed) == {1: [], 2: ["charge: must not be negative (got -2)"], 3: []}

    bad = message("CEB403", [receipt(1), receipt(2, charge="2.1234567"), receipt(3)])
    bad = bad.replace(b"ceb:", b"").replace(b"xmlns:ceb=", b"xmlns=")
    assert outcome(parse_message(bad)) == {
        1: [], 2: ["charge: '2.1234567' has more than 5 decimals"], 3: []}


def test_byte_order_mark_and_buffers():
    data = message("CEB403", [receipt()])
    assert parse_message(b"\xef\xbb\xbf" + data).documents[0].accepted
    assert parse_message(bytearray(data)).documents[0].accepted
    with pytest.raises(TypeError):
        parse_message(data.decode())  # type: ignore[arg-type]


# --------------------------------------------------------------------------- refused files

@pytest.mark.parametrize("data, expected", [
    (b"", "The file is empty"),
    (b"not xml at all", "The file is not well-formed XML: Start tag expected, '<' not found, "
                        "line 1, column 1."),
    (b"<a>&foo;</a>", "not well-formed XML: Entity 'foo' not defined"),
    (b"<ceb:CEB311Message " + NS.encode() + b"><ceb:Order>", "not well-formed XML"),
    (b'<ceb:CEB311Message xmlns:ceb="http://example.com/ceb"/>',
     "is in namespace http://example.com/ceb; a CEB message must be in the namespace "
     "http://www.chinaport.gov.cn/ceb"),
    (b"<CEB311Message/>", "is in no namespace"),
    (b"<ceb:Order " + NS.encode() + b"/>", "is not a CEB message"),
    (b"<ceb:CEB999Message " + NS.encode() + b"/>",
     "Message type CEB999 is not filed on this platform"),
    (b"<ceb:CEB304Message " + NS.encode() + b"/>",
     "Message type CEB304 is not filed on this platform"),
    (b"<ceb:CEB311 " + NS.encode() + b"/>", "must be named CEB311Message"),
    (b"<ceb:CEB311Message " + NS.encode() + b">" + BASE.encode() + b"</ceb:CEB311Message>",
     "The CEB311 message holds no Order documents"),
])
def test_files_refused_as_a_whole(data, expected):
    with pytest.raises(CebFileError) as caught:
        parse_message(data)
    assert expected in str(caught.value)
    assert caught.value.message == str(caught.value)


def test_entity_bomb_is_refused_unexpanded():
    entities = "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10))
    bomb = (f'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol0 "lol">{entities}]>'
            f'<ceb:CEB403Message {NS}>{receipt(note="&lol9;")}{BASE}</ceb:CEB403Message>')
    started = time.perf_counter()
    with pytest.raises(CebFileError, match="DOCTYPE or ENTITY declaration"):
        parse_message(bomb.encode())
    assert time.perf_counter() - started < 0.1


def test_external_entities_are_refused():
    xxe = (f'<?xml version="1.0"?><!DOCTYPE m [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
           f'<ceb:CEB403Message {NS}>{receipt(note="&xxe;")}{BASE}</ceb:CEB403Message>')
    with pytest.raises(CebFileError, match="DOCTYPE or ENTITY declaration"):
        parse_message(xxe.encode())
    external_dtd = (f'<?xml version="1.0"?><!DOCTYPE m SYSTEM "http://evil.example/x.dtd">'
                    f'<ceb:CEB403Message {NS}>{receipt()}{BASE}</ceb:CEB403Message>')
    with pytest.raises(CebFileError, match="DOCTYPE"):
        parse_message(external_dtd.encode())


def test_wide_encodings_are_refused():
    data = message("CEB403", [receipt()]).decode().replace("UTF-8", "UTF-16")
    with pytest.raises(CebFileError, match="UTF-16 or UTF-32"):
        parse_message(data.encode("utf-16"))


def test_oversize_files_are_refused_before_parsing():
    data = message("CEB403", [receipt()])
    with pytest.raises(CebFileError, match=f"at most {len(data) - 1:,} bytes"):
        parse_message(data, max_bytes=len(data) - 1)
    assert parse_message(data, max_bytes=len(data)).documents[0].accepted
    huge = b"<" * (ceb.DEFAULT_MAX_BYTES + 1)
    started = time.perf_counter()
    with pytest.raises(CebFileError, match="at most 20,971,520 bytes"):
        parse_message(huge)
    assert time.perf_counter() - started < 0.1


# --------------------------------------------------------------------------- scale

def test_parallel_parsing_gives_the_same_answers():
    data = message("CEB403", [receipt(1), receipt(2, charge="-1"), receipt(3)])
    expected = outcome(parse_message(data))
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: outcome(parse_message(data)), range(64)))
    assert all(result == expected for result in results)


def test_a_full_message_of_100_orders_is_read_quickly():
    """100 orders of 99 lines each, 3.2 MB: the largest message the schema allows."""
    lines = [{"gnum": str(k), "itemNo": f"SKU-{k}", "totalPrice": "100"} for k in range(1, 100)]
    documents = [import_order(n, lines=lines) for n in range(1, 101)]
    documents[57] = import_order(58, lines=lines[:98] + [{"gnum": "99", "price": "-1"}])
    data = message("CEB311", documents)
    assert len(data) > 1_000_000
    parse_message(data)                                     # schemas loaded
    started = time.perf_counter()
    parsed = parse_message(data)
    elapsed = time.perf_counter() - started
    assert len(parsed.documents) == 100 and len(parsed.accepted) == 99
    assert parsed.documents[57].errors == ["price (OrderList 99): must not be negative (got -1)"]
    assert sum(len(d.lines) for d in parsed.documents) == 9900
    assert elapsed < 1.0, f"{elapsed:.3f} s for {len(data):,} bytes"
