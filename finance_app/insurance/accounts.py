"""The ledger accounts insurance books through, opened on first use.

Premiums are earned when a shipment is declared (the policy's premium receivable against
the insurer's premium income) and settled when the SME pays; an approved claim is the
insurer's indemnity expense against the policy's indemnity payable, settled when the
indemnity is paid out of the insurer's bank account; the insurer's share of a recovery is
the policy's recovery receivable against the insurer's recovery income.
"""
from __future__ import annotations

from sqlalchemy import select

from finance_app.extensions import db
from finance_app.ledger import services as ledger
from finance_app.ledger.models import LedgerAccount
from finance_app.ledger.states import AccountType, OwnerKind

PREMIUM_DUE = "premium_due"
PREMIUM_INCOME = "premium_income"
INDEMNITY_EXPENSE = "indemnity_expense"
INDEMNITY_PAYABLE = "indemnity_payable"
RECOVERY_DUE = "recovery_due"
RECOVERY_INCOME = "recovery_income"
BANK = "bank"


def _policy_account(policy, purpose: str, currency: str, type: AccountType, name: str
                    ) -> LedgerAccount:
    return ledger.account(owner_kind=OwnerKind.POLICY, org_id=policy.insurer_org_id,
                          owner_id=policy.id, purpose=purpose, currency=currency, type=type,
                          name=f"{name} {policy.number} {currency}")


def premium_due(policy, currency: str) -> LedgerAccount:
    return _policy_account(policy, PREMIUM_DUE, currency, AccountType.ASSET, "Premium due")


def indemnity_expense(policy, currency: str) -> LedgerAccount:
    return _policy_account(policy, INDEMNITY_EXPENSE, currency, AccountType.EXPENSE,
                           "Indemnities")


def indemnity_payable(policy, currency: str) -> LedgerAccount:
    return _policy_account(policy, INDEMNITY_PAYABLE, currency, AccountType.LIABILITY,
                           "Indemnity payable")


def recovery_due(policy, currency: str) -> LedgerAccount:
    return _policy_account(policy, RECOVERY_DUE, currency, AccountType.ASSET, "Recovery due")


def premium_income(org_id: int, currency: str) -> LedgerAccount:
    return ledger.account(owner_kind=OwnerKind.ORGANISATION, org_id=org_id,
                          purpose=PREMIUM_INCOME, currency=currency, type=AccountType.INCOME,
                          name=f"Premium income {currency}")


def recovery_income(org_id: int, currency: str) -> LedgerAccount:
    return ledger.account(owner_kind=OwnerKind.ORGANISATION, org_id=org_id,
                          purpose=RECOVERY_INCOME, currency=currency, type=AccountType.INCOME,
                          name=f"Recoveries {currency}")


def bank(org_id: int, currency: str) -> LedgerAccount:
    """The organisation's bank account as the platform books it (premiums arrive in the
    insurer's, indemnities leave it)."""
    return ledger.account(owner_kind=OwnerKind.ORGANISATION, org_id=org_id, purpose=BANK,
                          currency=currency, type=AccountType.ASSET,
                          name=f"Bank account {currency}")


def existing_policy_account(policy_id: int, insurer_org_id: int, purpose: str, currency: str
                            ) -> LedgerAccount | None:
    """The policy's account if it was ever opened (reads never open accounts)."""
    key = ledger.owner_key(OwnerKind.POLICY, insurer_org_id, policy_id)
    return db.session.execute(select(LedgerAccount).where(
        LedgerAccount.owner_key == key, LedgerAccount.purpose == purpose,
        LedgerAccount.currency == currency)).scalar_one_or_none()
