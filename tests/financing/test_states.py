"""Every status of financing is an explicit state machine: each legal step works, and every
other (status, action) pair is refused before anything is written."""
from __future__ import annotations

import itertools

import pytest
from sqlalchemy import func, select

from finance_app.errors import IllegalTransition
from finance_app.extensions import db
from finance_app.financing import models
from finance_app.financing.states import (
    INSTALMENT_TRANSITIONS, LOAN_TRANSITIONS, OFFER_TRANSITIONS, PRODUCT_TRANSITIONS,
    REPAYMENT_TRANSITIONS, REQUEST_TRANSITIONS, InstalmentAction, InstalmentStatus,
    LoanAction, LoanStatus, OfferAction, OfferStatus, ProductAction, ProductStatus,
    RepaymentAction, RepaymentStatus, RequestAction, RequestStatus,
)

MACHINES = [
    (models.FinancingProduct, PRODUCT_TRANSITIONS, ProductStatus, ProductAction),
    (models.FinancingRequest, REQUEST_TRANSITIONS, RequestStatus, RequestAction),
    (models.Decision, OFFER_TRANSITIONS, OfferStatus, OfferAction),
    (models.Loan, LOAN_TRANSITIONS, LoanStatus, LoanAction),
    (models.Instalment, INSTALMENT_TRANSITIONS, InstalmentStatus, InstalmentAction),
    (models.Repayment, REPAYMENT_TRANSITIONS, RepaymentStatus, RepaymentAction),
]
ILLEGAL = [(model, status, action)
           for model, table, statuses, actions in MACHINES
           for status, action in itertools.product(statuses, actions)
           if (status, action) not in table]
LEGAL = [(model, status, action, after)
         for model, table, _, _ in MACHINES for (status, action), after in table.items()]


def _make(model, status):
    obj = model(status=status)
    setattr(obj, model.ORG, 1)
    return obj


def _history() -> int:
    return db.session.execute(select(func.count(models.FinancingStatusChange.id))).scalar_one()


@pytest.mark.parametrize("model, status, action", ILLEGAL,
                         ids=[f"{m.__name__}-{s.value}-{a.value}" for m, s, a in ILLEGAL])
def test_every_illegal_transition_is_refused(app, model, status, action):
    obj = _make(model, status)
    before = _history()
    with pytest.raises(IllegalTransition) as refused:
        obj.apply(action)
    assert refused.value.status == status.value and obj.status is status
    assert status.value.replace("_", " ") in refused.value.message
    assert _history() == before


@pytest.mark.parametrize("model, status, action, after", LEGAL,
                         ids=[f"{m.__name__}-{s.value}-{a.value}" for m, s, a, _ in LEGAL])
def test_every_legal_transition_moves_and_is_recorded(app, model, status, action, after):
    obj = _make(model, status)
    obj.id = 4242
    assert obj.apply(action, note="test") is after
    db.session.flush()
    change = db.session.execute(select(models.FinancingStatusChange)).scalars().all()[-1]
    assert (change.object_type, change.object_id, change.from_status, change.to_status,
            change.action) == (model.__name__, 4242, status.value, after.value, action.value)
    db.session.rollback()


@pytest.mark.parametrize("table, statuses, terminal", [
    (REQUEST_TRANSITIONS, RequestStatus, {"accepted", "withdrawn"}),
    (OFFER_TRANSITIONS, OfferStatus, {"accepted", "lapsed", "expired", "withdrawn"}),
    (LOAN_TRANSITIONS, LoanStatus, {"repaid", "cancelled"}),
    (INSTALMENT_TRANSITIONS, InstalmentStatus, {"paid"}),
    (REPAYMENT_TRANSITIONS, RepaymentStatus, {"applied", "cancelled"}),
])
def test_the_final_statuses_are_final(table, statuses, terminal):
    sources = {status.value for status, _ in table}
    assert {s.value for s in statuses} - sources == terminal
