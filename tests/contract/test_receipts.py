"""A face that reads a store's records judges their time-worded guards as the store does (issue 12, item 4).

The store judges ``starts-in-future`` and ``starts-long-ago`` as of each record's first receipt (or the read's
"now" if that is earlier; ``talktime.store.held`` in SQL, ``check`` in Python). A face that reads the records
out (the CLI, the served dashboard's snapshot) gets the store's word on them, a ``Kept``: the moment of each
record received more than an hour before its start or more than a day after it, picked in SQL
(``held.receipt_matters``); every other record breaks no time-worded limit as of its receipt. On both stores,
for drawn records, reads and limits:

* the records SQL picks are exactly those ``check`` flags in time with the loosest limits a file can set;
* ``check`` given the store's word flags each record exactly as the store flags it, whatever "now" the face
  passes (the end of a month long before or after, the read itself);
* the vectorised margin's HELD marks over a snapshot file of the records, given the snapshot's word, are the
  reference's (``held_sql`` joins the moments; ``hold_back`` judges one record at a time).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import event as note
from hypothesis import strategies as st

from contract.test_held import T0, limits, streams
from support.fixtures import postgres_server, postgres_url  # noqa: F401  (fixtures)
from talktime.app import service
from talktime.core.plausibility import Kept, Limits, check, reason_code, receipt_moment
from talktime.core.rating.margin import Guard, session_margins
from talktime.ingest.sessionize import DEFAULT_IDLE_TIMEOUT
from talktime.io.ratecards import load_cost_card, load_price_card
from talktime.io.records_io import read_records
from talktime.simulate.margin_run import margin_vectorised
from talktime.store import EventStore, open_store
from talktime.store.held import LOOSEST
from talktime.store.record_files import write_record_file
from talktime.store.reviews import tenant_kept
from talktime.store.usage import Scope

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TIMED = {"starts-in-future", "starts-long-ago"}
_tenants = itertools.count()


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EventStore]:
    if request.param == "duckdb":
        target = str(tmp_path_factory.mktemp("receipts") / "events.duckdb")
    else:
        target = request.getfixturevalue("postgres_server").create_database()
    opened = open_store(target)
    yield opened
    opened.close()


def _received(store: Any, tenant: str) -> dict[str, datetime]:
    postgres = store.records_dialect == "postgres"
    first = "first_received" if postgres else "epoch_us(first_received)"
    rows = store.read(f"SELECT id, {first} FROM records WHERE tenant = '{tenant}'")
    return {
        str(rid): (at if postgres else _EPOCH + timedelta(microseconds=at)).astimezone(UTC)
        for rid, at in rows
    }


def _timed(reasons: tuple[str, ...]) -> set[str]:
    return {r for r in reasons if reason_code(r) in _TIMED}


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(events=streams(), limit=limits, late=st.booleans(), hours=st.integers(0, 12))
def test_the_stores_word_judges_each_record_as_the_store_does(
    store: EventStore, events: list[dict[str, Any]], limit: Limits, late: bool, hours: int
) -> None:
    tenant = f"receipts-{next(_tenants)}"
    assert service.ingest(store, tenant, events).rejected == 0
    # A read "now" before the records were received (a replay: the read rules), or after (the receipt rules).
    as_of = T0 + timedelta(hours=hours) if not late else datetime.now(UTC) + timedelta(days=900)
    kept = tenant_kept(store, tenant, None, as_of)
    assert isinstance(kept, Kept) and dict(kept) == {}, "no acceptances here: only receipts"
    received = _received(store, tenant)
    current = service.current_records(store, tenant, as_of)
    moment = {c.record.id: receipt_moment(received[c.record.id], as_of) for c in current}
    loosest = {c.record.id for c in current if _timed(check(c.record, LOOSEST, moment[c.record.id]))}
    assert set(kept.received) == loosest, "SQL picks what check flags in time with the loosest limits"
    assert all(kept.received[rid] == moment[rid] for rid in loosest)
    # Given the limits the face judges by (the served snapshot's), only the records those flag in time.
    kept_for = tenant_kept(store, tenant, None, as_of, limit)
    flagged = {c.record.id for c in current if _timed(check(c.record, limit, moment[c.record.id]))}
    assert set(kept_for.received) == flagged, "SQL picks what check flags in time with the face's limits"
    face = replace(limit, accepted=kept)
    face_for = replace(limit, accepted=kept_for)
    for c in current:
        stores = check(c.record, limit, moment[c.record.id])
        for now in (T0 - timedelta(days=40), T0 + timedelta(days=40), as_of):
            assert check(c.record, face, now) == stores, (c.record, now)
            assert check(c.record, face_for, now) == stores, (c.record, now)


@settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(events=streams(), limit=limits, hours=st.integers(0, 12), later=st.sampled_from([0, 3, 40]))
def test_the_vectorised_held_marks_over_a_snapshot_are_the_references(
    store: EventStore,
    events: list[dict[str, Any]],
    limit: Limits,
    hours: int,
    later: int,
    tmp_path_factory: Any,
) -> None:
    tenant = f"receipts-file-{next(_tenants)}"
    assert service.ingest(store, tenant, events).rejected == 0
    as_of = T0 + timedelta(hours=hours)
    path: Path = tmp_path_factory.mktemp("snapshot") / "records.parquet"
    # the snapshot's receipts as the served dashboard takes them: of what the tenant's own limits flag
    written = write_record_file(store, Scope(tenant), as_of, DEFAULT_IDLE_TIMEOUT, path, limit)  # type: ignore[arg-type]
    costs, prices = (
        load_cost_card(Path("costs-informative.toml")),
        load_price_card(Path("plan-call-minute.toml")),
    )
    # The margin judges as of the end of each record's month, or its own "now": later than the read here.
    guard = Guard(replace(limit, accepted=written.accepted), as_of + timedelta(days=later))
    reference = session_margins(list(read_records(path)), costs, prices, guard)
    vectorised = margin_vectorised(path, costs, prices, guard=guard)
    assert vectorised.held_records == reference.held_records
    before = session_margins(list(read_records(path)), costs, prices, Guard(limit, guard.now))
    note(f"held: {len(reference.held_records)}, without the store's word: {len(before.held_records)}")
