"""Usage records kept in the store beside the events: which record an event feeds, and the record rows.

A record is derived by :func:`talktime.ingest.sessionize.sessionize` from the events of its id alone (the
events of a lifecycle group ``(subject, leg)`` and any ``talktime.record`` event under the same id), so a
batch re-derives only the ids it touches, from their stored events and the batch's. Each event row keeps
``rid``, the id of the record it feeds; the record row keeps everything a read needs:

* typed columns in the engines' canonical layout (``records_table``), filtered and metered in SQL;
* the record **as of** :data:`~talktime.ingest.sessionize.NEVER`: an open session stays ``open`` and keeps
  ``idle_from``, its last event's time. Closing it by the idle timeout happens when it is read, in SQL
  (:func:`status_sql`), so the stored row never depends on the clock;
* ``doc``, the exact record as JSON (times with their offsets, decimals as written), for the reads that hand
  records to Python (the record route, invoices, the CLI), and ``flags`` and ``events`` as sessionize gave
  them;
* ``exact``: False when a seconds value has more than 6 decimals or a count exceeds 64 bits, which the
  typed columns cannot hold; reads that meet such a record meter from ``doc`` with the reference meter.

Owns: the event -> record id rule, the derivation of rows, and the row <-> record conversions. Does not own:
the tables (each store), the fold itself (``sessionize``).
"""

from __future__ import annotations

import json
import operator
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Final, NamedTuple

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from talktime.core.records import COUNT_FIELDS, RECORD_FIELDS, UsageRecord, parse_record
from talktime.errors import InputError
from talktime.ingest import events as ev
from talktime.ingest.sessionize import NEVER, SessionRecord, sessionize
from talktime.io.records_io import LIMIT_INT, LIMIT_SECONDS
from talktime.store.reviews import CORRECTION, corrected

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_US: Final = timedelta(microseconds=1)
_TIMES: Final = ("started_at", "ended_at", "answered_at", "first_audio_at", "last_audio_at")
_SECONDS: Final = ("audio_seconds", "speech_seconds", "provider_reported_seconds")
_INTS: Final = ("channels", *COUNT_FIELDS)
_TEXTS: Final = ("id", "customer", "provider", "product", "session", "kind", "status")
_PARTICIPANT_TYPES: Final = frozenset({ev.JOINED, ev.LEFT})

_TEXT: Final = "text"
_TIME: Final = "time"
_SECONDS_KIND: Final = "seconds"
_INT: Final = "int"
#: Each record field in :data:`RECORD_FIELDS` order (the order of a record's JSON) with its kind.
_FIELD_KINDS: Final = tuple(
    (
        name,
        _TIME if name in _TIMES else _SECONDS_KIND if name in _SECONDS else _INT if name in _INTS else _TEXT,
    )
    for name in RECORD_FIELDS
)
_FIELD_VALUES: Final = operator.attrgetter(*RECORD_FIELDS)

#: The record rows a store writes (it adds ``tenant`` and the id hash itself).
ROW_SCHEMA: Final = pa.schema(
    [  # type: ignore[arg-type]  # the stubs reject a list of differently typed fields
        *(pa.field(name, pa.string()) for name in _TEXTS),
        *(pa.field(name, pa.timestamp("us", tz="UTC")) for name in _TIMES),
        *(pa.field(name, pa.decimal128(18, 6)) for name in _SECONDS),
        *(pa.field(name, pa.int64()) for name in _INTS),
        pa.field("attrs", pa.map_(pa.string(), pa.string())),
        pa.field("idle_from", pa.timestamp("us", tz="UTC")),
        pa.field("flagged", pa.bool_()),
        pa.field("exact", pa.bool_()),
        pa.field("events", pa.int64()),
        pa.field("first_received", pa.timestamp("us", tz="UTC")),
        pa.field("last_received", pa.timestamp("us", tz="UTC")),
        pa.field("flags", pa.string()),
        pa.field("doc", pa.string()),
    ]
)
#: The typed record columns, in the order of :data:`ROW_SCHEMA`.
TYPED_COLUMNS: Final = (*_TEXTS, *_TIMES, *_SECONDS, *_INTS)
assert set(TYPED_COLUMNS) == set(RECORD_FIELDS)

