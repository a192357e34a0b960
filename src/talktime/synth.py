"""Synthetic but realistic usage: a month of Voice AI calls for a few customers, seeded and reproducible.

Each call is one session and leaves the records a platform really collects for it: a telephony leg (and a
second leg when forwarded), a streaming STT connection with setup and teardown overhead, stereo on some
calls, speech shorter than audio, and the room's participants (SIP or WebRTC caller, and the agent).
Some calls ring out, are busy or fail; some are a few seconds long. Used by ``talktime demo`` and the
benchmarks; times are whole milliseconds and every duration is exact.

With ``whole_call=True`` each answered call also leaves what its agent used: one LLM record (OpenAI chat
tokens over the call's turns, the conversation re-sent each turn, part of it from the prompt cache) and one
TTS record (ElevenLabs characters spoken), so a call's cost can be stacked across four providers.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from talktime.core.records import UsageRecord

CUSTOMERS = ("acme-health", "blue-bank", "cobalt-retail")


def _ms(rng: random.Random, low: int, high: int) -> timedelta:
    return timedelta(milliseconds=rng.randint(low, high))


def _seconds(delta: timedelta) -> Decimal:
    return Decimal(delta // timedelta(milliseconds=1)).scaleb(-3)


def call_duration(rng: random.Random) -> timedelta:
    """Answered duration: mostly a lognormal around a minute and a half, with a share of very short calls."""
    if rng.random() < 0.12:
        return _ms(rng, 800, 15_000)
    seconds = min(rng.lognormvariate(math.log(75), 0.7), 1800.0)
    return timedelta(milliseconds=round(seconds * 1000))


#: The models the agent of a whole call uses (record attribute ``model``).
LLM_MODEL = "gpt-4o-mini"
TTS_MODEL = "eleven_flash_v2_5"


def synthetic_month(
    calls: int, seed: int = 7, month: datetime | None = None, *, whole_call: bool = False
) -> Iterator[UsageRecord]:
    """Records for ``calls`` calls spread over one calendar month (UTC); see the module for ``whole_call``."""
    rng = random.Random(seed)
    agent_rng = random.Random(seed + 1)  # a second stream, so the call records stay the same either way
    start = month or datetime(2026, 10, 1, tzinfo=UTC)
    month_ms = 31 * 24 * 3600 * 1000
    for number in range(calls):
        records = list(_call(rng, number, start + timedelta(milliseconds=rng.randrange(month_ms))))
        yield from records
        if whole_call:
            yield from _agent_usage(agent_rng, records)


def _agent_usage(rng: random.Random, records: list[UsageRecord]) -> Iterator[UsageRecord]:
    """The LLM tokens and TTS characters of one answered call's agent (none for a call never answered)."""
    agent = next((r for r in records if r.kind == "agent"), None)
    if agent is None or agent.ended_at is None:
        return
    talk = (agent.ended_at - agent.started_at).total_seconds()
    turns = max(1, round(talk / 12))
    system = rng.randint(600, 1400)  # the agent's instructions and tools, sent on every turn
    input_tokens = cached = output_tokens = 0
    history = 0
    for _ in range(turns):
        heard = rng.randint(8, 40)
        sent = system + history + heard
        input_tokens += sent
        cached += (system + history) // 128 * 128 if system + history >= 1024 else 0
        said = rng.randint(20, 70)
        output_tokens += said
        history += heard + said
    characters = output_tokens * 4 + rng.randint(0, 40)
    yield UsageRecord(
        id=f"{agent.session}-llm",
        kind="llm",
        provider="openai",
        product="chat",
        ended_at=agent.ended_at,
        input_tokens=input_tokens,
        cached_input_tokens=cached,
        output_tokens=output_tokens,
        attrs={"model": LLM_MODEL},
        customer=agent.customer,
        session=agent.session,
        started_at=agent.started_at,
    )
    yield UsageRecord(
        id=f"{agent.session}-tts",
        kind="tts",
        provider="elevenlabs",
        product="tts",
        ended_at=agent.ended_at,
        characters=characters,
        attrs={"model": TTS_MODEL},
        customer=agent.customer,
        session=agent.session,
        started_at=agent.started_at,
    )


