"""The EventStore Protocol every adapter implements, the raw event row, and API key hashing.

Why sha256 for API keys and not a slow password hash: a key is 32 random bytes (256 bits) from ``secrets``,
so nobody can guess it from a dictionary and a fast hash is enough to make a stolen table useless; a slow
hash (bcrypt, argon2) only buys time against low-entropy passwords, and would cost every request tens of
milliseconds. The store keeps only the hash; the key itself is printed once, when it is made.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import Final, NamedTuple, Protocol

import pyarrow as pa

#: Where ``talktime serve`` and ``talktime keys`` keep events when no ``--store`` is given.
DEFAULT_STORE: Final = "talktime-events.duckdb"
KEY_PREFIX: Final = "tt_"

#: Valid events as Arrow rows, the way ingest hands a batch to a store (``pos``: the event's index in the
#: batch; ``data``: the JSON text).
ROWS_SCHEMA: Final = pa.schema(
    [  # type: ignore[arg-type]  # the stubs reject a list of differently typed fields
        pa.field("pos", pa.int64()),
        pa.field("source", pa.string()),
        pa.field("id", pa.string()),
        pa.field("type", pa.string()),
        pa.field("subject", pa.string()),
        pa.field("time", pa.timestamp("us", tz="UTC")),
        pa.field("data", pa.string()),
    ]
)


class RawEvent(NamedTuple):
    """One event as stored: the envelope fields and ``data`` as the JSON text it came with.

    A NamedTuple rather than a frozen dataclass: ingest makes 10,000 per batch, and a frozen dataclass's
    ``__init__`` (one ``object.__setattr__`` per field) cost four times as much."""

    source: str
    id: str
    type: str
    subject: str | None
    time: datetime | None
    data: str


class EventStore(Protocol):
    """Append-only events per tenant, deduplicated on (tenant, source, id), and hashed API keys."""

    def append(self, tenant: str, events: Sequence[RawEvent]) -> list[bool]:
        """Store the events in one transaction; per event, True if it is new, False if already stored
        (or earlier in the same batch). On failure nothing of the batch is stored."""
        ...

    def events(self, tenant: str) -> list[RawEvent]:
        """Every event of the tenant, in a stable order (source, id)."""
        ...

    def count(self, tenant: str) -> int:
        """How many events the tenant has."""
        ...

    def add_key(self, tenant: str, key_hash: str) -> None:
        """Remember a hashed API key for the tenant."""
        ...

    def tenant_of(self, key_hash: str) -> str | None:
        """The tenant a hashed API key belongs to, or None."""
        ...

    def close(self) -> None: ...


def new_key() -> str:
    """A new random API key (shown once, stored only as its hash)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    """The stored form of an API key: hex sha256."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def first_seen(events: Sequence[RawEvent]) -> list[bool]:
    """Per event, False when the same (source, id) came earlier in the same batch."""
    seen: set[tuple[str, str]] = set()
    result = []
    for event in events:
        key = (event.source, event.id)
        result.append(key not in seen)
        seen.add(key)
    return result


def event_columns(events: Sequence[RawEvent]) -> dict[str, list[str | datetime | None]]:
    """The stored fields of events as columns: source, id, type, subject, time and data."""
    return {
        "source": [e.source for e in events],
        "id": [e.id for e in events],
        "type": [e.type for e in events],
        "subject": [e.subject for e in events],
        "time": [e.time for e in events],
        "data": [e.data for e in events],
    }


def is_postgres_url(target: str) -> bool:
    return target.startswith(("postgresql://", "postgres://"))


def open_store(target: str = DEFAULT_STORE) -> EventStore:
    """A PostgreSQL store for a ``postgresql://`` URL, else an embedded DuckDB file at that path."""
    if is_postgres_url(target):
        from talktime.store.postgres_store import PostgresStore

        return PostgresStore(target)
    from talktime.store.duckdb_store import DuckDBStore

    return DuckDBStore(target)