#: The record row of a plain ``talktime.record`` event, without the store's receipt times.
PLAIN_ROW: Final = pa.struct([f for f in ROW_SCHEMA if f.name not in ("first_received", "last_received")])


def record_id_of(event_type: str, event_id: str, subject: str | None, data: object) -> str | None:
    """The id of the record an event feeds, as :func:`sessionize` names it; None for a lifecycle event
    without a subject (no record can be made of it).

    ``data`` is the event's stored JSON text, or that text decoded. A ``talktime.record`` event feeds
    ``data.id`` (trimmed, as the record format reads it), else the event's id; a lifecycle event
    ``subject``, or ``subject/leg``
    (the participant for joined and left events)."""
    if event_type not in ev.EVENT_TYPES and event_type != CORRECTION:
        return None  # not usage (a webhook secret under its reserved tenant): it feeds no record
    payload = orjson.loads(data) if isinstance(data, str) else data
    if event_type == ev.RECORD:
        raw = payload.get("id", event_id) if isinstance(payload, dict) else event_id
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            return None
        return str(raw).strip()
    if subject is None:
        return None
    leg = None
    if isinstance(payload, dict):
        leg = payload.get("participant" if event_type in _PARTICIPANT_TYPES else "leg")
    return subject if leg is None else f"{subject}/{leg}"


class Stored(NamedTuple):
    """An event as a store hands it to the derivation: envelope, JSON data, and when it was stored (a
    NamedTuple: a batch makes 10,000 of them, see ``RawEvent``)."""

    source: str
    id: str
    type: str
    subject: str | None
    time: datetime | None
    data: str
    received_at: datetime


def typed_event(
    source: str, id_: str, type_: str, subject: str | None, time: datetime | None, data: str
) -> ev.Event:
    """A stored event as the typed event sessionize folds (every stored event was valid when it came)."""
    item = {
        "specversion": "1.0",
        "id": id_,
        "source": source,
        "type": type_,
        "subject": subject,
        "time": None if time is None else time.isoformat(),
        "data": exact_loads(data),
    }
    checked = ev.validate_event(item)
    if checked.event is None:  # a rule may have tightened since the event was stored
        issues = "; ".join(f"{i.field}: {i.reason}" for i in checked.issues)
        raise InputError(f"stored event {source}/{id_} no longer validates: {issues}")
    return checked.event


def _typed(
    stored: Stored,
    known: tuple[Any, ev.LifecycleData] | None,
    seen: dict[tuple[str, str], tuple[Any, ev.LifecycleData]],
) -> ev.Event:
    """:func:`typed_event`, checking the data of each lifecycle (type, data) once per derivation.

    A lifecycle payload depends on its type and data alone, and lifecycle data repeats (``{}`` for answered
    and closed, a customer's opened data): validating it is most of a lifecycle event's cost. An event whose
    (type, data) was seen gets that payload when its envelope is one validation would pass as it is;
    anything else (a record event, a first sight, an envelope to refuse) is validated whole."""
    if known is not None and (
        stored.source
        and stored.id
        and stored.subject
        and stored.time is not None
        and type(stored.source) is type(stored.id) is type(stored.subject) is str
    ):
        return ev.Event(stored.source, stored.id, stored.type, stored.time, stored.subject, known[1])
    event = typed_event(stored.source, stored.id, stored.type, stored.subject, stored.time, stored.data)
    if isinstance(event.payload, ev.LifecycleData):
        seen[(stored.type, stored.data)] = (orjson.loads(stored.data), event.payload)
    return event


