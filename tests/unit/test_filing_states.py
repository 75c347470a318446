import pytest

from finance_app.accounts.states import FILING_TRANSITIONS, FilingAction, FilingStatus
from finance_app.errors import IllegalTransition
from finance_app.states import next_status

ALLOWED = {
    (FilingStatus.PENDING, FilingAction.APPROVE): FilingStatus.APPROVED,
    (FilingStatus.PENDING, FilingAction.REJECT): FilingStatus.REJECTED,
    (FilingStatus.REJECTED, FilingAction.RESUBMIT): FilingStatus.PENDING,
    (FilingStatus.APPROVED, FilingAction.SUSPEND): FilingStatus.SUSPENDED,
    (FilingStatus.SUSPENDED, FilingAction.REINSTATE): FilingStatus.APPROVED,
}


@pytest.mark.parametrize("status", list(FilingStatus))
@pytest.mark.parametrize("action", list(FilingAction))
def test_every_status_action_pair(status, action):
    if (status, action) in ALLOWED:
        assert next_status(FILING_TRANSITIONS, status, action, what="filing") is ALLOWED[(status, action)]
    else:
        with pytest.raises(IllegalTransition):
            next_status(FILING_TRANSITIONS, status, action, what="filing")
