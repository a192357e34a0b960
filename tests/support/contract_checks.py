"""Checks shared by the record suites: the rows a store keeps, and "records agree with events"."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from talktime.app import service
from talktime.core.records import record_to_row
from talktime.store import EventStore
from talktime.store.records import ROW_SCHEMA, record_from_doc


def snapshot(store: EventStore, tenant: str) -> list[tuple[Any, ...]]:
    """Every column of the tenant's record rows, by id (times as microseconds on DuckDB)."""
    duck = store.records_dialect == "duckdb"  # type: ignore[attr-defined]
    columns = [
        f"epoch_us({f.name})" if duck and str(f.type).startswith("timestamp") else f.name for f in ROW_SCHEMA
    ]
    quoted = tenant.replace("'", "''")
    order = "id" if duck else 'id COLLATE "C"'
    rows: list[tuple[Any, ...]] = store.read(  # type: ignore[attr-defined]
        f"SELECT {', '.join(columns)} FROM records WHERE tenant = '{quoted}' ORDER BY {order}"
    )
    # ``doc`` is the record (a lone record event's may be kept as the data it was parsed from): compare it
    # as the record it reads back as
    return [(*row[:-1], record_to_row(record_from_doc(row[-1]))) for row in rows]


def records_agree_with_events(store: EventStore, tenant: str, as_of: datetime) -> None:
    """The kept rows equal a rebuild's, and the kept records as of ``as_of`` equal sessionizing every
    stored event of the tenant."""
    kept = snapshot(store, tenant)
    sessions = service.session_records(store, tenant, as_of)
    current = service.current_records(store, tenant, as_of)
    assert [record_to_row(c.record) for c in current] == [record_to_row(s.record) for s in sessions]
    assert [c.flagged for c in current] == [bool(s.flags) for s in sessions]
    store.rebuild_records()  # type: ignore[attr-defined]
    assert snapshot(store, tenant) == kept