def derive(events: Iterable[Stored]) -> list[tuple[SessionRecord, datetime, datetime]]:
    """The records fed by ``events`` (all the events of each of their ids), as of :data:`NEVER`, with the
    first and last time one of their events was stored, sorted by id."""
    received: dict[str, list[datetime]] = {}
    typed: list[ev.Event] = []
    fixes: dict[str, list[tuple[datetime | None, str, str]]] = {}  # a person's corrections (reviews.py)
    seen: dict[tuple[str, str], tuple[Any, ev.LifecycleData]] = {}  # see _typed
    for stored in events:
        known = seen.get((stored.type, stored.data))
        rid = record_id_of(stored.type, stored.id, stored.subject, stored.data if known is None else known[0])
        if rid is None:
            continue
        received.setdefault(rid, []).append(stored.received_at)
        if stored.type == CORRECTION:
            fixes.setdefault(rid, []).append((stored.time, stored.id, stored.data))
            continue
        typed.append(_typed(stored, known, seen))
    result = []
    for session in sessionize(typed, as_of=NEVER):
        times = received[session.record.id]
        if session.record.id in fixes:
            session = corrected(session, fixes[session.record.id])
        result.append((session, min(times), max(times)))
    return result


# --- the exact record as JSON, and back -------------------------------------------------------------------


def record_doc(record: UsageRecord) -> str:
    """The record as JSON that :func:`record_from_doc` turns back into an equal record: times keep their
    offsets, decimals their digits, text its spaces."""
    return _doc({name: getattr(record, name) for name in RECORD_FIELDS}, record.attrs)


