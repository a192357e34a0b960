"""Any CSV, with a small TOML mapping that says which column is what.

[columns]                 # header names in the CSV; all optional but start
id = "Call ID"
start = "Started"         # required
end = "Ended"
duration = "Seconds"      # the provider's measure; or give end
quantity = "Billed min"   # what the provider billed, when the export says so
amount = "Cost"
status = "Outcome"
channels = "Channels"
currency = "Currency"

[units]                   # optional
duration = "second"       # millisecond, second, minute or hour
quantity = "minute"
time_format = "iso"       # "iso", "rfc2822" or "either"
naive_utc = false         # true: a time without an offset is UTC
negate_amount = false     # true when charges are written negative

[statuses]                # optional: the export's words -> completed, failed, unanswered, busy, canceled
"Hung up" = "completed"   # added to the common words (completed, no-answer, busy, failed, canceled, ...)

docs/reconcile.md has a worked example.
"""

from __future__ import annotations

import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa

from talktime.errors import StatementError
from talktime.importers._text import csv_columns, raw_from_csv
from talktime.importers.base import CLOSED_STATUSES, COMMON_STATUSES, Reading, normalize

UNITS = {
    "millisecond": Decimal("0.001"),
    "second": Decimal(1),
    "minute": Decimal(60),
    "hour": Decimal(3600),
}
_KEYS = {
    "id": "id",
    "start": "started_at",
    "end": "ended_at",
    "duration": "duration",
    "quantity": "billed",
    "amount": "amount",
    "status": "status",
    "channels": "channels",
    "currency": "currency",
}


def load_mapping(path: Path) -> dict[str, Any]:
    """The mapping file, checked: unknown keys and units are errors naming the key."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise StatementError([f"{path}: not a readable TOML mapping: {error}"]) from None
    problems = [
        f"{path}: key {k!r}: unknown (use [columns], [units] and [statuses])"
        for k in data
        if k not in ("columns", "units", "statuses")
    ]
    columns = data.get("columns", {})
    problems += [
        f"{path}: columns.{k}: unknown (known: {', '.join(_KEYS)})" for k in columns if k not in _KEYS
    ]
    if "start" not in columns:
        problems.append(f"{path}: columns.start: is required (the column with each line's start time)")
    units = data.get("units", {})
    for key in ("duration", "quantity"):
        if key in units and units[key] not in UNITS:
            problems.append(f"{path}: units.{key}: {units[key]!r} is not one of {', '.join(UNITS)}")
    if units.get("time_format", "iso") not in ("iso", "rfc2822", "either"):
        problems.append(f"{path}: units.time_format: must be iso, rfc2822 or either")
    for key in ("naive_utc", "negate_amount"):
        if key in units and not isinstance(units[key], bool):
            problems.append(f"{path}: units.{key}: must be true or false")
    statuses = data.get("statuses", {})
    if not isinstance(statuses, dict):
        problems.append(f'{path}: statuses: must be a table of "export word" = "talktime status"')
        statuses = {}
    problems += [
        f"{path}: statuses.{k}: {v!r} is not one of {', '.join(CLOSED_STATUSES)}"
        for k, v in statuses.items()
        if v not in CLOSED_STATUSES
    ]
    if problems:
        raise StatementError(problems)
    return data


def read_csv(data: bytes, where: str, mapping: dict[str, Any]) -> pa.Table:
    """CSV rows as statement lines, read through ``mapping`` (see :func:`load_mapping`)."""
    columns: dict[str, str] = mapping.get("columns", {})
    units: dict[str, Any] = mapping.get("units", {})
    table = csv_columns(data, where)
    missing = [
        f"{where} line 1: column {c!r} (columns.{k}) is not in the header"
        for k, c in columns.items()
        if c not in table.column_names
    ]
    if missing:
        raise StatementError(missing)
    raw = {_KEYS[k]: (c,) for k, c in columns.items()}
    fmt: Literal["iso", "rfc2822", "either"] = units.get("time_format", "iso")
    own = {str(k).strip().lower(): str(v) for k, v in mapping.get("statuses", {}).items()}
    reading = Reading(
        where=lambda n: f"{where} line {n}",
        time_format=fmt,
        duration_unit=UNITS[units.get("duration", "second")],
        billed_unit=UNITS[units.get("quantity", "second")],
        negate_amount=bool(units.get("negate_amount", False)),
        naive_utc=bool(units.get("naive_utc", False)),
        statuses={**COMMON_STATUSES, **own},
        field_names={_KEYS[k]: c for k, c in columns.items()},
    )
    return normalize(raw_from_csv(table, raw), reading)
