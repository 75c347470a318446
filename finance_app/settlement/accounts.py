"""The platform's own ledger accounts that settlement books through, opened on first use."""
from __future__ import annotations

from finance_app.ledger import services as ledger
from finance_app.ledger.models import LedgerAccount
from finance_app.ledger.states import AccountType, OwnerKind

BANK = "bank"                        # the platform's money at its bank
STRIPE_CLEARING = "stripe_clearing"  # card payments collected by Stripe, not yet paid out
FEE_INCOME = "fee_income"            # the platform's service fees earned
PLATFORM_FEES = "platform_fees"      # what an organisation owes the platform in fees

# Accounts that should come back to zero once every settlement has run its course;
# the reconciliation page shows each with what explains its balance.
CLEARING_PURPOSES = (STRIPE_CLEARING,)


def platform_bank(currency: str) -> LedgerAccount:
    return ledger.account(owner_kind=OwnerKind.PLATFORM, purpose=BANK, currency=currency,
                          type=AccountType.ASSET, name=f"Platform bank account {currency}")


def stripe_clearing(currency: str) -> LedgerAccount:
    return ledger.account(owner_kind=OwnerKind.PLATFORM, purpose=STRIPE_CLEARING,
                          currency=currency, type=AccountType.ASSET,
                          name=f"Card payments in transit (Stripe) {currency}")


def fee_income(currency: str) -> LedgerAccount:
    return ledger.account(owner_kind=OwnerKind.PLATFORM, purpose=FEE_INCOME,
                          currency=currency, type=AccountType.INCOME,
                          name=f"Platform service fees {currency}")


def fees_due(org_id: int, currency: str) -> LedgerAccount:
    """What ``org_id`` owes the platform in fees: the platform's receivable, shown to the
    organisation as its fee account."""
    return ledger.account(owner_kind=OwnerKind.ORGANISATION, org_id=org_id,
                          purpose=PLATFORM_FEES, currency=currency, type=AccountType.ASSET,
                          name=f"Platform fees due {currency}")
