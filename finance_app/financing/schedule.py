"""Repayment schedules for a loan: what is due when, principal and interest apart.

Pure functions on ``Money`` and ``Decimal``: no database, no Flask, never a float.

Conventions
-----------
* **Interest runs from the disbursement date** (``start``) and each period runs from the
  previous due date (or ``start``) up to the due date, that day not included: a period's
  ``days`` are the actual calendar days between the two dates.
* **Day count.** Interest is simple interest on the principal outstanding at the start of
  the period: ``outstanding * annual_rate * days / basis``, the basis being ``ACT_360``
  (money-market, most USD and EUR loans) or ``ACT_365`` (fixed 365, RMB loans). The rate
  is a fraction: ``Decimal("0.0650")`` is 6.50 %.
* **Rounding once per instalment.** Each period's interest is computed exactly (as a
  ``Fraction``) and rounded once to the currency's minor units, half up
  (``INTEREST_ROUNDING``); nothing is rounded twice. Currencies with 0, 2 or 3 minor units
  (JPY, USD, KWD) are handled alike.
* **Repayment types.** ``BULLET``: a single instalment at ``start + tenor_days`` repays
  all the principal with the interest for the whole tenor. ``EQUAL_INSTALMENTS``: monthly
  instalments due on the day of the month of ``start`` (clamped to the month's last day:
  Jan 31 -> Feb 28 or 29 -> Mar 31), every month strictly before the final date, and a
  final instalment always due exactly on ``start + tenor_days`` (so the last period may
  be shorter or longer than a month; a monthly date falling a day before the final date
  still counts, making a one-day last period).
* **The last instalment absorbs the rounding.** The principal is split equally: each of
  the first ``n - 1`` instalments repays ``principal / n`` rounded *down* to minor units,
  and the last repays the rest, so the principal parts add up to the principal exactly and
  nothing is left outstanding after the last instalment.
* **APR** (``apr``): the annual percentage rate of charge of the EU consumer-credit
  directive, the rate ``r`` (a fraction, rounded half up to 4 decimals) at which what the
  borrower receives, ``principal - fees``, equals the present value of what they repay:

      principal - fees = sum(total_i / (1 + r) ** (t_i / 365))

  ``t_i`` being the actual days from ``start`` to instalment ``i``'s due date. It is an
  annually compounded, actual/365 rate: it counts the fees, and, unlike the nominal rate,
  the compounding of interest paid before a year is out. For a bullet loan without fees
  it is ``(1 + rate * tenor / basis) ** (365 / tenor) - 1`` (to the rounding of the
  interest): the nominal rate itself for a 365-day ACT/365 loan, a little above the
  nominal rate for shorter tenors or ACT/360.
"""
from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, localcontext
from enum import StrEnum
from fractions import Fraction

from finance_app.money import (
    ACT_360, ACT_365, INTEREST_ROUNDING, CurrencyMismatch, Money, accrued_interest,
    round_exact,
)

DAY_COUNTS = (ACT_360, ACT_365)
MAX_TENOR_DAYS = 3660           # ten years and a few days
APR_DAYS_PER_YEAR = 365         # the EU convention for t_i, whatever the loan's day count
APR_QUANTUM = Decimal("0.0001")
_APR_PRECISION = 50             # significant digits while solving for the APR
_APR_UPPER = Decimal(10)        # the APR is sought in [0, 10], i.e. 0 % to 1000 %
_APR_TOLERANCE = Decimal("1e-10")


class RepaymentType(StrEnum):
    BULLET = "bullet"
    EQUAL_INSTALMENTS = "equal_instalments"


@dataclass(frozen=True)
class Instalment:
    number: int                 # 1..n
    due_date: date
    principal: Money
    interest: Money
    days: int                   # actual days of interest in this period
    outstanding_after: Money    # principal still owed after this instalment

    @property
    def total(self) -> Money:
        """What the borrower pays on ``due_date``: principal plus interest."""
        return self.principal + self.interest


@dataclass(frozen=True)
class Schedule:
    principal: Money
    annual_rate: Decimal        # a fraction: Decimal("0.0650") is 6.50 %
    day_count: int              # ACT_360 or ACT_365
    start: date                 # the disbursement date; interest runs from it
    instalments: tuple[Instalment, ...]

    @property
    def total_interest(self) -> Money:
        total = Money.from_minor(0, self.principal.currency)
        for instalment in self.instalments:
            total += instalment.interest
        return total

    @property
    def total_repaid(self) -> Money:
        """All the principal and all the interest."""
        return self.principal + self.total_interest

    @property
    def maturity(self) -> date:
        """The due date of the last instalment: ``start + tenor_days``."""
        return self.instalments[-1].due_date


