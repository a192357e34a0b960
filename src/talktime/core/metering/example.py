"""One call as every basis sees it: the record a worked example or a what-if step is metered on.

Owns: building that record for a policy (its counted kind, its version's start). Does not own: metering it.

>>> from talktime.providers import builtin
>>> call = example_call(builtin("twilio-voice"), Decimal("47.3"), setup=Decimal(2))
>>> seconds_between(call.started_at, call.ended_at), call.kind
(Decimal('49.3'), 'leg')
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from talktime.core.metering.policy import Policy
from talktime.core.records import UsageRecord, seconds_between

__all__ = ["EXAMPLE_COUNTS", "example_call", "seconds_between"]


def _delta(seconds: Decimal) -> timedelta:
    micros = seconds.scaleb(6)
    if micros != micros.to_integral_value():
        raise ValueError(f"{seconds} s is finer than a microsecond")
    return timedelta(microseconds=int(micros))


def example_call(
    policy: Policy,
    answered_seconds: Decimal,
    *,
    channels: int = 1,
    setup: Decimal = Decimal(0),
    speech: Decimal | None = None,
    at: datetime | None = None,
    record_id: str = "example-call",
) -> UsageRecord:
    """A completed call: ``setup`` seconds of ringing, then ``answered_seconds`` of audio, ``speech`` of it
    spoken (all of it when not given). Every measure is set, so any basis can meter it; the record's kind
    is the first one the policy's version in force counts. It starts when that version takes effect.
    """
    start = at or policy.current.effective_from
    kinds = policy.version_at(start).params.kinds
    answered = start + _delta(setup)
    ended = answered + _delta(answered_seconds)
    return UsageRecord(
        id=record_id,
        customer="example",
        session=record_id,
        kind=kinds[0] if kinds else None,
        started_at=start,
        answered_at=answered,
        ended_at=ended,
        first_audio_at=answered,
        last_audio_at=ended,
        audio_seconds=answered_seconds,
        speech_seconds=answered_seconds if speech is None else speech,
        provider_reported_seconds=answered_seconds,
        channels=channels,
        input_tokens=EXAMPLE_COUNTS["input_tokens"],
        cached_input_tokens=EXAMPLE_COUNTS["cached_input_tokens"],
        cache_write_tokens=EXAMPLE_COUNTS["cache_write_tokens"],
        audio_input_tokens=EXAMPLE_COUNTS["audio_input_tokens"],
        output_tokens=EXAMPLE_COUNTS["output_tokens"],
        audio_output_tokens=EXAMPLE_COUNTS["audio_output_tokens"],
        characters=EXAMPLE_COUNTS["characters"],
        ssml_characters=EXAMPLE_COUNTS["ssml_characters"],
        cjk_characters=EXAMPLE_COUNTS["cjk_characters"],
    )


#: What the example call's agent used, for count policies: a request of 1,000 input tokens (200 from the
#: prompt cache, 100 of audio), 50 output tokens, and 1,200 characters spoken (150 of SSML markup, 60 CJK).
EXAMPLE_COUNTS: dict[str, int] = {
    "input_tokens": 1000,
    "cached_input_tokens": 200,
    "cache_write_tokens": 0,
    "audio_input_tokens": 100,
    "output_tokens": 50,
    "audio_output_tokens": 0,
    "characters": 1200,
    "ssml_characters": 150,
    "cjk_characters": 60,
}
