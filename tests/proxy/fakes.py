"""A fake streaming provider on loopback, and helpers to run the proxy in front of it.

:class:`FakeProvider` answers like Deepgram streaming (or AssemblyAI v3 with ``style="assemblyai"``): for
each binary message it sends a ``Results`` text message and the message's bytes reversed (a binary answer the
test can check byte for byte); ``KeepAlive`` gets no answer; ``CloseStream`` (``Terminate``) gets the
provider's usage report, ``Metadata{duration, channels}`` (``Termination{audio_duration_seconds,
session_duration_seconds}``), then a close with code 1000. Two text messages that no provider has steer it:
``{"type": "CloseWith", "code": C, "reason": R}`` closes with that code, ``{"type": "Abort"}`` drops the TCP
connection without a close frame. It keeps its own clock: the wall time its connection opened (its handler
started) and closed (the TCP connection ended).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from talktime.core.records import UsageRecord
from talktime.proxy import EventSink, MemoryTransport, MeteringProxy, ProxyOptions
from talktime.proxy.events import CloudEvent
from talktime.proxy.records import read_events, records_from

Message = str | bytes


@dataclass
class Seen:
    """One connection as the fake provider saw it."""

    path: str
    headers: Headers
    subprotocol: str | None = None
    opened_ns: int = 0
    closed_ns: int = 0
    received: list[Message] = field(default_factory=list)
    sent: list[Message] = field(default_factory=list)
    close_code: int | None = None
    close_reason: str | None = None


class _Noting(ServerConnection):
    """The fake's side of a connection, noting when its TCP connection ended (its clock stops there)."""

    lost_ns = 0

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost_ns = time.time_ns()
        super().connection_lost(exc)


@dataclass
class FakeProvider:
    """A websockets server on 127.0.0.1 that answers like a streaming STT provider (see module doc)."""

    style: str = "deepgram"
    refuse: int | None = None  # answer every handshake with this HTTP status
    delay: float = 0.0  # seconds to wait before answering a handshake
    seen: list[Seen] = field(default_factory=list)
    port: int = 0

    def _audio_seconds(self, seen: Seen) -> Decimal:
        query = dict(p.split("=", 1) for p in seen.path.partition("?")[2].split("&") if "=" in p)
        rate = int(query.get("sample_rate", 16000))
        channels = int(query.get("channels", 1))
        audio = sum(len(m) for m in seen.received if isinstance(m, bytes))
        return Decimal(audio) / Decimal(rate * 2 * channels)

    async def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        self.seen.append(Seen(request.path, request.headers))
        await asyncio.sleep(self.delay)
        if self.refuse is None:
            return None
        body = json.dumps({"err_code": "INVALID_AUTH", "err_msg": "Invalid credentials."}).encode()
        headers = Headers([("Content-Type", "application/json"), ("dg-error", "Invalid credentials.")])
        return Response(self.refuse, "Refused", headers, body)

    def _process_response(self, connection: ServerConnection, request: Request, response: Response) -> None:
        if response.status_code == 101:
            response.headers["dg-request-id"] = "req-fake-1"

    def _select(self, connection: ServerConnection, offered: list[Subprotocol]) -> Subprotocol | None:
        return Subprotocol("token") if "token" in offered else None

    async def _send(self, connection: ServerConnection, seen: Seen, message: Message) -> None:
        seen.sent.append(message)
        await connection.send(message)

    async def _handler(self, connection: ServerConnection) -> None:
        assert connection.request is not None
        seen = next(s for s in self.seen if s.headers is connection.request.headers)
        seen.opened_ns = time.time_ns()
        seen.subprotocol = connection.subprotocol
        try:
            async for message in connection:
                seen.received.append(message)
                if isinstance(message, bytes):
                    results = {"type": "Results", "is_final": True, "channel": {"alternatives": []}}
                    await self._send(connection, seen, json.dumps(results))
                    await self._send(connection, seen, message[::-1])
                    continue
                kind = json.loads(message).get("type")
                if kind in ("CloseStream", "Terminate"):
                    await self._send(connection, seen, self._report(seen))
                    await connection.close(1000)
                elif kind == "CloseWith":
                    order = json.loads(message)
                    await connection.close(order["code"], order["reason"])
                elif kind == "Abort":  # drop the TCP connection without a close frame
                    connection.transport.abort()
        except ConnectionClosed:
            pass
        await connection.wait_closed()
        seen.closed_ns = getattr(connection, "lost_ns", 0) or time.time_ns()
        seen.close_code, seen.close_reason = connection.close_code, connection.close_reason

    def _report(self, seen: Seen) -> str:
        seconds = self._audio_seconds(seen)
        if self.style == "assemblyai":
            session = Decimal(time.time_ns() - seen.opened_ns).scaleb(-9).quantize(Decimal("0.001"))
            return json.dumps(
                {
                    "type": "Termination",
                    "audio_duration_seconds": float(seconds),
                    "session_duration_seconds": float(session),
                }
            )
        query = seen.path.partition("?")[2]
        channels = int(dict(p.split("=", 1) for p in query.split("&") if "=" in p).get("channels", 1))
        report = {
            "type": "Metadata",
            "transaction_key": "deprecated",
            "request_id": "req-fake-1",
            "created": "2026-11-30T10:00:00.000Z",
            "duration": float(seconds),
            "channels": channels,
        }
        return json.dumps(report)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[FakeProvider]:
        async with serve(
            self._handler,
            "127.0.0.1",
            0,
            process_request=self._process_request,
            process_response=self._process_response,
            select_subprotocol=self._select,
            compression=None,
            create_connection=_Noting,
        ) as server:
            self.port = server.sockets[0].getsockname()[1]
            yield self

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"


@dataclass
class Running:
    """A proxy listening on loopback, its events in memory."""

    proxy: MeteringProxy
    transport: MemoryTransport
    sink: EventSink
    port: int

    def url(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.port}{path}"


@asynccontextmanager
async def running_proxy(options: ProxyOptions) -> AsyncIterator[Running]:
    """The proxy on a free loopback port; on exit it shuts down and delivers every event."""
    transport = MemoryTransport()
    sink = EventSink(transport, flush_seconds=0.05)
    await sink.start()
    proxy = MeteringProxy(options, sink)
    server = await proxy.listen("127.0.0.1", 0)
    try:
        yield Running(proxy, transport, sink, server.sockets[0].getsockname()[1])
    finally:
        await proxy.shutdown(server)
        await sink.aclose()


async def drain(client: ClientConnection) -> list[Message]:
    """Every message the client receives until its connection closes."""
    received: list[Message] = []
    try:
        async for message in client:
            received.append(message)
    except ConnectionClosed:
        pass
    return received


def records_of(events: list[CloudEvent]) -> dict[str, UsageRecord]:
    """The usage records talktime makes of these events, each validated as the server does."""
    found = records_from(read_events(json.dumps(event) for event in events))
    return {item.record.id: item.record for item in found}


def run(coroutine: Any) -> Any:
    """Run one scenario on a fresh event loop (bounded: a hung relay fails the test, not the suite)."""

    async def bounded() -> Any:
        return await asyncio.wait_for(coroutine, 30)

    return asyncio.run(bounded())
