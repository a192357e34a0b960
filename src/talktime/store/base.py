"""The EventStore Protocol every adapter implements, the raw event row, and API key hashing.

Why sha256 for API keys and not a slow password hash: a key is 32 random bytes (256 bits) from ``secrets``,
so nobody can guess it from a dictionary and a fast hash is enough to make a stolen table useless; a slow
hash (bcrypt, argon2) only buys time against low-entropy passwords, and would cost every request tens of
milliseconds. The store keeps only the hash; the key itself is printed once, when it is made.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar, Final, Generic, NamedTuple, Protocol, TypeVar

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


class Closable(Protocol):
    def close(self) -> None: ...


C = TypeVar("C", bound=Closable)


class Readers(Generic[C]):
    """One read connection (or cursor) per thread, opened on first use and closed together: reads see the
    last committed batch and never wait for the writer's lock."""

    def __init__(self, open_one: Callable[[], C]) -> None:
        self._open = open_one
        self._local = threading.local()
        self._all: list[C] = []
        self._lock = threading.Lock()

    def get(self) -> C:
        found: C | None = getattr(self._local, "reader", None)
        if found is None:
            found = self._open()
            self._local.reader = found
            with self._lock:
                self._all.append(found)
        return found

    def close(self) -> None:
        with self._lock:
            for reader in self._all:
                reader.close()
            self._all.clear()


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

    def add_key(
        self,
        tenant: str,
        key_hash: str,
        *,
        label: str | None = None,
        admin: bool = False,
        customer: str | None = None,
    ) -> ApiKey:
        """Remember a hashed API key for the tenant (an admin key: tenant :data:`ADMIN_TENANT`; a
        customer-scoped key: one ``customer`` of the tenant)."""
        ...

    def tenant_of(self, key_hash: str) -> str | None:
        """The tenant a hashed tenant key belongs to, or None (unknown, revoked, or an admin key)."""
        ...

    def key_of(self, key_hash: str) -> ApiKey | None:
        """What is known of a hashed key, revoked or not, or None; read afresh on every call (a key
        revoked by another process counts as revoked at once)."""
        ...

    def list_keys(self, tenant: str | None = None) -> list[ApiKey]:
        """The keys of a tenant (every key when None), revoked included, oldest first; never the hash."""
        ...

    def revoke_key(self, key_id: str, at: datetime) -> ApiKey | None:
        """Revoke a key from ``at`` on (a key revoked before keeps its first time); None if unknown."""
        ...

    def rotate_key(self, key_id: str, new_hash: str, at: datetime) -> ApiKey | None:
        """In one transaction: a new key with the old one's tenant, label, role and customer, and the old one
        revoked at ``at``. The new key, or None when ``key_id`` is unknown or already revoked."""
        ...

    def close(self) -> None: ...


def new_key() -> str:
    """A new random API key (shown once, stored only as its hash)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    """The stored form of an API key: hex sha256."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


#: The tenant of admin keys (``talktime keys create --admin``): they manage keys, and read no tenant's data.
ADMIN_TENANT: Final = "talktime:admin"


def key_id_of(key_hash: str) -> str:
    """A key's public id: the first 12 hex digits of its hash (nothing to guess the key from)."""
    return "k_" + key_hash[:12]


@dataclass(frozen=True, slots=True)
class ApiKey:
    """An API key as listed: its id, tenant, label and role, never the key nor its hash. ``customer``: a
    customer-scoped key (``talktime keys create --tenant T --customer C``) reads only that customer's
    usage, records and invoices of the tenant; None for a tenant key (or an admin key)."""

    id: str
    tenant: str
    label: str | None
    admin: bool
    created_at: datetime
    revoked_at: datetime | None
    customer: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


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


class KeyReads:
    """The key look-ups every store answers the same way, over its own ``_key_rows(where, params)`` (a SQL
    condition with ``_PARAM`` as its placeholder)."""

    _PARAM: ClassVar[str]

    def _key_rows(self, where: str, params: list[object]) -> list[ApiKey]:
        raise NotImplementedError

    def tenant_of(self, key_hash: str) -> str | None:
        found = self.key_of(key_hash)
        return found.tenant if found is not None and found.active and not found.admin else None

    def key_of(self, key_hash: str) -> ApiKey | None:
        found = self._key_rows(f"key_hash = {self._PARAM}", [key_hash])
        return found[0] if found else None

    def list_keys(self, tenant: str | None = None) -> list[ApiKey]:
        if tenant is None:
            return self._key_rows("true", [])
        return self._key_rows(f"tenant = {self._PARAM}", [tenant])
