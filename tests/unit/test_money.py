from decimal import Decimal

import pytest

from finance_app.errors import ValidationFailed
from finance_app.money import CurrencyMismatch, Money, UnknownCurrency, minor_units


def test_minor_units_follow_iso_4217():
    assert minor_units("CNY") == 2
    assert minor_units("JPY") == 0
    assert minor_units("KWD") == 3
    assert minor_units("MGA") == 2  # ISO says 2 even though CLDR displays 0


def test_no_arithmetic_across_currencies():
    with pytest.raises(CurrencyMismatch):
        Money(Decimal("1.00"), "CNY") + Money(Decimal("1.00"), "USD")
    with pytest.raises(CurrencyMismatch):
        _ = Money(Decimal("1.00"), "CNY") < Money(Decimal("1.00"), "USD")


def test_floats_are_refused():
    with pytest.raises(TypeError):
        Money(1.5, "CNY")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Money.of(1.5, "CNY")


def test_parsing_refuses_more_decimals_than_the_currency_has():
    assert Money.of("1,234.5", "CNY") == Money(Decimal("1234.50"), "CNY")
    with pytest.raises(ValidationFailed) as caught:
        Money.of("10.5", "JPY")
    assert caught.value.field == "amount"
    with pytest.raises(UnknownCurrency):
        Money.of("1", "ABC")


def test_minor_unit_round_trip_is_exact_for_large_amounts():
    big = Money(Decimal("98765432109876.54"), "CNY")
    assert big.to_minor() == 9876543210987654
    assert Money.from_minor(big.to_minor(), "CNY") == big
