"""Money: a ``Decimal`` amount and its ISO 4217 currency, always together.

Minor units come from ISO 4217 (the ``iso4217`` package), not from CLDR's display
precision.  Arithmetic across currencies raises; rounding is explicit and named.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import (
    ROUND_DOWN, ROUND_HALF_EVEN, ROUND_HALF_UP, ROUND_UP, Decimal, InvalidOperation,
)
from fractions import Fraction
from functools import lru_cache

from iso4217 import Currency

from finance_app.errors import ValidationFailed


class UnknownCurrency(ValidationFailed):
    code = "unknown_currency"

    def __init__(self, currency: object, field: str | None = "currency"):
        super().__init__(f"'{currency}' is not an ISO 4217 currency code.", field=field)


class CurrencyMismatch(ValueError):
    def __init__(self, left: str, right: str):
        super().__init__(f"Cannot combine {left} and {right} amounts without a conversion.")


@lru_cache(maxsize=None)
def minor_units(currency: str) -> int:
    try:
        exponent = Currency(currency).exponent
    except (ValueError, KeyError, TypeError):
        raise UnknownCurrency(currency) from None
    if exponent is None:  # funds codes and metals (XAU, XDR) are not money we move
        raise UnknownCurrency(currency)
    return exponent


def is_currency(code: str) -> bool:
    try:
        minor_units(code)
        return True
    except UnknownCurrency:
        return False


@dataclass(frozen=True)
class Money:
    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.amount, Decimal) or isinstance(self.amount, bool):
            raise TypeError("Money needs a Decimal amount")
        if not self.amount.is_finite():
            raise ValidationFailed("The amount must be a finite number.", field="amount")
        minor_units(self.currency)

    @classmethod
    def of(cls, amount: str | int | Decimal, currency: str, *, field: str = "amount") -> "Money":
        """Parse user input exactly; refuses floats and more decimals than the currency has."""
        if isinstance(amount, float):
            raise TypeError("Money never comes from a float")
        try:
            value = Decimal(str(amount).strip().replace(",", ""))
        except (InvalidOperation, ValueError):
            raise ValidationFailed("Enter an amount such as 1234.50.", field=field) from None
        if not value.is_finite():
            raise ValidationFailed("Enter an amount such as 1234.50.", field=field)
        digits = minor_units(currency)
        if value != value.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP):
            raise ValidationFailed(
                f"{currency} amounts have at most {digits} decimal places.", field=field)
        return cls(value.quantize(Decimal(1).scaleb(-digits)), currency)

    def _check(self, other: "Money") -> None:
        if not isinstance(other, Money):
            raise TypeError("can only combine Money with Money")
        if other.currency != self.currency:
            raise CurrencyMismatch(self.currency, other.currency)

    def __add__(self, other: "Money") -> "Money":
        self._check(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: "Money") -> "Money":
        self._check(other)
        return Money(self.amount - other.amount, self.currency)

    def __neg__(self) -> "Money":
        return Money(-self.amount, self.currency)

    def __lt__(self, other: "Money") -> bool:
        self._check(other)
        return self.amount < other.amount

    def __le__(self, other: "Money") -> bool:
        self._check(other)
        return self.amount <= other.amount

    def __gt__(self, other: "Money") -> bool:
        self._check(other)
        return self.amount > other.amount

    def __ge__(self, other: "Money") -> bool:
        self._check(other)
        return self.amount >= other.amount

    def rounded(self, rounding: str = ROUND_HALF_UP) -> "Money":
        return Money(self.amount.quantize(Decimal(1).scaleb(-minor_units(self.currency)),
                                          rounding=rounding), self.currency)

    def to_minor(self) -> int:
        """Exact integer minor units; refuses an amount with more precision than that."""
        scaled = self.amount.scaleb(minor_units(self.currency))
        if scaled != scaled.to_integral_value():
            raise ValueError(f"{self} has more precision than {self.currency} minor units")
        return int(scaled)

    @classmethod
    def from_minor(cls, units: int, currency: str) -> "Money":
        return cls(Decimal(units).scaleb(-minor_units(currency)), currency)

    def __str__(self) -> str:
        return f"{self.amount:,.{minor_units(self.currency)}f} {self.currency}"


# --------------------------------------------------------------------------- exact rounding

def round_exact(value: Decimal | Fraction, currency: str, rounding: str) -> Money:
    """``value`` rounded once to ``currency``'s minor units with ``rounding``, exactly.

    ``value`` may carry any number of digits, or be an exact fraction (``1/360`` of a
    year's interest): the tie test looks at the exact remainder, never at a value already
    cut to some precision. ``rounding`` is ``ROUND_HALF_UP`` (ties away from zero),
    ``ROUND_HALF_EVEN`` (ties to the even unit), ``ROUND_DOWN`` or ``ROUND_UP``.
    """
    exact = Fraction(value) * 10 ** minor_units(currency)
    units, remainder = divmod(abs(exact.numerator), exact.denominator)
    twice, denominator = 2 * remainder, exact.denominator
    if rounding == ROUND_HALF_UP:
        up = twice >= denominator
    elif rounding == ROUND_HALF_EVEN:
        up = twice > denominator or (twice == denominator and units % 2 == 1)
    elif rounding == ROUND_DOWN:
        up = False
    elif rounding == ROUND_UP:
        up = remainder > 0
    else:
        raise ValueError(f"unsupported rounding mode {rounding}")
    units += up
    return Money.from_minor(-units if exact < 0 else units, currency)


# --------------------------------------------------------------------------- interest

ACT_360 = 360   # actual days / 360: money-market and most USD and EUR loans
ACT_365 = 365   # actual days / 365 (fixed): RMB loans and deposits
DAY_COUNT_BASES = (ACT_360, ACT_365)

# Interest is rounded to the minor unit half up (ties away from zero), the convention
# for RMB interest (计息到分, 分以下四舍五入), and once only: on the cumulative amount.
INTEREST_ROUNDING = ROUND_HALF_UP


def accrual_days(start: date, end: date) -> int:
    """Actual days from ``start`` (interest runs from it) to ``end`` (not included)."""
    if end < start:
        raise ValueError("the accrual period ends before it starts")
    return (end - start).days


def _exact_interest(principal: Money, annual_rate: Decimal, days: int, basis: int
                    ) -> Fraction:
    if not isinstance(principal, Money):
        raise TypeError("interest accrues on Money")
    if not isinstance(annual_rate, Decimal) or not annual_rate.is_finite():
        raise TypeError("the annual rate is a finite Decimal (0.0365 for 3.65 %)")
    if annual_rate < 0:
        raise ValueError("the annual rate cannot be negative")
    if isinstance(days, bool) or not isinstance(days, int) or days < 0:
        raise ValueError("days is a whole number of days, zero or more")
    if basis not in DAY_COUNT_BASES:
        raise ValueError(f"the day-count basis is ACT/360 or ACT/365, not {basis}")
    return Fraction(principal.amount) * Fraction(annual_rate) * days / basis


def accrued_interest(principal: Money, annual_rate: Decimal, days: int, basis: int, *,
                     rounding: str = INTEREST_ROUNDING) -> Money:
    """Simple interest on ``principal`` for ``days`` actual days at ``annual_rate`` (a
    fraction: ``Decimal("0.0365")`` is 3.65 %) on an ACT/``basis`` day count, computed
    exactly and rounded once to the currency's minor units."""
    return round_exact(_exact_interest(principal, annual_rate, days, basis),
                       principal.currency, rounding)


def accrual_to_post(principal: Money, annual_rate: Decimal, days_elapsed: int, basis: int,
                    already_posted: Money, *, rounding: str = INTEREST_ROUNDING) -> Money:
    """What to post now so the postings so far add up to the interest accrued to date.

    The cumulative interest for ``days_elapsed`` days is rounded once, and what has been
    posted already is taken off, so daily (or monthly) postings never drift from the
    rounded total however many there are: each day's rounding error is absorbed by the
    next one. Principal and rate are constant over the period; when either changes, a
    new period starts with ``already_posted`` at zero. The result is negative only if more
    was posted than has accrued (a correction to reverse).
    """
    if not isinstance(already_posted, Money) or already_posted.currency != principal.currency:
        raise CurrencyMismatch(principal.currency, getattr(already_posted, "currency", "?"))
    return accrued_interest(principal, annual_rate, days_elapsed, basis,
                            rounding=rounding) - already_posted
