"""A measured file as a usage record: exact seconds from sample counts, timestamps spanning the file.

Pure: no audio, no files, no clock. Seconds are counted in samples and turned into decimals only here:
``frames / sample_rate``, rounded *up* to the microsecond (the resolution of every record time and of the
Parquet ``decimal(18, 6)`` columns). That is exact whenever the quotient has at most six decimals (any
length at 8 kHz; an even number of frames at 16 kHz) and otherwise less than a microsecond over the audio,
never under it; the exact fraction stays on the record as ``attr.frames`` and ``attr.sample_rate``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from talktime.core.decimals import plain
from talktime.core.records import UsageRecord
from talktime.errors import InputError


def seconds_up(samples: int, rate: int) -> Decimal:
    """``samples / rate`` seconds, rounded up to the microsecond; integer arithmetic, no float.

    >>> seconds_up(48000, 48000), seconds_up(1, 16000), seconds_up(1, 44100), seconds_up(0, 8000)
    (Decimal('1'), Decimal('0.000063'), Decimal('0.000023'), Decimal('0'))
    """
    return plain(Decimal(-(-samples * 1_000_000 // rate)).scaleb(-6))


@dataclass(frozen=True, slots=True)
class Measurement:
    """What measuring one audio file found, in samples: ``frames`` at ``sample_rate`` per channel, and
    ``speech_samples`` at ``vad_rate`` (the union of the channels: time in which any channel speaks).
    ``vad`` says which detector, at which rate, on which frames, with which pauses bridged."""

    file: str
    frames: int
    sample_rate: int
    channels: int
    speech_samples: int
    vad_rate: int
    vad: str

    @property
    def audio_seconds(self) -> Decimal:
        """The file's duration: its frames over its rate (silence included)."""
        return seconds_up(self.frames, self.sample_rate)

    @property
    def speech_seconds(self) -> Decimal:
        """The detector's speech time, never more than the file's duration (resampling may add a sample)."""
        return min(seconds_up(self.speech_samples, self.vad_rate), self.audio_seconds)


def measured_record(
    measurement: Measurement,
    *,
    record_id: str,
    start: datetime | None = None,
    end: datetime | None = None,
    customer: str | None = None,
    provider: str | None = None,
    product: str | None = None,
) -> UsageRecord:
    """A ``batch`` record of the file, starting at ``start`` or ending at ``end`` (exactly one of them).

    ``first_audio_at`` and ``last_audio_at`` span the whole file, so ``connection``, ``audio_span`` and
    ``audio_sent`` all measure its duration, and ``speech`` the detector's speech.
    """
    duration = timedelta(microseconds=int(measurement.audio_seconds.scaleb(6)))
    if start is not None and end is None:
        started_at = start
    elif end is not None and start is None:
        started_at = end - duration
    else:
        raise ValueError("give exactly one of start and end")
    ended_at = started_at + duration
    if started_at.utcoffset() is None:
        raise InputError(f"start time {started_at.isoformat()} has no UTC offset; write e.g. +00:00 or Z")
    return UsageRecord(
        id=record_id,
        customer=customer,
        provider=provider,
        product=product,
        kind="batch",
        status="completed",
        started_at=started_at,
        ended_at=ended_at,
        first_audio_at=started_at,
        last_audio_at=ended_at,
        audio_seconds=measurement.audio_seconds,
        speech_seconds=measurement.speech_seconds,
        channels=measurement.channels,
        attrs={
            "file": measurement.file,
            "frames": str(measurement.frames),
            "sample_rate": str(measurement.sample_rate),
            "vad": measurement.vad,
            "time_from": "start" if start is not None else "mtime",
        },
    )