# --------------------------------------------------------------------------- validation

def _check_principal(principal: object) -> int:
    """The principal's minor units; refuses anything but a positive whole-unit Money."""
    if not isinstance(principal, Money):
        raise TypeError("the principal is Money")
    if principal.amount <= 0:
        raise ValueError(f"the principal must be more than zero, not {principal}")
    try:
        return principal.to_minor()
    except ValueError:
        raise ValueError(f"the principal {principal.amount} {principal.currency} is not a "
                         f"whole number of {principal.currency} minor units") from None


def _check_rate(annual_rate: object) -> None:
    if isinstance(annual_rate, float):
        raise TypeError("the annual rate is a Decimal, never a float "
                        "(Decimal('0.0650') for 6.50 %)")
    if not isinstance(annual_rate, Decimal):
        raise TypeError("the annual rate is a Decimal (Decimal('0.0650') for 6.50 %), "
                        f"not {type(annual_rate).__name__}")
    if not annual_rate.is_finite():
        raise ValueError("the annual rate must be a finite number")
    if not Decimal(0) <= annual_rate < Decimal(1):
        raise ValueError("the annual rate is a fraction from 0 up to (not including) 1 "
                         f"(0.0650 for 6.50 %), not {annual_rate}")


def _check_day_count(day_count: object) -> None:
    if isinstance(day_count, bool) or not isinstance(day_count, int):
        raise TypeError(f"the day count is ACT_360 or ACT_365 (an int), not {day_count!r}")
    if day_count not in DAY_COUNTS:
        raise ValueError(f"the day count is ACT/360 or ACT/365, not ACT/{day_count}")


def _check_tenor(tenor_days: object) -> None:
    if isinstance(tenor_days, bool) or not isinstance(tenor_days, int):
        raise TypeError(f"the tenor is a whole number of days, not {tenor_days!r}")
    if not 1 <= tenor_days <= MAX_TENOR_DAYS:
        raise ValueError(f"the tenor is from 1 to {MAX_TENOR_DAYS} days, not {tenor_days}")


def _check_start(start: object) -> None:
    if isinstance(start, datetime) or not isinstance(start, date):
        raise TypeError(f"the start is a date (not a datetime), not {start!r}")


def _repayment_type(value: object) -> RepaymentType:
    if not isinstance(value, str):
        raise TypeError(f"the repayment type is a RepaymentType or its name, not {value!r}")
    try:
        return RepaymentType(value)
    except ValueError:
        known = ", ".join(kind.value for kind in RepaymentType)
        raise ValueError(f"the repayment type is one of {known}, not {value!r}") from None


def _check_fees(schedule: Schedule, fees: object) -> Money:
    if not isinstance(schedule, Schedule):
        raise TypeError("a Schedule is needed")
    if not isinstance(fees, Money):
        raise TypeError("fees are Money")
    if fees.currency != schedule.principal.currency:
        raise CurrencyMismatch(schedule.principal.currency, fees.currency)
    if fees.amount < 0:
        raise ValueError(f"fees cannot be negative, not {fees}")
    try:
        fees.to_minor()
    except ValueError:
        raise ValueError(f"the fees {fees.amount} {fees.currency} are not a whole number "
                         f"of {fees.currency} minor units") from None
    return fees


# --------------------------------------------------------------------------- dates

def add_months(day: date, months: int) -> date:
    """``day`` moved ``months`` calendar months on, on the same day of the month, or the
    month's last day if it is shorter (Jan 31 + 1 month is Feb 28, or 29 in a leap year)."""
    index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _due_dates(start: date, tenor_days: int, repayment_type: RepaymentType) -> list[date]:
    final = start + timedelta(days=tenor_days)
    if repayment_type is RepaymentType.BULLET:
        return [final]
    dates, months = [], 1
    while (due := add_months(start, months)) < final:
        dates.append(due)
        months += 1
    dates.append(final)
    return dates


# --------------------------------------------------------------------------- schedule

