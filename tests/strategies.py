"""Hypothesis strategies for usage records and policy parameters, generic enough for any suite.

``records()`` draws typed record lists with distinct ids, every kind and status, sessions, customers, and two
free attributes (``attr.country`` text, ``attr.silence`` seconds). ``policy_params()`` draws one version's
parameters as a TOML-shaped dict (numbers as strings), covering every parameter the scalar meter applies;
``policies()`` joins one to three of them into effective-dated versions. Times are whole microseconds and
seconds have at most 6 places, so every duration is exact. (``property/strategies.py`` keeps a smaller set
for the meter's invariants.)
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from talktime.core.metering.policy import Policy, policy_from_dict
from talktime.core.records import KINDS, UsageRecord

EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
SPAN_SECONDS = 120 * 24 * 3600
ZONES = ("UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata")
BASES: tuple[Any, ...] = (
    "connection",
    "answered",
    "audio_span",
    "audio_sent",
    "speech",
    "provider_reported",
    ("connection", "audio_sent"),
    ("answered", "provider_reported"),
)
STATUSES = ("completed", "completed", "completed", "failed", "unanswered", "open")
SECONDS = st.sampled_from(["0.001", "0.5", "1", "6", "30", "60", "1.25"])


def micros(value: int) -> Decimal:
    return Decimal(value).scaleb(-6)


@st.composite
def usage_record(draw: st.DrawFn, record_id: str = "r") -> UsageRecord:
    """One valid record; optional measures are sometimes missing (a billed one then cannot be metered)."""
    start = EPOCH + timedelta(microseconds=draw(st.integers(0, SPAN_SECONDS * 10**6)))
    status = draw(st.sampled_from(STATUSES))
    duration = draw(
        st.one_of(st.integers(0, 3 * 10**6), st.integers(0, 200 * 10**6), st.integers(0, 4 * 3600 * 10**6))
    )
    ended = None if status == "open" else start + timedelta(microseconds=duration)
    answered = start + timedelta(microseconds=draw(st.integers(0, duration)))
    first = draw(st.integers(0, duration))
    last = draw(st.integers(first, duration))
    audio = draw(st.integers(0, duration))
    maybe = st.booleans() if draw(st.integers(0, 9)) == 0 else st.just(True)
    attrs: dict[str, str] = {}
    if draw(st.booleans()):
        attrs["country"] = draw(st.sampled_from(["MX", "us", "FR"]))
    if draw(st.booleans()):
        attrs["silence"] = str(micros(draw(st.integers(0, audio))))
    return UsageRecord(
        id=record_id,
        started_at=start,
        ended_at=ended,
        answered_at=answered if draw(maybe) and (status != "unanswered") else None,
        first_audio_at=start + timedelta(microseconds=first) if draw(maybe) else None,
        last_audio_at=start + timedelta(microseconds=last),
        customer=draw(st.one_of(st.none(), st.sampled_from(["acme", "beta"]))),
        session=draw(st.one_of(st.none(), st.sampled_from(["s1", "s2", "s3"]))),
        kind=draw(st.one_of(st.sampled_from(sorted(KINDS)), st.sampled_from(["leg", "sip"]))),
        status=status,
        audio_seconds=micros(audio) if draw(maybe) else None,
        speech_seconds=micros(draw(st.integers(0, audio))) if draw(maybe) else None,
        provider_reported_seconds=draw(
            st.one_of(st.none(), st.integers(0, 4000 * 10**3).map(lambda v: micros(v * 1000)))
        ),
        channels=draw(st.sampled_from([1, 1, 2, 3])),
        input_tokens=draw(st.one_of(st.none(), st.integers(0, 12_000))),
        attrs=attrs,
    )


@st.composite
def records(draw: st.DrawFn, min_size: int = 0, max_size: int = 30) -> list[UsageRecord]:
    """Records with distinct ids (``r0``, ``r1``, ...)."""
    size = draw(st.integers(min_size, max_size))
    return [draw(usage_record(record_id=f"r{i}")) for i in range(size)]


@st.composite
def policy_params(draw: st.DrawFn, rules: bool = True) -> dict[str, Any]:
    """One version's parameters, as a policy TOML table would hold them."""
    increment = draw(SECONDS)
    basis = draw(st.sampled_from(BASES))
    params: dict[str, Any] = {
        "basis": list(basis) if isinstance(basis, tuple) else basis,
        "rounding": draw(st.sampled_from(["up", "nearest", "down", "exact"])),
        "increment_seconds": increment,
        "minimum_seconds": draw(st.sampled_from(["0", "0", "15", "60", "0.5"])),
        "free_below_seconds": draw(st.sampled_from(["0", "0", "1", "6.5"])),
        "scope": draw(st.sampled_from(["record", "record", "session", "period"])),
        "period_timezone": draw(st.sampled_from(ZONES)),
        "channels": draw(st.sampled_from(["per_call", "per_channel"])),
        "extra_channel_factor": draw(st.sampled_from(["1", "0.5", "0.25"])),
        "factor": draw(st.sampled_from(["1", "1", "0.5", "2", "1.05"])),
        "billed_statuses": draw(st.sampled_from([["completed"], ["completed", "failed"]])),
        "meters": draw(st.sampled_from([{}, {"sip": "sip-minutes"}])),
    }
    if draw(st.booleans()):
        params["initial_seconds"] = draw(SECONDS)
    if draw(st.booleans()):
        params["open_cap_seconds"] = draw(st.sampled_from(["3600", "90.5", "7200"]))
    if draw(st.integers(0, 3)) == 0:
        params["kinds"] = draw(st.sampled_from([["leg"], ["leg", "sip", "participant"]]))
    if draw(st.integers(0, 2)) == 0:
        params["segments"] = [
            {
                "name": "silence",
                "field": draw(st.sampled_from(["attr.silence", "speech_seconds"])),
                "factor": draw(st.sampled_from(["0", "0.05", "0.5"])),
            }
        ]
    if draw(st.integers(0, 2)) == 0:
        params["multiplier"] = {
            "field": "input_tokens",
            "per": draw(st.sampled_from(["3500", "1000"])),
            "above": draw(st.sampled_from(["0", "3500"])),
            "round_to_seconds": draw(st.sampled_from(["0.001", "1", "60"])),
            "direction": draw(st.sampled_from(["up", "nearest", "down"])),
        }
    if rules and draw(st.booleans()):
        params["rules"] = [
            {
                "name": "mexico",
                "when": {"attr.country": "mx"},
                "set": {"rounding": "up", "increment_seconds": "60"},
            },
            {"name": "sip", "when": {"kind": "sip"}, "set": {"factor": draw(st.sampled_from(["3", "0.75"]))}},
        ][: draw(st.integers(1, 2))]
    return params


@st.composite
def policies(draw: st.DrawFn, unit: str | None = None) -> Policy:
    """A policy of one to three versions (the first in force from 2024-01-01)."""
    count = draw(st.integers(1, 3))
    starts = ["2024-01-01", "2024-02-15T12:00:00+00:00", "2024-03-31T22:30:00-02:00"][:count]
    versions = [{"effective_from": start, **draw(policy_params())} for start in starts]
    chosen_unit = unit or draw(st.sampled_from(["second", "minute", "hour"]))
    return policy_from_dict(
        {"id": "generated", "name": "generated", "unit": chosen_unit, "versions": versions}
    )
