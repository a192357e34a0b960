"""Usage records from and to files: CSV, JSON Lines and Parquet, chosen by the file's extension.

Reading streams: one record at a time, so a file larger than memory can be metered. A row that breaks the
record format raises :class:`~talktime.errors.RecordError` naming the file, the line (or row), the record and
the field. Numbers in JSON are read as exact decimals; nothing passes through float except a Parquet
``double`` column, which is read through its shortest text form.

Parquet is written in the engines' typed layout (:func:`records_table`: seconds to 6 decimals, as integer
microseconds in SQL; counts in 64 bits). A record those columns cannot hold (seconds with more than 6
decimals, an SDK's ``0.1 + 0.2``, or of 10^12 or more; a count past 64 bits) is never rounded, clamped or
dropped: its typed value is left null and the file's ``_exact`` column carries the exact record as JSON
(the form the event store keeps in ``doc``), from which every reader here takes the value. The engines
cannot meter such a file (:class:`BeyondTypedLayout`): the reference meter does, exactly.
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

#: A Parquet record file's column holding, for a record the typed columns cannot hold, the exact record as
#: JSON in the event store's ``doc`` forms (:func:`talktime.store.records.record_doc`'s: decimals as text,
#: whole numbers of any size; or a lone record event's data); null for the others.
EXACT: Final = "_exact"
_SECONDS_FIELDS: Final = ("audio_seconds", "speech_seconds", "provider_reported_seconds")
#: The fields whose typed column may be too narrow for a value: seconds and counts.
_NUMBERS: Final = ("audio_seconds", "speech_seconds", "provider_reported_seconds", "channels", *COUNT_FIELDS)
#: The typed layout's bounds: seconds below 10^12 (DECIMAL(18,6)), counts in a signed 64-bit integer.
LIMIT_SECONDS: Final = Decimal(10**12)
LIMIT_INT: Final = 2**63


class BeyondTypedLayout(RecordError):
    """A valid record the engines' typed columns cannot hold (seconds to 6 decimals below 10^12, counts in
    64 bits): an engine refuses the file naming the record and the field; the reference meter meters it
    exactly (``auto`` and the default engines fall back to it)."""

    def located(self, where: str) -> BeyondTypedLayout:
        return BeyondTypedLayout(self.field, self.why, where=where, record_id=self.record_id)

    def __reduce__(self) -> tuple[Any, tuple[str, str, str, str | None]]:
        # pickled whole: a dashboard's worker process sends it back to the page that shows it
        return _beyond_again, (self.field, self.why, self.where, self.record_id)

    def hinted(self, hint: str) -> BeyondTypedLayout:
        """The same error with what the user can do in the command that met it."""
        return BeyondTypedLayout(
            self.field, f"{self.why}; {hint}", where=self.where, record_id=self.record_id
        )


def _beyond_again(field: str, why: str, where: str, record_id: str | None) -> BeyondTypedLayout:
    return BeyondTypedLayout(field, why, where=where, record_id=record_id)


def misfit(record: UsageRecord) -> tuple[str, str] | None:
    """The first field of ``record`` the typed columns cannot hold and why, or None when they hold it all.

    >>> from talktime.core.records import parse_record
    >>> call = {"id": "a", "started_at": "2026-10-01T10:00:00Z", "ended_at": "2026-10-01T10:01:00Z"}
    >>> misfit(parse_record({**call, "audio_seconds": "0.25"}))
    >>> misfit(parse_record({**call, "audio_seconds": "0.30000000000000004"}))
    ('audio_seconds', '0.30000000000000004 has more than 6 decimals')
    >>> misfit(parse_record({**call, "input_tokens": str(2**64)}))
    ('input_tokens', '18446744073709551616 is past 64 bits')
    """
    for name in _NUMBERS:
        why = _too_wide(getattr(record, name))
        if why:
            return name, why
    return None


def _too_wide(value: Decimal | int | None) -> str:
    """Why the typed column cannot hold ``value`` ("" when it can)."""
    if value is None:
        return ""
    if isinstance(value, Decimal):
        exponent = value.as_tuple().exponent
        if not isinstance(exponent, int) or exponent < -6:
            return f"{value} has more than 6 decimals"
        return f"{value} is 10^12 seconds or more" if abs(value) >= LIMIT_SECONDS else ""
    return "" if -LIMIT_INT <= value < LIMIT_INT else f"{value} is past 64 bits"


def beyond_error(record: UsageRecord, field: str, why: str) -> BeyondTypedLayout:
    """The engines' refusal of ``record``: which field, why, and what meters it instead."""
    return BeyondTypedLayout(
        field,
        f"{why}, which the engines' typed columns cannot hold (seconds to 6 decimals, as integer "
        "microseconds; counts in 64 bits), and nothing is rounded",
        record_id=record.id,
    )


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
    _check_header(path, [n for n in handle.schema_arrow.names if n != EXACT])
    row = 0
    for batch in handle.iter_batches(batch_size=65_536):
        for values in batch.to_pylist():
            row += 1
            where = f"{path} row {row}"
            try:
                yield where, record_of_row(values)
            except RecordError as error:
                raise _located(error, where) from None


