"""Record files as a typed table an engine can scan: the canonical layout of ``records_table`` plus ``_row``.

Owns: deciding whether a file can be scanned as it is (Parquet in the canonical types) or must first be
parsed record by record (CSV, JSON Lines, Parquet in other types), which gives exactly the reference meter's
record-format errors (file, line, record, field). Parsing streams in batches to a temporary Parquet file, so
Python never holds all records. Does not own: metering (``compile.py``) or engines (``backends.py``).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

import pyarrow as pa
import pyarrow.parquet as pq

from talktime.core.records import ATTR_PREFIX, RECORD_FIELDS, UsageRecord
from talktime.errors import InputError, RecordError
from talktime.io.records_io import _ARROW_TYPES, RecordFile, file_format, records_table

BATCH: Final = 65_536


def _canonical_type(name: str, actual: pa.DataType) -> bool:
    """True when an engine can read the column as it is, exactly as the reference reads it."""
    if name.startswith(ATTR_PREFIX):
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
        if name not in RECORD_FIELDS and not name.startswith(ATTR_PREFIX):
            raise RecordError(
                name, "is not a record field; free attributes are written attr.<name>", where=f"{path} header"
            )
    if all(_canonical_type(f.name, f.type) for f in schema):
        return schema
    return None


def _schema(attrs: list[str]) -> pa.Schema:
    fields = [pa.field(name, _ARROW_TYPES[name]) for name in RECORD_FIELDS]
    return pa.schema(fields + [pa.field(a, pa.string()) for a in attrs])


def _batches(records: Iterator[UsageRecord]) -> Iterator[list[UsageRecord]]:
    batch: list[UsageRecord] = []
    for record in records:
        batch.append(record)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


@contextmanager
def canonical_parquet(path: Path, attrs: list[str]) -> Iterator[tuple[Path, str]]:
    """A Parquet file with the canonical layout and the ``attr.*`` columns in ``attrs``, and how its rows
    are named in errors (``line`` for text files, ``row`` for Parquet)."""
    if scannable(path) is not None:
        yield path, "row"
        return
    source = RecordFile(path)
    names = [a[len(ATTR_PREFIX) :] for a in attrs]
    with tempfile.TemporaryDirectory(prefix="talktime-") as folder:
        target = Path(folder) / "records.parquet"
        with pq.ParquetWriter(target, _schema(attrs)) as writer:
            for batch in _batches(iter(source)):
                writer.write_table(records_table(batch, names))
        yield target, "record"
