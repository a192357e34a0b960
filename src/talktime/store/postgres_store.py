"""The PostgreSQL store (psycopg 3, the ``postgres`` extra): the embedded store's tables and guarantees.

A batch is one ``INSERT ... SELECT FROM unnest(arrays) ON CONFLICT DO NOTHING RETURNING``: the unique key
(tenant, source, id) decides what is new, atomically, even with several servers writing, and the returned
keys say which events were inserted. The transaction commits before ``append`` returns.

``append_rows`` takes ingest's Arrow rows as they are: each event's record id and a record event's row
come with them (made where the data was decoded, :mod:`talktime.ingest.batch`), so a lone record event's
row is copied without its data being decoded again. No hashes in memory here (the embedded store's
:mod:`~talktime.store.hash_set`): several servers may write one database, and the unique key and the
records' primary key are indexes, not scans.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import pyarrow as pa

from talktime.errors import StoreError
from talktime.store.base import ROWS_SCHEMA, ApiKey, KeyReads, RawEvent, event_columns, first_seen, key_id_of
from talktime.store.postgres_records import PostgresRecords
from talktime.store.records import with_record_columns
from talktime.store.reviews import ACCEPTANCES_POSTGRES

try:
    import psycopg
except ImportError:  # pragma: no cover - depends on the install
    psycopg = None  # type: ignore[assignment]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    tenant TEXT NOT NULL,
    source TEXT NOT NULL,
    id TEXT NOT NULL,
    type TEXT NOT NULL,
    subject TEXT,
    time TIMESTAMPTZ,
    data TEXT NOT NULL,
    received_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, source, id)
);
CREATE TABLE IF NOT EXISTS api_keys (
    key_hash TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- key ids, labels, roles and revocation; a database from before them gets ids from the hashes
ALTER TABLE api_keys ADD COLUMN IF NOT EXISTS id TEXT;
ALTER TABLE api_keys ADD COLUMN IF NOT EXISTS label TEXT;
ALTER TABLE api_keys ADD COLUMN IF NOT EXISTS admin BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE api_keys ADD COLUMN IF NOT EXISTS revoked_at TIMESTAMPTZ;
-- customer-scoped keys (NULL: a tenant or admin key, as every key made before the column)
ALTER TABLE api_keys ADD COLUMN IF NOT EXISTS customer TEXT;
UPDATE api_keys SET id = 'k_' || substr(key_hash, 1, 12) WHERE id IS NULL;
"""
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_INSERT = """
INSERT INTO events (tenant, source, id, type, subject, time, data, rid)
SELECT %(tenant)s, * FROM unnest(
    %(source)s::text[], %(id)s::text[], %(type)s::text[], %(subject)s::text[],
    %(time)s::timestamptz[], %(data)s::text[], %(rid)s::text[])
ON CONFLICT (tenant, source, id) DO NOTHING
RETURNING source, id
"""


def _rows_of(events: Sequence[RawEvent]) -> pa.Table:
    """Events as rows of :data:`~talktime.store.base.ROWS_SCHEMA`."""
    return pa.table({"pos": list(range(len(events))), **event_columns(events)}, schema=ROWS_SCHEMA)


def _raw_events(rows: pa.Table) -> list[RawEvent]:
    micros = rows.column("time").cast(pa.int64()).to_pylist()
    columns = [rows.column(name).to_pylist() for name in ("source", "id", "type", "subject", "data")]
    return [
        RawEvent(
            source, id_, type_, subject, None if us is None else _EPOCH + timedelta(microseconds=us), data
        )
        for source, id_, type_, subject, data, us in zip(*columns, micros, strict=True)
    ]


