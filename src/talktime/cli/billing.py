"""``talktime margin`` and ``talktime invoice``: the rating and invoicing faces of the command line.

They read records and rate cards (built-in example cards by file name too: ``costs-informative.toml``,
``plan-call-minute.toml``), call the pure domain, and write tables, JSON, CSV, HTML or PDF.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from talktime.cli.guard import guarded
from talktime.cli.history import RECORDS_OPTION, STORE_OPTION, TENANT_OPTION, history
from talktime.core.decimals import quantize, text
from talktime.errors import InputError

if TYPE_CHECKING:  # the domain modules load when a command runs, so `talktime meter` starts quickly
    from talktime.core.invoicing.invoice import Invoice
    from talktime.core.rating.margin import MarginRow
    from talktime.core.records import UsageRecord

invoice_app = typer.Typer(
    help="Invoices per customer per month: lines with actual and billable quantities; draft, then finalised."
)


class MarginBy(StrEnum):
    customer = "customer"
    provider = "provider"
    period = "period"
    session = "session"


class TableFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


class InvoiceFormat(StrEnum):
    json = "json"
    csv = "csv"
    html = "html"
    pdf = "pdf"


def _write(out: Path | None, content: str | bytes) -> None:
    if out is None:
        if isinstance(content, bytes):
            if sys.stdout.isatty():
                raise InputError("a PDF goes to a file: add --out invoice.pdf")
            sys.stdout.buffer.write(content)
        else:
            sys.stdout.write(content)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    if isinstance(content, bytes):
        partial.write_bytes(content)
    else:
        partial.write_text(content, encoding="utf-8")
    partial.replace(out)


def _money(value: Decimal, currency: str) -> str:
    from talktime.core.rating.money import Money

    return str(Money(value, currency).rounded().amount)


def _exact(value: Decimal) -> str:
    """An unrounded amount for JSON and CSV: exact to 12 decimal places."""
    return text(quantize(value, 12))


def _percent(row: MarginRow) -> str:
    pct = row.margin_percent
    return "-" if pct is None else f"{quantize(pct, 1)}%"


def margin(
    records: Path | None = RECORDS_OPTION,
    store: str | None = STORE_OPTION,
    tenant: str | None = TENANT_OPTION,
    costs: Path = typer.Option(..., "--costs", help="Cost card TOML (or costs-informative.toml)."),
    prices: Path = typer.Option(..., "--prices", help="Price card TOML (or plan-call-minute.toml)."),
    by: MarginBy = typer.Option(MarginBy.customer, "--by", help="customer, provider, period or session."),
    format: TableFormat = typer.Option(TableFormat.table, "--format", "-f", help="table, json or csv."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Write here instead of standard output."),
) -> None:
    """Per-call cost, price and margin, added up by customer, provider or period.

    Rows whose minutes cost more than they sell for are flagged LOSS. Amounts are exact; the table shows
    them at the currency's minor unit.
    """

    def run() -> None:
        from talktime.core.rating.margin import margin_rows, session_margins
        from talktime.io.ratecards import load_cost_card, load_price_card

        report = session_margins(
            history(records, store, tenant), load_cost_card(costs), load_price_card(prices)
        )
        cur = report.currency
        if by is MarginBy.session:
            header = ["customer", "session", "period", "minutes", "cost", "price", "margin", "flag"]
            rows = [
                [
                    s.customer,
                    s.session,
                    s.period,
                    text(quantize(s.minutes, 6)),
                    _exact(s.cost),
                    _exact(s.price),
                    _exact(s.margin),
                    "LOSS" if s.loss else "",
                ]
                for s in report.sessions
            ]
        else:
            quantity = "quantity" if by is MarginBy.provider else "minutes"
            header = [by.value, "sessions", "loss sessions", quantity, "cost", "price", "margin", "margin %"]
            header.append("flag")
            rows = [
                [
                    r.key,
                    str(r.sessions),
                    str(r.loss_sessions),
                    text(quantize(r.minutes, 6)),
                    _exact(r.cost),
                    _exact(r.price),
                    _exact(r.margin),
                    _percent(r),
                    "LOSS" if r.loss else ("has loss sessions" if r.loss_sessions else ""),
                ]
                for r in margin_rows(report, by.value)
            ]
        if format is TableFormat.json:
            body = {
                "currency": cur,
                "by": by.value,
                "rows": [dict(zip(header, row, strict=True)) for row in rows],
                "uncosted_records": list(report.uncosted_records),
            }
            _write(out, json.dumps(body, indent=2) + "\n")
        elif format is TableFormat.csv:
            buffer = io.StringIO()
            writer = csv.writer(buffer)
            writer.writerow(header)
            writer.writerows(rows)
            _write(out, buffer.getvalue())
        else:
            table = Table(title=f"margin by {by.value} ({cur})")
            for column in header:
                left = column in (by.value, "flag", "session", "customer", "period")
                table.add_column(column, justify="left" if left else "right", no_wrap=column != "flag")
            money_columns = {header.index(c) for c in ("cost", "price", "margin")}
            for row in rows:
                shown = [_money(Decimal(v), cur) if i in money_columns else v for i, v in enumerate(row)]
                style = "bold red" if row[-1] == "LOSS" else None
                table.add_row(*shown, style=style)
            handle = sys.stdout if out is None else io.StringIO()
            wide = out is not None or not sys.stdout.isatty()
            console = Console(file=handle, width=160 if wide else None, highlight=False)
            console.print(table)
            if report.uncosted_records:
                console.print(
                    f"{len(report.uncosted_records)} record(s) matched no cost entry "
                    "(cost unknown, not zero): "
                    + ", ".join(report.uncosted_records[:5])
                    + (" ..." if len(report.uncosted_records) > 5 else ""),
                    markup=False,
                )
            if out is not None:
                assert isinstance(handle, io.StringIO)
                _write(out, handle.getvalue())

    guarded(run)


def _invoice(
    usage: list[UsageRecord], prices: Path, customer: str, period: str, ledger: Path | None
) -> Invoice:
    from talktime.core.invoicing.invoice import build_invoice
    from talktime.io.invoices import read_ledger
    from talktime.io.ratecards import load_price_card

    card = load_price_card(prices)
    billed = read_ledger(ledger, customer) if ledger is not None else []
    return build_invoice(usage, card, customer, period, billed)


def _required(**values: object) -> None:
    missing = [f"--{name}" for name, value in values.items() if value is None]
    if missing:
        raise InputError(f"invoice needs {', '.join(missing)}")


@invoice_app.callback(invoke_without_command=True)
def invoice(
    ctx: typer.Context,
    customer: str | None = typer.Option(None, "--customer", "-c", help="Customer id, as in the records."),
    period: str | None = typer.Option(None, "--period", "-p", help="Billing month, YYYY-MM."),
    records: Path | None = RECORDS_OPTION,
    store: str | None = STORE_OPTION,
    tenant: str | None = TENANT_OPTION,
    prices: Path | None = typer.Option(None, "--prices", help="Price card TOML (or plan-call-minute.toml)."),
    ledger: Path | None = typer.Option(
        None,
        "--ledger",
        help="Directory of finalised invoices: shown as they are, and the base of adjustments.",
    ),
    format: InvoiceFormat = typer.Option(
        InvoiceFormat.json, "--format", "-f", help="json, csv, html or pdf."
    ),
    out: Path | None = typer.Option(None, "--out", "-o", help="Write here instead of standard output."),
) -> None:
    """The invoice of a customer for a month: the finalised one from --ledger, else a draft."""
    if ctx.invoked_subcommand is not None:
        return

    def run() -> None:
        _required(customer=customer, period=period, prices=prices)
        assert customer and period and prices
        from talktime.io.invoices import render

        usage = history(records, store, tenant)
        _write(out, render(_invoice(usage, prices, customer, period, ledger), format.value))

    guarded(run)


@invoice_app.command("finalize")
def invoice_finalize(
    customer: str = typer.Option(..., "--customer", "-c", help="Customer id, as in the records."),
    period: str = typer.Option(..., "--period", "-p", help="Billing month, YYYY-MM."),
    records: Path | None = RECORDS_OPTION,
    store: str | None = STORE_OPTION,
    tenant: str | None = TENANT_OPTION,
    prices: Path = typer.Option(..., "--prices", help="Price card TOML."),
    ledger: Path = typer.Option(..., "--ledger", help="Directory of finalised invoices."),
    at: str | None = typer.Option(None, "--at", help="Finalisation time, ISO 8601 (default: now, UTC)."),
) -> None:
    """Finalise the month's invoice into the ledger: it never changes after this; later events for the month
    become an adjustment line on the next invoice."""

    def run() -> None:
        from talktime.core.invoicing.invoice import finalise
        from talktime.io.invoices import write_finalised

        moment = datetime.now(UTC) if at is None else datetime.fromisoformat(at)
        if moment.utcoffset() is None:
            raise InputError(f"--at: {at} has no UTC offset")
        draft = _invoice(history(records, store, tenant), prices, customer, period, ledger)
        path = write_finalised(ledger, finalise(draft, moment))
        print(f"finalised {draft.id}: total {draft.total.amount} {draft.currency} -> {path}")

    guarded(run)
