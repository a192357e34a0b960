"""Where a proxy's events go: batched in the background, so the relay never waits on them.

:class:`EventSink` takes events with :meth:`EventSink.put` (an append to a list: it never blocks or raises)
and a background task sends them in batches through a :class:`Transport`, in a worker thread:

* :class:`HttpTransport`: ``POST /v1/events`` of a talktime server with an API key. Failures it can
  retry (no answer, 5xx, 429) are retried with backoff (1 s, doubling up to 30 s), the events kept in
  memory; a batch the server refuses outright (401, 413, 422) is written to the spill file, as is the
  oldest part of the backlog past ``max_pending`` events and whatever is unsent at shutdown. A spill file
  is JSON Lines of events: post it later (``jq -s . spill.jsonl``); the ids make a resend count once.
* :class:`JsonLinesTransport`: appended to a JSON Lines file, one event a line.
* :class:`MemoryTransport`: kept in a list (tests, and embedding the proxy in a program).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final, Protocol
from urllib.parse import urlsplit, urlunsplit

import orjson

from talktime.proxy.events import CloudEvent

log = logging.getLogger("talktime.proxy")
BATCH_TYPE: Final = "application/cloudevents-batch+json"
_MAX_BACKOFF: Final = 30.0


class DeliveryError(Exception):
    """A batch was not delivered; ``retry`` says whether sending it again may succeed."""

    def __init__(self, message: str, *, retry: bool) -> None:
        super().__init__(message)
        self.retry = retry


class Transport(Protocol):
    """Delivers one batch of events, or raises :class:`DeliveryError`. Runs in a worker thread."""

    def send(self, batch: Sequence[CloudEvent]) -> None: ...


class MemoryTransport:
    """Keeps every delivered event in ``events``; ``fail_next`` makes the next sends fail (tests)."""

    def __init__(self) -> None:
        self.events: list[CloudEvent] = []
        self.fail_next: list[DeliveryError] = []

    def send(self, batch: Sequence[CloudEvent]) -> None:
        if self.fail_next:
            raise self.fail_next.pop(0)
        self.events.extend(batch)


class JsonLinesTransport:
    """Appends each batch to a JSON Lines file and flushes it to disk."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def send(self, batch: Sequence[CloudEvent]) -> None:
        try:
            _append_lines(self.path, batch)
        except OSError as error:
            raise DeliveryError(f"{self.path}: {error.strerror or error}", retry=True) from None


def _append_lines(path: Path, batch: Sequence[CloudEvent]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("ab") as handle:
        handle.write(b"".join(orjson.dumps(event) + b"\n" for event in batch))
        handle.flush()
        os.fsync(handle.fileno())


def events_url(url: str) -> str:
    """A talktime server's events endpoint: ``/v1/events`` unless the URL names a path.

    >>> events_url("http://127.0.0.1:8080"), events_url("https://meter.example/base/v1/events")
    ('http://127.0.0.1:8080/v1/events', 'https://meter.example/base/v1/events')
    """
    parts = urlsplit(url)
    path = parts.path if parts.path not in ("", "/") else "/v1/events"
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


class HttpTransport:
    """Posts each batch to a talktime server (``POST /v1/events``, ``Authorization: Bearer KEY``)."""

    def __init__(self, url: str, key: str, *, timeout: float = 10.0) -> None:
        self.url = events_url(url)
        self._key = key
        self.timeout = timeout

    def send(self, batch: Sequence[CloudEvent]) -> None:
        request = urllib.request.Request(
            self.url,
            data=orjson.dumps(list(batch)),
            method="POST",
            headers={"Content-Type": BATCH_TYPE, "Authorization": f"Bearer {self._key}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                body: Any = orjson.loads(answer.read() or b"{}")
        except urllib.error.HTTPError as error:
            said = error.read()[:300].decode(errors="replace")
            retry = error.code >= 500 or error.code in (408, 429)
            raise DeliveryError(f"{self.url}: HTTP {error.code}: {said}", retry=retry) from None
        except (OSError, ValueError) as error:  # no answer, time-out, a broken or non-JSON answer
            raise DeliveryError(f"{self.url}: {error}", retry=True) from None
        rejected = [r for r in body.get("results", []) if r.get("status") == "rejected"]
        if rejected:
            log.warning("talktime server rejected %d event(s): %s", len(rejected), rejected[:3])


class EventSink:
    """Queues events and delivers them in batches from a background task (``start`` / ``aclose``)."""

    def __init__(
        self,
        transport: Transport,
        *,
        batch_size: int = 500,
        flush_seconds: float = 1.0,
        max_pending: int = 100_000,
        spill: Path | None = None,
        backoff_seconds: float = 1.0,
    ) -> None:
        self.transport = transport
        self.batch_size = batch_size
        self.flush_seconds = flush_seconds
        self.max_pending = max_pending
        self.spill = spill
        self.backoff_seconds = backoff_seconds
        self.pending: list[CloudEvent] = []
        self.delivered = 0
        self.spilled = 0
        self.dropped = 0
        self._failures = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def put(self, event: CloudEvent) -> None:
        """Queue one event; never blocks, never raises."""
        self.pending.append(event)
        if len(self.pending) >= self.batch_size and not self._failures:  # no early retry while backing off
            self._wake.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="talktime-proxy-events")

    async def aclose(self, timeout: float = 10.0) -> None:
        """Deliver what is queued (for up to ``timeout`` seconds), spill the rest, stop the task."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self._task), timeout)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.pending:
            await self._spill(len(self.pending), "unsent at shutdown")

    async def _run(self) -> None:
        while True:
            if not self._closing:
                backoff = self.backoff_seconds * 2.0 ** (self._failures - 1) if self._failures else 0.0
                backoff = min(_MAX_BACKOFF, backoff)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), backoff or self.flush_seconds)
            self._wake.clear()
            if len(self.pending) > self.max_pending:
                await self._spill(len(self.pending) - self.max_pending, "backlog over max_pending")
            await self._deliver()
            if self._closing:  # one last attempt; aclose spills what it could not deliver
                return

    async def _deliver(self) -> bool:
        """Send queued batches in order until the queue is empty (True) or a send fails (False)."""
        while self.pending:
            batch = self.pending[: self.batch_size]
            try:
                await asyncio.to_thread(self.transport.send, batch)
            except DeliveryError as error:
                if error.retry:
                    self._failures += 1
                    log.warning("events not delivered (attempt %d, will retry): %s", self._failures, error)
                    return False
                log.error("events refused, not retried: %s", error)
                await self._spill(len(batch), "refused")
                continue
            del self.pending[: len(batch)]
            self.delivered += len(batch)
            self._failures = 0
        return True

    async def _spill(self, count: int, why: str) -> None:
        """Move the ``count`` oldest queued events to the spill file (or drop them when there is none)."""
        batch, self.pending = self.pending[:count], self.pending[count:]
        if self.spill is None:
            self.dropped += len(batch)
            log.error("%d event(s) dropped (%s; no spill file)", len(batch), why)
            return
        try:
            await asyncio.to_thread(_append_lines, self.spill, batch)
        except OSError as error:
            self.dropped += len(batch)
            log.error("%d event(s) dropped (%s; spill file %s: %s)", len(batch), why, self.spill, error)
            return
        self.spilled += len(batch)
        log.warning("%d event(s) written to %s (%s)", len(batch), self.spill, why)
