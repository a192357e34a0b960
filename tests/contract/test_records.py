"""The records a store keeps, batch by batch, against the records sessionize makes from every event.

On both stores (DuckDB file, PostgreSQL): for drawn event streams (every lifecycle type, whole records
under colliding ids, offsets, events out of order, resent, cut into batches) the kept rows equal the rows
a rebuild derives from the events, and every read of them (the records as of a moment, usage totals and
lists, one record with its trail and flags) equals the same read made the old way, by sessionizing all
of the tenant's events (``service.session_records``) and metering with the scalar reference.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support.contract_checks import snapshot
from support.event_strategies import T0, event_batches
from support.events import event, record_event
from support.fixtures import postgres_server, postgres_url  # noqa: F401  (fixtures)
from talktime.app import service
from talktime.core.records import record_to_row
from talktime.errors import InputError
from talktime.providers import builtin
from talktime.store import EventStore, RawEvent, open_store
from talktime.store.records import ROW_SCHEMA

MOMENTS = (T0 + timedelta(hours=2, minutes=10), T0 + timedelta(hours=9))
POLICIES = ("twilio-voice", "deepgram-streaming", "openai-chat", "assemblyai-streaming")
_tenants = itertools.count()


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EventStore]:
    if request.param == "duckdb":
        target = str(tmp_path_factory.mktemp("records") / "events.duckdb")
    else:
        target = request.getfixturevalue("postgres_server").create_database()
    opened = open_store(target)
    yield opened
    opened.close()


def outcome(action: Any) -> Any:
    """The answer, or the error it raised (type and message): both paths must fail alike too."""
    try:
        return action()
    except Exception as error:
        return (type(error).__name__, str(error))


def ingest_all(store: EventStore, tenant: str, batches: list[list[dict[str, Any]]]) -> None:
    for batch in batches:
        service.ingest(store, tenant, batch)


def check_reads(store: EventStore, tenant: str) -> None:
    for as_of in MOMENTS:
        sessions = service.session_records(store, tenant, as_of)
        kept = service.current_records(store, tenant, as_of)
        assert [record_to_row(c.record) for c in kept] == [record_to_row(s.record) for s in sessions]
        assert [c.record for c in kept] == [s.record for s in sessions]
        assert [c.flagged for c in kept] == [bool(s.flags) for s in sessions]
        for policy_id in POLICIES:
            policy = builtin(policy_id)
            for customer, start, end in ((None, None, None), ("acme", T0, T0 + timedelta(hours=1))):
                expected = outcome(lambda: service.usage(sessions, policy, customer, start, end))  # noqa: B023
                got = outcome(
                    lambda: service.read_usage(store, tenant, policy, customer, start, end, as_of)  # noqa: B023
                )
                assert got == expected, (policy_id, customer, as_of)
            for s in sessions:
                rid = s.record.id
                # A policy that rounds per record meters the record alone (the old read metered every
                # record of the customer, so another record's error failed this one's read).
                alone = [s] if service._record_scoped(policy) else sessions
                expected = outcome(lambda: service.explain_record(alone, policy, rid))  # noqa: B023
                got = outcome(lambda: service.read_record(store, tenant, policy, rid, as_of))  # noqa: B023
                if isinstance(got, dict):  # read without guards (as read_usage above): nothing is held
                    assert (got.pop("held"), got.pop("reasons")) == (False, []), (policy_id, rid)
                assert got == expected, (policy_id, rid, as_of)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=event_batches())
def test_kept_records_equal_a_rebuild_and_every_read_equals_sessionizing_all_events(
    store: EventStore, batches: list[list[dict[str, Any]]]
) -> None:
    tenant = f"t{next(_tenants)}"
    ingest_all(store, tenant, batches)
    kept = snapshot(store, tenant)
    check_reads(store, tenant)
    store.rebuild_records()  # type: ignore[attr-defined]
    assert snapshot(store, tenant) == kept


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=event_batches(max_events=12), order=st.randoms(use_true_random=False))
def test_the_same_events_in_any_batches_and_order_keep_the_same_records(
    store: EventStore, batches: list[list[dict[str, Any]]], order: Any
) -> None:
    first, second = f"t{next(_tenants)}", f"t{next(_tenants)}"
    ingest_all(store, first, batches)
    kept: dict[tuple[str, str], dict[str, Any]] = {}
    for e in (e for batch in batches for e in batch):  # what the store kept: the first under each id
        kept.setdefault((e["source"], e["id"]), e)
    events = list(kept.values())
    order.shuffle(events)
    ingest_all(store, second, [[e] for e in events])  # one by one, another order
    assert [row[1:] for row in _without_received(store, first)] == [
        row[1:] for row in _without_received(store, second)
    ]


def _without_received(store: EventStore, tenant: str) -> list[tuple[Any, ...]]:
    names = ROW_SCHEMA.names
    dropped = {names.index("first_received"), names.index("last_received")}
    return [tuple(v for i, v in enumerate(row) if i not in dropped) for row in snapshot(store, tenant)]


def test_a_late_event_re_derives_its_own_record_only(store: EventStore) -> None:
    tenant = f"t{next(_tenants)}"
    opened = event("talktime.connection.opened", "call-1", "2025-03-01T10:00:00Z", data={"customer": "acme"})
    service.ingest(store, tenant, [opened, record_event("r1"), record_event("r2")])
    before = {row[0]: row for row in snapshot(store, tenant)}
    assert before["call-1"][ROW_SCHEMA.names.index("status")] == "open"
    closed = event("talktime.connection.closed", "call-1", "2025-03-01T10:02:00Z")
    service.ingest(store, tenant, [closed])
    after = {row[0]: row for row in snapshot(store, tenant)}
    assert after["r1"] == before["r1"] and after["r2"] == before["r2"]
    assert after["call-1"][ROW_SCHEMA.names.index("status")] == "completed"
    assert after["call-1"][ROW_SCHEMA.names.index("events")] == 2


def test_an_open_session_closes_by_the_idle_timeout_when_read(store: EventStore) -> None:
    tenant = f"t{next(_tenants)}"
    opened = event(
        "talktime.connection.opened",
        "call-9",
        "2025-03-01T10:00:00Z",
        data={"customer": "acme", "kind": "leg"},
    )
    answered = event("talktime.call.answered", "call-9", "2025-03-01T10:00:05Z")
    service.ingest(store, tenant, [opened, answered])
    policy = builtin("twilio-voice")
    soon = service.read_usage(store, tenant, policy, None, None, None, T0 + timedelta(minutes=59))
    assert soon["open"] == ["call-9"] and soon["totals"]["records"] == 0
    later_at = T0 + timedelta(hours=1, seconds=5)
    later = service.read_usage(store, tenant, policy, None, None, None, later_at)
    assert later["open"] == [] and later["with_flags"] == ["call-9"] and later["totals"]["records"] == 1
    record = service.read_record(store, tenant, policy, "call-9", later_at)
    assert record["status"] == "completed" and record["flags"][0].startswith("no opened") is False
    assert any(flag.startswith("idle-timeout") for flag in record["flags"])
    assert snapshot(store, tenant)[0][ROW_SCHEMA.names.index("status")] == "open"  # stored as it came


def test_a_batch_whose_record_cannot_be_made_stores_neither_events_nor_records(store: EventStore) -> None:
    """Events and records are written in one transaction: when re-deriving a touched record fails (here a
    stored event no longer validates, written into the table by hand), the batch leaves no trace."""
    tenant = f"t{next(_tenants)}"
    service.ingest(store, tenant, [event("talktime.connection.opened", "call-1", data={"customer": "acme"})])
    _spoil_stored_events(store, tenant)
    kept, count = snapshot(store, tenant), store.count(tenant)
    late = RawEvent(
        "/tests", "late", "talktime.call.answered", "call-1", datetime(2025, 3, 1, 10, tzinfo=UTC), "{}"
    )
    with pytest.raises(InputError, match="no longer validates"):
        store.append(tenant, [late])
    assert snapshot(store, tenant) == kept and store.count(tenant) == count


def _spoil_stored_events(store: EventStore, tenant: str) -> None:
    """Give the tenant's stored events data that no event type accepts (as a tightened rule would)."""
    if store.records_dialect == "duckdb":  # type: ignore[attr-defined]
        store._con.execute(  # type: ignore[attr-defined]
            "UPDATE events SET data = '{\"colour\": 1}' WHERE tenant = ?", [tenant]
        )
    else:
        store._con.execute(  # type: ignore[attr-defined]
            "UPDATE events SET data = '{\"colour\": 1}' WHERE tenant = %s", [tenant]
        )
