"""``talktime export focus|invoice-lines``: a month's charges for finance and FinOps tools, as CSV or Parquet.

FOCUS 1.2 rows for the cost side (``--costs``: what providers charge) and the price side (``--prices``: what
customers are charged, one row per invoice line), or the plain invoice lines (:mod:`talktime.app.exports`).
See docs/exports.md.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

import typer

from talktime.app.exports import Export
from talktime.app.history import HistorySource
from talktime.cli.guard import guarded
from talktime.cli.history import RECORDS_OPTION, STORE_OPTION, TENANT_OPTION

export_app = typer.Typer(
    help="A month's charges for finance and FinOps tools: FOCUS 1.2 rows or plain invoice lines, CSV or "
    "Parquet, every number exact.",
    no_args_is_help=True,
)


class ExportFormat(StrEnum):
    csv = "csv"
    parquet = "parquet"


PERIOD = typer.Option(..., "--period", "-p", help="The month, YYYY-MM (each customer's month in their zone).")
LEDGER = typer.Option(
    None,
    "--ledger",
    help="Directory of finalised invoices: their lines as finalised (with their numbers), and the base of "
    "late-usage adjustments.",
)
CUSTOMERS = typer.Option(None, "--customer", "-c", help="Only this customer (repeat for several).")
FORMAT = typer.Option(ExportFormat.csv, "--format", "-f", help="csv or parquet.")
OUT = typer.Option(None, "--out", "-o", help="Write here (required for parquet); CSV goes to stdout without.")
GUARDS = typer.Option(
    None,
    "--guards",
    help="Plausibility limits (TOML, docs/guards.md), as for `talktime invoice`: a draft's records they flag "
    "are held back and not exported, so the lines add up to the draft's total. Default: the safe defaults.",
)
ALLOW_FLAGGED = typer.Option(
    False,
    "--allow-flagged",
    help="Export the records the guards flag as they are, as `talktime invoice --allow-flagged` bills them.",
)


def _held_note(export: Export) -> None:
    """On stderr: the drafts whose records were held back (their totals leave them out)."""
    for invoice in export.held:
        print(f"note: {invoice.id}: {invoice.notes[0]}", file=sys.stderr)


def _emit(content: str | None) -> None:
    if content is not None:
        sys.stdout.write(content)


@export_app.command("focus")
def focus(
    period: str = PERIOD,
    records: Path | None = RECORDS_OPTION,
    store: str | None = STORE_OPTION,
    tenant: str | None = TENANT_OPTION,
    costs: Path | None = typer.Option(
        None,
        "--costs",
        help="Cost card TOML: adds the cost side (what providers charge, by provider month).",
    ),
    prices: Path | None = typer.Option(
        None, "--prices", help="Price card TOML: adds the price side (what customers are charged, per line)."
    ),
    ledger: Path | None = LEDGER,
    customer: list[str] | None = CUSTOMERS,
    format: ExportFormat = FORMAT,
    out: Path | None = OUT,
    guards: Path | None = GUARDS,
    allow_flagged: bool = ALLOW_FLAGGED,
) -> None:
    """FOCUS 1.2 rows of one month: cost side (--costs), price side (--prices), or both (x_Side says which).

    ConsumedQuantity is the actual quantity and PricingQuantity the billable one. On the price side
    BilledCost is each invoice line's rounded amount (summed per InvoiceId: the invoice's total), InvoiceId
    the invoice number (a draft's reference until it is finalised), and a late-usage adjustment is a Usage
    row with ChargeClass Correction. Records no cost entry prices are left out and counted on stderr.
    """

    def run() -> None:
        from talktime.app.exports import focus
        from talktime.io.exports import write_focus

        made = focus(
            period,
            HistorySource(records, store, tenant),
            costs=costs,
            prices=prices,
            ledger=ledger,
            customers=customer or (),
            guards=guards,
            allow_flagged=allow_flagged,
            now=datetime.now(UTC),
        )
        if made.uncosted:
            uncosted = made.uncosted
            shown = ", ".join(uncosted[:5]) + (" ..." if len(uncosted) > 5 else "")
            print(
                f"note: {len(uncosted)} record(s) of {period} matched no cost entry (cost unknown, not "
                f"zero; no row): {shown}",
                file=sys.stderr,
            )
        _held_note(made)
        _emit(write_focus(made.rows, format.value, out))

    guarded(run)


@export_app.command("invoice-lines")
def invoice_lines(
    period: str = PERIOD,
    records: Path | None = RECORDS_OPTION,
    store: str | None = STORE_OPTION,
    tenant: str | None = TENANT_OPTION,
    prices: Path = typer.Option(..., "--prices", help="Price card TOML (or plan-call-minute.toml)."),
    ledger: Path | None = LEDGER,
    customer: list[str] | None = CUSTOMERS,
    format: ExportFormat = FORMAT,
    out: Path | None = OUT,
    guards: Path | None = GUARDS,
    allow_flagged: bool = ALLOW_FLAGGED,
) -> None:
    """Every line of every customer's invoice for the month, one row each: the invoice's number, status and
    dates, and the line's quantities (actual, billable, exact base), unit price, amount and precise amount."""

    def run() -> None:
        from talktime.app.exports import invoice_lines as lines
        from talktime.io.exports import write_invoice_lines

        made = lines(
            period,
            HistorySource(records, store, tenant),
            prices,
            ledger=ledger,
            customers=customer or (),
            guards=guards,
            allow_flagged=allow_flagged,
            now=datetime.now(UTC),
        )
        _held_note(made)
        _emit(write_invoice_lines(made.rows, format.value, out))

    guarded(run)
