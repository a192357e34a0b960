"""Record files as a typed table an engine can scan: the canonical layout of ``records_table`` plus ``_row``.

Owns: deciding whether a file can be scanned as it is (Parquet in the canonical types) or must first be
parsed record by record (CSV, JSON Lines, Parquet in other types), which gives exactly the reference meter's
record-format errors (file, line, record, field). Parsing streams in batches to a temporary Parquet file, so
Python never holds all records. Does not own: metering (``compile.py``) or engines (``backends.py``).

A file holding a record the typed columns cannot hold (seconds with more than 6 decimals or of 10^12 or
more, a count past 64 bits: a text file's value, or a Parquet file's ``_exact`` row) cannot be scanned: it
raises :class:`~talktime.io.records_io.BeyondTypedLayout` naming the file, the row, the record and the field,
before any engine reads it; the callers with an ``auto`` or default engine meter the file on the reference.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pyarrow as pa
import pyarrow.parquet as pq

from talktime.core.records import ATTR_PREFIX, RECORD_FIELDS, UsageRecord
from talktime.errors import InputError, RecordError
from talktime.io.records_io import (
    _ARROW_TYPES,
    EXACT,
    BeyondTypedLayout,
    RecordFile,
    beyond_error,
    file_format,
    misfit,
    record_of_row,
    records_table,
)

BATCH: Final = 65_536


def _canonical_type(name: str, actual: pa.DataType) -> bool:
    """True when an engine can read the column as it is, exactly as the reference reads it."""
    if name.startswith(ATTR_PREFIX) or name == EXACT:
        return bool(pa.types.is_string(actual) or pa.types.is_large_string(actual))
    wanted = _ARROW_TYPES[name]
    if pa.types.is_timestamp(wanted):
        return bool(
            pa.types.is_timestamp(actual) and actual.tz is not None and actual.unit in ("us", "ms", "s")
        )
    if pa.types.is_decimal(wanted):
        return bool(
            pa.types.is_decimal(actual) and actual.scale <= 6 and actual.precision - actual.scale <= 12
        )
    if pa.types.is_integer(wanted):
        return bool(pa.types.is_integer(actual))
    return bool(pa.types.is_string(actual) or pa.types.is_large_string(actual))


def scannable(path: Path) -> pa.Schema | None:
    """The Parquet schema when the file can be scanned directly, None when it must be parsed first."""
    if file_format(path) != "parquet":
        return None
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    schema = pq.ParquetFile(path).schema_arrow
    for name in schema.names:
        if name not in RECORD_FIELDS and not name.startswith(ATTR_PREFIX) and name != EXACT:
            raise RecordError(
                name, "is not a record field; free attributes are written attr.<name>", where=f"{path} header"
            )
    if all(_canonical_type(f.name, f.type) for f in schema):
        return schema
    return None


def _schema(attrs: list[str]) -> pa.Schema:
    fields = [pa.field(name, _ARROW_TYPES[name]) for name in RECORD_FIELDS]
    return pa.schema([*fields, *(pa.field(a, pa.string()) for a in attrs), pa.field(LINE, pa.int64())])


#: A parsed file's column holding each record's line, so an engine's error can name it.
LINE: Final = "_line"


def _numbered(source: RecordFile) -> Iterator[tuple[UsageRecord, int]]:
    for record in source:
        yield record, int(source.where.rsplit(" ", 1)[1])


def _batches(records: Iterator[tuple[UsageRecord, int]]) -> Iterator[list[tuple[UsageRecord, int]]]:
    batch: list[tuple[UsageRecord, int]] = []
    for item in records:
        batch.append(item)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


@dataclass(frozen=True, slots=True)
class Scannable:
    """A Parquet file in the canonical layout, and the file it came from (to name rows in errors)."""

    path: Path
    origin: Path
    parsed: bool

    def where(self, row: int) -> str:
        """``calls.csv line 7`` for a parsed text file, ``calls.parquet row 7`` for a scanned one."""
        if not self.parsed:
            return f"{self.origin} row {row}"
        lines = pq.read_table(self.path, columns=[LINE]).column(0)
        return f"{self.origin} line {lines[row - 1].as_py()}"


@contextmanager
def canonical_parquet(path: Path, attrs: list[str], *, numbers: bool = True) -> Iterator[Scannable]:
    """A Parquet file with the canonical layout and the ``attr.*`` columns in ``attrs``. ``numbers`` False:
    the caller reads no seconds or count column (only times, text), so a record whose numbers the typed
    columns cannot hold is scanned too, those values null, instead of refused."""
    schema = scannable(path)
    if schema is not None:
        if EXACT in schema.names and numbers:
            _refuse_exact_rows(path)
        yield Scannable(path, path, parsed=False)
        return
    source = RecordFile(path)
    names = [a[len(ATTR_PREFIX) :] for a in attrs]
    with tempfile.TemporaryDirectory(prefix="talktime-") as folder:
        target = Path(folder) / "records.parquet"
        with pq.ParquetWriter(target, _schema(attrs)) as writer:
            for batch in _batches(_numbered(source)):
                try:
                    table = records_table([r for r, _ in batch], names, exact=not numbers)
                    if EXACT in table.column_names:
                        table = table.drop_columns([EXACT])
                except BeyondTypedLayout as error:
                    line = next(n for r, n in batch if r.id == error.record_id and misfit(r) is not None)
                    kind = "row" if source.format == "parquet" else "line"
                    raise error.located(f"{path} {kind} {line}") from None
                table = table.append_column(LINE, pa.array([n for _, n in batch], pa.int64()))
                writer.write_table(table)
        yield Scannable(target, path, parsed=True)


def _refuse_exact_rows(path: Path) -> None:
    """Raise for the first row of a Parquet record file whose ``_exact`` says the typed columns could not
    hold its record (a file without one scans as it is): the column alone is read, then that row's batch."""
    handle = pq.ParquetFile(path)
    row = _first_exact_row(handle.iter_batches(batch_size=BATCH, columns=[EXACT]))
    if row is None:
        return
    start = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=BATCH):
        if row < start + batch.num_rows:
            record = record_of_row(batch.slice(row - start, 1).to_pylist()[0])
            found = misfit(record) or ("(row)", "its typed values were left null")
            raise beyond_error(record, *found).located(f"{path} row {row + 1}")
        start += batch.num_rows


def _first_exact_row(batches: Iterator[pa.RecordBatch]) -> int | None:
    """The index of the first row whose ``_exact`` is set, if any."""
    start = 0
    for batch in batches:
        column = batch.column(0)
        if column.null_count < len(column):
            return start + next(i for i, v in enumerate(column.to_pylist()) if v is not None)
        start += batch.num_rows
    return None
