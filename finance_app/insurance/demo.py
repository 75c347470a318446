"""Demo export credit insurance: the demo insurer's policies for both SMEs, buyer limits in
Brazil, Mexico and Portugal, declared shipments (one partly uninsured), and a Brazilian
buyer's default from months ago: declared on time, reported overdue, claimed after the
waiting period and indemnified; the Mexican receivable's indemnity is assigned to Huaxin
Bank (which finances it as a receivable), and so is the first Portuguese shipment's, which
Dongguan Humen Trend Trading asks Huaxin to finance under its credit-insured product. The
past steps run on the business clock set back to their dates, so deadlines and waiting
periods hold as they would have. Safe to run twice."""
from __future__ import annotations

from datetime import datetime, time, timedelta
from decimal import Decimal as D

from sqlalchemy import select

from finance_app import clock
from finance_app.accounts.models import User
from finance_app.extensions import db
from finance_app.financing import marketplace
from finance_app.financing.models import FinancingProduct
from finance_app.financing.states import ProductKind
from finance_app.insurance import services
from finance_app.insurance.models import Policy, ShipmentDeclaration
from finance_app.money import Money
from finance_app.insurance.states import ClaimCause
from finance_app.settlement import services as settlement
from finance_app.trade import services as trade
from finance_app.trade.demo import LOJA, MERCADO, SME1, SME2, documents
from finance_app.trade.models import Order
from finance_app.trade.states import DocumentSource

RATES = [services.RateInput(0, 90, D("0.0030")), services.RateInput(0, 180, D("0.0045")),
         services.RateInput(4, 90, D("0.0060")), services.RateInput(4, 180, D("0.0085")),
         services.RateInput(5, 90, D("0.0080")), services.RateInput(5, 180, D("0.0110"))]


def _user(key: str) -> User:
    return db.session.execute(select(User).where(User.email == f"{key}@demo.test")).scalar_one()


def _order(no: str) -> Order:
    return db.session.execute(select(Order).where(Order.order_no == no)).scalar_one()


def _on(days_ago: int):
    """The business clock set back ``days_ago`` days (10:00 in Zhuhai)."""
    day = clock.today() - timedelta(days=days_ago)
    return clock.frozen_at(datetime.combine(day, time(2, 0)))


def _documents():
    docs = []
    docs += documents(21, SME1, MERCADO, "ECI-BR-2026-0101", currency="USD", trade_mode="9710",
                   buyer="Comercial Paulista Ltda", country="BR",
                   lines=[("LED panel light 600x600", "4000", "8.50")], paid=None, terms=60,
                   days_ago=250)
    docs += documents(22, SME2, LOJA, "ECI-PT-2026-0201", currency="EUR", trade_mode="9710",
                   buyer="Porto Têxteis Lda", country="PT",
                   lines=[("Denim fabric, 12 oz (metres)", "6000", "3.00")], paid=None,
                   terms=90, days_ago=10)
    docs += documents(23, SME2, LOJA, "ECI-PT-2026-0202", currency="EUR", trade_mode="9710",
                   buyer="Porto Têxteis Lda", country="PT",
                   lines=[("Silk scarves, printed", "1400", "10.00")], paid=None, terms=90,
                   days_ago=5)
    for i, doc in enumerate(docs):
        doc.index = i
    return docs


