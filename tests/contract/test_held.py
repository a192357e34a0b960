"""The guards in SQL flag exactly what ``check`` flags (issue 12, item 4).

``GET /v1/usage`` leaves flagged records out of the compiled policy's query with one SQL predicate per
reason (``talktime.store.held``), made from the tenant's limits. On both stores, for drawn records (whole
records and open sessions the idle timeout closes at the read, values on both sides of every limit, a read
"now" before and after the records were received) and drawn limits, each predicate is true for exactly the
records whose ``check`` reasons carry its code, judged as of the record's first receipt.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import event as note
from hypothesis import strategies as st

from support.events import event
from support.fixtures import postgres_server, postgres_url  # noqa: F401  (fixtures)
from talktime.app import service
from talktime.core.plausibility import REASONS, Limits, check, reason_code
from talktime.engine.dialects import DUCKDB_WIDE, POSTGRES
from talktime.ingest.sessionize import DEFAULT_IDLE_TIMEOUT
from talktime.store import EventStore, open_store
from talktime.store.held import CHARACTER_FIELDS, TOKEN_FIELDS, predicates
from talktime.store.usage import Scope, _Filter

T0 = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_tenants = itertools.count()


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EventStore]:
    if request.param == "duckdb":
        target = str(tmp_path_factory.mktemp("held") / "events.duckdb")
    else:
        target = request.getfixturevalue("postgres_server").create_database()
    opened = open_store(target)
    yield opened
    opened.close()


limits = st.builds(
    Limits,
    max_call_hours=st.integers(1, 3),
    max_future_hours=st.integers(1, 48),
    max_past_days=st.integers(1, 3),
    max_tokens=st.integers(1, 1000),
    max_characters=st.integers(1, 1000),
    slack_seconds=st.integers(1, 3),
)


#: Microseconds near the limits' edges (whole hours and seconds, one microsecond either side), or any.
_EDGES = st.sampled_from([h * 3_600_000_000 + d for h in range(5) for d in (-1, 0, 1)])
_MICROS = st.one_of(_EDGES, st.integers(0, 5 * 3600 * 1_000_000))


def _seconds(draw: st.DrawFn) -> str | None:
    if draw(st.integers(0, 3)) == 0:
        return None
    micros = max(0, draw(_MICROS) + draw(st.sampled_from([0, 0, 1_000_000, 2_000_000, 3_000_000])))
    return str(Decimal(micros).scaleb(-6))


@st.composite
def whole_record(draw: st.DrawFn, number: int) -> dict[str, Any]:
    """A talktime.record event: lengths, audio, counts and starts on both sides of the drawn limits."""
    days = draw(st.sampled_from([-5, -3, -1, 0, 1, 2, 5]))
    start = T0 + timedelta(days=days, microseconds=draw(st.integers(-(10**10), 10**10)))
    data: dict[str, Any] = {
        "id": f"r{number}",
        "customer": "acme",
        "kind": "leg",
        "started_at": start.isoformat(),
    }
    if draw(st.booleans()):
        data["ended_at"] = (start + timedelta(microseconds=max(0, draw(_MICROS)))).isoformat()
    else:
        data["status"] = "open"
    for name in ("audio_seconds", "speech_seconds", "provider_reported_seconds"):
        value = _seconds(draw)
        if value is not None:
            data[name] = value
    for name in draw(st.lists(st.sampled_from((*TOKEN_FIELDS, *CHARACTER_FIELDS)), max_size=3, unique=True)):
        data[name] = draw(st.integers(0, 2000))
    for part, whole in (
        ("cached_input_tokens", "input_tokens"),
        ("cache_write_tokens", "input_tokens"),
        ("audio_input_tokens", "input_tokens"),
        ("audio_output_tokens", "output_tokens"),
        ("ssml_characters", "characters"),
        ("cjk_characters", "characters"),
    ):
        if part in data:
            data[whole] = max(data.get(whole, 0), data[part])
    return event("talktime.record", subject=None, time=T0.isoformat(), id=f"ev-{number}", data=data)


@st.composite
def open_session(draw: st.DrawFn, number: int) -> list[dict[str, Any]]:
    """An open session: opened, audio sent; the idle timeout closes it at its last event when read."""
    start = T0 + timedelta(seconds=draw(st.integers(0, 3 * 3600)))
    last = start + timedelta(seconds=draw(st.integers(0, 4 * 3600)))
    subject = f"s{number}"
    seconds = draw(st.integers(0, 5 * 3600))
    return [
        event(
            "talktime.connection.opened", subject, start.isoformat(), data={"customer": "acme", "kind": "leg"}
        ),
        event("talktime.audio.sent", subject, last.isoformat(), data={"seconds": seconds}),
    ]


@st.composite
def streams(draw: st.DrawFn) -> list[dict[str, Any]]:
    events = [draw(whole_record(n)) for n in range(draw(st.integers(1, 6)))]
    for n in range(draw(st.integers(0, 2))):
        events.extend(draw(open_session(n)))
    return events


@settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(events=streams(), limit=limits, late=st.booleans(), hours=st.integers(0, 12))
def test_each_predicate_flags_exactly_what_check_flags(
    store: EventStore, events: list[dict[str, Any]], limit: Limits, late: bool, hours: int
) -> None:
    tenant = f"held-{next(_tenants)}"
    result = service.ingest(store, tenant, events)
    assert result.rejected == 0, result.results
    # A read "now" before the records were received (a replay), or long after it (the first receipt rules).
    as_of = T0 + timedelta(hours=hours) if not late else datetime.now(UTC) + timedelta(days=900)
    dialect = POSTGRES if store.records_dialect == "postgres" else DUCKDB_WIDE  # type: ignore[attr-defined]
    f = _Filter(dialect, Scope(tenant), as_of, DEFAULT_IDLE_TIMEOUT)
    found = predicates(dialect, f.ended, as_of, limit)
    assert set(found) == set(REASONS)
    columns = ", ".join(f"coalesce({sql}, false)" for sql in found.values())
    first = "first_received" if dialect is POSTGRES else "epoch_us(first_received)"
    rows = store.read(f"SELECT id, {first}, {columns} FROM records WHERE {f.where}")  # type: ignore[attr-defined]
    in_sql = {row[0]: {code for code, hit in zip(found, row[2:], strict=True) if hit} for row in rows}
    received = {
        row[0]: row[1] if dialect is POSTGRES else _EPOCH + timedelta(microseconds=row[1]) for row in rows
    }
    current = service.current_records(store, tenant, as_of)
    assert {c.record.id for c in current} == set(in_sql)
    for c in current:
        now = min(received[c.record.id].astimezone(UTC), as_of)
        expected = {reason_code(r) for r in check(c.record, limit, now)}
        assert in_sql[c.record.id] == expected, (c.record, now)
        for code in expected:
            note(code)
