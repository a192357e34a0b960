"""The alerts page in a real browser (Playwright with Debian's chromium): over a month with anomalies
planted, it lists each one with its customer, the rule in words, the value and the threshold in their units
and the delivery outcome a ``talktime alerts check --send`` left in the state file, in words (no colour
needed), without console errors."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from alerts.planted import (
    COSTS,
    LONG_CALL,
    LONG_CUSTOMER,
    OPEN_CALL,
    OPEN_CUSTOMER,
    PRICES,
    TOKENS_CALL,
    TOKENS_CUSTOMER,
    planted_month,
    receiver,
)
from talktime.cli.alerts import alerts_app
from talktime.io.records_io import write_records
from web.kit import start_dashboard

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A planted month, its alerts sent once to a loopback receiver, then the dashboard with --alerts."""
    folder = tmp_path_factory.mktemp("alerts-page")
    month = folder / "month.parquet"
    write_records(month, planted_month())
    with receiver() as hook:
        config = folder / "alerts.toml"
        config.write_text(
            f'[webhook]\nurl = "{hook.url}"\nsecret_env = "PAGE_ALERTS_SECRET"\n[defaults]\nspend = "15"\n',
            encoding="utf-8",
        )
        command = ["check", "--records", str(month), "--costs", COSTS, "--prices", PRICES]
        sent = CliRunner().invoke(
            alerts_app, [*command, "--config", str(config), "--send"], env={"PAGE_ALERTS_SECRET": SECRET}
        )
        assert sent.exit_code == 1, sent.output
    server, url = start_dashboard(month, "--alerts", str(config))
    try:
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    opened = context.new_page()
    errors: list[str] = []
    opened.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    opened.on("pageerror", lambda e: errors.append(str(e)))
    try:
        yield opened
        assert errors == [], f"console errors: {errors}"
    finally:
        context.close()


def _row(page: Any, rule: str, customer: str) -> Any:
    rows = page.locator(f"tr[data-rule='{rule}'][data-customer='{customer}']")
    assert rows.count() == 1, (rule, customer)
    return rows.first


def test_the_alerts_page_shows_each_planted_anomaly(page: Any, dashboard: str, tmp_path: Path) -> None:
    response = page.goto(dashboard + "/alerts")
    assert response is not None and response.status == 200
    page.wait_for_selector("table.alerts", timeout=120_000)  # checked in the background, then drawn
    assert page.locator("nav a[aria-current=page]").inner_text() == "Alerts"

    long_call = _row(page, "long-call", LONG_CUSTOMER)
    cells = long_call.locator("td, th").all_inner_texts()
    assert cells[:3] == [LONG_CUSTOMER, "call far longer than usual", f"call {LONG_CALL}"]
    assert cells[3] == "100.0 min" and cells[4].startswith("above ") and cells[4].endswith(" min")
    assert long_call.locator("td[data-col=value]").get_attribute("data-exact") == "6000"
    assert "delivered" in cells[6] and "HTTP 200" in cells[6]

    tokens = _row(page, "tokens-per-minute", TOKENS_CUSTOMER)
    assert tokens.locator("td[data-col=value]").inner_text() == "70,000 tokens/min"
    assert f"call {TOKENS_CALL}" in tokens.inner_text()
    assert "210,000 tokens over 3.0 min" in tokens.inner_text()

    stuck = _row(page, "stuck-call", OPEN_CUSTOMER)
    assert stuck.locator("th").inner_text() == "call left open"
    assert stuck.locator("td[data-col=threshold]").inner_text() == "above 60.0 min"
    assert f"of call {OPEN_CALL} is still open" in stuck.inner_text()

    spend = page.locator("tr[data-rule='spend']")
    assert spend.count() >= 3 and "USD" in spend.first.locator("td[data-col=value]").inner_text()

    link = long_call.locator("a")
    link.click()
    page.wait_for_url("**/call?**")
    assert LONG_CALL in page.locator("main").inner_text()

    shots = Path(os.environ.get("TALKTIME_SCREENSHOTS") or tmp_path)
    page.goto(dashboard + "/alerts")
    page.wait_for_selector("table.alerts")
    page.screenshot(path=str(shots / "dashboard-alerts.png"), full_page=True)
