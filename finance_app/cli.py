"""Command-line tools: ``flask --app finance_app <command>``."""
from __future__ import annotations

import sys

import click
from flask import Flask, current_app

from finance_app.extensions import db


def register(app: Flask) -> None:
    from finance_app.trade.cli import register as register_trade
    register_trade(app)
    from finance_app.ledger.cli import register as register_ledger
    register_ledger(app)

    @app.cli.command("run-daily")
    @click.option("--date", "on", type=click.DateTime(formats=["%Y-%m-%d"]),
                  help="The business date (today by default).")
    def run_daily(on) -> None:
        """Run every daily duty once for the business date (safe to run twice)."""
        from finance_app import clock, daily
        if on is not None and on.date() > clock.today():
            # a day not yet here has no rates and no value dates: refuse it, rather than
            # book nothing for some duties and value trade at zero in others
            raise click.BadParameter(f"{on.date().isoformat()} is after today "
                                     f"({clock.today().isoformat()}).", param_hint="--date")
        for line in daily.run(on.date() if on else None):
            click.echo(line)

    @app.cli.command("statistics-rebuild")
    def statistics_rebuild() -> None:
        """Rebuild the statistics' per-day order summary from every order."""
        from finance_app.statistics import summary
        click.echo(summary.refresh(rebuild=True))
        db.session.commit()

    @app.cli.command("create-token")
    @click.argument("email")
    @click.option("--name", default="command line", help="What the token is for.")
    def create_token(email: str, name: str) -> None:
        """Print a new API token acting as the user with EMAIL."""
        from finance_app.accounts import services
        from finance_app.errors import DomainError
        try:
            user = services.find_user_by_email(email)
            if not user.active:
                raise click.ClickException(f"{user.email} is deactivated.")
            _token, raw = services.create_token(actor=user, name=name)
        except DomainError as exc:
            raise click.ClickException(exc.message) from None
        db.session.commit()
        click.echo(raw)

    @app.cli.command("audit-verify")
    def audit_verify() -> None:
        """Check the whole audit hash chain; name the first broken event."""
        from finance_app.audit.services import verify_chain
        report = verify_chain()
        click.echo(str(report))
        if not report.ok:
            sys.exit(1)

    @app.cli.command("demo")
    def demo() -> None:
        """Create (or refresh) the demo organisations and users; safe to run twice."""
        from finance_app.demo import seed
        for line in seed(password=current_app.config["DEMO_PASSWORD"]):
            click.echo(line)

    @app.cli.command("demo-code")
    @click.argument("email")
    def demo_code(email: str) -> None:
        """Print the current second-factor code of a demo user (…@demo.test only)."""
        import pyotp
        from finance_app.accounts import services
        user = services.find_user_by_email(email)
        if not user.email.endswith("@demo.test") or not user.totp_secret:
            raise click.ClickException("Only demo users with a second factor have demo codes.")
        click.echo(pyotp.TOTP(user.totp_secret).now())
