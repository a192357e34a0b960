"""A snapshot carries the tenant's acceptances (read in the transaction that writes its records), so the
invoices worked out over it count a flagged record a person accepted exactly as ``GET /v1/invoices`` counts
it: before an acceptance, after one, and after a change that breaks the limit by another amount; and an
acceptance changes the snapshot's acceptances mark (it changes no record); on DuckDB and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from support.events import record_event
from support.fixtures import postgres_server  # noqa: F401  (fixture)
from talktime.api import create_app
from talktime.app import service
from talktime.app.review import review
from talktime.app.snapshot import Snapshot, acceptances_mark, customer_invoices_of_file, take_snapshot
from talktime.io.ratecards import load_price_card
from talktime.store import EventStore, hash_key, open_store

NOW = datetime(2025, 4, 2, tzinfo=UTC)
IDLE = timedelta(hours=1)
PRICES = Path("plan-per-component.toml")
TENANT = "acme-platform"


@pytest.fixture(params=["duckdb", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EventStore]:
    if request.param == "duckdb":
        target = str(tmp_path / "events.duckdb")
    else:
        target = request.getfixturevalue("postgres_server").create_database()
    opened = open_store(target)
    opened.add_key(TENANT, hash_key("key-a"))
    events = [
        record_event("r1", provider="twilio"),
        record_event("r2", provider="twilio", ended_at="2025-03-01T10:03:00Z"),
        record_event("runaway-1", provider="twilio", ended_at="2035-03-01T10:00:00Z"),
        record_event("runaway-2", provider="twilio", ended_at="2035-03-01T11:00:00Z"),
    ]
    assert service.ingest(opened, TENANT, events).rejected == 0
    yield opened
    opened.close()


def api_total(store: EventStore) -> Decimal:
    client = TestClient(create_app(store, clock=lambda: NOW, prices=load_price_card(PRICES)))
    answer = client.get(
        "/v1/invoices",
        params={"customer": "acme", "period": "2025-03"},
        headers={"Authorization": "Bearer key-a"},
    )
    assert answer.status_code == 200, answer.text
    return Decimal(answer.json()["total"])


def snapshot_total(store: EventStore, folder: Path) -> tuple[Decimal, list[str], Snapshot]:
    """The snapshot's invoice of acme's March (as the served invoices page shows it) and the ids it holds."""
    taken = take_snapshot(store, TENANT, folder / "records.parquet", as_of=NOW, months=2, idle_timeout=IDLE)
    (invoice,) = customer_invoices_of_file(
        taken.path,
        load_price_card(PRICES),
        "acme",
        ["2025-03"],
        ledger=None,
        guards=None,
        now=NOW,
        tenant=TENANT,
        accepted=taken.accepted,
    ).values()
    return invoice.total.amount, [record_id for record_id, _ in invoice.held], taken


def test_the_snapshots_invoice_counts_an_accepted_record_as_the_api_does(
    store: EventStore, tmp_path: Path
) -> None:
    before, held, taken = snapshot_total(store, tmp_path / "1")
    assert held == ["runaway-1", "runaway-2"] and taken.accepted == {}
    assert before == api_total(store)
    review(store, TENANT, None, "runaway-1", "accept", note="a real marathon", at=NOW)
    assert acceptances_mark(store, TENANT) != taken.accepted_mark, "an acceptance makes a new snapshot due"
    after, held, taken = snapshot_total(store, tmp_path / "2")
    assert list(taken.accepted) == ["runaway-1"]
    assert held == ["runaway-2"], "the accepted record is billed, the other still held"
    assert after == api_total(store) and after > before
    later = {"ended_at": "2036-03-01T10:00:00Z"}  # longer still: the same limit broken by another amount
    review(store, TENANT, None, "runaway-1", "correct", fields=later, at=NOW + timedelta(seconds=1))
    again, held, _ = snapshot_total(store, tmp_path / "3")
    assert held == ["runaway-1", "runaway-2"], "a change the acceptance did not cover holds it back again"
    assert again == api_total(store) == before
