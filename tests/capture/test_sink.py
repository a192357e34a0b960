"""The sink every capture shares: batches bounded in size and time, never blocking or raising into the
caller, an outbox on disk while the server cannot be reached (sent later, by the next process too), and
deterministic ids so a resend counts once at a real talktime server."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from capture.serving import KEY, Server
from support.events import event
from talktime.capture.sink import (
    Answer,
    EventSink,
    FileSink,
    HttpSink,
    MemoryTransport,
    Retry,
    Unreachable,
    open_sink,
    send_file,
)

FAST = Retry(attempts=2, first=0.02, longest=0.1)


def events(count: int, subject: str = "call-1") -> list[dict[str, Any]]:
    return [
        event(
            "talktime.audio.sent",
            subject,
            f"2025-03-01T10:00:{i % 60:02d}Z",
            id=f"{subject}-{i}",
            source="/capture-tests",
            data={"seconds": 1.5},
        )
        for i in range(count)
    ]


def eventually(check: Any, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "not reached in time"
        time.sleep(0.01)


class Hanging:
    """A transport stuck on every send (a server that accepts the connection and never answers)."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def send(self, batch: Sequence[Any]) -> Answer:
        self.release.wait(10)
        return Answer(len(batch))

    def close(self) -> None:
        self.release.set()


def test_batches_are_bounded_in_size_and_sent_within_the_flush_interval() -> None:
    transport = MemoryTransport()
    sink = EventSink(transport, batch_size=3, flush_interval=0.05)
    for item in events(7):
        sink.emit(item)
    eventually(lambda: len(transport.events) == 7)  # the last, partial batch goes when it is 0.05 s old
    assert transport.attempts == 3  # 3 + 3 + 1
    assert sink.close(timeout=5)
    assert (sink.stats.emitted, sink.stats.delivered, sink.stats.lost) == (7, 7, 0)


def test_emit_never_blocks_on_a_stuck_transport_and_never_raises() -> None:
    transport = Hanging()
    sink = EventSink(transport, batch_size=10, flush_interval=0.01)
    started = time.monotonic()
    for item in events(2_000):
        sink.emit(item)
    sink.emit({"specversion": "1.0", "data": object()})  # cannot be made JSON: counted, not raised
    assert time.monotonic() - started < 1.0
    assert sink.stats.dropped == 1
    transport.release.set()
    assert sink.close(timeout=10)


