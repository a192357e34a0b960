"""The embedded default store: one DuckDB database file.

A batch is appended in one transaction through an Arrow table (no per-row Python round trips): the rows
already stored are found with one query, the new ones inserted with one ``INSERT ... SELECT``, and the
commit happens before ``append`` returns, so an answered "accepted" survives ``kill -9`` of the server.

Dedup without a unique index: an ART primary key on (tenant, source, id) cost about 7 µs per event to
maintain (most of the store's time). Each row carries ``h``, the MD5 of ``tenant NUL source NUL id`` as a
128-bit number; a batch first asks which of its ``h`` are stored (a scan of one fixed-width column), and
only when some are does it compare (tenant, source, id) exactly, so a hash collision can never drop an
event. Check and insert run in one transaction under one lock, on the only connection (DuckDB allows a
single writing process per file), so nothing can slip in between. The scan grows with the table (about
6 ns per stored row per batch); see ``docs/ingest.md``. Files made before ``h`` existed get the column
filled on open and keep their primary key.

Checkpoints (WAL folded into the database file) run every 64 MiB of WAL instead of DuckDB's 16 MiB: each
one rewrites the table's last, partial row group, so fewer, larger ones cost less than half as much in
all; a restart after ``kill -9`` replays at most that much WAL.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa

from talktime.errors import StoreError
from talktime.store.base import ROWS_SCHEMA, ApiKey, RawEvent, event_columns, first_seen, key_id_of
from talktime.store.duckdb_records import DuckDBRecords
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
_CHECKPOINT_THRESHOLD = "64MiB"


class DuckDBStore(DuckDBRecords):
    """Events and keys in a DuckDB file (``:memory:`` for a throwaway store)."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._lock = threading.Lock()
        try:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._con = duckdb.connect(self.path)
            self._con.execute("SET TimeZone = 'UTC'")
            self._con.execute(f"SET checkpoint_threshold = '{_CHECKPOINT_THRESHOLD}'")
            self._con.execute(_SCHEMA)
            self._con.execute(ACCEPTANCES_DUCKDB)  # a person's reviews (talktime.store.reviews)
            self._add_key_hash()
            self._open_records()
            self._add_key_columns()
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
        with self._lock:
            con = self._con
            try:
                con.begin()
                con.register("batch", rows)
                hashed = KEY_HASH.format(tenant="$tenant", source="b.source", id="b.id")
                ((maybe,),) = con.execute(
                    f"SELECT count(*) FROM events WHERE h IN (SELECT {hashed} FROM batch b)",
                    {"tenant": tenant},
                ).fetchall()
                if maybe:  # some may be stored: decide on the exact key
                    stored = con.execute(
                        "SELECT b.pos FROM batch b JOIN events e "
                        f"ON e.h = {hashed} AND e.tenant = $tenant AND e.source = b.source AND e.id = b.id",
                        {"tenant": tenant},
                    ).fetchall()
                    row_of = {pos: row for row, pos in enumerate(rows.column("pos").to_pylist())}
                    for (pos,) in stored:
                        fresh[row_of[pos]] = False
                keep = pa.array(fresh, type=pa.bool_())
                self._store_batch(con, tenant, rows.filter(keep), datetime.now(UTC))  # events and records
                con.commit()
            except duckdb.Error as error:
                con.rollback()
                raise StoreError(f"{self.path}: the batch was not stored: {error}") from None
            except BaseException:
                con.rollback()
                raise
            finally:
                con.unregister("batch")
        return fresh

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

    def tenant_of(self, key_hash: str) -> str | None:
        found = self.key_of(key_hash)
        return found.tenant if found is not None and found.active and not found.admin else None

    def key_of(self, key_hash: str) -> ApiKey | None:
        found = self._key_rows("key_hash = ?", [key_hash])
        return found[0] if found else None

    def list_keys(self, tenant: str | None = None) -> list[ApiKey]:
        if tenant is None:
            return self._key_rows("true", [])
        return self._key_rows("tenant = ?", [tenant])

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
            self._close_readers()
            self._con.close()
