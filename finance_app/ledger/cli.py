"""``flask --app finance_app import-rates FILE...`` and ``find-rate BASE QUOTE [DATE]``."""
from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import click
from flask import Flask

from finance_app.extensions import db

MAX_FILE_BYTES = 20 * 1024 * 1024


def register(app: Flask) -> None:
    @app.cli.command("import-rates")
    @click.argument("files", nargs=-1, required=True,
                    type=click.Path(exists=True, dir_okay=False, path_type=Path))
    def import_rates_command(files: tuple[Path, ...]) -> None:
        """Import exchange rates from CFETS central parity notices and ECB XML or CSV
        files (recognised by their content). All files or none: if one is refused,
        nothing is imported."""
        from finance_app.ledger.rates import RateFileError, import_rates, parse_rate_file

        parsed, refused = [], 0
        for path in files:
            try:
                if path.stat().st_size > MAX_FILE_BYTES:
                    raise RateFileError(f"larger than {MAX_FILE_BYTES // (1024 * 1024)} MB")
                parsed.append((path, parse_rate_file(path.read_bytes())))
            except RateFileError as exc:
                refused += 1
                click.echo(f"{path}: refused: {exc.message}", err=True)
        if refused:
            click.echo(f"{refused} of {len(files)} files refused; nothing imported.", err=True)
            sys.exit(1)
        conflicts = 0
        for path, rate_file in parsed:
            result = import_rates(rate_file, note=path.name)
            click.echo(f"{path}: {result.summary()}")
            for conflict in result.conflicts:
                click.echo(f"  conflict: {conflict}", err=True)
            conflicts += len(result.conflicts)
        db.session.commit()
        if conflicts:
            click.echo(f"{conflicts} conflicting rates not imported; the stored rates are "
                       "kept.", err=True)
            sys.exit(1)

    @app.cli.command("find-rate")
    @click.argument("base")
    @click.argument("quote")
    @click.argument("on", required=False, type=click.DateTime(formats=["%Y-%m-%d"]))
    def find_rate_command(base: str, quote: str, on) -> None:
        """Print the rate that applies to BASE->QUOTE on a date (today by default)."""
        from finance_app import clock
        from finance_app.errors import DomainError
        from finance_app.ledger.rates import find_rate
        value_date: date = on.date() if on else clock.today()
        try:
            quote_ = find_rate(base.upper(), quote.upper(), value_date)
        except DomainError as exc:
            raise click.ClickException(exc.message) from None
        click.echo(f"1 {quote_.base} = {quote_.rate:f} {quote_.quote} on "
                   f"{value_date.isoformat()}, rate of {quote_.rate_date.isoformat()}: "
                   f"{quote_.description}")

    @app.cli.command("outbox-run")
    @click.option("--loop", is_flag=True, help="Keep running, every few seconds.")
    @click.option("--interval", default=5.0, show_default=True, help="Seconds between runs.")
    def outbox_run(loop: bool, interval: float) -> None:
        """Carry out the queued external instructions (Stripe calls, notices)."""
        import time

        from finance_app import outbox
        while True:
            done, left = outbox.run_due(limit=200)
            if done or left:
                click.echo(f"outbox: {done} done, {left} not done")
            if not loop:
                return
            time.sleep(interval)
