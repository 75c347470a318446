"""The demo command and the other CLI tools."""
from __future__ import annotations

import pyotp
from sqlalchemy import func, select

from finance_app.accounts.models import Organisation, User
from finance_app.accounts.states import FilingStatus, OrgKind
from finance_app.extensions import db
from tests.conftest import sign_in


def test_demo_is_safe_to_run_twice_and_every_demo_user_can_sign_in(app):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["demo"])
    assert first.exit_code == 0, first.output
    second = runner.invoke(args=["demo"])
    assert second.exit_code == 0, second.output
    orgs = db.session.execute(select(Organisation)).scalars().all()
    assert len(orgs) == 9
    assert {o.kind for o in orgs} == set(OrgKind)
    assert all(o.filing_status is FilingStatus.APPROVED for o in orgs)
    kinds = [o.kind for o in orgs]
    assert kinds.count(OrgKind.SME) == 2 and kinds.count(OrgKind.BANK) == 2
    users = db.session.execute(select(User)).scalars().all()
    assert len(users) == 11     # one per organisation, and an approver per bank
    approvers = [u for u in users if "approver" in u.email]
    assert sorted(u.email for u in approvers) == ["bank1-approver@demo.test",
                                                   "bank2-approver@demo.test"]
    assert all(u.organisation.kind is OrgKind.BANK and u.totp_secret for u in approvers)
    for user in users:
        assert user.email in first.output
        client = app.test_client()
        sign_in(client, user, app.config["DEMO_PASSWORD"])
        assert client.get("/dashboard").status_code == 200, user.email


def test_demo_code_prints_the_operators_current_code(app):
    runner = app.test_cli_runner()
    runner.invoke(args=["demo"])
    result = runner.invoke(args=["demo-code", "operator@demo.test"])
    operator = db.session.execute(select(User).where(User.email == "operator@demo.test")).scalar_one()
    assert pyotp.TOTP(operator.totp_secret).verify(result.output.strip(), valid_window=1)
    refused = runner.invoke(args=["demo-code", "sme1@demo.test"])
    assert refused.exit_code != 0


