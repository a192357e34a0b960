"""The HTTP API through FastAPI's test client: auth, tenants, dedup, partial rejection, limits, bad input."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from support.events import event, record_event
from talktime.api import create_app
from talktime.store import EventStore, hash_key, open_store

BATCH = "application/cloudevents-batch+json"
NOW = datetime(2025, 3, 2, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EventStore]:
    opened = open_store(str(tmp_path / "events.duckdb"))
    opened.add_key("acme-platform", hash_key("key-a"))
    opened.add_key("other-platform", hash_key("key-b"))
    yield opened
    opened.close()


@pytest.fixture
def client(store: EventStore) -> TestClient:
    return TestClient(create_app(store, max_events=50, max_body_bytes=64_000, clock=lambda: NOW))


def auth(key: str = "key-a") -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def post(client: TestClient, body: Any, key: str = "key-a", content_type: str = BATCH) -> Any:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post("/v1/events", content=raw, headers={**auth(key), "Content-Type": content_type})


def test_no_key_or_a_bad_key_is_401(client: TestClient, store: EventStore) -> None:
    body = json.dumps([record_event("r1")])
    assert client.post("/v1/events", content=body, headers={"Content-Type": BATCH}).status_code == 401
    answer = post(client, [record_event("r1")], key="nope")
    assert answer.status_code == 401 and answer.headers["WWW-Authenticate"] == "Bearer"
    assert client.get("/v1/usage", params={"policy": "twilio-voice"}).status_code == 401
    assert store.count("acme-platform") == 0


def test_a_batch_is_accepted_and_a_retry_counts_once(client: TestClient, store: EventStore) -> None:
    batch = [record_event("r1"), record_event("r2")]
    first = post(client, batch).json()
    assert (first["accepted"], first["duplicate"], first["rejected"]) == (2, 0, 0)
    again = post(client, batch).json()
    assert (again["accepted"], again["duplicate"]) == (0, 2)
    assert [r["status"] for r in again["results"]] == ["duplicate", "duplicate"]
    usage = client.get("/v1/usage", params={"policy": "twilio-voice"}, headers=auth()).json()
    assert usage["totals"]["records"] == 2


def test_valid_events_are_stored_even_when_others_are_rejected(client: TestClient, store: EventStore) -> None:
    batch = [
        record_event("good"),
        {**event("talktime.connection.opened"), "time": "2025-03-01T10:00:00"},
        event("talktime.unknown"),
        {**event("talktime.channels", data={"channels": "two"})},
    ]
    answer = post(client, batch)
    assert answer.status_code == 200
    body = answer.json()
    assert [r["status"] for r in body["results"]] == ["accepted", "rejected", "rejected", "rejected"]
    assert body["results"][1]["errors"][0]["field"] == "time"
    assert "offset" in body["results"][1]["errors"][0]["reason"]
    assert body["results"][2]["errors"][0]["field"] == "type"
    assert body["results"][3]["errors"][0]["field"] == "data.channels"
    assert store.count("acme-platform") == 1


def test_a_batch_with_every_event_rejected_is_422_and_stores_nothing(
    client: TestClient, store: EventStore
) -> None:
    answer = post(client, [event("talktime.unknown")])
    assert answer.status_code == 422 and answer.json()["rejected"] == 1
    assert store.count("acme-platform") == 0


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"[{not json", BATCH, 400),
        (b'{"specversion": "1.0"}', BATCH, 400),
        (b"[]", BATCH, 400),
        (b"42", "application/json", 400),
        (b"[]", "text/plain", 415),
        (json.dumps([record_event(f"r{i}") for i in range(51)]).encode(), BATCH, 413),
        (b"[" + b" " * 70_000 + b"]", BATCH, 413),
    ],
)
def test_a_request_refused_whole_is_a_clear_4xx_and_stores_nothing(
    client: TestClient, store: EventStore, body: bytes, content_type: str, status: int
) -> None:
    answer = post(client, body, content_type=content_type)
    assert answer.status_code == status
    assert answer.json()["error"]["message"]
    assert store.count("acme-platform") == 0


def test_a_single_structured_event_is_accepted(client: TestClient) -> None:
    answer = post(client, record_event("r1"), content_type="application/cloudevents+json")
    assert answer.json()["accepted"] == 1


def test_usage_has_the_keys_of_meter_json_summary(client: TestClient) -> None:
    post(client, [record_event("r1"), record_event("r2", customer="globex")])
    usage = client.get(
        "/v1/usage",
        params={
            "policy": "twilio-voice",
            "customer": "acme",
            "from": "2025-03-01T00:00:00Z",
            "to": "2025-04-01T00:00:00Z",
        },
        headers=auth(),
    ).json()
    totals = usage["totals"]
    assert set(totals) == {
        "records",
        "actual_seconds",
        "provider_reported_seconds",
        "provider_reported_records",
        "billable_seconds",
        "billable_quantity",
        "unit",
        "base",
        "meters",
    }
    assert totals["base"] == "s"  # the *_seconds fields hold seconds under a time policy
    # answered 47.3 s -> rounded up to the minute under twilio-voice
    assert (totals["records"], totals["actual_seconds"], totals["billable_seconds"]) == (1, "47.3", "60")


def test_usage_query_errors_are_4xx(client: TestClient) -> None:
    bad_time = client.get(
        "/v1/usage", params={"policy": "twilio-voice", "from": "2025-03-01"}, headers=auth()
    )
    assert bad_time.status_code == 422 and "offset" in bad_time.json()["error"]["message"]
    unknown = client.get("/v1/usage", params={"policy": "no-such"}, headers=auth())
    message = unknown.json()["error"]["message"]
    assert unknown.status_code == 422 and message.startswith("query parameter 'policy': 'no-such'")
    assert "twilio-voice" in message and ".toml" not in message  # the API reads no policy files
    record = client.get("/v1/records/r1", params={"policy": "twilio"}, headers=auth())
    assert record.status_code == 422 and "'policy'" in record.json()["error"]["message"]
    assert client.get("/v1/usage", headers=auth()).status_code == 422


def test_a_record_explains_itself_and_another_tenants_record_is_404(client: TestClient) -> None:
    post(client, [record_event("r1")])
    mine = client.get("/v1/records/r1", params={"policy": "twilio-voice"}, headers=auth())
    assert mine.status_code == 200
    body = mine.json()
    assert body["billable_seconds"] == "60" and body["explain"][0]["step"] == "basis"
    theirs = client.get("/v1/records/r1", params={"policy": "twilio-voice"}, headers=auth("key-b"))
    assert theirs.status_code == 404
    usage = client.get("/v1/usage", params={"policy": "twilio-voice"}, headers=auth("key-b")).json()
    assert usage["totals"]["records"] == 0


def test_lifecycle_events_become_a_metered_record(client: TestClient) -> None:
    batch = [
        event("talktime.connection.closed", "call-7", "2025-03-01T10:01:30Z"),
        event("talktime.call.answered", "call-7", "2025-03-01T10:00:10Z"),
        event(
            "talktime.connection.opened",
            "call-7",
            "2025-03-01T10:00:00Z",
            data={"customer": "acme", "kind": "leg"},
        ),
    ]
    assert post(client, batch).json()["accepted"] == 3
    body = client.get("/v1/records/call-7", params={"policy": "twilio-voice"}, headers=auth()).json()
    assert (body["actual_seconds"], body["billable_seconds"], body["flags"]) == ("80", "120", [])


def test_openapi_is_published(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/events", "/v1/usage"} <= set(paths)