def test_an_unreachable_receiver_costs_nothing_the_outbox_keeps_it_and_sends_it_later(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox.jsonl"
    transport = MemoryTransport()
    transport.down = True
    sink = EventSink(transport, outbox=outbox, batch_size=4, flush_interval=0.01, retry=FAST)
    for item in events(10):
        sink.emit(item)
    assert sink.flush(timeout=5)
    assert sink.stats.buffered == 10 and len(outbox.read_text().splitlines()) == 10
    transport.down = False  # back: the outbox goes when the backoff allows, oldest first
    eventually(lambda: sink.stats.delivered == 10)
    assert [e["id"] for e in transport.events] == [f"call-1-{i}" for i in range(10)]
    assert not outbox.exists()
    assert sink.close(timeout=5) and sink.stats.lost == 0


def test_the_next_process_sends_what_an_earlier_one_left_in_the_outbox(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox.jsonl"
    down = MemoryTransport()
    down.down = True
    first = EventSink(down, outbox=outbox, flush_interval=0.01, retry=FAST)
    for item in events(5):
        first.emit(item)
    assert first.close(timeout=5)  # closing while unreachable: one try, then the outbox
    with outbox.open("ab") as damaged:
        damaged.write(b'{"specversion": "1.0", "id": "cut-sh')  # a write cut short by a crash
    up = MemoryTransport()
    second = EventSink(up, outbox=outbox, flush_interval=0.01, retry=FAST)
    assert second.close(timeout=5)
    assert [e["id"] for e in up.events] == [f"call-1-{i}" for i in range(5)]
    assert second.stats.resent == 5 and not outbox.exists()


def test_without_an_outbox_what_cannot_be_delivered_is_dropped_and_counted() -> None:
    transport = MemoryTransport()
    transport.down = True
    sink = EventSink(transport, outbox=None, flush_interval=0.01, retry=FAST)
    for item in events(3):
        sink.emit(item)
    assert sink.close(timeout=5)
    assert (sink.stats.dropped, sink.stats.lost, sink.stats.delivered) == (3, 3, 0)
    assert sink.stats.last_error == "the memory transport is down"


def test_a_resend_counts_once_at_the_server(server: Server, tmp_path: Path) -> None:
    batch = events(20)
    for name in ("first", "again"):
        sink = HttpSink(server.url, KEY, outbox=tmp_path / f"{name}.jsonl", flush_interval=0.01)
        for item in batch:
            sink.emit(item)
        assert sink.close(timeout=10)
        assert (sink.stats.delivered, sink.stats.duplicate) == ((20, 0) if name == "first" else (0, 20))
    assert server.events() == 20


def test_a_refused_key_keeps_the_events_until_the_key_is_fixed(server: Server, tmp_path: Path) -> None:
    outbox = tmp_path / "outbox.jsonl"
    wrong = HttpSink(server.url, "not-a-key", outbox=outbox, flush_interval=0.01, retry=FAST)
    for item in events(4):
        wrong.emit(item)
    assert wrong.close(timeout=10)
    assert (wrong.stats.buffered, wrong.stats.lost, server.events()) == (4, 0, 0)
    assert "HTTP 401" in (wrong.stats.last_error or "")
    fixed = HttpSink(server.url, KEY, outbox=outbox, flush_interval=0.01)
    assert fixed.close(timeout=10)
    assert (fixed.stats.resent, server.events()) == (4, 4)


def test_events_the_server_refuses_are_counted_and_not_retried(server: Server, tmp_path: Path) -> None:
    bad = event(
        "talktime.tokens",
        id="bad-1",
        source="/capture-tests",
        data={"input_tokens": 10, "cached_input_tokens": 12},
    )
    sink = HttpSink(server.url, KEY, outbox=tmp_path / "outbox.jsonl", flush_interval=0.01)
    sink.emit(bad)
    sink.emit(events(1)[0])
    assert sink.close(timeout=10)
    assert (sink.stats.delivered, sink.stats.rejected, sink.stats.dropped) == (1, 1, 0)


def test_a_file_sink_writes_events_that_ingest_reads_later(server: Server, tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    sink = open_sink(path, flush_interval=0.01)
    assert isinstance(sink, FileSink)
    for item in events(12):
        sink.emit(item)
    assert sink.close(timeout=5)
    assert len(path.read_text().splitlines()) == 12
    assert send_file(path, server.url, KEY) == Answer(12)
    assert send_file(path, server.url, KEY) == Answer(0, duplicate=12)  # sending twice is harmless
    with pytest.raises(Unreachable):
        send_file(path, "http://127.0.0.1:9", KEY)


def test_an_http_target_needs_a_key() -> None:
    with pytest.raises(ValueError, match="API key"):
        open_sink("http://127.0.0.1:8080")


def test_a_transport_that_fails_oddly_is_retried_and_the_thread_lives_on(tmp_path: Path) -> None:
    class Flaky(MemoryTransport):
        def send(self, events: Sequence[Any]) -> Answer:
            if self.attempts == 0:
                self.attempts += 1
                raise RuntimeError("a bug in a transport")
            return super().send(events)

    transport = Flaky()
    sink = EventSink(transport, outbox=tmp_path / "outbox.jsonl", flush_interval=0.01, retry=FAST)
    for item in events(3):
        sink.emit(item)
    assert sink.flush(timeout=5)
    assert sink.close(timeout=5)
    assert (sink.stats.delivered, sink.stats.failed_attempts, sink.stats.lost) == (3, 1, 0)
    assert sink.flush(timeout=None)  # after close: answers at once
