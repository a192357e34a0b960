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
from talktime.store.records import (
    _ISO_TIME,
    Fresh,
    RowBuilder,
    Stored,
    record_columns,
    record_from_doc,
    record_id_of,
)

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


def _typed_row(data: dict[str, Any], event_id: str, subject: str | None) -> dict[str, Any]:
    values = dict(data)
    values.setdefault("id", event_id)
    if subject is not None:
        values.setdefault("session", subject)
    rows = RowBuilder.empty()
    rows.add(SessionRecord(parse_record(values), (), 1), NOW, NOW)
    row: dict[str, Any] = rows.table().to_pylist()[0]
    return row


@settings(max_examples=200, deadline=None)
@given(
    batch=st.lists(
        st.tuples(record_data(), st.sampled_from([None, "call-9", " call-9 ", 'say "hi"'])),
        min_size=1,
        max_size=8,
    ),
    clean=st.booleans(),
)
def test_a_batch_s_plain_rows_equal_each_event_s_typed_row(
    batch: list[tuple[dict[str, Any], str | None]], clean: bool
) -> None:
    # Ingest converts a batch's record events column by column (in Arrow where a whole column has the
    # common form, else value by value): each row must be the row parse_record's record makes.
    import orjson

    items = []
    for number, (data, subject) in enumerate(batch):
        if clean:  # every column in its common form, so Arrow converts them all
            data = {k: v.strip() if isinstance(v, str) else v for k, v in data.items() if v not in ("", None)}
        item = {"specversion": "1.0", "id": f"ev-{number}", "source": "/s", "type": "talktime.record"}
        item["data"] = data
        if subject is not None:
            item["subject"] = subject
        if validate_event(item).event is not None:
            items.append((item["id"], subject, data))
    if not items:
        return
    rids, plain = record_columns(
        ["talktime.record"] * len(items),
        [i for i, _, _ in items],
        [s for _, s, _ in items],
        [orjson.dumps(d).decode() for _, _, d in items],
        [d for _, _, d in items],
    )
    for (event_id, subject, data), rid, row in zip(items, rids.to_pylist(), plain.to_pylist(), strict=True):
        if row is None:
            assert "attrs" in data
            continue
        typed = _typed_row(data, event_id, subject)
        assert rid == typed["id"]
        docs = row.pop("doc"), typed.pop("doc")
        assert row == {k: v for k, v in typed.items() if not k.endswith("_received")}
        assert record_to_row(record_from_doc(docs[0])) == record_to_row(record_from_doc(docs[1]))


@settings(max_examples=300, deadline=None)
@given(text=st.from_regex(_ISO_TIME, fullmatch=True))
def test_arrow_reads_a_plain_iso_time_as_python_does(text: str) -> None:
    # The conversion casts a column of times in Arrow when every one matches _ISO_TIME (else Python reads
    # them): for a time Python reads, Arrow must give the same instant or refuse (then Python decides).
    import pyarrow as pa

    try:
        expected = datetime.fromisoformat(text)
    except ValueError:
        return
    try:
        got = pa.array([text]).cast(pa.timestamp("us", tz="UTC")).to_pylist()[0]
    except pa.ArrowInvalid:
        return
    assert got == expected
