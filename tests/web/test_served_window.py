"""The served dashboard's window holds every listed month of every customer whole, whatever its time zone.

A real server on loopback (the API with the served dashboard, uvicorn in a thread, its clock fixed at 12:00
UTC on 30 November 2026, the window ``--dashboard-months 2``: October and November as the operator counts
them) over a DuckDB store, driven by Debian's chromium. On the price card one customer bills in
America/New_York (UTC-4 in October) and one in Pacific/Kiritimati (UTC+14); each has calls five minutes
either side of its own local midnights around October. Kiritimati's October begins at 10:00 UTC on
30 September, so the window opens then (the earliest local midnight of the card's zones); New York's
September then has the window's first hours (from 06:00 on 30 September, local), a month no page lists.
For each customer, the served invoices page lists October and November, and each total is ``GET
/v1/invoices``'s for that month; the operator's invoices page lists the same months. With a one-month
window at 02:00 UTC on 1 December, New York's November (its "this month") is still whole in the window,
which opens at its November midnight.

Before the window opened at the earliest local midnight (it opened at 00:00 UTC on 1 October), Kiritimati's
October lacked its first call (the served total was less than the API's) and New York's September was
listed as a stub invoice of its last hours (the platform fee and one call).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from importlib.resources import files
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import uvicorn

from support.stored import store_records
from talktime.api import create_app
from talktime.app.cards import cost_card
from talktime.app.keys import create_key
from talktime.core.records import UsageRecord
from talktime.io.guards import load_guards
from talktime.io.ratecards import load_price_card
from talktime.store import open_store
from talktime.synth import synthetic_month
from talktime.web.served import ServedDashboard, ServedOptions
from web.kit import COSTS, PRICES, READY, call_moved, free_port, sign_in

TENANT = "acme-platform"
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)  # the snapshot's moment: 1 December, 02:00 on Kiritimati
MONTHS = 2  # the window: October and November 2026, as the operator (UTC) counts them
WEST, WEST_ZONE = "acme-health", "America/New_York"
EAST, EAST_ZONE = "blue-bank", "Pacific/Kiritimati"
OPENS = "2026-09-30 10:00 UTC"  # midnight on 1 October on Kiritimati: the earliest of the card's zones
LISTED = ["2026-10", "2026-11"]
#: Each customer's calls: where each starts, in its own zone (5 minutes either side of a local midnight).
#: New York's two September calls are billed on its September invoice: the first before the window, the
#: second inside it (04:00 UTC on 1 October is still September there). Kiritimati's first October call is
#: at 10:05 UTC on 30 September: before 1 October in UTC, inside the window.
STARTS = {
    WEST: {
        "west-september-mid": datetime(2026, 9, 15, 12, 0),
        "west-september-last": datetime(2026, 9, 30, 23, 55),
        "west-october-first": datetime(2026, 10, 1, 0, 5),
        "west-october-last": datetime(2026, 10, 31, 23, 55),
        "west-november-first": datetime(2026, 11, 1, 0, 5),
    },
    EAST: {
        "east-september-last": datetime(2026, 9, 30, 23, 55),
        "east-october-first": datetime(2026, 10, 1, 0, 5),
        "east-october-last": datetime(2026, 10, 31, 23, 55),
        "east-november-first": datetime(2026, 11, 1, 0, 5),
    },
}
ZONES = {WEST: WEST_ZONE, EAST: EAST_ZONE}


@dataclass(frozen=True)
class Window:
    url: str
    operator_key: str
    customer_keys: dict[str, str]


def _records() -> list[UsageRecord]:
    """Whole generated calls of each customer, each moved to start at one of its ``STARTS``."""
    calls: dict[str, list[UsageRecord]] = {}
    for record in synthetic_month(80, seed=11, whole_call=True):
        calls.setdefault(record.session or record.id, []).append(record)
    moved: list[UsageRecord] = []
    for customer, starts in STARTS.items():
        theirs = [rs for rs in calls.values() if rs[0].customer == customer and len(rs) > 2]
        assert len(theirs) >= len(starts), f"not enough generated calls of {customer}"
        for rs, (session, local) in zip(theirs, starts.items(), strict=False):
            start = local.replace(tzinfo=ZoneInfo(ZONES[customer])).astimezone(UTC)
            moved += call_moved(rs, session, start)
    assert all(r.ended_at is not None and r.ended_at < NOW for r in moved)
    return moved


@contextmanager
def _serving(folder: Path, now: datetime, months: int) -> Iterator[Window]:
    """A real server on loopback over a new DuckDB store of :func:`_records`, its clock fixed at ``now``,
    serving the dashboard of the last ``months`` months with the plan's blue-bank moved to Kiritimati."""
    card_file = folder / "plan.toml"
    original = files("talktime.ratecards").joinpath(PRICES).read_text()
    assert 'timezone = "Europe/Berlin"' in original, "blue-bank's zone in the example plan"
    card_file.write_text(original.replace('timezone = "Europe/Berlin"', f'timezone = "{EAST_ZONE}"'))
    prices = load_price_card(card_file)
    assert (prices.customer(WEST).timezone, prices.customer(EAST).timezone) == (WEST_ZONE, EAST_ZONE)
    guards_file = folder / "guards.toml"  # the records stay plausible however long after 2026 this runs
    guards_file.write_text("max_past_days = 36500\n")

    store_path = str(folder / "events.duckdb")
    store_records(store_path, TENANT, _records())
    store = open_store(store_path)
    operator_key = create_key(store, TENANT).key
    customer_keys = {c: create_key(store, TENANT, customer=c).key for c in STARTS}
    options = ServedOptions(
        cost_card(Path(COSTS)),
        prices,
        "window test store",
        guards=guards_file,
        months=months,
        clock=lambda: now,
    )
    dashboard = ServedDashboard(store, options)
    app = create_app(
        store, clock=lambda: now, prices=prices, guards=load_guards(guards_file), dashboard=dashboard
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, name="talktime-window-server", daemon=True)
    thread.start()
    for _ in range(1000):  # wait for it to listen (not a timing assertion: it only has to come up)
        if server.started:
            break
        time.sleep(0.01)
    try:
        yield Window(f"http://127.0.0.1:{port}", operator_key, customer_keys)
    finally:
        _wait_for_the_jobs(dashboard)
        server.should_exit = True
        thread.join(20)  # its lifespan's end shuts the dashboard down
        store.close()


