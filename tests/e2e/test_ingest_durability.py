"""Durability with a real server process: an event answered "accepted" survives kill -9 of the server."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from support.events import record_event
from support.postgres import free_port

pytestmark = pytest.mark.slow
BATCH = "application/cloudevents-batch+json"


def talktime(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "talktime", *args], capture_output=True, text=True, check=True
    )
    return done.stdout


@contextmanager
def server(store: Path, *extra: str) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "talktime", "serve", "--store", str(store), "--port", str(port), *extra],
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
