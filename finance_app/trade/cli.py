"""``flask --app finance_app ingest-ceb PATH...`` and ``verdicts --json``."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from flask import Flask
from sqlalchemy import select

from finance_app.extensions import db

MAX_FILE_BYTES = 20 * 1024 * 1024


def _xml_files(paths: tuple[str, ...]):
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file()
                              and p.suffix.lower() == ".xml")
        else:
            yield path


def register(app: Flask) -> None:
    @app.cli.command("ingest-ceb")
    @click.argument("paths", nargs=-1, required=True)
    @click.option("--quiet", is_flag=True, help="Print only the totals.")
    def ingest_ceb(paths: tuple[str, ...], quiet: bool) -> None:
        """File China Customs CEB messages (files or folders) as the platform."""
        from finance_app.trade import services
        from finance_app.trade.ceb import CebFileError, parse_message
        from finance_app.trade.states import Direction, DocumentSource

        totals = {"files": 0, "file_errors": 0, "accepted": 0, "rejected": 0}
        for path in _xml_files(paths):
            totals["files"] += 1
            try:
                if not path.exists():
                    raise CebFileError(f"{path}: no such file")
                if path.stat().st_size > MAX_FILE_BYTES:
                    raise CebFileError(f"larger than {MAX_FILE_BYTES // (1024 * 1024)} MB")
                message = parse_message(path.read_bytes())
            except CebFileError as exc:
                totals["file_errors"] += 1
                click.echo(f"{path}: refused: {exc}")
                continue
            batch = services.ingest(message.documents, actor=None, source=DocumentSource.CEB_XML,
                                    direction=Direction(message.direction), filename=path.name,
                                    message_type=message.message_type, warnings=message.warnings)
            db.session.commit()
            totals["accepted"] += batch.accepted
            totals["rejected"] += batch.rejected
            if not quiet:
                click.echo(f"{path}: {message.message_type}, {batch.accepted} accepted, "
                           f"{batch.rejected} rejected")
                for warning in message.warnings:
                    click.echo(f"  warning: {warning}")
                for result in json.loads(batch.results or "[]"):
                    if not result["accepted"]:
                        click.echo(f"  document {result['index'] + 1} ({result['kind']} "
                                   f"{result['key']}): {result['reason']}")
        click.echo(f"{totals['files']} files ({totals['file_errors']} refused), "
                   f"{totals['accepted']} documents accepted, {totals['rejected']} rejected")
        if totals["file_errors"]:
            sys.exit(1)

    @app.cli.command("verdicts")
    @click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
    def verdicts(as_json: bool) -> None:
        """Print every order's three-document verdict and its reasons."""
        from finance_app.trade.models import MatchVerdict, Order
        query = (select(Order.order_no, Order.ebp_code, MatchVerdict.status, MatchVerdict.reasons)
                 .outerjoin(MatchVerdict, MatchVerdict.order_id == Order.id)
                 .order_by(Order.id).execution_options(yield_per=1000))
        for order_no, ebp_code, status, reasons in db.session.execute(query):
            reasons = json.loads(reasons or "[]")
            if as_json:
                click.echo(json.dumps({"order_no": order_no, "ebp_code": ebp_code,
                                       "verdict": status.value if status else None,
                                       "reasons": reasons}, ensure_ascii=False))
            else:
                codes = ", ".join(r["code"] for r in reasons) or "-"
                click.echo(f"{ebp_code} {order_no}: {status.value if status else '-'} ({codes})")
