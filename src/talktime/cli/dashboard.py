"""``talktime dashboard``: the operator's pages over a record file, in a browser.

The file is rated once when the command starts (every call's margin, the usage per day); the pages then
read from memory. The invoices and what-if runs are computed in the background after it starts. The web
app is :mod:`talktime.web`; the numbers come from :mod:`talktime.app`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from talktime.app.statements import STATEMENT_HELP
from talktime.cli.guard import guarded


def dashboard(
    records: Path = typer.Option(..., "--records", "-r", help="Usage records: .csv, .jsonl or .parquet."),
    costs: Path = typer.Option(..., "--costs", help="Cost card TOML (or costs-informative.toml)."),
    prices: Path = typer.Option(..., "--prices", help="Price card TOML (or plan-call-minute.toml)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (loopback by default)."),
    port: int = typer.Option(8050, "--port", help="Port to listen on."),
    ledger: Path | None = typer.Option(
        None, "--ledger", help="Directory of finalised invoices: listed on the invoices page."
    ),
    statement: list[str] = typer.Option([], "--statement", help=STATEMENT_HELP),
    guards: Path | None = typer.Option(
        None,
        "--guards",
        help="Plausibility limits (TOML, docs/guards.md) the invoices and the flagged page apply; "
        "default: the safe defaults.",
    ),
    alerts: Path | None = typer.Option(
        None,
        "--alerts",
        help="Alert configuration TOML (docs/alerts.md): the alerts page lists the open alerts and how "
        "their delivery went.",
    ),
) -> None:
    """Operator dashboard: usage over time (actual beside billable), every call's cost stack, price and
    margin (sortable, filterable, LOSS, INCOMPLETE and PLACEHOLDER marked), each call's records with their
    explain trails, each customer's invoices (drafts, finalised ones with --ledger, PDF), what-if (rounding
    impact and provider switches) and the methodology of every policy on the cards. Ctrl-C stops it."""

    def run() -> None:
        import uvicorn

        from talktime.app.statements import parse_statements
        from talktime.web.alerts import alerts_setup, enable_alerts
        from talktime.web.app import create_app
        from talktime.web.data import load

        chosen = parse_statements(statement)
        setup = alerts_setup(alerts) if alerts is not None else None  # a bad key fails before the rating
        print(f"rating {records} ...", file=sys.stderr, flush=True)
        board = load(records, costs, prices, ledger=ledger, statements=chosen, guards=guards)
        print(
            f"{board.calls.count:,} calls rated in {board.load_seconds:.1f} s; "
            f"dashboard at http://{host}:{port}/ (Ctrl-C stops it)",
            file=sys.stderr,
            flush=True,
        )
        web_app = create_app(board)
        if setup is not None:
            enable_alerts(web_app, board, setup)
        uvicorn.run(web_app, host=host, port=port, log_level="warning")

    guarded(run)
