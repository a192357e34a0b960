"""Invoices out (JSON, CSV, HTML, PDF) and the ledger of finalised invoices (the edge: files and libraries).

The ledger is a directory: ``LEDGER/<customer>/<YYYY-MM>.<sha256 prefix>.json``, one file per finalised
invoice, named by the hash of its content. A finalised invoice is written once and never rewritten; reading
it back checks the hash, so an edited file is an error, not a silent change.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path
from typing import Any, Final

from jinja2 import Environment, PackageLoader, select_autoescape

from talktime.core.invoicing.invoice import Invoice
from talktime.core.invoicing.serialize import invoice_dict, invoice_from_dict
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


class LedgerError(InputError):
    """A ledger file that is unreadable, tampered with, or a finalisation that would change history."""


def to_json(invoice: Invoice) -> str:
    return json.dumps(invoice_dict(invoice), indent=2, ensure_ascii=False) + "\n"


def to_csv(invoice: Invoice) -> str:
    """One row per line, then a TOTAL row; the invoice's header fields repeated on each row."""
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
    for kind, key in (("SUBTOTAL", "subtotal"), ("ADJUSTMENTS", "adjustments"), ("TOTAL", "total")):
        writer.writerow({**head, "kind": kind, "amount": data[key]})
    return buffer.getvalue()


def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("talktime.io", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def to_html(invoice: Invoice) -> str:
    template = _environment().get_template("invoice.html.j2")
    return template.render(invoice=invoice_dict(invoice))


def to_pdf(invoice: Invoice) -> bytes:
    """The HTML invoice rendered by WeasyPrint (needs Pango on the machine)."""
    from weasyprint import HTML  # type: ignore[import-untyped]

    pdf: bytes = HTML(string=to_html(invoice)).write_pdf()
    return pdf


def render(invoice: Invoice, format: str) -> str | bytes:
    if format == "json":
        return to_json(invoice)
    if format == "csv":
        return to_csv(invoice)
    if format == "html":
        return to_html(invoice)
    if format == "pdf":
        return to_pdf(invoice)
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
    """Store a finalised invoice; refuse if its customer and period already have one (it never changes)."""
    if invoice.status != "finalised":
        raise LedgerError(f"invoice {invoice.id} is a draft; finalise it before it goes in the ledger")
    existing = sorted((folder / invoice.customer).glob(f"{invoice.period.label}.*.json"))
    if existing:
        raise LedgerError(
            f"{existing[0]}: {invoice.customer} {invoice.period.label} is already finalised and never "
            "changes; late events go on the next invoice as an adjustment"
        )
    path = ledger_path(folder, invoice)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(_canonical(invoice_dict(invoice)))
    partial.replace(path)
    return path
