"""A derived record's row (``RowBuilder.add``, one pass over the fields) holds each field of the record and
its JSON exactly as :func:`record_doc` writes it, for whole records and for records folded from events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from strategies import usage_record
from support.event_strategies import T0, event_batches
from talktime.core.records import RECORD_FIELDS
from talktime.ingest.events import validate_event
from talktime.ingest.sessionize import SessionRecord, sessionize
from talktime.store.records import RowBuilder, record_doc, record_from_doc

NOW = datetime(2025, 3, 2, tzinfo=UTC)


def _check_row(session: SessionRecord, row: dict[str, Any]) -> None:
    record = session.record
    assert row["doc"] == record_doc(record)
    assert record_from_doc(row["doc"]) == record
    for name in RECORD_FIELDS:
        value = getattr(record, name)
        if row[name] is None and value is not None:  # beyond the column's range: kept in the doc only
            assert row["exact"] is False
        else:
            assert row[name] == value, name
    assert dict(row["attrs"] or []) == dict(record.attrs)
    assert orjson.loads(row["flags"]) == list(session.flags)
    assert row["flagged"] == bool(session.flags)
    assert row["events"] == session.events
    assert row["idle_from"] == session.idle_from
    assert (row["first_received"], row["last_received"]) == (NOW, NOW + timedelta(seconds=1))


@settings(max_examples=150, deadline=None)
@given(
    records=st.lists(usage_record(), max_size=4),
    batches=event_batches(max_events=16),
    hours=st.integers(0, 4),
)
def test_each_row_holds_its_record_s_fields_and_exact_json(
    records: list[Any], batches: list[list[dict[str, Any]]], hours: int
) -> None:
    events = [c.event for batch in batches for item in batch if (c := validate_event(item)).event is not None]
    sessions = sessionize(events, as_of=T0 + timedelta(hours=hours))
    sessions += [SessionRecord(r, ("sent twice",) if n % 2 else (), 1) for n, r in enumerate(records)]
    rows = RowBuilder.empty()
    for session in sessions:
        rows.add(session, NOW, NOW + timedelta(seconds=1))
    table = rows.table().to_pylist()
    assert len(table) == len(sessions)
    for session, row in zip(sessions, table, strict=True):
        _check_row(session, row)
