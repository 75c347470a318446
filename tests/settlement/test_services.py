"""Settlement records, called directly: creating them, confirming a bank transfer,
cancelling, the platform's fees, card payments through a real local Stripe-compatible
server, remittance and reconciliation. Side effects are counted: ledger transactions and
entries, outbox messages, PaymentIntents at Stripe, notices."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select, update

from finance_app import clock, outbox
from finance_app.accounts.models import Notification
from finance_app.accounts.states import OrgKind, Role
from finance_app.audit.models import AuditEvent
from finance_app.errors import Conflict, Forbidden, IllegalTransition, NotFound, ValidationFailed
from finance_app.extensions import db
from finance_app.ledger import services as ledger
from finance_app.ledger.models import LedgerEntry, LedgerTransaction
from finance_app.ledger.states import AccountType, OwnerKind
from finance_app.money import Money
from finance_app.outbox import OutboxMessage, OutboxStatus
from finance_app.settlement import accounts, reconciliation, services, stripe_gateway
from finance_app.settlement.models import SettlementRecord
from finance_app.settlement.states import ObligationKind, SettlementMethod, SettlementStatus
from tests.factories import make_org_user
from tests.settlement.builders import owed, start_card


def M(amount: str, currency: str = "USD") -> Money:
    return Money(Decimal(amount), currency)


def count(model, *where) -> int:
    query = select(func.count()).select_from(model)
    for condition in where:
        query = query.where(condition)
    return db.session.execute(query).scalar_one()


# --------------------------------------------------------------------------- records

def test_a_record_is_pending_with_its_history_audit_and_a_notice_for_the_payer(parties):
    sme, bank, _ = parties
    record, cash, loan = owed(sme, bank)
    assert record.status is SettlementStatus.PENDING and record.money == M("1250.00")
    assert record.method is SettlementMethod.BANK_TRANSFER
    assert [h.action for h in record.history] == ["create"]
    assert count(AuditEvent, AuditEvent.action == "settlement.created") == 1
    assert count(LedgerTransaction) == 0, "a record books nothing until it is paid"
    outbox.run_due()
    notice = db.session.execute(select(Notification)).scalar_one()
    assert notice.org_id == sme.org_id and notice.link == f"/settlement/{record.id}"


def test_the_same_key_returns_the_first_record_and_other_content_is_refused(parties):
    sme, bank, _ = parties
    first, cash, loan = owed(sme, bank)
    again, _, _ = owed(sme, bank)
    assert again.id == first.id and count(SettlementRecord) == 1
    with pytest.raises(Conflict) as refused:
        owed(sme, bank, amount="1250.01")
    assert refused.value.field == "idempotency_key"
    assert count(SettlementRecord) == 1


@pytest.mark.parametrize("amount,currency,field", [
    ("0.00", "USD", "amount"), ("-5.00", "USD", "amount"), ("1.234", "USD", "amount"),
    ("10", "EUR", "debit_account"),
])
def test_bad_records_are_refused_and_nothing_is_stored(parties, amount, currency, field):
    sme, bank, _ = parties
    cash = ledger.account(owner_kind=OwnerKind.ORGANISATION, org_id=bank.org_id, purpose="cash",
                          currency="USD", type=AccountType.ASSET)
    loan = ledger.account(owner_kind=OwnerKind.LOAN, owner_id=7, org_id=bank.org_id,
                          purpose="principal", currency="USD", type=AccountType.ASSET)
    db.session.commit()
    with pytest.raises(ValidationFailed) as refused:
        services.create_record(ObligationKind.REPAYMENT, payer_org_id=sme.org_id,
                               payee_org_id=bank.org_id, amount=Money(Decimal(amount), currency),
                               debit_account=cash, credit_account=loan, key="k")
    assert refused.value.field == field
    db.session.rollback()
    assert count(SettlementRecord) == 0 and count(OutboxMessage) == 0


def test_an_unknown_currency_is_refused_by_name():
    from finance_app.money import UnknownCurrency
    with pytest.raises(UnknownCurrency):
        Money(Decimal("5"), "XYZ")


# --------------------------------------------------------------------------- bank transfer

def test_the_payee_confirms_a_transfer_and_it_books_once(parties):
    sme, bank, _ = parties
    record, cash, loan = owed(sme, bank)
    services.confirm_transfer(record.id, reference="HSBC-2026-12-01-0042", actor=bank)
    db.session.commit()
    assert record.status is SettlementStatus.PAID and record.bank_reference == "HSBC-2026-12-01-0042"
    transaction = db.session.get(LedgerTransaction, record.ledger_transaction_id)
    assert transaction.reference_kind == "settlement" and transaction.reference_id == record.id
    assert ledger.balance(cash) == M("1250.00") and ledger.balance(loan) == M("-1250.00")
    # a retry with the same reference changes nothing
    services.confirm_transfer(record.id, reference="HSBC-2026-12-01-0042", actor=bank)
    db.session.commit()
    assert count(LedgerTransaction) == 1 and count(LedgerEntry) == 2
    # another reference on a paid record is refused
    with pytest.raises(IllegalTransition):
        services.confirm_transfer(record.id, reference="OTHER-REF-1", actor=bank)
    db.session.rollback()
    assert [h.action for h in record.history] == ["create", "confirm"]
    outbox.run_due()
    assert {n.org_id for n in db.session.execute(select(Notification).where(
        Notification.kind == "settlement.paid")).scalars()} == {sme.org_id, bank.org_id}


@pytest.mark.parametrize("reference", ["", "ab", "x" * 81, "semi;colon", " \t "])
def test_a_bad_reference_is_refused_naming_the_field(parties, reference):
    sme, bank, _ = parties
    record, _, _ = owed(sme, bank)
    with pytest.raises(ValidationFailed) as refused:
        services.confirm_transfer(record.id, reference=reference, actor=bank)
    assert refused.value.field == "reference"
    db.session.rollback()
    assert count(LedgerTransaction) == 0 and record.status is SettlementStatus.PENDING


def test_only_the_payee_confirms_and_strangers_see_nothing(parties):
    sme, bank, operator = parties
    record, _, _ = owed(sme, bank)
    with pytest.raises(Forbidden):
        services.confirm_transfer(record.id, reference="REF-0001", actor=sme)
    stranger = make_org_user(OrgKind.BANK, roles=(Role.APPROVER,))
    with pytest.raises(NotFound):
        services.confirm_transfer(record.id, reference="REF-0001", actor=stranger)
    db.session.rollback()
    assert count(LedgerTransaction) == 0


def test_a_future_value_date_is_refused(parties):
    sme, bank, _ = parties
    record, _, _ = owed(sme, bank)
    with pytest.raises(ValidationFailed) as refused:
        services.confirm_transfer(record.id, reference="REF-0001", actor=bank,
                                  value_date=clock.today() + timedelta(days=1))
    assert refused.value.field == "value_date"


def test_a_cancelled_record_cannot_be_paid(parties):
    sme, bank, _ = parties
    record, _, _ = owed(sme, bank)
    with pytest.raises(ValidationFailed):
        services.cancel(record.id, reason="  ", actor=bank)
    services.cancel(record.id, reason="Loan restructured", actor=bank)
    db.session.commit()
    with pytest.raises(IllegalTransition):
        services.confirm_transfer(record.id, reference="REF-0001", actor=bank)
    db.session.rollback()
    assert count(LedgerTransaction) == 0 and record.status is SettlementStatus.CANCELLED


# --------------------------------------------------------------------------- fees

def test_a_fee_is_earned_when_charged_and_its_account_clears_when_paid(parties):
    sme, _, operator = parties
    record = services.invoice_fee(payer_org_id=sme.org_id, amount=M("300.00"),
                                  description="Platform service fee, November", actor=operator,
                                  key="fee-2026-11")
    db.session.commit()
    due = accounts.fees_due(sme.org_id, "USD")
    assert ledger.balance(due) == M("300.00")
    assert ledger.balance(accounts.fee_income("USD")) == M("300.00")
    assert record.payee_org_id == operator.org_id and record.credit_account_id == due.id
    again = services.invoice_fee(payer_org_id=sme.org_id, amount=M("300.00"),
                                 description="Platform service fee, November", actor=operator,
                                 key="fee-2026-11")
    assert again.id == record.id and count(LedgerTransaction) == 1
    services.confirm_transfer(record.id, reference="BOC-778812", actor=operator)
    db.session.commit()
    assert ledger.balance(due) == M("0.00")
    assert ledger.balance(accounts.platform_bank("USD")) == M("300.00")


def test_only_the_operator_charges_fees(parties):
    sme, bank, _ = parties
    with pytest.raises(Forbidden):
        services.invoice_fee(payer_org_id=sme.org_id, amount=M("10.00"), description="x",
                             actor=bank, key="k")
    assert count(LedgerTransaction) == 0


# --------------------------------------------------------------------------- card

def test_a_card_payment_is_created_once_at_stripe_and_books_on_success(parties, local_stripe):
    sme, bank, _ = parties
    record, cash, loan = owed(sme, bank, amount="1250.50", key="card-1")
    start_card(record, sme)
    db.session.refresh(record)
    created = local_stripe.intents(settlement_id=record.id)
    assert len(created) == 1 and record.payment_intent_id == created[0].id
    assert created[0].amount == 125050 and created[0].currency == "usd"
    # starting again (a double click, a retry) creates nothing more
    assert services.start_card_payment(record.id, actor=sme) is None
    db.session.commit()
    assert len(local_stripe.intents(settlement_id=record.id)) == 1
    assert count(LedgerTransaction) == 0, "nothing is booked before the money is taken"
    intent = services.pay_with_card(record.id, token=local_stripe.card_token(), actor=sme)
    db.session.commit()
    assert intent.status == "succeeded" and record.status is SettlementStatus.PAID
    clearing = accounts.stripe_clearing("USD")
    assert ledger.balance(clearing) == M("1250.50") and ledger.balance(loan) == M("-1250.50")
    assert ledger.balance(cash) == M("0.00"), "the bank is paid when Stripe pays out"
    assert count(LedgerEntry) == 2
    # reconciliation explains the clearing balance by this payment
    row = reconciliation.clearing()[0]
    assert row.balance == M("1250.50") and row.explained == M("1250.50")
    assert row.difference == M("0.00") and reconciliation.breaks() == []
    # the payout to the bank
    operator = make_org_user(OrgKind.PLATFORM_OPERATOR, roles=(Role.APPROVER,))
    services.record_remittance(record.id, reference="po_1QZ2026", actor=operator)
    services.record_remittance(record.id, reference="po_1QZ2026", actor=operator)
    db.session.commit()
    assert ledger.balance(clearing) == M("0.00") and ledger.balance(cash) == M("1250.50")
    assert count(LedgerTransaction) == 2 and count(LedgerEntry) == 4


def test_a_refused_card_books_nothing_and_another_card_can_pay(parties, local_stripe):
    sme, bank, _ = parties
    record, _, _ = owed(sme, bank, key="card-2")
    start_card(record, sme)
    with pytest.raises(stripe_gateway.CardRefused) as refused:
        services.pay_with_card(record.id, token=local_stripe.card_token("4000000000000341"),
                               actor=sme)
    db.session.commit()
    first = local_stripe.intents(settlement_id=record.id)[0].id
    outbox.deliver_new()   # the refused intent is cancelled and a fresh one made
    assert count(OutboxMessage, OutboxMessage.status != OutboxStatus.DONE) == 0
    assert "declined" in refused.value.message
    assert record.status is SettlementStatus.PENDING and "declined" in record.failure_reason
    assert count(LedgerTransaction) == 0
    services.pay_with_card(record.id, token=local_stripe.card_token(), actor=sme)
    db.session.commit()
    assert record.status is SettlementStatus.PAID and count(LedgerEntry) == 2
    intents = {pi.id: pi.status for pi in local_stripe.intents(settlement_id=record.id)}
    assert intents == {first: "canceled", record.payment_intent_id: "succeeded"}


def test_three_d_secure_finishes_in_the_browser_and_is_read_back(parties, local_stripe):
    sme, bank, _ = parties
    record, _, _ = owed(sme, bank, amount="88.00", currency="EUR", key="card-3ds")
    start_card(record, sme)
    intent = services.pay_with_card(record.id, token=local_stripe.card_token("4000002760003184"),
                                    actor=sme)
    db.session.commit()
    assert intent.status == "requires_action" and intent.client_secret
    services.refresh_card_payment(record.id, actor=sme)
    db.session.commit()
    assert record.status is SettlementStatus.PENDING and count(LedgerTransaction) == 0
    local_stripe.authenticate(intent.id, intent.client_secret)
    services.refresh_card_payment(record.id, actor=sme)
    db.session.commit()
    assert record.status is SettlementStatus.PAID and count(LedgerEntry) == 2


def test_mainland_rmb_goes_by_transfer_and_odd_amounts_are_refused(parties, local_stripe):
    sme, bank, _ = parties
    rmb, _, _ = owed(sme, bank, amount="100.00", currency="CNY", key="rmb")
    with pytest.raises(ValidationFailed) as refused:
        services.start_card_payment(rmb.id, actor=sme)
    assert "bank transfer" in refused.value.message
    db.session.rollback()
    cross_border, _, _ = owed(sme, bank, amount="100.00", currency="CNY", key="rmb-x",
                              cross_border_rmb=True)
    start_card(cross_border, sme)
    assert len(local_stripe.intents(settlement_id=cross_border.id)) == 1
    dinars, _, _ = owed(sme, bank, amount="10.125", currency="KWD", key="kwd")
    with pytest.raises(ValidationFailed):
        services.start_card_payment(dinars.id, actor=sme)
    db.session.rollback()
    assert count(OutboxMessage, OutboxMessage.topic == services.CREATE_INTENT) == 1


def test_only_the_payer_pays(parties, local_stripe):
    sme, bank, _ = parties
    record, _, _ = owed(sme, bank, key="who-pays")
    with pytest.raises(Forbidden):
        services.start_card_payment(record.id, actor=bank)
    db.session.rollback()
    assert count(OutboxMessage, OutboxMessage.topic == services.CREATE_INTENT) == 0


def test_when_stripe_cannot_be_reached_nothing_is_booked_and_a_retry_creates_one_intent(
        app, parties, local_stripe):
    from tests.stripe_server import closed_port_url
    sme, bank, _ = parties
    record, _, _ = owed(sme, bank, key="down")
    app.config["STRIPE_API_BASE"] = closed_port_url()
    message = services.start_card_payment(record.id, actor=sme)
    message_id = message.id
    db.session.commit()
    assert outbox.deliver(message_id) is False
    message = db.session.get(OutboxMessage, message_id)
    assert message.status is OutboxStatus.PENDING and message.attempts == 1
    assert "cannot be reached" in message.last_error
    assert record.payment_intent_id is None and count(LedgerTransaction) == 0
    # Stripe is back: the same instruction (same idempotency key) creates one intent
    app.config["STRIPE_API_BASE"] = local_stripe.url
    assert services.start_card_payment(record.id, actor=sme).id == message_id
    db.session.commit()
    assert outbox.deliver(message_id) is True
    db.session.refresh(record)
    assert record.payment_intent_id and len(local_stripe.intents(settlement_id=record.id)) == 1


def test_cancelling_a_card_payment_cancels_the_intent_through_the_outbox(parties, local_stripe):
    sme, bank, _ = parties
    record, _, _ = owed(sme, bank, key="cancel-card")
    start_card(record, sme)
    outbox.run_due()   # the notice of the new payment
    services.cancel(record.id, reason="Paid another way", actor=bank)
    db.session.commit()
    assert outbox.run_due() == (2, 0)   # the cancellation at Stripe and the notice
    intent = local_stripe.client().v1.payment_intents.retrieve(record.payment_intent_id)
    assert intent.status == "canceled"


@pytest.mark.parametrize("amount,currency,units", [
    ("1250.50", "USD", 125050), ("500", "JPY", 500), ("12.340", "KWD", 12340),
    ("3000", "ISK", 300000), ("1500", "MGA", 1500), ("9.99", "EUR", 999),
])
def test_amounts_are_sent_in_stripes_units(amount, currency, units):
    money = Money(Decimal(amount), currency).rounded()
    assert stripe_gateway.to_stripe_amount(money) == units
    assert stripe_gateway.from_stripe_amount(units, currency) == money


@pytest.mark.parametrize("amount,currency", [("12.345", "KWD"), ("3000.50", "ISK")])
def test_amounts_stripe_cannot_charge_exactly_are_refused(amount, currency):
    with pytest.raises(ValidationFailed):
        stripe_gateway.to_stripe_amount(Money(Decimal(amount), currency))


# --------------------------------------------------------------------------- reconciliation

def test_reconciliation_finds_a_paid_record_without_its_booking(parties):
    sme, bank, _ = parties
    record, _, _ = owed(sme, bank, key="broken")
    assert reconciliation.breaks() == []
    db.session.execute(update(SettlementRecord).where(SettlementRecord.id == record.id)
                       .values(status=SettlementStatus.PAID))
    db.session.commit()
    found = reconciliation.breaks()
    assert [(b.area, b.subject) for b in found] == [("settlement", f"payment {record.id}")]
    assert "no ledger transaction" in found[0].problem
