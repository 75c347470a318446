"""Loading one financing row by id for someone: a row they may not see is not found."""
from __future__ import annotations

from typing import TypeVar

from sqlalchemy import select

from finance_app import authz
from finance_app.accounts.models import User
from finance_app.errors import NotFound
from finance_app.extensions import db

T = TypeVar("T")


def visible(model: type[T], ident: object, *, actor: User | None, rule: str, what: str,
            lock: bool = False) -> T:
    """The ``model`` row ``ident`` (locked FOR UPDATE and refreshed with ``lock``); raises
    NotFound when there is none, ``ident`` is not an id, or ``actor`` fails ``rule``."""
    found = None
    if isinstance(ident, int) and not isinstance(ident, bool):
        query = select(model).where(model.id == ident)
        if lock:
            query = query.with_for_update().execution_options(populate_existing=True)
        found = db.session.execute(query).scalar_one_or_none()
    if found is None or (actor is not None and not authz.can(actor, rule, found)):
        raise NotFound(what, ident)
    return found
