"""Customs code tables: currencies and countries in CEB messages, to and from ISO.

CEB messages carry China Customs' legacy three-digit codes (《JGS-20 海关业务代码集》): 142 is
the renminbi and China, 502 the US dollar and the United States. The platform keeps ISO 4217
currencies and ISO 3166-1 alpha-2 countries, so these functions translate at the border,
both ways. Customs numbers are not ISO numeric codes (customs 304 is Germany, ISO 304 is
Greenland). The tables ship in ``trade/data`` (see the README there).
"""
from __future__ import annotations

import csv
from functools import cache, lru_cache
from pathlib import Path

import pycountry

from finance_app.money import is_currency

DATA = Path(__file__).parent / "data"
CURRENCY_TABLE = DATA / "customs_currency_codes_legacy_numeric.csv"
COUNTRY_TABLE = DATA / "customs_country_codes_legacy_numeric.csv"

# Country rows whose alpha-3 label is not ISO 3166 (alpha3_is_iso3166 = NO), mapped by
# their customs code and Chinese name. None: the code names no single present-day country.
_COUNTRY_OVERRIDES: dict[str, str | None] = {
    "141": "VN",   # 越南, labelled "NVM"
    "142": "CN",   # 中国, labelled "CNY"
    "207": "ES",   # 加那利群岛, the Canary Islands (Spain)
    "210": "ES",   # 塞卜泰, Ceuta (Spain)
    "256": "ES",   # 梅利利亚, Melilla (Spain)
    "320": "GI",   # 直布罗陀, Gibraltar
    "328": "RO",   # 罗马尼亚, labelled "ROM"
    "409": "BQ",   # 博内尔, Bonaire (Bonaire, Sint Eustatius and Saba)
    "417": "CW",   # 库腊索岛, Curaçao
    "430": "MS",   # 蒙特塞拉特, Montserrat
    "436": "BQ",   # 萨巴, Saba (Bonaire, Sint Eustatius and Saba)
    "438": "SX",   # 圣马丁岛, listed with the Dutch islands: Sint Maarten (Dutch part)
    "604": "PF",   # 盖比群岛, Gambier Islands (French Polynesia)
    "605": "PF",   # 马克萨斯群岛, Marquesas Islands (French Polynesia)
    "612": "PF",   # 社会群岛, Society Islands (French Polynesia)
    "615": "PF",   # 土阿莫土群岛, Tuamotu Islands (French Polynesia)
    "616": "PF",   # 土布艾群岛, Austral (Tubuai) Islands (French Polynesia)
    "349": None,   # 塞尔维亚和黑山, Serbia and Montenegro, dissolved in 2006
    "449": None,   # 荷属安地列斯群岛, Netherlands Antilles, dissolved in 2010
    "199": None,   # 亚洲其他国家(地区), other Asia
    "299": None,   # 非洲其他国家(地区), other Africa
    "399": None,   # 欧洲其他国家(地区), other Europe
    "499": None,   # 拉丁美洲其他国家(地区), other Latin America
    "599": None,   # 北美洲其他国家(地区), other North America
    "699": None,   # 大洋洲其他国家(地区), other Oceania
    "701": None,   # 国(地)别不详的, country unknown
    "702": None,   # 联合国及机构和国际组织, the UN and international organisations
    "999": None,   # 中性包装原产国别, neutral packing
}


class UnknownCode(ValueError):
    """A currency or country code that neither customs nor ISO knows (or that has no
    counterpart on the other side)."""

    def __init__(self, kind: str, value: object, reason: str | None = None):
        self.kind = kind
        self.value = value
        standard = "ISO 4217 currency" if kind == "currency" else "ISO 3166 country"
        super().__init__(reason or f"'{value}' is neither a customs {kind} code nor an "
                                   f"{standard} code.")


# --------------------------------------------------------------------------- tables

def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@cache
def _currencies() -> tuple[dict[str, str], dict[str, str]]:
    """(customs code -> ISO 4217, ISO 4217 -> customs code)."""
    forward = {row["customs_code"]: row["iso4217_alpha"] for row in _rows(CURRENCY_TABLE)}
    return forward, {iso: code for code, iso in forward.items()}


