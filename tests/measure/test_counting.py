"""The pure parts of measuring: speech from frame decisions, exact seconds from samples, the record built.

Golden tables: input, expected, why. No audio here (see test_audio_files.py for that).
"""

from __future__ import annotations

import doctest
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from talktime.errors import InputError
from talktime.measure import Measurement, measured_record, parse_vad, seconds_up
from talktime.measure import record as record_module
from talktime.measure import speech as speech_module
from talktime.measure import vad as vad_module
from talktime.measure.speech import speech_samples

S, Q = True, False  # a speech frame, a quiet one

SPEECH_CASES = [
    # (frames as (speech, samples), min_silence_samples, expected speech samples, why)
    ([], 0, 0, "no frames, no speech"),
    ([(Q, 480)] * 5, 4800, 0, "quiet only: nothing to bridge without speech on both sides"),
    ([(S, 480), (Q, 480), (S, 480)], 0, 960, "no bridging: the sum of the speech frames"),
    ([(S, 480), (Q, 480), (S, 480)], 481, 1440, "a 480-sample pause under 481 is bridged"),
    ([(S, 480), (Q, 480), (S, 480)], 480, 960, "a pause exactly min_silence long is silence (shorter only)"),
    ([(Q, 480), (S, 480), (Q, 480)], 4800, 480, "leading and trailing quiet are never bridged (no padding)"),
    ([(S, 480), (Q, 240), (Q, 240), (S, 100)], 481, 1060, "a pause over several frames, a short last frame"),
]


@pytest.mark.parametrize(("frames", "min_silence", "expected", "why"), SPEECH_CASES)
def test_speech_samples(frames: list[tuple[bool, int]], min_silence: int, expected: int, why: str) -> None:
    assert speech_samples(frames, min_silence) == expected, why


SECONDS_CASES = [
    # (samples, rate, expected seconds, why)
    (376_000, 8_000, "47", "8 kHz: every length is exact in microseconds (125 us a sample)"),
    (3, 8_000, "0.000375", "three samples at 8 kHz"),
    (2, 16_000, "0.000125", "an even number of samples at 16 kHz is exact"),
    (1, 16_000, "0.000063", "62.5 us rounds up, never down: audio is never under-counted"),
    (2_116_800, 44_100, "48", "whole seconds are exact at any rate"),
    (44_101, 44_100, "1.000023", "one sample past a second at 44.1 kHz: 22.67 us, up to 23"),
    (47_999, 48_000, "0.999980", "one sample short of a second stays short of it (20.83 us a sample)"),
    (0, 48_000, "0", "an empty file lasts 0 s"),
]


@pytest.mark.parametrize(("samples", "rate", "expected", "why"), SECONDS_CASES)
def test_seconds_up(samples: int, rate: int, expected: str, why: str) -> None:
    assert seconds_up(samples, rate) == Decimal(expected), why


def test_seconds_up_is_within_a_microsecond_above_the_exact_fraction() -> None:
    for samples in range(0, 100_000, 997):
        for rate in (8_000, 11_025, 16_000, 22_050, 44_100, 48_000):
            got = seconds_up(samples, rate)
            exact_us = Decimal(samples * 1_000_000) / Decimal(rate)
            assert 0 <= got.scaleb(6) - exact_us < 1, (samples, rate)


VAD_CASES = [
    ("silero", "silero:0.5"),
    ("silero:0.35", "silero:0.35"),
    ("webrtc", "webrtc:3"),
    ("webrtc:0", "webrtc:0"),
    (" webrtc:2 ", "webrtc:2"),
]


@pytest.mark.parametrize(("given", "expected"), VAD_CASES)
def test_parse_vad(given: str, expected: str) -> None:
    assert str(parse_vad(given)) == expected


@pytest.mark.parametrize(
    "given", ["webrtc:4", "webrtc:x", "silero:1", "silero:0", "silero:nan", "energy", ""]
)
def test_parse_vad_refuses_with_the_choices(given: str) -> None:
    with pytest.raises(InputError, match=r"--vad .*(webrtc|silero)"):
        parse_vad(given)


MEASURED = Measurement(
    file="calls/call-7.wav",
    frames=752_000,
    sample_rate=16_000,
    channels=2,
    speech_samples=496_000,
    vad_rate=16_000,
    vad="silero:0.5 at 16000 Hz, 512 samples a frame, pauses under 300 ms bridged",
)


def test_record_from_a_start_time_spans_the_file() -> None:
    start = datetime(2025, 3, 1, 10, 0, tzinfo=timezone(timedelta(hours=2)))
    record = measured_record(MEASURED, record_id="call-7", start=start, customer="acme", provider="a")
    assert record.kind == "batch" and record.status == "completed"
    assert (record.id, record.customer, record.provider, record.product) == ("call-7", "acme", "a", None)
    assert record.started_at == record.first_audio_at == start
    assert record.ended_at == record.last_audio_at == start + timedelta(seconds=47)
    assert record.audio_seconds == Decimal(47) and record.speech_seconds == Decimal(31)
    assert record.channels == 2
    assert record.attrs["frames"] == "752000" and record.attrs["sample_rate"] == "16000"
    assert record.attrs["time_from"] == "start"


def test_record_from_an_end_time_starts_a_duration_before_it() -> None:
    odd = Measurement("x.wav", 44_101, 44_100, 1, 0, 16_000, "webrtc:3")  # 1.000023 s
    end = datetime(2025, 3, 1, 10, 0, 47, 500_000, tzinfo=UTC)
    record = measured_record(odd, record_id="x", end=end)
    assert record.ended_at == end
    assert record.started_at == end - timedelta(microseconds=1_000_023)
    assert record.attrs["time_from"] == "mtime"


def test_speech_never_exceeds_the_file() -> None:
    # resampling can leave a sample more at the detector's rate than the file holds
    longer = Measurement("x.wav", 44_100, 44_100, 1, 16_001, 16_000, "webrtc:3")
    assert longer.speech_seconds == longer.audio_seconds == Decimal(1)


def test_a_start_time_without_offset_is_refused() -> None:
    with pytest.raises(InputError, match="no UTC offset"):
        measured_record(MEASURED, record_id="x", start=datetime(2025, 3, 1, 10, 0))


@pytest.mark.parametrize("module", [speech_module, record_module, vad_module])
def test_doctests(module: object) -> None:
    failed, tried = doctest.testmod(module, optionflags=doctest.ELLIPSIS)  # type: ignore[arg-type]
    assert tried > 0 and failed == 0
