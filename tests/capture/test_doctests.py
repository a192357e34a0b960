"""The examples in the capture modules' docstrings run as written."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["talktime.capture.events", "talktime.capture.pipecat", "talktime.capture.livekit"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = pytest.importorskip(name)
    result = doctest.testmod(importlib.import_module(module.__name__), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0