@pytest.fixture(scope="module")
def window(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Window]:
    with _serving(tmp_path_factory.mktemp("window"), NOW, MONTHS) as served:
        yield served


def _wait_for_the_jobs(dashboard: ServedDashboard) -> None:
    """Let every job of the view end before the server stops (seconds over these few calls): a job running
    in a worker process when the server shuts its workers down may never end, and a thread killed inside
    DuckDB when the interpreter exits aborts the process."""
    view = dashboard.snapshots.view(TENANT)
    deadline = time.monotonic() + 180
    while view is not None and {"running", "queued"} & set(view.board.jobs.states().values()):
        assert time.monotonic() < deadline, f"jobs still not done in 3 minutes: {view.board.jobs.states()}"
        time.sleep(0.1)


def _api_total(window: Window, customer: str, period: str) -> Decimal:
    answer = httpx.get(
        f"{window.url}/v1/invoices",
        params={"customer": customer, "period": period},
        headers={"Authorization": f"Bearer {window.customer_keys[customer]}"},
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    return Decimal(answer.json()["total"])


def _listed(page: Any, customer: str) -> dict[str, Decimal]:
    """The customer's months on the invoices page now open, each with its total once worked out."""
    page.wait_for_selector(f"article.invoice[data-customer={customer}]", timeout=READY)
    periods = page.eval_on_selector_all(
        f"article.invoice[data-customer={customer}]", "found => found.map(a => a.dataset.period)"
    )
    totals: dict[str, Decimal] = {}
    for period in periods:
        cell = f"article#inv-{customer}-{period} td[data-col=total]"
        page.wait_for_selector(cell, timeout=READY)
        totals[period] = Decimal(page.locator(cell).get_attribute("data-exact") or "NaN")
    return totals


@pytest.mark.parametrize("customer", [WEST, EAST])
def test_each_customers_oldest_month_is_whole_and_is_the_apis(
    page: Any, window: Window, customer: str
) -> None:
    sign_in(page, window.url, window.customer_keys[customer], READY)
    page.goto(window.url + "/invoices")
    shown = _listed(page, customer)
    assert list(shown) == LISTED, f"{customer}'s months in {ZONES[customer]}: whole ones only"
    for period, total in shown.items():
        assert total == _api_total(window, customer, period), f"{customer} {period}: GET /v1/invoices's"
    assert shown["2026-10"] > 0
    page.goto(window.url + "/calls?period=2026-10")
    sessions = page.locator("#customer-calls tbody th").all_inner_texts()
    assert sessions == [s for s in STARTS[customer] if "october" in s], "October's calls, both ends in"


def test_no_stub_of_a_month_before_the_window(page: Any, window: Window, expected_errors: list[str]) -> None:
    """New York's September is partly in the window (its last local hours): its calls page says the month
    began before the records the dashboard reads, rather than showing a stub; the API has its invoice."""
    expected_errors.append("Failed to load resource: the server responded with a status of 404 (Not Found)")
    sign_in(page, window.url, window.customer_keys[WEST], READY)
    answer = page.goto(window.url + "/calls?period=2026-09")
    assert answer is not None and answer.status == 404
    said = page.locator("main").inner_text()
    assert f"Your month 2026-09 began before the records this dashboard reads (since {OPENS})" in said, said
    assert _api_total(window, WEST, "2026-09") > 0


def test_the_operator_sees_the_same_months_and_when_the_window_opens(page: Any, window: Window) -> None:
    sign_in(page, window.url, window.operator_key, READY)
    assert f"records started since {OPENS}" in page.locator("body").inner_text()
    rows = page.locator("tr[data-customer][data-period]")  # the overview's customer months
    flags = {
        (row.get_attribute("data-customer"), row.get_attribute("data-period")): row.locator(
            "td"
        ).last.inner_text()
        for row in rows.all()
    }
    part = flags.pop((WEST, "2026-09"))  # New York's last September hours: its calls, marked, in words
    assert part.startswith("PART: the month began before the window (records since 2026-09-30 10:00 UTC)")
    assert set(flags) == {(c, p) for c in STARTS for p in LISTED}
    assert not any("PART" in flag for flag in flags.values()), flags
    note = page.locator(".counts-note").inner_text()  # the fees the invoices add: the PART row has none
    assert f"{len(STARTS) * len(LISTED)} customer months here" in note, note
    page.goto(window.url + "/invoices")
    for customer in STARTS:
        shown = _listed(page, customer)
        assert list(shown) == LISTED, f"{customer}: the operator's invoices list whole months only"
        assert shown["2026-10"] == _api_total(window, customer, "2026-10")


def test_a_one_month_window_holds_this_month_of_a_customer_west_of_utc(page: Any, tmp_path: Path) -> None:
    """``--dashboard-months 1`` at 02:00 UTC on 1 December: the operator's month is December, but New York is
    still in November (22:00 on 30 November there). The window opens at New York's November midnight (04:00
    UTC on 1 November), so its "this month" is whole and shown, its total the API's (a reviewer's proof: it
    was not listed, its pages saying the month began before the window, for the first hours of each UTC
    month)."""
    now = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
    with _serving(tmp_path, now, 1) as served:
        sign_in(page, served.url, served.customer_keys[WEST], READY)
        assert page.locator("h1").inner_text() == "Your usage in 2026-11"
        said = page.locator("main").inner_text()
        assert "began before" not in said and "No usage recorded" not in said, said
        page.goto(served.url + "/invoices")
        shown = _listed(page, WEST)
        assert list(shown) == ["2026-11"] and shown["2026-11"] == _api_total(served, WEST, "2026-11")
        page.goto(served.url + "/calls")
        page.wait_for_selector("#customer-calls tbody tr", timeout=READY)  # once its calls are worked out
        assert "west-november-first" in page.locator("#customer-calls tbody").inner_text()
