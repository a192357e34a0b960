"""What the dashboard's browser tests share: the generated month's constants, the server and the skip rule."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("TALKTIME_CHROMIUM", "/usr/bin/chromium"))
COSTS = "costs-informative.toml"
PRICES = "plan-call-minute.toml"
#: A carrier no cost entry on the informative card prices: its leg makes its call INCOMPLETE.
UNKNOWN_CARRIER = "acme-carrier"
INCOMPLETE_CALL = "call-000003"
#: A call with a stream whose speech is longer than its audio: the guards hold it back from the invoice.
HELD_CALL = "call-000005"


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
