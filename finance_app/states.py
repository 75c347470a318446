"""Transition-table state machines (STYLE.md section 5).

A model declares its transition table; ``next_status`` is the only way to read it.
"""
from __future__ import annotations

from enum import StrEnum
from typing import Mapping, TypeVar

from finance_app.errors import IllegalTransition

S = TypeVar("S", bound=StrEnum)
A = TypeVar("A", bound=StrEnum)


def next_status(table: Mapping[tuple[S, A], S], status: S, action: A, *, what: str) -> S:
    try:
        return table[(status, action)]
    except KeyError:
        raise IllegalTransition(what, str(status), str(action)) from None


def allowed_actions(table: Mapping[tuple[S, A], S], status: S) -> list[A]:
    return [action for (from_status, action) in table if from_status == status]


def enum_values(enum_cls: type[StrEnum]) -> list[str]:
    return [member.value for member in enum_cls]
