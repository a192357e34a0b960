"""Hypothesis strategies for usage records and metering policies (kept in one module, attrs-style).

Records are built typed (no parsing) and always carry every measure a basis may ask for, so any generated
policy can meter any generated record. Times are whole milliseconds, so every duration is an exact Decimal.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from talktime.core.metering.policy import Policy, policy_from_dict
from talktime.core.records import UsageRecord

EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
#: Records start within about three months, so period scope sees several calendar months.
SPAN_SECONDS = 90 * 24 * 3600
ZONES = ("UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata")
BASES: tuple[Any, ...] = ("connection", "answered", "audio_sent", "speech", ("connection", "audio_sent"))


def ms(value: int) -> Decimal:
    return Decimal(value).scaleb(-3)


@st.composite
def usage_records(
    draw: st.DrawFn, record_id: str = "r", statuses: tuple[str, ...] = ("completed",)
) -> UsageRecord:
    start = EPOCH + timedelta(milliseconds=draw(st.integers(0, SPAN_SECONDS * 1000)))
    duration_ms = draw(st.one_of(st.integers(0, 180_000), st.integers(0, 4 * 3600 * 1000)))
    answer_ms = draw(st.integers(0, duration_ms))
    audio_ms = draw(st.integers(0, duration_ms))
    speech_ms = draw(st.integers(0, audio_ms))
    return UsageRecord(
        id=record_id,
        started_at=start,
        ended_at=start + timedelta(milliseconds=duration_ms),
        answered_at=start + timedelta(milliseconds=answer_ms),
        customer=draw(st.sampled_from(["acme", "beta", "gamma"])),
        session=draw(st.one_of(st.none(), st.sampled_from(["s1", "s2", "s3", "s4"]))),
        kind=draw(st.sampled_from(["leg", "sip", "participant"])),
        status=draw(st.sampled_from(statuses)),
        audio_seconds=ms(audio_ms),
        speech_seconds=ms(speech_ms),
        provider_reported_seconds=draw(st.one_of(st.none(), st.integers(0, 20_000).map(Decimal))),
        channels=draw(st.integers(1, 3)),
    )


@st.composite
def record_lists(
    draw: st.DrawFn,
    min_size: int = 0,
    max_size: int = 15,
    statuses: tuple[str, ...] = ("completed", "failed"),
) -> list[UsageRecord]:
    """Records with distinct ids (``r0``, ``r1``, ...)."""
    size = draw(st.integers(min_size, max_size))
    return [draw(usage_records(record_id=f"r{i}", statuses=statuses)) for i in range(size)]


def build_policy(params: dict[str, Any], unit: str = "second", meter: str | None = None) -> Policy:
    data: dict[str, Any] = {"id": "gen", "name": "generated", "unit": unit}
    if meter:
        data["meter"] = meter
    data["versions"] = [{"effective_from": "2023-01-01", **params}]
    return policy_from_dict(data)


@st.composite
def metering_params(
    draw: st.DrawFn,
    rounding: tuple[str, ...] = ("up", "nearest", "down", "exact"),
    scopes: tuple[str, ...] = ("record", "session", "period"),
    extras: bool = True,
) -> dict[str, Any]:
    """A version's parameters as a policy dict would hold them (numbers as strings: exact)."""
    increment = draw(st.sampled_from([1, 6, 30, 60]))
    params: dict[str, Any] = {
        "basis": list(b) if isinstance(b := draw(st.sampled_from(BASES)), tuple) else b,
        "rounding": draw(st.sampled_from(rounding)),
        "increment_seconds": str(increment),
        "scope": draw(st.sampled_from(scopes)),
        "period_timezone": draw(st.sampled_from(ZONES)),
        "channels": draw(st.sampled_from(["per_call", "per_channel"])),
        "meters": draw(st.sampled_from([{}, {"sip": "sip"}])),
    }
    if draw(st.booleans()):
        params["initial_seconds"] = str(draw(st.sampled_from([increment, 30, 60])))
    if extras:
        params["minimum_seconds"] = str(draw(st.sampled_from([0, 15, 60])))
        params["free_below_seconds"] = str(draw(st.sampled_from([0, 1, 6])))
        params["extra_channel_factor"] = draw(st.sampled_from(["1", "0.5"]))
        params["factor"] = draw(st.sampled_from(["1", "1", "0.5", "2"]))
        params["open_cap_seconds"] = draw(st.sampled_from([None, "3600"]))
        params = {k: v for k, v in params.items() if v is not None}
    return params


def policies(**kwargs: Any) -> st.SearchStrategy[Policy]:
    return metering_params(**kwargs).map(build_policy)
