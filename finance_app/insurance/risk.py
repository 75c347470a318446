"""Buyer country risk grades, 0 (lowest risk) to 7 (highest), after the OECD country risk
classification for officially supported export credits: high-income OECD and euro-area
countries are 0. A policy prices each grade in its own rate table; a country not listed
here is graded 7 until the insurer's risk department grades it."""
from __future__ import annotations

HIGHEST = 7

COUNTRY_RISK_GRADES: dict[str, int] = {
    # high-income OECD / euro area
    **{code: 0 for code in ("AT", "AU", "BE", "CA", "CH", "DE", "DK", "ES", "FI", "FR", "GB",
                            "IE", "IT", "JP", "KR", "LU", "NL", "NO", "NZ", "PT", "SE", "US",
                            "SG", "HK")},
    "CN": 2, "MY": 2, "SA": 2, "AE": 2, "CL": 2, "PL": 0, "CZ": 0,
    "TH": 3, "ID": 3, "PH": 3, "IN": 3, "PE": 3, "MX": 4, "CO": 4, "VN": 4, "ZA": 4,
    "BR": 5, "TR": 5, "EG": 6, "NG": 6, "AR": 7, "VE": 7,
}


def grade_of(country: str) -> int:
    return COUNTRY_RISK_GRADES.get((country or "").upper(), HIGHEST)
