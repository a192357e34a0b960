"""CloudEvents 1.0 (structured JSON) that talktime accepts, validated into typed :class:`Event` values.

Every event names its session in ``subject`` and carries its payload in ``data``. Lifecycle events (all types
but ``talktime.record``) need ``time`` (ISO 8601 with an offset) and ``subject``. ``talktime.record`` carries
one finished usage record in the record format's field names (``docs/records.md``); the record's id is the
event's id unless ``data.id`` is given. ``docs/ingest.md`` lists the types with examples.

:func:`validate_event` reports every problem of an event at once, each as an :class:`Issue` with a field
path (``data.channels``) and a reason, and never raises for bad input.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Final, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from talktime.core.records import COUNT_FIELDS, COUNT_PARTS, KINDS, UsageRecord, parse_record
from talktime.errors import RecordError

RECORD: Final = "talktime.record"
OPENED: Final = "talktime.connection.opened"
CLOSED: Final = "talktime.connection.closed"
ANSWERED: Final = "talktime.call.answered"
AUDIO_FIRST: Final = "talktime.audio.first"
AUDIO_LAST: Final = "talktime.audio.last"
AUDIO_SENT: Final = "talktime.audio.sent"
SPEECH_STARTED: Final = "talktime.speech.started"
SPEECH_ENDED: Final = "talktime.speech.ended"
JOINED: Final = "talktime.participant.joined"
LEFT: Final = "talktime.participant.left"
CHANNELS: Final = "talktime.channels"
TOKENS: Final = "talktime.tokens"
CHARACTERS: Final = "talktime.characters"
PROVIDER_REPORTED: Final = "talktime.provider.reported"

Kind = Literal["leg", "participant", "sip", "agent", "stream", "batch", "tts", "llm"]
assert set(Kind.__args__) == KINDS  # type: ignore[attr-defined]
Seconds = Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]


def _not_a_bool(value: object) -> object:
    """A count is a number: pydantic's lax mode would read true as 1 (the record path refuses it too)."""
    if isinstance(value, bool):
        raise ValueError(f"must be a whole number, not {str(value).lower()}")
    return value


#: The largest count or channel number a lifecycle event may carry: the largest integer every JSON parser
#: reads exactly (an IEEE double's 2**53 - 1, JavaScript's Number.MAX_SAFE_INTEGER).
MAX_COUNT: Final = 2**53 - 1
Count = Annotated[int, BeforeValidator(_not_a_bool), Field(ge=0, le=MAX_COUNT)]


