"""A fast, conservative first look at an event: "certainly valid" with plain dict and type checks, or "ask
:func:`~talktime.ingest.events.validate_event`".

Ingest only needs to know *whether* an event is valid and its envelope; the typed payload (``UsageRecord``,
Decimal seconds) is built again when usage is read. :func:`quick_check` answers an :class:`Envelope` only
for events in the plain, common shapes (strings where text is expected, JSON integers and finite floats
for numbers, ISO 8601 times with an offset) after checking every rule the full path checks for them;
anything else, every invalid event included, answers None and goes through the full path, which gives the
field and reason. So ingest accepts and rejects exactly what the full path does, with the same issues; the
differential test (``tests/ingest/test_fastpath.py``) holds this fast path to never accepting what the full
path rejects and to deciding the common shapes itself.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any, Final, NamedTuple

from talktime.core.records import ATTR_PREFIX, COUNT_FIELDS, COUNT_PARTS, KINDS, RECORD_FIELDS, STATUSES
from talktime.ingest.events import (
    AUDIO_SENT,
    CHANNELS,
    CHARACTER_FIELDS,
    CHARACTERS,
    CLOSED,
    JOINED,
    LEFT,
    LIFECYCLE_TYPES,
    MAX_COUNT,
    PROVIDER_REPORTED,
    RECORD,
    SPEECH_ENDED,
    SPEECH_STARTED,
    TOKEN_FIELDS,
    TOKENS,
)


class Envelope(NamedTuple):
    """What the store keeps of a valid event besides its ``data``."""

    source: str
    id: str
    type: str
    subject: str | None
    time: datetime | None


_RECORD_KEYS: Final = frozenset({*RECORD_FIELDS, "attrs"})
_RECORD_TIMES: Final = ("ended_at", "answered_at", "first_audio_at", "last_audio_at")
_RECORD_SECONDS: Final = ("audio_seconds", "speech_seconds", "provider_reported_seconds")
_RECORD_COUNTS: Final = COUNT_FIELDS
_CLOSED_STATUSES: Final = frozenset({"completed", "failed", "unanswered", "busy", "canceled"})
_COMMON: Final = frozenset({"leg", "customer", "provider", "product", "kind", "attrs"})
_BIG: Final = 2**63  # pydantic takes bigger integers too; the fast path leaves them to it

#: Per lifecycle type: its extra data fields and what each must be ("text", "seconds", "count", "channels",
#: "status"), and which of them are required.
_LIFECYCLE: Final[dict[str, tuple[dict[str, str], frozenset[str]]]] = {
    name: ({}, frozenset()) for name in LIFECYCLE_TYPES
}
_LIFECYCLE[CLOSED] = ({"status": "status"}, frozenset())
_LIFECYCLE[JOINED] = _LIFECYCLE[LEFT] = ({"participant": "text"}, frozenset({"participant"}))
_LIFECYCLE[SPEECH_STARTED] = _LIFECYCLE[SPEECH_ENDED] = ({"segment": "text"}, frozenset({"segment"}))
_LIFECYCLE[AUDIO_SENT] = _LIFECYCLE[PROVIDER_REPORTED] = ({"seconds": "seconds"}, frozenset({"seconds"}))
_LIFECYCLE[CHANNELS] = ({"channels": "channels"}, frozenset({"channels"}))
_LIFECYCLE[TOKENS] = (dict.fromkeys(TOKEN_FIELDS, "count"), frozenset())
_LIFECYCLE[CHARACTERS] = (dict.fromkeys(CHARACTER_FIELDS, "count"), frozenset({"characters"}))
#: fromisoformat gives a fixed-offset ``timezone`` or no tzinfo at all, so "has a tzinfo" is "has a UTC
#: offset", and checking it costs a tenth of calling ``utcoffset()``.
_fromisoformat = datetime.fromisoformat


def _seconds_ok(value: object) -> bool:
    kind = type(value)
    if kind is int:
        return 0 <= value < _BIG  # type: ignore[operator]
    if kind is float:
        return math.isfinite(value) and value >= 0  # type: ignore[arg-type,operator]
    return False


def _count_ok(value: object, least: int) -> bool:
    return type(value) is int and least <= value <= MAX_COUNT  # larger: the full path decides


#: How the fast path reads each record field: "time", "seconds", "count", "channels", "kind", "status";
#: text fields (and ``attrs``, and ``attr.*``) are never refused by parse_record.
_RECORD_RULES: Final = {
    **dict.fromkeys(("started_at", *_RECORD_TIMES), "time"),
    **dict.fromkeys(_RECORD_SECONDS, "seconds"),
    **dict.fromkeys(_RECORD_COUNTS, "count"),
    "channels": "channels",
    "kind": "kind",
    "status": "status",
}


def _record_ok(data: dict[str, Any], event_id: str) -> bool:
    """True when parse_record certainly accepts this ``data`` (with the event's id and subject filled in)."""
    times: dict[str, datetime] = {}
    status = "completed"
    counts = False  # a count given: its parts are checked against their totals at the end
    for key, value in data.items():
        rule = _RECORD_RULES.get(key)
        if rule is None:
            if key not in _RECORD_KEYS and (type(key) is not str or not key.startswith(ATTR_PREFIX)):
                return False
        elif value is None:
            continue
        elif rule == "time":  # as parse_record reads it: blank is absent; an offset is required
            if type(value) is not str:
                return False
            text = value.strip()
            if text:
                try:
                    moment = _fromisoformat(text)
                except ValueError:
                    return False
                if moment.tzinfo is None:
                    return False
                times[key] = moment
        elif rule == "seconds":
            if not _seconds_ok(value):
                return False
        elif rule == "count":
            if not _count_ok(value, 0):
                return False
            counts = True
        elif rule == "channels":
            if not _count_ok(value, 1):
                return False
        else:  # kind or status: parse_record strips and lower-cases; blank counts as absent
            if type(value) is not str:
                return False
            text = value.strip().lower()
            if rule == "kind":
                if text and text not in KINDS:
                    return False
            elif text:
                if text not in STATUSES:
                    return False
                status = text
    record_id = data.get("id", event_id)  # setdefault: an explicit null stays null
    if type(record_id) is not str or not record_id.strip():
        return False
    started = times.get("started_at")
    if started is None:
        return False
    ended = times.get("ended_at")
    if ended is None:
        if status == "completed":
            return False
    elif ended < started:
        return False
    for name in ("answered_at", "first_audio_at", "last_audio_at"):
        inside = times.get(name)
        if inside is not None and (inside < started or (ended is not None and inside > ended)):
            return False
    first, last = times.get("first_audio_at"), times.get("last_audio_at")
    return (first is None or last is None or last >= first) and (not counts or _parts_fit(data))


def _parts_fit(data: dict[str, Any]) -> bool:
    """Every count part (cached tokens, SSML characters, ...) given with its total is no larger than it."""
    for part, whole in COUNT_PARTS.items():
        value, total = data.get(part), data.get(whole)
        if value is not None and total is not None and value > total:
            return False
    return True


def _lifecycle_ok(event_type: str, data: dict[str, Any]) -> bool:
    """True when the type's pydantic model certainly accepts ``data``."""
    extra, required = _LIFECYCLE[event_type]
    counts = False  # as in _record_ok
    for key, value in data.items():
        if key in _COMMON:
            if key == "attrs":
                if type(value) is not dict or not all(
                    type(k) is str and type(v) is str for k, v in value.items()
                ):
                    return False
            elif key == "kind":
                if value is not None and (type(value) is not str or value not in KINDS):
                    return False
            elif value is not None and type(value) is not str:
                return False
            continue
        rule = extra.get(key)
        if rule is None:
            return False
        if rule == "text":
            if type(value) is not str or not value:
                return False
        elif rule == "seconds":
            if not _seconds_ok(value):
                return False
        elif rule == "count":
            if not _count_ok(value, 0):
                return False
            counts = True
        elif rule == "channels":
            if not _count_ok(value, 1):
                return False
        elif type(value) is not str or value not in _CLOSED_STATUSES:  # status
            return False
    return all(name in data for name in required) and (not counts or _parts_fit(data))


def quick_check(raw: object) -> Envelope | None:
    """The envelope of an event that is certainly valid, or None: then ask the full path."""
    if type(raw) is not dict or raw.get("specversion") != "1.0":
        return None
    event_id = raw.get("id")
    source = raw.get("source")
    event_type = raw.get("type")
    subject = raw.get("subject")
    if (
        type(event_id) is not str
        or not event_id
        or type(source) is not str
        or not source
        or type(event_type) is not str
        or (subject is not None and (type(subject) is not str or not subject))
    ):
        return None
    content_type = raw.get("datacontenttype")
    if content_type is not None and content_type != "application/json":
        return None
    time = raw.get("time")
    moment: datetime | None = None
    if time is not None:
        if type(time) is not str:
            return None
        try:
            moment = _fromisoformat(time)
        except ValueError:
            return None
        if moment.tzinfo is None:
            return None
    data = raw.get("data")
    if event_type == RECORD:
        if type(data) is not dict:
            return None
        ok = _record_ok(data, event_id)  # session defaults to the subject: text, never refused
    elif event_type in _LIFECYCLE:
        if moment is None or subject is None:
            return None
        if data is None:
            data = {}
        elif type(data) is not dict:
            return None
        ok = _lifecycle_ok(event_type, data)
    else:
        return None
    return Envelope(source, event_id, event_type, subject, moment) if ok else None
