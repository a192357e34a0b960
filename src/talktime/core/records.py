"""Usage records: one metered thing (a call leg, a participant's connection, a streaming session, a batch job,
a TTS request), validated at construction.

Owns: the record's fields and their meaning, and turning loosely typed values (strings from CSV, numbers from
JSON, Arrow scalars) into a valid record. Does not own: reading files (``talktime.io``) or deciding what is
billable (``talktime.core.metering``).

A record keeps three durations apart: the *actual* one we measured (timestamps, audio and speech
seconds), the *provider-reported* one (``provider_reported_seconds``), and the *billable* one, which only
a policy makes.
Durations are exact ``Decimal`` seconds; timestamps are timezone-aware datetimes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from talktime.core.decimals import plain
from talktime.errors import RecordError

#: Whole-number quantities beyond time. Totals as providers report them (``input_tokens`` includes cached and
#: audio input tokens, ``characters`` every character sent, SSML markup included), each part no larger than
#: its total: a policy subtracts or weights the parts (see ``COUNT_PARTS``).
COUNT_FIELDS: Final = (
    "characters",
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "audio_input_tokens",
    "audio_output_tokens",
    "ssml_characters",
    "cjk_characters",
)
#: Field names, exactly as they appear in CSV headers, JSON keys and Parquet columns.
RECORD_FIELDS: Final = (
    "id",
    "customer",
    "provider",
    "product",
    "session",
    "kind",
    "status",
    "started_at",
    "ended_at",
    "answered_at",
    "first_audio_at",
    "last_audio_at",
    "audio_seconds",
    "speech_seconds",
    "channels",
    "provider_reported_seconds",
    *COUNT_FIELDS,
)
ATTR_PREFIX: Final = "attr."

#: What one record can be. A policy may count only some kinds, or meter them apart (SIP on its own meter).
KINDS: Final = frozenset({"leg", "participant", "sip", "agent", "stream", "batch", "tts", "llm"})
#: Lifecycle outcomes. ``open`` is a session never closed (billed up to a policy's cap, if it has one).
STATUSES: Final = frozenset({"completed", "failed", "unanswered", "busy", "canceled", "open"})

_TIME_FIELDS: Final = ("started_at", "ended_at", "answered_at", "first_audio_at", "last_audio_at")
_SECONDS_FIELDS: Final = ("audio_seconds", "speech_seconds", "provider_reported_seconds")
#: Each part and the total it is part of: a record whose part exceeds its total is refused.
COUNT_PARTS: Final = {
    "cached_input_tokens": "input_tokens",
    "cache_write_tokens": "input_tokens",
    "audio_input_tokens": "input_tokens",
    "audio_output_tokens": "output_tokens",
    "ssml_characters": "characters",
    "cjk_characters": "characters",
}
_COUNT_FIELDS: Final = COUNT_FIELDS
_TEXT_FIELDS: Final = ("customer", "provider", "product", "session")
_MICROSECOND: Final = timedelta(microseconds=1)


def seconds_between(start: datetime, end: datetime) -> Decimal:
    """Exact seconds from ``start`` to ``end`` (microsecond resolution, never float)."""
    return plain(Decimal((end - start) // _MICROSECOND).scaleb(-6))


@dataclass(frozen=True, slots=True)
class UsageRecord:
    """One metered thing. Build it with :func:`parse_record` unless the values are already typed."""

    id: str
    started_at: datetime
    ended_at: datetime | None
    customer: str | None = None
    provider: str | None = None
    product: str | None = None
    session: str | None = None
    kind: str | None = None
    status: str = "completed"
    answered_at: datetime | None = None
    first_audio_at: datetime | None = None
    last_audio_at: datetime | None = None
    audio_seconds: Decimal | None = None
    speech_seconds: Decimal | None = None
    channels: int = 1
    provider_reported_seconds: Decimal | None = None
    characters: int | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_input_tokens: int | None = None
    cache_write_tokens: int | None = None
    audio_input_tokens: int | None = None
    audio_output_tokens: int | None = None
    ssml_characters: int | None = None
    cjk_characters: int | None = None
    attrs: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_record(self)

    @property
    def session_key(self) -> str:
        """The session this record belongs to; a record without one is its own session."""
        return self.session if self.session is not None else f"record:{self.id}"

    def value_of(self, name: str) -> object:
        """A field's value by its file name, ``attr.<name>`` included (None when absent)."""
        if name.startswith(ATTR_PREFIX):
            return self.attrs.get(name[len(ATTR_PREFIX) :])
        if name not in RECORD_FIELDS:
            raise KeyError(name)
        return getattr(self, name)


