"""Durability with a real server process: an event answered "accepted" survives kill -9 of the server."""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from support.events import record_event
from support.fixtures import postgres_server, postgres_url  # noqa: F401  (fixtures)
from support.postgres import free_port

pytestmark = pytest.mark.slow
BATCH = "application/cloudevents-batch+json"


def talktime(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "talktime", *args], capture_output=True, text=True, check=True
    )
    return done.stdout


@contextmanager
def server(store: Path | str, *extra: str) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = free_port()
    # The events' March 2025 calls are a backfill: the guards' default (400 days back) would hold them.
    guards = Path(tempfile.mkdtemp(prefix="talktime-guards-")) / "guards.toml"
    guards.write_text("max_past_days = 3650\n", encoding="utf-8")
    command = ["serve", "--store", str(store), "--port", str(port), "--guards", str(guards), *extra]
    process = subprocess.Popen(
        [sys.executable, "-m", "talktime", *command],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):  # wait for it to listen (not a timing assertion: it only has to come up)
            if process.poll() is not None:
                raise AssertionError(
                    f"server exited: {process.stderr.read().decode() if process.stderr else ''}"
                )
            try:
                httpx.get(base + "/openapi.json", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        yield process, base
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
        process.wait()


@pytest.mark.parametrize("workers", ["0", "1"])
def test_accepted_events_survive_kill_9(tmp_path: Path, workers: str) -> None:
    store = tmp_path / "events.duckdb"
    key = talktime("keys", "create", "acme-platform", "--store", str(store)).strip().splitlines()[-1]
    headers = {"Authorization": f"Bearer {key}", "Content-Type": BATCH}
    batch = [record_event(f"r{i}") for i in range(200)]
    with server(store, "--workers", workers) as (process, base):
        answer = httpx.post(
            base + "/v1/events", content=httpx.Request("POST", "/", json=batch).content, headers=headers
        )
        assert answer.json()["accepted"] == 200
        process.send_signal(signal.SIGKILL)  # no shutdown, no checkpoint: only what was committed survives
        process.wait()
    with server(store) as (_, base):
        usage = httpx.get(base + "/v1/usage", params={"policy": "twilio-voice"}, headers=headers).json()
        assert usage["totals"]["records"] == 200
        retry = httpx.post(
            base + "/v1/events", content=httpx.Request("POST", "/", json=batch).content, headers=headers
        )
        assert retry.json()["duplicate"] == 200


def test_keys_create_prints_the_key_last_and_stores_only_its_hash(tmp_path: Path) -> None:
    store = tmp_path / "events.duckdb"
    key = talktime("keys", "create", "t1", "--store", str(store)).strip().splitlines()[-1]
    assert key.startswith("tt_") and len(key) > 40
    assert key.encode() not in store.read_bytes()


def _call_batches(count: int) -> list[list[dict[str, object]]]:
    """Batches in which calls open and answer in one batch and close and report in the next (so a kill
    can fall between a call's events), with whole records among them."""
    from support.events import event

    batches: list[list[dict[str, object]]] = []
    for number in range(count):
        batch: list[dict[str, object]] = [record_event(f"b{number}-r{i}") for i in range(50)]
        for call in range(number * 20, number * 20 + 20):
            subject = f"call-{call}"
            batch.append(
                event(
                    "talktime.connection.opened",
                    subject,
                    "2025-03-01T10:00:00Z",
                    data={"customer": "acme", "kind": "leg"},
                )
            )
            batch.append(event("talktime.call.answered", subject, "2025-03-01T10:00:04Z"))
            if number:  # the previous batch's calls end now
                earlier = f"call-{call - 20}"
                batch.append(event("talktime.connection.closed", earlier, "2025-03-01T10:01:04Z"))
                batch.append(
                    event("talktime.provider.reported", earlier, "2025-03-01T10:05:00Z", data={"seconds": 61})
                )
        batches.append(batch)
    return batches


@pytest.mark.parametrize("backend", ["duckdb", "postgres"])
def test_after_kill_9_during_batches_events_and_records_agree(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    from datetime import UTC, datetime

    from support.contract_checks import records_agree_with_events
    from talktime.store import open_store

    target = (
        str(tmp_path / "events.duckdb") if backend == "duckdb" else request.getfixturevalue("postgres_url")
    )
    key = talktime("keys", "create", "acme-platform", "--store", target).strip().splitlines()[-1]
    headers = {"Authorization": f"Bearer {key}", "Content-Type": BATCH}
    bodies = [httpx.Request("POST", "/", json=b).content for b in _call_batches(40)]
    answered = 0
    with server(target) as (process, base), httpx.Client(timeout=60) as client:
        for number, body in enumerate(bodies):
            if number == 6:  # kill while a batch is on its way (or being stored)
                import threading

                threading.Timer(0.01, process.send_signal, [signal.SIGKILL]).start()
            try:
                if client.post(base + "/v1/events", content=body, headers=headers).status_code == 200:
                    answered += 1
            except httpx.TransportError:
                break
        process.wait()
    assert answered >= 6
    with server(target) as (_, base):  # a restart replays what was committed, nothing else
        answer = httpx.get(base + "/v1/usage", params={"policy": "twilio-voice"}, headers=headers)
        assert answer.status_code == 200, answer.text
        assert answer.json()["totals"]["records"] >= 6 * 50
    store = open_store(target)
    try:
        records_agree_with_events(store, "acme-platform", datetime(2025, 3, 2, tzinfo=UTC))
        assert store.count("acme-platform") >= answered * 50
    finally:
        store.close()
