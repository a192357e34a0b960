"""The embedded default store: one DuckDB database file.

A batch is appended in one transaction through an Arrow table (no per-row Python round trips): the rows
already stored are found with one query, the new ones inserted with one ``INSERT ... SELECT``, and the
commit happens before ``append`` returns, so an answered "accepted" survives ``kill -9`` of the server.

Dedup without a unique index: an ART primary key on (tenant, source, id) cost about 7 µs per event to
maintain (most of the store's time). Each row carries ``h``, the MD5 of ``tenant NUL source NUL id`` as a
128-bit number. The store keeps the upper 64 bits of every stored ``h`` in memory
(:class:`~talktime.store.hash_set.HashSet`, loaded at the first batch, grown after each commit); a batch
asks it which of its keys may be stored, and compares only those on (tenant, source, id) exactly in SQL,
so a hash collision can never drop an event (a scan of the stored hashes per batch cost about 6 ns per
stored row: 60 ms at 10 million). Check and insert run in one transaction under one lock, on the only
connection (DuckDB allows a single writing process per file), so nothing can slip in between. Files made
before ``h`` existed get the column filled on open and keep their primary key. A batch's rows carry each
row's hashes (both halves of ``h`` and the record hash ``rh``, :mod:`talktime.store.key_hashes`), computed
once in Python where the batch was decoded (a ``serve --workers`` process), else here, and every later
step takes them from there (DuckDB's MD5 costs about 0.65 µs a value in SQL, Python's about 0.2).

Checkpoints (WAL folded into the database file) are DuckDB's own, at the commit that takes the WAL past
64 MiB (DuckDB's default: 16 MiB), so a restart after ``kill -9`` replays at most that much. Each one writes
the rows added since the last as new row groups, and DuckDB would then merge those under-filled row
groups with their neighbours (its "vacuum"), rewriting two to four times the new rows: a third to two
thirds of the checkpoints' CPU. So the store turns the merging off (``max_vacuum_tasks = 0``) and arms it
for one checkpoint once the record rows deleted since the last merge (a record re-derived leaves its old
row deleted) reach a row group's worth (:meth:`DuckDBStore._after_commit`; ADR 0010).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa

from talktime.errors import StoreError
from talktime.store.base import ROWS_SCHEMA, ApiKey, KeyReads, RawEvent, event_columns, first_seen, key_id_of
from talktime.store.duckdb_records import DuckDBRecords
from talktime.store.hash_set import Hashes, HashSet
from talktime.store.key_hashes import with_hashes
from talktime.store.records import with_record_columns
from talktime.store.reviews import ACCEPTANCES_DUCKDB

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    tenant VARCHAR NOT NULL,
    source VARCHAR NOT NULL,
    id VARCHAR NOT NULL,
    type VARCHAR NOT NULL,
    subject VARCHAR,
    time TIMESTAMPTZ,
    data VARCHAR NOT NULL,
    received_at TIMESTAMPTZ NOT NULL,
    h UHUGEINT NOT NULL
);
CREATE TABLE IF NOT EXISTS api_keys (
    key_hash VARCHAR PRIMARY KEY,
    tenant VARCHAR NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    id VARCHAR,
    label VARCHAR,
    admin BOOLEAN NOT NULL DEFAULT false,
    revoked_at TIMESTAMPTZ,
    customer VARCHAR
);
"""


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: The dedup hash of a row, as SQL over columns tenant, source and id (NUL never occurs in JSON text
#: unescaped, and an escaped one is still unambiguous: the exact comparison decides anyway).
KEY_HASH = "md5_number(concat_ws(chr(0), {tenant}, {source}, {id}))"
#: The 64 bits of :data:`KEY_HASH` kept in memory (``md5_number_lower`` is ``md5_number >> 64``), of a new
#: row and of a stored one.
EVENT_KEY = "md5_number_lower(concat_ws(chr(0), {tenant}, {source}, {id}))"
STORED_EVENT_KEY = "(h >> 64)::UBIGINT"
_CHECKPOINT_THRESHOLD = "64MiB"
#: DuckDB's default number of row-group merges per checkpoint (``max_vacuum_tasks``), while armed.
_VACUUM_TASKS = 100
#: Deleted record rows still on disk (more than after the last merge) that arm the next checkpoint's
#: merging: one row group (DuckDB's 122,880 rows).
_DEAD_ROWS_TO_VACUUM = 122_880
_DEAD_RECORDS = (
    "SELECT (SELECT estimated_size FROM duckdb_tables() WHERE table_name = 'records' "
    "AND schema_name = 'main' AND database_name = current_database()) - (SELECT count(*) FROM records)"
)
_log = logging.getLogger("talktime.store")

#: Batches committed per database file by the stores of this process. Two stores of one file in one
#: process share DuckDB's database (no other process can open it meanwhile), so a store whose hash sets
#: saw fewer commits than this reloads them.
_COMMITS: dict[str, int] = {}
_COMMITS_LOCK = threading.Lock()


@dataclass(frozen=True, slots=True)
class Known:
    """The hashes a store holds in memory: its events' (:data:`EVENT_KEY`) and its records' (``rh``)."""

    events: HashSet
    records: HashSet

    @property
    def nbytes(self) -> int:
        return self.events.nbytes + self.records.nbytes


def uint64s(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, object] | None = None) -> Hashes:
    """The column ``k`` of a query as unsigned 64-bit integers."""
    return np.asarray(con.execute(sql, params).fetchnumpy()["k"], dtype=np.uint64)


