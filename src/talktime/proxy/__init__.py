"""A WebSocket metering proxy: ``talktime proxy --listen HOST:PORT --upstream URL``.

It passes a streaming speech-to-text or voice-agent connection through unchanged and records what providers
bill, per connection, as talktime events (``docs/proxy.md``): connection open to close, first and last audio
byte, audio seconds sent (from the stream's encoding, sample rate and channels), keep-alives and gaps with no
audio, and the provider's own report of the stream kept as provider-reported.

Owns: the relay (``relay``), the handshake rules (``handshake``), audio formats (``audio``), provider
protocols as data (``dialects``), the per-connection fold (``usage``), its events (``events``), where they
go (``sinks``), and an events file turned into records without a server (``records``). Does not own: the
events' meaning and sessionization (``talktime.ingest``) or metering (``talktime.core``).
"""

from talktime.proxy.relay import MeteringProxy, ProxyOptions, run
from talktime.proxy.sinks import EventSink, HttpTransport, JsonLinesTransport, MemoryTransport

__all__ = [
    "EventSink",
    "HttpTransport",
    "JsonLinesTransport",
    "MemoryTransport",
    "MeteringProxy",
    "ProxyOptions",
    "run",
]
