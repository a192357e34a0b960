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
import tempfile
from contextlib import ExitStack
from dataclasses import replace
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from pathlib import Path

import typer

from talktime.cli.guard import fail
from talktime.cli.history import STORE_OPTION, TENANT_OPTION, stored_records
from talktime.errors import InputError, TalktimeError


class ReportFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"
    html = "html"


def _decimal(value: str, name: str, what: str) -> Decimal:
    try:
        parsed = Decimal(value)
    except InvalidOperation:
        raise InputError(f"{name} {value!r}: not {what}") from None
    if not parsed.is_finite() or parsed < 0:
        raise InputError(f"{name} {value!r}: must be a non-negative {what.split(' ', 1)[1]}")
    return parsed


def _seconds(value: str, name: str) -> Decimal:
    try:
        parsed = Decimal(value)
    except InvalidOperation:
        raise InputError(f"{name} {value!r}: not a number of seconds") from None
    if not parsed.is_finite() or parsed < 0:
        raise InputError(f"{name} {value!r}: must be a non-negative number of seconds")
    return parsed


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
    import pyarrow.parquet as pq

    from talktime.core.reconcile.model import Options
    from talktime.core.reconcile.money import card_pricing, given_rate
    from talktime.core.reconcile.render import as_csv, as_json_document, as_table, line_dicts
    from talktime.engine.compile import attr_columns
    from talktime.engine.reconcile import PROVIDER_ID
    from talktime.engine.reconcile import reconcile as run
    from talktime.engine.sources import canonical_parquet
    from talktime.importers import read_statement
    from talktime.io.ratecards import load_cost_card
    from talktime.io.reconcile_html import as_html
    from talktime.io.records_io import write_records
    from talktime.providers import load_policy

    try:
        if (records is None) == (store is None):
            raise InputError("give exactly one of --records FILE or --store URL")
        if tally not in ("tally", "profile"):
            raise InputError(f"--tally {tally!r}: must be tally or profile")
        options = Options(
            tolerance_seconds=_seconds(tolerance, "--tolerance"),
            window_seconds=_seconds(window, "--window"),
            delay_seconds=_seconds(delay, "--delay"),
            tally="profile" if tally == "profile" else "tally",
            money_tolerance=(
                None
                if money_tolerance is None
                else _decimal(money_tolerance, "--money-tolerance", "an amount")
            ),
        )
        policy = load_policy(provider)
        if costs is not None and rate is not None:
            raise InputError("give --costs CARD or --rate PRICE, not both")
        if cost_entry is not None and costs is None:
            raise InputError("--cost-entry names an entry of --costs CARD: give the card")
        if costs is not None:
            pricing = card_pricing(load_cost_card(costs), policy.id, cost_entry)
            options = replace(options, pricing=pricing)
        elif rate is not None:
            unit_price = _decimal(rate, "--rate", "a price")
            options = replace(options, pricing=given_rate(unit_price, policy.unit, policy.unit_seconds))
        lines = read_statement(statement, source, mapping)
        with ExitStack() as stack:
            if store is not None:  # the store's sessionized records, through the same file path as --records
                folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="talktime-rec-")))
                records = folder / "history.parquet"
                write_records(records, stored_records(store, tenant))
            assert records is not None
            if not records.is_file():
                raise InputError(f"{records}: no such file")
            attrs = sorted({*attr_columns(policy), PROVIDER_ID})
            scanned = stack.enter_context(canonical_parquet(records, attrs))
            table = pq.read_table(scanned.path)
            if "_line" in table.column_names:
                table = table.drop(["_line"])
            result = run(table, lines, policy, options, where=scanned.where)
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
