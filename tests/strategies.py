"""Hypothesis strategies for usage records and policy parameters, generic enough for any suite.

``records()`` draws typed record lists with distinct ids, every kind and status, sessions, customers, and two
free attributes (``attr.country`` text, ``attr.silence`` seconds). ``policy_params()`` draws one version's
parameters as a TOML-shaped dict (numbers as strings), covering every parameter the scalar meter applies;
``policies()`` joins one to three of them into effective-dated versions. ``count_records()`` and
``count_policies()`` do the same for quantities beyond time: token and character counts with their parts
(sometimes missing, sometimes adding up to more than a total they are subtracted from), and count bases,
weighted tables, rules on ``attr.model`` and parts. Times are whole microseconds and
seconds have at most 6 places, so every duration is exact. (``property/strategies.py`` keeps a smaller set
for the meter's invariants.)
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from talktime.core.metering.policy import COUNT_BASES, WEIGHTABLE_SECONDS, Policy, policy_from_dict
from talktime.core.records import COUNT_PARTS, KINDS, UsageRecord

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


# --- quantities beyond time ---------------------------------------------------------------------------------

COUNT_UNITS = ("token", "character", "request", "credit")
MODELS = ("gpt-4o", "GPT-4o-mini", "eleven_flash_v2_5")
#: Block sizes and minimums in a count's base unit (1000-character blocks, a 50-token minimum, ...).
COUNTS = st.sampled_from(["1", "1", "3", "250", "1000", "0.5"])


@st.composite
def _counts(draw: st.DrawFn, rough: bool) -> dict[str, int | None]:
    """Count fields, each part no larger than its total. Parts are sometimes missing (0 when their total is
    there). ``rough``: totals sometimes missing too, and parts up to their total, so two parts subtracted
    from one total may take it below zero."""
    top = draw(st.sampled_from([0, 40, 3000, 10**6]))
    counts: dict[str, int | None] = {}
    for name in ("characters", "input_tokens", "output_tokens"):
        missing = rough and draw(st.integers(0, 3)) == 0
        counts[name] = None if missing else draw(st.integers(0, top))
    for part, whole in COUNT_PARTS.items():
        if draw(st.integers(0, 3)) == 0:
            counts[part] = None
            continue
        total = counts[whole]
        ceiling = top if total is None else total if rough else total // 3
        counts[part] = draw(st.integers(0, ceiling))
    return counts


@st.composite
def count_record(draw: st.DrawFn, record_id: str = "r", rough: bool = False) -> UsageRecord:
    """One valid record carrying counts: an LLM or a TTS request, mostly. ``rough``: open records, and
    fields a billed record cannot do without missing (see :func:`_counts`)."""
    start = EPOCH + timedelta(microseconds=draw(st.integers(0, SPAN_SECONDS * 10**6)))
    status = draw(st.sampled_from(STATUSES if rough else STATUSES[:-1]))
    duration = draw(st.integers(0, 30 * 10**6))
    audio = draw(st.integers(0, duration))
    present = st.booleans() if rough else st.just(True)
    attrs = {"model": draw(st.sampled_from(MODELS))} if draw(st.integers(0, 3)) else {}
    return UsageRecord(
        id=record_id,
        started_at=start,
        ended_at=None if status == "open" else start + timedelta(microseconds=duration),
        customer=draw(st.one_of(st.none(), st.sampled_from(["acme", "beta"]))),
        session=draw(st.one_of(st.none(), st.sampled_from(["s1", "s2", "s3"]))),
        kind=draw(st.sampled_from(["llm", "llm", "tts", "tts", "stream", "leg"])),
        status=status,
        audio_seconds=micros(audio) if draw(present) else None,
        speech_seconds=micros(draw(st.integers(0, audio))) if draw(present) else None,
        channels=draw(st.sampled_from([1, 1, 1, 2])),
        attrs=attrs,
        **draw(_counts(rough)),  # type: ignore[arg-type]  # count fields only: int | None
    )


@st.composite
def count_records(draw: st.DrawFn, min_size: int = 1, max_size: int = 16) -> list[UsageRecord]:
    """Count records with distinct ids (``r0``, ``r1``, ...). In one list in four, a record in three is
    rough (see :func:`count_record`): the reference refuses most of those lists."""
    size = draw(st.integers(min_size, max_size))
    rough = st.integers(0, 2).map(lambda n: n == 0) if draw(st.integers(0, 3)) == 0 else st.just(False)
    return [draw(count_record(record_id=f"r{i}", rough=draw(rough))) for i in range(size)]


@st.composite
def count_basis(draw: st.DrawFn) -> str | dict[str, int]:
    """A count field, ``request``, or a weighted table: one or two fields (seconds fields too) and sometimes
    a part subtracted from its total, as providers' counts need (below zero only on a rough record)."""
    if draw(st.integers(0, 2)) == 0:
        return draw(st.sampled_from(COUNT_BASES))
    fields = st.sampled_from((*COUNT_BASES, *WEIGHTABLE_SECONDS[:2]))
    names = draw(st.lists(fields, min_size=1, max_size=2, unique=True))
    terms = {name: draw(st.sampled_from([1, 1, 2, 10])) for name in names}
    if draw(st.booleans()):
        part = draw(st.sampled_from(sorted(COUNT_PARTS)))
        terms = {COUNT_PARTS[part]: 1, **terms, part: draw(st.sampled_from([-1, -2]))}
    return terms


