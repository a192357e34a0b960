"""Pipecat: an observer that turns a pipeline's life and its usage metrics into talktime events.

One line of setup (``docs/capture/pipecat.md``)::

    PipelineWorker(pipeline, params=PipelineParams(enable_metrics=True, enable_usage_metrics=True),
                   observers=[TalktimeObserver(sink, call_id=call_id, customer="acme")])

What it sends, for the call ``call_id``:

* the pipeline's ``StartFrame`` opens the call's record (kind ``agent`` unless told otherwise) when it is
  first pushed; its ``EndFrame`` or ``CancelFrame`` closes it at the last hop the observer saw it make (the
  end of the pipeline: the bot's last words are out by then), sent when the pipeline tears down;
* each ``MetricsFrame`` usage item goes on a leg of its own per processor and model
  (``call/processor/model``, ``attrs.model``), with the provider and product the built-in profiles use:
  ``LLMUsageMetricsData`` -> ``talktime.tokens`` (kind ``llm``), ``TTSUsageMetricsData`` ->
  ``talktime.characters`` (kind ``tts``), ``STTUsageMetricsData`` -> ``talktime.audio.sent`` (kind
  ``stream``; ``batch`` for a segmented STT service). A leg spans the call: opened at its start (a
  streaming STT service connects then), closed at its end.

A frame is seen at every hop: the observer keeps the ids of the frames it has handled, so a frame counts
once; event ids are made from the call and the frame id, so a resend counts once at the server too.
Nothing here raises into the pipeline or waits on IO: events go to the sink's queue, and an error is logged
and counted (``observer.errors``).

**Cache accounting** (read in pipecat-ai 1.14.0, ``pipecat/metrics/metrics.py`` and the services):
``LLMTokenUsage.prompt_tokens`` is *gross* of the prompt cache for OpenAI-compatible services (OpenAI Chat
and Responses, Realtime, Google, Groq...) and *net* of it for Anthropic and AWS Bedrock, which put the cache
reads and writes beside it; ``total_tokens`` is gross either way (Anthropic's and Bedrock's services add the
cache counts back into it). So the record's ``input_tokens`` is ``total_tokens - completion_tokens``, which
is the gross input for every service, checked against the parts; see :func:`tokens_of`.

Owns: reading Pipecat. Does not own: the event vocabulary (``talktime.capture.events``) or delivery
(``talktime.capture.sink``).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final, Protocol

from pipecat.frames.frames import CancelFrame, EndFrame, MetricsFrame, StartFrame
from pipecat.metrics.metrics import (
    LLMTokenUsage,
    LLMUsageMetricsData,
    MetricsData,
    STTUsageMetricsData,
    TTSUsageMetricsData,
)
from pipecat.observers.base_observer import BaseObserver, FramePushed
from pipecat.services.stt_service import SegmentedSTTService

from talktime.capture.events import CallEvents, Leg, Tokens, product_name, provider_name, seconds

log = logging.getLogger("talktime.capture.pipecat")

SOURCE: Final = "/talktime/capture/pipecat"
_WATCHED: Final = (MetricsFrame, StartFrame, EndFrame, CancelFrame)
#: Module names under ``pipecat.services.<provider>`` of speech-to-speech services (their LLM usage is
#: metered as the provider's realtime product).
_SPEECH_TO_SPEECH: Final = frozenset({"realtime", "live", "gemini_live", "nova_sonic", "voice_live"})
#: Frame ids remembered for dedup; a frame's hops come within moments of each other.
_REMEMBERED: Final = 10_000


class Emitter(Protocol):
    """Anything events can be handed to without waiting (:class:`talktime.capture.sink.EventSink`)."""

    def emit(self, event: Mapping[str, Any]) -> None: ...


def tokens_of(usage: LLMTokenUsage) -> Tokens:
    """One LLM request's ``LLMTokenUsage`` in the record convention (totals with their parts inside).

    ``input_tokens`` = ``total_tokens - completion_tokens``, the gross input whether the service reported
    ``prompt_tokens`` net (Anthropic, Bedrock) or gross (OpenAI-compatible) of the cache. A service that
    left ``total_tokens`` out or inconsistent (0, or below the prompt) falls back to ``prompt_tokens``,
    plus the cache counts when they do not fit in it (then it can only have been net).

    >>> openai = LLMTokenUsage(prompt_tokens=9840, completion_tokens=412, total_tokens=10252,
    ...                        cache_read_input_tokens=8192)
    >>> tokens_of(openai).input_tokens, tokens_of(openai).cached_input_tokens
    (9840, 8192)
    >>> anthropic = LLMTokenUsage(prompt_tokens=1648, completion_tokens=412, total_tokens=10652,
    ...                           cache_read_input_tokens=8192, cache_creation_input_tokens=400)
    >>> tokens_of(anthropic).input_tokens, tokens_of(anthropic).cache_write_tokens
    (10240, 400)
    """
    cached = usage.cache_read_input_tokens or 0
    written = usage.cache_creation_input_tokens or 0
    gross = usage.total_tokens - usage.completion_tokens
    if gross < usage.prompt_tokens or gross < cached + written:
        net = cached + written > usage.prompt_tokens
        gross = usage.prompt_tokens + (cached + written if net else 0)
    audio_in = (usage.input_audio_tokens or 0) - (usage.cache_read_input_audio_tokens or 0)
    return Tokens(
        input_tokens=gross,
        output_tokens=usage.completion_tokens,
        cached_input_tokens=cached,
        cache_write_tokens=written,
        audio_input_tokens=max(0, audio_in),
        audio_output_tokens=usage.output_audio_tokens or 0,
    )


def service_of(processor: object) -> tuple[str | None, tuple[str, ...]]:
    """The provider of a Pipecat service and its module path under it, from the first class in its MRO
    that lives in ``pipecat.services.<provider>.<module>`` (a subclass of a service is that service)."""
    for cls in type(processor).__mro__:
        parts = cls.__module__.split(".")
        if len(parts) >= 4 and parts[:2] == ["pipecat", "services"]:
            return provider_name(parts[2]), tuple(parts[3:])
    return None, ()


def _now() -> datetime:
    return datetime.now(UTC)


def _leg_part(text: str) -> str:
    """A processor name fit for a record id in a URL (``OpenAILLMService#0`` -> ``OpenAILLMService-0``)."""
    return "".join(c if c.isalnum() or c in "._:-" else "-" for c in text)


class TalktimeObserver(BaseObserver):
    """Sends a Pipecat pipeline's call and its LLM, TTS and STT usage to a talktime sink.

    ``call_id`` names the call (the session; unique per call, as events are deduplicated by it). ``kind``
    is the call record's kind; ``attrs`` go on every record. ``providers`` maps a processor's class name to
    its provider when it is not a ``pipecat.services`` class (your own service). ``clock`` is for tests.
    """

    def __init__(
        self,
        sink: Emitter,
        *,
        call_id: str,
        customer: str | None = None,
        kind: str = "agent",
        attrs: Mapping[str, str] | None = None,
        providers: Mapping[str, str] | None = None,
        source: str = SOURCE,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        super().__init__()  # every push: an end frame's last hop is the pipeline's end
        self.sink = sink
        self.call = CallEvents(call_id, source=source, customer=customer)
        self.attrs = dict(attrs or {})
        self.providers = dict(providers or {})
        self.clock = clock
        self.errors = 0
        self._call_leg = Leg(None, kind=kind, attrs=self.attrs)
        self._legs: dict[tuple[str, str, str | None], Leg] = {}
        self._seen: OrderedDict[int, None] = OrderedDict()
        self._started_at: datetime | None = None
        self._end_seen: tuple[datetime, str] | None = None  # the latest hop of an EndFrame/CancelFrame
        self._ended_at: datetime | None = None

    async def on_push_frame(self, data: FramePushed) -> None:
        frame = data.frame
        if not isinstance(frame, _WATCHED):
            return
        try:
            if isinstance(frame, EndFrame | CancelFrame):
                self._end_seen = (self.clock(), "cancel" if isinstance(frame, CancelFrame) else "end")
            elif not self._already_seen(frame.id):
                self._handle(frame, data.source)
        except Exception:  # never into the pipeline
            self.errors += 1
            log.exception("talktime: could not turn %s into usage events", type(frame).__name__)

    async def cleanup(self) -> None:
        """At the pipeline's teardown: close the call and its legs when its end frame made its last hop
        (now, with ``pipecat_end`` = ``teardown``, if none was seen), and ask the sink to send now."""
        try:
            if self._started_at is not None and self._ended_at is None:
                self._end(*(self._end_seen or (self.clock(), "teardown")))
            flush = getattr(self.sink, "flush", None)
            if callable(flush):
                flush(0)
        except Exception:
            self.errors += 1
            log.exception("talktime: cleanup failed")
        await super().cleanup()  # type: ignore[no-untyped-call]  # pipecat leaves it unannotated

    def _already_seen(self, frame_id: int) -> bool:
        if frame_id in self._seen:
            return True
        self._seen[frame_id] = None
        if len(self._seen) > _REMEMBERED:
            self._seen.popitem(last=False)
        return False

    def _handle(self, frame: Any, source: object) -> None:
        now = self.clock()
        if isinstance(frame, StartFrame):
            if self._started_at is None:
                self._started_at = now
                self.sink.emit(self.call.opened(self._call_leg, now))
        else:
            for index, item in enumerate(frame.data):
                self._usage(item, source, f"{frame.id}.{index}", now)

    def _end(self, now: datetime, how: str) -> None:
        self._ended_at = now
        ended = replace(self._call_leg, attrs={**self._call_leg.attrs, "pipecat_end": how})
        self.sink.emit(self.call.closed(ended, now))
        for leg in self._legs.values():
            self.sink.emit(self.call.closed(leg, now))

    def _usage(self, item: MetricsData, source: object, key: str, now: datetime) -> None:
        if isinstance(item, LLMUsageMetricsData):
            tokens, notes = tokens_of(item.value).fitted()
            for note in notes:
                log.warning("talktime: %s from %s: %s", "LLM usage", item.processor, note)
            self.sink.emit(self.call.tokens(self._leg(item, source, "llm", now), now, tokens, key))
        elif isinstance(item, TTSUsageMetricsData):
            leg = self._leg(item, source, "tts", now)
            self.sink.emit(self.call.characters(leg, now, max(0, item.value), key))
        elif isinstance(item, STTUsageMetricsData):
            leg = self._leg(item, source, "stt", now)
            audio = max(seconds(item.value.audio_seconds), Decimal(0))
            self.sink.emit(self.call.audio_sent(leg, now, audio, key))

    def _leg(self, item: MetricsData, source: object, role: str, now: datetime) -> Leg:
        """The leg of this processor and model, made the first time it reports: opened at the call's start
        (and closed at once if the call has already ended: usage reported at the end still counts)."""
        key = (role, item.processor, item.model)
        found = self._legs.get(key)
        if found is not None:
            return found
        provider, modules = service_of(source)
        provider = provider_name(self.providers.get(type(source).__name__)) or provider
        if role == "llm" and _SPEECH_TO_SPEECH.intersection(modules):
            role = "realtime"
        kind = {"llm": "llm", "realtime": "llm", "tts": "tts"}.get(role) or (
            "batch" if isinstance(source, SegmentedSTTService) else "stream"
        )
        name = _leg_part(item.processor) + (f"/{item.model}" if item.model else "")
        attrs = {**self.attrs, **({"model": item.model} if item.model else {})}
        leg = Leg(name, kind=kind, provider=provider, product=product_name(provider, role), attrs=attrs)
        self._legs[key] = leg
        self.sink.emit(self.call.opened(leg, self._started_at or now))
        if self._ended_at is not None:
            self.sink.emit(self.call.closed(leg, self._ended_at))
        return leg
