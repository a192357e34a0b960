"""Exports for finance and FinOps tools (the edge): FOCUS 1.2 rows and plain invoice lines, as CSV or
Parquet. Numbers stay exact: CSV writes decimals as text without exponent (12 places at most), Parquet as
``decimal128(38, 12)``; FOCUS date/times are UTC (``2026-10-01T04:00:00Z`` in CSV, ``timestamp[us, UTC]`` in
Parquet). An empty CSV cell and a Parquet null are FOCUS's null.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import pyarrow as pa
import pyarrow.parquet as pq

from talktime.core.decimals import quantize, text
from talktime.core.invoicing.focus import (
    COLUMNS,
    DATETIME_COLUMNS,
    DECIMAL_COLUMNS,
    INTEGER_COLUMNS,
    PLACES,
    Row,
)
from talktime.core.invoicing.invoice import Invoice
from talktime.errors import InputError

DECIMAL_TYPE: Final = pa.decimal128(38, PLACES)
FORMATS: Final = ("csv", "parquet")

#: Plain invoice lines: one row per line of each invoice, the invoice's fields repeated on each.
LINE_COLUMNS: Final = (
    "invoice",
    "number",
    "status",
    "customer",
    "customer_name",
    "period",
    "period_start",
    "period_end",
    "timezone",
    "issued_on",
    "due_on",
    "currency",
    "line",
    "kind",
    "meter",
    "description",
    "actual_quantity",
    "billable_quantity",
    "unit",
    "unit_price",
    "amount",
    "precise_amount",
    "actual_base",
    "billable_base",
    "base_unit",
    "records",
    "policy",
    "adjusts_period",
)
_LINE_DECIMALS: Final = frozenset(
    {
        "actual_quantity",
        "billable_quantity",
        "unit_price",
        "amount",
        "precise_amount",
        "actual_base",
        "billable_base",
    }
)
_LINE_TIMES: Final = frozenset({"period_start", "period_end"})
_LINE_DATES: Final = frozenset({"issued_on", "due_on"})
_LINE_INTEGERS: Final = frozenset({"line", "records"})


def invoice_line_rows(invoices: Iterable[Invoice]) -> list[Row]:
    """Each line of each invoice as one flat row of exact values."""
    rows: list[Row] = []
    for invoice in invoices:
        for index, line in enumerate(invoice.lines, start=1):
            rows.append(
                {
                    "invoice": invoice.id,
                    "number": invoice.number,
                    "status": invoice.status,
                    "customer": invoice.customer,
                    "customer_name": invoice.customer_name,
                    "period": invoice.period.label,
                    "period_start": invoice.period.start,
                    "period_end": invoice.period.end,
                    "timezone": invoice.period.timezone,
                    "issued_on": invoice.issued_on,
                    "due_on": invoice.due_on,
                    "currency": invoice.currency,
                    "line": index,
                    "kind": line.kind,
                    "meter": line.meter,
                    "description": line.description,
                    "actual_quantity": line.actual_quantity,
                    "billable_quantity": line.billable_quantity,
                    "unit": line.unit,
                    "unit_price": line.unit_price,
                    "amount": line.amount.amount,
                    "precise_amount": line.amount.precise.amount,
                    "actual_base": line.actual_base,
                    "billable_base": line.billable_base,
                    "base_unit": line.base_unit or None,
                    "records": line.records,
                    "policy": line.policy or None,
                    "adjusts_period": line.adjusts_period,
                }
            )
    return rows


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return text(quantize(value, PLACES))
    if isinstance(value, datetime):  # FOCUS rows hold UTC (written ...Z); invoice lines the customer's zone
        return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value.tzinfo is UTC else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def to_csv(rows: Sequence[Row], columns: Sequence[str]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(column)) for column in columns])
    return buffer.getvalue()


def _arrow_type(
    column: str, decimals: frozenset[str], times: frozenset[str], dates: frozenset[str], ints: frozenset[str]
) -> pa.DataType:
    if column in decimals:
        return DECIMAL_TYPE
    if column in times:
        return pa.timestamp("us", tz="UTC")
    if column in dates:
        return pa.date32()
    if column in ints:
        return pa.int64()
    return pa.string()


def _arrow_value(value: object) -> Any:
    if isinstance(value, Decimal):
        return quantize(value, PLACES).quantize(Decimal(1).scaleb(-PLACES))
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return value


def to_parquet(
    rows: Sequence[Row],
    columns: Sequence[str],
    path: Path,
    *,
    decimals: frozenset[str],
    times: frozenset[str],
    dates: frozenset[str] = frozenset(),
    ints: frozenset[str] = frozenset(),
    metadata: dict[bytes | str, bytes | str] | None = None,
) -> None:
    schema = pa.schema(
        [pa.field(c, _arrow_type(c, decimals, times, dates, ints)) for c in columns],
        metadata=metadata,
    )
    arrays = [
        pa.array([_arrow_value(row.get(c)) for row in rows], type=schema.field(c).type) for c in columns
    ]
    table = pa.Table.from_arrays(arrays, schema=schema)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    pq.write_table(table, partial)
    partial.replace(path)


def write_focus(rows: Sequence[Row], format: str, out: Path | None) -> str | None:
    """FOCUS rows as CSV (returned when ``out`` is None) or Parquet (``out`` required)."""
    return _write(
        rows,
        COLUMNS,
        format,
        out,
        decimals=DECIMAL_COLUMNS,
        times=DATETIME_COLUMNS,
        ints=INTEGER_COLUMNS,
        metadata={"focus_version": "1.2", "generator": "talktime"},
    )


def write_invoice_lines(rows: Sequence[Row], format: str, out: Path | None) -> str | None:
    """Plain invoice lines as CSV (returned when ``out`` is None) or Parquet (``out`` required)."""
    return _write(
        rows,
        LINE_COLUMNS,
        format,
        out,
        decimals=_LINE_DECIMALS,
        times=_LINE_TIMES,
        dates=_LINE_DATES,
        ints=_LINE_INTEGERS,
    )


def _write(
    rows: Sequence[Row],
    columns: Sequence[str],
    format: str,
    out: Path | None,
    **types: Any,
) -> str | None:
    if format == "csv":
        content = to_csv(rows, columns)
        if out is None:
            return content
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_name(out.name + ".partial")
        partial.write_text(content, encoding="utf-8")
        partial.replace(out)
        return None
    if format == "parquet":
        if out is None:
            raise InputError("--format parquet writes a file: add --out FILE.parquet")
        to_parquet(rows, columns, out, **types)
        return None
    raise InputError(f"format: {format!r} is not one of {', '.join(FORMATS)}")
