"""Pages of a list query: the items of one page and how many there are in all."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from sqlalchemy import Select, func, select

from finance_app.extensions import db

PER_PAGE = 50
T = TypeVar("T")


@dataclass
class Page(Generic[T]):
    items: list[T]
    page: int
    total: int
    per_page: int = PER_PAGE

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def has_next(self) -> bool:
        return self.page < self.pages

    @property
    def has_prev(self) -> bool:
        return self.page > 1


def paginate(query: Select, page: int, *, scalars: bool = True, per_page: int = PER_PAGE
             ) -> Page:
    page = max(1, page)
    total = db.session.execute(
        select(func.count()).select_from(query.order_by(None).subquery())).scalar_one()
    result = db.session.execute(query.limit(per_page).offset((page - 1) * per_page))
    items = list(result.scalars()) if scalars else list(result)
    return Page(items=items, page=page, total=total, per_page=per_page)
