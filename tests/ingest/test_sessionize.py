"""Sessionization: events in any order give the same records; gaps closed by rule; contradictions flagged."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from support.events import event, record_event
from talktime.ingest.events import Event, validate_event
from talktime.ingest.sessionize import DEFAULT_IDLE_TIMEOUT, SessionRecord, sessionize

AS_OF = datetime(2025, 3, 2, tzinfo=UTC)  # a day after the calls: every idle timeout has passed


def typed(raws: list[dict[str, Any]]) -> list[Event]:
    out = []
    for raw in raws:
        checked = validate_event(raw)
        assert checked.event is not None, checked.issues
        out.append(checked.event)
    return out


def one(raws: list[dict[str, Any]], as_of: datetime = AS_OF) -> SessionRecord:
    [result] = sessionize(typed(raws), as_of=as_of)
    return result


def at(second: float) -> str:
    return (datetime(2025, 3, 1, 10, tzinfo=UTC) + timedelta(seconds=second)).isoformat()


CALL = [
    event(
        "talktime.connection.opened",
        time=at(0),
        data={"customer": "acme", "provider": "twilio", "kind": "leg"},
    ),
    event("talktime.call.answered", time=at(5)),
    event("talktime.audio.first", time=at(6)),
    event("talktime.speech.started", time=at(7), data={"segment": "s1"}),
    event("talktime.speech.ended", time=at(9.5), data={"segment": "s1"}),
    event("talktime.speech.started", time=at(20), data={"segment": "s2"}),
    event("talktime.speech.ended", time=at(21.25), data={"segment": "s2"}),
    event("talktime.audio.sent", time=at(40), data={"seconds": "30.5"}),
    event("talktime.audio.sent", time=at(50), data={"seconds": "10"}),
    event("talktime.audio.last", time=at(51)),
    event("talktime.channels", time=at(1), data={"channels": 2}),
    event("talktime.tokens", time=at(30), data={"input_tokens": 100, "output_tokens": 20}),
    event("talktime.tokens", time=at(45), data={"input_tokens": 5, "cached_input_tokens": 4}),
    event("talktime.characters", time=at(46), data={"characters": 30, "ssml_characters": 15}),
    event("talktime.characters", time=at(47), data={"characters": 2, "cjk_characters": 2}),
    event("talktime.provider.reported", time=at(53), data={"seconds": 48}),
    event("talktime.connection.closed", time=at(52.3)),
]


def test_a_whole_call_becomes_one_record() -> None:
    result = one(CALL)
    r = result.record
    assert (r.id, r.session, r.customer, r.provider, r.kind, r.status) == (
        "call-1",
        "call-1",
        "acme",
        "twilio",
        "leg",
        "completed",
    )
    assert r.ended_at is not None and (r.ended_at - r.started_at) == timedelta(seconds=52.3)
    assert r.answered_at is not None and (r.answered_at - r.started_at) == timedelta(seconds=5)
    assert r.speech_seconds == Decimal("3.75")
    assert r.audio_seconds == Decimal("40.5")
    assert (r.channels, r.input_tokens, r.output_tokens) == (2, 105, 20)
    assert (r.cached_input_tokens, r.audio_input_tokens) == (4, 0), "parts sum over events; none sent is 0"
    assert (r.characters, r.ssml_characters, r.cjk_characters) == (32, 15, 2)
    assert r.provider_reported_seconds == Decimal(48)
    assert result.flags == () and result.events == len(CALL)


@settings(max_examples=50, deadline=None)
@given(st.randoms(use_true_random=False))
def test_arrival_order_does_not_matter(rng: random.Random) -> None:
    shuffled = list(CALL)
    rng.shuffle(shuffled)
    assert one(shuffled) == one(CALL)


def test_a_late_event_updates_its_session() -> None:
    early = one(CALL[:-2])
    assert early.record.provider_reported_seconds is None
    late = one(CALL)
    assert late.record.provider_reported_seconds == Decimal(48)


def test_a_duplicate_event_changes_nothing_but_the_count() -> None:
    again = one([*CALL, CALL[1]])
    assert again.record == one(CALL).record


def test_participants_are_records_of_their_room() -> None:
    results = sessionize(
        typed(
            [
                event("talktime.participant.joined", "room-9", at(0), data={"participant": "alice"}),
                event(
                    "talktime.participant.joined",
                    "room-9",
                    at(3),
                    data={"participant": "sip-1", "kind": "sip"},
                ),
                event("talktime.participant.left", "room-9", at(60), data={"participant": "alice"}),
                event("talktime.participant.left", "room-9", at(30), data={"participant": "sip-1"}),
            ]
        ),
        as_of=AS_OF,
    )
    assert [(s.record.id, s.record.session, s.record.kind) for s in results] == [
        ("room-9/alice", "room-9", "participant"),
        ("room-9/sip-1", "room-9", "sip"),
    ]


def test_a_session_never_closed_is_closed_at_its_last_event_after_the_idle_timeout() -> None:
    events = CALL[:-1]  # no closed event; last event at 53 s
    result = one(
        events, as_of=datetime(2025, 3, 1, 10, tzinfo=UTC) + timedelta(seconds=53) + DEFAULT_IDLE_TIMEOUT
    )
    assert result.record.status == "completed"
    assert result.record.ended_at == datetime(2025, 3, 1, 10, 0, 53, tzinfo=UTC)
    assert any(f.startswith("idle-timeout") for f in result.flags)


def test_a_session_within_the_idle_timeout_stays_open_for_the_policy_cap() -> None:
    result = one(CALL[:-1], as_of=datetime(2025, 3, 1, 10, 5, tzinfo=UTC))
    assert (result.record.status, result.record.ended_at) == ("open", None)


def test_contradicting_close_times_are_kept_and_flagged() -> None:
    result = one([*CALL, event("talktime.connection.closed", time=at(70), id="second-close")])
    assert result.record.ended_at == datetime(2025, 3, 1, 10, 1, 10, tzinfo=UTC)
    assert any("2 different closed times" in f for f in result.flags)


def test_contradicting_provider_reports_are_flagged() -> None:
    result = one([*CALL, event("talktime.provider.reported", time=at(54), data={"seconds": 60})])
    assert result.record.provider_reported_seconds == Decimal(60)  # the latest event's
    assert any("provider-reported seconds reported as" in f for f in result.flags)


def test_an_event_outside_the_connection_widens_it_and_is_flagged() -> None:
    result = one([*CALL, event("talktime.audio.last", time=at(80), id="late-audio")])
    assert result.record.ended_at == datetime(2025, 3, 1, 10, 1, 20, tzinfo=UTC)
    assert any("fall outside the connection" in f for f in result.flags)


def test_a_session_without_its_opened_event_starts_at_its_first_event_flagged() -> None:
    result = one(CALL[1:])
    assert result.record.started_at == datetime(
        2025, 3, 1, 10, 0, 5, tzinfo=UTC
    )  # answered; not channels at 1 s
    assert any(f.startswith("no opened event") for f in result.flags)


def test_a_speech_segment_without_its_end_is_not_counted_and_is_flagged() -> None:
    result = one(
        [e for e in CALL if not (e["type"] == "talktime.speech.ended" and e["data"]["segment"] == "s2")]
    )
    assert result.record.speech_seconds == Decimal("2.5")
    assert any("'s2' has no end" in f for f in result.flags)


def test_two_different_records_under_one_id_are_flagged() -> None:
    first = record_event("r1")
    second = {**record_event("r1", ended_at="2025-03-01T10:01:00Z"), "id": "ev-r1-again"}
    [result] = sessionize(typed([first, second]), as_of=AS_OF)
    assert any("2 different records under this id" in f for f in result.flags)
    [again] = sessionize(typed([second, first]), as_of=AS_OF)
    assert again == result