def seed_insurance(platform: User) -> str:
    insurer = _user("insurer1")
    if db.session.execute(select(Policy.id).where(
            Policy.insurer_org_id == insurer.org_id)).first():
        return "Demo insurance already there."
    sme1, sme2, bank1 = _user("sme1"), _user("sme2"), _user("bank1")
    trade.ingest(_documents(), actor=None, source=DocumentSource.JSON, filename="demo-insurance")
    db.session.flush()
    today = clock.today()
    with _on(300):
        policy1 = services.issue_policy(services.PolicyTerms(
            insured_org_id=sme1.org_id, start_date=clock.today(),
            end_date=today + timedelta(days=65), currency="USD", currencies=["EUR"],
            max_liability=D("2000000.00"), rates=RATES), actor=insurer)
    with _on(60):
        policy2 = services.issue_policy(services.PolicyTerms(
            insured_org_id=sme2.org_id, start_date=clock.today(),
            end_date=today + timedelta(days=305), currency="EUR",
            max_liability=D("800000.00"), rates=RATES, declaration_mode="monthly",
            declaration_days=10), actor=insurer)
    # Brazil: a limit approved for less than asked; a shipment declared on time; the buyer
    # does not pay; reported overdue within 60 days; claimed after 120; indemnified.
    with _on(249):
        brazil = services.apply_for_limit(
            policy1.id, actor=sme1, buyer_name="Comercial Paulista Ltda", buyer_country="BR",
            buyer_registration_no="11.222.333/0001-81", amount=D("80000.00"),
            payment_term_days=90)
        services.approve_limit(brazil.id, actor=insurer, amount=D("50000.00"),
                               reason="Two years of trading history; the rest on review")
    with _on(245):
        lost = services.declare_shipment(actor=sme1, buyer_limit_id=brazil.id,
                                         order_id=_order("ECI-BR-2026-0101").id)
        settlement.confirm_transfer(lost.premium_settlement_id, reference="BOC-ZH-PREM-0101",
                                    actor=insurer)
    with _on(182):
        services.report_overdue(lost.id, actor=sme1,
                                note="The buyer cites a cash-flow shortfall and has stopped "
                                     "answering reminders.")
    with _on(65):
        claim = services.file_claim(lost.id, actor=sme1, cause=ClaimCause.NON_PAYMENT,
                                    loss_amount=lost.insured.amount)
        services.start_assessment(claim.id, actor=insurer)
    with _on(58):
        services.approve_claim(claim.id, actor=insurer,
                               reason="Debt proven by the verified order, waybill and customs "
                                      "inventory; no dispute over the goods.")
    with _on(55):
        settlement.confirm_transfer(claim.settlement_id, reference="ECI-GD-IND-0001",
                                    actor=sme1)
    # Mexico: the trade demo's B2B order on 60 days' terms, declared on time; its
    # indemnity assigned to Huaxin Bank, acknowledged by the insurer, accepted by the bank.
    with _on(19):
        mexico = services.apply_for_limit(
            policy1.id, actor=sme1, buyer_name="Distribuidora Azteca S.A. de C.V.",
            buyer_country="MX", buyer_registration_no="DAZ-990101-AB1", amount=D("30000.00"),
            payment_term_days=90)
        services.approve_limit(mexico.id, actor=insurer, amount=D("30000.00"))
    with _on(17):
        azteca = services.declare_shipment(actor=sme1, buyer_limit_id=mexico.id,
                                           order_id=_order("B2B-MX-0042").id)
    assignment = services.request_assignment(azteca.id, actor=sme1, bank_org_id=bank1.org_id)
    services.acknowledge_assignment(assignment.id, actor=insurer)
    services.accept_assignment(assignment.id, actor=bank1)
    # Portugal: a revolving limit nearly used by the first shipment, so the second is
    # partly uninsured; and a limit on a second Portuguese buyer still waiting.
    with _on(9):
        porto = services.apply_for_limit(
            policy2.id, actor=sme2, buyer_name="Porto Têxteis Lda", buyer_country="PT",
            buyer_registration_no="PT509876543", amount=D("25000.00"), payment_term_days=120)
        services.approve_limit(porto.id, actor=insurer, amount=D("25000.00"))
    with _on(7):
        services.declare_shipment(actor=sme2, buyer_limit_id=porto.id,
                                  order_id=_order("ECI-PT-2026-0201").id)
    partly = services.declare_shipment(actor=sme2, buyer_limit_id=porto.id,
                                       order_id=_order("ECI-PT-2026-0202").id)
    services.apply_for_limit(policy2.id, actor=sme2, buyer_name="Lisboa Moda S.A.",
                             buyer_country="PT", buyer_registration_no="PT501234567",
                             amount=D("40000.00"), payment_term_days=60)
    # Policy financing: the first Portuguese shipment's indemnity assigned to Huaxin Bank,
    # and a request against it under Huaxin's credit-insured product, awaiting the bank.
    with _on(3):
        porto_cover = db.session.execute(select(ShipmentDeclaration).where(
            ShipmentDeclaration.order_id == _order("ECI-PT-2026-0201").id)).scalar_one()
        to_huaxin = services.request_assignment(porto_cover.id, actor=sme2,
                                                bank_org_id=bank1.org_id)
        services.acknowledge_assignment(to_huaxin.id, actor=insurer)
        services.accept_assignment(to_huaxin.id, actor=bank1)
    policy_product = db.session.execute(select(FinancingProduct).where(
        FinancingProduct.bank_org_id == bank1.org_id,
        FinancingProduct.kind == ProductKind.POLICY)).scalars().first()
    requests = 0
    if policy_product is not None:
        marketplace.submit_request(marketplace.RequestInput(
            amount=Money(D("12000.00"), "EUR"), tenor_days=90,
            purpose="Working capital until Porto Têxteis pays for the denim",
            collateral=[("insured_receivable", porto_cover.receivable_id)],
            product_ids=[policy_product.id]), actor=sme2)
        requests = 1
    db.session.flush()
    return (f"Demo insurance: policies {policy1.number} and {policy2.number}, 5 buyer limits, "
            f"4 declarations ({partly.uninsured} uninsured), 1 overdue report, 1 claim paid "
            f"({claim.indemnity}), 2 indemnities assigned to a bank, {requests} policy "
            f"financing request.")
