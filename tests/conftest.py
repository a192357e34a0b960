"""Fixtures every test directory shares.

``browser``: a chromium per test module, driven by Playwright's sync API. A sync session runs an asyncio
loop on the main thread until it stops: a second one started meanwhile fails ("using Playwright Sync API
inside the asyncio loop"), and so does any later test's ``asyncio.run``. One fixture, closed at the end of
each module that uses it, keeps every session apart from the others and from the tests that follow.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from typing import Any

import pytest

from web.kit import CHROMIUM, need


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    need(importlib.util.find_spec("playwright") is not None, "the browser tests need playwright (dev extra)")
    need(CHROMIUM.exists(), f"the browser tests need chromium at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            yield launched
        finally:
            launched.close()
