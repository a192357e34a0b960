"""Shared readers for the importers: CSV bytes as text columns, JSON bytes with exact decimals."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from talktime.errors import StatementError

#: Provider JSON numbers are read as exact decimals and kept to the microsecond / 10^-10 of a unit.
MICRO = Decimal("0.000001")
MONEY = Decimal("1e-10")


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


def header_key(name: str) -> str:
    """A header as compared: lower case, without spaces, underscores or hyphens (``Call Sid`` = ``call_sid``).

    >>> header_key("Price Unit"), header_key("price_unit")
    ('priceunit', 'priceunit')
    """
    return "".join(c for c in name.lower() if c not in " _-")


def pick_all(table: pa.Table, *names: str) -> list[Any]:
    """The columns of ``names`` the table has, in the order of ``names``, headers compared by
    :func:`header_key` (exports spell them variously)."""
    keyed = {header_key(n): n for n in reversed(table.column_names)}
    found: list[str] = []
    for candidate in names:
        column = keyed.get(header_key(candidate))
        if column is not None and column not in found:
            found.append(column)
    return [table.column(c) for c in found]


def pick(table: pa.Table, *names: str) -> Any:
    """The first of ``names`` the table has, else None."""
    found = pick_all(table, *names)
    return found[0] if found else None


def load_json(data: bytes, name: str, key: str) -> list[Any]:
    """The list under ``key`` (dotted: ``_embedded.calls``) in a JSON page, numbers as exact decimals."""
    try:
        document = json.loads(data, parse_float=Decimal)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise StatementError([f"{name}: not valid JSON: {error}"]) from None
    items = _dotted(document, key)
    if not isinstance(items, list):
        raise StatementError([f"{name}: field {key!r}: expected a list of {key} at the top level"])
    return items


def text(value: object, places: Decimal | None = None) -> str | None:
    """A JSON value as text for the raw table; decimals kept exact as written, rounded half-even only when
    finer than ``places``."""
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, Decimal) and places is not None:
        exponent = value.as_tuple().exponent
        if not isinstance(exponent, int) or exponent < places.as_tuple().exponent:  # type: ignore[operator]
            return format(value.quantize(places), "f")
        return format(value, "f")
    return str(value)


def raw_from_csv(table: pa.Table, columns: Mapping[str, tuple[str, ...]]) -> pa.Table:
    """The raw statement table from CSV text columns: each raw column from the first of its headers that
    has a value on the row (a Twilio call not dialled has no ``Start Time``, only ``Date Created``)."""
    from talktime.importers.base import RAW_COLUMNS

    arrays: list[Any] = []
    for raw in RAW_COLUMNS:
        if raw == "line":
            arrays.append(table.column("_line"))  # an integer: read as is by ``CAST(line AS BIGINT)``
            continue
        found = pick_all(table, *columns.get(raw, ()))
        if not found:
            arrays.append(pa.nulls(table.num_rows, pa.string()))
        elif len(found) == 1:
            arrays.append(found[0])
        else:
            empty = pa.scalar("", pa.string())
            blanked = [pc.if_else(pc.equal(pc.utf8_trim_whitespace(c), empty), None, c) for c in found]
            arrays.append(pc.coalesce(*blanked))
    return pa.Table.from_arrays(arrays, names=list(RAW_COLUMNS))


def rows_from_json(items: list[Any], fields: Mapping[str, tuple[str, ...]]) -> list[dict[str, str | None]]:
    """Raw rows from JSON objects: each raw column from the first of its (dotted) field names with a value."""
    rows = []
    for index, item in enumerate(items):
        row: dict[str, str | None] = {"line": str(index)}
        for raw, names in fields.items():
            value = None
            for name in names:
                value = _dotted(item, name)
                if value is not None and value != "":
                    break
            row[raw] = text(
                value, MONEY if raw == "amount" else MICRO if raw in ("duration", "billed") else None
            )
        rows.append(row)
    return rows


def _dotted(item: object, name: str) -> Any:
    for part in name.split("."):
        item = item.get(part) if isinstance(item, dict) else None
    return item


def utc_if_naive(value: str | None) -> str | None:
    """An ISO 8601 time with ``+00:00`` appended when it has no offset (providers that write UTC bare)."""
    if value is None or len(value) < 19:
        return value
    tail = value[19:]
    if value.endswith(("Z", "z")) or "+" in tail or "-" in tail:
        return value
    return value + "+00:00"
