"""Held calls marked where their numbers are shown, in a real browser: a caller record planted to last 30 h
(the guards hold it back from the invoice, ``call-too-long``) is marked HELD with its reason on /calls, and
its customer's month on the overview says it includes a held call that is priced there but not invoiced;
in file mode (``talktime dashboard``) and served (``talktime serve``, the tenant's stored records)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from support.stored import store_records
from talktime.app.cards import price_card
from talktime.app.keys import create_key
from talktime.core.invoicing.periods import period_label
from talktime.core.records import UsageRecord
from talktime.io.records_io import write_records
from talktime.store import open_store
from talktime.synth import synthetic_month
from web.kit import sign_in, start_dashboard, start_serve

READY = 180_000  # ms: the first snapshot, on 2 shared cores


@dataclasses.dataclass(frozen=True)
class Planted:
    records: list[UsageRecord]
    customer: str
    session: str
    period: str  # the customer's month, as the overview's rows name it


@pytest.fixture(scope="module")
def planted() -> Planted:
    """Forty whole calls of last month (UTC), one caller record ending 30 h after it started."""
    this = datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    last = (this - timedelta(days=1)).replace(day=1)
    records = list(synthetic_month(40, seed=3, month=last, whole_call=True))
    i, caller = next((i, r) for i, r in enumerate(records) if r.id.endswith("-caller"))
    records[i] = dataclasses.replace(caller, ended_at=caller.started_at + timedelta(hours=30))
    assert caller.customer is not None
    first = min(r.started_at for r in records if r.session == caller.session)
    prices = price_card(Path("plan-call-minute.toml"))
    assert prices is not None
    period = period_label(first, prices.customer(caller.customer).timezone)
    return Planted(records, caller.customer, caller.session, period)


@pytest.fixture(scope="module")
def file_mode(planted: Planted, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    path = tmp_path_factory.mktemp("held-marks") / "month.parquet"
    write_records(path, planted.records)
    server, url = start_dashboard(path)
    try:
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


def _marked(page: Any, url: str, planted: Planted) -> None:
    page.goto(f"{url}/calls?customer={planted.customer}")
    row = page.locator(f"tr[data-session='{planted.session}'][data-customer='{planted.customer}']")
    assert row.count() == 1
    flag = row.locator("td.flag").inner_text()
    assert "HELD" in flag and "call-too-long" in flag
    others = page.locator("table.calls tbody tr td.flag", has_text="HELD")
    assert others.count() == 1  # no other call is marked
    assert "HELD: a record is held back by the plausibility guards" in page.locator("p.count").inner_text()
    page.goto(url + "/")
    month = page.locator("tr", has=page.locator(f"th a:text-is('{planted.customer}')")).filter(
        has_text=planted.period
    )
    assert month.count() == 1
    text = month.inner_text()
    assert "HELD" in text and "includes 1 held call (call-too-long)" in text and "not invoiced" in text
    assert (
        "1 call includes records the plausibility guards hold back" in page.locator(".held-note").inner_text()
    )
    assert page.locator("td", has_text="HELD").count() == 1  # only that customer's month


def test_file_mode_marks_the_held_call_and_its_month(page: Any, file_mode: str, planted: Planted) -> None:
    _marked(page, file_mode, planted)


def test_served_marks_the_held_call_and_its_month(
    page: Any, planted: Planted, tmp_path_factory: pytest.TempPathFactory
) -> None:
    store = str(tmp_path_factory.mktemp("served-held") / "events.duckdb")
    store_records(store, "acme-platform", planted.records)
    opened = open_store(store)
    try:
        key = create_key(opened, "acme-platform").key
    finally:
        opened.close()
    server, url, _ = start_serve(store)
    try:
        sign_in(page, url, key, READY)
        _marked(page, url, planted)
    finally:
        server.terminate()
        server.wait(timeout=20)
