"""Fixtures every test directory shares.

``browser``: one chromium for the whole run, driven by Playwright's sync API. Playwright allows one sync
session per thread: two fixtures each holding one (say, one per test directory) fail the second with "using
Playwright Sync API inside the asyncio loop" whenever their scopes overlap, so there is only this one.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from typing import Any

import pytest

from web.kit import CHROMIUM, need


@pytest.fixture(scope="session")
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
