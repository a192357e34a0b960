"""Shared readers for the importers: CSV bytes as text columns, JSON bytes with exact decimals."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv

from talktime.errors import StatementError

#: Provider JSON numbers are read as exact decimals and kept to the microsecond / 10^-10 of a unit.
MICRO = Decimal("0.000001")


def first_line(data: bytes) -> bytes:
    """The bytes before the first newline (all of ``data`` when it has none); the rest is not copied."""
    end = data.find(b"\n")
    return data if end < 0 else data[:end]


def csv_columns(data: bytes, name: str) -> pa.Table:
    """Every column as text, plus ``line``: the file line of each row (the header is line 1).

    Line numbers assume no quoted field spans lines, which no provider export we read does.
    """
    try:
        first = first_line(data).decode("utf-8-sig").strip("\r")
        names = next(csv.reader([first]))
        table = pacsv.read_csv(
            io.BytesIO(data),
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.string() for n in names}, strings_can_be_null=True
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeDecodeError, StopIteration) as error:
        raise StatementError([f"{name}: not a readable CSV file: {error}"]) from None
    lines = pa.array(range(2, table.num_rows + 2), pa.int64())
    return table.append_column("_line", lines)


def pick(table: pa.Table, *names: str) -> Any:
    """The first of ``names`` the table has (CSV headers vary in spelling), else None."""
    for candidate in names:
        if candidate in table.column_names:
            return table.column(candidate)
    return None


def load_json(data: bytes, name: str, key: str) -> list[Any]:
    """The list under ``key`` in a JSON page, numbers as exact decimals."""
    try:
        document = json.loads(data, parse_float=Decimal)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise StatementError([f"{name}: not valid JSON: {error}"]) from None
    items = document.get(key) if isinstance(document, dict) else None
    if not isinstance(items, list):
        raise StatementError([f"{name}: field {key!r}: expected a list of {key} at the top level"])
    return items


def text(value: object, places: Decimal | None = None) -> str | None:
    """A JSON value as text for the raw table; decimals kept exact (quantized only when ``places``)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, Decimal) and places is not None:
        return str(value.quantize(places))
    return str(value)


def raw_from_csv(table: pa.Table, columns: Mapping[str, tuple[str, ...]]) -> pa.Table:
    """The raw statement table from CSV text columns: each raw column from the first header that exists."""
    from talktime.importers.base import RAW_COLUMNS

    arrays: list[Any] = []
    for raw in RAW_COLUMNS:
        if raw == "line":
            arrays.append(table.column("_line"))  # an integer: read as is by ``CAST(line AS BIGINT)``
            continue
        found = pick(table, *columns.get(raw, ()))
        arrays.append(found if found is not None else pa.nulls(table.num_rows, pa.string()))
    return pa.Table.from_arrays(arrays, names=list(RAW_COLUMNS))


def utc_if_naive(value: str | None) -> str | None:
    """An ISO 8601 time with ``+00:00`` appended when it has no offset (providers that write UTC bare)."""
    if value is None or len(value) < 19:
        return value
    tail = value[19:]
    if value.endswith(("Z", "z")) or "+" in tail or "-" in tail:
        return value
    return value + "+00:00"
