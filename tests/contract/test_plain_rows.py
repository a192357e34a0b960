"""The plain path of record rows (a lone ``talktime.record`` event converted value by value) gives exactly
the row of the typed path (``parse_record``, then the row of the record), for any valid record data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from strategies import usage_record
from talktime.core.records import parse_record, record_to_row
from talktime.ingest.events import validate_event
from talktime.ingest.sessionize import SessionRecord
from talktime.store.records import Fresh, RowBuilder, Stored, record_from_doc, record_id_of

NOW = datetime(2025, 3, 2, tzinfo=UTC)


@st.composite
def record_data(draw: st.DrawFn) -> dict[str, Any]:
    """Valid record data as clients write it: text with spaces, numbers as JSON numbers or text, times
    with offsets, blank fields, the id and session sometimes left to the event."""
    record = draw(usage_record(record_id=draw(st.sampled_from(["r1", " r1 ", "call-1/a"]))))
    data: dict[str, Any] = {
        k: v for k, v in record_to_row(record).items() if v != "" and not k.startswith("attr.")
    }
    for name in ("audio_seconds", "provider_reported_seconds", "channels", "input_tokens"):
        if name in data and draw(st.booleans()):
            number = float(data[name]) if "." in data[name] else int(data[name])
            data[name] = number
    for name in ("started_at", "ended_at"):
        if name in data and draw(st.booleans()):
            moment = datetime.fromisoformat(data[name]).astimezone(timezone(timedelta(hours=-3)))
            data[name] = f" {moment.isoformat()} "
    if draw(st.booleans()):
        data["kind"] = str(data.get("kind", "leg")).upper()
    if draw(st.booleans()):
        data["customer"] = draw(st.sampled_from([" acme ", "", None]))
    if draw(st.booleans()):
        data.pop("id", None)
    if draw(st.booleans()):
        data.pop("session", None)
    elif draw(st.integers(0, 4)) == 0:  # null: no session, not the event's subject
        data["session"] = None
    if draw(st.integers(0, 5)) == 0:
        data["attrs"] = {"model": "a"}
    return data


@settings(max_examples=300, deadline=None)
@given(data=record_data(), subject=st.sampled_from([None, "call-9", " call-9 "]))
def test_the_plain_row_equals_the_typed_row(data: dict[str, Any], subject: str | None) -> None:
    item = {"specversion": "1.0", "id": "ev-1", "source": "/s", "type": "talktime.record", "data": data}
    if subject is not None:
        item["subject"] = subject
    checked = validate_event(item)
    if checked.event is None:  # the draw broke a record rule (e.g. a blank id): nothing is stored
        return
    import orjson

    stored = Stored("/s", "ev-1", "talktime.record", subject, None, orjson.dumps(data).decode(), NOW)
    fresh = Fresh(record_id_of("talktime.record", "ev-1", subject, data), stored, data)
    plain, typed = RowBuilder.empty(), RowBuilder.empty()
    if plain.add_plain([fresh]):
        assert "attrs" in data
        return
    values = dict(data)
    values.setdefault("id", "ev-1")
    if subject is not None:
        values.setdefault("session", subject)
    typed.add(SessionRecord(parse_record(values), (), 1), NOW, NOW)
    docs = plain.columns.pop("doc"), typed.columns.pop("doc")
    assert plain.columns == typed.columns
    assert record_to_row(record_from_doc(docs[0][0])) == record_to_row(record_from_doc(docs[1][0]))
    assert fresh.rid == typed.columns["id"][0]
