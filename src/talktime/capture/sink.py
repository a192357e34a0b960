"""Where captured events go: a talktime server, or a JSON Lines file, off the caller's event loop.

Owns: batching, retries with backoff, the outbox file that keeps events while the server cannot be reached,
and counting what happened. ``emit`` only puts the event on a queue and returns; one background thread per
sink does every IO, so a slow or dead server never blocks or raises into a voice pipeline. Does not own: what
the events say (``talktime.capture.events``).

The way an event goes, and where it can stop::

    emit() -> queue -> batch (<= batch_size events, <= flush_interval seconds old)
                        -> transport.send()  accepted / duplicate            -> delivered
                                             rejected (4xx naming a field)   -> rejected, logged
                                             Unreachable (network, 5xx,      -> retried with backoff
                                               408, 429, 401/403)               (max_attempts), then
                                                                                appended to the outbox
           outbox (JSON Lines) -> resent, oldest first, when the backoff allows and on the next start

An event in the outbox is on disk; one in the queue or a batch is in memory for at most ``flush_interval``
seconds (a process killed with ``kill -9`` loses those). ``close()`` (also run at interpreter exit) writes
what is left to the outbox, then sends the outbox once. Resending is safe: events carry deterministic ids,
and the server counts an id once.

Transports (httpx's idea: all IO behind one small interface, with an in-memory one for tests):
:class:`HttpTransport` (``POST /v1/events``), :class:`FileTransport` (append JSON Lines), and
:class:`MemoryTransport` (a list, with a switch that makes it unreachable).
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import logging
import os
import queue
import random
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final, Protocol

import orjson

from talktime.capture.events import event_id

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("talktime.capture")

BATCH_TYPE: Final = "application/cloudevents-batch+json"
#: The server's own limit per request (``docs/ingest.md``).
MAX_BATCH: Final = 10_000
_TRANSIENT_STATUS: Final = frozenset({401, 403, 408, 425, 429, 500, 502, 503, 504})

Event = Mapping[str, Any]


class Unreachable(Exception):
    """The events could not be handed over now; the same batch may be sent again later."""


@dataclass(frozen=True, slots=True)
class Answer:
    """What the receiver made of a batch: counts, and the reasons of the rejected events."""

    accepted: int
    duplicate: int = 0
    rejected: int = 0
    reasons: tuple[str, ...] = ()


class Transport(Protocol):
    """Hands a batch of events over, or raises :class:`Unreachable` when it cannot now."""

    def send(self, events: Sequence[Event]) -> Answer: ...

    def close(self) -> None: ...


def _default(value: object) -> object:
    """JSON for what orjson does not write: a Decimal as a number when a float holds it exactly (up to 15
    significant digits, read back by the server through its shortest text), else as a string."""
    if isinstance(value, Decimal):
        digits = len(value.as_tuple().digits)
        return float(value) if digits <= 15 else str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps(events: Event | Sequence[Event]) -> bytes:
    """Events (or one event) as JSON, Decimals exact."""
    return orjson.dumps(events, default=_default)


class HttpTransport:
    """``POST /v1/events`` to a talktime server: Bearer key, ``application/cloudevents-batch+json``."""

    def __init__(
        self,
        url: str,
        key: str,
        *,
        timeout: float = 10.0,
        client: httpx.Client | None = None,
    ) -> None:
        import httpx

        base = url.rstrip("/")
        self.url = base if base.endswith("/v1/events") else base + "/v1/events"
        self._headers = {"Authorization": f"Bearer {key}", "Content-Type": BATCH_TYPE}
        self._client = client or httpx.Client(timeout=timeout)
        self._errors: tuple[type[Exception], ...] = (httpx.TransportError,)

    def send(self, events: Sequence[Event]) -> Answer:
        try:
            response = self._client.post(self.url, content=dumps(events), headers=self._headers)
        except self._errors as error:
            raise Unreachable(f"{type(error).__name__}: {error}") from error
        if response.status_code in _TRANSIENT_STATUS:
            raise Unreachable(f"HTTP {response.status_code}: {response.text[:300]}")
        if response.status_code == 413 and len(events) > 1:  # split: each half fits more easily
            half = len(events) // 2
            return _added(self.send(events[:half]), self.send(events[half:]))
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code in (200, 422) and isinstance(body, dict):
            reasons = tuple(
                f"event {item.get('id')!r}: {item.get('errors')}"
                for item in body.get("results", [])
                if isinstance(item, dict) and item.get("status") == "rejected"
            )
            return Answer(int(body.get("accepted", 0)), int(body.get("duplicate", 0)), len(reasons), reasons)
        if response.status_code >= 500:
            raise Unreachable(f"HTTP {response.status_code}: {response.text[:300]}")
        # 400, 413 for one event, 415: the server will never take these as they are.
        return Answer(0, 0, len(events), (f"HTTP {response.status_code}: {response.text[:300]}",))

    def close(self) -> None:
        self._client.close()


def _added(first: Answer, second: Answer) -> Answer:
    return Answer(
        first.accepted + second.accepted,
        first.duplicate + second.duplicate,
        first.rejected + second.rejected,
        first.reasons + second.reasons,
    )


class FileTransport:
    """Appends each event as one JSON line: the lifecycle events as they are, which ingest reads later
    (``POST`` the lines as a batch, or :func:`send_file`)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def send(self, events: Sequence[Event]) -> Answer:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("ab") as out:
                out.write(b"".join(dumps(event) + b"\n" for event in events))
                out.flush()
                os.fsync(out.fileno())
        except OSError as error:
            raise Unreachable(f"cannot write {self.path}: {error}") from error
        return Answer(len(events))

    def close(self) -> None:
        return None


