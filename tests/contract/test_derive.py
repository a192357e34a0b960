"""``derive`` checks each lifecycle (type, data) once and reuses its payload for the events that repeat it:
the records it makes equal sessionizing every event validated one by one, and a stored event whose envelope
validation refuses still fails the derivation, whatever event with the same data came before it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import given, settings

from support.event_strategies import event_batches
from talktime.errors import InputError
from talktime.ingest.events import validate_event
from talktime.ingest.sessionize import NEVER, sessionize
from talktime.store.records import Stored, derive

NOW = datetime(2025, 3, 2, tzinfo=UTC)


def stored(item: dict[str, Any]) -> Stored:
    event = validate_event(item).event
    assert event is not None
    return Stored(
        event.source,
        event.id,
        event.type,
        event.subject,
        event.time,
        orjson.dumps(item.get("data")).decode(),
        NOW,
    )


@settings(max_examples=200, deadline=None)
@given(batches=event_batches())
def test_derived_records_equal_sessionizing_every_event_validated_alone(
    batches: list[list[dict[str, Any]]],
) -> None:
    items = list({(e["source"], e["id"]): e for batch in batches for e in batch}.values())
    expected = sessionize([validate_event(item).event for item in items], as_of=NEVER)  # type: ignore[misc]
    derived = derive([stored(item) for item in items])
    assert [session for session, _, _ in derived] == expected


def test_an_envelope_validation_refuses_fails_even_after_the_same_data_passed() -> None:
    good = Stored("/s", "e1", "talktime.call.answered", "call-1", NOW, "{}", NOW)
    without_time = good._replace(id="e2", time=None)
    with pytest.raises(InputError, match="e2 no longer validates: time"):
        derive([good, without_time])
