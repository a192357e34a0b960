"""Speech time from a detector's frame decisions: the one place where frames become samples of speech.

Pure: no audio, no detector, no clock. A detector says, frame by frame, speech or not; this module adds up
the speech frames' samples and bridges short pauses (``min_silence_samples``): a run of non-speech frames
shorter than that, with speech on both sides, counts as speech, since a pause between words is not silence
a provider strips. Nothing is padded before the first speech frame or after the last one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

#: Default: a pause shorter than this between two speech frames counts as speech (word gaps, stop closures).
MIN_SILENCE_MS: Final = 300


@dataclass(slots=True)
class SpeechCounter:
    """Adds up speech samples frame by frame, bridging pauses shorter than ``min_silence_samples``.

    >>> counter = SpeechCounter(min_silence_samples=3)
    >>> for speech in (True, False, False, True, False, False, False, True, False):
    ...     counter.add(speech, 1)
    >>> counter.speech_samples  # 1, 2 bridged, 1, then a 3-sample pause (silence), 1; the tail is silence
    5
    """

    min_silence_samples: int
    speech_samples: int = 0
    _pause: int = field(default=0, repr=False)  # non-speech samples since the last speech frame
    _heard: bool = field(default=False, repr=False)  # a speech frame seen: a pause needs speech before

    def add(self, speech: bool, samples: int) -> None:
        """One frame of ``samples`` samples, speech or not."""
        if not speech:
            self._pause += samples
            return
        if self._heard and self._pause < self.min_silence_samples:
            self.speech_samples += self._pause
        self.speech_samples += samples
        self._pause = 0
        self._heard = True


def speech_samples(decisions: list[tuple[bool, int]], min_silence_samples: int) -> int:
    """Speech samples in ``(speech, samples)`` frames, pauses under ``min_silence_samples`` bridged.

    >>> speech_samples([(True, 480), (False, 480), (True, 480)], min_silence_samples=0)
    960
    >>> speech_samples([(True, 480), (False, 480), (True, 480)], min_silence_samples=4800)
    1440
    """
    counter = SpeechCounter(min_silence_samples)
    for speech, samples in decisions:
        counter.add(speech, samples)
    return counter.speech_samples
