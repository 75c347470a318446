"""The daily run: every daily duty once per business date (``flask --app finance_app
run-daily``), safely twice.

Domains register their duties with ``@duty("name")``; each is a function of the business
date that does its day's work and returns a line saying what it did. A duty runs in its
own database transaction, with its ``DailyRun`` row written in the same one: run again on
the same date, a duty that is done is skipped, and one that failed runs again. Duties run
in the order they were registered.
"""
from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Callable

from sqlalchemy import String, Text, UniqueConstraint, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from finance_app import clock
from finance_app.extensions import db

log = logging.getLogger(__name__)

Duty = Callable[[date], str]
DUTIES: dict[str, Duty] = {}


def duty(name: str) -> Callable[[Duty], Duty]:
    def register(fn: Duty) -> Duty:
        DUTIES[name] = fn
        return fn
    return register


class DailyRun(db.Model):
    """A duty done for a business date."""
    __tablename__ = "daily_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    duty: Mapped[str] = mapped_column(String(60))
    business_date: Mapped[date] = mapped_column()
    outcome: Mapped[str] = mapped_column(Text)
    finished_at: Mapped[datetime] = mapped_column(default=clock.now)

    __table_args__ = (UniqueConstraint("duty", "business_date", name="once_a_day"),)


def run(business_date: date | None = None) -> list[str]:
    """Run every duty not yet done for ``business_date`` (today by default)."""
    business_date = business_date or clock.today()
    lines = []
    for name, fn in DUTIES.items():
        done = db.session.execute(select(DailyRun.outcome).where(
            DailyRun.duty == name, DailyRun.business_date == business_date)).scalar()
        if done is not None:
            lines.append(f"{name}: already done for {business_date}: {done}")
            continue
        try:
            outcome = fn(business_date)
            db.session.add(DailyRun(duty=name, business_date=business_date,
                                    outcome=outcome, finished_at=clock.now()))
            db.session.commit()
        except IntegrityError:
            db.session.rollback()   # another run finished it at the same moment
            lines.append(f"{name}: done by another run for {business_date}")
            continue
        except Exception:
            db.session.rollback()
            log.exception("daily duty %s failed for %s", name, business_date)
            lines.append(f"{name}: FAILED for {business_date} (it runs again next time)")
            continue
        lines.append(f"{name}: {outcome}")
    from finance_app import outbox
    outbox.run_due(limit=1000)
    return lines
