"""What the dashboard's browser tests share: the generated month's constants, the server, the skip rule, and
the served tests' helpers (the API called with a key, a customer month's total on the invoices page, a call
moved in time)."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from talktime.core.records import UsageRecord

CHROMIUM = Path(os.environ.get("TALKTIME_CHROMIUM", "/usr/bin/chromium"))
COSTS = "costs-informative.toml"
PRICES = "plan-call-minute.toml"
#: A carrier no cost entry on the informative card prices: its leg makes its call INCOMPLETE.
UNKNOWN_CARRIER = "acme-carrier"
INCOMPLETE_CALL = "call-000003"
#: A call with a stream whose speech is longer than its audio: the guards hold it back from the invoice.
HELD_CALL = "call-000005"
#: ms: a served dashboard's first snapshot and its invoices, on 2 shared cores
READY = 180_000
_TIMES = ("started_at", "ended_at", "answered_at", "first_audio_at", "last_audio_at")


def need(ready: bool, why: str) -> None:
    if ready:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(why, pytrace=False)
    pytest.skip(why)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_dashboard(
    records: Path, *options: str, timeout: float = 120
) -> tuple[subprocess.Popen[bytes], str]:
    """``talktime dashboard`` over ``records`` on a free loopback port, once its first page answers."""
    port = free_port()
    command = [sys.executable, "-m", "talktime", "dashboard", "--records", str(records)]
    command += ["--costs", COSTS, "--prices", PRICES, "--port", str(port), *options]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(
                f"the dashboard stopped: {server.stderr.read().decode() if server.stderr else ''}"
            )
        try:
            with urllib.request.urlopen(url + "/methodology", timeout=2):
                return server, url
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise RuntimeError("the dashboard did not answer in time")


def start_serve(store: str, *options: str, timeout: float = 120) -> tuple[subprocess.Popen[bytes], str, Path]:
    """``talktime serve --costs --prices`` on ``store`` (the dashboard served beside the API) on a free
    loopback port, once the API answers; its standard error (the access lines) goes to a log file beside
    the store."""
    port = free_port()
    command = [sys.executable, "-m", "talktime", "serve", "--store", store, "--port", str(port)]
    command += ["--costs", COSTS, "--prices", PRICES, *options]
    log = Path(f"{store}.log")
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log.open("wb"))
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"talktime serve stopped: {log.read_text()}")
        try:
            with urllib.request.urlopen(url + "/openapi.json", timeout=2):
                return server, url, log
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise RuntimeError("talktime serve did not answer in time")


def sign_in(page: object, url: str, key: str, timeout_ms: int) -> None:
    """Sign ``page`` in to the served dashboard at ``url`` with ``key`` and wait until the page it lands on
    is ready: the form's POST answers 303 to ``/``, which says "Preparing" (and reloads itself) until the
    first snapshot is made. The wait starts only after the browser has left the form, so a slow first
    snapshot never lets the test read the sign-in page, or a half-loaded one, as the dashboard."""
    page.goto(url + "/signin")  # type: ignore[attr-defined]
    page.fill("#key", key)  # type: ignore[attr-defined]
    with page.expect_navigation(timeout=timeout_ms):  # type: ignore[attr-defined]
        page.click("button[type=submit]")  # type: ignore[attr-defined]
    page.wait_for_function(  # type: ignore[attr-defined]
        "() => location.pathname !== '/signin' && document.readyState === 'complete'"
        " && !document.title.startsWith('Preparing')",
        timeout=timeout_ms,
    )


def api_json(url: str, path: str, key: str, body: dict[str, Any] | None = None) -> Any:
    """The API's JSON answer to a GET (or a POST of ``body``) with the key."""
    request = urllib.request.Request(
        url + path,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        method="GET" if body is None else "POST",
    )
    with urllib.request.urlopen(request, timeout=60) as answer:
        return json.loads(answer.read())


def served_invoice_total(page: Any, url: str, customer: str, period: str) -> Decimal:
    """The total of the customer's month on the served invoices page, once its invoice is worked out."""
    page.goto(url + "/invoices")
    cell = f"article#inv-{customer}-{period} td[data-col=total]"
    page.wait_for_selector(cell, timeout=READY)
    return Decimal(page.locator(cell).get_attribute("data-exact") or "NaN")


def call_moved(records: list[UsageRecord], session: str, start: datetime) -> list[UsageRecord]:
    """The call's records moved as a whole so that it starts at ``start``, renamed ``session``."""
    by = start - min(r.started_at for r in records)
    return [
        dataclasses.replace(
            r,
            id=f"{session}-{r.id}",
            session=session,
            **{name: getattr(r, name) + by for name in _TIMES if getattr(r, name) is not None},
        )
        for r in records
    ]