class LifecycleData(BaseModel):
    """Fields any lifecycle event may carry. ``leg`` names the record inside the session (absent: the
    session itself is the record); the first event that says who the customer is, is enough."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)

    leg: StrictStr | None = None
    customer: StrictStr | None = None
    provider: StrictStr | None = None
    product: StrictStr | None = None
    kind: Kind | None = None
    attrs: dict[StrictStr, StrictStr] = Field(default_factory=dict)


class ClosedData(LifecycleData):
    status: Literal["completed", "failed", "unanswered", "busy", "canceled"] = "completed"


class ParticipantData(LifecycleData):
    participant: StrictStr = Field(min_length=1)


class SpeechData(LifecycleData):
    segment: StrictStr = Field(min_length=1)


class SecondsData(LifecycleData):
    seconds: Seconds


class ChannelsData(LifecycleData):
    channels: Annotated[int, BeforeValidator(_not_a_bool), Field(ge=1, le=MAX_COUNT)]


def _within_total(value: int, info: ValidationInfo) -> int:
    """A part (cached tokens, SSML characters) may not exceed its total in one event (declared before it)."""
    whole = COUNT_PARTS[str(info.field_name)]
    total = info.data.get(whole)
    if total is not None and value > total:
        raise ValueError(f"{value} is more than {whole} {total}, which it is part of")
    return value


class TokensData(LifecycleData):
    """Tokens of one or more LLM requests: totals as the provider reports them, with their parts."""

    input_tokens: Count = 0
    output_tokens: Count = 0
    cached_input_tokens: Count = 0
    cache_write_tokens: Count = 0
    audio_input_tokens: Count = 0
    audio_output_tokens: Count = 0

    _parts = field_validator(
        "cached_input_tokens", "cache_write_tokens", "audio_input_tokens", "audio_output_tokens"
    )(_within_total)


class CharactersData(LifecycleData):
    """Characters of one or more TTS requests, with the SSML and CJK characters among them."""

    characters: Count
    ssml_characters: Count = 0
    cjk_characters: Count = 0

    _parts = field_validator("ssml_characters", "cjk_characters")(_within_total)


#: The data fields of ``talktime.tokens`` and ``talktime.characters``, each summed into the record field
#: of the same name.
TOKEN_FIELDS: Final = tuple(name for name in COUNT_FIELDS if name.endswith("_tokens"))
CHARACTER_FIELDS: Final = tuple(name for name in COUNT_FIELDS if name.endswith("characters"))


#: Every lifecycle type and the shape of its ``data``.
LIFECYCLE_TYPES: Final[Mapping[str, type[LifecycleData]]] = {
    OPENED: LifecycleData,
    CLOSED: ClosedData,
    ANSWERED: LifecycleData,
    AUDIO_FIRST: LifecycleData,
    AUDIO_LAST: LifecycleData,
    AUDIO_SENT: SecondsData,
    SPEECH_STARTED: SpeechData,
    SPEECH_ENDED: SpeechData,
    JOINED: ParticipantData,
    LEFT: ParticipantData,
    CHANNELS: ChannelsData,
    TOKENS: TokensData,
    CHARACTERS: CharactersData,
    PROVIDER_REPORTED: SecondsData,
}
EVENT_TYPES: Final = frozenset({RECORD, *LIFECYCLE_TYPES})


@dataclass(frozen=True, slots=True)
class Issue:
    """One reason an event is refused: where (a field path) and why."""

    field: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class Event:
    """A valid event. ``payload`` is a :class:`UsageRecord` for ``talktime.record``, else the typed data."""

    source: str
    id: str
    type: str
    time: datetime | None
    subject: str | None
    payload: UsageRecord | LifecycleData

    @property
    def leg(self) -> str | None:
        """The participant or leg this lifecycle event is about (None: the session itself)."""
        payload = self.payload
        if isinstance(payload, ParticipantData):
            return payload.participant
        return payload.leg if isinstance(payload, LifecycleData) else None


@dataclass(frozen=True, slots=True)
class Checked:
    """What validation made of one raw event: the event, or every issue found."""

    event: Event | None
    issues: tuple[Issue, ...] = ()


def _text(raw: Mapping[str, Any], name: str, issues: list[Issue], *, required: bool) -> str | None:
    value = raw.get(name)
    if value is None:
        if required:
            issues.append(Issue(name, "is required"))
        return None
    if not isinstance(value, str) or not value:
        issues.append(Issue(name, f"must be a non-empty string, got {value!r}"))
        return None
    return value


def parse_time(value: object) -> datetime:
    """An RFC 3339 / ISO 8601 timestamp with a UTC offset, or ValueError saying what is wrong."""
    if not isinstance(value, str):
        raise ValueError(f"must be an ISO 8601 timestamp string with an offset, got {value!r}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO 8601 timestamp") from None
    if parsed.utcoffset() is None:
        raise ValueError(f"{value!r} has no UTC offset; write e.g. 2025-01-01T10:00:00Z or +02:00")
    return parsed


def _pydantic_issues(error: ValidationError, prefix: str) -> list[Issue]:
    issues = []
    for item in error.errors(include_url=False):
        path = ".".join(str(part) for part in (prefix, *item["loc"]))
        kind = item["type"]
        reason = item["msg"].removeprefix("Value error, ")  # our own validators' words, without pydantic's
        if kind == "extra_forbidden":
            reason = "is not a field of this event type; put free attributes in data.attrs"
        elif kind == "literal_error":
            reason = f"{item['input']!r} is not allowed: {item['msg']}"
        elif kind == "missing":
            reason = "is required"
        elif kind != "value_error" and "input" in item:  # a type or range problem: say what came
            reason = f"{reason}, got {item['input']!r}"
        issues.append(Issue(path, reason))
    return issues


def _record_payload(raw: Mapping[str, Any], event_id: str | None, subject: str | None) -> UsageRecord:
    data = raw.get("data")
    if not isinstance(data, Mapping):
        raise RecordError("data", "must be an object holding one usage record")
    values = dict(data)
    values.setdefault("id", event_id)
    if subject is not None:
        values.setdefault("session", subject)
    return parse_record(values)


def validate_event(raw: object) -> Checked:
    """Check one raw event (a decoded JSON value) and type it, collecting every issue."""
    if not isinstance(raw, Mapping):
        return Checked(None, (Issue("", f"an event must be a JSON object, got {type(raw).__name__}"),))
    issues: list[Issue] = []
    if "specversion" not in raw:
        issues.append(Issue("specversion", "is required: '1.0' (CloudEvents 1.0)"))
    elif raw["specversion"] != "1.0":
        issues.append(Issue("specversion", f"must be '1.0' (CloudEvents 1.0), got {raw['specversion']!r}"))
    event_id = _text(raw, "id", issues, required=True)
    source = _text(raw, "source", issues, required=True)
    event_type = _text(raw, "type", issues, required=True)
    subject = _text(raw, "subject", issues, required=False)
    content_type = raw.get("datacontenttype")
    if content_type is not None and content_type != "application/json":
        issues.append(
            Issue("datacontenttype", f"only application/json data is accepted, got {content_type!r}")
        )
    time: datetime | None = None
    if raw.get("time") is not None:
        try:
            time = parse_time(raw["time"])
        except ValueError as error:
            issues.append(Issue("time", str(error)))
    payload: UsageRecord | LifecycleData | None = None
    if event_type is not None and event_type not in EVENT_TYPES:
        known = ", ".join(sorted(EVENT_TYPES))
        issues.append(Issue("type", f"{event_type!r} is not a known event type; known: {known}"))
    elif event_type == RECORD:
        try:
            payload = _record_payload(raw, event_id, subject)
        except RecordError as error:
            issues.append(Issue(f"data.{error.field}" if error.field != "data" else "data", error.why))
    elif event_type is not None:
        if raw.get("time") is None:  # absent or null
            issues.append(Issue("time", "is required for lifecycle events"))
        if raw.get("subject") is None:  # absent or null (a wrong type is reported above)
            issues.append(Issue("subject", "is required for lifecycle events: it names the session"))
        data = {} if raw.get("data") is None else raw["data"]
        if not isinstance(data, Mapping):
            issues.append(Issue("data", f"must be a JSON object, got {type(data).__name__}"))
        else:
            try:
                payload = LIFECYCLE_TYPES[event_type].model_validate(data)
            except ValidationError as error:
                issues.extend(_pydantic_issues(error, "data"))
    if issues or payload is None or event_id is None or source is None or event_type is None:
        return Checked(None, tuple(issues) or (Issue("", "invalid event"),))
    return Checked(Event(source, event_id, event_type, time, subject, payload))