@cache
def _countries() -> tuple[dict[str, str | None], dict[str, str], dict[str, str]]:
    """(customs code -> alpha-2 or None, alpha-2 -> preferred customs code,
    customs code -> Chinese name)."""
    forward: dict[str, str | None] = {}
    names: dict[str, str] = {}
    reverse: dict[str, str] = {}
    rows = _rows(COUNTRY_TABLE)
    for row in rows:
        code = row["customs_code"]
        names[code] = row["cn_name"]
        if code in _COUNTRY_OVERRIDES:
            forward[code] = _COUNTRY_OVERRIDES[code]
        elif row["alpha3_is_iso3166"] == "yes":
            country = pycountry.countries.get(alpha_3=row["alpha3_as_in_source"])
            if country is None:
                raise RuntimeError(f"customs country {code}: unknown alpha-3 "
                                   f"{row['alpha3_as_in_source']}")
            forward[code] = country.alpha_2
            reverse[country.alpha_2] = code  # a country's own row is its preferred code
        else:
            raise RuntimeError(f"customs country {code} ({row['cn_name']}) has no mapping")
    for code in sorted(_COUNTRY_OVERRIDES):  # then the first territory code, e.g. BQ -> 409
        alpha2 = _COUNTRY_OVERRIDES[code]
        if alpha2 is not None and code in forward:
            reverse.setdefault(alpha2, code)
    return forward, reverse, names


def _iso_country(value: str) -> str | None:
    """The alpha-2 of an ISO 3166-1 alpha-2 or alpha-3 code, else None."""
    if not value.isascii() or not value.isalpha() or len(value) not in (2, 3):
        return None
    key = "alpha_2" if len(value) == 2 else "alpha_3"
    try:
        country = pycountry.countries.get(**{key: value.upper()})
    except (KeyError, LookupError):
        country = None
    return country.alpha_2 if country is not None else None


# --------------------------------------------------------------------------- public

@lru_cache(maxsize=1024)
def currency_from_customs(code: str) -> str:
    """ISO 4217 code for a customs currency code ("142" -> "CNY", "502" -> "USD").

    An ISO 4217 currency given as such ("USD") is returned as is.
    """
    value = code.strip() if isinstance(code, str) else ""
    forward, _ = _currencies()
    if value in forward:
        return forward[value]
    if len(value) == 3 and value.isascii() and value.isalpha() and is_currency(value.upper()):
        return value.upper()
    raise UnknownCode("currency", code)


@lru_cache(maxsize=1024)
def country_from_customs(code: str) -> str:
    """ISO 3166-1 alpha-2 code for a customs country code ("502" -> "US", "142" -> "CN").

    An ISO alpha-2 ("US") or alpha-3 ("USA") code given as such is accepted too. Customs
    codes for regions or for countries that no longer exist raise ``UnknownCode``.
    """
    value = code.strip() if isinstance(code, str) else ""
    forward, _, names = _countries()
    if value in forward:
        alpha2 = forward[value]
        if alpha2 is None:
            raise UnknownCode("country", code, f"customs country code {value} ({names[value]}) "
                                               "names no single country in ISO 3166.")
        return alpha2
    alpha2 = _iso_country(value)
    if alpha2 is None:
        raise UnknownCode("country", code)
    return alpha2


def customs_currency(iso: str) -> str:
    """Customs currency code for an ISO 4217 code ("CNY" -> "142")."""
    _, reverse = _currencies()
    value = iso.strip().upper() if isinstance(iso, str) else ""
    if value not in reverse:
        raise UnknownCode("currency", iso, f"'{iso}' has no customs currency code.")
    return reverse[value]


def customs_country(alpha2: str) -> str:
    """Customs country code for an ISO 3166-1 alpha-2 code ("US" -> "502", "ES" -> "312")."""
    _, reverse, _ = _countries()
    value = alpha2.strip().upper() if isinstance(alpha2, str) else ""
    if value not in reverse:
        raise UnknownCode("country", alpha2, f"'{alpha2}' has no customs country code.")
    return reverse[value]
