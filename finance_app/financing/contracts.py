"""Financing contracts: the terms fixed at acceptance, their fingerprint, and the PDF.

The terms are a canonical JSON document (sorted keys, amounts as strings): the parties
with their credit codes, the amount, rate, day count, fees, the schedule (dated from
acceptance; interest runs from the disbursement date), the collateral, and the approval
and acceptance timestamps. Its SHA-256 is stored and printed in the contract, so anyone
holding the PDF can check it against the platform. The PDF (Chinese and English side by
side) is rendered once, after the acceptance commits (through the outbox), and kept.
"""
from __future__ import annotations

import hashlib
import json
from datetime import datetime

from sqlalchemy import select

from finance_app import clock, outbox, pdf
from finance_app.accounts.models import Organisation, User
from finance_app.extensions import db
from finance_app.financing.models import Contract, Decision, FinancingRequest, Loan
from finance_app.financing.schedule import Schedule, apr, build_schedule, total_cost
from finance_app.money import Money

RENDER = "financing.render_contract"
DAY_COUNT_NAMES = {360: "ACT/360", 365: "ACT/365"}


def _party(org: Organisation) -> dict:
    return {"id": org.id, "name": org.name, "name_en": org.name_en,
            "credit_code": org.credit_code, "customs_code": org.customs_code,
            "address": org.address, "country": org.country}


def _stamp(value: datetime | None) -> str | None:
    return value.replace(microsecond=0).isoformat() + "Z" if value else None


def _amount(money: Money) -> str:
    return f"{money.amount:f}"


def schedule_rows(schedule: Schedule) -> list[dict]:
    return [{"number": i.number, "due_date": i.due_date.isoformat(), "days": i.days,
             "principal": _amount(i.principal), "interest": _amount(i.interest),
             "total": _amount(i.total), "outstanding_after": _amount(i.outstanding_after)}
            for i in schedule.instalments]


def build_terms(loan: Loan, decision: Decision, request: FinancingRequest, number: str
                ) -> dict:
    product = decision.target.product
    bank = db.session.get(Organisation, loan.bank_org_id)
    sme = db.session.get(Organisation, loan.sme_org_id)
    schedule = build_schedule(loan.principal, loan.annual_rate, loan.day_count,
                              loan.accepted_at.date(), loan.tenor_days, loan.repayment_type)
    names = dict(db.session.execute(select(User.id, User.name).where(User.id.in_(
        [u for u in (decision.prepared_by_id, decision.approved_by_id, loan.accepted_by_id)
         if u]))).all())
    return {
        "contract_no": number,
        "lender": _party(bank),
        "borrower": _party(sme),
        "product": {"id": product.id, "name": product.name, "kind": product.kind.value},
        "request_id": request.id,
        "offer_id": decision.id,
        "loan_id": loan.id,
        "purpose": request.purpose,
        "amount": _amount(loan.principal),
        "currency": loan.currency,
        "annual_rate": f"{loan.annual_rate.normalize():f}",
        "day_count": DAY_COUNT_NAMES[loan.day_count],
        "tenor_days": loan.tenor_days,
        "repayment_type": loan.repayment_type.value,
        "fees": _amount(loan.fees),
        "net_disbursed": _amount(loan.principal - loan.fees),
        "penalty_rate": f"{loan.penalty_rate.normalize():f}",
        "default_after_days": loan.default_after_days,
        "schedule_from": schedule.start.isoformat(),
        "schedule": schedule_rows(schedule),
        "total_interest": _amount(schedule.total_interest),
        "total_cost": _amount(total_cost(schedule, loan.fees)),
        "apr": f"{apr(schedule, loan.fees):f}",
        "collateral": [{"kind": c.asset_kind.value, "id": c.asset_id, "label": c.label,
                        "value": _amount(c.value), "currency": c.value_currency}
                       for c in request.collateral],
        "conditions": decision.conditions,
        "prepared_by": names.get(decision.prepared_by_id),
        "prepared_at": _stamp(decision.prepared_at),
        "approved_by": names.get(decision.approved_by_id),
        "approved_at": _stamp(decision.approved_at),
        "accepted_by": names.get(loan.accepted_by_id),
        "accepted_at": _stamp(loan.accepted_at),
    }


def canonical(terms: dict) -> str:
    return json.dumps(terms, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def fingerprint(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def create_contract(loan: Loan, decision: Decision, request: FinancingRequest) -> Contract:
    number = f"FC-{loan.accepted_at:%Y}-{loan.id:06d}"
    text = canonical(build_terms(loan, decision, request, number))
    contract = Contract(loan_id=loan.id, number=number, terms=text,
                        terms_sha256=fingerprint(text), created_at=clock.now())
    db.session.add(contract)
    db.session.flush()
    outbox.enqueue(RENDER, {"contract_id": contract.id},
                   dedupe_key=f"contract:{contract.id}:render")
    return contract


def render(contract: Contract) -> bytes:
    terms = json.loads(contract.terms)
    return pdf.render_pdf("pdf/financing_contract.html", terms=terms, contract=contract,
                          lang="zh_CN")


def ensure_pdf(contract: Contract) -> bytes:
    """The stored PDF, rendering and storing it first if it has not been yet."""
    if contract.pdf is None:
        body = render(contract)
        contract.pdf, contract.pdf_sha256 = body, pdf.fingerprint(body)
        contract.rendered_at = clock.now()
        db.session.flush()
    return contract.pdf


@outbox.handler(RENDER)
def _render(payload: dict) -> None:
    contract = db.session.get(Contract, payload["contract_id"])
    if contract is not None:
        ensure_pdf(contract)


def verify_terms(contract: Contract) -> bool:
    return fingerprint(contract.terms) == contract.terms_sha256