def json_text(value: Any) -> str:
    """``value`` as compact JSON, as orjson writes it; a whole number past 64 bits (which orjson refuses: a
    count of 2**64 tokens is valid, and the guards flag it) through the standard library, in the same form."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _doc(values: Mapping[str, Any], attrs: Mapping[str, str]) -> str:
    doc: dict[str, Any] = {}
    for name in RECORD_FIELDS:
        value = values[name]
        if value is None:
            continue
        if isinstance(value, datetime):
            doc[name] = value.isoformat()
        elif isinstance(value, Decimal):
            doc[name] = str(value)
        else:
            doc[name] = value
    if attrs:
        doc["attrs"] = dict(attrs)
    return json_text(doc)


# --- parse_record's conversions, column by column (ingest's record rows) --------------------------------


def _text(value: Any) -> str | None:
    """``_parse_text``: blank is None, else the text stripped."""
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, dict | list):  # never in a valid record's text fields
        raise _NotPlain
    return str(value).strip()


class _NotPlain(Exception):
    """A value the plain path does not convert (the typed way then decides)."""


def _time(value: Any) -> datetime | None:
    """``_parse_time`` of a valid value: blank is None, else ISO 8601 (datetimes come from Parquet only)."""
    if not isinstance(value, str):
        raise _NotPlain
    text = value.strip()
    return datetime.fromisoformat(text) if text else None


def _decimal(value: Any) -> Decimal | None:
    """``_parse_decimal`` of a valid value: a float through its shortest text, an int as it is."""
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, str):
        text = value.strip()
        return Decimal(text) if text else None
    if type(value) is not int:  # bool, list, object: never in a valid record
        raise _NotPlain
    return Decimal(value)


def _int(value: Any) -> int | None:
    parsed = _decimal(value)
    return None if parsed is None else int(parsed)


_PLAIN: Final[dict[str, Any]] = {
    **dict.fromkeys(_TEXTS, _text),
    **dict.fromkeys(_TIMES, _time),
    **dict.fromkeys(_SECONDS, _decimal),
    **dict.fromkeys(_INTS, _int),
}
_PLAIN_KEYS: Final = frozenset(_PLAIN)


class Plain(NamedTuple):
    """``talktime.record`` events as the plain path reads them: their ids, subjects, data texts and data."""

    ids: Sequence[str]
    subjects: Sequence[str | None]
    datas: Sequence[str]
    payloads: Sequence[dict[str, Any]]

    def one(self, index: int) -> Plain:
        return Plain([self.ids[index]], [self.subjects[index]], [self.datas[index]], [self.payloads[index]])


def _is_plain(event_type: str, payload: Any) -> bool:
    """Whether the plain path may convert this event (it still falls back when a value surprises it)."""
    return event_type == ev.RECORD and type(payload) is dict and payload.keys() <= _PLAIN_KEYS


#: ISO 8601 times that Arrow's cast reads exactly as ``datetime.fromisoformat`` does (checked against it);
#: anything else (spaces, other separators, a date alone, seconds in the offset) goes through Python.
_ISO_TIME: Final = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|[+-][01][0-9]:[0-5][0-9])$"
)
#: Text that ``str.strip()`` leaves as it is and that is not blank: its first and last characters are
#: printable ASCII other than the space (never whitespace to Python). Other text goes through Python.
_STRIPPED: Final = r"^[!-~](?s:.*[!-~])?$"
#: A kind or a status as ``_parse_text`` then ``str.lower`` leave it after Arrow's ``ascii_lower``.
_WORD: Final = r"^[!-~]+$"
#: Text that orjson writes as it is between two quotes (no quote, backslash or control character).
_JSON_AS_IS: Final = r"^[ !#-\[\]-~]*$"
_MICROS: Final = pa.timestamp("us", tz="UTC")
_DECIMAL: Final = pa.decimal128(18, 6)
_INT_TYPES: Final = frozenset({int, type(None)})


def _all_match(texts: pa.Array[Any], pattern: str) -> bool:
    """Every non-null text matches ``pattern``."""
    return pc.all(pc.match_substring_regex(texts, pattern)).as_py() is not False


def _as_text(values: list[Any], pattern: str = _STRIPPED) -> pa.Array[Any] | None:
    """``values`` as Arrow text when each is null or text matching ``pattern``, else None."""
    try:
        texts = pa.array(values, pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    return texts if _all_match(texts, pattern) else None


def _texts(values: list[Any]) -> pa.Array[Any]:
    """Text fields as ``_parse_text`` reads them: in Arrow when no value needs stripping, else Python."""
    texts = _as_text(values)
    return (
        texts
        if texts is not None
        else pa.array([None if v is None else _text(v) for v in values], pa.string())
    )


def _words(values: list[Any], absent: str | None) -> pa.Array[Any]:
    """A kind or status: ``_parse_text``, lower case, ``absent`` for a missing one."""
    texts = _as_text(values, _WORD)
    if texts is not None:
        texts = pc.ascii_lower(texts)
    else:
        words = [None if v is None else _text(v) for v in values]
        texts = pa.array([w.lower() if w else None for w in words], pa.string())
    return texts if absent is None else texts.fill_null(absent)


def _times(values: list[Any]) -> pa.Array[Any]:
    """Times given as text (``_parse_time``): cast by Arrow when every one has the plain form of
    :data:`_ISO_TIME`, else one by one in Python."""
    texts = _as_text(values, _ISO_TIME)
    if texts is not None:
        try:
            return texts.cast(_MICROS)
        except pa.ArrowInvalid:  # e.g. a 30th of February: Python's error decides
            pass
    micros = [None if v is None or (t := _time(v)) is None else (t - _EPOCH) // _US for v in values]
    return pa.array(micros, pa.int64()).cast(_MICROS)


def _whole(values: list[Any]) -> pa.Array[Any] | None:
    """``values`` as 64-bit integers when each is a JSON integer (or null) that fits, else None."""
    if not set(map(type, values)) <= _INT_TYPES:
        return None
    try:
        return pa.array(values, pa.int64())
    except (OverflowError, pa.ArrowInvalid):
        return None


def _seconds(values: list[Any], inexact: set[int]) -> pa.Array[Any]:
    """Seconds (``_parse_decimal``); one with more than 6 decimals or of 10^12 or more is null and its row
    is added to ``inexact`` (``doc`` keeps it)."""
    whole = _whole(values)
    if whole is not None:
        low, high = pc.min_max(whole).values()
        if low.as_py() is None or (low.as_py() > -LIMIT_SECONDS and high.as_py() < LIMIT_SECONDS):
            return whole.cast(pa.decimal128(25, 6)).cast(_DECIMAL)
    decimals = [None if v is None else _decimal(v) for v in values]
    for index, seconds in enumerate(decimals):
        if seconds is not None:
            exponent = seconds.as_tuple().exponent
            if not (isinstance(exponent, int) and exponent >= -6 and abs(seconds) < LIMIT_SECONDS):
                decimals[index] = None
                inexact.add(index)
    return pa.array(decimals, _DECIMAL)


def _ints(values: list[Any], inexact: set[int]) -> pa.Array[Any]:
    """Whole numbers (``_parse_int``); one past 64 bits is null and its row added to ``inexact``."""
    whole = _whole(values)
    if whole is not None:
        return whole
    ints = [None if v is None else _int(v) for v in values]
    for index, value in enumerate(ints):
        if value is not None and not -LIMIT_INT <= value < LIMIT_INT:
            ints[index] = None
            inexact.add(index)
    return pa.array(ints, pa.int64())


def _join(*parts: str | pa.Array[Any]) -> pa.Array[Any]:
    """Text arrays and constants joined row by row (null where an array is)."""
    joined: pa.Array[Any] = pc.binary_join_element_wise(*parts, "")  # type: ignore[call-overload]  # the stubs take no mix of arrays and text
    return joined


def _json_texts(values: Sequence[str | None]) -> pa.Array[Any]:
    """Each value as orjson writes it (``null`` for None)."""
    texts = _as_text(list(values), _JSON_AS_IS)
    if texts is None:
        dumps = orjson.dumps
        return pa.array([dumps(v).decode() for v in values], pa.string())
    return _join('"', texts, '"').fill_null("null")


def _plain_rows(plain: Plain) -> pa.StructArray:
    """The record rows (:data:`PLAIN_ROW`) of lone record events, converted as ``parse_record`` would,
    column by column: a column of common values (text needing no strip, times in the plain ISO form, JSON
    integers) in Arrow, any other column value by value in Python. Raises :class:`_NotPlain` (or the
    conversion's error) for a value of a shape the conversions do not take."""
    payloads = plain.payloads
    present = set().union(*payloads)
    count = len(payloads)
    inexact: set[int] = set()
    columns: dict[str, pa.Array[Any]] = {}
    for field in PLAIN_ROW:
        name = field.name
        if name not in _PLAIN or name in ("id", "session", "kind", "status"):
            continue
        if name not in present:
            columns[name] = pa.nulls(count, field.type)
            continue
        values = [p.get(name) for p in payloads]
        if name in _TIMES:
            columns[name] = _times(values)
        elif name in _TEXTS:
            columns[name] = _texts(values)
        elif name in _SECONDS:
            columns[name] = _seconds(values, inexact)
        else:
            columns[name] = _ints(values, inexact)
    columns["id"] = _texts([p.get("id", i) for p, i in zip(payloads, plain.ids, strict=True)])
    columns["session"] = _texts([p.get("session", s) for p, s in zip(payloads, plain.subjects, strict=True)])
    columns["kind"] = _words([p.get("kind") for p in payloads], None)
    columns["status"] = _words([p.get("status") for p in payloads], "completed")
    columns["channels"] = columns["channels"].fill_null(1)
    columns["attrs"] = pa.nulls(count, PLAIN_ROW.field("attrs").type)  # no free attributes: a NULL map
    columns["idle_from"] = pa.nulls(count, _MICROS)
    columns["flagged"] = pa.repeat(pa.scalar(False), count)
    columns["exact"] = (
        pa.array([i not in inexact for i in range(count)], pa.bool_())
        if inexact
        else pa.repeat(pa.scalar(True), count)
    )
    columns["events"] = pa.repeat(pa.scalar(1, pa.int64()), count)
    columns["flags"] = pa.repeat(pa.scalar("[]"), count)
    columns["doc"] = _join(
        '{"data":',
        pa.array(plain.datas, pa.string()),
        ',"event":',
        _json_texts(plain.ids),
        ',"subject":',
        _json_texts(plain.subjects),
        "}",
    )
    return pa.StructArray.from_arrays([columns[f.name] for f in PLAIN_ROW], fields=list(PLAIN_ROW))


def _converted(plain: Plain) -> tuple[list[int], pa.StructArray | None]:
    """Which of ``plain`` the plain path converts (their indexes) and their rows; all at once, else (a
    value of an unusual shape somewhere) one by one, leaving out those it cannot convert."""
    count = len(plain.payloads)
    if not count:
        return [], None
    try:
        return list(range(count)), _plain_rows(plain)
    except (_NotPlain, ValueError, ArithmeticError):
        pass
    taken: list[int] = []
    rows: list[pa.StructArray] = []
    for index in range(count):
        try:
            rows.append(_plain_rows(plain.one(index)))
        except (_NotPlain, ValueError, ArithmeticError):
            continue
        taken.append(index)
    return taken, pa.concat_arrays(rows) if rows else None


def record_columns(
    types: Sequence[str],
    ids: Sequence[str],
    subjects: Sequence[str | None],
    datas: Sequence[str],
    payloads: Sequence[Any],
) -> tuple[pa.Array[Any], pa.Array[Any]]:
    """Per event of a batch (its fields, data text and data decoded): ``rid``, the record it feeds
    (:func:`record_id_of`), and ``plain``, a plain ``talktime.record`` event's record row
    (:data:`PLAIN_ROW`, converted as ``parse_record`` would; null for any other event).

    Ingest computes both where it has the data decoded (:mod:`talktime.ingest.batch`, in a worker process
    with ``serve --workers``); a store given rows without them computes them itself. Whether a plain row
    is used is the store's decision: only for a record's only event, when the record is new."""
    where = [i for i, (t, p) in enumerate(zip(types, payloads, strict=True)) if _is_plain(t, p)]
    if len(where) == len(types):
        plain = Plain(ids, subjects, datas, payloads)
    else:
        plain = Plain(
            [ids[i] for i in where],
            [subjects[i] for i in where],
            [datas[i] for i in where],
            [payloads[i] for i in where],
        )
    taken, rows = _converted(plain)
    if rows is not None and len(taken) == len(types):  # a plain row's id is the record id of its event
        return rows.field("id"), rows
    rids = [
        record_id_of(type_, id_, subject, payload)
        for type_, id_, subject, payload in zip(types, ids, subjects, payloads, strict=True)
    ]
    if rows is None:
        return pa.array(rids, pa.string()), pa.nulls(len(types), PLAIN_ROW)
    at: list[int | None] = [None] * len(types)
    for row, index in enumerate(taken):
        at[where[index]] = row
    return pa.array(rids, pa.string()), rows.take(pa.array(at, pa.int64()))


_EXACT_FLOAT: Final = float(2**53)


def exact_loads(text: str) -> Any:
    """JSON a store wrote (an event's data, a record's doc) decoded; orjson reads a whole number past 64 bits
    as a float, so a text with a float past 2**53 among its values (a count stored exactly: :func:`json_text`)
    is read again by the standard library, which keeps every digit."""
    found = orjson.loads(text)
    values = found.get("data") if isinstance(found, dict) and isinstance(found.get("data"), dict) else found
    if isinstance(values, dict) and any(type(v) is float and abs(v) >= _EXACT_FLOAT for v in values.values()):
        return json.loads(text)
    return found


def record_from_doc(text: str) -> UsageRecord:
    """The record :func:`record_doc` wrote, or (``{"data": ...}``) the record ``parse_record`` makes of a
    lone ``talktime.record`` event's data, as sessionize made it (:meth:`RowBuilder.add_plain`)."""
    doc: dict[str, Any] = exact_loads(text)
    if "data" in doc:  # a lone record event: its data, its id and subject (what parse_record was given)
        values = dict(doc["data"])
        values.setdefault("id", doc["event"])
        if doc["subject"] is not None:
            values.setdefault("session", doc["subject"])
        return parse_record(values)
    for name in _TIMES:
        if name in doc:
            doc[name] = datetime.fromisoformat(doc[name])
    for name in _SECONDS:
        if name in doc:
            doc[name] = Decimal(doc[name])
    doc.setdefault("ended_at", None)
    return UsageRecord(**doc)


def exact_doc(doc: str) -> str:
    """A stored doc in :func:`record_doc`'s form (a lone record event's is kept as its data)."""
    return record_doc(record_from_doc(doc)) if doc.startswith('{"data":') else doc


# --- rows ---------------------------------------------------------------------------------------------------


@dataclass
class RowBuilder:
    """Record rows collected column by column, then one Arrow table (:data:`ROW_SCHEMA`)."""

    columns: dict[str, list[Any]]

    @classmethod
    def empty(cls) -> RowBuilder:
        return cls({name: [] for name in ROW_SCHEMA.names})

    def __len__(self) -> int:
        return len(self.columns["id"])

    def add(self, session: SessionRecord, first: datetime, last: datetime) -> None:
        """Add a derived record: each field read once, into its column and the record's JSON (``doc``,
        the form :func:`record_doc` writes) in the same pass; this runs once per record stored."""
        record = session.record
        columns = self.columns
        doc: dict[str, Any] = {}
        exact = True
        for (name, kind), value in zip(_FIELD_KINDS, _FIELD_VALUES(record), strict=True):
            if value is None:
                columns[name].append(None)
                continue
            if kind is _TIME:
                doc[name] = value.isoformat()
                value = (value - _EPOCH) // _US
            elif kind is _SECONDS_KIND:
                doc[name] = str(value)
                exponent = value.as_tuple().exponent
                if not (isinstance(exponent, int) and exponent >= -6 and abs(value) < LIMIT_SECONDS):
                    value, exact = None, False
            else:
                doc[name] = value
                if kind is _INT and not -LIMIT_INT <= value < LIMIT_INT:
                    value, exact = None, False
            columns[name].append(value)
        attrs = record.attrs
        if attrs:
            doc["attrs"] = dict(attrs)
        flags = orjson.dumps(list(session.flags)).decode()
        idle_from = session.idle_from
        columns["attrs"].append(list(attrs.items()) if attrs else None)
        columns["idle_from"].append(None if idle_from is None else (idle_from - _EPOCH) // _US)
        columns["flagged"].append(flags != "[]")
        columns["exact"].append(exact)
        columns["events"].append(session.events)
        columns["first_received"].append((first - _EPOCH) // _US)
        columns["last_received"].append((last - _EPOCH) // _US)
        columns["flags"].append(flags)
        columns["doc"].append(json_text(doc))

    def add_plain(self, lone: list[Fresh]) -> list[Fresh]:
        """Add the records of lone ``talktime.record`` events straight from their data, column by column,
        converting each value as ``parse_record`` does (each event was valid, so it would succeed). Returns
        the events left for the typed way: any other type, free attributes, a value of another shape.

        Column by column because this is the whole cost of keeping records for whole-record ingest: one
        Arrow kernel per field over the batch costs a fraction of one dict per record."""
        plain: list[Fresh] = []
        rest: list[Fresh] = []
        for fresh in lone:
            (plain if _is_plain(fresh.event.type, fresh.payload) else rest).append(fresh)
        if not plain:
            return rest
        taken, rows = _converted(
            Plain(
                [f.event.id for f in plain],
                [f.event.subject for f in plain],
                [f.event.data for f in plain],
                [f.payload for f in plain],
            )
        )
        if rows is not None:
            self._extend(rows, [plain[i].event.received_at for i in taken])
        kept = set(taken)
        return rest + [f for i, f in enumerate(plain) if i not in kept]

    def _extend(self, rows: pa.StructArray, received: list[datetime]) -> None:
        """Append record rows (:data:`PLAIN_ROW`) stored at ``received``, as this builder keeps values."""
        for field in PLAIN_ROW:
            column = rows.field(field.name)
            if pa.types.is_timestamp(field.type):
                column = column.cast(pa.int64())
            self.columns[field.name].extend(column.to_pylist())
        micros = [(at - _EPOCH) // _US for at in received]
        self.columns["first_received"].extend(micros)
        self.columns["last_received"].extend(micros)

    def table(self) -> pa.Table:
        arrays = []
        for field in ROW_SCHEMA:
            values = self.columns[field.name]
            if pa.types.is_timestamp(field.type):
                arrays.append(pa.array(values, pa.int64()).cast(field.type))
            else:
                arrays.append(pa.array(values, field.type))
        return pa.Table.from_arrays(arrays, schema=ROW_SCHEMA)


def record_rows(derived: Iterable[tuple[SessionRecord, datetime, datetime]]) -> pa.Table:
    """Derived records as rows of :data:`ROW_SCHEMA`."""
    rows = RowBuilder.empty()
    for session, first, last in derived:
        rows.add(session, first, last)
    return rows.table()


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """A record read back from the store: the record as of :data:`NEVER` and what sessionize said of it."""

    record: UsageRecord
    flags: tuple[str, ...]
    events: int
    idle_from: datetime | None
    first_received: datetime  # when the store first received one of its events

    @property
    def session(self) -> SessionRecord:
        return SessionRecord(self.record, self.flags, self.events, self.idle_from)


def stored_record(
    doc: str, flags: str, events: int, idle_from: datetime | None, first_received: datetime
) -> StoredRecord:
    return StoredRecord(
        record_from_doc(doc), tuple(orjson.loads(flags)), int(events), idle_from, first_received
    )


class Fresh(NamedTuple):
    """An event of the batch being stored: the record it feeds, the event, and its data decoded."""

    rid: str | None
    event: Stored
    payload: Any


def with_record_columns(rows: pa.Table) -> pa.Table:
    """A batch's rows (:data:`~talktime.store.base.ROWS_SCHEMA`) with ``rid`` and ``plain``
    (:func:`record_columns`), decoding each event's data for them unless ingest gave them already."""
    if "rid" in rows.column_names and "plain" in rows.column_names:
        return rows
    types: list[str] = rows.column("type").to_pylist()  # type: ignore[assignment]
    ids: list[str] = rows.column("id").to_pylist()  # type: ignore[assignment]
    subjects: list[str | None] = rows.column("subject").to_pylist()
    datas: list[str] = rows.column("data").to_pylist()  # type: ignore[assignment]
    rids, plain = record_columns(types, ids, subjects, datas, [exact_loads(data) for data in datas])
    return rows.append_column("rid", rids).append_column("plain", plain)


def stored_events(rows: pa.Table, received_at: datetime) -> list[Stored]:
    """Rows of a batch as stored events, in their order."""
    columns = [rows.column(name).to_pylist() for name in ("source", "id", "type", "subject", "data")]
    micros = rows.column("time").cast(pa.int64()).to_pylist()
    return [
        Stored(
            source,
            id_,
            type_,
            subject,
            None if us is None else _EPOCH + timedelta(microseconds=us),
            data,
            received_at,
        )
        for source, id_, type_, subject, data, us in zip(*columns, micros, strict=True)
    ]


def plain_table(plain: pa.Table, received_at: datetime) -> pa.Table:
    """Record rows (:data:`ROW_SCHEMA`) from the ``plain`` rows of a batch's record events, stored at
    ``received_at``."""
    micros = (received_at - _EPOCH) // _US
    stamp = pa.array([micros] * plain.num_rows, pa.int64()).cast(pa.timestamp("us", tz="UTC"))
    rows: pa.StructArray = plain.column("plain").combine_chunks()  # type: ignore[assignment]
    return pa.Table.from_arrays(
        [stamp if name.endswith("_received") else rows.field(name) for name in ROW_SCHEMA.names],
        schema=ROW_SCHEMA,
    )
