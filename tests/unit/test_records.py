"""Usage records: what parse_record accepts, and the bad input it refuses (issue 2, section 2, "Bad input").

Every refusal must name the record id and the field, so a user can find and fix the row; every error is also
a ValueError for callers that do not know talktime.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from talktime.core.records import RECORD_FIELDS, UsageRecord, parse_record, record_to_row
from talktime.errors import InputError, RecordError, TalktimeError

START = "2024-01-01T00:00:00+00:00"
END = "2024-01-01T00:01:00+00:00"


def parse(**fields: Any) -> UsageRecord:
    return parse_record({"id": "r9", "started_at": START, "ended_at": END, **fields})


def test_field_names_are_exactly_the_issue_list() -> None:
    assert RECORD_FIELDS == (
        "id", "customer", "provider", "product", "session", "kind", "status", "started_at", "ended_at",
        "answered_at", "first_audio_at", "last_audio_at", "audio_seconds", "speech_seconds", "channels",
        "provider_reported_seconds", "characters", "input_tokens", "output_tokens",
        "cached_input_tokens", "cache_write_tokens", "audio_input_tokens", "audio_output_tokens",
        "ssml_characters", "cjk_characters",
    )  # fmt: skip


def test_only_id_start_and_end_are_required_and_defaults_apply() -> None:
    r = parse_record({"id": "a", "started_at": START, "ended_at": END})
    assert r.channels == 1
    assert r.status == "completed"
    assert r.kind is None
    assert r.attrs == {}


def test_loose_values_become_typed_exact_values() -> None:
    r = parse(
        audio_seconds="12.345",
        speech_seconds=Decimal("3.5"),
        provider_reported_seconds=60,
        channels="2",
        characters="1200",
        kind=" SIP ",
        status="Completed",
        customer="  acme ",
        **{"attr.region": "eu"},
    )
    assert r.audio_seconds == Decimal("12.345")
    assert isinstance(r.audio_seconds, Decimal)
    assert r.speech_seconds == Decimal("3.5")
    assert r.provider_reported_seconds == 60
    assert r.channels == 2
    assert r.characters == 1200
    assert r.kind == "sip"
    assert r.status == "completed"
    assert r.customer == "acme"
    assert r.attrs == {"region": "eu"}


def test_a_python_float_is_read_through_its_shortest_text_not_its_binary_value() -> None:
    # 0.1 as a binary double is 0.1000000000000000055...; the writer meant 0.1.
    assert parse(audio_seconds=0.1).audio_seconds == Decimal("0.1")


def test_blank_strings_are_absent() -> None:
    r = parse(customer="", audio_seconds=" ", channels="", **{"attr.note": ""})
    assert r.customer is None
    assert r.audio_seconds is None
    assert r.channels == 1
    assert r.attrs == {}


def test_z_and_other_offsets_are_accepted_and_compared_as_instants() -> None:
    r = parse_record(
        {"id": "z", "started_at": "2024-01-01T01:00:00+01:00", "ended_at": "2024-01-01T00:00:30Z"}
    )
    assert r.ended_at is not None
    assert r.ended_at - r.started_at == timedelta(seconds=30)


def test_attrs_mapping_and_attr_columns_both_work() -> None:
    r = parse(attrs={"a": "1"}, **{"attr.b": "2"})
    assert r.attrs == {"a": "1", "b": "2"}
    assert r.value_of("attr.b") == "2"
    assert r.value_of("attr.missing") is None


def test_session_key_defaults_to_the_record_itself() -> None:
    assert parse().session_key != parse(id="other").session_key
    assert parse(session="s1").session_key == parse(id="other", session="s1").session_key


def test_non_completed_record_may_have_no_end() -> None:
    for status in ("failed", "unanswered", "busy", "canceled", "open"):
        assert parse_record({"id": "a", "started_at": START, "status": status}).ended_at is None


def test_record_to_row_is_the_inverse_of_parse_record() -> None:
    r = parse(
        customer="acme", kind="leg", answered_at="2024-01-01T00:00:05+00:00", audio_seconds="0.1",
        channels=2, input_tokens=10, **{"attr.region": "eu"},
    )  # fmt: skip
    row = record_to_row(r)
    assert row["audio_seconds"] == "0.1"
    assert row["attr.region"] == "eu"
    assert row["ended_at"] == END
    assert parse_record(row) == r


# --- bad input ----------------------------------------------------------------------------------------------

BAD_RECORDS = [
    pytest.param(
        {"ended_at": "2023-12-31T23:59:00+00:00"}, "ended_at", "before started_at", id="inverted times"
    ),
    pytest.param(
        {"answered_at": "2024-01-01T00:02:00+00:00"}, "answered_at", "after ended_at", id="answer after end"
    ),
    pytest.param(
        {"answered_at": "2023-12-31T00:00:00+00:00"},
        "answered_at",
        "before started_at",
        id="answer before start",
    ),
    pytest.param(
        {"first_audio_at": "2024-01-01T00:00:30+00:00", "last_audio_at": "2024-01-01T00:00:10+00:00"},
        "last_audio_at",
        "before first_audio_at",
        id="audio span inverted",
    ),
    pytest.param({"audio_seconds": "-1"}, "audio_seconds", "non-negative", id="negative audio seconds"),
    pytest.param({"speech_seconds": "-0.5"}, "speech_seconds", "non-negative", id="negative speech seconds"),
    pytest.param(
        {"provider_reported_seconds": "-3"},
        "provider_reported_seconds",
        "non-negative",
        id="negative reported",
    ),
    pytest.param({"characters": "-3"}, "characters", "negative", id="negative characters"),
    pytest.param({"audio_seconds": "NaN"}, "audio_seconds", "finite", id="NaN seconds"),
    pytest.param({"audio_seconds": "abc"}, "audio_seconds", "not a decimal", id="seconds not a number"),
    pytest.param({"audio_seconds": True}, "audio_seconds", "not a number", id="a boolean is not seconds"),
    pytest.param({"ended_at": None}, "ended_at", "completed record needs an end", id="completed without end"),
    pytest.param(
        {"ended_at": ""}, "ended_at", "completed record needs an end", id="completed with blank end"
    ),
    pytest.param({"kind": "robot"}, "kind", "'robot' is not one of", id="unknown kind"),
    pytest.param({"status": "exploded"}, "status", "'exploded' is not one of", id="unknown status"),
    pytest.param({"channels": "0"}, "channels", "not a positive whole number", id="channels 0"),
    pytest.param({"channels": -2}, "channels", "not a positive whole number", id="channels negative"),
    pytest.param({"channels": "1.5"}, "channels", "not a whole number", id="channels fractional"),
    pytest.param({"ended_at": "2024-01-01T00:01:00"}, "ended_at", "no UTC offset", id="end without offset"),
    pytest.param(
        {"started_at": "2024-01-01T00:00:00"}, "started_at", "no UTC offset", id="start without offset"
    ),
    pytest.param(
        {"answered_at": "2024-01-01T00:00:05"}, "answered_at", "no UTC offset", id="answer without offset"
    ),
    pytest.param({"ended_at": "yesterday"}, "ended_at", "not an ISO 8601", id="not a timestamp"),
    pytest.param({"duration": "5"}, "duration", "attr.duration", id="unknown record column"),
    pytest.param({"started_at": None}, "started_at", "required", id="no start"),
]


@pytest.mark.parametrize(("fields", "field", "why"), BAD_RECORDS)
def test_bad_record_names_record_and_field(fields: dict[str, Any], field: str, why: str) -> None:
    with pytest.raises(RecordError) as caught:
        parse(**fields)
    error = caught.value
    assert error.field == field
    assert error.record_id == "r9"
    message = str(error)
    assert "'r9'" in message
    assert repr(field) in message
    assert why in message
    assert isinstance(error, ValueError)
    assert isinstance(error, InputError)
    assert isinstance(error, TalktimeError)


@pytest.mark.parametrize("record_id", [None, "", "   "])
def test_missing_id_is_an_error_on_the_id_field(record_id: str | None) -> None:
    with pytest.raises(RecordError) as caught:
        parse_record({"id": record_id, "started_at": START, "ended_at": END})
    assert caught.value.field == "id"
    assert "required" in str(caught.value)


def test_typed_construction_is_validated_too() -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    with pytest.raises(RecordError, match="'channels'"):
        UsageRecord(id="t", started_at=start, ended_at=start, channels=0)
    with pytest.raises(RecordError, match="no UTC offset"):
        UsageRecord(id="t", started_at=datetime(2024, 1, 1), ended_at=None, status="failed")
    with pytest.raises(RecordError, match="'ended_at'"):
        UsageRecord(id="t", started_at=start, ended_at=start - timedelta(seconds=1))


def test_zero_length_record_is_valid() -> None:
    assert parse(ended_at=START).ended_at == parse(ended_at=START).started_at


def test_offsets_other_than_utc_are_kept_exact() -> None:
    r = parse_record({"id": "a", "started_at": "2024-01-01T05:30:00+05:30", "ended_at": END})
    assert r.started_at.utcoffset() == timedelta(hours=5, minutes=30)
    assert r.started_at == datetime(2024, 1, 1, tzinfo=UTC)
