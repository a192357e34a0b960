"""Event validation: every problem of an event reported at once, each with a field path and a reason."""

from __future__ import annotations

from decimal import Decimal

import pytest

from support.events import event, record_event
from talktime.core.records import UsageRecord
from talktime.ingest.events import SecondsData, validate_event


def issues(raw: object) -> dict[str, str]:
    checked = validate_event(raw)
    assert checked.event is None
    return {i.field: i.reason for i in checked.issues}


def test_a_valid_lifecycle_event_is_typed() -> None:
    checked = validate_event(event("talktime.audio.sent", data={"seconds": 46.9, "customer": "acme"}))
    assert checked.event is not None and not checked.issues
    assert isinstance(checked.event.payload, SecondsData)
    assert checked.event.payload.seconds == Decimal("46.9")  # exact, not 46.899999...


def test_a_record_event_takes_its_id_from_the_event_unless_data_says() -> None:
    raw = record_event("r1")
    del raw["data"]["id"]
    checked = validate_event(raw)
    assert checked.event is not None and isinstance(checked.event.payload, UsageRecord)
    assert checked.event.payload.id == "ev-r1"


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"time": "2025-03-01T10:00:00"}, "time", "no UTC offset"),
        ({"time": 1740823200}, "time", "ISO 8601"),
        ({"type": "talktime.nope"}, "type", "not a known event type"),
        ({"id": 7}, "id", "non-empty string"),
        ({"specversion": "0.3"}, "specversion", "1.0"),
        ({"data": {"channels": "two"}, "type": "talktime.channels"}, "data.channels", "integer"),
        ({"data": {"seconds": -1}, "type": "talktime.audio.sent"}, "data.seconds", "greater than or equal"),
        ({"data": {"colour": "red"}}, "data.colour", "data.attrs"),
        ({"data": {"kind": "robot"}}, "data.kind", "robot"),
        ({"data": [1, 2]}, "data", "JSON object"),
        (
            {"type": "talktime.tokens", "data": {"input_tokens": 10, "cached_input_tokens": 11}},
            "data.cached_input_tokens",
            "more than input_tokens 10",
        ),
        (
            {"type": "talktime.characters", "data": {"characters": 5, "ssml_characters": 9}},
            "data.ssml_characters",
            "more than characters 5",
        ),
    ],
)
def test_bad_fields_are_named(change: dict[str, object], field: str, words: str) -> None:
    raw = {**event("talktime.connection.opened"), **change}
    found = issues(raw)
    assert field in found, found
    assert words in found[field]


def test_reasons_are_in_our_words_and_say_what_came() -> None:
    """A developer reads the reason and the value sent, never pydantic's internals."""
    opened = event("talktime.connection.opened")
    no_version = {k: v for k, v in opened.items() if k != "specversion"}
    assert issues(no_version)["specversion"] == "is required: '1.0' (CloudEvents 1.0)"
    bad_seconds = issues({**opened, "type": "talktime.audio.sent", "data": {"seconds": "abc"}})
    assert bad_seconds["data.seconds"] == "Input should be a valid decimal, got 'abc'"
    missing = issues({**opened, "type": "talktime.audio.sent", "data": {}})
    assert missing["data.seconds"] == "is required"
    tokens = {"input_tokens": 10, "cached_input_tokens": 11}
    parts = issues({**opened, "type": "talktime.tokens", "data": tokens})
    assert parts["data.cached_input_tokens"] == "11 is more than input_tokens 10, which it is part of"
    assert not any("Value error" in reason for reason in parts.values())


def test_every_problem_is_reported_at_once() -> None:
    raw = {**event("talktime.channels", data={"channels": 0}), "time": "yesterday", "source": ""}
    assert set(issues(raw)) == {"time", "source", "data.channels"}


def test_lifecycle_events_need_a_time_and_a_subject() -> None:
    assert set(issues(event("talktime.call.answered", subject=None, time=None))) == {"time", "subject"}


def test_a_bad_record_names_the_record_field() -> None:
    found = issues(record_event("r1", ended_at="2025-03-01T09:00:00Z"))
    assert "before started_at" in found["data.ended_at"]


def test_a_non_object_is_refused() -> None:
    assert "JSON object" in issues([1, 2])[""]
