"""The invoices and what-if pages in a real browser: they load without console errors and fill in by
themselves when the background work is done; each invoice's total is ``talktime invoice --format json``'s,
its held-back records say INCOMPLETE, its PDF link answers a PDF; finalised invoices of a ``--ledger`` are
listed with their numbers; the what-if charts draw and a switch chosen draws its own; and the dashboard
command ``talktime demo`` prints works as printed from a fresh clone's layout."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from web.kit import HELD_CALL, PRICES, free_port, start_dashboard

READY = 180_000  # ms: every customer's invoices and the what-if runs, on 2 shared cores


def _invoice_json(month: Path, customer: str, period: str, *extra: str) -> dict[str, Any]:
    command = [sys.executable, "-m", "talktime", "invoice", "--customer", customer, "--period", period]
    command += ["--records", str(month), "--prices", PRICES, "--format", "json", *extra]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    found: dict[str, Any] = json.loads(done.stdout)
    return found


def _wait_for_invoices(page: Any) -> None:
    page.wait_for_selector("article.invoice")
    page.wait_for_function("() => !document.querySelector('#invoices .pending')", timeout=READY)


def test_invoices_agree_with_the_invoice_command(page: Any, dashboard: str, month: Path, shots: Path) -> None:
    response = page.goto(dashboard + "/invoices")
    assert response is not None and response.status == 200
    _wait_for_invoices(page)
    articles = page.locator("article.invoice")
    assert articles.count() >= 3
    for i in range(articles.count()):
        article = articles.nth(i)
        customer, period = article.get_attribute("data-customer"), article.get_attribute("data-period")
        expected = _invoice_json(month, customer, period)
        shown = article.locator("td[data-col=total]").get_attribute("data-exact")
        assert Decimal(shown or "NaN") == Decimal(expected["total"]), (customer, period)
        assert "Draft" in article.inner_text()
        if expected["held"]:
            note = article.locator("p.note", has_text="INCOMPLETE")
            assert note.count() == 1 and HELD_CALL in note.inner_text(), (customer, period)
    assert page.locator("p.note", has_text="INCOMPLETE").count() == 1  # only the month holding the call
    page.screenshot(path=str(shots / "dashboard-invoices.png"), full_page=True)


def test_the_pdf_link_answers_a_pdf(page: Any, dashboard: str) -> None:
    page.goto(dashboard + "/invoices")
    _wait_for_invoices(page)
    link = page.locator("a.pdf").first
    response = page.request.get(dashboard + (link.get_attribute("href") or ""))
    assert response.status == 200
    assert response.headers["content-type"] == "application/pdf"
    assert response.body().startswith(b"%PDF-")


@pytest.fixture(scope="module")
def ledger_dashboard(month: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A second dashboard over the same month, with a ledger holding one finalised invoice."""
    ledger = tmp_path_factory.mktemp("ledger")
    command = [sys.executable, "-m", "talktime", "invoice", "finalize", "--customer", "blue-bank"]
    command += ["--period", "2026-10", "--records", str(month), "--prices", PRICES, "--ledger", str(ledger)]
    command += ["--at", "2026-11-02T09:00:00+00:00"]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    number = re.search(r"as invoice (\S+),", done.stdout)
    assert number, done.stdout
    server, url = start_dashboard(month, "--ledger", str(ledger))
    try:
        yield url, number.group(1)
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_finalised_invoices_come_from_the_ledger(page: Any, ledger_dashboard: tuple[str, str]) -> None:
    url, number = ledger_dashboard
    page.goto(url + "/invoices")
    _wait_for_invoices(page)
    row = page.locator("table.ledger tbody tr")
    assert row.count() == 1 and number in row.inner_text()
    finalised = page.locator("article.invoice[data-customer=blue-bank][data-period='2026-10']")
    assert f"Finalised invoice {number}" in finalised.inner_text()


def test_what_if_charts_draw_and_a_switch_draws_its_own(page: Any, dashboard: str, shots: Path) -> None:
    response = page.goto(dashboard + "/whatif")
    assert response is not None and response.status == 200
    page.wait_for_selector("#switch-figure", state="attached", timeout=READY)
    page.wait_for_selector("[data-figure=switch-figure] .main-svg")
    assert page.locator("[data-figure^=rounding] .main-svg").count() >= 2  # telephony and STT
    in_use = page.locator("table.rounding tr.in-use th").all_inner_texts()
    assert any("twilio-voice" in name for name in in_use)
    first = page.locator("[data-figure=switch-figure] .legend").text_content() or ""
    page.screenshot(path=str(shots / "dashboard-whatif.png"), full_page=True)
    choice = page.locator("select[name=switch] option", has_text="assemblyai").get_attribute("value")
    page.select_option("select[name=switch]", choice)
    page.wait_for_url(f"**/whatif?switch={choice}")
    page.wait_for_function(
        "() => (document.querySelector('[data-figure=switch-figure] .legend') || {}).textContent"
        "?.includes('assemblyai')",
        timeout=READY,
    )
    assert "assemblyai" not in first


def test_the_demo_prints_a_dashboard_command_that_works(tmp_path: Path) -> None:
    """``talktime demo`` in a fresh clone's layout (.venv/bin/talktime, no talktime on the PATH) ends with
    the dashboard command for its month; run as printed, it serves the month."""
    venv = tmp_path / ".venv" / "bin"
    venv.mkdir(parents=True)
    (venv / "talktime").symlink_to(Path(sys.executable).with_name("talktime"))
    env = {**os.environ, "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [str(venv / "talktime"), "demo"], cwd=tmp_path, env=env, capture_output=True, text=True, check=True
    )
    printed = re.search(r"See the month in a browser: (.+?)\s+\(then open", " ".join(done.stdout.split()))
    assert printed, done.stdout[-2000:]
    command = shlex.split(printed.group(1))
    assert command[:2] == [".venv/bin/talktime", "dashboard"]
    port = free_port()
    command += ["--port", str(port)]
    server = subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as answer:
                    assert answer.status == 200
                    assert "month.csv" in answer.read().decode()
                    return
            except OSError:
                time.sleep(0.3)
        pytest.fail(f"the printed command did not serve: {server.stderr.read() if server.stderr else b''!r}")
    finally:
        server.terminate()
        server.wait(timeout=10)
