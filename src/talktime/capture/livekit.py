"""LiveKit Agents: a hook on ``AgentSession`` that turns its usage and its room into talktime events.

One line of setup (``docs/capture/livekit.md``), before ``session.start``::

    attach(session, sink, call_id=ctx.job.id, customer="acme", room=ctx.room)

What it sends, for the call ``call_id``:

* the room's participants, each connection a record of its own keyed by identity (``call/identity``, then
  ``call/identity/2`` if the same identity connects again), opened by
  ``participant.joined`` (LiveKit's own ``joined_at`` when the room knows it) and closed by
  ``participant.left``: people (kind ``participant``), SIP callers (``sip``), agents (``agent``), this one
  (the room's local participant) included; ingress and egress are left out (:data:`PARTICIPANT_KINDS`).
  Those still in the room when the session closes are closed then: that is as far as the agent saw them;
* ``session_usage_updated``: the session's running totals per provider and model (``AgentSession.usage``),
  turned into what was added since the last update, each on a leg of its own
  (``call/llm/openai/gpt-4o-mini``, ``call/tts/...``, ``call/stt/...``): LLM and realtime tokens ->
  ``talktime.tokens`` (kind ``llm``), TTS characters -> ``talktime.characters`` (kind ``tts``, with the
  tokens of token-billed TTS), STT audio seconds -> ``talktime.audio.sent`` (kind ``stream``, with the tokens
  of token-billed STT). A leg spans the session: opened at its start, closed when it closes (``close``).

LiveKit's usage is gross of the prompt cache (``CompletionUsage.prompt_tokens`` "includes cached tokens"; the
Anthropic plugin adds the cache reads and writes into it), so ``input_tokens`` is LiveKit's input total and
the cache and audio counts are its parts (audio not read from the cache, as the record convention says).

Event ids are made from the call, the leg and the running totals after the update, so the same update sent
twice counts once. The hook never raises into LiveKit: an error is logged and counted (``capture.errors``).

Owns: reading LiveKit Agents. Does not own: the event vocabulary (``talktime.capture.events``) or delivery
(``talktime.capture.sink``).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final, Protocol

from livekit import rtc
from livekit.agents import AgentSession, llm
from livekit.agents.metrics import LLMModelUsage, STTModelUsage, TTSModelUsage
from livekit.agents.voice.events import CloseEvent, SessionUsageUpdatedEvent

from talktime.capture.events import (
    CallEvents,
    Leg,
    Tokens,
    participant_leg,
    product_name,
    provider_name,
    seconds,
)

log = logging.getLogger("talktime.capture.livekit")

SOURCE: Final = "/talktime/capture/livekit"

#: LiveKit's participant kinds -> the record kind (None: not recorded). Ingress and egress are LiveKit
#: services with meters of their own, not participants a room is billed for.
PARTICIPANT_KINDS: Final[Mapping[int, str | None]] = {
    rtc.ParticipantKind.PARTICIPANT_KIND_STANDARD: "participant",
    rtc.ParticipantKind.PARTICIPANT_KIND_SIP: "sip",
    rtc.ParticipantKind.PARTICIPANT_KIND_AGENT: "agent",
    rtc.ParticipantKind.PARTICIPANT_KIND_CONNECTOR: "participant",
    rtc.ParticipantKind.PARTICIPANT_KIND_BRIDGE: "participant",
    rtc.ParticipantKind.PARTICIPANT_KIND_INGRESS: None,
    rtc.ParticipantKind.PARTICIPANT_KIND_EGRESS: None,
}


class Emitter(Protocol):
    """Anything events can be handed to without waiting (:class:`talktime.capture.sink.EventSink`)."""

    def emit(self, event: Mapping[str, Any]) -> None: ...


def _now() -> datetime:
    return datetime.now(UTC)


def _at(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


@dataclass(frozen=True, slots=True)
class _Totals:
    """One model's running totals in the record convention, as of one ``session_usage_updated``."""

    tokens: Tokens
    characters: int = 0
    audio_seconds: Decimal = Decimal(0)

    def minus(self, earlier: _Totals) -> _Totals:
        return _Totals(
            Tokens(
                *(now - then for now, then in zip(_counts(self.tokens), _counts(earlier.tokens), strict=True))
            ),
            self.characters - earlier.characters,
            self.audio_seconds - earlier.audio_seconds,
        )

    def shrank(self, earlier: _Totals) -> bool:
        """True when a total went down: the session's collector started again (a new ``start``)."""
        pairs = zip(
            (*_counts(self.tokens), self.characters),
            (*_counts(earlier.tokens), earlier.characters),
            strict=True,
        )
        return any(now < then for now, then in pairs) or self.audio_seconds < earlier.audio_seconds

    def key(self) -> str:
        return ":".join(map(str, (*_counts(self.tokens), self.characters, self.audio_seconds)))


