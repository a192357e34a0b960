"""A scope's records as of a moment, written to a Parquet record file by the store's own SQL: no record
becomes a Python value on the way (the served dashboard's snapshots, :mod:`talktime.app.snapshot`).

The file is the one :func:`~talktime.io.records_io.write_records` writes of the same records: the columns
of :data:`~talktime.core.records.RECORD_FIELDS` with their types (text, UTC microsecond times,
``decimal(18,6)`` seconds, 64-bit counts), then one ``attr.<name>`` text column per free attribute any
written record has (sorted by name), one row per record, by id. The records are the stored rows with the
idle timeout applied in SQL (:class:`~talktime.store.usage.Scope` and the same filter the usage reads use);
those still open are not written (they have no end yet): each is read as an :class:`OpenRecord` instead,
what a check of calls left open needs (the stuck-call alert, :mod:`talktime.app.alerts`).

* **DuckDB**: one ``COPY (SELECT ...) TO 'file' (FORMAT parquet)`` on a reader of the store's file.
* **PostgreSQL**: ``COPY (SELECT ...) TO STDOUT (FORMAT csv)`` streamed in blocks of about 16 MB, each block
  parsed by Arrow's CSV reader into typed columns (times as epoch microseconds, cast in Arrow) and appended
  to the file.

The few reads before it (the attribute names, the records still open, the acceptances of the written
records and the first receipts a face judges their time-worded limits by: :func:`~talktime.store.reviews.
kept_in`) and the copy are one transaction: a batch or an acceptance stored meanwhile changes none of them,
and a record is either in the file or open, never both or neither.

A record the typed columns cannot hold (``exact`` false: seconds with more than 6 decimals, as an SDK's
float ``0.1 + 0.2`` arrives, or a count past 64 bits) is written as ``write_records`` writes it: its typed
value null (as the store keeps it) and the file's ``_exact`` column (present only when the scope has such a
record) holding its ``doc``, the exact record, from which every reader of the file takes the value
(:func:`~talktime.io.records_io.record_of_row`); the engines refuse the file and the rating meters it with
the reference, exactly. Nothing is rounded, and the tenant's snapshot is never refused for it.

Owns: the SQL of a record file. Does not own: which records a snapshot holds (``app.snapshot``), the
records table (each store), the filter (``usage.py``).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from talktime.core.plausibility import Kept, Limits
from talktime.core.records import ATTR_PREFIX, RECORD_FIELDS
from talktime.engine.dialects import DUCKDB_WIDE, POSTGRES
from talktime.io.records_io import EXACT, records_table
from talktime.store.held import LOOSEST
from talktime.store.reviews import kept_in
from talktime.store.usage import RecordStore, Scope, _Filter

__all__ = ["OpenRecord", "Written", "write_record_file"]

#: Bytes of CSV parsed at once when PostgreSQL streams the records.
_BLOCK: Final = 16 * 1024 * 1024
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class OpenRecord:
    """A record of the scope still open at the file's moment (status ``open`` once the idle timeout has
    closed what it closes), so not in the file: who it is and since when, as stored."""

    id: str
    session: str | None
    customer: str | None
    kind: str | None
    provider: str | None
    product: str | None
    started_at: datetime


@dataclass(frozen=True, slots=True)
class Written:
    """How many records the file holds, how many of the scope's were still open (not written), the store's
    word on the written records (by id: the latest acceptance of each a person accepted, the first receipt of
    each whose time-worded limits turn on it: :class:`~talktime.core.plausibility.Kept`), and the tenant's
    records still open themselves, by id, whenever they started (a call left open since before the scope's
    start is stuck too: the alerts read them)."""

    records: int
    still_open: int
    accepted: Kept
    open_records: tuple[OpenRecord, ...]


def write_record_file(
    store: RecordStore,
    scope: Scope,
    as_of: datetime,
    idle: timedelta,
    target: Path,
    limits: Limits = LOOSEST,
) -> Written:
    """Write the scope's records closed as of ``as_of`` to ``target`` (Parquet); read those still open.
    Every read is made in one transaction, so a batch stored meanwhile changes none of them (the attribute
    columns, the open records and the file agree). The receipts of :attr:`Written.accepted` are those any
    time-worded limit could turn on, or, given the ``limits`` the file's records will be judged by, the few
    those flag (:func:`~talktime.store.reviews.kept_in`)."""
    postgres = store.records_dialect == "postgres"
    f = _Filter(POSTGRES if postgres else DUCKDB_WIDE, scope, as_of, idle)
    # the records still open whenever they started: a call left open since before the window is stuck too
    anywhen = _Filter(f.d, Scope(scope.tenant, scope.customer), as_of, idle)
    target.parent.mkdir(parents=True, exist_ok=True)
    if postgres:
        import psycopg

        url: str = getattr(store, "url")  # noqa: B009  (the PostgreSQL store's connection string)
        with psycopg.connect(url) as connection, connection.cursor() as cursor:
            connection.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ

            def read(sql: str) -> list[tuple[Any, ...]]:
                cursor.execute(sql.encode())  # bytes, no parameters: a % in the SQL is the modulo operator
                return cursor.fetchall()

            select, schema, left_open = _plan(read, f, anywhen)
            accepted = _accepted(read, f, scope.tenant, as_of, limits)
            _postgres_copy(cursor, select, schema, target)
    else:
        store.read("BEGIN TRANSACTION")  # on this thread's reader, which the reads below use too
        try:
            select, schema, left_open = _plan(store.read, f, anywhen)
            accepted = _accepted(store.read, f, scope.tenant, as_of, limits)
            store.read(f"COPY ({select}) TO {f.d.str_lit(str(target))} (FORMAT parquet)")
        finally:
            store.read("ROLLBACK")  # nothing was written: it only ends the transaction
    in_window = sum(1 for r in left_open if scope.start is None or r.started_at >= scope.start)
    return Written(int(pq.ParquetFile(target).metadata.num_rows), in_window, accepted, left_open)


def _accepted(
    read: Callable[[str], list[tuple[Any, ...]]], f: _Filter, tenant: str, as_of: datetime, limits: Limits
) -> Kept:
    """The store's word on the records the file holds (closed as of the moment): their acceptances, and the
    receipt of each whose receipt a time-worded limit (of ``limits``) could turn on
    (:func:`~talktime.store.reviews.kept_in`)."""
    return kept_in(read, f.d is POSTGRES, tenant, f"{f.where} AND {f.status} <> 'open'", as_of, limits)


def _plan(
    read: Callable[[str], list[tuple[Any, ...]]], f: _Filter, anywhen: _Filter
) -> tuple[str, pa.Schema, tuple[OpenRecord, ...]]:
    """The file's query and schema, and the records still open (``anywhen``: started at any time)."""
    closed = f"{f.where} AND {f.status} <> 'open'"
    inexact = _any_inexact(read, f, closed)
    left_open = _open_records(read, anywhen)
    names = _attr_names(read, f, closed)
    columns = [
        *_columns(f, f.d is POSTGRES),
        *(f"{_nullable(f, f.attr(name))} AS {f.d.ident(ATTR_PREFIX + name)}" for name in names),
    ]
    schema = records_table([], names).schema
    if inexact:  # the exact record where the typed columns could not hold it (records_io.EXACT)
        columns.append(f"(CASE WHEN NOT exact THEN doc END) AS {f.d.ident(EXACT)}")
        schema = schema.append(pa.field(EXACT, pa.string()))
    order = f.d.order_text.format(x="id")
    select = f"SELECT {', '.join(columns)} FROM records WHERE {closed} ORDER BY {order}"
    return select, schema, left_open


