"""The embedded store's ``records`` table: kept current by each batch, in the batch's transaction.

A batch's fresh events carry ``rid`` (the record they feed, :func:`~talktime.store.records.record_id_of`)
and, for a ``talktime.record`` event, its record row (``plain``), both made by ingest where the data was
decoded (:func:`~talktime.store.records.with_record_columns` makes them for rows without); each event
row also carries ``rh``, a 64-bit hash of (tenant, rid), computed once with the batch's other hashes
(:mod:`talktime.store.key_hashes`). Then, before the commit:

1. *Which touched records exist?* The hashes of the stored records are in memory (the store's
   :class:`~talktime.store.hash_set.HashSet`); only the touched ones found there are looked up in SQL (a
   semi-join on ``records.rh``, about 2.6 ns per stored record, paid only by a batch that touches
   existing records).
2. *New records* are made from the batch alone: a lone ``talktime.record`` event is its ``plain`` row
   (inserted with its event's ``rh``); anything else is folded by ``sessionize``.
3. *Existing records* are re-derived from all their events, read back with ``rh`` and a time bound: every
   event of a record was stored between its ``first_received`` and now, and ``received_at`` grows with the
   table, so DuckDB's zone maps skip the row groups before the oldest touched record.
4. Their old rows are deleted by ``rowid`` and the new rows inserted.

An ART index on ``records.rh`` makes one record's look-up a point query (about 0.5 ms at 10 million
records) for ~0.8 µs per record written. Reads run on cursors of their own (one per thread), so they see the
last committed batch and never wait for the one being stored.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from talktime.errors import StoreError
from talktime.store.base import Readers
from talktime.store.hash_set import Hashes, HashSet
from talktime.store.key_hashes import record_hash, record_hashes
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
_TYPES: Final = {"string": "VARCHAR", "bool": "BOOLEAN", "int64": "BIGINT"}
#: The record hash as SQL over a tenant and a record id expression (:func:`record_hash` in Python).
RECORD_HASH: Final = "md5_number_lower(concat_ws(chr(0), {tenant}, {rid}))"
#: Events read per chunk while rebuilding.
_REBUILD_CHUNK: Final = 50_000


def _sql_type(field: pa.Field[Any]) -> str:
    if pa.types.is_timestamp(field.type):
        return "TIMESTAMPTZ"
    if pa.types.is_decimal(field.type):
        return "DECIMAL(18,6)"
    if pa.types.is_map(field.type):
        return "MAP(VARCHAR, VARCHAR)"
    return _TYPES[str(field.type)]


_RECORDS_TABLE: Final = (
    "CREATE TABLE records (tenant VARCHAR NOT NULL, rh UBIGINT NOT NULL, "
    + ", ".join(f"{f.name} {_sql_type(f)}" for f in ROW_SCHEMA)
    + ")"
)
_ROW_NAMES: Final = ", ".join(ROW_SCHEMA.names)


def _moment(us: int | None) -> datetime | None:
    return None if us is None else _EPOCH + timedelta(microseconds=us)


class DuckDBRecords:
    """The records half of :class:`~talktime.store.duckdb_store.DuckDBStore` (its ``_con``, ``_lock`` and
    ``path``)."""

    path: str
    _con: duckdb.DuckDBPyConnection
    _lock: threading.Lock

    # --- schema ---------------------------------------------------------------------------------------

    def _open_records(self) -> None:
        """Make the records table (and ``rid``/``rh`` on events); a file from before it is rebuilt once."""
        self._readers: Readers[duckdb.DuckDBPyConnection] = Readers(self._open_reader)
        tables = {row[0] for row in self._con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        columns = {row[0] for row in self._con.execute("DESCRIBE events").fetchall()}
        if "records" in tables and "rid" in columns:
            return
        self._con.begin()
        self._con.execute("ALTER TABLE events ADD COLUMN IF NOT EXISTS rid VARCHAR")
        self._con.execute("ALTER TABLE events ADD COLUMN IF NOT EXISTS rh UBIGINT")
        if "records" not in tables:
            self._con.execute(_RECORDS_TABLE)
            self._con.execute("CREATE INDEX records_rh ON records (rh)")
        self._con.commit()
        self._rebuild()

    # --- writing, inside append_rows' transaction -------------------------------------------------------

    def _store_batch(
        self, con: duckdb.DuckDBPyConnection, tenant: str, fresh: pa.Table, now: datetime, known: HashSet
    ) -> Hashes:
        """Insert a batch's fresh events and bring the records they touch up to date (no commit here);
        the hashes of the records that may be new (``known`` holds every stored record's hash).

        ``fresh`` has ``rid`` and ``plain`` (:func:`~talktime.store.records.with_record_columns`) and each
        row's hashes, computed once (:mod:`talktime.store.key_hashes`): ``k`` and ``k2``, the two halves of
        the dedup hash ``h``, and ``rh``."""
        con.register("fresh_rows", fresh)
        try:
            con.execute(
                "INSERT INTO events (tenant, source, id, type, subject, time, data, received_at, h, rid, rh) "
                "SELECT $tenant, source, id, type, subject, time, data, $now, (k::UHUGEINT << 64) | k2, "
                "rid, rh FROM fresh_rows",
                {"tenant": tenant, "now": now},
            )
        finally:
            con.unregister("fresh_rows")
        return self._refresh(con, tenant, fresh, now, known)

    def _refresh(
        self, con: duckdb.DuckDBPyConnection, tenant: str, fresh: pa.Table, now: datetime, known: HashSet
    ) -> Hashes:
        rid_column = fresh.column("rid")
        if rid_column.null_count == fresh.num_rows:
            return np.zeros(0, dtype=np.uint64)
        rids: list[str | None] = rid_column.to_pylist()
        hashes = np.asarray(fresh.column("rh").to_numpy(), dtype=np.uint64)
        feeds = np.asarray(rid_column.is_valid().to_numpy(zero_copy_only=False), dtype=np.bool_)
        doubtful = known.contains(hashes) & feeds
        existing = self._existing(con, tenant, {str(rids[i]) for i in np.flatnonzero(doubtful)})
        ready = np.asarray(fresh.column("plain").is_valid().to_numpy(zero_copy_only=False), dtype=np.bool_)
        lone: list[int] = []  # a new record's only event, a plain record event: its row is ready
        folding: list[int] = []
        if not existing and len(set(rids)) == len(rids):  # every record new, one event each
            lone = np.flatnonzero(feeds & ready).tolist()
            folding = np.flatnonzero(feeds & ~ready).tolist()
        else:
            plain = ready.tolist()
            by_rid: dict[str, list[int]] = {}
            for row, rid in enumerate(rids):
                if rid is not None:
                    by_rid.setdefault(rid, []).append(row)
            for rid, at in by_rid.items():
                if rid in existing:  # re-derived from all its events, this batch's included (read back below)
                    continue
                if len(at) == 1 and plain[at[0]]:
                    lone.append(at[0])
                else:
                    folding.extend(at)
        new: Hashes = np.unique(hashes[feeds & ~doubtful])  # certainly new records (the rest are known)
        folded = stored_events(fresh.take(folding), now) if folding else []
        if existing:
            oldest = min(first for _, first in existing.values())
            folded.extend(
                self._events_of(con, tenant, set(existing), _EPOCH + timedelta(microseconds=oldest))
            )
            con.execute(
                "DELETE FROM records WHERE rowid IN (SELECT unnest($rows))",
                {"rows": [rowid for rowid, _ in existing.values()]},
            )
        rows = RowBuilder.empty()
        for session, first, last in derive(folded):
            rows.add(session, first, last)
        tables = []
        if lone:
            made = fresh if len(lone) == fresh.num_rows else fresh.take(lone)
            table = plain_table(made, now)
            same = pc.equal(table.column("id"), made.column("rid"))  # always: the id is the rid
            tables.append(table.append_column("rh", pc.if_else(same, made.column("rh"), None)))
        if len(rows):
            table = rows.table()
            ids: list[str] = table.column("id").to_pylist()  # type: ignore[assignment]
            tables.append(table.append_column("rh", pa.array(record_hashes(tenant, ids), pa.uint64())))
        if tables:
            self._insert_rows(con, tenant, pa.concat_tables(tables))
        return new

    @staticmethod
    def _existing(con: duckdb.DuckDBPyConnection, tenant: str, rids: set[str]) -> dict[str, tuple[int, int]]:
        """Of the records ``rids`` (whose hashes the store's set holds), those stored: their ``rowid`` and
        first receipt (epoch µs). A look-up by ``rh`` (a scan of the records' hashes)."""
        if not rids:
            return {}
        con.register("touched", pa.table({"rh": record_hashes(tenant, sorted(rids))}))
        try:
            found = con.execute(
                "SELECT rowid, id, epoch_us(first_received) FROM records "
                "WHERE rh IN (SELECT rh FROM touched) AND tenant = $tenant",
                {"tenant": tenant},
            ).fetchall()
        finally:
            con.unregister("touched")
        return {rid: (rowid, first) for rowid, rid, first in found if rid in rids}

    @staticmethod
    def _insert_rows(con: duckdb.DuckDBPyConnection, tenant: str, table: pa.Table) -> None:
        """Insert record rows (:data:`ROW_SCHEMA`, and ``rh`` where known: computed here where null or
        absent)."""
        computed = RECORD_HASH.format(tenant="$tenant", rid="id")
        hashed = f"coalesce(rh, {computed})" if "rh" in table.column_names else computed
        con.register("new_records", table)
        try:
            con.execute(
                f"INSERT INTO records (tenant, rh, {_ROW_NAMES}) SELECT $tenant, {hashed}, {_ROW_NAMES} "
                "FROM new_records",
                {"tenant": tenant},
            )
        finally:
            con.unregister("new_records")

    @staticmethod
    def _events_of(
        con: duckdb.DuckDBPyConnection, tenant: str, rids: set[str], since: datetime
    ) -> list[Stored]:
        """Every stored event of the records ``rids`` (each stored at or after ``since``)."""
        con.register("wanted", pa.table({"rh": record_hashes(tenant, sorted(rids))}))
        try:
            rows = con.execute(
                "SELECT source, id, type, subject, epoch_us(time), data, epoch_us(received_at), rid "
                "FROM events WHERE received_at >= $since AND rh IN (SELECT rh FROM wanted) "
                "AND tenant = $tenant",
                {"tenant": tenant, "since": since},
            ).fetchall()
        finally:
            con.unregister("wanted")
        return [
            Stored(source, id_, type_, subject, _moment(us), data, _EPOCH + timedelta(microseconds=received))
            for source, id_, type_, subject, us, data, received, rid in rows
            if rid in rids
        ]

    # --- rebuilding ---------------------------------------------------------------------------------------

    def rebuild_records(self) -> int:
        """Re-derive every record of every tenant from the events (and each event's record id), in one
        transaction; returns how many records there are."""
        with self._lock:
            return self._rebuild()

    def _rebuild(self) -> int:
        con = self._con
        try:
            con.begin()
            self._recompute_rids(con)
            con.execute("DELETE FROM records")
            count = 0
            for tenant, events in self._grouped_events(con):
                rows = RowBuilder.empty()
                for session, first, last in derive(events):
                    rows.add(session, first, last)
                self._insert_rows(con, tenant, rows.table())
                count += len(rows)
            con.commit()
        except (duckdb.Error, StoreError):
            con.rollback()
            raise
        return count

    @staticmethod
    def _recompute_rids(con: duckdb.DuckDBPyConnection) -> None:
        cursor = con.execute("SELECT rowid, type, id, subject, data FROM events")
        rowids: list[int] = []
        rids: list[str | None] = []
        while chunk := cursor.fetchmany(_REBUILD_CHUNK):
            for rowid, type_, id_, subject, data in chunk:
                rowids.append(rowid)
                rids.append(record_id_of(type_, id_, subject, data))
        con.register(
            "computed", pa.table({"r": pa.array(rowids, pa.int64()), "rid": pa.array(rids, pa.string())})
        )
        try:
            con.execute(
                "UPDATE events SET rid = computed.rid, "
                f"rh = {RECORD_HASH.format(tenant='events.tenant', rid='computed.rid')} "
                "FROM computed WHERE events.rowid = computed.r"
            )
        finally:
            con.unregister("computed")

    @staticmethod
    def _grouped_events(con: duckdb.DuckDBPyConnection) -> Iterator[tuple[str, list[Stored]]]:
        """Each tenant's events in chunks that never split a record (events ordered by tenant, rid)."""
        cursor = con.cursor().execute(
            "SELECT tenant, rid, source, id, type, subject, epoch_us(time), data, epoch_us(received_at) "
            "FROM events WHERE rid IS NOT NULL ORDER BY tenant, rid"
        )
        current: tuple[str, str] | None = None
        pending: list[Stored] = []
        pending_tenant = ""
        while chunk := cursor.fetchmany(_REBUILD_CHUNK):
            for tenant, rid, source, id_, type_, subject, us, data, received in chunk:
                key = (tenant, rid)
                if (
                    key != current
                    and pending
                    and (tenant != pending_tenant or len(pending) >= _REBUILD_CHUNK)
                ):
                    yield pending_tenant, pending
                    pending = []
                current = key
                pending_tenant = tenant
                stored = Stored(
                    source, id_, type_, subject, _moment(us), data, _EPOCH + timedelta(microseconds=received)
                )
                pending.append(stored)
        if pending:
            yield pending_tenant, pending

    # --- reading, on cursors of its own -------------------------------------------------------------------

    def _open_reader(self) -> duckdb.DuckDBPyConnection:
        cursor = self._con.cursor()
        cursor.execute("SET TimeZone = 'UTC'")
        return cursor

    def _reader(self) -> duckdb.DuckDBPyConnection:
        return self._readers.get()

    @property
    def records_dialect(self) -> str:
        return "duckdb"

    def read(self, sql: str) -> list[tuple[Any, ...]]:
        """Rows of a read-only query over the committed records and events."""
        return self._reader().execute(sql).fetchall()

    def read_stream(self, sql: str) -> Iterator[list[tuple[Any, ...]]]:
        """Rows of a read-only query in chunks, on a cursor of their own (a stream outlives a request's
        thread: Starlette pulls each chunk on whichever thread is free)."""
        cursor = self._con.cursor()
        try:
            cursor.execute("SET TimeZone = 'UTC'")
            cursor.execute(sql)
            while chunk := cursor.fetchmany(_REBUILD_CHUNK):
                yield chunk
        finally:
            cursor.close()

    def _record_row(self, tenant: str, rid: str, columns: str) -> tuple[Any, ...] | None:
        """``columns`` of one record's row, found through the ART index on ``rh``.

        ``rh`` is the query's only filter: beside ``tenant = ... AND id = ...`` DuckDB scans the table
        instead of the index (about 2.6 ns per stored record, and its zone maps help only when ids arrive in
        order); a rare hash collision is told apart here."""
        rows = (
            self._reader()
            .execute(
                f"SELECT tenant, id, {columns} FROM records WHERE rh = $h", {"h": record_hash(tenant, rid)}
            )
            .fetchall()
        )
        return next((row[2:] for row in rows if row[0] == tenant and row[1] == rid), None)

    def stored_record(self, tenant: str, rid: str) -> StoredRecord | None:
        """One record as stored (as of never), or None."""
        row = self._record_row(
            tenant, rid, "doc, flags, events, epoch_us(idle_from), epoch_us(first_received)"
        )
        if row is None:
            return None
        doc, flags, events, idle, first = row
        received = _moment(first)
        assert received is not None  # every record row has it
        return stored_record(doc, flags, events, _moment(idle), received)

    def record_events(self, tenant: str, rid: str) -> list[Stored]:
        """The events of one record (its row says when they were stored, which bounds the scan)."""
        row = self._record_row(tenant, rid, "epoch_us(first_received), epoch_us(last_received)")
        if row is None:
            return []
        first, last = (_moment(us) for us in row)
        found = (
            self._reader()
            .execute(
                "SELECT source, id, type, subject, epoch_us(time), data, epoch_us(received_at) FROM events "
                "WHERE received_at BETWEEN $first AND $last AND rh = $h AND tenant = $t AND rid = $id",
                {"first": first, "last": last, "h": record_hash(tenant, rid), "t": tenant, "id": rid},
            )
            .fetchall()
        )
        return [
            Stored(source, id_, type_, subject, _moment(us), data, _EPOCH + timedelta(microseconds=received))
            for source, id_, type_, subject, us, data, received in found
        ]
