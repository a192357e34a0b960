"""Test audio made by the tests themselves: espeak-ng speaks known text, sox makes silence and joins them.

Every file is built from parts whose lengths are known in samples, so a test knows exactly how long the
file is and where its speech is. The parts are trimmed of espeak's own leading and trailing silence (sox
``silence``), so an utterance's length is its speech span; the text has no punctuation, hence no pause
inside an utterance longer than a word gap.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

SENTENCES = (
    "the quick brown fox jumps over the lazy dog",
    "metering voice calls is harder than it looks",
    "every provider defines its billable minute in its own way",
    "some strip the silence and bill only the speech they hear",
    "others bill the whole file from the first sample to the last",
    "a stereo call may be billed once or once for every channel",
    "rounding up to the next block adds a little to every call",
    "so keep the actual the reported and the billable time apart",
)


def require(ready: bool, why: str) -> None:
    """Go on if ``ready``; else skip with ``why``, or fail in CI (``CI=true``), which installs everything."""
    if ready:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{why} (CI installs it: .ci/apt-packages and the audio extra)")
    pytest.skip(why)


@dataclass
class AudioKit:
    """Makes WAV files in ``root`` and remembers each part's length in samples."""

    root: Path
    _made: dict[str, Path] = field(default_factory=dict)

    def _sox(self, *args: object) -> None:
        # -R: sox's dither (added when it lowers the bit depth) repeats from run to run
        subprocess.run(["sox", "-R", *(str(a) for a in args)], check=True, capture_output=True)

    def frames(self, path: Path) -> int:
        """The file's length in samples, as sox counts it (independent of the code under test)."""
        done = subprocess.run(["soxi", "-s", str(path)], check=True, capture_output=True, text=True)
        return int(done.stdout.strip())

    def utterance(self, index: int, rate: int) -> Path:
        """Sentence ``index`` spoken by espeak-ng, trimmed of leading and trailing silence, 16-bit mono."""
        key = f"u{index}-{rate}"
        if key not in self._made:
            raw = self.root / f"espeak-{index}.wav"
            if not raw.exists():
                subprocess.run(
                    ["espeak-ng", "-w", str(raw), SENTENCES[index]], check=True, capture_output=True
                )
            out = self.root / f"{key}.wav"
            trim = ("silence", 1, "0.01", "0.1%")
            self._sox(raw, "-r", rate, "-b", 16, out, *trim, "reverse", *trim, "reverse")
            self._made[key] = out
        return self._made[key]

    def silence(self, frames: int, rate: int, *, noise: str | None = None) -> Path:
        """``frames`` samples of digital silence, or of white noise at amplitude ``noise`` (a room's hiss)."""
        out = self.root / f"silence-{frames}-{rate}-{noise}.wav"
        if not out.exists():
            source = (
                ("synth", f"{frames}s", "whitenoise", "vol", noise) if noise else ("trim", 0, f"{frames}s")
            )
            # -r before -n: the null input's rate; -D: no dither, so digital silence is all zeros
            self._sox("-r", rate, "-c", 1, "-n", "-D", "-b", 16, out, *source)
        return out

    def join(self, name: str, parts: Sequence[Path], *, convert: Sequence[object] = ()) -> Path:
        """The parts one after another in one file; ``convert`` adds sox output options (``-b 24``)."""
        out = self.root / name
        self._sox(*parts, *convert, out)
        return out

    def stereo(self, name: str, left: Path, right: Path) -> Path:
        """Two mono files of equal length as the left and right channels of one file."""
        out = self.root / name
        self._sox("-M", left, right, out)
        return out

    def call(
        self,
        name: str,
        rate: int,
        utterances: Sequence[int],
        gaps: Sequence[float],
        *,
        noise: str | None = None,
    ) -> tuple[Path, int]:
        """Silence ``gaps[0]`` s, utterance, silence ``gaps[1]`` s, ... (one more gap than utterances).

        Returns the file and its speech in samples (the utterances' lengths).
        """
        assert len(gaps) == len(utterances) + 1
        parts = [self.silence(round(gaps[0] * rate), rate, noise=noise)]
        speech = 0
        for index, gap in zip(utterances, gaps[1:], strict=True):
            spoken = self.utterance(index, rate)
            speech += self.frames(spoken)
            parts += [spoken, self.silence(round(gap * rate), rate, noise=noise)]
        return self.join(name, parts), speech
