"""Demo statistics: the central parity of the first business day of each of the last twelve
months, so the dashboard converts the demo's older orders at their own month's rate.
Safe to run twice."""
from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import select

from finance_app import clock
from finance_app.accounts.models import User
from finance_app.extensions import db
from finance_app.ledger import rates
from finance_app.ledger.models import ExchangeRate

# USD and EUR against CNY, month by month (oldest first), near the day's demo rates
MONTHLY = {"USD": ("7.2003", "7.1950", "7.1884", "7.1752", "7.1849", "7.1697", "7.1586",
                   "7.1710", "7.1832", "7.1901", "7.1788", "7.1865"),
           "EUR": ("7.5610", "7.6015", "7.6402", "7.7320", "7.8011", "7.8350", "7.8672",
                   "7.8105", "7.7904", "7.7481", "7.7312", "7.7528")}


def _first_weekday(year: int, month: int) -> date:
    day = date(year, month, 1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def seed_statistics(operator: User) -> str:
    today, entered = clock.today(), 0
    for back in range(12, 0, -1):
        year, month = divmod(today.year * 12 + today.month - 1 - back, 12)
        day = _first_weekday(year, month + 1)
        for base, series in MONTHLY.items():
            exists = db.session.execute(select(ExchangeRate.id).where(
                ExchangeRate.base == base, ExchangeRate.quote == "CNY",
                ExchangeRate.rate_date == day)).first()
            if exists is None and day < today:
                rates.enter_rate(base, "CNY", Decimal(series[12 - back]), day, actor=operator,
                                 note="demo: the month's central parity")
                entered += 1
    db.session.flush()
    return f"Demo statistics: {entered} monthly exchange rates for the dashboard."
