"""A real talktime server on loopback (uvicorn in a thread, embedded store), and reading back what the
captures sent: the records the server made, and ``talktime meter`` run on them. The fixtures are
re-exported by ``conftest``; tests import the types from here (``from capture.serving import Server``)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from typer.testing import CliRunner

from support.postgres import free_port
from talktime.api import create_app
from talktime.cli.main import app
from talktime.store import EventStore, hash_key, open_store

KEY = "key-capture"


@dataclass
class Server:
    """A server's address and its store; ``start()``/``stop()`` bring it up and down on the same port."""

    url: str
    port: int
    store: EventStore
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None

    def start(self) -> None:
        config = uvicorn.Config(
            create_app(self.store), host="127.0.0.1", port=self.port, log_level="warning", access_log=False
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="talktime-test-server", daemon=True)
        self._thread.start()
        for _ in range(500):  # wait for it to listen (not a timing assertion: it only has to come up)
            if self._server.started:
                return
            time.sleep(0.01)
        raise AssertionError("the test server did not start")

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(10)
            self._server = self._thread = None

    def record(self, record_id: str, policy: str) -> dict[str, Any]:
        """``GET /v1/records/{id}``: the record metered under ``policy``, with its fields and flags."""
        answer = httpx.get(
            f"{self.url}/v1/records/{record_id}",
            params={"policy": policy},
            headers={"Authorization": f"Bearer {KEY}"},
        )
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    def events(self) -> int:
        return self.store.count("acme-platform")


@contextmanager
def _server(tmp_path: Path, started: bool) -> Iterator[Server]:
    store = open_store(str(tmp_path / "events.duckdb"))
    store.add_key("acme-platform", hash_key(KEY))
    port = free_port()
    server = Server(f"http://127.0.0.1:{port}", port, store)
    if started:
        server.start()
    try:
        yield server
    finally:
        server.stop()
        store.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """A talktime server, up."""
    with _server(tmp_path, started=True) as running:
        yield running


@pytest.fixture
def down_server(tmp_path: Path) -> Iterator[Server]:
    """A talktime server's address with nothing listening yet (``start()`` brings it up)."""
    with _server(tmp_path, started=False) as waiting:
        yield waiting


Meter = Callable[[list[dict[str, Any]], str], dict[str, str]]


@pytest.fixture
def meter(tmp_path: Path) -> Meter:
    """``talktime meter FILE --policy POLICY --format json`` on records written as JSON Lines: the billable
    quantity of each meter (the ``not-counted`` one left out)."""

    def run(rows: list[dict[str, Any]], policy: str) -> dict[str, str]:
        path = tmp_path / f"records-{policy}.jsonl"
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
        result = CliRunner().invoke(app, ["meter", str(path), "--policy", policy, "--format", "json"])
        assert result.exit_code == 0, result.output
        meters = json.loads(result.output)["totals"]["meters"]
        return {name: t["billable_quantity"] for name, t in meters.items() if name != "not-counted"}

    return run