def _open_records(read: Callable[[str], list[tuple[Any, ...]]], f: _Filter) -> tuple[OpenRecord, ...]:
    """The scope's records still open, by id (start as epoch microseconds: no time zone to convert)."""
    if f.d is POSTGRES:
        start = "CAST(EXTRACT(EPOCH FROM started_at) * 1000000 AS BIGINT)"
    else:
        start = "epoch_us(started_at)"
    texts = ", ".join(f.d.ident(name) for name in ("session", "customer", "kind", "provider", "product"))
    rows = read(
        f"SELECT id, {texts}, {start} FROM records WHERE {f.where} AND {f.status} = 'open' "
        f"ORDER BY {f.d.order_text.format(x='id')}"
    )
    return tuple(
        OpenRecord(str(i), s, c, k, p, q, _EPOCH + timedelta(microseconds=int(a)))
        for i, s, c, k, p, q, a in rows
    )


def _columns(f: _Filter, postgres: bool) -> list[str]:
    """The record fields in file order: status and end as of the moment; PostgreSQL's times as epoch
    microseconds (CSV has no time zone the parser would take as given)."""
    found = []
    for name in RECORD_FIELDS:
        value = {"status": f.status, "ended_at": f.ended}.get(name, f.d.ident(name))
        if postgres and name.endswith("_at"):
            value = f"CAST(EXTRACT(EPOCH FROM {value}) * 1000000 AS BIGINT)"
        found.append(f"{_nullable(f, value)} AS {f.d.ident(name)}")
    return found


