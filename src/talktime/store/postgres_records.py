"""The PostgreSQL store's ``records`` table: kept current by each batch, in the batch's transaction.

What the embedded store does (``duckdb_records``), with PostgreSQL's own means: B-tree indexes find a
record's events (``events (tenant, rid)``) and a record (its primary key), and several servers may write at
once. Two batches touching one record must not both re-derive it from what each alone sees, so a batch
takes a transaction-scoped advisory lock per touched record (in one order, so two batches never wait on
each other in a circle) after inserting its events and before reading the record's events back; the
second batch then reads the first's committed events (READ COMMITTED: each statement sees what is
committed when it starts).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import pyarrow as pa

from talktime.store.base import Readers
from talktime.store.records import (
    ROW_SCHEMA,
    RowBuilder,
    Stored,
    StoredRecord,
    derive,
    plain_table,
    record_id_of,
    stored_events,
    stored_record,
)

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_CHUNK: Final = 50_000
_TYPES: Final = {"string": "TEXT", "bool": "BOOLEAN", "int64": "BIGINT"}


def _sql_type(name: str) -> str:
    field = ROW_SCHEMA.field(name)
    if str(field.type).startswith("timestamp"):
        return "TIMESTAMPTZ"
    if str(field.type).startswith("decimal"):
        return "NUMERIC(18,6)"
    if str(field.type).startswith("map"):
        return "TEXT"  # JSON text: json, not jsonb, keeps the attributes' order
    return _TYPES[str(field.type)]


RECORDS_SCHEMA: Final = (
    "ALTER TABLE events ADD COLUMN IF NOT EXISTS rid TEXT;\n"
    "CREATE INDEX IF NOT EXISTS events_rid ON events (tenant, rid);\n"
    "CREATE TABLE IF NOT EXISTS records (tenant TEXT NOT NULL, "
    + ", ".join(f"{name} {_sql_type(name)}" for name in ROW_SCHEMA.names)
    + ", PRIMARY KEY (tenant, id));\n"
    "CREATE INDEX IF NOT EXISTS records_started ON records (tenant, started_at);\n"
)
_NAMES: Final = ", ".join(ROW_SCHEMA.names)


def _moment(value: int | None) -> datetime | None:
    return None if value is None else _EPOCH + timedelta(microseconds=value)


def _copy_rows(cursor: Any, tenant: str, rows: RowBuilder) -> None:
    """COPY the rows into ``records`` (values as PostgreSQL reads them: times, decimals, JSON text)."""
    columns = rows.columns
    times = {f.name for f in ROW_SCHEMA if str(f.type).startswith("timestamp")}
    with cursor.copy(f"COPY records (tenant, {_NAMES}) FROM STDIN") as copy:
        for index in range(len(rows)):
            values: list[Any] = [tenant]
            for name in ROW_SCHEMA.names:
                value = columns[name][index]
                if name in times:
                    value = _moment(value)
                elif name == "attrs" and value is not None:
                    value = json.dumps(dict(value))
                values.append(value)
            copy.write_row(values)


def _builder_of(table: pa.Table) -> RowBuilder:
    """Record rows from Arrow (:data:`ROW_SCHEMA`) as :func:`_copy_rows` takes them (times in µs)."""
    columns: dict[str, list[Any]] = {}
    for field in ROW_SCHEMA:
        column = table.column(field.name)
        if pa.types.is_timestamp(field.type):
            column = column.cast(pa.int64())
        columns[field.name] = column.to_pylist()
    return RowBuilder(columns)


class PostgresRecords:
    """The records half of :class:`~talktime.store.postgres_store.PostgresStore` (its ``url``, ``_con``
    and ``_lock``)."""

    url: str
    _con: Any
    _lock: threading.Lock

    def _open_records(self) -> None:
        import psycopg

        self._psycopg = psycopg
        self._readers: Readers[Any] = Readers(lambda: psycopg.connect(self.url, autocommit=True))
        with self._con.transaction():
            self._con.execute("SELECT pg_advisory_xact_lock(7291)")  # two servers starting at once
            present = self._con.execute("SELECT to_regclass('records') IS NOT NULL").fetchone()[0]
            self._con.execute(RECORDS_SCHEMA)
        if not present:  # a database from before the records table: derive them once
            self.rebuild_records()

    # --- writing, inside append's transaction -----------------------------------------------------------

    def _store_records(self, con: Any, tenant: str, inserted: pa.Table) -> None:
        """Bring the records the inserted rows feed up to date (in the caller's transaction); the rows
        carry ``rid`` and ``plain`` (:func:`~talktime.store.records.with_record_columns`)."""
        now = con.execute("SELECT now()").fetchone()[0]
        by_rid: dict[str, list[int]] = {}
        for row, rid in enumerate(inserted.column("rid").to_pylist()):
            if rid is not None:
                by_rid.setdefault(rid, []).append(row)
        if not by_rid:
            return
        touched = sorted(by_rid)
        con.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s || chr(1) || r, 0)) "
            "FROM unnest(%s::text[]) AS r ORDER BY r",
            [tenant, touched],
        ).fetchall()
        existing = {
            row[0]
            for row in con.execute(
                "SELECT id FROM records WHERE tenant = %s AND id = ANY(%s)", [tenant, touched]
            ).fetchall()
        }
        plain = inserted.column("plain").is_valid().to_pylist()
        lone: list[int] = []  # a new record's only event, a plain record event: its row is ready
        folding: list[int] = []
        for rid, at in by_rid.items():
            if rid in existing:  # re-derived from all its events, this batch's included (read back below)
                continue
            if len(at) == 1 and plain[at[0]]:
                lone.append(at[0])
            else:
                folding.extend(at)
        folded = stored_events(inserted.take(folding), now) if folding else []
        if existing:
            found = con.execute(
                "SELECT source, id, type, subject, time, data, received_at FROM events "
                "WHERE tenant = %s AND rid = ANY(%s)",
                [tenant, sorted(existing)],
            ).fetchall()
            folded.extend(Stored(*row) for row in found)
            con.execute("DELETE FROM records WHERE tenant = %s AND id = ANY(%s)", [tenant, sorted(existing)])
        rows = _builder_of(plain_table(inserted.take(lone), now)) if lone else RowBuilder.empty()
        for session, first, last in derive(folded):
            rows.add(session, first, last)
        if len(rows):
            with con.cursor() as cursor:
                _copy_rows(cursor, tenant, rows)

    # --- rebuilding ---------------------------------------------------------------------------------------

    def rebuild_records(self) -> int:
        """Re-derive every record of every tenant from the events, in one transaction; how many."""
        with self._lock, self._con.transaction():
            con = self._con
            con.execute("LOCK TABLE events IN SHARE MODE")  # no batch lands while the records are remade
            con.execute(
                "CREATE TEMPORARY TABLE rids (tenant TEXT, source TEXT, id TEXT, rid TEXT) ON COMMIT DROP"
            )
            with con.cursor(name="rebuild_rids") as read, con.cursor() as write:
                read.execute("SELECT tenant, source, id, type, subject, data FROM events")
                while chunk := read.fetchmany(_CHUNK):  # no fetch while a COPY runs on the connection
                    with write.copy("COPY rids FROM STDIN") as copy:
                        for tenant, source, id_, type_, subject, data in chunk:
                            copy.write_row((tenant, source, id_, record_id_of(type_, id_, subject, data)))
            con.execute(
                "UPDATE events e SET rid = r.rid FROM rids r "
                "WHERE e.tenant = r.tenant AND e.source = r.source AND e.id = r.id"
            )
            con.execute("DELETE FROM records")
            count = 0
            for tenant, events in self._grouped_events(con):
                rows = RowBuilder.empty()
                for session, first, last in derive(events):
                    rows.add(session, first, last)
                with con.cursor() as cursor:
                    _copy_rows(cursor, tenant, rows)
                count += len(rows)
        return count

    @staticmethod
    def _grouped_events(con: Any) -> Iterator[tuple[str, list[Stored]]]:
        """Each tenant's events in chunks that never split a record."""
        with con.cursor(name="rebuild_events") as read:
            read.execute(
                "SELECT tenant, rid, source, id, type, subject, time, data, received_at FROM events "
                "WHERE rid IS NOT NULL ORDER BY tenant, rid"
            )
            current: tuple[str, str] | None = None
            pending: list[Stored] = []
            pending_tenant = ""
            while chunk := read.fetchmany(_CHUNK):
                for tenant, rid, *event in chunk:
                    key = (tenant, rid)
                    new_tenant = tenant != pending_tenant
                    if key != current and pending and (new_tenant or len(pending) >= _CHUNK):
                        yield pending_tenant, pending
                        pending = []
                    current, pending_tenant = key, tenant
                    pending.append(Stored(*event))
            if pending:
                yield pending_tenant, pending

    # --- reading, on connections of their own ---------------------------------------------------------------

    def _reader(self) -> Any:
        return self._readers.get()

    @property
    def records_dialect(self) -> str:
        return "postgres"

    def read(self, sql: str) -> list[tuple[Any, ...]]:
        with self._reader().cursor() as cursor:
            cursor.execute(sql.encode())  # bytes, no parameters: a % in the SQL is the modulo operator
            rows: list[tuple[Any, ...]] = cursor.fetchall()
        return rows

    def read_stream(self, sql: str) -> Iterator[list[tuple[Any, ...]]]:
        connection = self._psycopg.connect(self.url)
        try:
            with connection.cursor(name="talktime_stream") as cursor:
                cursor.execute(sql.encode())
                while chunk := cursor.fetchmany(_CHUNK):
                    yield chunk
        finally:
            connection.close()

    def stored_record(self, tenant: str, rid: str) -> StoredRecord | None:
        row = (
            self._reader()
            .execute(
                "SELECT doc, flags, events, idle_from, first_received FROM records "
                "WHERE tenant = %s AND id = %s",
                [tenant, rid],
            )
            .fetchone()
        )
        return None if row is None else stored_record(*row)

    def record_events(self, tenant: str, rid: str) -> list[Stored]:
        rows = (
            self._reader()
            .execute(
                "SELECT source, id, type, subject, time, data, received_at FROM events "
                "WHERE tenant = %s AND rid = %s",
                [tenant, rid],
            )
            .fetchall()
        )
        return [Stored(*row) for row in rows]