def _counts(tokens: Tokens) -> tuple[int, ...]:
    return (
        tokens.input_tokens,
        tokens.output_tokens,
        tokens.cached_input_tokens,
        tokens.cache_write_tokens,
        tokens.audio_input_tokens,
        tokens.audio_output_tokens,
    )


def totals_of(usage: LLMModelUsage | TTSModelUsage | STTModelUsage) -> _Totals:
    """A model's ``AgentSession.usage`` entry in the record convention.

    >>> totals_of(LLMModelUsage(provider="api.openai.com", model="gpt-realtime", input_tokens=900,
    ...                         input_cached_tokens=100, input_audio_tokens=600,
    ...                         input_cached_audio_tokens=50, output_tokens=300, output_audio_tokens=250)).tokens
    Tokens(input_tokens=900, output_tokens=300, cached_input_tokens=100, cache_write_tokens=0, audio_input_tokens=550, audio_output_tokens=250)
    """  # noqa: E501
    if isinstance(usage, LLMModelUsage):
        return _Totals(
            Tokens(
                input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens,
                cached_input_tokens=usage.input_cached_tokens,
                cache_write_tokens=usage.input_cache_creation_tokens,
                audio_input_tokens=usage.input_audio_tokens - usage.input_cached_audio_tokens,
                audio_output_tokens=usage.output_audio_tokens,
            )
        )
    if isinstance(usage, TTSModelUsage):
        return _Totals(Tokens(usage.input_tokens, usage.output_tokens), characters=usage.characters_count)
    return _Totals(
        Tokens(usage.input_tokens, usage.output_tokens, audio_input_tokens=usage.input_audio_tokens),
        audio_seconds=seconds(usage.audio_duration),
    )


_ROLES: Final[Mapping[type, tuple[str, str]]] = {
    LLMModelUsage: ("llm", "llm"),
    TTSModelUsage: ("tts", "tts"),
    STTModelUsage: ("stt", "stream"),
}


