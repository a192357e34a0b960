"""Where a use case that looks back (simulate, compare, margin, invoice, reconcile) gets its usage
records: a record file, or the records an event store keeps for one tenant, as of now.

A face names the source as it was given (:class:`HistorySource`); the check that exactly one source was
given is here, so every face refuses the same way.

A store also keeps a person's acceptances of the records its guards flag (``talktime.store.reviews``), and
when it first received each record, the moment ``GET /v1/invoices`` judges the time-worded limits
(``max_future_hours``, ``max_past_days``) as of. The use cases that hold flagged records back (invoice,
finalize, export, margin's HELD marks) read both here with the records (:func:`history_of`,
:func:`accepted_of`: a :class:`~talktime.core.plausibility.Kept`), from the store or through the server
holding it (``GET /v1/acceptances``, ``GET /v1/receipts``), so a record counts, or is held back, in every
command as ``GET /v1/invoices`` counts it. A record file has neither: its records' time is judged as of the
billed month's end, or now.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from talktime.core.records import UsageRecord
from talktime.errors import InputError
from talktime.io.records_io import BeyondTypedLayout, read_records, write_records

if TYPE_CHECKING:
    from talktime.core.plausibility import Accepted
    from talktime.store.base import EventStore


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


@dataclass(frozen=True, slots=True)
class History:
    """A history's records, and a store's word on them (by id: the latest acceptance of each a person
    accepted, and the first receipt of each whose time-worded limits turn on it; judged as of the record's
    first receipt: :class:`~talktime.core.plausibility.Kept`). A record file's: none (a plain dict)."""

    records: list[UsageRecord]
    accepted: dict[str, Accepted] = field(default_factory=dict)


def stored_records(store: str, tenant: str | None, as_of: datetime | None = None) -> list[UsageRecord]:
    """The tenant's usage records in the event store as of ``as_of`` (now): the records the store keeps, or
    when ``talktime serve`` holds the store, the records that server reads from it
    (:mod:`talktime.app.served`)."""
    return _stored(store, tenant, as_of, accepted=False).records


def stored_history(store: str, tenant: str | None, as_of: datetime | None = None) -> History:
    """:func:`stored_records` and the tenant's acceptances of them, read in that order from the store (or
    through the server holding it): an acceptance counts a record only while it covers the reasons the
    record has as read, word for word, so one made in between can never count a record it was not for."""
    return _stored(store, tenant, as_of, accepted=True)


def stored_acceptances(
    store: EventStore, tenant: str, customer: str | None, as_of: datetime
) -> dict[str, Accepted]:
    """The latest acceptance of each of the tenant's records (or one customer's) a person accepted, judged
    as of the record's first receipt (or ``as_of`` if that is earlier), as the store's invoices judge it:
    ``GET /v1/acceptances`` answers it, and a command reading the store itself reads it."""
    from talktime.store.reviews import tenant_accepted

    if not hasattr(store, "records_dialect"):
        raise TypeError(f"{type(store).__name__} keeps no records table")
    return tenant_accepted(store, tenant, customer, as_of)


def stored_receipts(
    store: EventStore, tenant: str, customer: str | None, as_of: datetime
) -> dict[str, datetime]:
    """The moment each of the tenant's records (or one customer's) received more than an hour before its
    start or more than a day after it is judged as of (its first receipt, or ``as_of`` if that is earlier):
    the only records a time-worded limit can flag as of their receipt. ``GET /v1/receipts`` answers it."""
    from talktime.store.reviews import tenant_receipts

    if not hasattr(store, "records_dialect"):
        raise TypeError(f"{type(store).__name__} keeps no records table")
    return tenant_receipts(store, tenant, customer, as_of)


def _stored(
    store: str, tenant: str | None, as_of: datetime | None, *, records: bool = True, accepted: bool
) -> History:
    """The tenant's records (``records``) and the store's word on them (``accepted``: the acceptances and
    the first receipts their time-worded limits are judged by, :class:`~talktime.core.plausibility.Kept`)
    from the store, or through the server holding it; a tenant without records is refused when they are
    read."""
    from talktime.app.served import (
        acceptances_from_server,
        held_by_server,
        receipts_from_server,
        records_from_server,
    )
    from talktime.app.service import current_records
    from talktime.core.plausibility import Kept
    from talktime.store import open_store
    from talktime.store.reviews import tenant_kept

    if not tenant:
        raise InputError("--store needs --tenant: the tenant whose events are read")
    moment = as_of or datetime.now(UTC)
    server = held_by_server(store)
    made: dict[str, Accepted] = Kept() if accepted else {}
    if server is not None:
        found = records_from_server(server, store, tenant) if records else []
        if accepted:
            made = Kept(
                acceptances_from_server(server, store, tenant), receipts_from_server(server, store, tenant)
            )
    else:
        opened = open_store(store)
        try:
            found = [c.record for c in current_records(opened, tenant, moment)] if records else []
            if accepted:
                if not hasattr(opened, "records_dialect"):
                    raise TypeError(f"{type(opened).__name__} keeps no records table")
                made = tenant_kept(opened, tenant, None, moment)
        finally:
            opened.close()
    if records and not found:
        raise InputError(f"--store {store!r}: tenant {tenant!r} has no usage records")
    return History(found, made)


def store_history(store: str, tenant: str | None, target: Path) -> Path:
    """The tenant's stored records written to ``target`` (a Parquet file the engines scan)."""
    write_records(target, stored_records(store, tenant))
    return target


def named_at_store(error: BeyondTypedLayout, source: HistorySource) -> BeyondTypedLayout:
    """``error`` located at the store the user named rather than the temporary file its records were written
    to (gone when the message is read); as it is for a record file the user gave."""
    if source.store is None:
        return error
    return error.located(f"--store {source.store} (tenant {source.tenant})")


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


def history_of(source: HistorySource) -> History:
    """The history's records, read whole, and a store's acceptances of them (a record file has none)."""
    require_one(source, " (with --tenant)")
    if source.records is not None:
        return History(list(read_records(source.records)))
    assert source.store is not None
    return stored_history(source.store, source.tenant)


def accepted_of(source: HistorySource) -> dict[str, Accepted]:
    """A store's acceptances of the history's records, for a use case that reads the records apart (margin
    scans a file of them): none for a record file."""
    require_one(source, " (with --tenant)")
    if source.store is None:
        return {}
    return _stored(source.store, source.tenant, None, records=False, accepted=True).accepted


def history_file(source: HistorySource, folder: Path) -> Path:
    """The history as one record file: the file given, or the store's records written into ``folder``."""
    require_one(source)
    if source.records is not None:
        return source.records
    return store_history(str(source.store), source.tenant, folder / "history.parquet")


def history_records(source: HistorySource, folder: Path) -> list[UsageRecord]:
    """The history's records, read whole (the per-record reference meters them)."""
    return list(read_records(history_file(source, folder)))
