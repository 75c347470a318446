"""Checks for the identifiers an organisation files: credit code, customs code, country, e-mail.

Each check returns the normalised value or raises ``ValidationFailed`` naming the field.
"""
from __future__ import annotations

import re

import pycountry
from email_validator import EmailNotValidError, validate_email
from flask_babel import gettext
from stdnum.cn import uscc as stdnum_uscc

from finance_app.errors import ValidationFailed

# GB 32100-2015 character set (no I, O, Z, S, V); python-stdnum's check-digit table.
USCC_ALPHABET = stdnum_uscc._alphabet


def validate_credit_code(value: str | None, *, field: str = "credit_code") -> str:
    """Unified Social Credit Code (统一社会信用代码, GB 32100-2015).

    Position 1 is the registration authority and 2 the organisation category; both may be
    letters (e.g. "Y" for other authorities, "N" for farmers' cooperatives).  Positions 3-8
    are the administrative division code (digits), 9-17 the organisation code and 18 the
    check character.  python-stdnum's ``validate`` insists on digits in positions 1-8, so it
    would refuse valid codes; its check-character calculation is reused as it is.
    """
    code = stdnum_uscc.compact(value or "")
    if not code:
        raise ValidationFailed(gettext("Enter the Unified Social Credit Code."), field=field)
    if len(code) != 18:
        raise ValidationFailed(
            gettext("A Unified Social Credit Code has 18 characters; this one has %(n)s.",
                    n=len(code)),
            field=field)
    bad = [c for c in code if c not in USCC_ALPHABET]
    if bad:
        raise ValidationFailed(
            gettext("The Unified Social Credit Code contains '%(char)s', which GB 32100 does "
                    "not use.", char=bad[0]),
            field=field)
    if code[0] == "0" or code[1] == "0":
        raise ValidationFailed(
            gettext("The Unified Social Credit Code's registration authority and category "
                    "(characters 1-2) cannot be 0."), field=field)
    if not code[2:8].isdigit():
        raise ValidationFailed(
            gettext("Characters 3-8 of the Unified Social Credit Code are the administrative "
                    "division code and must be digits."), field=field)
    if stdnum_uscc.calc_check_digit(code[:17]) != code[17]:
        raise ValidationFailed(
            gettext("The Unified Social Credit Code's check character does not match; "
                    "please check for a typing error."), field=field)
    return code


_CUSTOMS_CODE = re.compile(r"^[0-9A-Z]{10}$")


def validate_customs_code(value: str | None, *, field: str = "customs_code") -> str | None:
    """The 10-character customs registration code (海关注册编码); optional."""
    code = (value or "").strip().upper()
    if not code:
        return None
    if not _CUSTOMS_CODE.match(code):
        raise ValidationFailed(
            gettext("A customs registration code has exactly 10 characters, digits or "
                    "capital letters."),
            field=field)
    return code


def validate_country(value: str | None, *, field: str = "country") -> str:
    code = (value or "").strip().upper()
    if len(code) != 2 or pycountry.countries.get(alpha_2=code) is None:
        raise ValidationFailed(gettext("Choose a country by its ISO 3166 two-letter code."),
                               field=field)
    return code


def validate_registration_number(value: str | None, *, field: str = "registration_number") -> str:
    number = (value or "").strip()
    if not number:
        raise ValidationFailed(gettext("Enter the company registration number."), field=field)
    if len(number) > 64 or not re.match(r"^[\w\-./ ]+$", number):
        raise ValidationFailed(
            gettext("A registration number has at most 64 letters, digits, spaces or - . /."),
            field=field)
    return number


def normalise_email(value: str | None, *, field: str = "email") -> str:
    try:
        info = validate_email((value or "").strip(), check_deliverability=False,
                              test_environment=True)
    except EmailNotValidError as exc:
        raise ValidationFailed(gettext("Enter a valid e-mail address (%(detail)s).", detail=exc),
                               field=field) from None
    return info.normalized.lower()


def country_choices(locale: str = "en") -> list[tuple[str, str]]:
    from babel import Locale
    names = Locale.parse(locale).territories
    return sorted(((c.alpha_2, names.get(c.alpha_2, c.name)) for c in pycountry.countries),
                  key=lambda pair: (pair[0] != "CN", pair[1]))