class PostgresStore(PostgresRecords, KeyReads):
    """Events and keys in a PostgreSQL database given by URL."""

    _PARAM = "%s"

    def __init__(self, url: str) -> None:
        if psycopg is None:
            raise StoreError("PostgreSQL stores need psycopg: pip install 'talktime[postgres]'")
        self.url = url
        self._lock = threading.Lock()
        try:
            self._con: Any = psycopg.connect(url, autocommit=True)
            with self._con.transaction():
                self._con.execute(_SCHEMA)
                self._con.execute(ACCEPTANCES_POSTGRES)  # a person's reviews (talktime.store.reviews)
            self._keys: Any = psycopg.connect(url, autocommit=True)  # look-ups never wait for a batch
            self._open_records()
        except psycopg.Error as error:
            raise StoreError(f"cannot open the PostgreSQL store: {error}") from None
        self._keys_lock = threading.Lock()

    def append(self, tenant: str, events: Sequence[RawEvent]) -> list[bool]:
        fresh = first_seen(events)
        rows = [e for e, new in zip(events, fresh, strict=True) if new]
        if not rows:
            return fresh
        stored = self._append(tenant, with_record_columns(_rows_of(rows)))
        found = iter(stored)
        return [new and next(found) for new in fresh]

    def append_rows(self, tenant: str, rows: pa.Table) -> list[bool]:
        """Store Arrow rows (:data:`~talktime.store.base.ROWS_SCHEMA`, no two with the same source and id,
        with ``rid`` and ``plain`` when ingest made them) in one transaction; per row, True if new."""
        if not rows.num_rows:
            return []
        return self._append(tenant, with_record_columns(rows))

    def _append(self, tenant: str, rows: pa.Table) -> list[bool]:
        events = _raw_events(rows)
        rids: list[str | None] = rows.column("rid").to_pylist()
        params = {"tenant": tenant, **event_columns(events), "rid": rids}
        with self._lock:
            try:
                with self._con.transaction():
                    inserted = set(self._con.execute(_INSERT, params).fetchall())
                    new = [(e.source, e.id) in inserted for e in events]
                    self._store_records(self._con, tenant, rows.filter(pa.array(new, pa.bool_())))
            except psycopg.Error as error:
                raise StoreError(f"the batch was not stored: {error}") from None
        return new

    def events(self, tenant: str) -> list[RawEvent]:
        with self._lock:
            rows = self._con.execute(
                "SELECT source, id, type, subject, time, data FROM events WHERE tenant = %s "
                "ORDER BY source, id",
                [tenant],
            ).fetchall()
        return [RawEvent(*row) for row in rows]

    def count(self, tenant: str) -> int:
        with self._lock:
            row = self._con.execute("SELECT count(*) FROM events WHERE tenant = %s", [tenant]).fetchone()
        return int(row[0]) if row else 0

    def _key_rows(self, where: str, params: list[object]) -> list[ApiKey]:
        with self._keys_lock:
            rows = self._keys.execute(
                "SELECT id, tenant, label, admin, created_at, revoked_at, customer FROM api_keys "
                f"WHERE {where} ORDER BY created_at, id",
                params,
            ).fetchall()
        return [ApiKey(*row) for row in rows]

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
                "INSERT INTO api_keys (key_hash, tenant, id, label, admin, customer) "
                "VALUES (%s, %s, %s, %s, %s, %s)",
                [key_hash, tenant, key_id_of(key_hash), label, admin, customer],
            )
        return self._key_rows("key_hash = %s", [key_hash])[0]

    def revoke_key(self, key_id: str, at: datetime) -> ApiKey | None:
        with self._keys_lock:
            self._keys.execute(
                "UPDATE api_keys SET revoked_at = coalesce(revoked_at, %s) WHERE id = %s", [at, key_id]
            )
        found = self._key_rows("id = %s", [key_id])
        return found[0] if found else None

    def rotate_key(self, key_id: str, new_hash: str, at: datetime) -> ApiKey | None:
        with self._keys_lock:
            try:
                with self._keys.transaction():
                    old = self._keys.execute(
                        "UPDATE api_keys SET revoked_at = %s WHERE id = %s AND revoked_at IS NULL "
                        "RETURNING tenant, label, admin, customer",
                        [at, key_id],
                    ).fetchone()
                    if old is None:
                        return None
                    self._keys.execute(
                        "INSERT INTO api_keys (key_hash, tenant, created_at, id, label, admin, customer) "
                        "VALUES (%s, %s, %s, %s, %s, %s, %s)",
                        [new_hash, old[0], at, key_id_of(new_hash), old[1], old[2], old[3]],
                    )
            except psycopg.Error as error:
                raise StoreError(f"the key was not rotated: {error}") from None
        return self._key_rows("key_hash = %s", [new_hash])[0]

    def close(self) -> None:
        with self._lock, self._keys_lock:
            self._keys.close()
            self._readers.close()
            self._con.close()
