"""The reconciliation check for loans: each loan's ledger accounts hold what its
instalments say is owed (principal, interest fallen due, penalty interest)."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from sqlalchemy import case, func, select

from finance_app.extensions import db
from finance_app.financing import accounts
from finance_app.financing.models import Instalment
from finance_app.ledger.models import LedgerAccount
from finance_app.ledger.states import OwnerKind
from finance_app.money import Money
from finance_app.settlement.reconciliation import Break, check


@check
def _loans() -> list[Break]:
    owed = (select(Instalment.loan_id.label("loan_id"), Instalment.currency.label("currency"),
                   func.sum(Instalment.principal_due - Instalment.principal_paid)
                   .label(accounts.PRINCIPAL),
                   func.sum(case((Instalment.interest_recognised > 0,
                                  case((Instalment.interest_due > Instalment.interest_paid,
                                        Instalment.interest_due - Instalment.interest_paid),
                                       else_=0)), else_=0)).label(accounts.INTEREST),
                   func.sum(Instalment.penalty_accrued - Instalment.penalty_paid)
                   .label(accounts.PENALTY))
            .group_by(Instalment.loan_id, Instalment.currency).subquery())
    books = (select(LedgerAccount.owner_id, LedgerAccount.purpose, LedgerAccount.currency,
                    LedgerAccount.balance)
             .where(LedgerAccount.owner_kind == OwnerKind.LOAN,
                    LedgerAccount.purpose.in_([accounts.PRINCIPAL, accounts.INTEREST,
                                               accounts.PENALTY])))
    ledger = {(owner, purpose, currency): balance
              for owner, purpose, currency, balance in db.session.execute(books)}
    breaks = []
    for row in db.session.execute(select(owed)).mappings():
        for purpose in (accounts.PRINCIPAL, accounts.INTEREST, accounts.PENALTY):
            expected = int(row[purpose] or 0)
            booked = int(ledger.get((row["loan_id"], purpose, row["currency"]), 0))
            if booked != expected:
                breaks.append(Break("financing", f"loan {row['loan_id']}", str(_l(
                    "%(account)s: the ledger holds %(booked)s, the instalments say %(owed)s",
                    account=purpose, booked=str(Money.from_minor(booked, row["currency"])),
                    owed=str(Money.from_minor(expected, row["currency"])))),
                    f"/financing/loans/{row['loan_id']}"))
    return breaks
