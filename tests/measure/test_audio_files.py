"""Measuring audio the tests make (see conftest.py): exact durations, speech within a few frames of the
known speech, silence as ~0, stereo, encodings, and bad files refused with the file and the reason.

Accuracy measured on these files (3 utterances, 7.69 s of speech in 12.69 s), speech_seconds minus the
known speech: silero +0.054 s between digital silences at 16, 44.1 and 48 kHz (+0.118 s at 8 kHz), +0.21 to
+0.34 s over a -50 dBFS noise floor; webrtc:3 +0.26 to +0.44 s, mostly WebRTC's own hangover (about 0.1 s
after each utterance). The tolerances below are per utterance.
"""

from __future__ import annotations

import struct
from decimal import Decimal
from pathlib import Path

import pytest

from measure.audio_kit import AudioKit
from talktime.errors import InputError
from talktime.measure import Measurement, measure_file, parse_vad, seconds_up
from talktime.measure import audio as audio_module

pytestmark = pytest.mark.usefixtures("audio_packages")

RATES = [8_000, 16_000, 44_100, 48_000]
NOISE = "0.003"  # white noise at about -50 dBFS: a quiet room's hiss instead of digital silence

FRAME = {"silero": Decimal("0.032"), "webrtc:3": Decimal("0.03")}
# (detector, over a noise floor) -> fewest and most seconds over the known speech, per utterance
TOLERANCE = {
    ("silero", False): (-2 * FRAME["silero"], 2 * FRAME["silero"]),  # a frame or two at either end
    ("silero", True): (-2 * FRAME["silero"], 5 * FRAME["silero"]),  # hiss next to speech heard as speech
    # WebRTC holds speech ~0.1 s after each utterance (its hangover), then up to 2 frames of alignment
    ("webrtc:3", False): (-2 * FRAME["webrtc:3"], Decimal("0.12") + 2 * FRAME["webrtc:3"]),
    ("webrtc:3", True): (-2 * FRAME["webrtc:3"], Decimal("0.12") + 2 * FRAME["webrtc:3"]),
}


def assert_speech_near(
    measured: Measurement, known_samples: int, rate: int, utterances: int, vad: str, noisy: bool = False
) -> None:
    fewest, most = TOLERANCE[vad, noisy]
    known = Decimal(known_samples) / rate
    delta = measured.speech_seconds - known
    assert utterances * fewest <= delta <= utterances * most, (
        f"{vad}: speech {measured.speech_seconds} s vs {known:.4f} s known ({delta:+.4f} s)"
    )


@pytest.mark.parametrize("rate", RATES)
def test_duration_is_the_sample_count_over_the_rate(kit: AudioKit, rate: int) -> None:
    path, _ = kit.call(f"duration-{rate}.wav", rate, [0], [1.25, 0.75])
    measured = measure_file(path, parse_vad("silero"))
    frames = kit.frames(path)  # sox's count, not libsndfile's
    assert (measured.frames, measured.sample_rate, measured.channels) == (frames, rate, 1)
    assert measured.audio_seconds == seconds_up(frames, rate)
    assert measured.audio_seconds - Decimal(frames) / rate < Decimal("0.000001")
    if rate == 8_000:  # 125 us a sample: exact in microseconds
        assert measured.audio_seconds == Decimal(frames) / 8_000


@pytest.mark.parametrize("vad", ["silero", "webrtc:3"])
@pytest.mark.parametrize("noise", [None, NOISE], ids=["digital-silence", "noise-floor"])
@pytest.mark.parametrize("rate", RATES)
def test_speech_is_the_known_speech(kit: AudioKit, rate: int, noise: str | None, vad: str) -> None:
    path, speech = kit.call(f"speech-{rate}-{noise}.wav", rate, [0, 1, 2], [1.5, 2.0, 1.0, 1.0], noise=noise)
    measured = measure_file(path, parse_vad(vad))
    assert_speech_near(measured, speech, rate, 3, vad, noisy=noise is not None)
    assert measured.speech_seconds < measured.audio_seconds - Decimal("4.5")  # the 5.5 s of silence is gone


@pytest.mark.parametrize(
    ("vad", "rate", "heard_at"),
    [
        ("silero", 48_000, 16_000),
        ("webrtc:3", 48_000, 48_000),
        ("silero", 8_000, 8_000),
        ("webrtc:3", 44_100, 16_000),
    ],
)
def test_the_detector_hears_its_own_rate_or_16_khz(kit: AudioKit, vad: str, rate: int, heard_at: int) -> None:
    path, _ = kit.call(f"rate-{rate}.wav", rate, [0], [0.5, 0.5])
    measured = measure_file(path, parse_vad(vad))
    assert measured.vad_rate == heard_at
    assert f"at {heard_at} Hz" in measured.vad


@pytest.mark.parametrize("vad", ["silero", "webrtc:3"])
def test_silence_only_is_no_speech(kit: AudioKit, vad: str) -> None:
    digital = measure_file(kit.silence(5 * 16_000, 16_000), parse_vad(vad))
    assert digital.audio_seconds == Decimal(5) and digital.speech_seconds == 0
    hiss = measure_file(kit.silence(5 * 44_100, 44_100, noise=NOISE), parse_vad(vad))
    # WebRTC calls its first three frames of a noise floor speech while it learns the noise: 0.09 s
    assert hiss.audio_seconds == Decimal(5) and hiss.speech_seconds <= Decimal("0.09")


