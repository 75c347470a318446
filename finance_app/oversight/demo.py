"""Demo oversight: the risk rules run once over the demo's evidence (and one alert the
platform has acknowledged), and every demo SME rated, as the daily run would."""
from __future__ import annotations

from finance_app import clock
from finance_app.accounts.models import User
from finance_app.extensions import db
from finance_app.oversight import ratings, rules, services
from finance_app.oversight.states import AlertStatus


def seed_oversight(platform: User) -> str:
    today = clock.today()
    raised = rules.run_rules(today)
    rated = ratings.rate_all(today)
    page = services.alerts(platform, status=AlertStatus.OPEN)
    if page.items:
        services.acknowledge(page.items[-1].id, actor=platform,
                             note="Asked the SME for the buyer's payment records.")
    db.session.flush()
    return f"Demo oversight: {raised}; {rated}."
