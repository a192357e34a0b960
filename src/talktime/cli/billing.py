"""``talktime margin`` and ``talktime invoice``: the rating and invoicing faces of the command line.

They parse the options, call the use cases in ``talktime.app`` (which read the records and rate cards,
built-in example cards by file name too: ``costs-informative.toml``, ``plan-call-minute.toml``), and write
tables, JSON, CSV, HTML or PDF.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from talktime.app.history import HistorySource
from talktime.app.margin import MarginBy, MarginEngine, modalities, uncosted_message
from talktime.cli.guard import guarded
from talktime.cli.history import RECORDS_OPTION, STORE_OPTION, TENANT_OPTION
from talktime.core.decimals import quantize, text
from talktime.errors import InputError

if TYPE_CHECKING:  # the domain modules load when a command runs, so `talktime meter` starts quickly
    from talktime.core.rating.margin import MarginView

invoice_app = typer.Typer(
    help="Invoices per customer per month: lines with actual and billable quantities; draft, then finalised."
)


__all__ = ["MarginBy", "MarginEngine", "amount_text", "column_places", "invoice_app", "margin"]


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


def _exact(value: Decimal) -> str:
    """An unrounded amount for JSON and CSV: exact to 12 decimal places."""
    return text(quantize(value, 12))


def margin(
    records: Path | None = RECORDS_OPTION,
    store: str | None = STORE_OPTION,
    tenant: str | None = TENANT_OPTION,
    costs: Path = typer.Option(..., "--costs", help="Cost card TOML (or costs-informative.toml)."),
    prices: Path = typer.Option(..., "--prices", help="Price card TOML (or plan-call-minute.toml)."),
    by: MarginBy = typer.Option(
        MarginBy.customer,
        "--by",
        help="session (each call), customer (each customer's month), period or provider.",
    ),
    strict: bool = typer.Option(
        False, "--strict", help="Fail (exit 2) when any record has no cost entry, instead of marking rows."
    ),
    per_minute: bool = typer.Option(
        False,
        "--per-minute",
        help="Costs per customer minute sold (by modality and provider): what one unified minute costs.",
    ),
    format: TableFormat = typer.Option(TableFormat.table, "--format", "-f", help="table, json or csv."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Write here instead of standard output."),
    engine: MarginEngine = typer.Option(
        MarginEngine.auto,
        "--engine",
        help="duckdb (vectorised, any size), reference (record by record) or auto: duckdb unless a card "
        "uses a charge model or a policy it does not handle, or a record has seconds past 6 decimals or a "
        "count past 64 bits (a note on stderr says why). Both give the same numbers.",
    ),
    guards: Path | None = typer.Option(
        None,
        "--guards",
        help="Plausibility limits (TOML, docs/guards.md) of the records to mark HELD, as `talktime invoice` "
        "holds them back; without it the safe defaults (a call over 24 h, a start a day ahead or 400 days "
        "back, 10M tokens or 1M characters on one record, ...).",
    ),
) -> None:
    """Per-call cost stack (telephony, STT, LLM, TTS, platform), price and margin, by call or added up.

    Rows whose minutes cost more than they sell for are flagged LOSS. A row with any record that no cost
    entry prices is flagged INCOMPLETE: its cost is a lower bound and its margin shown as an upper bound
    (<=). A row with a record the plausibility guards hold back (as `talktime invoice` does: a --store
    record as of when the store first received it, a file's as of the end of its month or now) is flagged
    HELD: its price counts that record, which is not invoiced until a person accepts or corrects it (JSON
    and CSV: held, held_reasons); a record a person accepted in --store is not marked, as its invoice
    counts it. A row whose cost includes one priced by a
    cost entry marked `placeholder = true` (no published price: the informative card's LiveKit entries) is
    marked * before its cost and margin, with a legend naming the entries (JSON and CSV:
    placeholder, placeholder_entries, placeholder_sessions). Amounts are exact
    in JSON and CSV; the table shows per-call amounts, modality costs and the cost of a minute to 4
    decimals, other totals to the cent, and an amount under one unit to its first four significant digits.
    By session, each customer's calls in the order they started.
    """

    def run() -> None:
        from talktime.app.margin import margin as margin_report

        report = margin_report(
            HistorySource(records, store, tenant),
            costs,
            prices,
            by=by,
            engine=engine,
            strict=strict,
            per_minute=per_minute,
            note=_note,
            stream=format is not TableFormat.table,  # JSON and CSV read each row once, as they write it
            guards=guards,
            now=datetime.now(UTC),
        )
        view, miss = report.view, report.miss
        if format is TableFormat.json:
            _write_parts(out, _json_parts(view))
        elif format is TableFormat.csv:
            _write_parts(out, _csv_parts(view))
        else:
            _margin_table(view, out, miss, report.placeholder_modality)

    guarded(run)


#: The row fields that say what the guards hold back: written only when some record is held.
_HELD_FIELDS = ("held_sessions", "held", "held_reasons", "held_records")
#: The row fields that say a cost is priced by placeholder prices: written only when one is.
_PLACEHOLDER_FIELDS = ("placeholder", "placeholder_sessions", "placeholder_entries")


def _left_out(view: MarginView) -> frozenset[str]:
    """The row fields JSON and CSV leave out: the held fields when nothing is held, the placeholder fields
    when no cost is priced by a placeholder price (the output is then as it was before them)."""
    return frozenset(
        (() if view.held_records else _HELD_FIELDS)
        + (() if view.placeholder_entries else _PLACEHOLDER_FIELDS)
    )


def _shown(row: dict[str, object], left_out: frozenset[str]) -> dict[str, object]:
    """The row as JSON and CSV write it, without the fields ``left_out``."""
    return {k: v for k, v in row.items() if k not in left_out} if left_out else row


def _json_parts(view: MarginView) -> Iterator[str]:
    """The view as ``json.dumps`` of its body with ``indent=2`` writes it, row by row; with placeholder
    prices, the body's ``placeholder_entries`` names the entries whose prices the totals include."""
    left_out = _left_out(view)
    body: dict[str, object] = {
        "currency": view.currency,
        "by": view.by,
        "complete": not view.uncosted_records,
        "rows": None,
        "uncosted_records": list(view.uncosted_records),
    }
    if view.held_records:
        body["held_records"] = list(view.held_records)
    if view.placeholder_entries:
        body["placeholder_entries"] = list(view.placeholder_entries)
    before, after = (json.dumps(body, indent=2) + "\n").split('"rows": null', 1)
    yield before + '"rows": '
    first = True
    for row in view.rows:  # each at depth 2 of the body: its lines 4 spaces in
        shown = _shown(row, left_out)
        item = json.dumps({k: _json_value(v) for k, v in shown.items()}, indent=2).replace("\n", "\n    ")
        yield ("[\n    " if first else ",\n    ") + item
        first = False
    yield ("[]" if first else "\n  ]") + after


def _csv_parts(view: MarginView) -> Iterator[str]:
    """The view as CSV, a megabyte or so at a time."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    header = [*view.columns, "loss", "incomplete", "uncosted", "uncosted_modalities"]
    if view.placeholder_entries:
        header += ["placeholder", *(["placeholder_sessions"] if view.by != "session" else [])]
        header += ["placeholder_entries"]
    if view.held_records:
        header += (
            ["held_sessions", "held", "held_reasons"] if view.by != "session" else ["held", "held_reasons"]
        )
    writer.writerow(header)
    for row in view.rows:
        unknown = row.get("uncosted_modalities") or []
        reasons = row.get("held_reasons") or []
        placeholders = row.get("placeholder_entries") or []
        values = {
            **row,
            "uncosted_modalities": ";".join(str(m) for m in unknown),  # type: ignore[attr-defined]
            "held_reasons": ";".join(str(r) for r in reasons),  # type: ignore[attr-defined]
            "placeholder_entries": ";".join(str(e) for e in placeholders),  # type: ignore[attr-defined]
        }
        writer.writerow([_csv_value(values.get(c)) for c in header])
        if buffer.tell() > _CHUNK:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


#: Characters of CSV written at a time.
_CHUNK = 1 << 20


def _write_parts(out: Path | None, parts: Iterable[str]) -> None:
    """:func:`_write` of the parts joined, written as they come (a file only replaces ``out`` once whole)."""
    if out is None:
        for part in parts:
            sys.stdout.write(part)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    try:
        with partial.open("w", encoding="utf-8") as handle:  # as Path.write_text opens it
            for part in parts:
                handle.write(part)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(out)


def _note(note: str) -> None:
    Console(stderr=True, highlight=False, soft_wrap=True).print(f"note: {note}", markup=False)


def _json_value(value: object) -> object:
    if isinstance(value, Decimal):
        return _exact(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _json_value(v) for k, v in value.items()}
    return value


def _csv_value(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else ""
    if isinstance(value, Decimal):
        return _exact(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def held_flag(row: dict[str, object]) -> str:
    """A row's mark for the records the guards hold back (priced, not invoiced): ``HELD (reasons)`` on a
    call, ``HELD n calls[, m records] (reasons)`` on a row of calls added up."""
    reasons = ", ".join(str(r) for r in row.get("held_reasons") or ())  # type: ignore[attr-defined]
    held = row.get("held")
    if "held_sessions" not in row:
        return f"HELD ({reasons})" if held == 1 else f"HELD {held} records ({reasons})"
    calls = row["held_sessions"]
    records = "" if held == calls else f", {held} records"
    return f"HELD {calls} call{'' if calls == 1 else 's'}{records} ({reasons})"


#: The table's columns marked ``*`` (before the amount) on a row whose cost a placeholder price prices (the
#: legend under the table says what it means: the table stays as narrow as it was).
_MADE_UP = frozenset({"cost", "margin", "cost_per_minute"})


def placeholder_legend(entries: Iterable[str], rows: int) -> str:
    """The table's one-line legend of the ``*`` mark."""
    named = ", ".join(entries)
    return (
        f"* PLACEHOLDER: {rows} row(s) include costs priced by placeholder prices ({named}: no published "
        "price, see the cost card): their cost, margin, margin %, cost per minute, the cost of the modality "
        "those entries price and any total of them are not real"
    )


def column_places(values: Iterable[object], places: int) -> int:
    """Decimals for a column of amounts: ``places``, or as many more as show the first four significant
    digits of its smallest amount under one unit (at most 6), so every row of the column lines up on the
    decimal point and a $0.0739964 call reads 0.07400, not 0.07.

    >>> column_places([Decimal("0.0739964"), Decimal("12.345")], 2), column_places([Decimal(0)], 4)
    (5, 4)
    >>> column_places([Decimal("-0.000123456"), None, "x"], 2)
    6
    """
    digits = places
    for value in values:
        if isinstance(value, Decimal) and value and abs(value) < 1:
            first = abs(value).adjusted()  # the exponent of the first significant digit: -2 for 0.07
            digits = max(digits, min(6, 3 - first))
    return digits


def amount_text(value: Decimal, places: int) -> str:
    """An amount for the table at ``places`` decimals (see :func:`column_places`).

    >>> amount_text(Decimal("0.0739964"), 5), amount_text(Decimal("12.345"), 5), amount_text(Decimal(0), 4)
    ('0.07400', '12.34500', '0.0000')
    """
    return f"{quantize(value, places):.{places}f}"


_TEXT_COLUMNS = frozenset({"customer", "session", "started_at", "period", "provider"})
_SHORT = {
    "loss_sessions": "loss sessions",
    "margin_percent": "margin %",
    "cost_per_minute": "cost/min",
    "started_at": "started (UTC)",
    "cost_telephony": "telephony",
    "cost_stt": "STT",
    "cost_llm": "LLM",
    "cost_tts": "TTS",
    "cost_platform": "platform",
    "cost_other": "other",
}


def _margin_table(
    view: MarginView, out: Path | None, miss: str = "", placeholder_modality: Mapping[str, str] | None = None
) -> None:
    cur = view.currency
    places = 4 if view.by == "session" or (view.rows and view.rows[0].get("per_minute")) else 2
    each = "costs per customer minute sold" if view.rows and view.rows[0].get("per_minute") else "costs"
    table = Table(title=f"margin by {view.by} ({cur}; {each} by modality, then total)")
    for column in view.columns:
        left = column in _TEXT_COLUMNS
        table.add_column(_SHORT.get(column, column), justify="left" if left else "right", no_wrap=True)
    table.add_column("flag", justify="left", no_wrap=True)
    decimals = {
        column: column_places(
            (row.get(column) for row in view.rows), 4 if column.startswith("cost_") else places
        )
        for column in view.columns
    }
    placeholder_rows = 0
    for row in view.rows:
        incomplete = bool(row["incomplete"])
        made_up = "*" if row.get("placeholder") else ""  # a cost priced by a placeholder price
        placeholder_rows += bool(made_up)
        entries = (row.get("placeholder_entries") or ()) if made_up else ()
        made_up_costs = {f"cost_{(placeholder_modality or {}).get(str(e), 'other')}" for e in entries}  # type: ignore[attr-defined]
        unknown = {str(m) for m in row.get("uncosted_modalities", ()) or ()}  # type: ignore[attr-defined]
        shown = []
        for column in view.columns:
            value = row.get(column)
            if value is None:
                shown.append("-")
            elif isinstance(value, Decimal):
                if column in ("minutes", "quantity"):
                    shown.append(f"{quantize(value, 2):,.2f}" if column == "minutes" else text(value))
                elif column == "margin_percent":
                    shown.append(("<= " if incomplete else "") + made_up + f"{quantize(value, 1):.1f}%")
                else:
                    # a modality's share or a minute's cost: cents are too coarse
                    amount = amount_text(value, decimals[column])
                    if column in _MADE_UP or column in made_up_costs:
                        amount = made_up + amount  # after a bound: ">= *0.0300"
                    if column.removeprefix("cost_") in unknown:  # a cost of this modality is not known
                        amount = "?" if value == 0 else ">= " + amount
                    if column == "margin" and incomplete:
                        amount = "<= " + amount
                    elif column == "cost" and incomplete:
                        amount = ">= " + amount
                    shown.append(amount)
            elif isinstance(value, datetime):
                shown.append(value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"))
            else:
                shown.append(str(value))
        flags = []
        if row["incomplete"]:
            flags.append(f"INCOMPLETE ({row['uncosted']} uncosted)")
        if row["loss"]:
            flags.append("LOSS")
        elif row.get("loss_sessions"):
            flags.append("has loss sessions")
        if row.get("held"):
            flags.append(held_flag(row))
        style = "bold red" if row["loss"] else ("bold yellow" if incomplete else None)
        table.add_row(*shown, ", ".join(flags), style=style)
    handle = sys.stdout if out is None else io.StringIO()
    wide = out is not None or not sys.stdout.isatty()
    console = Console(file=handle, width=200 if wide else None, highlight=False)
    console.print(table)
    catalogs = sorted({c for row in view.rows for c in row.get("catalogs", []) or []})  # type: ignore[attr-defined]
    if catalogs:
        console.print("token prices from " + "; ".join(catalogs), markup=False)
    if view.uncosted_records:
        console.print(uncosted_message(view.uncosted_records, modalities(view.rows), miss), markup=False)
    if view.placeholder_entries:
        legend = placeholder_legend(view.placeholder_entries, placeholder_rows)
        console.print(legend, markup=False, soft_wrap=True)
    if out is not None:
        assert isinstance(handle, io.StringIO)
        _write(out, handle.getvalue())


GUARDS_OPTION = typer.Option(
    None,
    "--guards",
    help="Plausibility limits (TOML, docs/guards.md); without it the safe defaults (a call over 24 h, a "
    "start a day ahead or 400 days back, 10M tokens or 1M characters on one record, ...).",
)
ALLOW_FLAGGED_OPTION = typer.Option(
    False,
    "--allow-flagged",
    help="Bill records the guards flag as implausible as they are (by default they are held back and named, "
    "but for those a person accepted in --store: docs/guards.md).",
)


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
    calls_csv: Path | None = typer.Option(
        None,
        "--calls-csv",
        help="Also write the calls behind the usage lines here, one row each (exact quantities). With "
        "--format html|pdf and more calls than --appendix-limit, written beside --out as NAME.calls.csv "
        "unless given.",
    ),
    appendix_limit: int = typer.Option(
        300,
        "--appendix-limit",
        min=0,
        help="On paper (html, pdf), list every call in an appendix up to this many calls; above it the "
        "invoice names the calls CSV instead.",
    ),
    guards: Path | None = GUARDS_OPTION,
    allow_flagged: bool = ALLOW_FLAGGED_OPTION,
) -> None:
    """The invoice of a customer for a month: the finalised one from --ledger, else a draft (no number).

    On paper (html, pdf): the seller from the price card's [seller], the number, issue and due dates, the
    period in words, quantities rounded for reading (minutes to 2 decimals) and the calls behind each line.
    JSON and CSV stay exact."""
    if ctx.invoked_subcommand is not None:
        return

    def run() -> None:
        _required(customer=customer, period=period, prices=prices)
        assert customer and period and prices
        from talktime.app.invoice import invoice as make_invoice
        from talktime.io.invoices import call_count, render
        from talktime.io.invoices import calls_csv as calls_text

        invoice = make_invoice(
            HistorySource(records, store, tenant),
            prices,
            customer,
            period,
            ledger=ledger,
            guards=guards,
            allow_flagged=allow_flagged,
            now=datetime.now(UTC),
        )
        paper = format in (InvoiceFormat.html, InvoiceFormat.pdf)
        listing = calls_csv
        if listing is None and paper and out is not None and call_count(invoice) > appendix_limit:
            listing = out.with_name(f"{out.stem}.calls.csv")
        if listing is not None:
            _write(listing, calls_text(invoice))
            if listing != calls_csv:
                print(f"{call_count(invoice)} calls: listed in {listing}", file=sys.stderr)
        named = None if listing is None else listing.name
        _write(out, render(invoice, format.value, named, appendix_limit))

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
    guards: Path | None = GUARDS_OPTION,
    allow_flagged: bool = ALLOW_FLAGGED_OPTION,
) -> None:
    """Finalise the month's invoice into the ledger: it gets the next number of its seller's sequence
    (gap-free, never reused), its issue date (--at, in the customer's zone) and due date (payment terms),
    and never changes after this; later events for the month become an adjustment line on the next
    invoice.

    Refused (exit 2) for a customer that neither the price card nor the records know, and for a month with
    records the guards flag as implausible (saying how many and which) unless --allow-flagged; a record a
    person accepted in --store (talktime records accept, POST /v1/reviews/ID) counts."""

    def run() -> None:
        from talktime.app.invoice import finalize

        moment = datetime.now(UTC) if at is None else datetime.fromisoformat(at)
        if moment.utcoffset() is None:
            raise InputError(f"--at: {at} has no UTC offset")
        done = finalize(
            HistorySource(records, store, tenant),
            prices,
            customer,
            period,
            ledger=ledger,
            guards=guards,
            allow_flagged=allow_flagged,
            at=moment,
        )
        draft, final, path = done.draft, done.final, done.path
        print(
            f"finalised {draft.id} as invoice {final.number}, issued {final.issued_on}, due {final.due_on}: "
            f"total {draft.total.amount} {draft.currency} -> {path}"
        )

    guarded(run)