class DuckDBStore(DuckDBRecords, KeyReads):
    """Events and keys in a DuckDB file (``:memory:`` for a throwaway store)."""

    _PARAM = "?"
    #: It keys rows by the hashes of :mod:`talktime.store.key_hashes`: ingest computes them where a batch is
    #: decoded when told the tenant (a store without this attribute needs none of them).
    row_hashes = True

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._lock = threading.Lock()
        self._file = f":memory:{id(self)}" if self.path == ":memory:" else os.path.realpath(self.path)
        self._known: Known | None = None  # loaded at the first batch
        self._known_commits = 0
        self._wal = None if self.path == ":memory:" else Path(self._file + ".wal")
        self._wal_bytes = 0  # the WAL's size after the last commit of a batch
        self._dead_after_merge = 0  # deleted record rows left on disk by the last merging checkpoint
        self._merge_armed = False
        try:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._con = duckdb.connect(self.path)
            self._con.execute("SET TimeZone = 'UTC'")
            self._con.execute(f"SET checkpoint_threshold = '{_CHECKPOINT_THRESHOLD}'")
            self._con.execute("SET max_vacuum_tasks = 0")  # merged only when armed: _after_commit
            self._con.execute(_SCHEMA)
            self._con.execute(ACCEPTANCES_DUCKDB)  # a person's reviews (talktime.store.reviews)
            self._add_key_hash()
            self._open_records()
            self._add_key_columns()
            self._wal_bytes = self._wal_size()
            self._keys = self._con.cursor()  # key look-ups never wait for a batch being stored
            self._keys_lock = threading.Lock()
        except (duckdb.Error, OSError) as error:
            raise StoreError(f"cannot open the DuckDB store {self.path}: {error}") from None

    def _add_key_hash(self) -> None:
        """Give a file made before the ``h`` column its dedup hashes (its primary key stays)."""
        columns = {row[0] for row in self._con.execute("DESCRIBE events").fetchall()}
        if "h" in columns:
            return
        self._con.begin()
        self._con.execute("ALTER TABLE events ADD COLUMN h UHUGEINT")
        self._con.execute(
            f"UPDATE events SET h = {KEY_HASH.format(tenant='tenant', source='source', id='id')}"
        )
        self._con.commit()

    def append(self, tenant: str, events: Sequence[RawEvent]) -> list[bool]:
        fresh = first_seen(events)
        if not events:
            return fresh
        firsts = [e for e, new in zip(events, fresh, strict=True) if new]
        rows = pa.table(
            {"pos": [i for i, new in enumerate(fresh) if new], **event_columns(firsts)}, schema=ROWS_SCHEMA
        )
        positions: list[int] = rows.column("pos").to_pylist()  # type: ignore[assignment]
        for pos, new in zip(positions, self.append_rows(tenant, rows), strict=True):
            fresh[pos] = new
        return fresh

    def append_rows(self, tenant: str, rows: pa.Table) -> list[bool]:
        """Store Arrow rows (:data:`~talktime.store.base.ROWS_SCHEMA`, no two with the same source and id)
        in one transaction; per row, True if new. What :meth:`append` does, without Python objects."""
        fresh = [True] * rows.num_rows
        # ingest made the record columns and (with the tenant) the hashes, unless the rows come from elsewhere
        rows = with_hashes(tenant, with_record_columns(rows))
        keys = np.asarray(rows.column("k").to_numpy(), dtype=np.uint64)
        with self._lock:
            con = self._con
            try:
                known = self._known_hashes()
            except duckdb.Error as error:
                raise StoreError(f"{self.path}: the batch was not stored: {error}") from None
            try:
                con.begin()
                doubtful = known.events.contains(keys)
                if doubtful.any():  # some may be stored: decide on the exact key
                    self._mark_stored(con, tenant, rows, doubtful, fresh)
                if not all(fresh):
                    rows = rows.filter(pa.array(fresh, type=pa.bool_()))
                new_records = self._store_batch(con, tenant, rows, datetime.now(UTC), known.records)
                con.commit()
            except duckdb.Error as error:
                con.rollback()
                raise StoreError(f"{self.path}: the batch was not stored: {error}") from None
            except BaseException:
                con.rollback()
                raise
            self._remember(known, keys[np.array(fresh, dtype=np.bool_)], new_records)
            self._after_commit(wrote=any(fresh))
        return fresh

    def _wal_size(self) -> int:
        try:
            return self._wal.stat().st_size if self._wal is not None else 0
        except FileNotFoundError:
            return 0

    def _after_commit(self, *, wrote: bool) -> None:
        """When a commit that ``wrote`` folded the WAL into the file (the WAL did not grow), arm or disarm
        the next checkpoint's row-group merging: armed once the deleted record rows on disk grew by
        :data:`_DEAD_ROWS_TO_VACUUM` since the last merge, disarmed after the checkpoint that merged. The
        batch is committed already: a failure here is logged and never fails it (the next fold tries
        again)."""
        size = self._wal_size()
        folded = size < self._wal_bytes or (wrote and size == self._wal_bytes)
        self._wal_bytes = size
        if not folded:
            return
        con = self._con
        try:
            row = con.execute(_DEAD_RECORDS).fetchone()
            dead = int(row[0]) if row and row[0] is not None else 0
            if self._merge_armed:
                con.execute("SET max_vacuum_tasks = 0")
                self._merge_armed = False
                self._dead_after_merge = dead
                _log.info(
                    "%s: a checkpoint merged row groups; %d deleted record rows remain", self.path, dead
                )
            elif dead - self._dead_after_merge >= _DEAD_ROWS_TO_VACUUM:
                con.execute(f"SET max_vacuum_tasks = {_VACUUM_TASKS}")
                self._merge_armed = True
        except duckdb.Error as error:
            _log.warning("%s: the checkpoint's row-group merging was not updated: %s", self.path, error)

    @staticmethod
    def _mark_stored(
        con: duckdb.DuckDBPyConnection,
        tenant: str,
        rows: pa.Table,
        doubtful: npt.NDArray[np.bool_],
        fresh: list[bool],
    ) -> None:
        """Set ``fresh`` False for the ``doubtful`` rows stored before, compared on (tenant, source, id)
        exactly (a scan of the events' hashes)."""
        con.register("doubtful", rows.filter(pa.array(doubtful)))
        try:
            hashed = KEY_HASH.format(tenant="$tenant", source="b.source", id="b.id")
            stored = con.execute(
                "SELECT b.pos FROM doubtful b JOIN events e "
                f"ON e.h = {hashed} AND e.tenant = $tenant AND e.source = b.source AND e.id = b.id",
                {"tenant": tenant},
            ).fetchall()
        finally:
            con.unregister("doubtful")
        if stored:
            row_of = {pos: row for row, pos in enumerate(rows.column("pos").to_pylist())}
            for (pos,) in stored:
                fresh[row_of[pos]] = False

    def _known_hashes(self) -> Known:
        """The hashes of the stored events and records, loaded at the first batch (and again when another
        store of this process wrote to the same file, or a write failed half-way: see :meth:`_remember`)."""
        commits = _COMMITS.get(self._file, 0)
        if self._known is None or self._known_commits != commits:
            self._known = self._load_known()
            self._known_commits = commits
        return self._known

    def _load_known(self) -> Known:
        con = self._con
        began = time.perf_counter()
        events = uint64s(con, f"SELECT {STORED_EVENT_KEY} AS k FROM events")
        records = uint64s(con, "SELECT rh AS k FROM records")
        known = Known(HashSet(events), HashSet(records))
        _log.info(
            "%s: %d event and %d record hashes in memory (%.1f MiB), loaded in %.2f s",
            self.path,
            len(known.events),
            len(known.records),
            known.nbytes / 2**20,
            time.perf_counter() - began,
        )
        return known

    def _remember(self, known: Known, events: Hashes, records: Hashes) -> None:
        """After a commit: the new hashes join the sets, and this file's commit count grows."""
        with _COMMITS_LOCK:
            _COMMITS[self._file] = commits = _COMMITS.get(self._file, 0) + 1
        try:
            known.events.add(events)
            known.records.add(records)
            self._known_commits = commits
        except Exception:  # e.g. out of memory: never trust a set that missed a commit; reload it
            self._known = None

    def known_hashes(self) -> dict[str, int]:
        """How many event and record hashes this store holds in memory, and their bytes (benchmarks)."""
        with self._lock:
            known = self._known_hashes()
            return {"events": len(known.events), "records": len(known.records), "bytes": known.nbytes}

    def rebuild_records(self) -> int:
        count = super().rebuild_records()
        with _COMMITS_LOCK:  # the records' hashes are new: every store of the file reloads its sets
            _COMMITS[self._file] = _COMMITS.get(self._file, 0) + 1
        return count

    def events(self, tenant: str) -> list[RawEvent]:
        with self._lock:
            rows = self._con.execute(
                "SELECT source, id, type, subject, epoch_us(time), data FROM events WHERE tenant = ? "
                "ORDER BY source, id",
                [tenant],
            ).fetchall()
        # Times travel as epoch microseconds: exact, and no pytz needed to read a TIMESTAMPTZ.
        return [
            RawEvent(
                source, id_, type_, subject, None if us is None else _EPOCH + timedelta(microseconds=us), data
            )
            for source, id_, type_, subject, us, data in rows
        ]

    def count(self, tenant: str) -> int:
        with self._lock:
            row = self._con.execute("SELECT count(*) FROM events WHERE tenant = ?", [tenant]).fetchone()
        return int(row[0]) if row else 0

    def _add_key_columns(self) -> None:
        """Give a file made before key ids, labels, roles, revocation and customer scopes those columns (ids
        from hashes; every key kept is a tenant or admin key, as it was)."""
        columns = {row[0] for row in self._con.execute("DESCRIBE api_keys").fetchall()}
        if "customer" not in columns:
            self._con.execute("ALTER TABLE api_keys ADD COLUMN customer VARCHAR")
        if "revoked_at" in columns:
            return
        self._con.begin()
        for column in (
            "id VARCHAR",
            "label VARCHAR",
            "admin BOOLEAN DEFAULT false",
            "revoked_at TIMESTAMPTZ",
        ):
            self._con.execute(f"ALTER TABLE api_keys ADD COLUMN IF NOT EXISTS {column}")
        self._con.execute("UPDATE api_keys SET id = 'k_' || substr(key_hash, 1, 12), admin = false")
        self._con.commit()

    _KEY_COLUMNS = "id, tenant, label, admin, epoch_us(created_at), epoch_us(revoked_at), customer"

    @staticmethod
    def _api_key(row: tuple[object, ...]) -> ApiKey:
        id_, tenant, label, admin, created, revoked, customer = row
        return ApiKey(
            str(id_),
            str(tenant),
            None if label is None else str(label),
            bool(admin),
            _EPOCH + timedelta(microseconds=int(str(created))),
            None if revoked is None else _EPOCH + timedelta(microseconds=int(str(revoked))),
            None if customer is None else str(customer),
        )

    def _key_rows(self, where: str, params: list[object]) -> list[ApiKey]:
        with self._keys_lock:
            rows = self._keys.execute(
                f"SELECT {self._KEY_COLUMNS} FROM api_keys WHERE {where} ORDER BY created_at, id", params
            ).fetchall()
        return [self._api_key(row) for row in rows]

    def add_key(
        self,
        tenant: str,
        key_hash: str,
        *,
        label: str | None = None,
        admin: bool = False,
        customer: str | None = None,
    ) -> ApiKey:
        with self._keys_lock:
            self._keys.execute(
                "INSERT INTO api_keys (key_hash, tenant, created_at, id, label, admin, customer) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [key_hash, tenant, datetime.now(UTC), key_id_of(key_hash), label, admin, customer],
            )
        return self._key_rows("key_hash = ?", [key_hash])[0]

    def revoke_key(self, key_id: str, at: datetime) -> ApiKey | None:
        with self._keys_lock:
            self._keys.execute(
                "UPDATE api_keys SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?", [at, key_id]
            )
        found = self._key_rows("id = ?", [key_id])
        return found[0] if found else None

    def rotate_key(self, key_id: str, new_hash: str, at: datetime) -> ApiKey | None:
        with self._keys_lock:
            con = self._keys
            try:
                con.begin()
                old = con.execute(
                    "SELECT tenant, label, admin, customer FROM api_keys WHERE id = ? AND revoked_at IS NULL",
                    [key_id],
                ).fetchone()
                if old is None:
                    con.rollback()
                    return None
                con.execute("UPDATE api_keys SET revoked_at = ? WHERE id = ?", [at, key_id])
                con.execute(
                    "INSERT INTO api_keys (key_hash, tenant, created_at, id, label, admin, customer) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [new_hash, old[0], at, key_id_of(new_hash), old[1], old[2], old[3]],
                )
                con.commit()
            except duckdb.Error as error:
                con.rollback()
                raise StoreError(f"{self.path}: the key was not rotated: {error}") from None
        return self._key_rows("key_hash = ?", [new_hash])[0]

    def close(self) -> None:
        with self._lock, self._keys_lock:
            self._keys.close()
            self._readers.close()
            self._con.close()