@st.composite
def count_params(draw: st.DrawFn, parts: bool = False) -> dict[str, Any]:
    """One version's parameters for a count policy, as a policy TOML table would hold them."""
    params: dict[str, Any] = {
        "basis": draw(count_basis()),
        "rounding": draw(st.sampled_from(["up", "nearest", "down", "exact", "exact"])),
        "increment": draw(COUNTS),
        "minimum": draw(st.sampled_from(["0", "0", "50", "1000"])),
        "free_below": draw(st.sampled_from(["0", "0", "0", "10"])),
        "scope": draw(st.sampled_from(["record", "record", "session", "period"])),
        "period_timezone": draw(st.sampled_from(ZONES)),
        "channels": draw(st.sampled_from(["per_call", "per_channel"])),
        "factor": draw(st.sampled_from(["1", "1", "0.5", "2", "0.001", "1.05"])),
        "billed_statuses": draw(st.sampled_from([["completed"], ["completed", "failed"]])),
    }
    if draw(st.booleans()):
        params["initial"] = draw(COUNTS)
    # no open_cap_seconds: it caps time, and a count policy is refused with one
    if draw(st.integers(0, 3)) == 0:
        params["kinds"] = draw(st.sampled_from([["llm"], ["llm", "tts"]]))
    if not parts and draw(st.integers(0, 3)) == 0:
        params["meters"] = {"tts": "tts-characters"}
    if draw(st.integers(0, 4)) == 0:
        params["segments"] = [{"name": "cached", "field": "cached_input_tokens", "factor": "0.1"}]
    if draw(st.integers(0, 5)) == 0:
        params["multiplier"] = {
            "field": "output_tokens",
            "per": "1000",
            "above": draw(st.sampled_from(["0", "500"])),
            "round_to_seconds": draw(st.sampled_from(["1", "100"])),
        }
    if draw(st.booleans()):
        params["rules"] = [
            {
                "name": "model",
                "when": {"attr.model": draw(st.sampled_from(["gpt-4o", "gpt-4o-mini"]))},
                "set": {"factor": draw(st.sampled_from(["0.5", "3", "0.001"]))},
            },
            {"name": "tts", "when": {"kind": "tts"}, "set": {"minimum": "100", "rounding": "up"}},
            # a rule may set the basis of a policy without parts only (parts have bases of their own)
            {"name": "flash", "when": {"attr.model": "eleven_flash_v2_5"}, "set": {"basis": "characters"}},
        ][: draw(st.integers(1, 2 if parts else 3))]
    return params


@st.composite
def count_policies(draw: st.DrawFn) -> Policy:
    """A count policy of one or two versions, sometimes with two or three parts (each its own basis and
    perhaps its own rounding and minimum)."""
    with_parts = draw(st.booleans())
    count = draw(st.integers(1, 2))
    starts = ["2024-01-01", "2024-02-15T12:00:00+00:00"][:count]
    versions = [{"effective_from": start, **draw(count_params(parts=with_parts))} for start in starts]
    policy: dict[str, Any] = {
        "id": "counted",
        "name": "counted",
        "unit": draw(st.sampled_from(COUNT_UNITS)),
        "versions": versions,
    }
    if with_parts:
        names = ["input", "cached_input", "output"][: draw(st.integers(2, 3))]
        policy["parts"] = []
        for name in names:
            part: dict[str, Any] = {"name": name, "basis": draw(count_basis())}
            if draw(st.booleans()):
                part["rounding"] = "up"
                part["increment"] = draw(COUNTS)
            if draw(st.integers(0, 2)) == 0:
                part["minimum"] = draw(st.sampled_from(["0", "20"]))
            policy["parts"].append(part)
    return policy_from_dict(policy)
