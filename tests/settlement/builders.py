"""Builders for the settlement tests: an SME's repayment owed to a bank, a card payment
started and its PaymentIntent made."""
from __future__ import annotations

from decimal import Decimal

from finance_app import outbox
from finance_app.extensions import db
from finance_app.ledger import services as ledger
from finance_app.ledger.states import AccountType, OwnerKind
from finance_app.money import Money
from finance_app.settlement import services
from finance_app.settlement.states import ObligationKind


def M(amount: str, currency: str = "USD") -> Money:
    return Money(Decimal(amount), currency)


def owed(sme, bank, amount: str = "1250.00", currency: str = "USD", key: str = "inst-1", **kw):
    """The SME's repayment to the bank: it arrives in the bank's cash account and settles
    the loan's principal account."""
    cash = ledger.account(owner_kind=OwnerKind.ORGANISATION, org_id=bank.org_id, purpose="cash",
                          currency=currency, type=AccountType.ASSET)
    loan = ledger.account(owner_kind=OwnerKind.LOAN, owner_id=7, org_id=bank.org_id,
                          purpose="principal", currency=currency, type=AccountType.ASSET)
    record = services.create_record(
        ObligationKind.REPAYMENT, payer_org_id=sme.org_id, payee_org_id=bank.org_id,
        amount=M(amount, currency), debit_account=cash, credit_account=loan, key=key,
        description="Instalment 1 of loan 7", reference="loan:7/inst:1", actor=bank, **kw)
    db.session.commit()
    return record, cash, loan


def start_card(record, actor) -> None:
    message = services.start_card_payment(record.id, actor=actor)
    message_id = message.id if message is not None else None
    db.session.commit()
    if message_id is not None:
        assert outbox.deliver(message_id)
