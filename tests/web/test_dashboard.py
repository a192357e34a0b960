"""The dashboard in a real browser: every page loads without console errors, the calls table filters and
sorts on the server, LOSS and INCOMPLETE are words on the row, the keyboard reaches the sort controls, and a
call's numbers are those of ``talktime margin --by session --format json``."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from talktime.core.decimals import quantize
from web.kit import COSTS, INCOMPLETE_CALL, PRICES

#: The margin column's header (its link sorts by margin; margin % has a link of its own).
MARGIN = "#calls thead th:has(a[href*='sort=margin&'])"
PAGES = {
    "overview": "/",
    "calls": "/calls",
    "calls-loss": "/calls?loss=1&sort=margin",
    "call": f"/call?customer={{customer}}&session={INCOMPLETE_CALL}",
    "methodology": "/methodology",
    "methodology-policy": "/methodology/twilio-voice",
}


@pytest.fixture(scope="module")
def cli_rows(month: Path) -> dict[str, dict[str, Any]]:
    """``talktime margin --by session --format json`` over the same month, by call."""
    command = [sys.executable, "-m", "talktime", "margin", "--records", str(month), "--costs", COSTS]
    command += ["--prices", PRICES, "--by", "session", "--format", "json"]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return {row["session"]: row for row in json.loads(done.stdout)["rows"]}


def _cells(page: Any, column: str) -> list[Decimal]:
    values = page.locator(f"#calls tbody td[data-col='{column}']").evaluate_all(
        "cells => cells.map(c => c.dataset.exact)"
    )
    return [Decimal(v) for v in values]


def _customers(page: Any) -> set[str]:
    return set(page.locator("#calls tbody tr").evaluate_all("rows => rows.map(r => r.dataset.customer)"))


def test_every_page_loads_without_console_errors(
    page: Any, dashboard: str, cli_rows: dict[str, dict[str, Any]], shots: Path
) -> None:
    customer = cli_rows[INCOMPLETE_CALL]["customer"]
    for name, path in PAGES.items():
        response = page.goto(dashboard + path.format(customer=quote(customer)))
        assert response is not None and response.status == 200, name
        page.wait_for_load_state("networkidle")
        assert page.locator("main h1").count() == 1, name
        if name == "overview":
            page.wait_for_selector(".plot .main-svg")  # Plotly drew the charts from the shipped bundle
            assert page.locator(".plot .main-svg").count() >= 3
        page.screenshot(path=str(shots / f"dashboard-{name}.png"), full_page=name != "calls")


def test_no_asset_comes_from_another_host(page: Any, dashboard: str) -> None:
    hosts: set[str] = set()
    page.on("request", lambda r: hosts.add(r.url.split("/")[2]))
    page.goto(dashboard + "/")
    page.wait_for_selector(".plot .main-svg")
    assert hosts == {dashboard.split("/")[2]}


def test_filter_changes_the_rows(page: Any, dashboard: str) -> None:
    page.goto(dashboard + "/calls")
    everyone = _customers(page)
    assert len(everyone) > 1
    chosen = sorted(everyone)[0]
    page.select_option("select[name=customer]", chosen)
    page.wait_for_url(f"**/calls?customer={chosen}*")
    page.wait_for_function(
        "c => [...document.querySelectorAll('#calls tbody tr')].every(r => r.dataset.customer === c)",
        arg=chosen,
    )
    assert _customers(page) == {chosen}
    page.check("input[name=incomplete]")
    page.wait_for_url("**incomplete=1*")
    page.wait_for_function("() => document.querySelectorAll('#calls tbody tr[data-session]').length <= 1")


def test_sorting_by_a_column_header(page: Any, dashboard: str) -> None:
    page.goto(dashboard + "/calls")
    page.click(MARGIN + " a")
    page.wait_for_url("**sort=margin*")
    page.wait_for_selector(MARGIN + "[aria-sort=ascending]")
    ascending = _cells(page, "margin")
    assert ascending == sorted(ascending) and len(ascending) == 100  # one page of 100
    page.click(MARGIN + " a")
    page.wait_for_selector(MARGIN + "[aria-sort=descending]")
    descending = _cells(page, "margin")
    assert descending == sorted(descending, reverse=True)
    assert descending[0] > ascending[0]
    # a filter keeps the sort: the server gets both
    page.check("input[name=loss]")
    page.wait_for_url("**loss=1*")
    assert "sort=margin" in page.url and "dir=desc" in page.url


def test_loss_and_incomplete_calls_say_so_in_words(
    page: Any, dashboard: str, cli_rows: dict[str, dict[str, Any]]
) -> None:
    losses = {s for s, row in cli_rows.items() if row["loss"]}
    assert losses, "the generated month should hold a loss-making call"
    page.goto(dashboard + "/calls?loss=1")
    rows = page.locator("#calls tbody tr")
    assert rows.count() == len(losses)
    for i in range(rows.count()):
        assert "LOSS" in rows.nth(i).locator("td.flag").inner_text()
    page.goto(dashboard + "/calls?incomplete=1")
    flag = page.locator(f"#calls tbody tr[data-session='{INCOMPLETE_CALL}'] td.flag").inner_text()
    assert "INCOMPLETE" in flag
    cost = page.locator(f"#calls tbody tr[data-session='{INCOMPLETE_CALL}'] td[data-col=cost]").inner_text()
    assert cost.startswith("≥")


def test_keyboard_reaches_the_sort_controls(page: Any, dashboard: str) -> None:
    page.goto(dashboard + "/calls")
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.classList.contains('sort')"):
            break
    else:
        pytest.fail("Tab never reached a sort control of the calls table")
    label = page.evaluate("document.activeElement.textContent")
    assert "customer" in label
    page.keyboard.press("Enter")
    page.wait_for_selector("th[aria-sort=ascending] >> text=customer")


def test_a_call_agrees_with_margin_by_session(
    page: Any, dashboard: str, cli_rows: dict[str, dict[str, Any]]
) -> None:
    columns = ("minutes", "cost_telephony", "cost_stt", "cost_llm", "cost_tts", "cost_platform")
    columns += ("cost", "price", "margin", "margin_percent", "cost_per_minute")
    loss = next(s for s, row in cli_rows.items() if row["loss"])
    for session in (INCOMPLETE_CALL, loss):
        expected = cli_rows[session]
        page.goto(dashboard + f"/calls?customer={quote(expected['customer'])}&sort=session")
        row = page.locator(f"#calls tbody tr[data-session='{session}']")
        on_call_page = f"/call?customer={quote(expected['customer'])}&session={session}"
        for target in (row, None):
            if target is None:
                page.goto(dashboard + on_call_page)
                target = page.locator("table.stack").first
            for column in columns:
                shown = target.locator(f"td[data-col='{column}']").get_attribute("data-exact")
                if expected[column] is None:  # no margin % or cost a minute without a price
                    assert shown == "", (session, column)
                    continue
                # the JSON is exact to 12 decimal places (a third of a cent is not exact in any)
                assert quantize(Decimal(shown or "NaN"), 12) == Decimal(expected[column]), (session, column)
        assert len(page.locator("section.record").all()) >= 1
        assert "billable" in page.locator("section.record pre").first.inner_text()