def _call(rng: random.Random, number: int, began: datetime) -> Iterator[UsageRecord]:
    session = f"call-{number:06d}"
    customer = CUSTOMERS[number % len(CUSTOMERS)]
    web = rng.random() < 0.25
    ring = _ms(rng, 1500, 12_000)
    outcome = rng.choices(["completed", "unanswered", "busy", "failed"], weights=[85, 8, 4, 3])[0]
    if outcome != "completed":
        if not web:
            yield UsageRecord(
                id=f"{session}-leg1",
                kind="leg",
                status=outcome,
                provider="twilio",
                product="voice",
                started_at=began,
                ended_at=began + ring,
                provider_reported_seconds=Decimal(0),
                customer=customer,
                session=session,
            )
        return
    answered = began + ring
    talk = call_duration(rng)
    ended = answered + talk
    if not web:
        yield UsageRecord(
            id=f"{session}-leg1",
            kind="leg",
            provider="twilio",
            product="voice",
            started_at=began,
            answered_at=answered,
            ended_at=ended,
            provider_reported_seconds=Decimal(math.ceil(talk.total_seconds())),
            customer=customer,
            session=session,
        )
        if rng.random() < 0.15 and talk > timedelta(seconds=20):
            transfer = answered + talk * rng.uniform(0.3, 0.8)
            yield UsageRecord(
                id=f"{session}-leg2",
                kind="leg",
                provider="twilio",
                product="voice",
                started_at=transfer,
                answered_at=transfer + min(_ms(rng, 1000, 6000), ended - transfer),
                ended_at=ended,
                customer=customer,
                session=session,
            )
    channels = 2 if rng.random() < 0.3 else 1
    connect = answered + min(_ms(rng, 100, 900), talk)  # a very short call may end before STT connects
    hang_up = ended + _ms(rng, 300, 2500)
    audio = ended - connect
    yield UsageRecord(
        id=f"{session}-stt",
        kind="stream",
        provider="deepgram",
        product="streaming",
        started_at=connect,
        ended_at=hang_up,
        first_audio_at=connect,
        last_audio_at=ended,
        audio_seconds=_seconds(audio),
        speech_seconds=_seconds(audio * rng.uniform(0.35, 0.7)),
        channels=channels,
        customer=customer,
        session=session,
    )
    caller_kind = "participant" if web else "sip"
    yield UsageRecord(
        id=f"{session}-caller",
        kind=caller_kind,
        provider="livekit",
        product="rooms",
        started_at=answered,
        ended_at=ended,
        customer=customer,
        session=session,
    )
    yield UsageRecord(
        id=f"{session}-agent",
        kind="agent",
        provider="livekit",
        product="rooms",
        started_at=answered + min(_ms(rng, 200, 1500), talk),  # the agent joins, unless the caller left
        ended_at=ended + _ms(rng, 0, 800),
        customer=customer,
        session=session,
    )


def seed_case(day: datetime | None = None) -> list[UsageRecord]:
    """The LiveKit support thread: 11 calls of just under a minute, 2 participants each, in one day."""
    start = day or datetime(2026, 10, 14, 9, tzinfo=UTC)
    records = []
    for call in range(11):
        began = start + timedelta(minutes=37 * call)
        length = timedelta(seconds=[58, 59, 57, 59, 58, 56, 59, 57, 58, 59, 58][call])
        for who, joined in (("user", timedelta(0)), ("agent", timedelta(milliseconds=700))):
            records.append(
                UsageRecord(
                    id=f"room-{call:02d}-{who}",
                    kind="participant",
                    provider="livekit",
                    product="rooms",
                    customer="mitesh",
                    session=f"room-{call:02d}",
                    started_at=began + joined,
                    ended_at=began + length,
                )
            )
    return records
