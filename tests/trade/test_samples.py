"""China Customs' official sample messages, filed end to end.

The samples are test data, not one consistent trade: several repeat a document, the export
set uses one code as e-commerce company, payer and carrier, and the import payments name
other orders.  This file states exactly what each one produces.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from finance_app.accounts.states import OrgKind
from finance_app.extensions import db
from finance_app.trade.ceb import parse_message
from finance_app.trade.models import IngestBatch
from tests.factories import make_org_user

CEB = Path(__file__).resolve().parents[3] / "shared" / "data" / "ceb"
EBC, PAY, CARRIER = "1105910159", "1101110323", "1101180326"


@pytest.fixture
def sample_filers(app):
    make_org_user(OrgKind.SME, customs_code=EBC)
    make_org_user(OrgKind.PAYMENT_INSTITUTION, customs_code=PAY)
    make_org_user(OrgKind.LOGISTICS, customs_code=CARRIER)


def ingest_folder(app, folder: str) -> dict[str, list]:
    result = app.test_cli_runner().invoke(args=["ingest-ceb", str(CEB / folder)])
    assert "refused: Message type CEB" in result.output  # receipts etc. are not filed here
    outcome = {}
    for batch in db.session.execute(select(IngestBatch).order_by(IngestBatch.id)).scalars():
        outcome[batch.message_type] = [(r["accepted"], r["reason"]) for r in json.loads(batch.results)]
    return outcome


def verdicts(app) -> dict[str, tuple[str, list[str]]]:
    lines = app.test_cli_runner().invoke(args=["verdicts", "--json"]).output.splitlines()
    return {row["order_no"]: (row["verdict"], [r["code"] for r in row["reasons"]])
            for row in map(json.loads, lines)}


@pytest.mark.parametrize("folder", ["samples_202205/import", "samples_2018_113/import"])
def test_import_samples(app, sample_filers, folder):
    outcome = ingest_folder(app, folder)
    # Each import sample repeats its documents: the first copy is filed, the repeats are
    # refused as already filed (a change would need appType 2).
    expected_accepted = {"CEB311": 1, "CEB411": 2, "CEB511": 1, "CEB621": 2}
    for message_type, accepted in expected_accepted.items():
        rows = outcome[message_type]
        assert sum(ok for ok, _ in rows) == accepted, message_type
        assert all("already filed" in reason for ok, reason in rows if not ok), message_type
    assert len(outcome["CEB311"]) == 6 and len(outcome["CEB411"]) == 10
    # The one order's verdict: its line totals are not price x qty, the buyer's ID number
    # fails its check digit, the payments name other orders (order2016030811340007/8), and
    # the waybill's consignee (李小可) is not the order's (焦洪宇).
    assert verdicts(app) == {"order20160321116421002": (
        "mismatch",
        ["line_total_mismatch", "buyer_id_invalid", "payment_missing", "consignee_mismatch"])}


def test_export_samples(app, sample_filers):
    outcome = ingest_folder(app, "samples_202205/export")
    # CEB303: every order has line currency 'aaa', no currency code at all.
    assert [ok for ok, _ in outcome["CEB303"]] == [False] * 10
    assert all(r.startswith("currency (OrderList 1): 'aaa'") for _, r in outcome["CEB303"])
    # CEB403: ten copies of one receipt, filed by the e-commerce company itself.
    assert [ok for ok, _ in outcome["CEB403"]] == [True] + [False] * 9
    # CEB505: the carrier code is the SME's own, and an SME does not file waybills.
    assert all(r == "logistics_code: 1105910159 is filed as an SME, but a waybill is filed by "
               "a logistics company." for _, r in outcome["CEB505"])
    # CEB603: country '001' is no country, and ieFlag 'a' is not E.
    assert all("country: '001'" in r and "ieFlag" in r for _, r in outcome["CEB603"])
    assert verdicts(app) == {}  # no order was accepted, so there is nothing to judge


def test_samples_are_warned_about_their_repeated_envelope(app, sample_filers):
    data = (CEB / "samples_202205/export/CEB403Message.xml").read_bytes()
    message = parse_message(data)
    assert message.warnings and "BaseTransfer" in message.warnings[0]
    assert all(doc.errors == [] for doc in message.documents)


def test_the_samples_filers_must_be_filed(app):
    outcome = ingest_folder(app, "samples_202205/import")
    reasons = {reason for rows in outcome.values() for _, reason in rows}
    assert reasons == {
        f"ebc_code: {EBC} belongs to no filed organisation on this platform.",
        f"pay_code: {PAY} belongs to no filed organisation on this platform.",
        f"logistics_code: {CARRIER} belongs to no filed organisation on this platform.",
        f"agent_code: {EBC} belongs to no filed organisation on this platform.",
    }
