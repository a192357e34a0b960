"""The lifecycle events of one call, built the same way by every capture: pure, no IO, no clock.

Owns: what a framework's usage becomes in talktime's event vocabulary (``docs/ingest.md``): one record per
leg (``subject/leg``: the call's LLM, TTS and STT services, its participants), token and character counts as
totals with their parts (``docs/records.md``), the provider and product names the built-in profiles and cost
cards use, and **deterministic event ids**, so an event sent twice (a retry, a resend from the outbox) is
counted once by the server. Does not own: delivering events (``talktime.capture.sink``) or reading a
framework (``talktime.capture.pipecat``, ``talktime.capture.livekit``).

>>> call = CallEvents("call-1", source="/example", customer="acme")
>>> llm = Leg("llm/gpt-4o", kind="llm", provider="openai", product="chat", attrs={"model": "gpt-4o"})
>>> at = datetime(2025, 3, 1, 10, tzinfo=UTC)
>>> event = call.tokens(llm, at, Tokens(9840, 412, cached_input_tokens=8192), key="frame-7")
>>> data = event["data"]
>>> event["subject"], data["leg"], data["input_tokens"], data["cached_input_tokens"]
('call-1', 'llm/gpt-4o', 9840, 8192)
>>> event["id"] == call.tokens(llm, at, Tokens(9840, 412, cached_input_tokens=8192), key="frame-7")["id"]
True
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

OPENED: Final = "talktime.connection.opened"
CLOSED: Final = "talktime.connection.closed"
JOINED: Final = "talktime.participant.joined"
LEFT: Final = "talktime.participant.left"
AUDIO_SENT: Final = "talktime.audio.sent"
TOKENS: Final = "talktime.tokens"
CHARACTERS: Final = "talktime.characters"

#: Seconds are kept to the microsecond, like every duration in a record.
MICROSECOND: Final = Decimal("0.000001")

#: The product each provider's service is metered as, named as talktime's built-in profiles name it (cost
#: cards match a record on the profile's provider and product). The role is what the service does: ``llm``,
#: ``realtime`` (a speech-to-speech model), ``tts`` or ``stt``. A pair not listed gets no product.
PRODUCTS: Final[Mapping[tuple[str, str], str]] = {
    ("openai", "llm"): "chat",
    ("openai", "realtime"): "realtime",
    ("anthropic", "llm"): "messages",
    ("google", "llm"): "gemini",
    ("google", "realtime"): "gemini",
    ("deepgram", "stt"): "stt-streaming",
    ("deepgram", "tts"): "tts",
    ("assemblyai", "stt"): "stt-streaming",
    ("rev", "stt"): "stt-streaming",
    ("cartesia", "stt"): "stt",
    ("cartesia", "tts"): "tts",
    ("elevenlabs", "tts"): "tts",
    ("azure", "tts"): "tts",
    ("livekit", "llm"): "inference-llm",
    ("livekit", "stt"): "inference-stt",
    ("livekit", "tts"): "inference-tts",
}

#: Provider names as frameworks report them (a plugin's display name, an API host's domain) -> talktime's.
PROVIDER_ALIASES: Final[Mapping[str, str]] = {
    "googleapis": "google",
    "gemini": "google",
    "vertex-ai": "google",
    "vertex-ai-model-garden": "google",
    "google-cloud-platform": "google",
    "aws": "aws",
    "amazon": "aws",
    "amazonaws": "aws",
    "microsoft": "azure",
}

_HOST: Final = re.compile(r"^[a-z0-9-]+(\.[a-z0-9-]+)+(:\d+)?$")


def provider_name(reported: str | None) -> str | None:
    """Talktime's name for a provider as a framework reports it: ``api.openai.com`` -> ``openai``,
    ``Deepgram`` -> ``deepgram``, ``Vertex AI`` -> ``google``; None or ``unknown`` -> None.

    >>> reported = ("api.openai.com", "Deepgram", "Vertex AI", "unknown", "x.openai.azure.com")
    >>> [provider_name(name) for name in reported]
    ['openai', 'deepgram', 'google', None, 'azure']
    """
    if not reported or not reported.strip() or reported.strip().lower() == "unknown":
        return None
    name = reported.strip().lower()
    if _HOST.match(name):
        labels = name.split(":")[0].split(".")
        name = labels[-2]
    name = re.sub(r"[^a-z0-9]+", "-", name).strip("-")
    return PROVIDER_ALIASES.get(name, name) or None


def product_name(provider: str | None, role: str) -> str | None:
    """The product a provider's service of this role is metered as (:data:`PRODUCTS`), or None."""
    return None if provider is None else PRODUCTS.get((provider, role))


def seconds(value: float | Decimal) -> Decimal:
    """Seconds measured as a float, as an exact decimal to the microsecond (through the float's shortest
    text, so 0.1 is 0.1).

    >>> seconds(0.1), seconds(2.0000004), seconds(1 / 3)
    (Decimal('0.100000'), Decimal('2.000000'), Decimal('0.333333'))
    """
    return Decimal(repr(value) if isinstance(value, float) else value).quantize(MICROSECOND)


def event_id(*parts: str) -> str:
    """A deterministic event id: the same parts always give the same id (128 bits of SHA-256).

    >>> event_id("call-1", "talktime.tokens", "llm", "7")
    'a93b6f344efdabfe23db95361fdf008a'
    """
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Leg:
    """A record inside the call: ``name`` is its leg (``None``: the call itself), with what it is.

    A participant's ``name`` is its identity; its record id is ``call/identity`` like any leg's."""

    name: str | None
    kind: str
    provider: str | None = None
    product: str | None = None
    attrs: Mapping[str, str] = field(default_factory=dict)
    #: A room participant: opened by ``participant.joined`` and closed by ``participant.left``.
    participant: bool = False


