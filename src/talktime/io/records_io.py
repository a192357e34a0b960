"""Usage records from and to files: CSV, JSON Lines and Parquet, chosen by the file's extension.

Reading streams: one record at a time, so a file larger than memory can be metered. A row that breaks the
record format raises :class:`~talktime.errors.RecordError` naming the file, the line (or row), the record and
the field. Numbers in JSON are read as exact decimals; nothing passes through float except a Parquet
``double`` column, which is read through its shortest text form.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import pyarrow as pa
import pyarrow.parquet as pq

from talktime.core.records import (
    ATTR_PREFIX,
    COUNT_FIELDS,
    RECORD_FIELDS,
    UsageRecord,
    parse_record,
    record_to_row,
)
from talktime.errors import InputError, RecordError

FORMATS: Final = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}


def file_format(path: Path) -> str:
    """``csv``, ``jsonl`` or ``parquet`` from the extension, or an error that lists the ones we read."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        known = ", ".join(sorted(FORMATS))
        raise InputError(f"{path}: unknown record file extension {path.suffix!r}; use one of {known}")
    return fmt


class RecordFile:
    """The records of one file, read lazily in file order.

    ``where`` names the position of the record last read (``calls.csv line 7``), so an error found later,
    while that record is metered, can still say where the record came from.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.format = file_format(path)
        self.where = str(path)
        if not path.is_file():
            raise InputError(f"{path}: no such file")

    def __iter__(self) -> Iterator[UsageRecord]:
        reader = {"csv": _read_csv, "jsonl": _read_jsonl, "parquet": _read_parquet}[self.format]
        for where, record in reader(self.path):
            self.where = where
            yield record


def read_records(path: Path) -> Iterator[UsageRecord]:
    """Every record in the file, in file order."""
    return iter(RecordFile(path))


def count_hint(path: Path) -> int | None:
    """The number of records when the file says so cheaply (Parquet metadata), else None."""
    if file_format(path) == "parquet" and path.is_file():
        return int(pq.ParquetFile(path).metadata.num_rows)
    return None


def _located(error: RecordError, where: str) -> RecordError:
    return error.located(where)


def _read_csv(path: Path) -> Iterator[tuple[str, UsageRecord]]:
    # utf-8-sig: spreadsheets save "CSV UTF-8" with a byte-order mark, which is not part of the header.
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None:
            return
        _check_header(path, reader.fieldnames)
        for row in reader:
            where = f"{path} line {reader.line_num}"
            if None in row:
                raise RecordError("(row)", "has more cells than the header has columns", where=where)
            try:
                yield where, parse_record(row)
            except RecordError as error:
                raise _located(error, where) from None


def _check_header(path: Path, names: Iterable[str]) -> None:
    for name in names:
        if name not in RECORD_FIELDS and not name.startswith(ATTR_PREFIX):
            raise RecordError(
                name, "is not a record field; free attributes are written attr.<name>", where=f"{path} header"
            )


def _read_jsonl(path: Path) -> Iterator[tuple[str, UsageRecord]]:
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path} line {number}"
            try:
                values = json.loads(line, parse_float=Decimal)
            except json.JSONDecodeError as error:
                raise RecordError("(line)", f"is not valid JSON: {error.msg}", where=where) from None
            if not isinstance(values, dict):
                raise RecordError("(line)", "is not a JSON object", where=where)
            try:
                yield where, parse_record(values)
            except RecordError as error:
                raise _located(error, where) from None


def _read_parquet(path: Path) -> Iterator[tuple[str, UsageRecord]]:
    handle = pq.ParquetFile(path)
    _check_header(path, handle.schema_arrow.names)
    row = 0
    for batch in handle.iter_batches(batch_size=65_536):
        for values in batch.to_pylist():
            row += 1
            where = f"{path} row {row}"
            try:
                yield where, parse_record(values)
            except RecordError as error:
                raise _located(error, where) from None


# --- writing ------------------------------------------------------------------------------------------------

_SECONDS: Final = pa.decimal128(18, 6)
_ARROW_TYPES: Final[dict[str, pa.DataType]] = {
    **{name: pa.string() for name in ("id", "customer", "provider", "product", "session", "kind", "status")},
    **{
        name: pa.timestamp("us", tz="UTC")
        for name in ("started_at", "ended_at", "answered_at", "first_audio_at", "last_audio_at")
    },
    **dict.fromkeys(("audio_seconds", "speech_seconds", "provider_reported_seconds"), _SECONDS),
    **{name: pa.int64() for name in ("channels", *COUNT_FIELDS)},
}


def write_records(path: Path, records: Iterable[UsageRecord]) -> int:
    """Write records in the format the extension names; returns how many were written."""
    fmt = file_format(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    items = list(records)
    attr_names = sorted({key for r in items for key in r.attrs})
    if fmt == "csv":
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, [*RECORD_FIELDS, *(ATTR_PREFIX + a for a in attr_names)])
            writer.writeheader()
            for record in items:
                writer.writerow(record_to_row(record))
    elif fmt == "jsonl":
        with path.open("w", encoding="utf-8") as handle:
            for record in items:
                row = {k: v for k, v in record_to_row(record).items() if v != ""}
                handle.write(json.dumps(row) + "\n")
    else:
        pq.write_table(records_table(items, attr_names), path)
    return len(items)


def records_table(records: list[UsageRecord], attr_names: list[str] | None = None) -> pa.Table:
    """Records as a typed Arrow table (the Parquet layout the engines read)."""
    names = attr_names if attr_names is not None else sorted({k for r in records for k in r.attrs})
    columns: dict[str, list[Any]] = {name: [getattr(r, name) for r in records] for name in RECORD_FIELDS}
    arrays = [pa.array(columns[name], type=_ARROW_TYPES[name]) for name in RECORD_FIELDS]
    fields = [pa.field(name, _ARROW_TYPES[name]) for name in RECORD_FIELDS]
    for attr in names:
        arrays.append(pa.array([r.attrs.get(attr) for r in records], type=pa.string()))
        fields.append(pa.field(ATTR_PREFIX + attr, pa.string()))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))
