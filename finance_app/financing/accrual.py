"""Interest and penalty interest of a loan's instalments, from what has been paid when.

Pure functions on integers of minor units, dates and ``Decimal`` rates; no database.

* **Interest** of instalment *i* is simple interest, day by day over its period
  ``[period_start, due_date)``, on the principal not yet due and not yet paid: the
  principal of instalments *i, i+1, ...* less what was paid of it on or before that day. A
  repayment on day *d* stops interest on what it repaid from day *d*. Without
  prepayments this is exactly the schedule's interest (``schedule.build_schedule``).
* **Penalty interest** of an overdue instalment runs day by day from its due date on what
  of it is still unpaid (principal and interest) at the product's penalty rate: paid on
  its due date, nothing; one day late, one day's penalty.
* Each figure is the exact sum over its days, rounded once, half up, to the currency's
  minor units; the daily job books the difference between the rounded total to date and
  what it booked before, so bookings never drift from the exact figure.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from fractions import Fraction
from typing import Iterable, Sequence

from finance_app.money import INTEREST_ROUNDING, minor_units, round_exact


@dataclass(frozen=True)
class Paid:
    """``units`` (minor units) paid on ``on``."""
    on: date
    units: int


def _round(exact_units: Fraction, currency: str) -> int:
    """Exact minor units rounded once, half up, to whole minor units."""
    scale = 10 ** minor_units(currency)
    return round_exact(exact_units / scale, currency, INTEREST_ROUNDING).to_minor()


def _integral(start: date, end: date, base: int, drops: Iterable[Paid]) -> Fraction:
    """The sum over the days of ``[start, end)`` of the balance, which is ``base`` less
    every drop dated on or before the day (unit-days, exact)."""
    if end <= start:
        return Fraction(0)
    balance = base - sum(p.units for p in drops if p.on <= start)
    total, cursor = Fraction(0), start
    for paid in sorted((p for p in drops if start < p.on < end), key=lambda p: p.on):
        total += Fraction(max(balance, 0) * (paid.on - cursor).days)
        balance -= paid.units
        cursor = paid.on
    total += Fraction(max(balance, 0) * (end - cursor).days)
    return total


def period_interest(start: date, end: date, principal: int, paid: Sequence[Paid],
                    annual_rate: Decimal, basis: int, currency: str) -> int:
    """Interest (minor units) over ``[start, end)`` on ``principal`` (the principal of
    this instalment and every later one) less the principal ``paid`` of it by each day."""
    unit_days = _integral(start, end, principal, paid)
    return _round(unit_days * Fraction(annual_rate) / basis, currency)


def penalty(due: date, until: date, owed: int, paid: Sequence[Paid], penalty_rate: Decimal,
            basis: int, currency: str) -> int:
    """Penalty interest (minor units) for the days of ``[due, until)`` on ``owed`` (the
    instalment's principal and interest) less what was ``paid`` of it by each day."""
    if until <= due:
        return 0
    unit_days = _integral(due, until, owed, paid)
    return _round(unit_days * Fraction(penalty_rate) / basis, currency)


def split_in_order(amount: int, dues: Sequence[int]) -> list[int]:
    """``amount`` applied to ``dues`` in order, each taking what it can: the parts, and
    what is left over is ``amount - sum(parts)``."""
    parts, left = [], amount
    for due in dues:
        part = min(max(due, 0), left)
        parts.append(part)
        left -= part
    return parts
