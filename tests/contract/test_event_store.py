"""One contract for every EventStore adapter: the embedded DuckDB file and PostgreSQL.

A backend that lacks a behaviour gets a strict xfail mark here, so it fails once it gains it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from support.fixtures import postgres_server, postgres_url  # noqa: F401  (fixtures)
from talktime.errors import StoreError
from talktime.store import EventStore, RawEvent, hash_key, open_store

T0 = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)


def raw(i: int, source: str = "/a", **overrides: object) -> RawEvent:
    values: dict[str, object] = {
        "source": source,
        "id": f"e{i}",
        "type": "talktime.audio.sent",  # valid data: the store derives records from what it keeps
        "subject": f"call-{i}",
        "time": T0 + timedelta(seconds=i),
        "data": '{"customer": "acme", "seconds": 46.9}',
    }
    values.update(overrides)
    return RawEvent(**values)  # type: ignore[arg-type]


@pytest.fixture(params=["duckdb", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "duckdb":
        return str(tmp_path / "events.duckdb")
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def store(target: str) -> Iterator[EventStore]:
    opened = open_store(target)
    yield opened
    opened.close()


def test_new_events_are_accepted_and_read_back_exactly(store: EventStore) -> None:
    events = [
        raw(1),
        raw(2, time=None, subject=None),
        raw(3, time=datetime(2025, 3, 1, 12, tzinfo=timezone(timedelta(hours=2)))),
    ]
    assert store.append("t1", events) == [True, True, True]
    back = sorted(store.events("t1"), key=lambda e: e.id)
    assert [(e.source, e.id, e.type, e.subject, e.data) for e in back] == [
        (e.source, e.id, e.type, e.subject, e.data) for e in events
    ]
    assert [e.time for e in back] == [e.time for e in events]  # same instants, whatever the offset
    assert store.count("t1") == 3


def test_a_retried_batch_never_counts_twice(store: EventStore) -> None:
    batch = [raw(i) for i in range(5)]
    assert store.append("t1", batch) == [True] * 5
    assert store.append("t1", batch) == [False] * 5
    assert store.append("t1", [raw(4), raw(5)]) == [False, True]
    assert store.count("t1") == 6


def test_duplicates_inside_one_batch_count_once(store: EventStore) -> None:
    assert store.append("t1", [raw(1), raw(1), raw(2)]) == [True, False, True]
    assert store.count("t1") == 2


def test_dedup_key_is_tenant_source_and_id(store: EventStore) -> None:
    assert store.append("t1", [raw(1, source="/a"), raw(1, source="/b")]) == [True, True]
    assert store.append("t2", [raw(1, source="/a")]) == [True]
    assert store.count("t1") == 2 and store.count("t2") == 1


def test_tenants_see_only_their_events(store: EventStore) -> None:
    store.append("t1", [raw(1)])
    store.append("t2", [raw(2)])
    assert [e.id for e in store.events("t1")] == ["e1"]
    assert [e.id for e in store.events("t2")] == ["e2"]
    assert store.events("nobody") == []


def test_a_failing_batch_writes_nothing(store: EventStore) -> None:
    store.append("t1", [raw(1)])
    with pytest.raises(StoreError):
        store.append("t1", [raw(2), raw(3, type=None), raw(4)])
    assert sorted(e.id for e in store.events("t1")) == ["e1"]


def test_api_keys_are_stored_hashed_per_tenant(store: EventStore) -> None:
    store.add_key("t1", hash_key("secret-1"))
    assert store.tenant_of(hash_key("secret-1")) == "t1"
    assert store.tenant_of(hash_key("secret-2")) is None
    assert store.tenant_of("secret-1") is None  # the key itself is never what is stored


def test_events_survive_closing_and_reopening(target: str) -> None:
    first = open_store(target)
    first.append("t1", [raw(1), raw(2)])
    first.add_key("t1", hash_key("k"))
    first.close()
    again = open_store(target)
    try:
        assert again.count("t1") == 2
        assert again.append("t1", [raw(2)]) == [False]
        assert again.tenant_of(hash_key("k")) == "t1"
    finally:
        again.close()