def test_create_token_prints_a_working_token(app):
    runner = app.test_cli_runner()
    runner.invoke(args=["demo"])
    result = runner.invoke(args=["create-token", "bank1@demo.test"])
    assert result.exit_code == 0
    token = result.output.strip().splitlines()[-1]
    response = app.test_client().get("/api/v1/organisations",
                                     headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert len(response.json) == 9
    missing = runner.invoke(args=["create-token", "nobody@demo.test"])
    assert missing.exit_code != 0 and "No such user" in missing.output
    count = db.session.execute(select(func.count(User.id))).scalar_one()
    assert count == 11


def test_demo_trades_have_verified_and_mismatched_verdicts(app):
    import json as _json
    from finance_app.trade.models import Order, Receivable
    runner = app.test_cli_runner()
    runner.invoke(args=["demo"])
    runner.invoke(args=["demo"])  # a second run files nothing twice
    rows = [_json.loads(line) for line in
            runner.invoke(args=["verdicts", "--json"]).output.splitlines()]
    verdicts = {r["order_no"]: (r["verdict"], [x["code"] for x in r["reasons"]]) for r in rows
                if not r["order_no"].startswith("ECI-")}   # insurance's demo shipments
    assert verdicts == {
        "MLB-2026-0001": ("verified", []),
        "LPT-2026-0107": ("mismatch", ["payment_amount_mismatch"]),
        "B2B-MX-0042": ("verified", []),
        "OW-PT-0009": ("incomplete", ["waybill_missing"]),
        "AMX-2026-5531": ("verified", []),
        "MLB-2026-0877": ("mismatch", ["line_total_mismatch"]),
        "TM-1210-7781": ("verified", []),
        "TM-1210-7790": ("mismatch", ["payer_not_buyer", "consignee_mismatch"]),
        # filed by the financing demo, some on days in the past
        "B2B-MX-0015": ("verified", []),
        "B2B-BR-0088": ("incomplete", ["inventory_missing"]),
        "B2B-BR-0231": ("verified", []),
        "B2B-PT-0310": ("verified", []),
    }
    receivables = db.session.execute(select(Receivable).where(
        ~Receivable.order.has(Order.order_no.startswith("ECI-")))).scalars().all()
    assert sorted(r.order.order_no for r in receivables) == [
        "B2B-BR-0231", "B2B-MX-0015", "B2B-MX-0042", "B2B-PT-0310"]
    assert {r.currency for r in receivables} == {"USD"}


def test_demo_financing_has_loans_in_every_state_and_open_requests(app):
    from finance_app import clock
    from finance_app.collateral.models import Encumbrance
    from finance_app.collateral.states import EncumbranceStatus
    from finance_app.financing import contracts, loans, products
    from finance_app.financing.models import (
        Contract, Decision, Facility, FinancingProduct, FinancingRequest, Loan,
    )
    from finance_app.financing.states import InstalmentStatus, LoanStatus, ProductKind
    runner = app.test_cli_runner()
    first = runner.invoke(args=["demo"])
    assert first.exit_code == 0, first.output
    assert "Demo financing: 8 products" in first.output
    second = runner.invoke(args=["demo"])
    assert "Demo financing already there." in second.output
    for email in ("bank1-approver@demo.test", "bank2-approver@demo.test"):
        assert email in second.output      # their second factor is printed on every run

    catalogue = db.session.execute(select(FinancingProduct)).scalars().all()
    assert len(catalogue) == 8
    by_bank: dict[int, set] = {}
    for p in catalogue:
        if p.status.value == "active":
            by_bank.setdefault(p.bank_org_id, set()).add(p.kind)
    assert len(by_bank) == 2
    basics = {ProductKind.RECEIVABLE, ProductKind.ORDER, ProductKind.WAREHOUSE_RECEIPT}
    assert all(basics <= kinds for kinds in by_bank.values())
    assert sum(ProductKind.POLICY in kinds for kinds in by_bank.values()) == 1
    assert [p.status.value for p in catalogue].count("paused") == 1

    every = db.session.execute(select(Loan).order_by(Loan.id)).scalars().all()
    assert sorted(loan.status for loan in every) == sorted(LoanStatus)
    state = {loan.status: loan for loan in every}
    today = clock.today()
    overdue = state[LoanStatus.OVERDUE]
    rows = loans.instalments(overdue)
    assert [r.status for r in rows].count(InstalmentStatus.PAID) == 2
    late = [r for r in rows if r.status is InstalmentStatus.OVERDUE]
    assert len(late) == 1 and late[0].due_date < today and late[0].penalty_accrued > 0
    defaulted = state[LoanStatus.DEFAULTED]
    assert (today - defaulted.maturity_date).days > defaulted.default_after_days
    assert loans.position(defaulted).penalty.amount > 0
    assert state[LoanStatus.DISBURSED].disbursed_on is not None
    assert state[LoanStatus.AWAITING_DISBURSEMENT].disbursed_on is None
    for closed in (state[LoanStatus.REPAID], state[LoanStatus.CANCELLED]):
        held = db.session.execute(select(Encumbrance.status).where(
            Encumbrance.financing_ref == f"loan:{closed.id}")).scalars().all()
        assert held and set(held) == {EncumbranceStatus.RELEASED}
    for contract in db.session.execute(select(Contract)).scalars():
        assert contract.pdf is not None and contracts.verify_terms(contract)

    facility = db.session.execute(select(Facility)).scalar_one()
    figures = products.figures(facility)
    assert figures.used.amount > 0 and figures.held.amount > 0 and not figures.expired

    open_requests = db.session.execute(select(FinancingRequest).where(
        FinancingRequest.status == "submitted")).scalars().all()
    [insured] = [r for r in open_requests if r.kind.value == "policy"]
    open_requests = [r for r in open_requests if r is not insured]
    # the policy-financing request is against a receivable whose indemnity is assigned to
    # the one bank asked, and nobody has decided on it yet
    assert [t.bank_org_id for t in insured.targets] == [
        a.holder_org_id for a in db.session.execute(select(Encumbrance).where(
            Encumbrance.asset_kind == "insured_receivable",
            Encumbrance.asset_id == insured.collateral[0].asset_id,
            Encumbrance.status == EncumbranceStatus.ACTIVE)).scalars()]
    assert not db.session.execute(select(Decision).where(
        Decision.request_id == insured.id)).first()
    decisions = {r.id: sorted((d.kind.value, d.status.value) for d in db.session.execute(
        select(Decision).where(Decision.request_id == r.id)).scalars())
        for r in open_requests}
    assert sorted(decisions.values()) == [
        [("offer", "approved"), ("offer", "prepared")], [("rejection", "approved")]]
    assert all(len(r.targets) == 2 for r in open_requests)


def test_demo_insurance_has_policies_limits_declarations_a_report_and_a_paid_claim(app):
    from finance_app.insurance.models import (
        BuyerLimit, Claim, IndemnityAssignment, OverdueReport, Policy, ShipmentDeclaration,
    )
    from finance_app.insurance.queries import assigned_cover
    from finance_app.audit.services import verify_chain
    runner = app.test_cli_runner()
    first = runner.invoke(args=["demo"])
    assert first.exit_code == 0, first.output
    assert "Demo insurance: policies ECI-" in first.output
    assert runner.invoke(args=["demo"]).exit_code == 0    # nothing twice

    def all_of(model):
        return db.session.execute(select(model)).scalars().all()
    insurer = db.session.execute(select(Organisation).where(
        Organisation.kind == OrgKind.INSURER)).scalar_one()
    policies = all_of(Policy)
    assert len(policies) == 2 and {p.insurer_org_id for p in policies} == {insurer.id}
    smes = {o.id for o in db.session.execute(select(Organisation).where(
        Organisation.kind == OrgKind.SME)).scalars()}
    assert {p.insured_org_id for p in policies} == smes
    assert {lim.buyer_country for lim in all_of(BuyerLimit)} == {"BR", "MX", "PT"}
    declarations = all_of(ShipmentDeclaration)
    assert len(declarations) == 4
    assert any(d.uninsured_amount > 0 and d.insured_amount > 0 for d in declarations)
    assert len(all_of(OverdueReport)) == 1
    [claim] = all_of(Claim)
    assert claim.status.value == "paid" and claim.indemnity.amount > 0
    assignments = all_of(IndemnityAssignment)
    assert len(assignments) == 2 and {a.status.value for a in assignments} == {"active"}
    [bank] = {a.bank_org_id for a in assignments}
    assert len(assigned_cover(bank)) == 2
    assert verify_chain().ok


def test_demo_compensation_fund_has_paid_the_defaulted_yuerong_loan_in_cny(app):
    from decimal import Decimal

    from finance_app.audit.services import verify_chain
    from finance_app.compensation import services
    from finance_app.compensation.models import CompensationClaim, CompensationFund
    from finance_app.financing.models import Loan
    from finance_app.money import Money
    runner = app.test_cli_runner()
    first = runner.invoke(args=["demo"])
    assert first.exit_code == 0, first.output
    assert "Demo compensation: Zhuhai–Dongguan pilot zone" in first.output
    assert runner.invoke(args=["demo"]).exit_code == 0    # nothing twice
    [fund] = db.session.execute(select(CompensationFund)).scalars().all()
    [claim] = db.session.execute(select(CompensationClaim)).scalars().all()
    loan = db.session.get(Loan, claim.loan_id)
    yuerong = db.session.execute(select(Organisation).where(
        Organisation.contact_email == "bank2@demo.test")).scalar_one()
    assert loan.status.value == "defaulted" and loan.bank_org_id == yuerong.id
    assert (fund.currency, fund.share, claim.loan_currency) == ("CNY", Decimal("0.5000"), "USD")
    assert claim.status.value == "paid" and claim.fx_note
    # 50 % of the USD principal outstanding, at the day's rate, rounded down
    rate = Decimal(claim.fx_note.split(" = ")[1].split(" ")[0])
    expected = (claim.share_of_loss.amount * rate).quantize(Decimal("0.01"), rounding="ROUND_DOWN")
    assert claim.compensation == Money(expected, "CNY")
    money = services.figures(fund)
    assert money.paid == claim.compensation and money.reconciled
    assert money.remaining == Money(Decimal("2000000.00"), "CNY") - claim.compensation
    assert verify_chain().ok