@dataclass(frozen=True, slots=True)
class Tokens:
    """Tokens of one or more LLM requests in the record convention: totals with their parts inside.

    ``input_tokens`` counts every input token (cached, cache-write and audio included); the parts do not
    overlap (``audio_input_tokens`` is the audio *not* read from the cache); ``output_tokens`` counts every
    output token, ``audio_output_tokens`` among them.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    audio_input_tokens: int = 0
    audio_output_tokens: int = 0

    def __bool__(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self))

    def fitted(self) -> tuple[Tokens, list[str]]:
        """These counts with no part above its total and nothing negative (a provider's rounding or a
        framework's bug must not get the whole event refused), and a note for each change made.

        >>> fitted, notes = Tokens(10, 5, cached_input_tokens=12).fitted()
        >>> fitted.cached_input_tokens, notes
        (10, ['cached_input_tokens 12 is above input_tokens 10: sent as 10'])
        """
        notes: list[str] = []
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        for name, value in values.items():
            if value < 0:
                notes.append(f"{name} {value} is negative: sent as 0")
                values[name] = 0
        for part in ("cached_input_tokens", "cache_write_tokens", "audio_input_tokens"):
            if values[part] > values["input_tokens"]:
                notes.append(
                    f"{part} {values[part]} is above input_tokens {values['input_tokens']}: sent as "
                    f"{values['input_tokens']}"
                )
                values[part] = values["input_tokens"]
        if values["audio_output_tokens"] > values["output_tokens"]:
            notes.append(
                f"audio_output_tokens {values['audio_output_tokens']} is above output_tokens "
                f"{values['output_tokens']}: sent as {values['output_tokens']}"
            )
            values["audio_output_tokens"] = values["output_tokens"]
        return replace(self, **values), notes

    def as_data(self) -> dict[str, int]:
        """The ``data`` fields of a ``talktime.tokens`` event (zero parts left out: a missing part is 0)."""
        data = {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens}
        for name in _PARTS:
            if getattr(self, name):
                data[name] = getattr(self, name)
        return data


_PARTS: Final = ("cached_input_tokens", "cache_write_tokens", "audio_input_tokens", "audio_output_tokens")


def iso(moment: datetime) -> str:
    """An ISO 8601 time with its offset, in UTC (``2025-03-01T10:00:00.250000+00:00``)."""
    if moment.utcoffset() is None:
        raise ValueError(f"{moment!r} has no UTC offset")
    return moment.astimezone(UTC).isoformat()


class CallEvents:
    """Builds the CloudEvents of one call (``subject`` = ``call_id``), each with a deterministic id made of
    the source, the call, the event type, the leg and a ``key`` the caller picks to tell two reports apart
    (a frame id, a running total): the same report always gets the same id, so resends count once."""

    def __init__(self, call_id: str, *, source: str, customer: str | None = None) -> None:
        if not call_id:
            raise ValueError("call_id must be a non-empty string: the id of the call (the session)")
        self.call_id = call_id
        self.source = source
        self.customer = customer

    def event(self, type_: str, leg: Leg, at: datetime, key: str, **values: Any) -> dict[str, Any]:
        """One event of ``type_`` about ``leg`` at ``at``, with the leg's common fields and ``values``."""
        data: dict[str, Any] = {}
        if leg.name is not None:
            data["participant" if leg.participant else "leg"] = leg.name
        common = {"customer": self.customer, "provider": leg.provider, "product": leg.product}
        data.update({name: value for name, value in common.items() if value is not None})
        data["kind"] = leg.kind
        if leg.attrs:
            data["attrs"] = dict(leg.attrs)
        data.update(values)
        return {
            "specversion": "1.0",
            "id": event_id(self.source, self.call_id, type_, leg.name or "", key),
            "source": self.source,
            "type": type_,
            "subject": self.call_id,
            "time": iso(at),
            "data": data,
        }

    def opened(self, leg: Leg, at: datetime) -> dict[str, Any]:
        return self.event(JOINED if leg.participant else OPENED, leg, at, "start")

    def closed(self, leg: Leg, at: datetime, status: str = "completed") -> dict[str, Any]:
        if leg.participant:
            return self.event(LEFT, leg, at, "end")
        extra = {} if status == "completed" else {"status": status}
        return self.event(CLOSED, leg, at, "end", **extra)

    def tokens(self, leg: Leg, at: datetime, tokens: Tokens, key: str) -> dict[str, Any]:
        return self.event(TOKENS, leg, at, key, **tokens.as_data())

    def characters(self, leg: Leg, at: datetime, characters: int, key: str, **parts: int) -> dict[str, Any]:
        return self.event(CHARACTERS, leg, at, key, characters=characters, **parts)

    def audio_sent(self, leg: Leg, at: datetime, audio_seconds: Decimal, key: str) -> dict[str, Any]:
        return self.event(AUDIO_SENT, leg, at, key, seconds=audio_seconds)


def participant_leg(identity: str, kind: str, attrs: Mapping[str, str] | None = None) -> Leg:
    """A room participant's record (a person, a SIP caller, an agent), keyed by its identity."""
    return Leg(identity, kind=kind, attrs=dict(attrs or {}), participant=True)
