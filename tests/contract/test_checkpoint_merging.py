"""The embedded store's checkpoints leave DuckDB's row-group merging off until deleted record rows (records
re-derived by later events) make it worth it: then one checkpoint merges, and the space comes back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from support.contract_checks import records_agree_with_events
from talktime.store import duckdb_store
from talktime.store.base import RawEvent
from talktime.store.duckdb_store import DuckDBStore

CALLS = 500  # per batch
BATCHES = 20
START = datetime(2025, 3, 1, 10, tzinfo=UTC)


def lifecycle(batch: int) -> list[RawEvent]:
    """This batch's calls open; the previous batch's calls close (their records are re-derived: the old
    rows deleted)."""
    events = [
        RawEvent(
            "/pbx",
            f"o{call}",
            "talktime.connection.opened",
            f"call-{call}",
            START + timedelta(seconds=call),
            '{"customer":"acme","kind":"leg"}',
        )
        for call in range(batch * CALLS, (batch + 1) * CALLS)
    ]
    events += [
        RawEvent(
            "/pbx",
            f"c{call}",
            "talktime.connection.closed",
            f"call-{call}",
            START + timedelta(seconds=call + 60),
            "{}",
        )
        for call in range((batch - 1) * CALLS, batch * CALLS)
        if batch
    ]
    return events


def deleted_rows_on_disk(store: DuckDBStore) -> int:
    (row,) = store.read(duckdb_store._DEAD_RECORDS)
    return int(row[0])


@pytest.mark.parametrize("arm_at", [1_500, None])
def test_deleted_records_are_merged_away_once_there_are_enough(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, arm_at: int | None
) -> None:
    # A small WAL threshold makes DuckDB checkpoint about every batch, each writing new row groups.
    monkeypatch.setattr(duckdb_store, "_DEAD_ROWS_TO_VACUUM", arm_at or 10**12)
    store = DuckDBStore(tmp_path / "s.duckdb")
    try:
        store._con.execute("SET checkpoint_threshold = '256KiB'")
        for batch in range(BATCHES):
            assert all(store.append("acme", lifecycle(batch)))
        deleted = (BATCHES - 1) * CALLS  # every call but the last batch's was re-derived once
        (count,) = store.read("SELECT count(*) FROM records")
        assert count == (BATCHES * CALLS,)
        left = deleted_rows_on_disk(store)
        if arm_at is None:  # never merged: nearly every deleted row is still on disk
            assert left > deleted // 2
        else:  # merged every few checkpoints: what is left is of the last ones
            assert left < 3 * arm_at
            # the merges moved rows: every record is still the one its events make
            records_agree_with_events(store, "acme", START + timedelta(days=1))
    finally:
        store.close()
