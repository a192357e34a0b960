"""The dashboard's browser tests: a real ``talktime dashboard`` on a free loopback port over a generated
month, driven by Playwright with Debian's chromium (``apt-get install chromium``; CI installs it from
``.ci/apt-packages``). Without Playwright or chromium they are skipped on a developer's machine with the
reason, and fail in CI (``CI=true``)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from talktime.io.records_io import write_records
from talktime.synth import synthetic_month
from web.kit import HELD_CALL, INCOMPLETE_CALL, UNKNOWN_CARRIER, start_dashboard


@pytest.fixture(scope="session")
def month(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """300 whole calls over October 2026, one leg of an unknown carrier in call 3, and in call 5 a second
    stream whose speech is longer than its audio (implausible: held back from the invoice)."""
    records = list(synthetic_month(300, seed=7, whole_call=True))
    leg = next(r for r in records if r.session == INCOMPLETE_CALL and r.kind == "leg")
    records.append(dataclasses.replace(leg, id=f"{leg.id}-transfer", provider=UNKNOWN_CARRIER))
    stream = next(r for r in records if r.session == HELD_CALL and r.kind == "stream")
    assert stream.audio_seconds is not None
    speech = stream.audio_seconds + 30
    records.append(dataclasses.replace(stream, id=f"{stream.id}-echo", speech_seconds=speech))
    path = tmp_path_factory.mktemp("month") / "month.parquet"
    write_records(path, records)
    return path


@pytest.fixture(scope="session")
def dashboard(month: Path) -> Iterator[str]:
    server, url = start_dashboard(month)
    try:
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture
def expected_errors() -> list[str]:
    """Console messages a test expects (a 403 page it asks for logs one): each one here is allowed."""
    return []


@pytest.fixture
def page(browser: Any, expected_errors: list[str]) -> Iterator[Any]:
    """A fresh page; any console error or uncaught exception in it fails the test, but for the messages
    the test put in ``expected_errors``."""
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    opened = context.new_page()
    errors: list[str] = []
    opened.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    opened.on("pageerror", lambda e: errors.append(str(e)))
    try:
        yield opened
        unexpected = [e for e in errors if e not in expected_errors]
        assert unexpected == [], f"console errors: {unexpected}"
    finally:
        context.close()


@pytest.fixture(scope="session")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go: ``TALKTIME_SCREENSHOTS`` (docs/images to refresh the docs), else a temp dir."""
    chosen = os.environ.get("TALKTIME_SCREENSHOTS")
    return Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
