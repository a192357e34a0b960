"""A customer-scoped key on the HTTP API: it reads its own customer's usage, records and invoices, and
nothing else: another customer is 403 (an unknown record of another customer 404, as another tenant's),
sending events and reviews are 403, and the admin route makes such keys."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from support.events import record_event
from talktime.api import create_app
from talktime.app.keys import create_key
from talktime.io.ratecards import load_price_card
from talktime.store import EventStore, hash_key, open_store

BATCH = "application/cloudevents-batch+json"
NOW = datetime(2025, 4, 2, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EventStore]:
    opened = open_store(str(tmp_path / "events.duckdb"))
    opened.add_key("acme-platform", hash_key("tenant-key"))
    opened.add_key("acme-platform", hash_key("acme-key"), customer="acme")
    opened.add_key("talktime:admin", hash_key("admin-key"), admin=True)
    yield opened
    opened.close()


@pytest.fixture
def client(store: EventStore) -> TestClient:
    prices = load_price_card(Path("plan-per-component.toml"))
    served = TestClient(create_app(store, clock=lambda: NOW, prices=prices))
    events = [record_event("a1", provider="twilio"), record_event("b1", customer="bolt", provider="twilio")]
    answer = served.post(
        "/v1/events", content=json.dumps(events), headers={**auth("tenant-key"), "Content-Type": BATCH}
    )
    assert answer.status_code == 200, answer.text
    return served


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_usage_is_the_keys_customer_whether_asked_or_not(client: TestClient) -> None:
    for params in ({"policy": "twilio-voice"}, {"policy": "twilio-voice", "customer": "acme"}):
        answer = client.get("/v1/usage", params=params, headers=auth("acme-key"))
        assert answer.status_code == 200, answer.text
        assert answer.json()["customer"] == "acme" and answer.json()["totals"]["records"] == 1
    everyone = client.get("/v1/usage", params={"policy": "twilio-voice"}, headers=auth("tenant-key"))
    assert everyone.json()["totals"]["records"] == 2, "a tenant key still reads every customer"
    other = client.get(
        "/v1/usage", params={"policy": "twilio-voice", "customer": "bolt"}, headers=auth("acme-key")
    )
    assert other.status_code == 403
    assert "customer 'acme', not of 'bolt'" in other.json()["error"]["message"]


def test_records_are_the_keys_customers_only(client: TestClient) -> None:
    lines = client.get("/v1/records", headers=auth("acme-key")).text.splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["a1"]
    assert client.get("/v1/records", params={"customer": "bolt"}, headers=auth("acme-key")).status_code == 403
    mine = client.get("/v1/records/a1", params={"policy": "twilio-voice"}, headers=auth("acme-key"))
    assert mine.status_code == 200 and mine.json()["id"] == "a1"
    theirs = client.get("/v1/records/b1", params={"policy": "twilio-voice"}, headers=auth("acme-key"))
    missing = client.get("/v1/records/zz", params={"policy": "twilio-voice"}, headers=auth("acme-key"))
    assert theirs.status_code == missing.status_code == 404, "another customer's record is not said to exist"
    assert theirs.json()["error"]["message"] == "no record 'b1'"


def test_invoices_are_the_keys_customers_only(client: TestClient) -> None:
    own = client.get(
        "/v1/invoices", params={"customer": "acme", "period": "2025-03"}, headers=auth("acme-key")
    )
    assert own.status_code == 200 and own.json()["customer"] == "acme"
    other = client.get(
        "/v1/invoices", params={"customer": "bolt", "period": "2025-03"}, headers=auth("acme-key")
    )
    assert other.status_code == 403
    assert client.get("/v1/invoices/bolt-2025-03.pdf", headers=auth("acme-key")).status_code == 403


def test_a_customer_key_sends_no_events_and_reviews_nothing(client: TestClient) -> None:
    sent = client.post(
        "/v1/events",
        content=json.dumps([record_event("a2")]),
        headers={**auth("acme-key"), "Content-Type": BATCH},
    )
    assert sent.status_code == 403 and "customer 'acme'" in sent.json()["error"]["message"]
    assert client.get("/v1/flagged", headers=auth("acme-key")).status_code == 403
    lines = client.get("/v1/records", headers=auth("tenant-key")).text.splitlines()
    assert len(lines) == 2, "nothing was stored"


def test_the_admin_route_makes_and_lists_customer_keys(client: TestClient, store: EventStore) -> None:
    made = client.post(
        "/v1/admin/keys",
        content=json.dumps({"tenant": "acme-platform", "customer": "bolt", "label": "portal"}),
        headers={**auth("admin-key"), "Content-Type": "application/json"},
    )
    assert made.status_code == 201, made.text
    assert made.json()["info"]["customer"] == "bolt"
    answer = client.get("/v1/usage", params={"policy": "twilio-voice"}, headers=auth(made.json()["key"]))
    assert answer.json()["customer"] == "bolt"
    listed = client.get(
        "/v1/admin/keys", params={"tenant": "acme-platform"}, headers=auth("admin-key")
    ).json()
    assert sorted(str(k["customer"]) for k in listed["keys"]) == ["None", "acme", "bolt"]
    assert create_key(store, "acme-platform").info.customer is None
