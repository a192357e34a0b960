"""Usage records put into an event store the way the API stores them (talktime.record events)."""

from __future__ import annotations

from collections.abc import Iterable

from talktime.app import service
from talktime.core.records import UsageRecord, record_to_row
from talktime.store import open_store


def store_records(target: str, tenant: str, records: Iterable[UsageRecord]) -> None:
    """Ingest ``records`` for ``tenant`` into the store at ``target``, one talktime.record event each."""
    store = open_store(target)
    try:
        events = [
            {
                "specversion": "1.0",
                "id": f"e-{r.id}",
                "source": "test",
                "type": "talktime.record",
                "data": {k: v for k, v in record_to_row(r).items() if v != ""},
            }
            for r in records
        ]
        service.ingest(store, tenant, events)
    finally:
        store.close()
