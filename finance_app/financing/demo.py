"""Demo financing: each bank's products (receivables, orders, warehouse receipts; Huaxin also
credit-insured receivables, Yuerong a paused product), an approver per bank for four eyes,
a facility from Huaxin to Zhuhai Coastline, loans in every state, and open requests.

Everything goes through the services, as people would do it. Loans that must have a past
(overdue, defaulted, repaid) are made on the business clock moved back to the day of each
step, against trade documents filed on those days, in the loan's own currency (no exchange
rates exist for past days); the present then books what time has made due.

    loan                             bank     SME   state
    receivables, B2B-MX-0015         Huaxin   sme1  repaid on time, collateral released
    order financing, B2B-BR-0088     Huaxin   sme1  overdue (two instalments paid, one late)
    receivables, B2B-BR-0231         Yuerong  sme2  defaulted
    warehouse receipt (LED lamps)    Yuerong  sme2  disbursed, current
    receivables, B2B-MX-0042         Huaxin   sme1  awaiting disbursement
    order financing, OW-PT-0009      Huaxin   sme1  cancelled before disbursement

    request                          to              decisions
    warehouse receipt (tableware)    Huaxin, Yuerong an approved offer; one awaiting approval
    receivables, B2B-PT-0310         Huaxin, Yuerong a rejection; one still to decide

Safe to run twice: a second run only refreshes the approvers' passwords.
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal

import pyotp
from sqlalchemy import select

from finance_app import clock
from finance_app.accounts import totp
from finance_app.accounts.models import User, UserRole
from finance_app.accounts.states import Role
from finance_app.extensions import db
from finance_app.financing import loans, marketplace, products, review
from finance_app.financing.models import FinancingProduct, Loan
from finance_app.financing.products import ProductTerms
from finance_app.financing.states import InstalmentStatus, ProductKind, RepaymentMethod
from finance_app.money import Money
from finance_app.settlement import services as settlement
from finance_app.trade import services as trade
from finance_app.trade.demo import AMAZON_MX, LOJA, MERCADO, SME1, SME2, documents
from finance_app.trade.models import Order, Receivable
from finance_app.trade.states import DocumentSource
from finance_app.warehouse.models import WarehouseReceipt

APPROVERS = (("bank1", "bank1-approver", "Huaxin"), ("bank2", "bank2-approver", "Yuerong"))
MARKER = "华信应收账款融资 Huaxin Receivables Finance"
D = Decimal


def _user(key: str) -> User:
    return db.session.execute(select(User).where(User.email == f"{key}@demo.test")).scalar_one()


def _approvers(password_hash: str) -> list[str]:
    """Each bank's second user, an approver (with a second factor): created once, their
    password reset to the demo password on every run, as ``finance_app.demo`` does."""
    lines = ["Bank approvers (four eyes: they approve what the officers prepare):"]
    for bank_key, key, short in APPROVERS:
        email = f"{key}@demo.test"
        user = db.session.execute(select(User).where(User.email == email)).scalar_one_or_none()
        if user is None:
            user = User(org_id=_user(bank_key).org_id, email=email, name=f"{short} {key}",
                        password_hash=password_hash)
            user.role_rows = [UserRole(role=Role.APPROVER)]
            db.session.add(user)
            db.session.flush()
        else:
            user.password_hash = password_hash
            user.active, user.failed_signins, user.locked_until = True, 0, None
        if not user.totp_enabled:
            user.totp_secret = pyotp.random_base32()
            user.totp_enabled_at = clock.now()
            totp.issue_recovery_codes(user)
        lines.append(f"  {email:<26} {'bank approver':<20} {user.organisation.name_en}"
                     f"  second factor secret {user.totp_secret}")
    return lines


# --------------------------------------------------------------------------- products

def _terms(name: str, kind: ProductKind, currencies: list[str], advance: str, low: str,
           high: str, day_count: int, tenor: int, repayment: str, penalty: str,
           default_after: int, fee: str, description: str, **extra) -> ProductTerms:
    return ProductTerms(name=name, kind=kind, currencies=currencies,
                        max_advance_rate=D(advance), rate_min=D(low), rate_max=D(high),
                        day_count=day_count, max_tenor_days=tenor, repayment_type=repayment,
                        penalty_rate=D(penalty), default_after_days=default_after,
                        arrangement_fee_rate=D(fee), description=description, **extra)


def _products(bank1: User, bank2: User) -> dict[str, FinancingProduct]:
    receipt_ltv = dict(margin_call_ltv=D("0.7500"), liquidation_ltv=D("0.8500"))
    catalogue = {
        "hx_receivable": (bank1, _terms(
            MARKER, ProductKind.RECEIVABLE, ["USD", "EUR", "CNY"], "0.8000", "0.045000",
            "0.085000", 360, 180, "bullet", "0.120000", 60, "0.005000",
            "Advances up to 80 % of verified B2B export receivables; repaid in one sum "
            "when the buyer pays.")),
        "hx_order": (bank1, _terms(
            "华信订单融资 Huaxin Order Finance", ProductKind.ORDER, ["USD", "EUR"], "0.6000",
            "0.060000", "0.100000", 360, 150, "equal_instalments", "0.150000", 60,
            "0.008000", "Pre-shipment finance on confirmed export orders, repaid monthly.")),
        "hx_receipt": (bank1, _terms(
            "华信仓单质押贷 Huaxin Warehouse-Receipt Loan", ProductKind.WAREHOUSE_RECEIPT,
            ["USD", "EUR", "CNY"], "0.6000", "0.050000", "0.090000", 360, 180,
            "equal_instalments", "0.120000", 45, "0.004000",
            "Loans against goods in bonded and overseas warehouses, pledged on the platform.",
            cure_days=10, **receipt_ltv)),
        "hx_policy": (bank1, _terms(
            "华信信保融资 Huaxin Credit-Insured Finance", ProductKind.POLICY,
            ["USD", "EUR", "CNY"],
            "0.9000", "0.035000", "0.060000", 360, 180, "bullet", "0.100000", 90,
            "0.003000", "Receivables insured by an export credit policy whose indemnity is "
            "assigned to the bank.")),
        "yr_receivable": (bank2, _terms(
            "粤融应收账款保理 Yuerong Receivables Factoring", ProductKind.RECEIVABLE,
            ["CNY", "USD"], "0.8500", "0.050000", "0.095000", 365, 120, "bullet",
            "0.150000", 30, "0.006000", "Factoring of verified export receivables, with "
            "recourse.")),
        "yr_order": (bank2, _terms(
            "粤融订单贷 Yuerong Order Loan", ProductKind.ORDER, ["USD", "CNY"], "0.5500",
            "0.065000", "0.110000", 365, 120, "bullet", "0.150000", 30, "0.010000",
            "Working capital against unshipped export orders.")),
        "yr_receipt": (bank2, _terms(
            "粤融仓单贷 Yuerong Warehouse-Receipt Loan", ProductKind.WAREHOUSE_RECEIPT,
            ["USD", "EUR", "CNY"], "0.6500", "0.055000", "0.095000", 365, 180,
            "equal_instalments", "0.120000", 45, "0.005000",
            "Inventory finance on warehouse receipts, with margin calls.", cure_days=7,
            **receipt_ltv)),
        "yr_express": (bank2, _terms(
            "粤融跨境快贷 Yuerong Express Receivables", ProductKind.RECEIVABLE, ["USD"],
            "0.7000", "0.070000", "0.120000", 365, 60, "bullet", "0.180000", 30, "0.000000",
            "Same-day advances on small receivables for rated sellers.", min_rating="A")),
    }
    made = {key: products.create_product(terms, actor=actor)
            for key, (actor, terms) in catalogue.items()}
    products.set_product_status(made["yr_express"].id, "pause", actor=bank2,
                                note="Paused for the quarterly credit review.")
    return made


# --------------------------------------------------------------------------- helpers

def _on(day: date, hour: int = 2) -> datetime:
    """A moment (naive UTC) on the business date ``day`` (10:00 in China)."""
    return datetime.combine(day, time(hour, 0))


def _file(docs) -> None:
    trade.ingest(docs, actor=None, source=DocumentSource.JSON, filename="demo-financing")
    db.session.flush()


def _receivable(order_no: str) -> Receivable:
    return db.session.execute(select(Receivable).join(Order).where(
        Order.order_no == order_no)).scalar_one()


def _order(order_no: str) -> Order:
    return db.session.execute(select(Order).where(Order.order_no == order_no)).scalar_one()


def _request(sme: User, chosen: list[FinancingProduct], kind: str, asset_id: int,
             amount: Money, tenor: int, purpose: str):
    return marketplace.submit_request(marketplace.RequestInput(
        amount=amount, tenor_days=tenor, purpose=purpose, collateral=[(kind, asset_id)],
        product_ids=[p.id for p in chosen]), actor=sme)


def _target(request, bank: User):
    return next(t for t in request.targets if t.bank_org_id == bank.org_id)


def _offer(request, officer: User, approver: User | None, amount: Money, rate: str,
           tenor: int, conditions: str | None = None):
    decision = review.prepare_offer(_target(request, officer).id, review.OfferTerms(
        amount=amount, annual_rate=D(rate), tenor_days=tenor, conditions=conditions),
        actor=officer)
    if approver is not None:
        review.approve(decision.id, actor=approver)
    return decision


def _pay(loan: Loan, sme: User, bank: User, amount: Money, key: str, reference: str) -> None:
    repayment = loans.start_repayment(loan.id, actor=sme, amount=amount,
                                      method=RepaymentMethod.BANK_TRANSFER, key=key)
    settlement.confirm_transfer(repayment.settlement_record_id, reference=reference,
                                actor=bank)


def _past_loan(day: date, sme: User, officer: User, approver: User,
               product: FinancingProduct, kind: str, asset_id: int, amount: Money,
               tenor: int, rate: str, purpose: str, reference: str,
               conditions: str | None = None) -> Loan:
    """Requested on ``day``, the offer prepared and approved that day, accepted the next,
    disbursed the day after."""
    with clock.frozen_at(_on(day)):
        request = _request(sme, [product], kind, asset_id, amount, tenor, purpose)
    with clock.frozen_at(_on(day, 3)):
        decision = _offer(request, officer, None, amount, rate, tenor, conditions)
    with clock.frozen_at(_on(day, 7)):
        review.approve(decision.id, actor=approver)
    with clock.frozen_at(_on(day + timedelta(days=1))):
        loan = loans.accept_offer(decision.id, actor=sme)
    with clock.frozen_at(_on(day + timedelta(days=2))):
        loans.disburse(loan.id, actor=officer, reference=reference)
    return loan


# --------------------------------------------------------------------------- the demo

def seed_financing(operator_user: User, *, password_hash: str) -> str:
    """The demo's financing records (see the module notes). ``password_hash``: the demo
    users' password, for the approvers. The platform operator (``operator_user``) takes no
    part: banks and SMEs act for themselves."""
    lines = _approvers(password_hash)
    bank1, bank2 = _user("bank1"), _user("bank2")
    if db.session.execute(select(FinancingProduct.id).where(
            FinancingProduct.bank_org_id == bank1.org_id,
            FinancingProduct.name == MARKER)).first():
        return "\n".join(lines + ["Demo financing already there."])
    sme1, sme2 = _user("sme1"), _user("sme2")
    hx_ok, yr_ok = _user("bank1-approver"), _user("bank2-approver")
    today = clock.today()
    catalogue = _products(bank1, bank2)
    db.session.flush()
    with clock.frozen_at(_on(today - timedelta(days=200))):
        products.grant_facility(actor=hx_ok, sme_org_id=sme1.org_id,
                                limit=Money(D("250000.00"), "USD"),
                                expiry_date=today + timedelta(days=165),
                                note="Annual trade-finance line, reviewed each January.")
    usd = lambda text: Money(D(text), "USD")  # noqa: E731

    # Repaid on time: a receivable of an export to Mexico, financed 90 days, repaid early.
    start = today - timedelta(days=152)
    with clock.frozen_at(_on(start)):
        _file(documents(21, SME1, AMAZON_MX, "B2B-MX-0015", currency="USD", trade_mode="9710",
                     buyer="Distribuidora Azteca S.A. de C.V.", country="MX",
                     lines=[("Solar garden light", "6000", "3.80")], paid=None, terms=120,
                     days_ago=3))
    repaid = _past_loan(start + timedelta(days=1), sme1, bank1, hx_ok,
                        catalogue["hx_receivable"], "receivable",
                        _receivable("B2B-MX-0015").id, usd("18000.00"), 90, "0.062000",
                        "Purchase of solar lights for the Mexican spring season",
                        "HX-DISB-2026-0311", "Buyer notified of the assignment.")
    with clock.frozen_at(_on(repaid.maturity_date - timedelta(days=3))):
        _pay(repaid, sme1, bank1, loans.position(repaid).total, "demo-repaid-full",
             "BOC-ZH-REPAY-0311")

    # Overdue: an unshipped order to Brazil, monthly instalments; two paid, the third late.
    start = today - timedelta(days=100)
    with clock.frozen_at(_on(start)):
        _file(documents(22, SME1, MERCADO, "B2B-BR-0088", currency="USD", trade_mode="9710",
                     buyer="Casa Verde Importadora Ltda", country="BR",
                     lines=[("LED panel light 600x600", "1500", "14.20")], paid=None,
                     terms=90, days_ago=2, inventory=False, waybill=False))
    overdue = _past_loan(start + timedelta(days=1), sme1, bank1, hx_ok, catalogue["hx_order"],
                         "order", _order("B2B-BR-0088").id, usd("12000.00"), 120,
                         "0.078000", "Production of LED panels for Casa Verde",
                         "HX-DISB-2026-0402")
    for row in loans.instalments(overdue)[:2]:
        with clock.frozen_at(_on(row.due_date)):
            _pay(overdue, sme1, bank1, row.money(row.principal_left + row.interest_left),
                 f"demo-overdue-{row.number}", f"BOC-ZH-INST-0402-{row.number}")

    # Defaulted: a receivable of an export to Brazil the buyer never paid.
    start = today - timedelta(days=232)
    with clock.frozen_at(_on(start)):
        _file(documents(23, SME2, MERCADO, "B2B-BR-0231", currency="USD", trade_mode="9710",
                     buyer="Moda Carioca Comércio Ltda", country="BR",
                     lines=[("Denim jacket", "1200", "11.50")], paid=None, terms=90,
                     days_ago=3))
    defaulted = _past_loan(start + timedelta(days=1), sme2, bank2, yr_ok,
                           catalogue["yr_receivable"], "receivable",
                           _receivable("B2B-BR-0231").id, usd("11000.00"), 90, "0.085000",
                           "Fabric purchase for the autumn collection", "YR-DISB-2026-0117")

    for loan in (overdue, defaulted):   # what the daily job would have booked by today
        loans.bring_up_to_date(loans.get_loan(loan.id, lock=True), today)

    # Disbursed today: Dongguan Humen's LED lamps in the bonded warehouse, at Yuerong.
    lamps = db.session.execute(select(WarehouseReceipt).where(
        WarehouseReceipt.depositor_org_id == sme2.org_id,
        WarehouseReceipt.hs_code == "9405210000")).scalars().first()
    request = _request(sme2, [catalogue["yr_receipt"]], "warehouse_receipt", lamps.id,
                       usd("10000.00"), 180, "Stock for the Black Friday season in the EU")
    current = loans.accept_offer(_offer(request, bank2, yr_ok, usd("10000.00"), "0.072000",
                                        180, "Goods to stay insured for their full value."
                                        ).id, actor=sme2)
    loans.disburse(current.id, actor=bank2, reference="YR-DISB-2026-1201")

    # Awaiting disbursement: the verified receivable from Distribuidora Azteca, at Huaxin.
    request = _request(sme1, [catalogue["hx_receivable"]], "receivable",
                       _receivable("B2B-MX-0042").id, usd("6000.00"), 35,
                       "Bridge until Distribuidora Azteca pays for the garden lights")
    awaiting = loans.accept_offer(_offer(request, bank1, hx_ok, usd("6000.00"), "0.058000",
                                         35).id, actor=sme1)

    # Cancelled: the Lisbon overseas-warehouse order, before the money was paid out.
    request = _request(sme1, [catalogue["hx_order"]], "order", _order("OW-PT-0009").id,
                       Money(D("1500.00"), "EUR"), 60, "Packaging for the Lisbon vase order")
    cancelled = loans.accept_offer(_offer(request, bank1, hx_ok, Money(D("1500.00"), "EUR"),
                                          "0.068000", 60).id, actor=sme1)
    loans.cancel_loan(cancelled.id, actor=sme1,
                      reason="Loja Casa postponed the order; we no longer need the money.")

    # Open, at both banks: the tableware in Lisbon; Huaxin's offer approved, Yuerong's not yet.
    tableware = db.session.execute(select(WarehouseReceipt).where(
        WarehouseReceipt.depositor_org_id == sme1.org_id,
        WarehouseReceipt.hs_code == "6911100000")).scalars().first()
    eur = Money(D("15000.00"), "EUR")
    request = _request(sme1, [catalogue["hx_receipt"], catalogue["yr_receipt"]],
                       "warehouse_receipt", tableware.id, eur, 120,
                       "Restocking the Lisbon warehouse before Christmas")
    _offer(request, bank1, hx_ok, eur, "0.056000", 120,
           "The goods' insurance is assigned to the bank before disbursement.")
    _offer(request, bank2, None, Money(D("14000.00"), "EUR"), "0.061000", 120)

    # Rejected by Huaxin, still with Yuerong: a new export of Dongguan Humen to Portugal.
    _file(documents(24, SME2, LOJA, "B2B-PT-0310", currency="USD", trade_mode="9710",
                 buyer="Lisboa Moda Lda", country="PT", lines=[("Silk scarf", "2000", "4.75")],
                 paid=None, terms=90, days_ago=10))
    request = _request(sme2, [catalogue["hx_receivable"], catalogue["yr_receivable"]],
                       "receivable", _receivable("B2B-PT-0310").id, usd("7500.00"), 80,
                       "Working capital for the next scarf order")
    rejection = review.prepare_rejection(
        _target(request, bank1).id, reasons=["credit_history"], actor=bank1,
        text="The applicant has a loan in default with another bank; we can reconsider once "
             "it is settled.")
    review.approve(rejection.id, actor=hx_ok)
    db.session.flush()

    states = ", ".join(f"{loan.status.value.replace('_', ' ')}" for loan in
                       (repaid, overdue, defaulted, current, awaiting, cancelled))
    late = sum(1 for r in loans.instalments(overdue) if r.status is InstalmentStatus.OVERDUE)
    lines.append(f"Demo financing: {len(catalogue)} products (1 paused), a facility for "
                 f"{sme1.organisation.name_en} at {bank1.organisation.name_en}, 6 loans "
                 f"({states}; {late} instalment overdue), 2 open requests (an approved offer "
                 f"and one awaiting approval; a rejection).")
    return "\n".join(lines)
