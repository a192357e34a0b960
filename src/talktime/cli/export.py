"""``talktime export focus|invoice-lines``: a month's charges for finance and FinOps tools, as CSV or Parquet.

FOCUS 1.2 rows for the cost side (``--costs``: what providers charge) and the price side (``--prices``: what
customers are charged, one row per invoice line), or the plain invoice lines. See docs/exports.md.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from talktime.cli.guard import guarded
from talktime.cli.history import RECORDS_OPTION, STORE_OPTION, TENANT_OPTION, history
from talktime.errors import InputError

if TYPE_CHECKING:
    from talktime.core.invoicing.invoice import Invoice
    from talktime.core.plausibility import Limits

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


def _limits(guards: Path | None, allow_flagged: bool, tenant: str | None) -> Limits | None:
    """The guards a draft is built with (None: every record billed as it is)."""
    from talktime.core.plausibility import Guards
    from talktime.io.guards import load_guards

    if allow_flagged:
        return None
    return (Guards() if guards is None else load_guards(guards)).limits_for(tenant)


def _held_note(invoices: list[Invoice]) -> None:
    """On stderr: the drafts whose records were held back (their totals leave them out)."""
    for invoice in invoices:
        if invoice.held:
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
        from talktime.core.invoicing.focus import cost_rows, period_invoices, price_rows
        from talktime.core.invoicing.periods import month_period
        from talktime.io.exports import write_focus
        from talktime.io.invoices import read_ledger
        from talktime.io.ratecards import load_cost_card, load_price_card

        if costs is None and prices is None:
            raise InputError("export focus needs --costs (cost side), --prices (price side) or both")
        month_period(period, "UTC")  # a bad --period fails before the records are read
        usage = history(records, store, tenant)
        rows = []
        if costs is not None:
            cost_card = load_cost_card(costs)
            side, uncosted = cost_rows(usage, cost_card, period)
            rows += side
            if uncosted:
                shown = ", ".join(uncosted[:5]) + (" ..." if len(uncosted) > 5 else "")
                print(
                    f"note: {len(uncosted)} record(s) of {period} matched no cost entry (cost unknown, not "
                    f"zero; no row): {shown}",
                    file=sys.stderr,
                )
        if prices is not None:
            card = load_price_card(prices)
            billed = read_ledger(ledger) if ledger is not None else []
            limits = _limits(guards, allow_flagged, tenant)
            invoices = period_invoices(usage, card, period, billed, customer or (), limits, datetime.now(UTC))
            _held_note(invoices)
            rows += price_rows(invoices, card)
        _emit(write_focus(rows, format.value, out))

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
        from talktime.core.invoicing.focus import period_invoices
        from talktime.core.invoicing.periods import month_period
        from talktime.io.exports import invoice_line_rows, write_invoice_lines
        from talktime.io.invoices import read_ledger
        from talktime.io.ratecards import load_price_card

        month_period(period, "UTC")
        card = load_price_card(prices)
        billed = read_ledger(ledger) if ledger is not None else []
        limits = _limits(guards, allow_flagged, tenant)
        usage = history(records, store, tenant)
        invoices = period_invoices(usage, card, period, billed, customer or (), limits, datetime.now(UTC))
        _held_note(invoices)
        _emit(write_invoice_lines(invoice_line_rows(invoices), format.value, out))

    guarded(run)
