"""What one proxied connection used, folded from what the relay saw, and the events it becomes.

:class:`ConnectionUsage` has no clock and no IO: the relay passes each message with the monotonic time it
arrived (nanoseconds) and an ``emit`` function that queues an event; tests drive it with made-up times.
Wall-clock times come from one anchor per connection (a wall time and the monotonic time read together), so
every duration is measured on the monotonic clock and a wall-clock step during a call cannot bend it.

What it keeps, and the event each becomes (``docs/proxy.md`` has the table):

* open and close of the upstream connection -> ``connection.opened`` / ``connection.closed`` (with status);
* the first and last binary (audio) message from the client -> ``audio.first`` / ``audio.last``;
* audio seconds = bytes / byte rate of the stream's format -> ``audio.sent`` (a running total, sent as
  increments every ``report_every`` and at close, so the events add up to the exact total);
* the provider's own report (Deepgram ``Metadata.duration``, AssemblyAI
  ``Termination.session_duration_seconds``) -> ``provider.reported``, untouched;
* keep-alive messages and gaps of ``gap`` or more between audio messages -> attributes of the record.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from talktime.core.decimals import text
from talktime.proxy.audio import StreamFormat, format_from, wav_header
from talktime.proxy.dialects import Dialect, Report
from talktime.proxy.events import CloudEvent, Labels, cloud_event

Emit = Callable[[CloudEvent], None]
_MAX_PARSED: Final = 1 << 16  # text messages longer than this are never parsed for usage


def _ns_seconds(ns: int) -> str:
    """Nanoseconds as decimal seconds to the microsecond (``1500000`` -> ``0.0015``)."""
    return text(Decimal(ns // 1000).scaleb(-6))


def _attr(value: object) -> str | None:
    """A JSON scalar as attribute text (numbers exactly as sent), else None."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal | int):
        return text(Decimal(value))
    if isinstance(value, str):
        return value
    return None


def _typed(message: str, names: Mapping[str, Any] | frozenset[str]) -> tuple[str, dict[str, Any]] | None:
    """``(type, object)`` when ``message`` is a JSON object whose ``type`` is one of ``names``.

    A cheap substring test comes first, so most messages (transcripts, audio) are never parsed.
    """
    if len(message) > _MAX_PARSED or not any(name in message for name in names):
        return None
    try:
        found = json.loads(message, parse_float=Decimal)
    except ValueError:
        return None
    if isinstance(found, dict) and isinstance(found.get("type"), str) and found["type"] in names:
        return found["type"], found
    return None


