"""Plausibility guards (issue 12, item 4): a valid record that cannot be right is flagged with every reason,
each naming the field, what was found and the limit; a plausible record gets no flag."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime
from typing import Any

import pytest

from talktime.core.plausibility import (
    REASONS,
    Guards,
    GuardsError,
    Limits,
    check,
    guards_from_dict,
    reason_code,
)
from talktime.core.records import UsageRecord, parse_record

NOW = datetime(2026, 11, 15, tzinfo=UTC)


def rec(**fields: Any) -> UsageRecord:
    base = {"id": "r1", "started_at": "2026-11-10T10:00:00+00:00", "ended_at": "2026-11-10T10:05:00+00:00"}
    return parse_record({**base, **fields})


def codes(record: UsageRecord, limits: Limits | None = None) -> list[str]:
    return [reason_code(flag) for flag in check(record, limits or Limits(), NOW)]


def test_an_ordinary_call_is_plausible() -> None:
    assert (
        check(
            rec(audio_seconds="299", speech_seconds="120", input_tokens=9000, characters=800), Limits(), NOW
        )
        == ()
    )


def test_the_record_ending_in_2035_is_flagged_with_its_length_and_the_limit() -> None:
    flags = check(rec(ended_at="2035-01-01T00:00:00+00:00"), Limits(), NOW)
    assert [reason_code(f) for f in flags] == ["call-too-long"]
    assert "over the 24 h limit" in flags[0]
    assert "256917600 s (71366 h) from start to end" in flags[0]


def test_a_call_of_exactly_the_limit_passes_and_one_microsecond_more_is_flagged() -> None:
    assert codes(rec(ended_at="2026-11-11T10:00:00+00:00")) == []
    assert codes(rec(ended_at="2026-11-11T10:00:00.000001+00:00")) == ["call-too-long"]


def test_audio_sent_of_a_billion_seconds_is_flagged_on_a_closed_and_on_an_open_record() -> None:
    assert codes(rec(audio_seconds="1000000000")) == ["audio-longer-than-call"]
    still_open = rec(ended_at=None, status="open", audio_seconds="1000000000")
    flags = check(still_open, Limits(), NOW)
    assert [reason_code(f) for f in flags] == ["audio-longer-than-call"]
    assert "still open" in flags[0]


def test_audio_within_the_slack_passes() -> None:
    assert codes(rec(audio_seconds="302")) == []  # 300 s call, 2 s slack
    assert codes(rec(audio_seconds="302.000001")) == ["audio-longer-than-call"]


def test_speech_longer_than_audio_is_flagged() -> None:
    assert codes(rec(audio_seconds="100", speech_seconds="150")) == ["speech-longer-than-audio"]


def test_token_character_and_reported_limits() -> None:
    assert codes(rec(input_tokens=10_000_001)) == ["tokens-over-limit"]
    assert codes(rec(output_tokens=10_000_000)) == []
    assert codes(rec(characters=1_000_001)) == ["characters-over-limit"]
    assert codes(rec(provider_reported_seconds="86401")) == ["reported-longer-than-limit"]


def test_starts_far_in_the_future_or_the_past() -> None:
    future = rec(started_at="2026-11-17T00:00:00+00:00", ended_at="2026-11-17T00:01:00+00:00")
    assert codes(future) == ["starts-in-future"]
    past = rec(started_at="2025-01-01T00:00:00+00:00", ended_at="2025-01-01T00:01:00+00:00")
    assert codes(past) == ["starts-long-ago"]


def test_every_reason_a_record_breaks_is_listed_and_every_code_is_known() -> None:
    bad = rec(ended_at="2035-01-01T00:00:00+00:00", input_tokens=20_000_000, characters=2_000_000)
    found = codes(bad)
    assert found == ["call-too-long", "tokens-over-limit", "characters-over-limit"]
    assert set(found) <= set(REASONS)


def test_guards_file_sets_defaults_and_tenants_inherit_them() -> None:
    guards = guards_from_dict(
        tomllib.loads("max_call_hours = 4\nmax_tokens = 500\n[tenants.acme]\nmax_call_hours = 72\n")
    )
    assert guards.default == Limits(max_call_hours=4, max_tokens=500)
    assert guards.limits_for("acme") == Limits(max_call_hours=72, max_tokens=500)
    assert guards.limits_for("other") == guards.default
    assert codes(rec(ended_at="2026-11-10T15:00:00+00:00"), guards.limits_for("other")) == ["call-too-long"]
    assert codes(rec(ended_at="2026-11-10T15:00:00+00:00"), guards.limits_for("acme")) == []


def test_default_guards_need_no_file() -> None:
    assert Guards().limits_for("anyone") == Limits()


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("max_call_hourz = 4", "max_call_hourz: not a guard"),
        ("max_call_hours = 0", "max_call_hours: 0 is not a positive whole number"),
        ("max_tokens = 1.5", "max_tokens: 1.5 is not a positive whole number"),
        ("max_tokens = true", "max_tokens: True is not a positive whole number"),
        ("tenants = 3", "tenants: must be a table"),
        ("[tenants.acme]\nmax_past_days = -1", "tenants.acme.max_past_days: -1 is not a positive"),
    ],
)
def test_bad_guards_name_the_key_and_why(text: str, says: str) -> None:
    with pytest.raises(GuardsError, match=r"^guards\.toml: ") as caught:
        guards_from_dict(tomllib.loads(text), source="guards.toml")
    assert says in str(caught.value)
