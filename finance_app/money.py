"""Money: a ``Decimal`` amount and its ISO 4217 currency, always together.

Minor units come from ISO 4217 (the ``iso4217`` package), not from CLDR's display
precision.  Arithmetic across currencies raises; rounding is explicit and named.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
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