class ConnectionUsage:
    """The usage of one connection, from open to close. Call :meth:`opened` first and :meth:`closed` last.

    ``anchor`` is ``(wall_ns, monotonic_ns)`` read together; ``gap_ns`` the shortest pause between two audio
    messages counted as a gap; ``report_every_ns`` how often the running audio total is sent.
    """

    def __init__(
        self,
        labels: Labels,
        dialect: Dialect,
        stream_format: StreamFormat | None,
        emit: Emit,
        *,
        anchor: tuple[int, int],
        gap_ns: int = 1_000_000_000,
        report_every_ns: int = 60_000_000_000,
    ) -> None:
        self.labels = labels
        self.dialect = dialect
        self._client_types = dialect.keepalives | frozenset(dialect.settings)
        self.format = stream_format
        self._emit = emit
        self._wall, self._mono = anchor
        self._gap_ns = gap_ns
        self._report_every_ns = report_every_ns
        self.attrs: dict[str, str] = {}
        self.audio_bytes = 0  # every byte of every binary message from the client
        self.header_bytes = 0  # of which a container header (WAV), not audio
        self._segment_bytes = 0  # audio bytes since the format was last set
        self._measured = Decimal(0)  # seconds of the segments before it
        self._segments_measured = 0
        self.unmeasured_bytes = 0  # audio bytes of a format without a byte rate
        self._reported = Decimal(0)
        self._reports = 0
        self._provider_reports = 0
        self.first_audio_ns: int | None = None
        self.last_audio_ns: int | None = None
        self._next_report_ns = 0
        self.gaps = 0
        self.gap_ns_total = 0
        self.longest_gap_ns = 0
        self.keepalives = 0
        self.downstream_bytes = 0
        self._channels_sent: int | None = None

    # -- times ------------------------------------------------------------------------------------------
    def wall_ns(self, mono_ns: int) -> int:
        """The wall-clock time of a monotonic reading, through this connection's anchor."""
        return self._wall + (mono_ns - self._mono)

    def _event(self, event_type: str, name: str, mono_ns: int, data: dict[str, Any]) -> None:
        self._emit(cloud_event(self.labels, event_type, name, self.wall_ns(mono_ns), data))

    # -- lifecycle --------------------------------------------------------------------------------------
    def opened(self, now: int, attrs: Mapping[str, str] | None = None) -> None:
        """The upstream accepted the connection at ``now``."""
        data: dict[str, Any] = self.labels.describing()
        if attrs:
            self.attrs.update(attrs)
            data["attrs"] = dict(attrs)
        self._event("connection.opened", "opened", now, data)
        self._next_report_ns = now + self._report_every_ns
        self._send_channels(now)

    def closed(self, now: int, status: str, attrs: Mapping[str, str] | None = None) -> None:
        """The upstream connection ended at ``now`` with ``status`` (completed, canceled)."""
        self._report_audio(now, final=True)
        if self.last_audio_ns is not None:
            self._event("audio.last", "audio.last", self.last_audio_ns, {})
        self._send_channels(now)
        self.attrs.update(attrs or {})
        self.attrs.update(self.summary())
        data = {**self.labels.describing(), "status": status, "attrs": dict(self.attrs)}
        self._event("connection.closed", "closed", now, data)

    def summary(self) -> dict[str, str]:
        """What the record's attributes say about the stream: format, bytes, keep-alives, gaps."""
        found = {
            "audio_bytes": str(self.audio_bytes - self.header_bytes),
            "keepalive_messages": str(self.keepalives),
            "audio_gaps": str(self.gaps),
            "audio_gap_seconds": _ns_seconds(self.gap_ns_total),
            "longest_audio_gap_seconds": _ns_seconds(self.longest_gap_ns),
            "downstream_bytes": str(self.downstream_bytes),
        }
        if self.format is not None:
            found["audio_format"] = self.format.describe()
        unmeasured = self.unmeasured_bytes + (0 if self._measurable else self._segment_bytes)
        if unmeasured:
            found["unmeasured_audio_bytes"] = str(unmeasured)
        return found

    # -- messages ---------------------------------------------------------------------------------------
    def from_client(self, message: str | bytes, now: int) -> None:
        """A message the client sent upstream (the hot path: a few integer operations for audio)."""
        if not isinstance(message, bytes):
            self._client_text(message)
            return
        if self.last_audio_ns is None:
            self._first_audio(message, now)
        else:
            gap = now - self.last_audio_ns
            if gap >= self._gap_ns:
                self.gaps += 1
                self.gap_ns_total += gap
                self.longest_gap_ns = max(self.longest_gap_ns, gap)
        self.last_audio_ns = now
        self.audio_bytes += len(message)
        self._segment_bytes += len(message)
        if now >= self._next_report_ns:
            self._report_audio(now)

    def from_upstream(self, message: str | bytes, now: int) -> None:
        """A message the upstream sent the client: its usage report, if it is one."""
        if isinstance(message, bytes):
            self.downstream_bytes += len(message)
            return
        found = _typed(message, self.dialect.reports)
        if found is not None:
            self._provider_report(self.dialect.reports[found[0]], found[1], now)

    def _client_text(self, message: str) -> None:
        found = _typed(message, self._client_types)
        if found is None:
            return
        kind, body = found
        if kind in self.dialect.keepalives:
            self.keepalives += 1
            return
        part: Any = body
        for key in self.dialect.settings[kind]:
            part = part.get(key) if isinstance(part, dict) else None
        if isinstance(part, dict):
            self._set_format(format_from(part, self.format or self.dialect.default_format))

    def _first_audio(self, message: bytes, now: int) -> None:
        self.first_audio_ns = now
        self._event("audio.first", "audio.first", now, {})
        if self.format is None:
            header = wav_header(message)
            if header is not None:
                self.format, self.header_bytes = header
                self._segment_bytes -= self.header_bytes  # the header is counted next, and is not audio

    def _set_format(self, new: StreamFormat | None) -> None:
        """The format changes from here on: the bytes so far are measured in the old one."""
        if new is None or new == self.format:
            return
        self._close_segment()
        self.format = new

    def _close_segment(self) -> None:
        seconds = None if self.format is None else self.format.seconds(self._segment_bytes)
        if seconds is None:
            self.unmeasured_bytes += self._segment_bytes
        else:
            self._measured += seconds
            self._segments_measured += 1
        self._segment_bytes = 0

    @property
    def _measurable(self) -> bool:
        return self.format is not None and self.format.bytes_per_second is not None

    def audio_seconds(self) -> Decimal | None:
        """Seconds of audio sent so far, in every format that has a byte rate; None when none has.

        Bytes of a format without one (opus, an unknown encoding) are not in it: the record's
        ``unmeasured_audio_bytes`` attribute counts them.
        """
        current = None if self.format is None else self.format.seconds(self._segment_bytes)
        if current is None:
            return self._measured if self._segments_measured else None
        return self._measured + current

    def _report_audio(self, now: int, final: bool = False) -> None:
        """Send the audio seconds since the last report (at close: even none, when they are measurable)."""
        self._next_report_ns = now + self._report_every_ns
        total = self.audio_seconds()
        if total is None:
            return
        delta = total - self._reported
        if delta == 0 and not (final and self._reports == 0):
            return
        self._reports += 1
        self._reported = total
        self._event("audio.sent", f"audio.sent/{self._reports}", now, {"seconds": text(delta)})

    def _send_channels(self, now: int) -> None:
        channels = None if self.format is None else self.format.channels
        if channels is not None and channels != self._channels_sent:
            self._channels_sent = channels
            self._event("channels", f"channels/{channels}", now, {"channels": channels})

    def _provider_report(self, report: Report, body: Mapping[str, Any], now: int) -> None:
        attrs = {name: value for key, name in report.attrs.items() if (value := _attr(body.get(key)))}
        self.attrs.update(attrs)
        if report.seconds is None:
            return
        try:
            seconds = Decimal(body.get(report.seconds))  # type: ignore[arg-type]
        except (TypeError, ValueError, InvalidOperation):
            return
        if not seconds.is_finite() or seconds < 0:
            return
        self._provider_reports += 1
        data = {"seconds": text(seconds), "attrs": attrs}
        self._event("provider.reported", f"provider.reported/{self._provider_reports}", now, data)


def refused_attempt(
    labels: Labels, emit: Emit, *, anchor: tuple[int, int], started: int, ended: int, attrs: Mapping[str, str]
) -> None:
    """A connection the upstream refused, or that could not reach it: opened and closed, status failed."""
    wall, mono = anchor
    described = labels.describing()
    emit(cloud_event(labels, "connection.opened", "opened", wall + started - mono, described))
    closing = {**described, "status": "failed", "attrs": dict(attrs)}
    emit(cloud_event(labels, "connection.closed", "closed", wall + ended - mono, closing))
