"""The snapshot's record file, written by the store's SQL (``store.record_files``), equals the file the old
way wrote (each stored record read back as a Python record, closed by the idle timeout, and written by
``write_records``): the same columns and types, the same records in the same order, and the same count of
records still open, on DuckDB and on PostgreSQL, for drawn event streams (every lifecycle type, whole
records with free attributes, offsets, records the idle timeout closes, ids colliding) and two windows.

A record the file's typed columns cannot hold (more than 6 decimals) made both ways fail (Arrow's rescaling
error, then a refusal of the tenant's whole snapshot); both now write it, its typed value null and its exact
record in the ``_exact`` column, and the file reads back with every digit.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings

from support.event_strategies import T0, event_batches
from support.events import record_event
from support.fixtures import postgres_server, postgres_url  # noqa: F401  (fixtures)
from talktime.app import service
from talktime.app.snapshot import take_snapshot, window_start
from talktime.core.records import UsageRecord
from talktime.engine.sources import canonical_parquet
from talktime.io.records_io import BeyondTypedLayout, read_records, write_records
from talktime.store import EventStore, open_store
from talktime.store.records import record_from_doc
from talktime.store.usage import Scope, current_docs

IDLE = timedelta(hours=1)
#: Before, between and after the drawn lifecycle events (T0 to T0 + 3 h): open, closed by the idle timeout.
MOMENTS = (T0 + timedelta(minutes=30), T0 + timedelta(hours=2, minutes=10), T0 + timedelta(hours=9))
#: 15 months back from March 2025 holds every drawn record (2024-01 on); 13 leaves January and February out.
WINDOWS = (15, 13)
_tenants = itertools.count()


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EventStore]:
    if request.param == "duckdb":
        target = str(tmp_path_factory.mktemp("snapshot-file") / "events.duckdb")
    else:
        target = request.getfixturevalue("postgres_server").create_database()
    opened = open_store(target)
    yield opened
    opened.close()


def old_snapshot(store: EventStore, tenant: str, target: Path, as_of: datetime, months: int) -> int:
    """The old way (until session 6): every record of the window through Python; returns the open count."""
    since = window_start(as_of, months)
    start = datetime(since.year, since.month, since.day, tzinfo=UTC)
    kept: list[UsageRecord] = []
    still_open = 0
    for chunk in current_docs(store, Scope(tenant, None, start), as_of, IDLE):  # type: ignore[arg-type]
        for doc in chunk:
            record = record_from_doc(doc)
            if record.status == "open":
                still_open += 1
            else:
                kept.append(record)
    write_records(target, kept)
    return still_open


def outcome(action: Any) -> Any:
    try:
        return action()
    except Exception as error:
        return error


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=event_batches())
def test_the_sql_file_equals_the_old_way_record_for_record(
    store: EventStore, batches: list[list[dict[str, Any]]], tmp_path_factory: pytest.TempPathFactory
) -> None:
    tenant = f"t{next(_tenants)}"
    for batch in batches:
        service.ingest(store, tenant, batch)
    service.ingest(store, f"other-{tenant}", batches[0])  # another tenant's records stay out
    folder = tmp_path_factory.mktemp("files")
    for as_of, months in itertools.product(MOMENTS, WINDOWS):
        old, new = folder / f"old-{months}.parquet", folder / f"new-{months}.parquet"
        still_open = outcome(lambda: old_snapshot(store, tenant, old, as_of, months))  # noqa: B023
        taken = outcome(
            lambda: take_snapshot(store, tenant, new, as_of=as_of, months=months, idle_timeout=IDLE)  # noqa: B023
        )
        assert not isinstance(still_open, Exception), still_open  # a value past the typed columns too
        assert not isinstance(taken, Exception), taken
        assert pq.read_schema(new).remove_metadata() == pq.read_schema(old).remove_metadata()
        written = list(read_records(new))
        assert written == list(read_records(old)), (as_of, months)
        assert (taken.records, taken.still_open) == (len(written), still_open)


def test_a_value_the_typed_columns_cannot_hold_is_written_exactly_and_the_engines_name_it(
    store: EventStore, tmp_path: Path
) -> None:
    tenant = f"t{next(_tenants)}"
    service.ingest(
        store,
        tenant,
        [
            record_event("fine", "acme", started_at="2025-03-01T10:00:00Z", ended_at="2025-03-01T10:01:00Z"),
            record_event(
                "too-fine",
                "acme",
                started_at="2025-03-01T10:00:00Z",
                ended_at="2025-03-01T10:01:00Z",
                audio_seconds=0.1 + 0.2,  # an SDK's float: 0.30000000000000004
            ),
        ],
    )
    new = tmp_path / "s.parquet"
    taken = take_snapshot(store, tenant, new, as_of=T0 + IDLE, months=1, idle_timeout=IDLE)
    assert taken.records == 2
    written = {r.id: r for r in read_records(new)}
    assert written["too-fine"].audio_seconds == Decimal("0.30000000000000004")
    assert str(written["too-fine"].audio_seconds) == "0.30000000000000004"
    old = tmp_path / "old.parquet"
    old_snapshot(store, tenant, old, T0 + IDLE, 1)
    assert list(read_records(old)) == list(read_records(new))
    with (
        pytest.raises(
            BeyondTypedLayout, match=r"row 2, record 'too-fine': field 'audio_seconds': 0.30000000000000004"
        ),
        canonical_parquet(new, []),
    ):
        pass
