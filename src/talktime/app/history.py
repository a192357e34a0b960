"""Where a use case that looks back (simulate, compare, margin, invoice, reconcile) gets its usage
records: a record file, or the records an event store keeps for one tenant, as of now.

A face names the source as it was given (:class:`HistorySource`); the check that exactly one source was
given is here, so every face refuses the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from talktime.core.records import UsageRecord
from talktime.errors import InputError
from talktime.io.records_io import read_records, write_records


@dataclass(frozen=True, slots=True)
class HistorySource:
    """A record file, or an event store and the tenant whose records it keeps (as the user gave them)."""

    records: Path | None = None
    store: str | None = None
    tenant: str | None = None

    @property
    def given(self) -> bool:
        return self.records is not None or self.store is not None

    @property
    def label(self) -> str:
        """How a report names the history: the file or the store as given."""
        return str(self.records if self.records is not None else self.store)


def stored_records(store: str, tenant: str | None, as_of: datetime | None = None) -> list[UsageRecord]:
    """The tenant's usage records in the event store as of ``as_of`` (now): the records the store keeps, or
    when ``talktime serve`` holds the store, the records that server reads from it
    (:mod:`talktime.app.served`)."""
    from talktime.app.served import held_by_server, records_from_server
    from talktime.app.service import current_records
    from talktime.store import open_store

    if not tenant:
        raise InputError("--store needs --tenant: the tenant whose events are read")
    server = held_by_server(store)
    if server is not None:
        found = records_from_server(server, store, tenant)
    else:
        opened = open_store(store)
        try:
            found = [c.record for c in current_records(opened, tenant, as_of or datetime.now(UTC))]
        finally:
            opened.close()
    if not found:
        raise InputError(f"--store {store!r}: tenant {tenant!r} has no usage records")
    return found


def store_history(store: str, tenant: str | None, target: Path) -> Path:
    """The tenant's stored records written to ``target`` (a Parquet file the engines scan)."""
    write_records(target, stored_records(store, tenant))
    return target


def require_one(source: HistorySource, hint: str = "") -> None:
    """Refuse a history given as both a file and a store, or as neither."""
    if (source.records is None) == (source.store is None):
        raise InputError(f"give exactly one of --records FILE or --store URL{hint}")


def records_of(source: HistorySource) -> list[UsageRecord]:
    """The history's records, read whole, from exactly one of a file or a store."""
    require_one(source, " (with --tenant)")
    if source.records is not None:
        return list(read_records(source.records))
    assert source.store is not None
    return stored_records(source.store, source.tenant)


def history_file(source: HistorySource, folder: Path) -> Path:
    """The history as one record file: the file given, or the store's records written into ``folder``."""
    require_one(source)
    if source.records is not None:
        return source.records
    return store_history(str(source.store), source.tenant, folder / "history.parquet")


def history_records(source: HistorySource, folder: Path) -> list[UsageRecord]:
    """The history's records, read whole (the per-record reference meters them)."""
    return list(read_records(history_file(source, folder)))
