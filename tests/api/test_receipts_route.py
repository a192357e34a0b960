"""``GET /v1/receipts``: the records whose time-worded guards turn on when the store first received them, each
with the moment ``GET /v1/invoices`` judges it as of (the CLI reads it through a server holding a DuckDB
store, beside ``GET /v1/records``). A record received near its start is not listed; a record sent long before
its start is, at its first receipt; a read "now" before the receipt (a replay) gives that "now"; a customer
key reads its own customer's only (403 for another); 401 without a key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi.testclient import TestClient

from support.events import record_event
from talktime.api import create_app
from talktime.app import service
from talktime.store import hash_key, open_store

TENANT = "acme-platform"


def test_the_route_lists_the_records_received_far_from_their_start(tmp_path: Path) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    soon, ahead = now - timedelta(minutes=5), now + timedelta(days=3)

    def call(record_id: str, start: datetime, customer: str = "acme") -> dict[str, object]:
        times = {"started_at": start.isoformat(), "answered_at": (start + timedelta(seconds=2)).isoformat()}
        ended = (start + timedelta(seconds=60)).isoformat()
        return record_event(record_id, customer=customer, **times, ended_at=ended)

    store = open_store(f"{tmp_path}/events.duckdb")
    try:
        store.add_key(TENANT, hash_key("key-a"))
        store.add_key(TENANT, hash_key("key-acme"), customer="acme")
        events = [call("on-time", soon), call("ahead", ahead), call("ahead-other", ahead, customer="other")]
        before = datetime.now(UTC)
        assert service.ingest(store, TENANT, events).rejected == 0
        after = datetime.now(UTC)
        tenant = {"Authorization": "Bearer key-a"}
        found = TestClient(create_app(store)).get("/v1/receipts", headers=tenant)
        assert found.status_code == 200, found.text
        body = found.json()
        assert body["tenant"] == TENANT and found.headers["X-Talktime-Tenant"] == TENANT
        assert [item["id"] for item in body["received"]] == ["ahead", "ahead-other"], "not the one on time"
        for item in body["received"]:
            assert before <= datetime.fromisoformat(item["judged_at"]) <= after, "its first receipt"

        replay = now - timedelta(days=30)  # a server whose clock is before the receipts
        past = TestClient(create_app(store, clock=lambda: replay)).get("/v1/receipts", headers=tenant).json()
        assert {item["id"] for item in past["received"]} == {"on-time", "ahead", "ahead-other"}
        assert {item["judged_at"] for item in past["received"]} == {replay.isoformat()}

        client = TestClient(create_app(store))
        mine = client.get("/v1/receipts", headers={"Authorization": "Bearer key-acme"}).json()
        assert [item["id"] for item in mine["received"]] == ["ahead"], "a customer key: its own customer's"
        other = client.get(
            "/v1/receipts", params={"customer": "other"}, headers={"Authorization": "Bearer key-acme"}
        )
        assert other.status_code == 403 and "'acme'" in other.text
        assert client.get("/v1/receipts").status_code == 401
    finally:
        store.close()
