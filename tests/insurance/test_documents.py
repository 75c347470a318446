"""The policy PDF states every term, in English and in Chinese, and is rendered once."""
from __future__ import annotations

import subprocess

import pytest
from sqlalchemy import func, select

from finance_app.extensions import db
from finance_app.insurance import documents
from finance_app.insurance.models import PolicyDocument
from finance_app.pdf import fingerprint


def text_of(data: bytes, tmp_path) -> str:
    path = tmp_path / "policy.pdf"
    path.write_bytes(data)
    return subprocess.run(["pdftotext", str(path), "-"], check=True,
                          capture_output=True, text=True).stdout


@pytest.mark.parametrize("lang, words", [
    ("en", ["Short-term export credit insurance policy", "ECI-2026-000001", "90.00%", "95.00%",
            "$500,000.00", "within 15 days after each shipment", "within 60 days after the",
            "120 days after the due date", "30 days for insolvency", "USD, EUR", "0.8000%",
            "Oct 1, 2026"]),
    ("zh_CN", ["短期出口信用保险保单", "ECI-2026-000001", "90.00%", "500,000.00", "保费费率",
               "每次出运后 15 天内", "跨境电商供应链金融平台"]),
])
def test_the_policy_pdf_states_its_terms(world, policy, tmp_path, lang, words):
    document = documents.policy_document(policy, lang)
    db.session.commit()
    assert document.content.startswith(b"%PDF")
    assert document.sha256 == fingerprint(document.content)
    text = " ".join(text_of(document.content, tmp_path).split())
    for word in words:
        assert word in text, word
    again = documents.policy_document(policy, lang)
    assert again.id == document.id
    assert db.session.execute(select(func.count(PolicyDocument.id))).scalar_one() == 1
