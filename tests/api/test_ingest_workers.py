"""``talktime serve --workers N``: batches decoded and checked in worker processes answer exactly as when
the server does it all itself, refused requests included, and dedup still holds."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from support.events import event, record_event
from talktime.api import create_app
from talktime.store import EventStore, hash_key, open_store

BATCH = "application/cloudevents-batch+json"


def batch() -> list[Any]:
    bad_time = record_event("r2")
    bad_time["time"] = "2025-03-01T10:00:00"  # no offset
    return [
        record_event("r1"),
        bad_time,
        record_event("r1"),  # again in the same batch: a duplicate
        event("talktime.channels", data={"channels": 0}),
        event("talktime.nope"),
        7,
        event("talktime.connection.opened", data={"customer": "acme"}),
    ]


def answers(tmp_path: Path, name: str, workers: int, bodies: list[tuple[bytes, str]]) -> list[Any]:
    store: EventStore = open_store(str(tmp_path / f"{name}.duckdb"))
    store.add_key("acme", hash_key("key-a"))
    try:
        with TestClient(create_app(store, max_events=50, max_body_bytes=64_000, workers=workers)) as client:
            return [
                (answer.status_code, answer.json())
                for answer in (
                    client.post(
                        "/v1/events",
                        content=body,
                        headers={"Authorization": "Bearer key-a", "Content-Type": content_type},
                    )
                    for body, content_type in bodies
                )
            ]
    finally:
        store.close()


@pytest.fixture
def bodies() -> Iterator[list[tuple[bytes, str]]]:
    body = json.dumps(batch()).encode()
    yield [
        (body, BATCH),
        (body, BATCH),  # a retry: all duplicates
        (b"[{", BATCH),  # malformed: 400
        (b"{}", BATCH),  # not an array: 400
        (json.dumps([record_event(f"x{i}") for i in range(51)]).encode(), BATCH),  # too many: 413
        (body, "text/plain"),  # 415
        (json.dumps([event("talktime.nope")]).encode(), BATCH),  # all rejected: 422
    ]


def test_worker_processes_answer_exactly_as_the_server_alone(
    tmp_path: Path, bodies: list[tuple[bytes, str]]
) -> None:
    alone = answers(tmp_path, "alone", 0, bodies)
    pooled = answers(tmp_path, "pooled", 1, bodies)
    assert pooled == alone
    assert [status for status, _ in alone] == [200, 200, 400, 400, 413, 415, 422]
    first, retry = alone[0][1], alone[1][1]
    assert [r["status"] for r in first["results"]] == [
        "accepted",
        "rejected",
        "duplicate",
        "rejected",
        "rejected",
        "rejected",
        "accepted",
    ]
    assert first["results"][1]["errors"][0]["field"] == "time"
    assert "id" not in first["results"][5]  # not an object: nothing to name it by
    assert (retry["accepted"], retry["duplicate"], retry["rejected"]) == (0, 3, 4)
