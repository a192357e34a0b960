"""``talktime reconcile``: a provider statement against our records, every gap on a cause, in seconds and
in money.

Exit codes (also in ``--help`` and docs/reconcile.md): 0 when every line is explained within the tolerances;
1 when some line is flagged (unexplained seconds over ``--tolerance``, or an amount off its due amount by
more than ``--money-tolerance``); 2 on bad input (a statement row, a record, the profile, the cost card, an
option), with the report not written.
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path

import typer

from talktime.app.history import HistorySource
from talktime.cli.guard import fail
from talktime.cli.history import STORE_OPTION, TENANT_OPTION
from talktime.errors import TalktimeError


class ReportFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"
    html = "html"


def reconcile(
    provider: str = typer.Option(..., "--provider", help="The provider's profile: built-in id or TOML path."),
    statement: Path = typer.Option(..., "--statement", help="The provider's export (JSON page or CSV)."),
    records: Path | None = typer.Option(None, "--records", help="Our usage records (CSV, JSONL, Parquet)."),
    store: str | None = STORE_OPTION,
    tenant: str | None = TENANT_OPTION,
    fmt: ReportFormat = typer.Option(ReportFormat.table, "--format", "-f", help="table, json, csv or html."),
    source: str | None = typer.Option(None, "--source", help="Export type when not detected."),
    mapping: Path | None = typer.Option(None, "--mapping", help="TOML column mapping for a generic CSV."),
    tolerance: str = typer.Option("1", "--tolerance", help="Seconds a line may differ unexplained."),
    window: str = typer.Option("5", "--window", help="Seconds apart a start (and duration) may match."),
    delay: str = typer.Option("300", "--delay", help="Billing-delay window in seconds before period end."),
    tally: str = typer.Option("tally", "--tally", help="tally (our own count) or profile (our metering)."),
    costs: Path | None = typer.Option(
        None, "--costs", help="Cost rate card whose entry for the profile prices each line (docs/pricing.md)."
    ),
    cost_entry: str | None = typer.Option(
        None, "--cost-entry", help="The card's entry to use when several price the profile."
    ),
    rate: str | None = typer.Option(
        None,
        "--rate",
        help="Price per profile unit, instead of a card (else the statement's most common rate).",
    ),
    money_tolerance: str | None = typer.Option(
        None,
        "--money-tolerance",
        help="Amount a line's charge may be off its due amount (default: one unit of the statement's last "
        "written place, e.g. 0.00001 for Twilio's 5-place prices).",
    ),
) -> None:
    """Match a provider's statement to our records and put every second and every cent of the gap on a cause.

    Each line's amount is checked against its billed quantity priced by --costs (or --rate, or else the
    statement's most common rate, named as inferred in every output): a price difference is a cause of its
    own and flags the line.

    Exit codes: 0 every line explained within the tolerances; 1 some line flagged (unexplained seconds over
    --tolerance, or a price difference over --money-tolerance); 2 bad input (statement, records, profile,
    card or option), nothing written.
    """
    # Loaded here, not at import: `talktime` starts without the reconciliation engine and importers.
    from talktime.app.reconcile import reconcile as run
    from talktime.core.reconcile.render import as_csv, as_json_document, as_table, line_dicts
    from talktime.io.reconcile_html import as_html

    try:
        result = run(
            provider,
            statement,
            HistorySource(records, store, tenant),
            source=source,
            mapping=mapping,
            tolerance=tolerance,
            window=window,
            delay=delay,
            tally=tally,
            costs=costs,
            cost_entry=cost_entry,
            rate=rate,
            money_tolerance=money_tolerance,
        )
    except TalktimeError as error:
        raise fail(str(error)) from None
    rows = line_dicts(result.lines.to_pylist(), result.scale)
    if fmt == ReportFormat.json:
        sys.stdout.write(json.dumps(as_json_document(result.summary, rows), indent=2) + "\n")
    elif fmt == ReportFormat.csv:
        sys.stdout.write(as_csv(rows, result.summary))
    elif fmt == ReportFormat.html:
        sys.stdout.write(as_html(result.summary, rows))
    else:
        sys.stdout.write(as_table(result.summary, rows))
    raise typer.Exit(1 if result.summary.flagged_lines else 0)
