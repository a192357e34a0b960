"""Invoices out (JSON, CSV, HTML, PDF, the calls behind the lines as CSV) and the ledger of finalised
invoices (the edge: files and libraries).

The ledger is a directory: ``LEDGER/<customer>/<YYYY-MM>.<sha256 prefix>.json``, one file per finalised
invoice, named by the hash of its content. A finalised invoice is written once and never rewritten; reading
it back checks the hash, so an edited file is an error, not a silent change.

Invoice numbers: each seller (the price card's ``[seller] id``) has one sequence per ledger, kept in
``LEDGER/numbers.<seller>.log`` (one JSON line per number: sequence, number, invoice, file). Finalising takes
an exclusive lock on that log, checks that every number in it has its invoice file, appends the next number,
then writes the invoice with the number in it. A number whose invoice file was never written (a crash
between the two steps) was never issued, so the next finalisation takes it again: the sequence stays
gap-free, and no number that is on an invoice is ever given twice.
"""

from __future__ import annotations

import csv
import fcntl
import hashlib
import io
import json
import os
from pathlib import Path
from typing import IO, Any, Final
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, select_autoescape

from talktime.core.decimals import quantize, text
from talktime.core.invoicing import paper
from talktime.core.invoicing.invoice import Invoice, format_number, next_sequence, with_number
from talktime.core.invoicing.serialize import PRECISE_PLACES, invoice_dict, invoice_from_dict
from talktime.core.rating.money import minor_units
from talktime.errors import InputError

CSV_COLUMNS: Final = (
    "invoice",
    "customer",
    "period_start",
    "period_end",
    "currency",
    "status",
    "kind",
    "meter",
    "description",
    "actual_quantity",
    "billable_quantity",
    "unit",
    "unit_price",
    "amount",
    "precise_amount",
    "policy",
    "adjusts_period",
)
HASH_CHARS: Final = 16
#: Up to this many calls the PDF and HTML list every call behind the usage lines; above it the appendix says
#: how many there are and names the CSV that lists them (``talktime invoice --calls-csv``).
APPENDIX_LIMIT: Final = 300
CALLS_COLUMNS: Final = (
    "invoice",
    "number",
    "line",
    "meter",
    "record",
    "session",
    "started_at",
    "actual_quantity",
    "billable_quantity",
    "unit",
    "actual_base",
    "billable_base",
    "base_unit",
    "amount",
    "currency",
)


class LedgerError(InputError):
    """A ledger file that is unreadable, tampered with, or a finalisation that would change history."""


def to_json(invoice: Invoice) -> str:
    return json.dumps(invoice_dict(invoice), indent=2, ensure_ascii=False) + "\n"


