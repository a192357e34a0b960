"""Capture: usage read where it is measured (a voice framework), sent to talktime as lifecycle events.

Owns: the sink every capture shares (``sink``: batches, retries, an outbox on disk, never blocking the
caller), the events one call produces (``events``: legs, token and character totals with their parts,
deterministic ids), and one adapter per framework, each an optional extra: ``pipecat``
(``talktime[pipecat]``, an observer) and ``livekit`` (``talktime[livekit]``, a hook on ``AgentSession``).
Does not own: what the server makes of the events (``talktime.ingest``) or how they are billed (policies).

Importing this package needs neither framework; import ``talktime.capture.pipecat`` or
``talktime.capture.livekit`` for the adapters. Pages: ``docs/capture/pipecat.md`` and
``docs/capture/livekit.md``.
"""

from talktime.capture.events import CallEvents, Leg, Tokens
from talktime.capture.sink import (
    EventSink,
    FileSink,
    HttpSink,
    MemoryTransport,
    SinkStats,
    Unreachable,
    open_sink,
    send_file,
)

__all__ = [
    "CallEvents",
    "EventSink",
    "FileSink",
    "HttpSink",
    "Leg",
    "MemoryTransport",
    "SinkStats",
    "Tokens",
    "Unreachable",
    "open_sink",
    "send_file",
]
