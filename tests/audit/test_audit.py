"""The tamper-evident audit trail."""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from finance_app.accounts import services
from finance_app.audit import services as audit
from finance_app.audit.models import AuditEvent
from finance_app.extensions import db
from tests.conftest import IS_POSTGRES
from tests.factories import PASSWORD, make_org_user


def _events(n: int, actor) -> None:
    for i in range(n):
        audit.record("test.happened", actor=actor, object_type="thing", object_id=i,
                     changes={"n": i, "note": "中文 ok"})
        db.session.commit()


def _tamper(sql: str, **params) -> None:
    """Change audit rows as a database administrator could, bypassing the triggers."""
    db.session.commit()
    with db.engine.begin() as conn:
        if IS_POSTGRES:
            conn.execute(text("ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update"))
            conn.execute(text(sql), params)
            conn.execute(text("ALTER TABLE audit_events ENABLE TRIGGER audit_events_no_update"))
        else:
            conn.execute(text("DROP TRIGGER audit_events_no_update"))
            conn.execute(text("DROP TRIGGER audit_events_no_delete"))
            conn.execute(text(sql), params)
            conn.execute(text("""CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
                BEGIN SELECT RAISE(ABORT, 'audit_events is append-only: UPDATE refused'); END"""))
            conn.execute(text("""CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
                BEGIN SELECT RAISE(ABORT, 'audit_events is append-only: DELETE refused'); END"""))


def test_state_changes_are_recorded_with_actor_org_object_and_changes(app):
    admin = make_org_user()
    user = services.add_user(actor=admin, email="c@x.test", name="C", roles=["officer"],
                             password=PASSWORD)
    db.session.commit()
    event = db.session.execute(select(AuditEvent).where(AuditEvent.action == "user.added")).scalar_one()
    assert (event.actor_user_id, event.org_id, event.object_type, event.object_id) == (
        admin.id, admin.org_id, "User", str(user.id))
    assert '"email":"c@x.test"' in event.changes and "password" not in event.changes


def test_chain_links_each_row_to_the_previous(app):
    _events(5, make_org_user())
    rows = db.session.execute(select(AuditEvent).order_by(AuditEvent.id)).scalars().all()
    assert [r.id for r in rows] == list(range(1, len(rows) + 1))
    for previous, row in zip(rows, rows[1:]):
        assert row.prev_hash == previous.hash
    assert audit.verify_chain().ok


def test_a_rolled_back_change_leaves_no_event(app):
    admin = make_org_user()
    before = db.session.execute(select(func.count(AuditEvent.id))).scalar_one()
    audit.record("test.never", actor=admin)
    db.session.rollback()
    db.session.commit()
    assert db.session.execute(select(func.count(AuditEvent.id))).scalar_one() == before


def test_updates_and_deletes_are_refused_by_the_database(app):
    _events(2, make_org_user())
    for statement in ("UPDATE audit_events SET action = 'forged' WHERE id = 1",
                      "DELETE FROM audit_events WHERE id = 1"):
        with pytest.raises(DBAPIError) as caught:
            with db.engine.begin() as conn:
                conn.execute(text(statement))
        assert "append-only" in str(caught.value)


def test_an_edited_row_is_caught_and_named(app):
    _events(6, make_org_user())
    _tamper("UPDATE audit_events SET changes = :c WHERE id = 4", c='{"n":999}')
    report = audit.verify_chain()
    assert not report.ok and report.broken_id == 4
    assert "altered" in report.problem
    assert report.checked == 3


def test_a_rewritten_row_with_a_fresh_hash_breaks_the_next_link(app):
    _events(6, make_org_user())
    row = db.session.get(AuditEvent, 3)
    forged = audit.content_hash(row.prev_hash, row.id, row.created_at, row.actor_user_id,
                                row.org_id, "forged", row.object_type, row.object_id, row.changes)
    _tamper("UPDATE audit_events SET action = 'forged', hash = :h WHERE id = 3", h=forged)
    db.session.expire_all()
    report = audit.verify_chain()
    assert not report.ok and report.broken_id == 4


def test_deleted_rows_are_caught(app):
    _events(6, make_org_user())
    _tamper("DELETE FROM audit_events WHERE id = 2")
    assert audit.verify_chain().broken_id == 2
    _tamper("DELETE FROM audit_events WHERE id >= 2")
    report = audit.verify_chain()
    assert not report.ok and "missing" in report.problem


def test_audit_verify_command(app):
    _events(3, make_org_user())
    runner = app.test_cli_runner()
    result = runner.invoke(args=["audit-verify"])
    assert result.exit_code == 0 and "intact" in result.output
    _tamper("UPDATE audit_events SET org_id = NULL WHERE id = 2")
    result = runner.invoke(args=["audit-verify"])
    assert result.exit_code == 1 and "event 2" in result.output


@pytest.mark.postgres
def test_concurrent_appends_keep_one_unbroken_chain(app):
    """Writers in parallel transactions serialise on the chain head: no fork, no gap."""
    actor = make_org_user()
    actor_id = actor.id
    errors = []
    barrier = threading.Barrier(8)

    def worker(n):
        try:
            with app.app_context():
                barrier.wait()
                for i in range(10):
                    audit.record("test.parallel", org_id=None, object_type="thread",
                                 object_id=f"{n}-{i}", changes={"actor": actor_id})
                    db.session.commit()
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    count = db.session.execute(select(func.count(AuditEvent.id)).where(
        AuditEvent.action == "test.parallel")).scalar_one()
    assert count == 80
    report = audit.verify_chain()
    assert report.ok, str(report)
