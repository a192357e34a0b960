"""The served review's parts without a browser: the live held list lists on no draft, but still shows, a held
record whose month is finalised in the ledger and one that names no customer (nothing held is left off the
page), and counts the month's records still open (not on its draft yet); it is read again after a review;
the form token is the session's; an error's field is found."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from support.events import record_event
from talktime.app import service
from talktime.app.history import HistorySource
from talktime.app.invoice import finalize
from talktime.app.review import review
from talktime.io.ratecards import load_price_card
from talktime.store import EventStore, open_store
from talktime.web.review_forms import Attempt, LiveHeld, StoreReview, form_token, typed_fields

TENANT = "acme-platform"
NOW = datetime(2025, 4, 2, tzinfo=UTC)
PRICES = Path("plan-per-component.toml")


@pytest.fixture
def stored(tmp_path: Path) -> Iterator[tuple[EventStore, str]]:
    target = str(tmp_path / "events.duckdb")
    opened = open_store(target)
    events = [
        record_event("r1", provider="twilio"),
        record_event("runaway", provider="twilio", ended_at="2035-03-01T10:00:00Z"),
        record_event("february", provider="twilio", started_at="2025-02-03T10:00:00Z",
                     answered_at="2025-02-03T10:00:05Z", ended_at="2035-02-03T10:00:00Z"),
        record_event("nobody", customer="", provider="twilio", ended_at="2035-03-01T11:00:00Z"),
        record_event("ongoing", provider="twilio", status="open", ended_at=""),
    ]  # fmt: skip
    assert service.ingest(opened, TENANT, events).rejected == 0
    yield opened, target
    opened.close()


def test_the_live_list_shows_every_held_record_and_moves_after_a_review(
    stored: tuple[EventStore, str], tmp_path: Path
) -> None:
    store, target = stored
    ledger = tmp_path / "ledger"
    store.close()  # finalising reads the store as the CLI does: one opener at a time for DuckDB
    finalize(
        HistorySource(store=target, tenant=TENANT),
        PRICES,
        "acme",
        "2025-02",
        ledger=ledger / TENANT,
        allow_flagged=True,
        at=NOW,
    )
    store = open_store(target)
    try:
        # The idle timeout is long: the open record of March is still open on 2 April.
        hour, quarter = timedelta(days=60), timedelta(minutes=15)
        source = StoreReview(store, TENANT, None, load_price_card(PRICES), ledger, hour, quarter, lambda: NOW)
        live = LiveHeld(source)
        first = live.get()
        assert [(m.customer, m.period, [h.record.id for h in m.records]) for m in first.months] == [
            ("acme", "2025-03", ["runaway"])
        ]
        assert sorted(j.record.id for j in first.elsewhere) == ["february", "nobody"]
        assert first.still_open == {("acme", "2025-03"): 1}, "said beside the draft's total"
        assert live.get() is first, "nothing changed: the same answer, not read again"
        review(store, TENANT, None, "runaway", "accept", at=NOW, idle_timeout=hour)
        after = live.get()
        assert after.months == [] and sorted(j.record.id for j in after.elsewhere) == ["february", "nobody"]
    finally:
        store.close()


def test_the_form_token_is_the_sessions_and_an_error_names_its_field() -> None:
    assert form_token(None) == "" and form_token("") == ""
    assert form_token("a") == form_token("a") != form_token("b")
    assert len(form_token("a")) == 64
    bad_time = "fields: the corrected record would be invalid: record 'r': field 'ended_at': 'x' is not ISO"
    assert Attempt("r", "correct", {}, bad_time).field == "ended_at"
    assert Attempt("r", "correct", {}, "fields.colour: is not a record field").field == "colour"
    assert Attempt("r", "accept", {}, "record 'r' breaks no limit").field == ""
    form = {"set.ended_at": "2025-03-01T10:01:00Z", "set.": "x", "other": " channels ", "other_value": "2"}
    assert typed_fields(form) == {"ended_at": "2025-03-01T10:01:00Z", "channels": "2"}
