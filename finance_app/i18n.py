"""Language choice and locale-aware formatting of amounts, currencies and dates."""
from __future__ import annotations

import copy

from datetime import date, datetime
from decimal import Decimal

from babel import Locale
from babel.dates import format_date, format_datetime
from babel.numbers import format_decimal
from flask import Flask, current_app, request, session
from flask_babel import get_locale
from flask_login import current_user

SUPPORTED = ("en", "zh_CN")


def normalise_locale(value: str | None) -> str | None:
    if not value:
        return None
    value = value.replace("-", "_")
    if value in SUPPORTED:
        return value
    if value.lower().startswith("zh"):
        return "zh_CN"
    if value.lower().startswith("en"):
        return "en"
    return None


def select_locale() -> str:
    """The user's saved choice, then the session's, then the browser's Accept-Language."""
    try:
        if current_user and current_user.is_authenticated and current_user.locale:
            return current_user.locale
    except Exception:  # noqa: BLE001 - no user loaded outside a request
        pass
    chosen = normalise_locale(session.get("lang")) if request else None
    if chosen:
        return chosen
    if request:
        best = request.accept_languages.best_match(["en", "zh_CN", "zh", "zh_Hans", "zh-CN"])
        return normalise_locale(best) or current_app.config["BABEL_DEFAULT_LOCALE"]
    return current_app.config["BABEL_DEFAULT_LOCALE"]


def _locale() -> Locale:
    locale = get_locale()
    return locale if locale is not None else Locale.parse("en")


def money(amount, currency: str | None = None) -> str:
    """Format an amount in its currency for the current locale, with the currency's
    ISO 4217 minor units (JPY 0, CNY 2, KWD 3) rather than CLDR's display precision."""
    from finance_app.money import Money, minor_units
    if amount is None:
        return "—"
    if isinstance(amount, Money):
        amount, currency = amount.amount, amount.currency
    if not isinstance(amount, Decimal):
        raise TypeError("money() formats Decimal amounts only")
    digits = minor_units(currency)
    locale = _locale()
    pattern = copy.copy(locale.currency_formats["standard"])
    pattern.frac_prec = (digits, digits)
    return pattern.apply(amount, locale, currency=currency, currency_digits=False)


def number(value: Decimal | int | None) -> str:
    return "—" if value is None else format_decimal(value, locale=_locale())


def fmt_date(value: date | None, fmt: str = "medium") -> str:
    return "—" if value is None else format_date(value, format=fmt, locale=_locale())


def fmt_datetime(value: datetime | None, fmt: str = "medium") -> str:
    if value is None:
        return "—"
    from datetime import timezone
    tz = current_app.config.get("BABEL_DEFAULT_TIMEZONE", "Asia/Shanghai")
    return format_datetime(value.replace(tzinfo=timezone.utc), format=fmt,
                           tzinfo=tz, locale=_locale())


def country_name(code: str | None) -> str:
    """The ISO 3166 country's name in the current locale (葡萄牙 / Portugal)."""
    if not code:
        return "—"
    return _locale().territories.get(code, code)


def register_filters(app: Flask) -> None:
    app.jinja_env.filters["country_name"] = country_name
    app.jinja_env.filters["money"] = money
    app.jinja_env.filters["number"] = number
    app.jinja_env.filters["date"] = fmt_date
    app.jinja_env.filters["datetime"] = fmt_datetime

    @app.context_processor
    def _inject():
        from finance_app import authz
        return {"can": lambda action, obj=None: authz.can(current_user, action, obj),
                "policy_admits": lambda endpoint: _policy_admits(endpoint),
                "current_locale": str(_locale()),
                "languages": app.config["LANGUAGES"]}


def _policy_admits(endpoint: str) -> bool:
    from finance_app import authz
    view = current_app.view_functions.get(endpoint)
    policy = getattr(view, "_policy", None)
    return bool(policy and policy.admits(current_user))