def record_of_row(values: dict[str, Any]) -> UsageRecord:
    """The record of one Parquet row: the typed values, and where the row carries ``_exact`` (the typed
    columns could not hold the record), each value they left null taken from the exact record. The other
    fields stay the row's (a snapshot's status and end are as of its moment, the doc's as stored)."""
    doc = values.pop(EXACT, None)
    if doc is not None:
        for name, value in _exact_numbers(doc).items():
            if values.get(name) is None:
                values[name] = value
    return parse_record(values)


def _exact_numbers(doc: str) -> dict[str, Any]:
    """The seconds and counts of an ``_exact`` doc (either of the store's forms), as the store reads them."""
    from talktime.store.records import record_from_doc  # the store keeps the doc's one reader

    record = record_from_doc(doc)
    return {name: getattr(record, name) for name in _NUMBERS if getattr(record, name) is not None}


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
        pq.write_table(records_table(items, attr_names, exact=True), path)
    return len(items)


def records_table(
    records: list[UsageRecord], attr_names: list[str] | None = None, *, exact: bool = False
) -> pa.Table:
    """Records as a typed Arrow table (the Parquet layout the engines read). A record the typed columns
    cannot hold raises :class:`BeyondTypedLayout`; with ``exact`` it is kept instead: its values that do
    not fit are null and the ``_exact`` column (added only then) holds the exact record."""
    names = attr_names if attr_names is not None else sorted({k for r in records for k in r.attrs})
    columns: dict[str, list[Any]] = {name: [getattr(r, name) for r in records] for name in RECORD_FIELDS}
    docs: list[str | None] = []
    try:
        arrays = [pa.array(columns[name], type=_ARROW_TYPES[name]) for name in RECORD_FIELDS]
    except (pa.ArrowInvalid, OverflowError):
        docs = _beyond(records, columns, exact)  # the rare file with such a record: each one is found
        if not any(docs):
            raise  # not a value too wide: Arrow's own error
        arrays = [pa.array(columns[name], type=_ARROW_TYPES[name]) for name in RECORD_FIELDS]
    fields = [pa.field(name, _ARROW_TYPES[name]) for name in RECORD_FIELDS]
    for attr in names:
        arrays.append(pa.array([r.attrs.get(attr) for r in records], type=pa.string()))
        fields.append(pa.field(ATTR_PREFIX + attr, pa.string()))
    if docs:
        arrays.append(pa.array(docs, type=pa.string()))
        fields.append(pa.field(EXACT, pa.string()))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def _beyond(records: list[UsageRecord], columns: dict[str, list[Any]], exact: bool) -> list[str | None]:
    """Each record's exact JSON where the typed columns cannot hold it (None elsewhere), its values that do
    not fit set to None in ``columns``; without ``exact``, the first such record's error."""
    from talktime.store.records import record_doc  # the store's doc form (any whole number: json_text)

    docs: list[str | None] = [None] * len(records)
    for index, record in enumerate(records):
        found = misfit(record)
        if found is None:
            continue
        if not exact:
            raise beyond_error(record, *found)
        docs[index] = record_doc(record)
        for name in _NUMBERS:
            if _too_wide(columns[name][index]):
                columns[name][index] = None
    return docs
