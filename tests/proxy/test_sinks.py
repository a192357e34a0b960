"""Where events go: batching, retries, spill files, and a real talktime server fed by a proxied call."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import uvicorn
from websockets.asyncio.client import connect

from proxy.fakes import FakeProvider, drain, run
from talktime.api import create_app
from talktime.proxy import (
    EventSink,
    HttpTransport,
    JsonLinesTransport,
    MemoryTransport,
    MeteringProxy,
    ProxyOptions,
)
from talktime.proxy.events import CloudEvent
from talktime.proxy.sinks import DeliveryError
from talktime.store import hash_key, open_store

KEY = "key-proxy-tests"


def events(count: int) -> list[CloudEvent]:
    return [{"id": f"e{n}"} for n in range(count)]


async def fed(sink: EventSink, items: list[CloudEvent], wait: float = 0.3) -> None:
    await sink.start()
    for item in items:
        sink.put(item)
    await asyncio.sleep(wait)
    await sink.aclose()


def test_batches_are_delivered_in_order_once_after_a_retryable_failure() -> None:
    transport = MemoryTransport()
    transport.fail_next = [DeliveryError("server down", retry=True)]
    sink = EventSink(transport, batch_size=4, flush_seconds=0.01, backoff_seconds=0.05)
    run(fed(sink, events(10)))
    assert transport.events == events(10)
    assert (sink.delivered, sink.spilled, sink.dropped) == (10, 0, 0)


def test_a_refused_batch_is_spilled_and_the_rest_delivered(tmp_path: Path) -> None:
    transport = MemoryTransport()
    transport.fail_next = [DeliveryError("HTTP 422", retry=False)]
    spill = tmp_path / "unsent.jsonl"
    sink = EventSink(transport, batch_size=3, flush_seconds=0.01, spill=spill)
    run(fed(sink, events(7)))
    assert [json.loads(line) for line in spill.read_text().splitlines()] == events(3)
    assert transport.events == events(7)[3:]


def test_what_a_down_server_could_not_take_is_spilled_at_shutdown(tmp_path: Path) -> None:
    transport = MemoryTransport()
    transport.fail_next = [DeliveryError("down", retry=True)] * 10
    spill = tmp_path / "unsent.jsonl"
    sink = EventSink(transport, flush_seconds=0.01, backoff_seconds=10, spill=spill)
    run(fed(sink, events(5), wait=0.1))
    assert len(spill.read_text().splitlines()) == 5 and sink.spilled == 5
    assert transport.events == []


def test_a_backlog_past_its_bound_spills_the_oldest(tmp_path: Path) -> None:
    transport = MemoryTransport()
    transport.fail_next = [DeliveryError("down", retry=True)] * 100
    spill = tmp_path / "unsent.jsonl"
    sink = EventSink(transport, flush_seconds=0.01, backoff_seconds=0.01, max_pending=4, spill=spill)

    async def scenario() -> None:
        await sink.start()
        for item in events(10):
            sink.put(item)
        await asyncio.sleep(0.2)
        assert [json.loads(line) for line in spill.read_text().splitlines()] == events(6)
        assert sink.pending == events(10)[6:]
        await sink.aclose()

    run(scenario())


def test_the_json_lines_file_gets_one_event_a_line(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "events.jsonl"
    run(fed(EventSink(JsonLinesTransport(path), flush_seconds=0.01), events(3)))
    assert [json.loads(line) for line in path.read_text().splitlines()] == events(3)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def talktime_server(tmp_path: Path) -> Iterator[str]:
    """``talktime serve`` on loopback in a thread, with an embedded store and one key."""
    store = open_store(str(tmp_path / "events.duckdb"))
    store.add_key("acme-platform", hash_key(KEY))
    port = free_port()
    config = uvicorn.Config(create_app(store), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(500):  # wait for it to listen (not a timing assertion)
            if server.started:
                break
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        store.close()


def get(url: str) -> Any:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {KEY}"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())


def test_a_proxied_call_reaches_a_talktime_server_and_is_billed_there(tmp_path: Path) -> None:
    with talktime_server(tmp_path) as base:
        transport = HttpTransport(base, KEY)
        memory = MemoryTransport()

        class Both:
            def send(self, batch: Any) -> None:
                transport.send(batch)
                memory.send(batch)

        async def scenario() -> None:
            fake = FakeProvider()
            async with fake.running():
                sink = EventSink(Both(), flush_seconds=0.05)
                await sink.start()
                proxy = MeteringProxy(ProxyOptions(upstream=fake.url, provider="deepgram"), sink)
                server = await proxy.listen("127.0.0.1", 0)
                port = server.sockets[0].getsockname()[1]
                path = (
                    "/v1/listen?encoding=linear16&sample_rate=16000&talktime_session=call-1&talktime_leg=stt"
                )
                async with connect(f"ws://127.0.0.1:{port}{path}") as client:
                    for _ in range(50):
                        await client.send(bytes(640))
                    await client.send('{"type": "CloseStream"}')
                    await drain(client)
                await proxy.shutdown(server)
                await sink.aclose()

        run(scenario())
        record = get(f"{base}/v1/records/call-1/stt?policy=deepgram-streaming")
        assert Decimal(record["actual_seconds"]) == Decimal(1)  # 32,000 bytes of 16 kHz linear16
        assert Decimal(record["billable_seconds"]) == Decimal(1)
        assert Decimal(record["provider_reported_seconds"]) == Decimal(1)
        assert record["status"] == "completed" and not record["flags"]
        again = transport.url
        answer = urllib.request.urlopen(
            urllib.request.Request(
                again,
                data=json.dumps(memory.events).encode(),
                method="POST",
                headers={
                    "Authorization": f"Bearer {KEY}",
                    "Content-Type": "application/cloudevents-batch+json",
                },
            ),
            timeout=10,
        )
        body = json.loads(answer.read())
        assert body["accepted"] == 0 and body["duplicate"] == len(memory.events)  # ids are fixed per event
