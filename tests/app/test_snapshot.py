"""``app.snapshot``: a tenant's records of the window, read from the store into a record file the dashboard
rates; records still open are counted, not written; another tenant's and older records stay out; the mark
changes when a batch touches the tenant's records, and only then."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from support.events import record_event
from talktime.app import service
from talktime.app.snapshot import records_mark, take_snapshot, window_start
from talktime.io.records_io import read_records
from talktime.store import open_store

NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)


def _leg(record_id: str, started: datetime, customer: str = "acme", **fields: str) -> dict[str, object]:
    times = {
        "started_at": started.isoformat(),
        "answered_at": (started + timedelta(seconds=5)).isoformat(),
        "ended_at": (started + timedelta(seconds=50)).isoformat(),
    }
    return record_event(record_id, customer, **{**times, **fields})


def test_the_window_holds_the_tenants_closed_records_and_counts_the_open_ones(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "events.duckdb"))
    try:
        service.ingest(
            store,
            "acme-platform",
            [
                _leg("in-january", datetime(2026, 1, 1, 0, 0, tzinfo=UTC)),
                _leg("in-march", datetime(2026, 3, 2, tzinfo=UTC), customer="bolt"),
                _leg("in-december", datetime(2025, 12, 31, 23, 59, tzinfo=UTC)),
                _leg("still-open", NOW - timedelta(minutes=5), status="open", ended_at=""),
            ],
        )
        service.ingest(store, "other-platform", [_leg("theirs", datetime(2026, 3, 3, tzinfo=UTC))])
        assert window_start(NOW, 3) == datetime(2026, 1, 1, tzinfo=UTC), "no zone but UTC: its midnight"
        taken = take_snapshot(
            store,
            "acme-platform",
            tmp_path / "snap.parquet",
            as_of=NOW,
            months=3,
            idle_timeout=timedelta(hours=1),
        )
        written = sorted(r.id for r in read_records(taken.path))
        assert written == ["in-january", "in-march"], (
            "December is before the window; theirs is another tenant's"
        )
        assert (taken.records, taken.still_open, taken.since) == (2, 1, datetime(2026, 1, 1, tzinfo=UTC))
        assert taken.mark == records_mark(store, "acme-platform")
        service.ingest(store, "other-platform", [_leg("theirs-2", datetime(2026, 3, 4, tzinfo=UTC))])
        assert records_mark(store, "acme-platform") == taken.mark, "another tenant's batch changes nothing"
        service.ingest(store, "acme-platform", [_leg("in-march-2", datetime(2026, 3, 5, tzinfo=UTC))])
        assert records_mark(store, "acme-platform") != taken.mark, "a batch of the tenant's does"
    finally:
        store.close()
