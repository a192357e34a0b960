"""The PostgreSQL store (psycopg 3, the ``postgres`` extra): the embedded store's tables and guarantees.

A batch is one ``INSERT ... SELECT FROM unnest(arrays) ON CONFLICT DO NOTHING RETURNING``: the unique key
(tenant, source, id) decides what is new, atomically, even with several servers writing, and the returned
keys say which events were inserted. The transaction commits before ``append`` returns.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from talktime.errors import StoreError
from talktime.store.base import RawEvent, event_columns, first_seen

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
"""
_INSERT = """
INSERT INTO events (tenant, source, id, type, subject, time, data)
SELECT %(tenant)s, * FROM unnest(
    %(source)s::text[], %(id)s::text[], %(type)s::text[], %(subject)s::text[],
    %(time)s::timestamptz[], %(data)s::text[])
ON CONFLICT (tenant, source, id) DO NOTHING
RETURNING source, id
"""


class PostgresStore:
    """Events and keys in a PostgreSQL database given by URL."""

    def __init__(self, url: str) -> None:
        if psycopg is None:
            raise StoreError("PostgreSQL stores need psycopg: pip install 'talktime[postgres]'")
        self.url = url
        self._lock = threading.Lock()
        try:
            self._con: Any = psycopg.connect(url, autocommit=True)
            with self._con.transaction():
                self._con.execute(_SCHEMA)
        except psycopg.Error as error:
            raise StoreError(f"cannot open the PostgreSQL store: {error}") from None

    def append(self, tenant: str, events: Sequence[RawEvent]) -> list[bool]:
        fresh = first_seen(events)
        rows = [e for e, new in zip(events, fresh, strict=True) if new]
        if not rows:
            return fresh
        params = {"tenant": tenant, **event_columns(rows)}
        with self._lock:
            try:
                with self._con.transaction():
                    inserted = set(self._con.execute(_INSERT, params).fetchall())
            except psycopg.Error as error:
                raise StoreError(f"the batch was not stored: {error}") from None
        return [new and (e.source, e.id) in inserted for e, new in zip(events, fresh, strict=True)]

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

    def add_key(self, tenant: str, key_hash: str) -> None:
        with self._lock:
            self._con.execute("INSERT INTO api_keys (key_hash, tenant) VALUES (%s, %s)", [key_hash, tenant])

    def tenant_of(self, key_hash: str) -> str | None:
        with self._lock:
            row = self._con.execute("SELECT tenant FROM api_keys WHERE key_hash = %s", [key_hash]).fetchone()
        return None if row is None else str(row[0])

    def close(self) -> None:
        with self._lock:
            self._con.close()