def _fail(record: UsageRecord, field_name: str, why: str) -> RecordError:
    return RecordError(field_name, why, record_id=record.id)


def _check_record(r: UsageRecord) -> None:
    if not r.id:
        raise RecordError("id", "is required and may not be empty")
    for name in _TIME_FIELDS:
        value = getattr(r, name)
        if value is not None and value.utcoffset() is None:
            raise _fail(r, name, f"{value.isoformat()} has no UTC offset; write e.g. +00:00 or Z")
    if r.status not in STATUSES:
        raise _fail(r, "status", f"{r.status!r} is not one of {sorted(STATUSES)}")
    if r.kind is not None and r.kind not in KINDS:
        raise _fail(r, "kind", f"{r.kind!r} is not one of {sorted(KINDS)}")
    if r.ended_at is None and r.status == "completed":
        raise _fail(r, "ended_at", "a completed record needs an end time")
    if r.ended_at is not None and r.ended_at < r.started_at:
        raise _fail(
            r, "ended_at", f"{r.ended_at.isoformat()} is before started_at {r.started_at.isoformat()}"
        )
    for name in ("answered_at", "first_audio_at", "last_audio_at"):
        value = getattr(r, name)
        if value is None:
            continue
        if value < r.started_at:
            raise _fail(r, name, f"{value.isoformat()} is before started_at {r.started_at.isoformat()}")
        if r.ended_at is not None and value > r.ended_at:
            raise _fail(r, name, f"{value.isoformat()} is after ended_at {r.ended_at.isoformat()}")
    if r.first_audio_at is not None and r.last_audio_at is not None and r.last_audio_at < r.first_audio_at:
        raise _fail(r, "last_audio_at", "is before first_audio_at")
    for name in _SECONDS_FIELDS:
        value = getattr(r, name)
        if value is not None and (not value.is_finite() or value < 0):
            raise _fail(r, name, f"{value} is not a finite, non-negative number of seconds")
    for name in _COUNT_FIELDS:
        value = getattr(r, name)
        if value is not None and value < 0:
            raise _fail(r, name, f"{value} is negative")
    for part, whole in COUNT_PARTS.items():
        value, total = getattr(r, part), getattr(r, whole)
        if value is not None and total is not None and value > total:
            raise _fail(r, part, f"{value} is more than {whole} {total}, which it is part of")
    if r.channels < 1:
        raise _fail(r, "channels", f"{r.channels} is not a positive whole number (a mono call has 1)")


# --- turning loosely typed values into a record -------------------------------------------------------------


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


def _parse_time(name: str, value: object, record_id: str | None) -> datetime | None:
    if _blank(value):
        return None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            raise RecordError(name, f"{value!r} is not an ISO 8601 timestamp", record_id=record_id) from None
    else:
        raise RecordError(name, f"{value!r} is not an ISO 8601 timestamp", record_id=record_id)
    if parsed.utcoffset() is None:
        raise RecordError(name, f"{value!s} has no UTC offset; write e.g. +00:00 or Z", record_id=record_id)
    return parsed


def _parse_decimal(name: str, value: object, record_id: str | None) -> Decimal | None:
    if _blank(value):
        return None
    if isinstance(value, bool):
        raise RecordError(name, f"{value!r} is not a number of seconds", record_id=record_id)
    if isinstance(value, float):
        # Floats only reach us from Parquet double columns: their shortest repr is what the writer meant.
        value = repr(value)
    try:
        parsed = Decimal(value if isinstance(value, int | Decimal) else str(value).strip())
    except (InvalidOperation, ValueError):
        raise RecordError(name, f"{value!r} is not a decimal number", record_id=record_id) from None
    if not parsed.is_finite():
        raise RecordError(name, f"{value!r} is not a finite number", record_id=record_id)
    return parsed