def test_stereo_speech_is_the_time_either_channel_speaks(kit: AudioKit) -> None:
    rate = 44_100
    first, second = (kit.frames(kit.utterance(i, rate)) for i in (3, 4))
    # left speaks first, right answers after a 1.5 s pause; each channel is silent while the other speaks
    left, _ = kit.call("left.wav", rate, [3], [1.0, 1.5 + second / rate + 1.0])
    right = kit.join(
        "right.wav",
        [
            kit.silence(rate + first + round(1.5 * rate), rate),
            kit.utterance(4, rate),
            kit.silence(rate, rate),
        ],
    )
    assert kit.frames(left) == kit.frames(right)
    stereo = kit.stereo("stereo.wav", left, right)
    for vad in ("silero", "webrtc:3"):
        measured = measure_file(stereo, parse_vad(vad))
        assert measured.channels == 2 and measured.frames == kit.frames(left)
        assert measured.audio_seconds == seconds_up(kit.frames(left), rate)
        assert_speech_near(measured, first + second, rate, 2, vad)
        alone = [measure_file(p, parse_vad(vad)).speech_seconds for p in (left, right)]
        assert measured.speech_seconds == sum(alone)  # no overlap: the union is the sum


def test_the_same_speech_on_both_channels_counts_once(kit: AudioKit) -> None:
    mono, _ = kit.call("dual-mono.wav", 16_000, [5], [1.0, 1.0])
    both = kit.stereo("dual-stereo.wav", mono, mono)
    for vad in ("silero", "webrtc:3"):
        assert (
            measure_file(both, parse_vad(vad)).speech_seconds
            == measure_file(mono, parse_vad(vad)).speech_seconds
        )


@pytest.mark.parametrize(
    ("name", "convert"),
    [("pcm24", ["-b", "24"]), ("float32", ["-e", "floating-point", "-b", "32"]), ("pcm8", ["-b", "8"])],
)
def test_other_encodings_measure_the_same(kit: AudioKit, name: str, convert: list[str]) -> None:
    pcm16, speech = kit.call("encoding-16.wav", 16_000, [0, 1], [1.0, 1.5, 1.0])
    other = kit.join(f"encoding-{name}.wav", [pcm16], convert=convert)
    measured = measure_file(other, parse_vad("silero"))
    assert measured.frames == kit.frames(pcm16) and measured.audio_seconds == seconds_up(
        measured.frames, 16_000
    )
    assert_speech_near(measured, speech, 16_000, 2, "silero")


@pytest.mark.parametrize(("vad", "rate"), [("silero", 44_100), ("webrtc:3", 16_000)])
def test_block_size_does_not_change_the_result(
    kit: AudioKit, monkeypatch: pytest.MonkeyPatch, vad: str, rate: int
) -> None:
    path, _ = kit.call(f"blocks-{rate}.wav", rate, [0, 1], [1.0, 1.0, 1.0])
    whole = measure_file(path, parse_vad(vad))
    monkeypatch.setattr(audio_module, "BLOCK_FRAMES", 1_001)  # odd blocks, frames split across them
    split = measure_file(path, parse_vad(vad))
    assert split.frames == whole.frames
    assert abs(split.speech_seconds - whole.speech_seconds) <= FRAME[vad]  # resampler chunking


def test_an_empty_wav_lasts_zero_seconds(kit: AudioKit) -> None:
    measured = measure_file(kit.silence(0, 16_000), parse_vad("silero"))
    assert (measured.audio_seconds, measured.speech_seconds) == (0, 0)


def test_a_file_that_is_not_audio_is_refused_with_its_name_and_why(tmp_path: Path) -> None:
    bad = tmp_path / "notes.wav"
    bad.write_text("this is not audio\n")
    with pytest.raises(InputError, match=r"notes\.wav: cannot read it as audio: Format not recognised"):
        measure_file(bad, parse_vad("silero"))


def test_a_cut_short_wav_is_refused_with_its_name_and_why(kit: AudioKit, tmp_path: Path) -> None:
    whole, _ = kit.call("whole.wav", 16_000, [0], [0.5, 0.5])
    cut = tmp_path / "cut.wav"
    cut.write_bytes(whole.read_bytes()[:40_000])
    with pytest.raises(
        InputError, match=r"cut\.wav: cut short: its WAV header declares \d+ bytes .* holds 39956"
    ):
        measure_file(cut, parse_vad("webrtc"))


def with_data_size(whole: bytes, size: int) -> bytes:
    at = whole.index(b"data") + 4
    return whole[:at] + struct.pack("<I", size) + whole[at + 4 :]


def test_a_never_finalised_wav_is_refused_and_a_streamed_one_read_to_the_end(
    kit: AudioKit, tmp_path: Path
) -> None:
    whole, _ = kit.call("streamed.wav", 16_000, [0], [0.5, 0.5])
    unfinished = tmp_path / "unfinished.wav"
    unfinished.write_bytes(with_data_size(whole.read_bytes(), 0))  # libsndfile alone reads 0 frames
    with pytest.raises(
        InputError, match=r"unfinished\.wav: its WAV header declares no audio .* sox --ignore-length"
    ):
        measure_file(unfinished, parse_vad("silero"))
    streamed = tmp_path / "to-the-end.wav"
    streamed.write_bytes(with_data_size(whole.read_bytes(), 0xFFFFFFFF))
    assert measure_file(streamed, parse_vad("silero")).frames == kit.frames(whole)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nothing\.wav: no such file"):
        measure_file(tmp_path / "nothing.wav", parse_vad("silero"))
