"""Where a use case that looks back (simulate, compare, margin, invoice, reconcile) gets its usage
records: a record file, or the records an event store keeps for one tenant, as of now.

A face names the source as it was given (:class:`HistorySource`); the check that exactly one source was
given is here, so every face refuses the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
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


def stored_records(store: str, tenant: str | None) -> list[UsageRecord]:
    """The tenant's records in the event store (read through ``talktime serve`` when it holds the store)."""
    # Still in the CLI package (another change owns it); it moves here when that change is in.
    from talktime.cli.history import stored_records as read_store

    return read_store(store, tenant)


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