def calls_csv(invoice: Invoice) -> str:
    """Every call behind the usage lines, one row each: start (ISO 8601 in the customer's zone), quantities
    exact (in the line's unit to 12 places, and in the base unit: seconds or the count), and the call's share
    of the line's precise amount (12 places)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CALLS_COLUMNS)
    zone = ZoneInfo(invoice.period.timezone)
    for index, line in enumerate(invoice.lines, start=1):
        for call in sorted(line.calls, key=lambda c: (c.started_at, c.record)):
            writer.writerow(
                [
                    invoice.id,
                    invoice.number or "",
                    index,
                    line.meter,
                    call.record,
                    call.session,
                    call.started_at.astimezone(zone).isoformat(),
                    text(quantize(call.actual_quantity, PRECISE_PLACES)),
                    text(quantize(call.billable_quantity, PRECISE_PLACES)),
                    line.unit,
                    text(call.actual_base),
                    text(call.billable_base),
                    line.base_unit,
                    text(quantize(call.amount, PRECISE_PLACES)),
                    invoice.currency,
                ]
            )
    return buffer.getvalue()


def call_count(invoice: Invoice) -> int:
    return sum(len(line.calls) for line in invoice.lines)


def to_csv(invoice: Invoice) -> str:
    """One row per line, then SUBTOTAL, ADJUSTMENTS and TOTAL rows; the invoice's header fields repeated on
    each row. A draft with records held back as implausible names them on its TOTAL row (``INCOMPLETE: ...``
    in ``description``)."""
    data = invoice_dict(invoice)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, CSV_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    head = {
        "invoice": data["id"],
        "customer": data["customer"],
        "period_start": data["period_start"],
        "period_end": data["period_end"],
        "currency": data["currency"],
        "status": data["status"],
    }
    for line in data["lines"]:
        writer.writerow({**head, **line})
    # an incomplete draft says so on its TOTAL row, so the total is not read as whole (docs/guards.md)
    held = data["notes"][0] if invoice.held else ""
    for kind, key in (("SUBTOTAL", "subtotal"), ("ADJUSTMENTS", "adjustments"), ("TOTAL", "total")):
        writer.writerow(
            {**head, "kind": kind, "amount": data[key], "description": held if kind == "TOTAL" else ""}
        )
    return buffer.getvalue()


def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("talktime.io", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _paper_lines(invoice: Invoice) -> list[dict[str, Any]]:
    rows = []
    for index, (line, data) in enumerate(zip(invoice.lines, invoice_dict(invoice)["lines"], strict=True), 1):
        rows.append(
            {
                **data,
                "number": index,
                "actual": paper.line_quantity(line, "actual"),
                "billable": paper.line_quantity(line, "billable"),
                "unit_words": paper.unit_words(line.unit),
                "unit_one": line.unit.replace("_", " "),
                "price": paper.paper_price(line.unit_price, invoice.currency),
                "amount": paper.paper_amount(line.amount.amount, invoice.currency),
                "calls": len(line.calls),
            }
        )
    return rows


def paper_context(
    invoice: Invoice, calls_file: str | None = None, appendix_limit: int = APPENDIX_LIMIT
) -> dict[str, Any]:
    """What the HTML template shows: the invoice's data plus its paper form (numbers at the reader's
    precision, dates in words, the appendix of calls or the name of the CSV that lists them)."""
    issued, due = paper.issue_words(invoice)
    calls = call_count(invoice)
    cur = invoice.currency
    return {
        "invoice": invoice_dict(invoice),
        "lines": _paper_lines(invoice),
        "number": paper.number_words(invoice),
        "issued": issued,
        "due": due,
        "terms": paper.terms_words(invoice),
        "subtotal": paper.paper_amount(invoice.subtotal.amount, cur),
        "adjustments": paper.paper_amount(invoice.adjustments.amount, cur),
        "total": paper.paper_amount(invoice.total.amount, cur),
        "has_adjustments": any(line.kind == "adjustment" for line in invoice.lines),
        "precise_total": text(quantize(invoice.total.precise.amount, PRECISE_PLACES)),
        "call_count": calls,
        "appendix": paper.appendix(invoice) if calls <= appendix_limit else (),
        "calls_file": calls_file,
        "share_places": minor_units(cur) + 2,
        "methodology": paper.methodology_links(invoice),
        "policies": sorted({line.policy_id for line in invoice.lines if line.policy_id}),
    }


def to_html(invoice: Invoice, calls_file: str | None = None, appendix_limit: int = APPENDIX_LIMIT) -> str:
    template = _environment().get_template("invoice.html.j2")
    return template.render(**paper_context(invoice, calls_file, appendix_limit))


def to_pdf(invoice: Invoice, calls_file: str | None = None, appendix_limit: int = APPENDIX_LIMIT) -> bytes:
    """The HTML invoice rendered by WeasyPrint (needs Pango on the machine)."""
    from weasyprint import HTML  # type: ignore[import-untyped]

    pdf: bytes = HTML(string=to_html(invoice, calls_file, appendix_limit)).write_pdf()
    return pdf


def render(
    invoice: Invoice, format: str, calls_file: str | None = None, appendix_limit: int = APPENDIX_LIMIT
) -> str | bytes:
    """The invoice as ``format``; on paper (html, pdf) with the calls listed up to ``appendix_limit`` calls,
    beyond that a pointer to ``calls_file``."""
    if format == "json":
        return to_json(invoice)
    if format == "csv":
        return to_csv(invoice)
    if format == "html":
        return to_html(invoice, calls_file, appendix_limit)
    if format == "pdf":
        return to_pdf(invoice, calls_file, appendix_limit)
    raise InputError(f"format: {format!r} is not one of json, csv, html, pdf")


# --- ledger ------------------------------------------------------------------------------------------------


def _canonical(data: dict[str, Any]) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def content_hash(invoice: Invoice) -> str:
    return hashlib.sha256(_canonical(invoice_dict(invoice))).hexdigest()


def _read(path: Path) -> Invoice:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise LedgerError(f"{path}: not a readable invoice: {error}") from None
    digest = hashlib.sha256(_canonical(data)).hexdigest()
    expected = path.name.removesuffix(".json").rsplit(".", 1)[-1]
    if not digest.startswith(expected) or len(expected) != HASH_CHARS:
        raise LedgerError(
            f"{path}: content hash {digest[:HASH_CHARS]} does not match the file name: a finalised invoice "
            "was changed; restore it from backup (corrections go on the next invoice as adjustments)"
        )
    invoice = invoice_from_dict(data)
    if invoice.status != "finalised":
        raise LedgerError(f"{path}: status {invoice.status!r}; the ledger holds finalised invoices only")
    return invoice


def read_ledger(folder: Path, customer: str | None = None) -> list[Invoice]:
    """Every finalised invoice in the ledger (of one customer, if given), oldest period first."""
    if not folder.exists():
        return []
    pattern = f"{customer}/*.json" if customer is not None else "*/*.json"
    invoices = [_read(path) for path in sorted(folder.glob(pattern))]
    return sorted(invoices, key=lambda inv: (inv.customer, inv.period.label))


def ledger_path(folder: Path, invoice: Invoice) -> Path:
    return folder / invoice.customer / f"{invoice.period.label}.{content_hash(invoice)[:HASH_CHARS]}.json"


def write_finalised(folder: Path, invoice: Invoice) -> Path:
    """Store a finalised invoice with the next number of its seller; refuse if its customer and period
    already have one (it never changes). See :func:`store_finalised`."""
    return store_finalised(folder, invoice)[0]


def store_finalised(folder: Path, invoice: Invoice) -> tuple[Path, Invoice]:
    """Give a finalised invoice the next number of its seller's sequence and store it; the path and the
    numbered invoice. Refused, with no number used, if its customer and period already have one."""
    if invoice.status != "finalised":
        raise LedgerError(f"invoice {invoice.id} is a draft; finalise it before it goes in the ledger")
    folder.mkdir(parents=True, exist_ok=True)
    log_path = numbers_log(folder, invoice.sequence_id)
    with log_path.open("a+b") as log:
        fcntl.flock(log, fcntl.LOCK_EX)  # one finalisation of this seller at a time (released on close)
        existing = sorted((folder / invoice.customer).glob(f"{invoice.period.label}.*.json"))
        if existing:
            raise LedgerError(
                f"{existing[0]}: {invoice.customer} {invoice.period.label} is already finalised and never "
                "changes; late events go on the next invoice as an adjustment"
            )
        issued, valid_bytes = _issued_numbers(folder, log, log_path)
        sequence = next_sequence([entry["sequence"] for entry in issued], invoice.sequence_id)
        numbered = with_number(invoice, format_number(invoice.number_prefix, sequence))
        path = ledger_path(folder, numbered)
        entry = {
            "sequence": sequence,
            "number": numbered.number,
            "invoice": numbered.id,
            "file": path.relative_to(folder).as_posix(),
        }
        log.truncate(valid_bytes)  # drops only a number that was never issued, or a line cut short
        log.write(json.dumps(entry, ensure_ascii=False).encode() + b"\n")
        log.flush()
        os.fsync(log.fileno())
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        partial.write_bytes(_canonical(invoice_dict(numbered)))
        partial.replace(path)
    return path, numbered


def numbers_log(folder: Path, sequence_id: str) -> Path:
    """The file that keeps a seller's invoice numbers in a ledger."""
    return folder / f"numbers.{sequence_id}.log"