def build_schedule(principal: Money, annual_rate: Decimal, day_count: int, start: date,
                   tenor_days: int, repayment_type: RepaymentType | str) -> Schedule:
    """The repayment schedule of a loan of ``principal`` disbursed on ``start`` for
    ``tenor_days`` days at ``annual_rate`` (a fraction) on an ACT/``day_count`` basis.

    Raises ``TypeError`` for arguments of the wrong type (a float rate among them) and
    ``ValueError`` for values out of range; see the module docstring for the conventions.
    """
    units = _check_principal(principal)
    _check_rate(annual_rate)
    _check_day_count(day_count)
    _check_start(start)
    _check_tenor(tenor_days)
    kind = _repayment_type(repayment_type)

    currency = principal.currency
    dues = _due_dates(start, tenor_days, kind)
    count = len(dues)
    equal_part = round_exact(Fraction(principal.amount) / count, currency, ROUND_DOWN)
    last_part = Money.from_minor(units - (count - 1) * equal_part.to_minor(), currency)

    instalments, outstanding, period_start = [], principal, start
    for number, due in enumerate(dues, start=1):
        days = (due - period_start).days
        interest = accrued_interest(outstanding, annual_rate, days, day_count,
                                    rounding=INTEREST_ROUNDING)
        part = last_part if number == count else equal_part
        outstanding -= part
        instalments.append(Instalment(number=number, due_date=due, principal=part,
                                      interest=interest, days=days,
                                      outstanding_after=outstanding))
        period_start = due
    return Schedule(principal=principal, annual_rate=annual_rate, day_count=day_count,
                    start=start, instalments=tuple(instalments))


# --------------------------------------------------------------------------- cost

def total_cost(schedule: Schedule, fees: Money) -> Money:
    """The cost of the credit: all the interest plus ``fees`` (in the loan's currency,
    zero or more; another currency raises ``CurrencyMismatch``, a ``ValueError``)."""
    return schedule.total_interest + _check_fees(schedule, fees)


def apr(schedule: Schedule, fees: Money) -> Decimal:
    """The annual percentage rate of charge, a fraction rounded half up to 4 decimals
    (``Decimal("0.1000")`` is 10.00 %).

    It is the rate ``r`` at which ``principal - fees`` (what the borrower has in hand) is
    the present value of the instalments, each discounted over the actual days from
    ``start`` to its due date on a 365-day year: ``sum(total_i / (1 + r) ** (t_i / 365))``.
    So it counts the fees and compounds annually: a 365-day ACT/365 bullet loan at 10 %
    without fees has an APR of 0.1000, a 90-day one at 6.50 % ACT/360 one of 0.0676
    (``1.01625 ** (365 / 90) - 1``), above its nominal rate.

    Found by bisection in [0, 10] at 50 significant digits, until the bracket is narrower
    than 1e-10. Raises ``ValueError`` for fees below zero or not below the principal, and
    if the APR would be above 1000 %.
    """
    fees = _check_fees(schedule, fees)
    if fees >= schedule.principal:
        raise ValueError(f"fees ({fees}) must be less than the principal "
                         f"({schedule.principal})")
    with localcontext() as ctx:
        ctx.prec = _APR_PRECISION
        ctx.rounding = ROUND_HALF_UP
        received = schedule.principal.amount - fees.amount
        flows = [(instalment.total.amount,
                  Decimal((instalment.due_date - schedule.start).days) / APR_DAYS_PER_YEAR)
                 for instalment in schedule.instalments]

        def present_value(rate: Decimal) -> Decimal:
            log = (1 + rate).ln()
            return sum((amount * (-years * log).exp() for amount, years in flows),
                       Decimal(0))

        # The present value falls as the rate rises; at 0 it is all that is repaid, never
        # less than what was received (interest and fees are zero or more).
        low, high = Decimal(0), _APR_UPPER
        if present_value(low) <= received:
            return Decimal(0).quantize(APR_QUANTUM)
        if present_value(high) > received:
            raise ValueError(f"the APR is above {_APR_UPPER * 100:.0f} % "
                             "(fees or interest out of proportion to the principal)")
        while high - low > _APR_TOLERANCE:
            middle = (low + high) / 2
            if present_value(middle) > received:
                low = middle
            else:
                high = middle
        return ((low + high) / 2).quantize(APR_QUANTUM, rounding=ROUND_HALF_UP)
