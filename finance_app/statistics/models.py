"""The dashboard's per-day summaries of the orders and of financing, and how far they are up
to date.

``OrderDay`` holds, for each complete business day before ``SummaryState.covered_until``,
the orders by the filer's pilot-zone area, trade mode, destination country, currency and
verdict: how many and what the buyers pay (``Order.payable``, stored exactly). It is what
the orders were at ``SummaryState.changes_until``: an order filed, re-filed or re-matched
after that marks its day (and, if re-filed, its former day) as changed, and changed days
are read from the orders themselves until the next refresh (see ``summary``).

``FinancingDay`` likewise holds requests (by the day sent), the banks they were sent to,
approved offers and rejections (by the day approved) and loans (by the day accepted), by
the SME's area, product kind, bank and currency, with their amounts in minor units. Those
rows are written once (a request with its banks, a decision approved once, a loan when
accepted), so a day changes only by rows added since the refresh: by id, or stamped later.
"""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import BigInteger, Enum, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from finance_app import clock
from finance_app.db import ExactDecimal
from finance_app.extensions import db
from finance_app.states import enum_values
from finance_app.trade.states import Verdict


class OrderDay(db.Model):
    """The orders of one business day with the same area, mode, country, currency and
    verdict (no verdict yet: ``None``)."""
    __tablename__ = "statistics_order_days"

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column()
    zone: Mapped[str | None] = mapped_column(String(40))
    trade_mode: Mapped[str | None] = mapped_column(String(4))
    buyer_country: Mapped[str | None] = mapped_column(String(2))
    currency: Mapped[str] = mapped_column(String(3))
    verdict: Mapped[Verdict | None] = mapped_column(Enum(
        Verdict, native_enum=False, create_constraint=True, name="verdict",
        values_callable=enum_values, length=20, validate_strings=True))
    orders: Mapped[int] = mapped_column(Integer)
    amount: Mapped[Decimal] = mapped_column(ExactDecimal(5))    # sum of Order.payable

    __table_args__ = (Index("ix_statistics_order_days_day", "day"),)


class FinancingFigure(StrEnum):
    REQUEST = "request"          # a request sent (amount: the request's)
    TARGET = "target"            # a bank it was sent to (amount: the request's)
    OFFER = "offer"              # an approved offer (amount: the offer's)
    REJECTION = "rejection"      # an approved rejection
    LOAN = "loan"                # a loan accepted (amount: its principal)


class FinancingDay(db.Model):
    """Financing of one business day with the same figure, area, product kind, bank and
    currency: how many, and their amount in the currency's minor units."""
    __tablename__ = "statistics_financing_days"

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column()
    figure: Mapped[FinancingFigure] = mapped_column(Enum(
        FinancingFigure, native_enum=False, create_constraint=True, name="financing_figure",
        values_callable=enum_values, length=20, validate_strings=True))
    zone: Mapped[str | None] = mapped_column(String(40))
    product_kind: Mapped[str | None] = mapped_column(String(20))
    bank_org_id: Mapped[int | None] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    count: Mapped[int] = mapped_column(Integer)
    amount: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (Index("ix_statistics_financing_days_day", "day"),)


class SummaryState(db.Model):
    """The one row saying what ``OrderDay`` holds: the days before ``covered_until``, as
    the orders and verdicts stood at ``changes_until``, with the areas SMEs were filed in
    then (``zones_digest``); and the financing up to the ids ``*_id_until``."""
    __tablename__ = "statistics_summary_state"

    id: Mapped[int] = mapped_column(primary_key=True)
    covered_until: Mapped[date] = mapped_column()
    changes_until: Mapped[datetime] = mapped_column()
    zones_digest: Mapped[str] = mapped_column(String(64))
    refreshed_at: Mapped[datetime] = mapped_column(default=clock.now)
    days_refreshed: Mapped[int] = mapped_column(Integer, default=0)
    # the last financing rows the summary has seen (rows since are new)
    request_id_until: Mapped[int] = mapped_column(Integer, default=0)
    decision_id_until: Mapped[int] = mapped_column(Integer, default=0)
    loan_id_until: Mapped[int] = mapped_column(Integer, default=0)
