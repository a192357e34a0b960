"""Measuring one file: read it block by block, resample for the detector, detect speech channel by channel.

Every channel is heard by a detector of its own, on the same frame grid; a frame is speech when any channel
speaks in it (a stereo call's caller and agent together), so ``speech_seconds`` is the time in which
someone speaks, never more than the file's duration. The last frame, shorter than a full one, is padded
with zeros for the detector and counted for its real length.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from talktime.measure.audio import Resampler, open_audio
from talktime.measure.record import Measurement
from talktime.measure.speech import MIN_SILENCE_MS, SpeechCounter
from talktime.measure.vad import Detector, Samples, VadSpec, detector_rate, new_detector


def measure_file(path: Path, vad: VadSpec, *, min_silence_ms: int = MIN_SILENCE_MS) -> Measurement:
    """The file's frames, rate and channels, and the detector's speech samples (pauses bridged)."""
    if min_silence_ms < 0:
        raise ValueError("min_silence_ms is not negative")
    with open_audio(path) as audio:
        rate = detector_rate(vad, audio.format.sample_rate)
        channels = audio.format.channels
        detectors = [new_detector(vad, rate) for _ in range(channels)]
        frame = detectors[0].frame_samples
        counter = SpeechCounter(min_silence_samples=-(-min_silence_ms * rate // 1000))
        resample = Resampler(audio.format.sample_rate, rate, channels)
        pending: Samples = np.zeros((0, channels), dtype=np.float32)
        frames = 0
        for block in audio.blocks():
            frames += len(block)
            pending = _detect(np.concatenate((pending, resample(block))), detectors, counter, frame)
        pending = _detect(np.concatenate((pending, resample.flush())), detectors, counter, frame)
        if len(pending):
            padded = np.zeros((frame, channels), dtype=np.float32)
            padded[: len(pending)] = pending
            counter.add(_any_speech(padded, detectors), len(pending))
    described = f"{vad} at {rate} Hz, {frame} samples a frame, pauses under {min_silence_ms} ms bridged"
    return Measurement(
        file=str(path),
        frames=frames,
        sample_rate=audio.format.sample_rate,
        channels=channels,
        speech_samples=counter.speech_samples,
        vad_rate=rate,
        vad=described,
    )


def _detect(samples: Samples, detectors: list[Detector], counter: SpeechCounter, frame: int) -> Samples:
    """Every whole frame of ``samples`` through the detectors; what is left over (less than a frame)."""
    whole = len(samples) - len(samples) % frame
    for begin in range(0, whole, frame):
        counter.add(_any_speech(samples[begin : begin + frame], detectors), frame)
    return samples[whole:]


def _any_speech(frame: Samples, detectors: list[Detector]) -> bool:
    # every channel's detector hears every frame (each keeps its own state), then any speech wins
    heard = [
        detector.is_speech(np.ascontiguousarray(frame[:, channel]))
        for channel, detector in enumerate(detectors)
    ]
    return any(heard)
