"""The one business clock.

Everything that asks "what time is it" (session timeouts, deadlines, overdue
checks, the daily job) asks here, so tests and the daily job can move time.
Times are naive UTC; the business date is the date in China Standard Time.
"""
from __future__ import annotations

from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone
from typing import Iterator

BUSINESS_TZ = timezone(timedelta(hours=8))  # Asia/Shanghai has no DST

_offset = timedelta(0)
_frozen: datetime | None = None


def now() -> datetime:
    """Current UTC time as a naive datetime (as stored in the database)."""
    if _frozen is not None:
        return _frozen
    return datetime.now(timezone.utc).replace(tzinfo=None) + _offset


def today() -> date:
    """The business date (China Standard Time)."""
    return (now().replace(tzinfo=timezone.utc).astimezone(BUSINESS_TZ)).date()


def advance(delta: timedelta) -> None:
    """Move the clock forward (tests, demo); persists until ``reset``."""
    global _offset, _frozen
    if _frozen is not None:
        _frozen = _frozen + delta
    else:
        _offset += delta


def reset() -> None:
    global _offset, _frozen
    _offset, _frozen = timedelta(0), None


@contextmanager
def frozen_at(moment: datetime) -> Iterator[None]:
    global _frozen
    previous = _frozen
    _frozen = moment
    try:
        yield
    finally:
        _frozen = previous