def _issued_numbers(folder: Path, log: IO[bytes], log_path: Path) -> tuple[list[dict[str, Any]], int]:
    """The numbers on invoices in the ledger, from the log, and the length of the log that holds them. A
    last entry whose invoice file was never written (the finalisation stopped in between), or a last line
    cut short, is left out: that number was never issued."""
    log.seek(0)
    content = log.read()
    entries: list[tuple[dict[str, Any], int]] = []
    offset = 0
    lines = content.split(b"\n")
    for index, raw in enumerate(lines, start=1):
        if not raw:
            offset += 1
            continue
        try:
            entry = json.loads(raw)
            entry["sequence"], entry["file"] = int(entry["sequence"]), str(entry["file"])
        except (ValueError, KeyError, TypeError):
            if index == len(lines):
                break  # cut short while it was written: that number was not issued
            raise LedgerError(f"{log_path}: line {index} is not a number entry: {raw[:80]!r}") from None
        if index == len(lines):
            break  # no newline yet: not a whole entry
        offset += len(raw) + 1
        entries.append((entry, offset))
    for position, (entry, _) in enumerate(entries):
        if not (folder / entry["file"]).is_file():
            if position == len(entries) - 1:
                kept = entries[:-1]
                return [e for e, _ in kept], kept[-1][1] if kept else 0
            raise LedgerError(
                f"{log_path}: invoice number {entry['number']} was issued on {entry['invoice']}, but "
                f"{entry['file']} is missing; restore it from backup (numbers are never reused)"
            )
    return [e for e, _ in entries], entries[-1][1] if entries else 0
