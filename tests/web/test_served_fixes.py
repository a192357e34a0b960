"""Served by ``talktime serve``, the pages speak of the snapshot, not of a file, and the flagged page links
a held record's call only when the dashboard has it.

Over a store of last month's calls with one caller ending nine years later (held in the window: its call is
on the dashboard) and one whole call moved back to March 2025 (held as starting long ago, before the
window: its ``/call`` page would be a 404), signed in as the tenant in Debian's chromium."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from support.stored import store_records
from talktime.app.keys import create_key
from talktime.core.records import UsageRecord
from talktime.store import open_store
from talktime.synth import synthetic_month
from web.kit import sign_in, start_serve

READY = 180_000  # ms: the first snapshot and the pages' background work, on 2 shared cores
TENANT = "acme-platform"
_TIMES = ("started_at", "ended_at", "answered_at", "first_audio_at", "last_audio_at")


@dataclasses.dataclass(frozen=True)
class Served:
    url: str
    key: str
    runaway: UsageRecord  # held, its call in the window
    old: UsageRecord  # held, its call started before the window


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    this = datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    last = (this - timedelta(days=1)).replace(day=1)  # a month that has ended: every call of it is closed
    records = list(synthetic_month(30, seed=11, month=last, whole_call=True))
    i, caller = next((i, r) for i, r in enumerate(records) if r.id.endswith("-caller"))
    assert caller.ended_at is not None
    records[i] = dataclasses.replace(caller, ended_at=caller.ended_at.replace(year=caller.ended_at.year + 9))
    other = next(r.session for r in records if r.session != caller.session and r.kind == "leg")
    by = datetime(2025, 3, 10, tzinfo=UTC) - min(r.started_at for r in records if r.session == other)
    records = [
        dataclasses.replace(r, **{n: getattr(r, n) + by for n in _TIMES if getattr(r, n) is not None})
        if r.session == other
        else r
        for r in records
    ]
    old = next(r for r in records if r.session == other)
    store = str(tmp_path_factory.mktemp("served-fixes") / "events.duckdb")
    store_records(store, TENANT, records)
    opened = open_store(store)
    try:
        key = create_key(opened, TENANT).key
    finally:
        opened.close()
    server, url, _ = start_serve(store)
    try:
        yield Served(url, key, records[i], old)
    finally:
        server.terminate()
        server.wait(timeout=20)


def _ready(page: Any, section: str) -> None:
    page.wait_for_selector(f"#{section}")
    page.wait_for_function(f"() => !document.querySelector('#{section} .pending')", timeout=READY)


def test_served_pages_say_the_snapshot_not_the_file(page: Any, served: Served) -> None:
    sign_in(page, served.url, served.key, READY)
    page.goto(served.url + "/invoices")
    said = page.locator("main").inner_text()
    assert "for every month of the snapshot" in said and "of the file" not in said, said
    page.goto(served.url + "/whatif")
    said = page.locator("main").inner_text()
    assert "Over this snapshot's" in said and "after each snapshot is made" in said, said
    assert "file" not in said, said


def test_the_flagged_page_links_only_calls_the_dashboard_has(page: Any, served: Served) -> None:
    sign_in(page, served.url, served.key, READY)
    page.goto(served.url + "/flagged")
    _ready(page, "flagged")
    runaway = page.locator(f"tr[data-record='{served.runaway.id}']")
    assert "call-too-long" in runaway.inner_text()
    runaway.get_by_role("link", name=str(served.runaway.session)).click()
    page.wait_for_load_state()
    assert page.locator("h1").inner_text().startswith(f"Call {served.runaway.session}")

    page.goto(served.url + "/flagged")
    _ready(page, "flagged")
    old = page.locator(f"tr[data-record='{served.old.id}']")
    assert "starts-long-ago" in old.inner_text()
    assert old.get_by_role("link", name=str(served.old.session)).count() == 0, "its /call page is a 404"
    said = old.locator(".outside").inner_text()
    assert said.startswith("(outside the dashboard's window: months ") and "calls started since" in said, said
