"""Every status of every insurance record against every action: the transition tables
allow exactly what they list, and a model refuses the rest without writing history."""
from __future__ import annotations

import itertools

import pytest

from finance_app.errors import IllegalTransition
from finance_app.insurance.models import (
    BuyerLimit, Claim, IndemnityAssignment, Policy, ShipmentDeclaration,
)
from finance_app.insurance.states import CREATING_ACTIONS, TABLES
from finance_app.states import next_status

MODELS = {"policy": Policy, "buyer limit": BuyerLimit, "declaration": ShipmentDeclaration,
          "claim": Claim, "assignment": IndemnityAssignment}

PAIRS = [(what, status, action)
         for what, (statuses, actions, _) in TABLES.items()
         for status, action in itertools.product(statuses, actions)
         if action not in CREATING_ACTIONS]


@pytest.mark.parametrize("what, status, action", PAIRS,
                         ids=[f"{w}:{s.value}:{a.value}" for w, s, a in PAIRS])
def test_every_pair_is_allowed_only_if_listed(what, status, action):
    table = TABLES[what][2]
    if (status, action) in table:
        assert next_status(table, status, action, what=what) is table[(status, action)]
    else:
        with pytest.raises(IllegalTransition) as caught:
            next_status(table, status, action, what=what)
        assert caught.value.status == status.value and caught.value.action == action.value


ILLEGAL = [(w, s, a) for w, s, a in PAIRS if (s, a) not in TABLES[w][2]]


@pytest.mark.parametrize("what, status, action", ILLEGAL,
                         ids=[f"{w}:{s.value}:{a.value}" for w, s, a in ILLEGAL])
def test_a_model_refuses_an_illegal_transition_and_keeps_its_status(app, what, status, action):
    from finance_app.extensions import db
    record = MODELS[what](status=status)
    with pytest.raises(IllegalTransition):
        record.apply(action, actor=None)
    assert record.status is status
    assert not [o for o in db.session.new]     # no history row was added


def test_creating_actions_are_not_transitions():
    for _, actions, table in TABLES.values():
        assert not [a for (_, a) in table if a in CREATING_ACTIONS]
        assert set(actions) & CREATING_ACTIONS   # each record has its creating action


def test_terminal_statuses_have_no_way_out():
    terminal = {"policy": {"expired", "cancelled"},
                "buyer limit": {"refused", "cancelled", "withdrawn"},
                "declaration": {"settled", "closed", "voided", "cancelled"},
                "claim": {"paid", "rejected", "withdrawn"},
                "assignment": {"refused", "withdrawn", "released"}}
    for what, (statuses, _, table) in TABLES.items():
        assert {s.value for s in statuses if not any(f is s for f, _ in table)} == terminal[what]
