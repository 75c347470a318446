"""Status changes with their history: the one way a stateful record changes status.

A domain's mixin subclasses ``StatusHistory`` naming its status-change model, its audit
prefix and the organisation whose trail a change without an actor goes to; each record
class names its transition table and what it is called."""
from __future__ import annotations

from finance_app import clock
from finance_app.audit import services as audit
from finance_app.extensions import db
from finance_app.states import next_status


class StatusHistory:
    """``apply`` is the only way a status changes: a history row and an audit event."""
    _table: dict = {}
    _what = ""            # the record's name in messages ("claim")
    _subject = ""         # its name in history rows and audit actions, if not ``_what``
    _history: type        # the domain's status-change model
    _domain = ""          # the audit actions' prefix ("insurance")
    _owner = ""           # attribute naming the organisation of a change without an actor

    def apply(self, action, *, actor=None, note: str | None = None):
        new = next_status(self._table, self.status, action, what=self._what)
        return self._record(action, self.status, new, actor=actor, note=note)

    def start(self, action, status, *, actor=None, note: str | None = None):
        return self._record(action, None, status, actor=actor, note=note)

    def _record(self, action, old, new, *, actor, note):
        now = clock.now()
        subject = self._subject or self._what
        change = self._history(
            subject=subject, subject_id=self.id, from_status=old.value if old else None,
            to_status=new.value, action=action.value, actor_user_id=getattr(actor, "id", None),
            actor_org_id=getattr(actor, "org_id", None), note=(note or None) and note[:1000],
            at=now)
        self.status, self.status_changed_at = new, now
        db.session.add(change)
        audit.record(f"{self._domain}.{subject}_{action.value}", actor=actor,
                     org_id=getattr(actor, "org_id", None) or getattr(self, self._owner),
                     obj=self, changes={"from": old, "to": new, "note": note})
        return change
