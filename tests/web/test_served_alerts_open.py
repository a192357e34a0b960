"""``talktime serve --alerts FILE`` sees a call left open (issue #15): a call opened two hours ago and never
closed, kept open by its audio (lifecycle events), and a record sent with status ``open`` two hours ago,
are POSTed once each as "call left open", signed, with their seconds open as of the snapshot's moment,
and shown on the operator's ``/alerts`` page; a later batch's check sends neither again. The snapshot
leaves open records out of its file; it keeps them beside it, and the check reads them. On DuckDB and on
PostgreSQL."""

from __future__ import annotations

import base64
import json
import secrets
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks import Webhook as Verifier

from alerts.planted import receiver
from support.fixtures import postgres_server  # noqa: F401  (fixture)
from talktime.app.keys import create_key
from talktime.store import open_store
from web.kit import COSTS, PRICES, free_port
from web.test_served_alerts import _alerts_page

SECRET = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
TENANT = "acme-platform"
CUSTOMER = "cobalt-retail"
LIVE = "call-stuck"  # lifecycle events: opened 2 h ago, audio a minute ago, never closed
RECORD = "call-open-record"  # one talktime.record event with status open, started 2 h ago
ENDED = "call-ended"  # a whole call of 3 minutes: no alert
WAIT = 60.0  # seconds for a snapshot and its check (refresh 1 s; a first rating takes a few)


def _serve(store: str, log: Path, *options: str) -> tuple[subprocess.Popen[bytes], str]:
    """``talktime serve --costs --prices`` on ``store`` (a DuckDB file or a PostgreSQL URL) on a free
    loopback port, its standard error in ``log``, once the API answers."""
    port = free_port()
    command = [sys.executable, "-m", "talktime", "serve", "--store", store, "--port", str(port)]
    server = subprocess.Popen(
        [*command, "--costs", COSTS, "--prices", PRICES, *options],
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"talktime serve stopped: {log.read_text()}")
        try:
            with urllib.request.urlopen(url + "/openapi.json", timeout=2):
                return server, url
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise RuntimeError("talktime serve did not answer in time")


def _at(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _event(kind: str, subject: str | None, moment: datetime, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": f"{kind}:{subject}:{_at(moment)}",
        "source": "/test",
        "type": kind,
        **({} if subject is None else {"subject": subject}),
        "time": _at(moment),
        "data": data,
    }


def _post(url: str, key: str, events: list[dict[str, Any]]) -> None:
    request = urllib.request.Request(
        url + "/v1/events",
        data=json.dumps(events).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert json.loads(answer.read())["accepted"] == len(events)


def _calls(now: datetime) -> list[dict[str, Any]]:
    opened = now - timedelta(hours=2)
    stream = {"customer": CUSTOMER, "provider": "assemblyai", "product": "streaming", "kind": "stream"}
    record = {"customer": CUSTOMER, "provider": "livekit", "kind": "participant", "session": RECORD}
    ended = {**record, "session": ENDED, "id": f"{ENDED}-caller"}
    return [
        _event("talktime.connection.opened", LIVE, opened, stream),
        _event("talktime.audio.sent", LIVE, now - timedelta(minutes=1), {"seconds": 1}),
        _event(
            "talktime.record",
            None,
            opened,
            {**record, "id": f"{RECORD}-caller", "status": "open", "started_at": _at(opened)},
        ),
        _event(
            "talktime.record",
            None,
            now - timedelta(minutes=30),
            {
                **ended,
                "started_at": _at(now - timedelta(minutes=30)),
                "ended_at": _at(now - timedelta(minutes=27)),
            },
        ),
    ]


def _until(done: Callable[[], bool], why: str) -> None:
    deadline = time.monotonic() + WAIT
    while not done():
        assert time.monotonic() < deadline, why
        time.sleep(0.2)


@pytest.mark.parametrize("backend", ["duckdb", "postgres"])
def test_a_call_left_open_is_posted_once_and_shown(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    if backend == "duckdb":
        store = str(tmp_path / "events.duckdb")
    else:
        store = str(request.getfixturevalue("postgres_server").create_database())
    opened = open_store(store)
    try:
        key = create_key(opened, TENANT).key
    finally:
        opened.close()
    monkeypatch.setenv("TALKTIME_ALERTS_SECRET", SECRET)  # the server inherits the environment
    log = tmp_path / "serve.log"

    def checks() -> list[str]:
        return [line for line in log.read_text().splitlines() if f"alerts: tenant {TENANT} checked" in line]

    with receiver() as hook:
        config = tmp_path / "alerts.toml"
        config.write_text(
            f'[webhook]\nurl = "{hook.url}"\nattempts = 3\nbackoff_seconds = 0\nstate = "state/alerts.json"\n'
            "[defaults.stuck_call]\nopen_after_minutes = 60\n",
            encoding="utf-8",
        )
        server, url = _serve(store, log, "--alerts", str(config), "--dashboard-refresh", "1")
        try:
            sent = datetime.now(UTC)
            _post(url, key, _calls(sent))
            _until(lambda: len(hook.received) >= 2, "the calls left open were not POSTed")
            _until(lambda: len(checks()) >= 1, "the check is not logged")
            page = _alerts_page(url, key)
            for call in (LIVE, RECORD):
                assert f'data-alert="stuck-call/{CUSTOMER}/{call}"' in page, (
                    f"the page shows {call} left open"
                )
            assert "still open 2.0 h after it started" in page
            for call in (LIVE, RECORD):  # not on the calls page while open: named, not linked to a 404
                assert f"session={call}" not in page and f"{call} (still open: on the calls page" in page
            _post(url, key, [_event("talktime.audio.sent", LIVE, datetime.now(UTC), {"seconds": 1})])
            _until(lambda: len(checks()) >= 2, "the next batch was not checked")
        finally:
            server.terminate()
            server.wait(timeout=20)
    assert "over 3 calls: 2 open, 0 posted" in checks()[-1], "the next check sends neither again"
    assert len(hook.received) == 2, "each call left open POSTed once"
    found = {}
    for headers, body, _ in hook.received:
        data = Verifier(SECRET).verify(body, headers)["data"]  # raises unless the signature holds
        found[data["subject"]] = data
    assert set(found) == {LIVE, RECORD}
    for call, data in found.items():
        assert data["tenant"] == TENANT and data["rule"] == "stuck-call" and data["customer"] == CUSTOMER
        assert data["id"] == f"stuck-call/{CUSTOMER}/{call}" and data["threshold"] == "3600"
        open_for = Decimal(data["value"])  # seconds open as of the snapshot's moment, after the batch
        assert Decimal(7200) <= open_for <= Decimal(7200) + Decimal(WAIT + 5), (call, open_for)
        assert "still open 2.0 h after it started" in data["message"]
    assert found[LIVE]["message"].startswith(f"record {LIVE} (stream, assemblyai) of call {LIVE}")
    assert found[RECORD]["message"].startswith(
        f"record {RECORD}-caller (participant, livekit) of call {RECORD}"
    )
