"""Event stores: append-only raw events and hashed API keys, behind one Protocol (``base.EventStore``).

Adapters: ``duckdb_store`` (an embedded DuckDB file, the default) and ``postgres_store`` (PostgreSQL through
psycopg 3, the ``postgres`` extra). :func:`open_store` picks one from a path or URL. Both keep exactly-once
counting the same way: a unique constraint on (tenant, source, id), so a retried batch never counts twice.

Owns: persistence and dedup. Does not own: what an event means (``talktime.ingest``) or HTTP
(``talktime.api``).
"""

from talktime.store.base import DEFAULT_STORE, EventStore, RawEvent, hash_key, new_key, open_store

__all__ = ["DEFAULT_STORE", "EventStore", "RawEvent", "hash_key", "new_key", "open_store"]
