"""An alert's life: open, acknowledged, resolved with a note; who sees it and who handles
it, on the web and over the API; every illegal transition refused."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from finance_app.accounts.states import OrgKind, Role
from finance_app.audit.models import AuditEvent
from finance_app.errors import Forbidden, IllegalTransition, NotFound, ValidationFailed
from finance_app.extensions import db
from finance_app.oversight import services
from finance_app.oversight.models import RiskAlert
from finance_app.oversight.states import ALERT_TRANSITIONS, AlertAction, AlertStatus, Severity
from tests.conftest import sign_in
from tests.factories import make_org_user


class Api:
    """A test client that sends ``user``'s API token."""

    def __init__(self, app, user):
        from finance_app.accounts import services as accounts
        _, self.token = accounts.create_token(actor=user, name="tests")
        db.session.commit()
        self.client = app.test_client()

    def get(self, path):
        return self.client.get(path, headers={"Authorization": f"Bearer {self.token}"})

    def post(self, path, json):
        return self.client.post(path, json=json,
                                headers={"Authorization": f"Bearer {self.token}"})


def web(make_client, user):
    client = make_client()
    sign_in(client, user)
    return client


@pytest.fixture
def parties(app):
    sme = make_org_user(OrgKind.SME, roles=(Role.ADMIN, Role.OFFICER))
    bank = make_org_user(OrgKind.BANK, roles=(Role.OFFICER,))
    other_bank = make_org_user(OrgKind.BANK, roles=(Role.OFFICER,))
    platform = make_org_user(OrgKind.PLATFORM_OPERATOR, roles=(Role.OFFICER, Role.APPROVER))
    services.raise_alert("instalment_overdue", severity=Severity.MEDIUM,
                         subject_org_id=sme.org_id, party_org_id=bank.org_id,
                         message="Loan 7: instalment 1 is unpaid.", dedupe_key="test:1",
                         evidence={"loan_id": 7})
    db.session.commit()
    alert = db.session.execute(select(RiskAlert)).scalar_one()
    return dict(sme=sme, bank=bank, other_bank=other_bank, platform=platform, alert=alert)


def events(action: str) -> int:
    return db.session.execute(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.action == action)).scalar_one()


def test_acknowledged_then_resolved_with_a_note(parties):
    alert, bank = parties["alert"], parties["bank"]
    services.acknowledge(alert.id, actor=bank, note="Called the SME")
    db.session.commit()
    assert alert.status is AlertStatus.ACKNOWLEDGED and alert.acknowledged_by_id == bank.id
    with pytest.raises(ValidationFailed) as refused:
        services.resolve(alert.id, actor=bank, note="  ")
    db.session.rollback()
    assert refused.value.field == "note" and alert.status is AlertStatus.ACKNOWLEDGED
    services.resolve(alert.id, actor=parties["platform"], note="Paid on 3 December")
    db.session.commit()
    assert alert.status is AlertStatus.RESOLVED
    assert alert.resolution_note == "Paid on 3 December" and alert.resolved_at is not None
    assert events("oversight.alert_acknowledge") == 1
    assert events("oversight.alert_resolve") == 1


ALL = [(s, a) for s in AlertStatus for a in AlertAction]


@pytest.mark.parametrize("status, action", [p for p in ALL if p not in ALERT_TRANSITIONS
                                            and p != (AlertStatus.ACKNOWLEDGED,
                                                      AlertAction.ACKNOWLEDGE)])
def test_every_illegal_transition_is_refused(parties, status, action):
    alert = parties["alert"]
    alert.status = status
    db.session.commit()
    with pytest.raises(IllegalTransition):
        if action is AlertAction.ACKNOWLEDGE:
            services.acknowledge(alert.id, actor=parties["platform"])
        else:
            services.resolve(alert.id, actor=parties["platform"], note="again")
    db.session.rollback()
    assert db.session.get(RiskAlert, alert.id).status is status


def test_who_sees_and_who_handles(parties):
    alert = parties["alert"]
    # the SME it is about sees it but does not handle it
    assert services.get_alert(alert.id, actor=parties["sme"]).id == alert.id
    with pytest.raises(Forbidden):
        services.acknowledge(alert.id, actor=parties["sme"])
    db.session.rollback()
    # a bank it does not concern does not even see it
    with pytest.raises(NotFound):
        services.get_alert(alert.id, actor=parties["other_bank"])
    assert services.alerts(parties["other_bank"]).total == 0
    assert services.alerts(parties["bank"]).total == 1
    assert services.alerts(parties["platform"]).total == 1


def test_alerts_on_the_web(parties, make_client):
    alert = parties["alert"]
    bank = web(make_client, parties["bank"])
    listing = bank.get("/oversight/alerts?status=open")
    assert listing.status_code == 200 and "Loan 7: instalment 1 is unpaid." in listing.text
    assert bank.get("/oversight/alerts?status=resolved").text.count("Loan 7") == 0
    page = bank.get(f"/oversight/alerts/{alert.id}")
    assert "loan_id" in page.text and 'id="acknowledge"' in page.text
    empty = bank.post(f"/oversight/alerts/{alert.id}/resolve", data={"note": ""})
    assert empty.status_code == 422
    done = bank.post(f"/oversight/alerts/{alert.id}/resolve",
                     data={"note": "Repaid in full"}, follow_redirects=True)
    assert done.status_code == 200 and "Alert resolved." in done.text
    db.session.refresh(alert)
    assert alert.status is AlertStatus.RESOLVED
    other = web(make_client, parties["other_bank"])
    assert other.get(f"/oversight/alerts/{alert.id}").status_code == 404


def test_alerts_over_the_api(app, parties):
    alert = parties["alert"]
    bank = Api(app, parties["bank"])
    listed = bank.get("/api/v1/oversight/alerts?status=open").get_json()
    assert [a["id"] for a in listed["items"]] == [alert.id]
    assert listed["items"][0]["evidence"] == {"loan_id": 7}
    bad = bank.post(f"/api/v1/oversight/alerts/{alert.id}/resolve", json={"note": "x"})
    assert bad.status_code == 422 and bad.get_json()["error"]["field"] == "note"
    ok = bank.post(f"/api/v1/oversight/alerts/{alert.id}/acknowledge", json={})
    assert ok.status_code == 200 and ok.get_json()["status"] == "acknowledged"
    sme = Api(app, parties["sme"])
    refused = sme.post(f"/api/v1/oversight/alerts/{alert.id}/resolve",
                       json={"note": "not ours to close"})
    assert refused.status_code == 403
    assert Api(app, parties["other_bank"]).get(
        f"/api/v1/oversight/alerts/{alert.id}").status_code == 404
