"""The customer's "this month" is its billing month, in its time zone, as on its invoice.

A real server on loopback (the API with the served dashboard, uvicorn in a thread, its clock fixed at
12:00 UTC on 31 October 2026, which is 01:00 on 1 November in Auckland) over a DuckDB store, driven by
Debian's chromium. The customer is in Pacific/Auckland on the price card: one of its calls started five
minutes after its November began (still 31 October in UTC), another five minutes before. Its usage page
shows November, says the zone, and its total is ``GET /v1/invoices``'s for November; its calls page lists
the call inside the month, at its local time, and not the one outside.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from importlib.resources import files
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from support.stored import store_records
from talktime.api import create_app
from talktime.app.cards import cost_card
from talktime.app.keys import create_key
from talktime.core.records import UsageRecord
from talktime.io.ratecards import load_price_card
from talktime.store import open_store
from talktime.synth import synthetic_month
from talktime.web.served import ServedDashboard, ServedOptions
from web.kit import COSTS, PRICES, READY, call_moved, free_port, sign_in

TENANT = "acme-platform"
CUSTOMER = "blue-bank"
ZONE = "Pacific/Auckland"
NOW = datetime(2026, 10, 31, 12, 0, tzinfo=UTC)  # 2026-11-01 01:00 in Auckland (NZDT, UTC+13)
NOVEMBER_BEGINS = datetime(2026, 10, 31, 11, 0, tzinfo=UTC)  # midnight in Auckland
INSIDE = "call-inside"  # started 00:05 on 1 November, Auckland time
OUTSIDE = "call-outside"  # started 23:55 on 31 October, Auckland time


@dataclass(frozen=True)
class Zoned:
    url: str
    customer_key: str


def _records() -> list[UsageRecord]:
    """October's calls of every customer that ended an hour before the first Auckland midnight of
    November, and two of blue-bank's calls moved to either side of it."""
    month = list(synthetic_month(120, seed=11, whole_call=True))
    calls: dict[str, list[UsageRecord]] = {}
    for record in month:
        calls.setdefault(record.session or record.id, []).append(record)
    kept = [
        r
        for rs in calls.values()
        if all(r.ended_at is not None and r.ended_at < NOVEMBER_BEGINS - timedelta(hours=1) for r in rs)
        for r in rs
    ]
    theirs = [rs for rs in calls.values() if rs[0].customer == CUSTOMER and len(rs) > 2]
    inside = call_moved(theirs[0], INSIDE, NOVEMBER_BEGINS + timedelta(minutes=5))
    outside = call_moved(theirs[1], OUTSIDE, NOVEMBER_BEGINS - timedelta(minutes=5))
    assert all(r.ended_at is not None and r.ended_at < NOW for r in inside + outside)
    return kept + inside + outside


@pytest.fixture(scope="module")
def zoned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Zoned]:
    folder = tmp_path_factory.mktemp("zoned")
    card_file = folder / "plan.toml"
    original = files("talktime.ratecards").joinpath(PRICES).read_text()
    assert 'timezone = "Europe/Berlin"' in original, "blue-bank's zone in the example plan"
    card_file.write_text(original.replace('timezone = "Europe/Berlin"', f'timezone = "{ZONE}"'))
    prices = load_price_card(card_file)
    assert prices.customer(CUSTOMER).timezone == ZONE

    store_path = str(folder / "events.duckdb")
    store_records(store_path, TENANT, _records())
    store = open_store(store_path)
    key = create_key(store, TENANT, customer=CUSTOMER).key
    options = ServedOptions(cost_card(Path(COSTS)), prices, "zoned test store", clock=lambda: NOW)
    dashboard = ServedDashboard(store, options)
    app = create_app(store, clock=lambda: NOW, prices=prices, dashboard=dashboard)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, name="talktime-zoned-server", daemon=True)
    thread.start()
    for _ in range(1000):  # wait for it to listen (not a timing assertion: it only has to come up)
        if server.started:
            break
        time.sleep(0.01)
    try:
        yield Zoned(f"http://127.0.0.1:{port}", key)
    finally:
        server.should_exit = True
        thread.join(20)  # its lifespan's end shuts the dashboard down: nothing queued runs any more
        _wait_for_the_running_job(dashboard)
        store.close()


def _wait_for_the_running_job(dashboard: ServedDashboard) -> None:
    """Let the job still running on the snapshot's worker end: a thread killed inside DuckDB when the
    interpreter exits aborts the process."""
    view = dashboard.snapshots.view(TENANT)
    deadline = time.monotonic() + 120
    while view is not None and "running" in view.board.jobs.states().values():
        assert time.monotonic() < deadline, "a dashboard job did not end in 2 minutes"
        time.sleep(0.1)


def _invoice(zoned: Zoned, period: str) -> dict[str, Any]:
    answer = httpx.get(
        f"{zoned.url}/v1/invoices",
        params={"customer": CUSTOMER, "period": period},
        headers={"Authorization": f"Bearer {zoned.customer_key}"},
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def test_this_month_is_the_customers_billing_month_in_its_zone(page: Any, zoned: Zoned) -> None:
    sign_in(page, zoned.url, zoned.customer_key, READY)
    page.wait_for_selector("dl.totals", timeout=READY)
    assert page.locator("h1").inner_text() == "Your usage in 2026-11", "Auckland's month, not UTC's October"
    said = page.locator("p.period").inner_text()
    assert "1\u201330 November 2026" in said and ZONE in said, said

    november, october = _invoice(zoned, "2026-11"), _invoice(zoned, "2026-10")
    shown = Decimal(page.locator("dl.totals dd").nth(3).get_attribute("data-exact") or "NaN")
    assert shown == Decimal(november["total"]), "the page's total is GET /v1/invoices's for November"
    assert shown != Decimal(october["total"])
    billable = Decimal(page.locator("dl.totals dd").nth(1).get_attribute("data-exact") or "NaN")
    (minutes,) = [line for line in november["lines"] if line["kind"] == "usage" and line["unit"] == "minute"]
    assert billable == Decimal(minutes["billable_base"]) / 60, "the minutes billed are November's line's"
    page.wait_for_selector(".plot .main-svg")
    assert ZONE in page.locator("figcaption").inner_text()

    page.goto(zoned.url + "/calls")
    rows = page.locator("#customer-calls tbody tr")
    assert [rows.nth(i).locator("th").inner_text() for i in range(rows.count())] == [INSIDE]
    assert page.locator("#customer-calls thead").inner_text().count(ZONE) == 1
    assert rows.first.locator("td").first.inner_text().startswith("2026-11-01 00:05:"), (
        "its start, local time"
    )

    page.goto(zoned.url + "/calls?period=2026-10")
    october_calls = page.locator("#customer-calls tbody th").all_inner_texts()
    assert OUTSIDE in october_calls and INSIDE not in october_calls, "23:55 on 31 October is October's"
