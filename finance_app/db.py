"""Declarative base with a naming convention, so migrations name constraints stably."""
from __future__ import annotations

from decimal import Decimal

from sqlalchemy import BigInteger, MetaData
from sqlalchemy.types import TypeDecorator
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class ExactDecimal(TypeDecorator):
    """A ``Decimal`` stored exactly as a scaled 64-bit integer on every database.

    SQLite's NUMERIC is float-backed and silently rounds large amounts; storing
    ``amount * 10**scale`` as BIGINT keeps every digit and still sums and compares in SQL
    (divide by ``10**scale`` to read a SQL aggregate).  Values with more decimals than
    ``scale`` or beyond the 64-bit range are refused, never rounded.
    """

    impl = BigInteger
    cache_ok = True
    MAX = 2**63 - 1

    def __init__(self, scale: int = 5):
        super().__init__()
        self.scale = scale
        self._factor = Decimal(10) ** scale

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if isinstance(value, float):
            raise TypeError("ExactDecimal never takes a float")
        scaled = Decimal(value) * self._factor
        if scaled != scaled.to_integral_value():
            raise ValueError(f"{value} has more than {self.scale} decimal places")
        units = int(scaled)
        if abs(units) > self.MAX:
            raise ValueError(f"{value} is too large to store")
        return units

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return (Decimal(value) / self._factor).quantize(Decimal(1).scaleb(-self.scale))
