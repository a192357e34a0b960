"""``GET /v1/invoices`` without ``customer=``: a customer-scoped key gets its own customer's invoice (as
docs/dashboard-served.md says), a tenant key a 422 naming the field; the OpenAPI document says both."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from support.events import record_event
from talktime.api import create_app
from talktime.io.ratecards import load_price_card
from talktime.store import EventStore, hash_key, open_store

NOW = datetime(2025, 4, 2, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EventStore]:
    opened = open_store(str(tmp_path / "events.duckdb"))
    opened.add_key("acme-platform", hash_key("tenant-key"))
    opened.add_key("acme-platform", hash_key("acme-key"), customer="acme")
    yield opened
    opened.close()


@pytest.fixture
def client(store: EventStore) -> TestClient:
    served = TestClient(
        create_app(store, clock=lambda: NOW, prices=load_price_card(Path("plan-per-component.toml")))
    )
    events = [record_event("a1", provider="twilio"), record_event("b1", customer="bolt", provider="twilio")]
    answer = served.post(
        "/v1/events",
        content=json.dumps(events),
        headers={**auth("tenant-key"), "Content-Type": "application/cloudevents-batch+json"},
    )
    assert answer.status_code == 200, answer.text
    return served


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_a_customer_key_without_customer_gets_its_own_invoice(client: TestClient) -> None:
    bare = client.get("/v1/invoices", params={"period": "2025-03"}, headers=auth("acme-key"))
    assert bare.status_code == 200, bare.text
    named = client.get(
        "/v1/invoices", params={"customer": "acme", "period": "2025-03"}, headers=auth("acme-key")
    )
    assert bare.json() == named.json() and bare.json()["customer"] == "acme"


def test_a_tenant_key_without_customer_is_told_to_name_one(client: TestClient) -> None:
    answer = client.get("/v1/invoices", params={"period": "2025-03"}, headers=auth("tenant-key"))
    assert answer.status_code == 422
    message = answer.json()["error"]["message"]
    assert message.startswith("query.customer: required with a tenant key"), message
    assert "customer=C" in message


def test_openapi_says_customer_is_optional_and_when_it_is_required(client: TestClient) -> None:
    route = client.get("/openapi.json").json()["paths"]["/v1/invoices"]["get"]
    customer = next(p for p in route["parameters"] if p["name"] == "customer")
    assert customer["required"] is False
    assert "required with a tenant key" in customer["description"]
    assert "no customer with a tenant key" in route["responses"]["422"]["description"]
