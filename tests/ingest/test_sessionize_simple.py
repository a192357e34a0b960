"""The fold of a call opened, maybe answered, maybe closed (sessionize's _simple_fold, the commonest group)
must give exactly the record, flags, event count and idle moment the general fold gives: drawn groups of
that shape and near it (a second event of a type, another type), with contradicting texts, attributes and
statuses, moments outside the connection, equal instants in other offsets, and every side of the idle
timeout."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from support.events import event
from talktime.ingest.events import Event, validate_event
from talktime.ingest.sessionize import DEFAULT_IDLE_TIMEOUT, _fold_group, _simple_fold, sessionize

T0 = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
OFFSETS = (UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5, minutes=-30)))
OPENED, ANSWERED, CLOSED = (
    "talktime.connection.opened",
    "talktime.call.answered",
    "talktime.connection.closed",
)


def typed(raw: dict[str, Any]) -> Event:
    checked = validate_event(raw)
    assert checked.event is not None, checked.issues
    return checked.event


@st.composite
def moment(draw: st.DrawFn) -> str:
    # few distinct seconds, so equal instants (in other offsets) and ties in the sort are drawn often
    at = T0 + timedelta(seconds=draw(st.sampled_from([0, 0, 5, 30, 3600, 7200])))
    return at.astimezone(draw(st.sampled_from(OFFSETS))).isoformat()


@st.composite
def data(draw: st.DrawFn, type_: str, leg: str | None) -> dict[str, Any]:
    found: dict[str, Any] = {} if leg is None else {"leg": leg}
    for name, values in (
        ("customer", ["acme", "beta"]),
        ("provider", ["twilio"]),
        ("product", ["voice", "sip"]),
        ("kind", ["leg", "sip", "participant"]),
    ):
        if draw(st.booleans()):
            found[name] = draw(st.sampled_from(values))
    if draw(st.booleans()):  # often the same key, so two events' attributes contradict
        found["attrs"] = draw(
            st.dictionaries(st.sampled_from(["model", "model", "region"]), st.sampled_from(["a", "b"]))
        )
    if type_ == CLOSED and draw(st.booleans()):
        found["status"] = draw(st.sampled_from(["completed", "failed", "busy"]))
    return found


@st.composite
def group(draw: st.DrawFn) -> list[Event]:
    """Events of one record: mostly the simple shape, sometimes a type twice, missing or another type."""
    leg = draw(st.sampled_from([None, "a"]))
    types = draw(
        st.lists(
            st.sampled_from([OPENED, OPENED, ANSWERED, CLOSED, CLOSED, "talktime.audio.first"]),
            min_size=1,
            max_size=4,
        )
    )
    if draw(st.integers(0, 3)) > 0:  # most groups: the simple shape
        types = [OPENED, *sorted({t for t in types if t in (ANSWERED, CLOSED)})]
    return [
        typed(
            event(
                type_,
                "call-1",
                draw(moment()),
                id=f"e{n}",
                source=draw(st.sampled_from(["/a", "/b"])),
                data=draw(data(type_, leg)),
            )
        )
        for n, type_ in enumerate(draw(st.permutations(types)))
    ]


@settings(max_examples=400, deadline=None)
@given(events=group(), after=st.sampled_from([0, 1800, 3599, 3600, 3601, 20_000]))
def test_the_simple_fold_equals_the_general_fold(events: list[Event], after: int) -> None:
    as_of = T0 + timedelta(seconds=after)
    leg = events[0].leg
    simple = _simple_fold("call-1", leg, events, as_of, DEFAULT_IDLE_TIMEOUT)
    general = _fold_group("call-1", leg, events, as_of, DEFAULT_IDLE_TIMEOUT)
    if simple is not None:
        assert simple == general
        # equal values in other offsets are different answers: the chosen moments must be the same ones
        for name in ("started_at", "ended_at", "answered_at"):
            mine, theirs = getattr(simple.record, name), getattr(general.record, name)
            assert (mine is None and theirs is None) or mine.utcoffset() == theirs.utcoffset(), name
        assert simple.idle_from is None or simple.idle_from.utcoffset() == general.idle_from.utcoffset()
    else:  # only another shape falls back
        kinds = [e.type for e in events]
        assert (
            kinds.count(OPENED) != 1
            or len(kinds) != len(set(kinds))
            or not set(kinds) <= {OPENED, ANSWERED, CLOSED}
        )


def test_a_voice_frameworks_call_takes_the_simple_fold_when_it_opens_and_when_it_closes() -> None:
    opened = typed(event(OPENED, "call-7", "2025-03-01T10:00:00Z", data={"customer": "acme", "kind": "leg"}))
    closed = typed(event(CLOSED, "call-7", "2025-03-01T11:01:30+01:00", data={"status": "failed"}))
    as_of = T0 + timedelta(minutes=5)
    assert _simple_fold("call-7", None, [opened], as_of, DEFAULT_IDLE_TIMEOUT) is not None
    (open_record,) = sessionize([opened], as_of=as_of)
    assert (open_record.record.status, open_record.record.ended_at) == ("open", None)
    (record,) = sessionize([closed, opened], as_of=as_of)
    assert record.record.status == "failed" and record.events == 2 and record.flags == ()
    assert record.record.ended_at == datetime(2025, 3, 1, 10, 1, 30, tzinfo=UTC)
