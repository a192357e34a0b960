"""GET /v1/invoices and /v1/invoices/{id}.pdf: same auth and tenant rules as the rest of the API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from support.events import record_event
from talktime.api import create_app
from talktime.core.invoicing.invoice import finalise
from talktime.core.invoicing.serialize import invoice_from_dict
from talktime.io.invoices import write_finalised
from talktime.io.ratecards import load_price_card
from talktime.store import EventStore, hash_key, open_store

BATCH = "application/cloudevents-batch+json"
NOW = datetime(2025, 4, 2, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EventStore]:
    opened = open_store(str(tmp_path / "events.duckdb"))
    opened.add_key("acme-platform", hash_key("key-a"))
    opened.add_key("other-platform", hash_key("key-b"))
    yield opened
    opened.close()


@pytest.fixture
def client(store: EventStore, tmp_path: Path) -> TestClient:
    prices = load_price_card(Path("plan-per-component.toml"))
    return TestClient(create_app(store, clock=lambda: NOW, prices=prices, ledger=tmp_path / "ledger"))


def auth(key: str = "key-a") -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _post(client: TestClient) -> None:
    body = json.dumps([record_event("r1", provider="twilio"), record_event("r2", provider="twilio")])
    answer = client.post("/v1/events", content=body, headers={**auth(), "Content-Type": BATCH})
    assert answer.status_code == 200, answer.text


def test_invoice_json_for_the_tenant_and_404_for_another(client: TestClient) -> None:
    _post(client)
    params = {"customer": "acme", "period": "2025-03"}
    assert client.get("/v1/invoices", params=params).status_code == 401
    answer = client.get("/v1/invoices", params=params, headers=auth())
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert data["status"] == "draft" and data["customer"] == "acme"
    telephony = next(line for line in data["lines"] if line["meter"] == "telephony")
    assert telephony["actual_quantity"] == "1.576667", "47.3 s answered per leg, two legs: 94.6 s"
    assert telephony["billable_quantity"] == "2", "60/60 up per leg"
    other = client.get("/v1/invoices", params=params, headers=auth("key-b"))
    assert other.status_code == 404, "another tenant does not see acme's records"
    bad = client.get("/v1/invoices", params={"customer": "acme", "period": "March"}, headers=auth())
    assert bad.status_code == 422


def test_invoice_pdf(client: TestClient) -> None:
    _post(client)
    answer = client.get("/v1/invoices/acme-2025-03.pdf", headers=auth())
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/pdf"
    assert answer.content.startswith(b"%PDF")
    assert client.get("/v1/invoices/acme-2025-03.pdf").status_code == 401
    assert client.get("/v1/invoices/nonsense.pdf", headers=auth()).status_code == 422


def test_a_finalised_invoice_comes_from_the_tenant_ledger(client: TestClient, tmp_path: Path) -> None:
    _post(client)
    draft = client.get("/v1/invoices", params={"customer": "acme", "period": "2025-03"}, headers=auth())
    final = finalise(invoice_from_dict(draft.json()), NOW)
    write_finalised(tmp_path / "ledger" / "acme-platform", final)
    again = client.get("/v1/invoices", params={"customer": "acme", "period": "2025-03"}, headers=auth())
    assert again.json()["status"] == "finalised"
