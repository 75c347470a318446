"""Currency conversion between two ledger accounts, booked as one transaction.

``convert`` takes an amount out of one account in its currency and puts the converted
amount into an account in another currency, at the rate of the value date
(``rates.find_rate``). The platform's FX position account of each currency (one per
currency, an asset of the platform) stands between them, so each currency balances on
its own. Between two asset accounts (a bank or cash account):

    credit  from_account      X src       debit  position(src)   X src
    credit  position(dst)     Y dst       debit  to_account      Y dst

An account whose normal balance is a credit (a client's money held by the platform, a
liability) gets the mirror legs on its side: the amount always leaves ``from_account``
(its balance falls, against its floor if it has one) and arrives in ``to_account``.

Y is X x rate rounded once to the target currency's minor units, half to even
(``FX_ROUNDING``): ties go to the even unit, so over many conversions the rounding
neither favours the customer nor the platform, and the residuals left in the position
accounts do not pile up in one direction. The rate snapshot (rate, pair, date, source,
the stored rates used and how) is kept in the transaction's ``fx``.

The same key with the same request returns the first booking, even if the rate has been
corrected since; the same key with another request is refused.
"""
from __future__ import annotations

import json
from datetime import date
from decimal import ROUND_HALF_EVEN, localcontext

from flask_babel import gettext
from sqlalchemy import select

from finance_app import clock
from finance_app.accounts.models import User
from finance_app.errors import ValidationFailed
from finance_app.extensions import db
from finance_app.ledger import services as ledger
from finance_app.ledger.models import LedgerAccount, LedgerTransaction
from finance_app.ledger.rates import find_rate
from finance_app.ledger.states import AccountType, OwnerKind
from finance_app.money import Money, minor_units, round_exact

FX_ROUNDING = ROUND_HALF_EVEN
POSITION_PURPOSE = "fx_position"
KIND = "fx_conversion"


def position(currency: str) -> LedgerAccount:
    """The platform's FX position account in ``currency`` (opened on first use)."""
    return ledger.account(owner_kind=OwnerKind.PLATFORM, purpose=POSITION_PURPOSE,
                          currency=currency, type=AccountType.ASSET,
                          name=f"FX position {currency}")


def _account(account: LedgerAccount | int, field: str) -> LedgerAccount:
    found = db.session.get(LedgerAccount, account if isinstance(account, int) else account.id)
    if found is None:
        raise ValidationFailed(gettext("No ledger account %(id)s.", id=account), field=field)
    return found


def _leave(account: LedgerAccount, position_account: LedgerAccount, amount: Money
           ) -> list[ledger.Posting]:
    """``amount`` out of ``account`` (its normal balance falls) into the position."""
    if account.type.debit_normal:
        return [ledger.credit(account, amount), ledger.debit(position_account, amount)]
    return [ledger.debit(account, amount), ledger.credit(position_account, amount)]


def _arrive(account: LedgerAccount, position_account: LedgerAccount, amount: Money
            ) -> list[ledger.Posting]:
    """``amount`` from the position into ``account`` (its normal balance grows)."""
    if account.type.debit_normal:
        return [ledger.credit(position_account, amount), ledger.debit(account, amount)]
    return [ledger.debit(position_account, amount), ledger.credit(account, amount)]


def _request(source: LedgerAccount, target: LedgerAccount, amount: Money, value_date: date,
             description: str) -> dict:
    return {"from_account": source.id, "to_account": target.id, "amount": str(amount.amount),
            "currency": amount.currency, "value_date": value_date.isoformat(),
            "description": description}


def _retry(org_id: int | None, key: str, request: dict) -> LedgerTransaction | None:
    """The conversion already booked under this key for this very request, if any."""
    found = db.session.execute(select(LedgerTransaction).where(
        LedgerTransaction.scope == ledger.scope_for(org_id),
        LedgerTransaction.idempotency_key == key)).scalar_one_or_none()
    if found is None:
        return None
    if found.kind != KIND or json.loads(found.fx or "{}").get("request") != request:
        raise ledger.IdempotencyConflict(gettext(
            "The idempotency key %(key)s was already used for a different transaction.",
            key=key), field="idempotency_key")
    return found


def convert(from_account: LedgerAccount | int, to_account: LedgerAccount | int,
            amount: Money, *, key: str, org_id: int | None, value_date: date | None = None,
            actor: User | None = None, description: str = "") -> LedgerTransaction:
    """Convert ``amount`` (in ``from_account``'s currency) into ``to_account``'s currency
    at the rate of ``value_date`` (today by default) and book it; nothing is booked if the
    conversion is refused."""
    source, target = _account(from_account, "from_account"), _account(to_account, "to_account")
    if not isinstance(amount, Money):
        raise TypeError("convert takes Money")
    if amount.currency != source.currency:
        raise ValidationFailed(gettext(
            "The amount is in %(currency)s but the account it leaves holds %(other)s.",
            currency=amount.currency, other=source.currency), field="currency")
    if source.currency == target.currency:
        raise ValidationFailed(gettext("Both accounts hold %(currency)s: there is nothing "
                                       "to convert.", currency=source.currency),
                               field="currency")
    if amount.amount <= 0:
        raise ValidationFailed(gettext("The amount to convert must be greater than zero."),
                               field="amount")
    if amount.rounded(FX_ROUNDING) != amount:
        raise ValidationFailed(gettext("%(currency)s amounts have at most %(n)s decimal "
                                       "places.", currency=amount.currency,
                                       n=minor_units(amount.currency)),
                               field="amount")
    value_date = value_date or clock.today()
    if value_date > clock.today():
        raise ValidationFailed(gettext("The value date %(date)s is in the future.",
                                       date=value_date.isoformat()), field="value_date")
    request = _request(source, target, amount, value_date, description)
    done = _retry(org_id, key, request)
    if done is not None:
        return done

    quote = find_rate(source.currency, target.currency, value_date)
    with localcontext(prec=80):   # exact: an amount of 18 digits times a 40-digit rate
        exact = amount.amount * quote.rate
    converted = round_exact(exact, target.currency, FX_ROUNDING)
    if converted.amount == 0:
        raise ValidationFailed(gettext(
            "%(amount)s is less than the smallest %(currency)s unit once converted.",
            amount=str(amount), currency=target.currency), field="amount")
    # Opened in a fixed (currency) order, so two opposite first conversions do not wait
    # on each other's new position account.
    positions = {c: position(c) for c in sorted((source.currency, target.currency))}
    snapshot = {**quote.snapshot(), "request": request, "exact": f"{exact:f}",
                "rounding": FX_ROUNDING, "converted": str(converted.amount),
                "target_currency": target.currency}
    return ledger.book(
        [*_leave(source, positions[source.currency], amount),
         *_arrive(target, positions[target.currency], converted)],
        key=key, kind=KIND, org_id=org_id, value_date=value_date, actor=actor,
        description=description or f"FX {amount} -> {converted}", fx=snapshot)


def snapshot(transaction: LedgerTransaction) -> dict | None:
    """The rate snapshot of a conversion, as stored."""
    return json.loads(transaction.fx) if transaction.fx else None