#: A JSON number read as a float (the HTTP API's decoder reads a whole number past 64 bits as one) is exact as
#: a whole number only below 2**53: a count beyond it would have lost digits, which a count must not.
_EXACT_FLOAT: Final = float(2**53)


def _parse_int(name: str, value: object, record_id: str | None) -> int | None:
    if isinstance(value, float) and abs(value) >= _EXACT_FLOAT:
        raise RecordError(
            name,
            f"{value!r} is a whole number too large to be read exactly from a JSON number (past 2**53 a "
            'float has lost its last digits); send it as text, e.g. "18446744073709551623"',
            record_id=record_id,
        )
    parsed = _parse_decimal(name, value, record_id)
    if parsed is None:
        return None
    if parsed != parsed.to_integral_value():
        raise RecordError(name, f"{value!r} is not a whole number", record_id=record_id)
    return int(parsed)


def _parse_text(value: object) -> str | None:
    if _blank(value):
        return None
    return str(value).strip()


def parse_record(values: Mapping[str, Any]) -> UsageRecord:
    """A record from a mapping of file field names to loosely typed values.

    Unknown keys are an error (a typo must not silently drop a field); ``attr.<name>`` keys, or an ``attrs``
    mapping, become free attributes. Blank strings count as absent.
    """
    raw_id = values.get("id")
    record_id = _parse_text(raw_id)
    attrs: dict[str, str] = {}
    nested = values.get("attrs")
    if isinstance(nested, Mapping):
        attrs.update({str(k): str(v) for k, v in nested.items() if not _blank(v)})
    for key, value in values.items():
        if key.startswith(ATTR_PREFIX):
            if not _blank(value):
                attrs[key[len(ATTR_PREFIX) :]] = str(value)
        elif key != "attrs" and key not in RECORD_FIELDS:
            raise RecordError(
                key, f"is not a record field; free attributes are written attr.{key}", record_id=record_id
            )
    if record_id is None:
        raise RecordError("id", "is required and may not be empty")
    started_at = _parse_time("started_at", values.get("started_at"), record_id)
    if started_at is None:
        raise RecordError("started_at", "is required", record_id=record_id)
    times = {name: _parse_time(name, values.get(name), record_id) for name in _TIME_FIELDS[1:]}
    channels = _parse_int("channels", values.get("channels"), record_id)
    kind = _parse_text(values.get("kind"))
    status = _parse_text(values.get("status"))
    text = {name: _parse_text(values.get(name)) for name in _TEXT_FIELDS}
    seconds = {name: _parse_decimal(name, values.get(name), record_id) for name in _SECONDS_FIELDS}
    counts = {name: _parse_int(name, values.get(name), record_id) for name in _COUNT_FIELDS}
    return UsageRecord(
        id=record_id,
        started_at=started_at,
        ended_at=times["ended_at"],
        answered_at=times["answered_at"],
        first_audio_at=times["first_audio_at"],
        last_audio_at=times["last_audio_at"],
        kind=kind.lower() if kind else None,
        status=status.lower() if status else "completed",
        channels=1 if channels is None else channels,
        attrs=attrs,
        customer=text["customer"],
        provider=text["provider"],
        product=text["product"],
        session=text["session"],
        audio_seconds=seconds["audio_seconds"],
        speech_seconds=seconds["speech_seconds"],
        provider_reported_seconds=seconds["provider_reported_seconds"],
        **counts,
    )


def record_to_row(record: UsageRecord) -> dict[str, str]:
    """The record as file strings (CSV row), the inverse of :func:`parse_record`."""
    row: dict[str, str] = {}
    for name in RECORD_FIELDS:
        value = getattr(record, name)
        if value is None:
            row[name] = ""
        elif isinstance(value, datetime):
            row[name] = value.isoformat()
        else:
            row[name] = str(value)
    for key, value in record.attrs.items():
        row[ATTR_PREFIX + key] = value
    return row
