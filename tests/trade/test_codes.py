"""Customs currency and country codes, to and from ISO (no database)."""
from __future__ import annotations

import csv

import pycountry
import pytest

from finance_app.trade import codes
from finance_app.trade.codes import (
    UnknownCode, country_from_customs, currency_from_customs, customs_country,
    customs_currency,
)


def _rows(path):
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("code, iso", [
    ("142", "CNY"), ("502", "USD"), ("300", "EUR"), ("110", "HKD"), ("116", "JPY"),
    ("303", "GBP"), ("133", "KRW"), ("143", "TWD"), ("601", "AUD"), (" 142 ", "CNY"),
])
def test_customs_currency_codes(code, iso):
    assert currency_from_customs(code) == iso


def test_iso_currencies_pass_through():
    assert currency_from_customs("USD") == "USD"
    assert currency_from_customs("brl") == "BRL"   # any real ISO 4217 currency, normalised


@pytest.mark.parametrize("code", ["999", "aaa", "XYZ", "", "14", "1420", "XAU"])
def test_unknown_currencies_raise(code):
    with pytest.raises(UnknownCode) as caught:
        currency_from_customs(code)
    assert isinstance(caught.value, ValueError)
    assert caught.value.kind == "currency" and caught.value.value == code
    assert f"'{code}'" in str(caught.value) and "currency" in str(caught.value)


@pytest.mark.parametrize("code, alpha2", [
    ("502", "US"), ("142", "CN"), ("304", "DE"),   # 304 is Greenland in ISO numeric
    ("410", "BR"), ("311", "PT"), ("429", "MX"),   # ISO 410 is Korea, 620 Portugal
    ("116", "JP"), ("303", "GB"), ("110", "HK"), ("121", "MO"), ("143", "TW"),
    ("141", "VN"), ("328", "RO"), ("320", "GI"),   # alpha-3 labels in the table are wrong
    ("207", "ES"), ("409", "BQ"), ("417", "CW"), ("438", "SX"), ("612", "PF"),
    ("344", "RU"), ("601", "AU"), ("133", "KR"), ("109", "KP"),
])
def test_customs_country_codes(code, alpha2):
    assert country_from_customs(code) == alpha2


def test_iso_countries_pass_through():
    assert country_from_customs("BR") == "BR"
    assert country_from_customs("USA") == "US"


@pytest.mark.parametrize("code", ["701", "999", "199", "349", "449"])
def test_customs_groupings_have_no_country(code):
    with pytest.raises(UnknownCode, match="names no single country"):
        country_from_customs(code)


@pytest.mark.parametrize("code", ["000", "001", "888", "ZZ", "XX", "CNY", ""])
def test_unknown_countries_raise(code):
    with pytest.raises(UnknownCode) as caught:
        country_from_customs(code)
    assert caught.value.kind == "country"


def test_reverse_lookups():
    assert customs_currency("CNY") == "142"
    assert customs_currency("USD") == "502"
    assert customs_country("US") == "502"
    assert customs_country("CN") == "142"
    assert customs_country("BR") == "410"
    assert customs_country("ES") == "312"   # Spain itself, not the Canary Islands (207)
    assert customs_country("PF") == "623"   # French Polynesia, not one of its archipelagos
    assert customs_country("BQ") == "409"
    with pytest.raises(UnknownCode):
        customs_currency("BRL")              # not in the customs table
    with pytest.raises(UnknownCode):
        customs_country("AQ")


def test_every_table_row_round_trips():
    for row in _rows(codes.CURRENCY_TABLE):
        iso = currency_from_customs(row["customs_code"])
        assert iso == row["iso4217_alpha"]
        assert customs_currency(iso) == row["customs_code"]
    for row in _rows(codes.COUNTRY_TABLE):
        code = row["customs_code"]
        try:
            alpha2 = country_from_customs(code)
        except UnknownCode:
            assert row["alpha3_is_iso3166"] == "NO"
            continue
        assert pycountry.countries.get(alpha_2=alpha2) is not None
        if row["alpha3_is_iso3166"] == "yes":
            assert pycountry.countries.get(alpha_3=row["alpha3_as_in_source"]).alpha_2 == alpha2
            assert customs_country(alpha2) == code
        else:
            assert code in codes._COUNTRY_OVERRIDES
        assert country_from_customs(customs_country(alpha2)) == alpha2


def test_tables_ship_with_the_package():
    assert codes.CURRENCY_TABLE.is_file() and codes.COUNTRY_TABLE.is_file()
    assert codes.DATA.parent.name == "trade"
