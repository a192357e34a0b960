"""The embedded store's hashes in memory (talktime.store.hash_set): a batch asks SQL only about the keys they
hold, so they must never forget a stored key, and a key they hold by chance must never cost an event."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from talktime.app import service
from talktime.ingest.batch import prepare_items
from talktime.store.base import ROWS_SCHEMA, RawEvent
from talktime.store.duckdb_records import record_hash
from talktime.store.duckdb_store import EVENT_KEY, DuckDBStore, uint64s
from talktime.store.hash_set import HashSet
from talktime.store.records import with_record_columns

U64 = st.integers(0, 2**64 - 1)


@settings(max_examples=200, deadline=None)
@given(
    first=st.lists(U64, max_size=50),
    batches=st.lists(st.lists(U64, max_size=30), max_size=12),
    probe=st.lists(U64),
)
def test_the_set_answers_as_a_python_set(
    first: list[int], batches: list[list[int]], probe: list[int]
) -> None:
    known, expected = HashSet(np.array(first, dtype=np.uint64)), set(first)
    for batch in batches:
        keys = np.array(batch, dtype=np.uint64)
        assert known.contains(keys).tolist() == [k in expected for k in batch]
        known.add(keys)
        expected.update(batch)
    everything = [*expected, *probe]
    assert known.contains(np.array(everything, dtype=np.uint64)).tolist() == [
        k in expected for k in everything
    ]


def test_large_runs_found_through_their_directory() -> None:
    rng = np.random.default_rng(7)
    stored = rng.integers(0, 2**64, 300_000, dtype=np.uint64, endpoint=False)
    known = HashSet(stored[:200_000])
    for start in range(200_000, 300_000, 10_000):  # runs merged like a binary counter, some with directories
        known.add(stored[start : start + 10_000])
    others = rng.integers(0, 2**64, 50_000, dtype=np.uint64, endpoint=False)
    others = others[~np.isin(others, stored)]
    assert known.contains(stored).all()
    assert not known.contains(others).any()
    assert len(known) == 300_000 and known.nbytes < 300_000 * 12


def opened(i: int, source: str = "/pbx") -> RawEvent:
    when = datetime(2025, 3, 1, 10, 0, i, tzinfo=UTC)
    return RawEvent(source, f"e{i}", "talktime.connection.opened", f"call-{i}", when, '{"customer":"acme"}')


def test_two_stores_of_one_file_in_one_process_see_each_others_events(tmp_path: Path) -> None:
    # DuckDB shares one database between the two connections: a set loaded by one must learn the other's.
    path = tmp_path / "s.duckdb"
    first, second = DuckDBStore(path), DuckDBStore(path)
    try:
        assert first.append("t", [opened(1)]) == [True]
        assert second.append("t", [opened(1), opened(2)]) == [False, True]
        assert first.append("t", [opened(2), opened(3)]) == [False, True]
        assert first.count("t") == 3
    finally:
        first.close()
        second.close()
    reopened = DuckDBStore(path)
    try:
        assert reopened.append("t", [opened(1), opened(3), opened(4)]) == [False, False, True]
        assert reopened.known_hashes()["events"] == 4
    finally:
        reopened.close()


def test_a_key_the_sets_hold_by_chance_costs_no_event_and_no_record(tmp_path: Path) -> None:
    # Make the sets hold the keys of events and records never stored (what a 64-bit collision does):
    # the exact comparison in SQL must still take the events and make their records.
    store = DuckDBStore(tmp_path / "s.duckdb")
    try:
        assert store.append("t", [opened(1)]) == [True]
        known = store._known_hashes()
        con = store._con
        sql = "SELECT " + EVENT_KEY.format(tenant="'t'", source="'/pbx'", id="'e2'") + " AS k"
        known.events.add(uint64s(con, sql))
        known.records.add(np.array([record_hash("t", "call-2")], dtype=np.uint64))
        assert store.append("t", [opened(1), opened(2)]) == [False, True]
        record = store.stored_record("t", "call-2")
        assert record is not None and record.record.customer == "acme" and record.events == 1
        assert store.count("t") == 2
    finally:
        store.close()


def test_a_record_kept_after_a_rebuild_is_found_again(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "s.duckdb")
    try:
        store.append("t", [opened(1)])
        assert store.rebuild_records() == 1
        closed = RawEvent(
            "/pbx",
            "c1",
            "talktime.connection.closed",
            "call-1",
            datetime(2025, 3, 1, 10, 5, tzinfo=UTC),
            "{}",
        )
        assert store.append("t", [closed]) == [True]
        (row,) = store.read("SELECT status, events FROM records WHERE id = 'call-1'")
        assert row == ("completed", 2)
    finally:
        store.close()


def test_what_ingest_derives_for_the_store_equals_what_the_store_derives_itself() -> None:
    # A batch prepared by ingest carries each event's record id and a record event's row; rows without them
    # (another caller) get them from the store: the same values either way.
    items = [
        {
            "specversion": "1.0",
            "id": "r1",
            "source": "/p",
            "type": "talktime.record",
            "subject": "s",
            "data": {
                "id": " leg-1 ",
                "customer": "acme",
                "kind": "LEG",
                "started_at": "2025-03-01T10:00:00Z",
                "ended_at": "2025-03-01T11:00:52.3+01:00",
                "audio_seconds": 46.9,
                "channels": "2",
            },
        },
        {
            "specversion": "1.0",
            "id": "r2",
            "source": "/p",
            "type": "talktime.record",
            "data": {
                "customer": "acme",
                "started_at": "2025-03-01T10:00:00Z",
                "ended_at": "2025-03-01T10:01:00Z",
                "attrs": {"model": "x"},
            },
        },
        {
            "specversion": "1.0",
            "id": "o1",
            "source": "/p",
            "type": "talktime.connection.opened",
            "subject": "room",
            "time": "2025-03-01T10:00:00Z",
            "data": {"leg": "bob"},
        },
    ]
    rows = prepare_items(items).rows
    assert rows.column("rid").to_pylist() == ["leg-1", "r2", "room/bob"]
    assert rows.column("plain").is_valid().to_pylist() == [True, False, False]  # free attributes: typed way
    assert with_record_columns(rows.select(ROWS_SCHEMA.names)).equals(rows)


def test_ingest_then_resend_over_the_service(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "s.duckdb")
    items = [
        {
            "specversion": "1.0",
            "id": f"r{i}",
            "source": "/p",
            "type": "talktime.record",
            "data": {
                "customer": "acme",
                "started_at": "2025-03-01T10:00:00Z",
                "ended_at": "2025-03-01T10:01:00Z",
            },
        }
        for i in range(3)
    ]
    try:
        assert service.ingest(store, "t", items).accepted == 3
        again = service.ingest(store, "t", orjson.loads(orjson.dumps(items)))
        assert (again.accepted, again.duplicate) == (0, 3)
        assert store.read("SELECT count(*) FROM records") == [(3,)]
    finally:
        store.close()
