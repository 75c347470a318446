"""The financing contract PDF: rendered once from the terms fixed at acceptance, bilingual,
with the parties, the figures, the schedule and the terms' fingerprint; the terms verify
and tampering shows."""
from __future__ import annotations

import json
import shutil
import subprocess
from decimal import Decimal

import pytest
from sqlalchemy import select

from finance_app.extensions import db
from finance_app.financing import contracts, loans
from finance_app.financing.models import Contract
from tests.financing.conftest import make_product, offer, receivable, request_for, usd

needs_poppler = pytest.mark.skipif(shutil.which("pdftotext") is None,
                                   reason="needs pdftotext (poppler-utils)")


def pdf_text(body: bytes) -> str:
    done = subprocess.run(["pdftotext", "-layout", "-enc", "UTF-8", "-", "-"], input=body,
                          capture_output=True, check=True, timeout=60)
    return done.stdout.decode("utf-8")


def accepted_loan(world, *, amount="12345.67", rate="0.072500", tenor=120,
                  repayment_type="equal_instalments"):
    product = make_product(world["bank"], name="Huaxin receivables", currencies=["USD"],
                           repayment_type=repayment_type, max_tenor_days=180)
    rec = receivable("B2B-CONTRACT-1", amount="20000.00", days=150)
    request = request_for(world, [product], [("receivable", rec.id)], amount=amount,
                          tenor=tenor)
    decision = offer(world, request, "bank", amount=amount, rate=rate, tenor=tenor,
                     fees=usd("61.73"), conditions="Buyer notified of the assignment.")
    loan = loans.accept_offer(decision.id, actor=world["sme"])
    db.session.commit()
    contract = db.session.execute(select(Contract).where(Contract.loan_id == loan.id)
                                  ).scalar_one()
    return loan, contract


@needs_poppler
def test_the_contract_pdf_shows_parties_figures_schedule_and_fingerprint(world):
    loan, contract = accepted_loan(world)
    body = contracts.ensure_pdf(contract)
    db.session.commit()
    assert body.startswith(b"%PDF-")
    terms = json.loads(contract.terms)
    text = pdf_text(body)
    flat = " ".join(text.split())
    bank, sme = world["bank"].organisation, world["sme"].organisation
    for code in (bank.credit_code, sme.credit_code, sme.customs_code):
        assert code in flat
    assert "融资合同" in flat and "Financing Contract" in flat
    assert contract.number in flat
    assert "USD 12,345.67" in flat
    assert "12345.67" not in flat              # amounts are grouped
    assert "7.25 %" in flat                    # the rate as a percentage
    assert "ACT/360" in flat
    assert f"USD {Decimal(terms['net_disbursed']):,.2f}" in flat
    assert "18.00 %" in flat and "beyond 60 days" in flat
    schedule = terms["schedule"]
    assert len(schedule) == 4                  # 120 days in monthly instalments
    assert schedule[-1]["due_date"] in flat
    assert f"{Decimal(schedule[-1]['total']):,.2f}" in flat
    repaid = sum(Decimal(row["total"]) for row in schedule)
    assert repaid == Decimal(terms["amount"]) + Decimal(terms["total_interest"])
    assert f"{repaid:,.2f}" in flat            # the schedule's total row
    assert f"{Decimal(terms['apr']) * 100:.2f} %" in flat
    assert "Receivable of order B2B-CONTRACT-1" in flat
    assert "Buyer notified of the assignment." in flat
    assert world["bank_approver"].name in flat and world["sme"].name in flat
    assert contract.terms_sha256 in flat       # in full, on one line
    assert "SHA-256" in flat


def test_the_stored_terms_verify_and_tampering_shows(world):
    _, contract = accepted_loan(world, repayment_type="bullet")
    assert contracts.verify_terms(contract)
    terms = json.loads(contract.terms)
    terms["annual_rate"] = "0.01"
    contract.terms = contracts.canonical(terms)
    db.session.commit()
    db.session.refresh(contract)
    assert not contracts.verify_terms(contract)


def test_the_pdf_is_rendered_once_and_served_as_stored(world):
    _, contract = accepted_loan(world, repayment_type="bullet")
    first = contracts.ensure_pdf(contract)
    db.session.commit()
    stamp = contract.rendered_at
    db.session.expire_all()
    contract = db.session.get(Contract, contract.id)
    assert contract.pdf == first and contract.pdf_sha256 is not None
    again = contracts.ensure_pdf(contract)
    assert again == first and contract.rendered_at == stamp
