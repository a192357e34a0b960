"""Review of held-back records through the API (issue 12, item 4): an acceptance accepts the reasons a
person saw, not the record forever; the API's invoices hold back what usage holds back; a review that cannot
be kept is refused with the field and why."""

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
from talktime.io.ratecards import load_price_card
from talktime.store import EventStore, hash_key, open_store

NOW = datetime(2025, 4, 2, tzinfo=UTC)
LONG = "call-too-long: 315532800 s (87648 h) from start to end, over the 24 h limit"
REPORTED = (
    "reported-longer-than-limit: provider_reported_seconds 1000000000 s (277777.8 h) is over the 24 h limit"
)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EventStore]:
    opened = open_store(str(tmp_path / "events.duckdb"))
    opened.add_key("acme-platform", hash_key("key-a"))
    yield opened
    opened.close()


@pytest.fixture
def client(store: EventStore, tmp_path: Path) -> TestClient:
    prices = load_price_card(Path("plan-per-component.toml"))
    return TestClient(create_app(store, clock=lambda: NOW, prices=prices, ledger=tmp_path / "ledger"))


AUTH = {"Authorization": "Bearer key-a"}


def post(client: TestClient, events: list[dict[str, Any]]) -> None:
    answer = client.post("/v1/events", json=events, headers=AUTH)
    assert answer.status_code == 200 and answer.json()["rejected"] == 0, answer.text


def held(client: TestClient) -> list[dict[str, Any]]:
    answer = client.get("/v1/usage", params={"policy": "twilio-voice"}, headers=AUTH)
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()["held"]
    return found


def review(client: TestClient, record_id: str, body: Any) -> Any:
    return client.post(f"/v1/reviews/{record_id}", content=json.dumps(body), headers=AUTH)


def call_events(closed_at: str) -> list[dict[str, Any]]:
    return [
        event("talktime.connection.opened", "call-9", data={"customer": "acme", "kind": "leg"}),
        event("talktime.call.answered", "call-9", "2025-03-01T10:00:05Z"),
        event("talktime.connection.closed", "call-9", closed_at),
    ]


def test_an_acceptance_lapses_when_the_record_breaks_another_limit(client: TestClient) -> None:
    post(client, call_events("2035-03-01T10:00:00Z"))
    assert held(client) == [{"id": "call-9", "reasons": [LONG]}]
    assert review(client, "call-9", {"action": "accept", "note": "bridge"}).json()["held"] is False
    assert held(client) == []
    # A late provider report of 10^9 seconds breaks another limit: held back again, with both reasons.
    post(
        client,
        [event("talktime.provider.reported", "call-9", "2025-03-01T11:00:00Z", data={"seconds": 10**9})],
    )
    assert held(client) == [{"id": "call-9", "reasons": [LONG, REPORTED]}]
    flagged = client.get("/v1/flagged", headers=AUTH).json()
    (item,) = flagged["held"]
    assert item["accepted"] == {"at": "2025-04-02T00:00:00+00:00", "reasons": [LONG], "note": "bridge"}
    # Accepting again accepts both; correcting the report away leaves the accepted length alone.
    assert review(client, "call-9", {"action": "accept"}).json()["held"] is False
    fixed = review(client, "call-9", {"action": "correct", "fields": {"provider_reported_seconds": None}})
    assert fixed.status_code == 200, fixed.text
    assert fixed.json()["held"] is False and fixed.json()["reasons"] == [LONG]
    assert fixed.json()["fields"]["provider_reported_seconds"] == ""


def test_the_api_invoice_holds_back_what_usage_holds_back(client: TestClient) -> None:
    post(
        client,
        [
            record_event("r1", provider="twilio"),
            record_event("runaway", provider="twilio", ended_at="2035-03-01T10:00:00Z"),
        ],
    )
    params = {"customer": "acme", "period": "2025-03"}
    draft = client.get("/v1/invoices", params=params, headers=AUTH).json()
    assert draft["held"] == [{"id": "runaway", "reasons": [LONG]}]
    assert draft["notes"][0].startswith("INCOMPLETE: 1 record(s) of this period are held back")
    telephony = next(line for line in draft["lines"] if line["meter"] == "telephony")
    assert telephony["actual_quantity"] == "0.788333", "47.3 s of r1 alone"
    corrected = review(
        client,
        "runaway",
        {"action": "correct", "fields": {"ended_at": "2025-03-01T10:00:52.3Z"}, "note": "clock"},
    )
    assert corrected.json()["held"] is False
    draft = client.get("/v1/invoices", params=params, headers=AUTH).json()
    assert draft["held"] == []
    telephony = next(line for line in draft["lines"] if line["meter"] == "telephony")
    assert telephony["actual_quantity"] == "1.576667", "47.3 s each, the runaway corrected"


def test_a_review_that_cannot_be_kept_is_refused(client: TestClient) -> None:
    post(client, [record_event("runaway", ended_at="2035-03-01T10:00:00Z")])
    assert review(client, "nope", {"action": "accept"}).status_code == 404
    assert client.post("/v1/reviews/runaway", content=b"{", headers=AUTH).status_code == 400
    assert client.post("/v1/reviews/runaway", json={"action": "accept"}).status_code == 401
    cases = [
        ({"action": "forget"}, "action: 'forget' is not one of accept, correct"),
        ({"action": "correct", "fields": {"id": "x"}}, "fields.id: a record's id cannot be corrected"),
        ({"action": "correct", "fields": {"colour": "red"}}, "fields.colour: is not a record field"),
        ({"action": "correct", "fields": {}}, "fields: name at least one field to correct"),
        ({"action": "accept", "fields": {"ended_at": None}}, "fields: only a correction takes fields"),
        ({"action": "accept", "by": "me"}, "by: is not a field of a review"),
    ]
    for body, message in cases:
        answer = review(client, "runaway", body)
        assert answer.status_code == 422, (body, answer.text)
        assert message in answer.json()["error"]["message"], (body, answer.text)
    # Well formed, but the stored record cannot take it: at odds with what is stored.
    answer = review(client, "runaway", {"action": "correct", "fields": {"ended_at": "2025-03-01T09:00:00Z"}})
    assert answer.status_code == 409, answer.text
    assert (
        "field 'ended_at': 2025-03-01T09:00:00+00:00 is before started_at"
        in answer.json()["error"]["message"]
    )
    assert held(client) == [{"id": "runaway", "reasons": [LONG]}], "nothing refused was kept"


def test_a_value_past_28_digits_is_held_with_its_exact_figure(client: TestClient) -> None:
    """The reason's text is exact however long the number (Decimal's 28-digit context once failed it)."""
    huge = "1" + "0" * 40
    post(client, [record_event("big", status="open", ended_at="", answered_at="", audio_seconds=huge)])
    (item,) = held(client)
    assert item["id"] == "big"
    assert item["reasons"][0].startswith(f"audio-longer-than-call: audio_seconds {huge} s (")