class MemoryTransport:
    """Keeps what it is sent in ``events``; while ``down`` is true it is unreachable (for tests)."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.down = False
        self.attempts = 0
        self._lock = threading.Lock()

    def send(self, events: Sequence[Event]) -> Answer:
        with self._lock:
            self.attempts += 1
            if self.down:
                raise Unreachable("the memory transport is down")
            known = {(e["source"], e["id"]) for e in self.events}
            fresh = [e for e in events if (e["source"], e["id"]) not in known]
            self.events.extend(fresh)
            return Answer(len(fresh), len(events) - len(fresh))

    def close(self) -> None:
        return None


@dataclass(slots=True)
class SinkStats:
    """What a sink did so far. ``lost`` is every event that will never arrive: rejected or dropped."""

    emitted: int = 0
    delivered: int = 0
    duplicate: int = 0
    rejected: int = 0
    buffered: int = 0
    resent: int = 0
    dropped: int = 0
    failed_attempts: int = 0
    last_error: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, count in counts.items():
                setattr(self, name, getattr(self, name) + count)

    @property
    def lost(self) -> int:
        return self.rejected + self.dropped


@dataclass(frozen=True, slots=True)
class Retry:
    """Attempts per batch before it goes to the outbox, and the backoff between attempts and between
    resends of the outbox: ``first`` seconds, doubled each time up to ``longest``, with up to 10% jitter."""

    attempts: int = 3
    first: float = 0.5
    longest: float = 30.0

    def delay(self, failures: int) -> float:
        base = min(self.longest, self.first * 2.0 ** max(0, failures - 1))
        return base * (1 + random.random() / 10)  # jitter, not security


class _Flush:
    def __init__(self) -> None:
        self.done = threading.Event()


class _Close(_Flush):
    pass


def default_outbox(url: str, key: str) -> Path:
    """``$XDG_CACHE_HOME/talktime/outbox-<hash of url and key>.jsonl`` (``~/.cache`` without it): one
    outbox per server and key, found again by the next process that sends there."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    digest = hashlib.sha256(f"{url}\x00{key}".encode()).hexdigest()[:16]
    return cache / "talktime" / f"outbox-{digest}.jsonl"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path``.lock across processes (POSIX ``flock``; elsewhere, none)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: one process per outbox
        yield
        return
    with path.with_name(path.name + ".lock").open("a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


class EventSink:
    """Collects events and hands them to ``transport`` from a background thread, in batches.

    ``emit`` never blocks and never raises. ``outbox`` (a JSON Lines path, or None) keeps the batches the
    transport could not take after ``retry.attempts`` tries; it is resent when the backoff allows, at start
    (what an earlier process left) and at close. ``max_pending`` bounds the events waiting in memory: past it,
    events are dropped and counted (``stats.dropped``), which only happens if the thread is stuck.
    """

    def __init__(
        self,
        transport: Transport,
        *,
        outbox: str | os.PathLike[str] | None = None,
        batch_size: int = 500,
        flush_interval: float = 1.0,
        retry: Retry = Retry(),
        max_pending: int = 100_000,
        name: str = "talktime-sink",
    ) -> None:
        if not 1 <= batch_size <= MAX_BATCH:
            raise ValueError(f"batch_size must be 1 to {MAX_BATCH}, got {batch_size}")
        self.transport = transport
        self.outbox = None if outbox is None else Path(outbox)
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.retry = retry
        self.max_pending = max_pending
        self.stats = SinkStats()
        self._queue: queue.SimpleQueue[Event | _Flush] = queue.SimpleQueue()
        self._closed = False
        self._failures = 0  # consecutive failed deliveries; > 0 means offline
        self._retry_at = 0.0
        self._pending: list[Event] = []  # the batch being gathered (the thread's alone)
        self._deadline = 0.0  # when it goes, full or not
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        atexit.register(_close_at_exit, weakref.ref(self))

    # -- the caller's side: never blocks, never raises ---------------------------------------------------

    def emit(self, event: Event) -> None:
        """Queue one event for delivery (an event without an ``id`` gets one made from its content)."""
        try:
            if self._closed or self._queue.qsize() >= self.max_pending:
                self.stats.add(dropped=1)
                log.warning(
                    "talktime sink %s: event dropped (%s)",
                    self._thread.name,
                    "closed" if self._closed else "too many pending",
                )
                return
            if "id" not in event:
                event = {**event, "id": event_id(dumps(event).decode())}
            self.stats.add(emitted=1)
            self._queue.put(event)
        except Exception:  # never into the caller's loop
            self.stats.add(dropped=1)
            log.exception("talktime sink: could not queue an event")

    def flush(self, timeout: float | None = 0) -> bool:
        """Ask for everything emitted so far to be sent (or written to the outbox) now. ``timeout`` 0
        returns at once; otherwise wait up to ``timeout`` seconds (None: no limit) and say whether it was
        done. Do not wait on an event loop's thread."""
        if self._closed:
            return not self._thread.is_alive()
        marker = _Flush()
        self._queue.put(marker)
        return marker.done.wait(timeout) if timeout != 0 else False

    def close(self, timeout: float | None = 15.0) -> bool:
        """Write what is left to the outbox (without one: send it, one attempt), send the outbox once,
        stop the thread, close the transport. Says whether that finished within ``timeout``; what was
        not sent by then is in the outbox for the next process. Safe to call twice."""
        if self._closed:
            return not self._thread.is_alive()
        self._closed = True
        marker = _Close()
        self._queue.put(marker)
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def __enter__(self) -> EventSink:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- the thread's side --------------------------------------------------------------------------------

    def _run(self) -> None:
        self._guarded(self._resend_outbox)
        while not self._guarded(self._step):
            pass

    def _guarded(self, step: Callable[[], bool | None]) -> bool:
        """Run one step of the thread; a bug in it is logged and the thread goes on (what was pending
        stays pending: sending it again is harmless)."""
        try:
            return bool(step())
        except Exception as error:
            self.stats.last_error = f"{type(error).__name__}: {error}"
            log.exception("talktime sink: unexpected error in the sending thread")
            time.sleep(min(1.0, self.flush_interval))
            return False

    def _step(self) -> bool:
        """Wait for an event, a flush or the close, and send what is due. True once closed."""
        pending = self._pending
        wait = None if not pending else max(0.0, self._deadline - time.monotonic())
        if self._failures and self.outbox is not None:
            until_retry = max(0.0, self._retry_at - time.monotonic())
            wait = until_retry if wait is None else min(wait, until_retry)
        try:
            item = self._queue.get(timeout=wait)
        except queue.Empty:
            item = None
        if isinstance(item, _Close):
            self._finish(pending)
            self._pending = []
            item.done.set()
            return True
        if isinstance(item, _Flush):
            self._ship(pending)
            self._pending = []
            if self._failures == 0:
                self._resend_outbox()
            item.done.set()
            return False
        if item is not None:
            if not pending:
                self._deadline = time.monotonic() + self.flush_interval
            pending.append(item)
        if len(pending) >= self.batch_size or (pending and time.monotonic() >= self._deadline):
            self._ship(pending)
            self._pending = []
        if self._failures and time.monotonic() >= self._retry_at:
            self._resend_outbox()
        return False

    def _finish(self, pending: list[Event]) -> None:
        """At close: what is still in memory goes to disk first (the process may be about to exit, and a
        hanging server must not cost it), then the outbox gets one try; without an outbox, one try each."""
        if self.outbox is not None:
            self._to_outbox(pending, going_offline=False)
        else:
            self._ship(pending, attempts=1)
        self._resend_outbox()
        try:
            self.transport.close()
        except Exception:
            log.exception("talktime sink: closing the transport failed")

    def _ship(self, batch: list[Event], *, attempts: int | None = None) -> None:
        """Deliver one batch, or put it in the outbox (at once while offline)."""
        for start in range(0, len(batch), self.batch_size):
            part = batch[start : start + self.batch_size]
            offline = bool(self._failures) and self.outbox is not None
            if offline or not self._deliver(part, attempts=attempts or self.retry.attempts):
                self._to_outbox(part)

    def _deliver(self, batch: Sequence[Event], *, attempts: int, resend: bool = False) -> bool:
        """Try to hand the batch over; True once the transport answered (whatever it answered)."""
        for attempt in range(1, attempts + 1):
            try:
                answer = self.transport.send(batch)
            except Unreachable as error:
                self._note_failure(str(error))
                if attempt < attempts:
                    time.sleep(self.retry.delay(attempt))
                continue
            except Exception as error:  # a transport bug must not kill the thread
                log.exception("talktime sink: the transport failed")
                self._note_failure(f"{type(error).__name__}: {error}")
                continue
            self._failures = 0
            self.stats.add(
                delivered=answer.accepted,
                duplicate=answer.duplicate,
                rejected=answer.rejected,
                resent=len(batch) if resend else 0,
            )
            for reason in answer.reasons[:5]:
                log.error("talktime sink: the server rejected %s", reason)
            return True
        return False

    def _note_failure(self, error: str) -> None:
        self.stats.add(failed_attempts=1)
        self.stats.last_error = error
        if self._failures == 0:
            log.warning("talktime sink: cannot deliver events (%s); retrying, then buffering", error)
        else:
            log.debug("talktime sink: cannot deliver events (%s)", error)

    def _offline(self) -> None:
        self._failures += 1
        self._retry_at = time.monotonic() + self.retry.delay(self._failures)

    def _to_outbox(self, batch: Sequence[Event], *, going_offline: bool = True) -> None:
        if not batch:
            return
        if self.outbox is None:
            self.stats.add(dropped=len(batch))
            log.error("talktime sink: %d events dropped (no outbox configured)", len(batch))
            return
        if going_offline and not self._failures:
            self._offline()
        try:
            with _locked(self.outbox), self.outbox.open("ab") as out:
                out.write(b"".join(dumps(event) + b"\n" for event in batch))
                out.flush()
                os.fsync(out.fileno())
            self.stats.add(buffered=len(batch))
        except OSError as error:
            self.stats.add(dropped=len(batch))
            log.error(
                "talktime sink: %d events dropped: cannot write the outbox %s: %s",
                len(batch),
                self.outbox,
                error,
            )

    def _resend_outbox(self) -> None:
        """Send the outbox, oldest first, one attempt per batch (the backoff spaces the resends); keep what
        could not be sent. Under the outbox's lock, so processes sharing an outbox never lose a line."""
        if self.outbox is None:
            return
        try:
            with _locked(self.outbox):
                if self.outbox.exists():
                    self._resend_locked(self.outbox)
                else:
                    self._failures = 0  # nothing waits on disk (another process sent it)
        except OSError as error:
            log.error("talktime sink: cannot read the outbox %s: %s", self.outbox, error)
            self._offline()

    def _resend_locked(self, outbox: Path) -> None:
        with outbox.open("rb") as lines:
            while True:
                offset = lines.tell()
                batch = _read_batch(lines, self.batch_size)
                if not batch:
                    break
                if not self._deliver(batch, attempts=1, resend=True):
                    self._keep_from(outbox, lines, offset)
                    self._offline()
                    return
        outbox.unlink()
        log.info("talktime sink: the outbox %s was delivered", outbox)

    @staticmethod
    def _keep_from(outbox: Path, lines: IO[bytes], offset: int) -> None:
        """Rewrite the outbox to hold only what starts at ``offset`` (atomically: a crash keeps all)."""
        lines.seek(offset)
        rest = outbox.with_suffix(outbox.suffix + ".tmp")
        with rest.open("wb") as out:
            while chunk := lines.read(1 << 20):
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        rest.replace(outbox)


def _read_batch(lines: IO[bytes], size: int) -> list[Event]:
    """Up to ``size`` events from a JSON Lines file; a line that is not an event (a write cut short by a
    crash) is skipped and logged."""
    batch: list[Event] = []
    while len(batch) < size:
        line = lines.readline()
        if not line:
            break
        if not line.strip():
            continue
        try:
            event = orjson.loads(line)
        except orjson.JSONDecodeError:
            log.warning("talktime sink: skipped a damaged outbox line: %r", line[:120])
            continue
        if isinstance(event, dict):
            batch.append(event)
    return batch


def _close_at_exit(ref: weakref.ref[EventSink]) -> None:
    sink = ref()
    if sink is not None:
        sink.close(timeout=5.0)


class HttpSink(EventSink):
    """Events to a talktime server: ``HttpSink("http://127.0.0.1:8080", key=KEY)``.

    ``outbox`` defaults to :func:`default_outbox` (one per server and key); pass ``None`` to keep nothing
    on disk (events the server cannot take after the retries are then dropped and counted).
    """

    def __init__(
        self,
        url: str,
        key: str,
        *,
        outbox: str | os.PathLike[str] | bool | None = True,
        timeout: float = 10.0,
        client: httpx.Client | None = None,
        **options: Any,
    ) -> None:
        chosen = default_outbox(url, key) if outbox is True else (None if outbox is False else outbox)
        super().__init__(HttpTransport(url, key, timeout=timeout, client=client), outbox=chosen, **options)


class FileSink(EventSink):
    """Events appended to a JSON Lines file: ``FileSink("events.jsonl")``."""

    def __init__(self, path: str | os.PathLike[str], **options: Any) -> None:
        super().__init__(FileTransport(path), **options)


def open_sink(target: str | os.PathLike[str], key: str | None = None, **options: Any) -> EventSink:
    """An :class:`HttpSink` for an ``http(s)://`` URL (``key`` needed), else a :class:`FileSink`."""
    text = os.fspath(target)
    if text.startswith(("http://", "https://")):
        if not key:
            raise ValueError(f"sending to {text} needs an API key (talktime keys create TENANT)")
        return HttpSink(text, key, **options)
    return FileSink(text, **options)


def send_file(path: str | os.PathLike[str], url: str, key: str, *, batch_size: int = 5_000) -> Answer:
    """Send a JSON Lines file of events (a :class:`FileSink`'s, an outbox) to a server, now, in batches.
    Raises :class:`Unreachable` if the server cannot be reached; sending twice is harmless."""
    transport = HttpTransport(url, key)
    total = Answer(0)
    try:
        with Path(path).open("rb") as lines:
            while batch := _read_batch(lines, batch_size):
                total = _added(total, transport.send(batch))
    finally:
        transport.close()
    return total