def _nullable(f: _Filter, value: str) -> str:
    """DuckDB marks a column its statistics show without a null ``required`` in Parquet (``not null`` in
    Arrow); the files ``write_records`` writes have every column nullable, and so does this one."""
    return value if f.d is POSTGRES else f"(CASE WHEN {value} IS NULL THEN NULL ELSE {value} END)"


def _attr_names(read: Callable[[str], list[tuple[Any, ...]]], f: _Filter, where: str) -> list[str]:
    if f.d is POSTGRES:
        keys = "json_object_keys(CAST(attrs AS json))"
        rows = read(f"SELECT DISTINCT {keys} FROM records WHERE {where} AND attrs IS NOT NULL")
    else:
        rows = read(f"SELECT DISTINCT unnest(map_keys(attrs)) FROM records WHERE {where}")
    return sorted(str(row[0]) for row in rows if row[0] is not None)


def _any_inexact(read: Callable[[str], list[tuple[Any, ...]]], f: _Filter, where: str) -> bool:
    """Whether any record the file holds has a value its typed columns cannot hold (``exact`` false)."""
    return bool(read(f"SELECT 1 FROM records WHERE {where} AND NOT exact LIMIT 1"))


def _postgres_copy(cursor: Any, select: str, schema: pa.Schema, target: Path) -> None:
    """Stream the query's rows out of PostgreSQL as CSV and append them to ``target`` block by block."""
    read = pa_csv.ReadOptions(column_names=schema.names, block_size=_BLOCK)
    parse = pa_csv.ParseOptions(newlines_in_values=True)
    wire = {field.name: pa.int64() if pa.types.is_timestamp(field.type) else field.type for field in schema}
    convert = pa_csv.ConvertOptions(
        column_types=wire, strings_can_be_null=True, quoted_strings_can_be_null=False, null_values=[""]
    )
    with (
        pq.ParquetWriter(target, schema) as writer,
        cursor.copy(f"COPY ({select}) TO STDOUT (FORMAT csv)".encode()) as copy,
    ):
        pending: list[Any] = []
        size = 0
        for row in copy:  # one row of CSV text each (whole rows: a block never cuts one)
            pending.append(row)
            size += len(row)
            if size >= _BLOCK:
                writer.write_table(_block(pending, read, parse, convert, schema))
                pending, size = [], 0
        if pending:
            writer.write_table(_block(pending, read, parse, convert, schema))


def _block(
    rows: list[Any],
    read: pa_csv.ReadOptions,
    parse: pa_csv.ParseOptions,
    convert: pa_csv.ConvertOptions,
    schema: pa.Schema,
) -> pa.Table:
    table = pa_csv.read_csv(io.BytesIO(b"".join(rows)), read, parse, convert)
    columns = [
        table.column(field.name).cast(field.type)
        if pa.types.is_timestamp(field.type)
        else table.column(field.name)
        for field in schema
    ]
    return pa.Table.from_arrays(columns, schema=schema)
