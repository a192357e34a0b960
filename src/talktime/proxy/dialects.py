"""What each provider's streaming protocol says about usage, as data: no ``if provider == ...`` elsewhere.

A dialect names the messages the proxy reads (it never changes them): the client's keep-alives and settings,
the upstream's own usage report (kept as provider-reported, untouched), the handshake header carrying the
provider's request id, and the audio format the provider assumes when the query string is silent.

Sources (read 2026-11, see ``../shared/reference/usage-sources.md``):

* Deepgram streaming: ``KeepAlive`` text messages; ``Metadata{request_id, duration, channels}`` after
  ``CloseStream``; ``dg-request-id`` response header; raw audio needs ``encoding`` and ``sample_rate`` in the
  query, containerised audio (WAV) carries its own header. Voice Agent: a ``Settings`` message with
  ``audio.input.encoding`` / ``audio.input.sample_rate`` (developers.deepgram.com/docs/configure-voice-agent).
* AssemblyAI v3 streaming: ``Begin{id}``, ``Termination{audio_duration_seconds, session_duration_seconds}``,
  billed on session time; ``encoding`` defaults to pcm_s16le and ``sample_rate`` to 16000, single channel.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from talktime.proxy.audio import StreamFormat


@dataclass(frozen=True, slots=True)
class Report:
    """An upstream message carrying the provider's own measure of the stream.

    ``seconds``: the field kept as provider-reported seconds (None: the message has none); ``attrs``: other
    fields kept as record attributes, ``{field: attribute name}``.
    """

    seconds: str | None
    attrs: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Dialect:
    """The usage-bearing messages of one provider's streaming protocol (all matched on JSON ``type``)."""

    name: str
    keepalives: frozenset[str] = frozenset()
    #: client messages that set the input audio format, and the path of the object holding it
    settings: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    reports: Mapping[str, Report] = field(default_factory=dict)
    #: handshake response header holding the provider's id for the connection, kept as an attribute
    id_header: str | None = None
    #: the format the provider assumes when the query names none (None: unknown)
    default_format: StreamFormat | None = None


DEEPGRAM: Final = Dialect(
    name="deepgram",
    keepalives=frozenset({"KeepAlive"}),
    settings={"Settings": ("audio", "input")},
    reports={
        "Metadata": Report("duration", {"request_id": "provider_request_id", "channels": "provider_channels"})
    },
    id_header="dg-request-id",
)
ASSEMBLYAI: Final = Dialect(
    name="assemblyai",
    reports={
        "Begin": Report(None, {"id": "provider_session_id"}),
        "Termination": Report(
            "session_duration_seconds", {"audio_duration_seconds": "provider_audio_seconds"}
        ),
    },
    default_format=StreamFormat("pcm_s16le", 16000, 1),
)
#: Every known message and none of the defaults: for a provider without a dialect of its own.
GENERIC: Final = Dialect(
    name="generic",
    keepalives=DEEPGRAM.keepalives | ASSEMBLYAI.keepalives,
    settings={**DEEPGRAM.settings, **ASSEMBLYAI.settings},
    reports={**DEEPGRAM.reports, **ASSEMBLYAI.reports},
    id_header=DEEPGRAM.id_header,
)
DIALECTS: Final[Mapping[str, Dialect]] = {d.name: d for d in (DEEPGRAM, ASSEMBLYAI)}


def dialect_for(provider: str | None) -> Dialect:
    """The dialect of ``provider`` (``deepgram``, ``assemblyai``), else the generic one.

    >>> dialect_for("Deepgram").name, dialect_for("cartesia").name
    ('deepgram', 'generic')
    """
    return DIALECTS.get((provider or "").strip().lower(), GENERIC)
