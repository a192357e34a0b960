"""A snapshot carries the tenant's acceptances (read in the transaction that writes its records), so the
invoices worked out over it count a flagged record a person accepted exactly as ``GET /v1/invoices`` counts
it: before an acceptance, after one, and after a change that breaks the limit by another amount; and an
acceptance changes the snapshot's acceptances mark (it changes no record); on DuckDB and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from app import test_review
from app.test_review import IDLE, NOW, PRICES, TENANT, api_total
from support.fixtures import postgres_server  # noqa: F401  (fixture)
from talktime.app.review import review
from talktime.app.snapshot import Snapshot, acceptances_mark, customer_invoices_of_file, take_snapshot
from talktime.io.ratecards import load_price_card
from talktime.store import EventStore

store = test_review.store  # the review tests' stores (DuckDB, PostgreSQL), holding the same records


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
