"""The review use case (``talktime.app.review``), without a face: the held list read live from the store
gives each month the draft total ``GET /v1/invoices`` gives, before and after an acceptance and a
correction; a correction keeps only the fields a form changed; on DuckDB and PostgreSQL. The faces reach the
store's review and usage code only through the use case."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.test_boundaries import PACKAGE, imports
from support.events import record_event
from support.fixtures import postgres_server  # noqa: F401  (fixture)
from talktime.api import create_app
from talktime.app import service
from talktime.app.review import changed_fields, fields_to_correct, flagged, held_months, review
from talktime.errors import ConflictError, InputError
from talktime.io.ratecards import load_price_card
from talktime.store import EventStore, hash_key, open_store

NOW = datetime(2025, 4, 2, tzinfo=UTC)
IDLE = timedelta(hours=1)
PRICES = Path("plan-per-component.toml")
TENANT = "acme-platform"


@pytest.fixture(params=["duckdb", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EventStore]:
    """Both stores: the use case reads them through the same SQL."""
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
        record_event("nobody", customer="", provider="twilio", ended_at="2035-03-01T11:00:00Z"),
    ]
    result = service.ingest(opened, TENANT, events)
    assert result.rejected == 0
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


def _months(store: EventStore) -> tuple[list[str], Decimal, Decimal, list[str]]:
    months, nobody = held_months(
        store, "acme-platform", None, PRICES, ledger=None, as_of=NOW, idle_timeout=IDLE
    )
    if not months:
        return [], Decimal("NaN"), Decimal("NaN"), [j.record.id for j in nobody]
    (month,) = months
    assert (month.customer, month.period) == ("acme", "2025-03")
    ids = [held.record.id for held in month.records]
    return ids, month.total, month.total_with_held, [j.record.id for j in nobody]


def test_the_live_held_list_moves_with_each_review_as_the_api_invoice_does(store: EventStore) -> None:
    ids, total, with_held, nobody = _months(store)
    assert ids == ["runaway-1", "runaway-2"] and nobody == ["nobody"]
    assert total == api_total(store) and with_held > total
    done = review(
        store, "acme-platform", None, "runaway-1", "accept", note="bridge", at=NOW, idle_timeout=IDLE
    )
    assert done.held is False and done.reasons[0].startswith("call-too-long:")
    ids, accepted, _, _ = _months(store)
    assert ids == ["runaway-2"]
    assert accepted == api_total(store) and accepted > total, "the accepted runaway is billed"
    fix = changed_fields(store, "acme-platform", "runaway-2", {"ended_at": "2025-03-01T10:01:00Z"})
    done = review(store, "acme-platform", None, "runaway-2", "correct", fields=fix, at=NOW, idle_timeout=IDLE)
    assert done.held is False and done.as_dict()["fields"]["ended_at"] == "2025-03-01T10:01:00+00:00"
    assert _months(store)[0] == []
    assert [j.record.id for j in flagged(store, "acme-platform", None, NOW, IDLE).accepted] == ["runaway-1"]


def test_a_correction_takes_only_the_changed_fields_and_names_a_bad_one(store: EventStore) -> None:
    stored_end = "2035-03-01T10:00:00+00:00"
    with pytest.raises(InputError, match="every value is as the record has it"):
        changed_fields(store, "acme-platform", "runaway-1", {"ended_at": "2035-03-01T10:00:00Z"})
    typed = {"ended_at": stored_end, "started_at": "2025-03-01T10:00:00Z", "input_tokens": "-5"}
    fields = changed_fields(store, "acme-platform", "runaway-1", typed)
    assert fields == {"input_tokens": "-5"}
    with pytest.raises(ConflictError, match="field 'input_tokens': -5 is negative"):
        review(store, "acme-platform", None, "runaway-1", "correct", fields=fields, at=NOW, idle_timeout=IDLE)
    with pytest.raises(ConflictError, match="field 'ended_at': 'yesterday' is not an ISO 8601 timestamp"):
        review(
            store,
            "acme-platform",
            None,
            "runaway-1",
            "correct",
            fields={"ended_at": "yesterday"},
            at=NOW,
            idle_timeout=IDLE,
        )
    assert _months(store)[0] == ["runaway-1", "runaway-2"], "nothing refused was kept"


#: The faces of the review and what they may not reach past ``talktime.app.review``.
REVIEW_FACES = ("api/review.py", "cli/records.py", "web/review_pages.py", "web/review_forms.py")
BELOW = ("talktime.store.reviews", "talktime.store.usage", "talktime.io.guards", "talktime.io.invoices")


@pytest.mark.parametrize("face", REVIEW_FACES)
def test_the_review_faces_call_the_application_layer(face: str) -> None:
    reached = sorted({name for name in imports(PACKAGE / face) if name.startswith(BELOW)})
    assert reached == [], f"{face} reaches past talktime.app: {reached}"
    assert "talktime.app.review" in set(imports(PACKAGE / face)) or face == "web/review_pages.py"


def test_a_form_drawn_before_another_review_never_puts_back_what_it_showed(store: EventStore) -> None:
    """Two people on the flagged page: the second one's form still shows the old end. Its correction of
    another field must not revert the first one's end, and its acceptance must not accept reasons it never
    showed: both are refused, naming what changed (a reload shows the record as it is)."""
    shown = {"ended_at": "2035-03-01T10:00:00+00:00"}  # what both pages were drawn with
    first = fields_to_correct(
        store, "acme-platform", "runaway-1", {"ended_at": "2025-03-01T10:05:00Z"}, shown
    )
    review(store, "acme-platform", None, "runaway-1", "correct", fields=first, at=NOW, idle_timeout=IDLE)
    with pytest.raises(
        ConflictError, match=r"changed since the page showed it \(ended_at is now 2025-03-01T10:05"
    ):
        fields_to_correct(
            store, "acme-platform", "runaway-1", {"ended_at": shown["ended_at"], "channels": "2"}, shown
        )
    now = fields_to_correct(
        store,
        "acme-platform",
        "runaway-1",
        {"ended_at": "2025-03-01T10:05:00Z", "channels": "2"},
        {"ended_at": "2025-03-01T10:05:00+00:00"},
    )
    assert now == {"channels": "2"}, "only what the person changed is corrected"

    reasons = review(
        store,
        "acme-platform",
        None,
        "runaway-2",
        "correct",
        fields={"channels": "3"},
        at=NOW,
        idle_timeout=IDLE,
    ).reasons
    with pytest.raises(ConflictError, match="its reasons are now call-too-long"):
        review(
            store,
            "acme-platform",
            None,
            "runaway-2",
            "accept",
            at=NOW,
            idle_timeout=IDLE,
            shown_reasons=["speech-longer-than-audio: what another page showed"],
        )
    done = review(
        store,
        "acme-platform",
        None,
        "runaway-2",
        "accept",
        at=NOW,
        idle_timeout=IDLE,
        shown_reasons=list(reasons),
    )
    assert done.held is False