class LiveKitCapture:
    """The hook :func:`attach` puts on a session (and its room); ``detach()`` takes it off."""

    def __init__(
        self,
        session: AgentSession[Any],
        sink: Emitter,
        *,
        call_id: str,
        customer: str | None = None,
        room: rtc.Room | None = None,
        attrs: Mapping[str, str] | None = None,
        participant_kinds: Mapping[int, str | None] = PARTICIPANT_KINDS,
        source: str = SOURCE,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.session = session
        self.sink = sink
        self.call = CallEvents(call_id, source=source, customer=customer)
        self.attrs = dict(attrs or {})
        self.participant_kinds = participant_kinds
        self.clock = clock
        self.errors = 0
        self.started_at = clock()
        self.room: rtc.Room | None = None
        self._totals: dict[tuple[str, str, str], _Totals] = {}
        self._legs: dict[tuple[str, str, str], Leg] = {}
        self._present: dict[str, Leg] = {}  # participants in the room, by identity
        self._connections: dict[str, int] = {}  # connections seen per identity
        self._agent: Leg | None = None
        self._realtime: set[tuple[str | None, str]] = set()
        self._closed = False
        session.on("session_usage_updated", self._on_usage)
        session.on("close", self._on_close)
        if room is not None:
            self.bind_room(room)

    # -- the room ----------------------------------------------------------------------------------------

    def bind_room(self, room: rtc.Room) -> None:
        """Record the room's participants from now on (and those already in it, if it is connected)."""
        if self.room is not None:
            return
        self.room = room
        room.on("participant_connected", self._on_joined)
        room.on("participant_disconnected", self._on_left)
        room.on("connected", self._on_connected)
        if room.isconnected():
            self._on_connected()

    def _on_connected(self) -> None:
        try:
            assert self.room is not None
            local = self.room.local_participant
            self._agent = self._join(local, kind="agent")
            for participant in list(self.room.remote_participants.values()):
                self._join(participant)
        except Exception:
            self._failed("the room's participants")

    def _on_joined(self, participant: rtc.RemoteParticipant) -> None:
        try:
            self._join(participant)
        except Exception:
            self._failed("a participant joining")

    def _on_left(self, participant: rtc.RemoteParticipant) -> None:
        try:
            leg = self._present.pop(participant.identity, None)
            if leg is not None:
                self.sink.emit(self.call.closed(leg, self.clock()))
        except Exception:
            self._failed("a participant leaving")

    def _join(self, participant: rtc.Participant, kind: str | None = None) -> Leg | None:
        if participant.identity in self._present:
            return self._present[participant.identity]
        found = participant.kind
        kind = kind or self.participant_kinds.get(found)
        if kind is None:
            return None
        name = rtc.ParticipantKind.Name(found).removeprefix("PARTICIPANT_KIND_").lower()
        times = self._connections[participant.identity] = self._connections.get(participant.identity, 0) + 1
        record = participant.identity if times == 1 else f"{participant.identity}/{times}"  # a reconnection
        leg = participant_leg(record, kind, {**self.attrs, "livekit_kind": name})
        self._present[participant.identity] = leg
        self.sink.emit(self.call.opened(leg, participant.joined_at or self.clock()))
        return leg

    # -- the session -------------------------------------------------------------------------------------

    def _on_usage(self, event: SessionUsageUpdatedEvent) -> None:
        try:
            self._find_room()
            self._note_realtime_models()
            at = _at(event.created_at)
            for usage in event.usage.model_usage:
                if isinstance(usage, LLMModelUsage | TTSModelUsage | STTModelUsage):
                    self._usage(usage, at)
        except Exception:
            self._failed("a usage update")

    def _usage(self, usage: LLMModelUsage | TTSModelUsage | STTModelUsage, at: datetime) -> None:
        role, kind = _ROLES[type(usage)]
        key = (role, usage.provider, usage.model)
        now = totals_of(usage)
        before = self._totals.get(key, _Totals(Tokens()))
        self._totals[key] = now
        added = now if now.shrank(before) else now.minus(before)
        if not (added.tokens or added.characters or added.audio_seconds):
            return
        leg = self._leg(key, kind)
        tokens, notes = added.tokens.fitted()
        for note in notes:
            log.warning("talktime: %s usage of %s: %s", role, usage.model, note)
        if tokens:
            self.sink.emit(self.call.tokens(leg, at, tokens, now.key()))
        if added.characters > 0:
            self.sink.emit(self.call.characters(leg, at, added.characters, now.key()))
        if added.audio_seconds > 0:
            self.sink.emit(self.call.audio_sent(leg, at, added.audio_seconds, now.key()))

    def _leg(self, key: tuple[str, str, str], kind: str) -> Leg:
        found = self._legs.get(key)
        if found is not None:
            return found
        role, reported, model = key
        provider = provider_name(reported)
        if role == "llm" and (provider, model) in self._realtime:
            role = "realtime"
        name = "/".join((key[0], provider or "unknown", model or "unknown"))
        attrs = {**self.attrs, **({"model": model} if model else {})}
        leg = Leg(name, kind=kind, provider=provider, product=product_name(provider, role), attrs=attrs)
        self._legs[key] = leg
        self.sink.emit(self.call.opened(leg, self.started_at))
        return leg

    def _note_realtime_models(self) -> None:
        """Which (provider, model) pairs are speech-to-speech models: the session's and its agent's."""
        models: list[object] = [self.session.llm]
        with contextlib.suppress(RuntimeError):  # no agent running
            models.append(self.session.current_agent.llm)
        for model in models:
            if isinstance(model, llm.RealtimeModel):
                self._realtime.add((provider_name(model.provider), model.model))

    def _find_room(self) -> None:
        if self.room is None:
            # started without a room (console, tests): no participants to record
            with contextlib.suppress(RuntimeError):
                self.bind_room(self.session.room_io.room)

    def _on_close(self, event: CloseEvent) -> None:
        try:
            if self._closed:
                return
            self._closed = True
            at = _at(event.created_at)
            if self._agent is None:  # no room: the agent's session is still a record
                self._agent = participant_leg("agent", "agent", self.attrs)
                self.sink.emit(self.call.opened(self._agent, self.started_at))
            for leg in self._legs.values():
                self.sink.emit(self.call.closed(leg, at))
            self._present = {i: leg for i, leg in self._present.items() if leg is not self._agent}
            closing = replace(self._agent, attrs={**self._agent.attrs, "livekit_close": event.reason.value})
            self.sink.emit(self.call.closed(closing, at))
            for leg in self._present.values():
                self.sink.emit(self.call.closed(leg, at))
            self._present.clear()
            flush = getattr(self.sink, "flush", None)
            if callable(flush):
                flush(0)
        except Exception:
            self._failed("the session closing")

    def _failed(self, what: str) -> None:
        self.errors += 1
        log.exception("talktime: could not record %s", what)

    def detach(self) -> None:
        """Stop listening to the session and the room."""
        self.session.off("session_usage_updated", self._on_usage)
        self.session.off("close", self._on_close)
        if self.room is not None:
            self.room.off("participant_connected", self._on_joined)
            self.room.off("participant_disconnected", self._on_left)
            self.room.off("connected", self._on_connected)


def attach(
    session: AgentSession[Any],
    sink: Emitter,
    *,
    call_id: str,
    customer: str | None = None,
    room: rtc.Room | None = None,
    **options: Any,
) -> LiveKitCapture:
    """Send ``session``'s usage and ``room``'s participants to ``sink`` as the call ``call_id``.

    ``room`` defaults to the room the session is started with (found at its first usage update); pass
    ``ctx.room`` to record the participants from the start. ``options``: ``attrs`` (on every record),
    ``participant_kinds`` (LiveKit kind -> record kind, None to leave out), ``source``, ``clock``.
    """
    return LiveKitCapture(session, sink, call_id=call_id, customer=customer, room=room, **options)
