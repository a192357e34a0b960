"""The WebSocket relay: a client's connection passed to the upstream and back, unchanged, while
:class:`~talktime.proxy.usage.ConnectionUsage` watches it.

One connection, start to end:

1. The client's handshake arrives. Before answering it, the proxy opens the upstream connection with the
   same path and query (less ``talktime_*`` parameters), headers (less hop headers and ``X-Talktime-*``) and
   offered subprotocols. The connection's clock starts when the upstream accepts.
2. Upstream accepted: the client is accepted with the upstream's subprotocol and response headers
   (``dg-request-id`` and the like). Upstream refused (an HTTP status) or unreachable: the attempt is
   recorded as failed and the client gets, by ``refusal``: ``close`` (default) the handshake accepted and
   closed at once with code 4000 + the upstream's status (4401, 4429, ...) or 1014 (bad gateway) when
   unreachable, with the upstream's answer as the reason, which even a browser can read; ``http`` the
   upstream's own HTTP answer (status, headers, body), as a direct connection would get it.
3. Messages are relayed both ways as they come, text as text and binary as binary, each direction in
   order; each is metered after it is sent on.
4. Whichever side closes first, the other is closed with the same code and reason (1005, no code, as no
   code; 1006, no close frame, by dropping the other connection too). The connection's clock stops when
   the upstream connection is closed. websockets answers a client's close frame itself, so the client hears
   its own code back before the upstream has answered.

Owns: the relay and its handshake. Does not own: what is measured (``usage``), where events go (``sinks``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI
from websockets.http11 import Request, Response
from websockets.protocol import Event, State
from websockets.typing import Subprotocol

from talktime.core.records import KINDS
from talktime.errors import InputError
from talktime.proxy import handshake as hs
from talktime.proxy.audio import format_from
from talktime.proxy.dialects import dialect_for
from talktime.proxy.events import Labels
from talktime.proxy.sinks import EventSink
from talktime.proxy.usage import ConnectionUsage, refused_attempt

log = logging.getLogger("talktime.proxy")
Refusal = Literal["close", "http"]
_ABNORMAL: Final = frozenset({1006, 1015})  # closed without a close frame: nothing to repeat but the drop
_NO_CODE: Final = 1005


@dataclass(frozen=True, slots=True)
class ProxyOptions:
    """How the proxy connects and labels what it records. Checked when made (an InputError names the
    option)."""

    upstream: str
    provider: str | None = None
    product: str | None = None
    kind: str | None = "stream"
    customer: str | None = None
    source: str = "talktime-proxy"
    refusal: Refusal = "close"
    gap_seconds: float = 1.0
    report_every_seconds: float = 60.0
    open_timeout: float = 10.0
    close_timeout: float = 10.0
    max_message_bytes: int = 16 * 2**20

    def __post_init__(self) -> None:
        scheme = self.upstream.split("://", 1)[0].lower() if "://" in self.upstream else ""
        if scheme not in ("ws", "wss"):
            raise InputError(f"--upstream {self.upstream!r}: must be a ws:// or wss:// URL")
        if self.kind is not None and self.kind not in KINDS:
            raise InputError(f"--kind {self.kind!r}: must be one of {', '.join(sorted(KINDS))}")
        if self.refusal not in ("close", "http"):
            raise InputError(f"--refusal {self.refusal!r}: must be close or http")
        for name in ("gap_seconds", "report_every_seconds", "open_timeout", "close_timeout"):
            if not getattr(self, name) > 0:
                raise InputError(f"{name.replace('_', '-')}: must be more than 0, got {getattr(self, name)}")


@dataclass(slots=True)
class _Attempt:
    """One client's connection between its handshake request and its handler."""

    labels: Labels
    anchor: tuple[int, int]
    upstream: ClientConnection | None = None
    usage: ConnectionUsage | None = None
    refusal: hs.Refusal | None = None
    reaper: asyncio.TimerHandle | None = field(default=None, repr=False)


def _now() -> int:
    return time.monotonic_ns()


class _Upstream(ClientConnection):
    """The upstream connection, noting when its handshake answer arrived and when its TCP connection ended:
    the provider's connection time, read as the events happen rather than when a coroutine resumes."""

    accepted_ns = 0
    lost_ns = 0

    def process_event(self, event: Event) -> None:
        if self.response is None:
            self.accepted_ns = _now()
        super().process_event(event)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost_ns = _now()
        super().connection_lost(exc)


class MeteringProxy:
    """A WebSocket proxy to one upstream that records each connection's usage as talktime events."""

    def __init__(self, options: ProxyOptions, sink: EventSink) -> None:
        self.options = options
        self.sink = sink
        self.dialect = dialect_for(options.provider)
        self._attempts: dict[ServerConnection, _Attempt] = {}
        self.active = 0  # connections being relayed now
        self.peak = 0
        self._closing = False
        self._background: set[asyncio.Task[None]] = set()

    async def listen(self, host: str, port: int) -> Server:
        """Start accepting connections on ``host:port`` (port 0: any free port); returns the server."""
        return await serve(
            self._handle,
            host,
            port,
            process_request=self._process_request,
            process_response=self._process_response,
            select_subprotocol=self._select_subprotocol,
            compression=None,
            server_header=None,
            open_timeout=self.options.open_timeout + 5,
            close_timeout=self.options.close_timeout,
            max_size=self.options.max_message_bytes,
        )

    async def shutdown(self, server: Server) -> None:
        """Stop accepting, close every connection (1001 going away, to both sides), wait for their records."""
        self._closing = True
        server.close()
        await server.wait_closed()
        if self._background:
            await asyncio.wait(self._background, timeout=self.options.close_timeout)

    # -- handshake --------------------------------------------------------------------------------------
    def _labels(self, request: Request, path_own: dict[str, str]) -> Labels:
        own = {**path_own, **hs.own_headers(request.headers.raw_items())}
        connection = uuid.uuid4().hex
        session = own.get("session") or None
        return Labels(
            connection=connection,
            subject=session or connection,
            leg=(own.get("leg") or connection) if session else None,
            source=self.options.source,
            customer=own.get("customer") or self.options.customer,
            provider=self.options.provider,
            product=self.options.product,
            kind=self.options.kind,
        )

    async def _process_request(self, client: ServerConnection, request: Request) -> Response | None:
        anchor = (time.time_ns(), _now())
        path, own = hs.strip_own_parameters(request.path)
        attempt = _Attempt(self._labels(request, own), anchor)
        self._attempts[client] = attempt
        # A client that never completes its handshake never reaches the handler: forget it then, closing
        # its upstream connection.
        reap_after = self.options.open_timeout + self.options.close_timeout + 5
        attempt.reaper = asyncio.get_running_loop().call_later(reap_after, self._reap, client)
        offered = [
            Subprotocol(p.strip())
            for h in request.headers.get_all("Sec-WebSocket-Protocol")
            for p in h.split(",")
        ]
        target = hs.upstream_url(self.options.upstream, path)
        started = _now()
        try:
            upstream = await connect(
                target,
                additional_headers=hs.forwarded(request.headers.raw_items()),
                subprotocols=offered or None,
                user_agent_header=request.headers.get("User-Agent"),
                compression=None,
                open_timeout=self.options.open_timeout,
                close_timeout=self.options.close_timeout,
                max_size=self.options.max_message_bytes,
                create_connection=_Upstream,
            )
        except InvalidStatus as error:
            answer = error.response
            attempt.refusal = hs.refused(answer.status_code, bytes(answer.body))
            return self._refuse(client, attempt, started, answer)
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as error:
            attempt.refusal = hs.unreachable(error)
            return self._refuse(client, attempt, started, None)
        opened = upstream.accepted_ns if isinstance(upstream, _Upstream) and upstream.accepted_ns else _now()
        usage = ConnectionUsage(
            attempt.labels,
            self.dialect,
            format_from(hs.query_values(path), self.dialect.default_format),
            self.sink.put,
            anchor=anchor,
            gap_ns=int(self.options.gap_seconds * 1e9),
            report_every_ns=int(self.options.report_every_seconds * 1e9),
        )
        attrs = {"upstream": hs.upstream_url(self.options.upstream, path).partition("?")[0]}
        if self.dialect.id_header and upstream.response is not None:
            request_id = upstream.response.headers.get(self.dialect.id_header)
            if request_id:
                attrs["provider_request_id"] = request_id
        usage.opened(opened, attrs)
        attempt.upstream, attempt.usage = upstream, usage
        return None

    def _refuse(
        self, client: ServerConnection, attempt: _Attempt, started: int, answer: Response | None
    ) -> Response | None:
        refusal = attempt.refusal
        assert refusal is not None
        attrs = {"refusal": refusal.detail, "client_close_code": str(refusal.close_code)}
        if self.options.refusal == "http":
            attrs["client_close_code"] = "none (HTTP answer)"
        refused_attempt(
            attempt.labels, self.sink.put, anchor=attempt.anchor, started=started, ended=_now(), attrs=attrs
        )
        log.info("upstream refused %s: %s", attempt.labels.connection, refusal.detail)
        if self.options.refusal == "close":
            return None  # accepted; the handler closes it with the refusal's code
        self._forget(client)
        if answer is None:
            return client.respond(502 if refusal.status is None else refusal.status, refusal.detail + "\n")
        headers = Headers(hs.forwarded(answer.headers.raw_items()))
        return Response(answer.status_code, answer.reason_phrase, headers, bytes(answer.body))

    def _select_subprotocol(
        self, client: ServerConnection, offered: Sequence[Subprotocol]
    ) -> Subprotocol | None:
        attempt = self._attempts.get(client)
        if attempt is not None and attempt.upstream is not None:
            return attempt.upstream.subprotocol
        return offered[0] if offered else None  # refused: accept whatever was offered, to send the close

    def _process_response(self, client: ServerConnection, request: Request, response: Response) -> None:
        attempt = self._attempts.get(client)
        if attempt is None:
            return
        if response.status_code != 101 or client.state is not State.CONNECTING:
            self._reap(client)  # the client's own handshake failed, or it went away while we waited
            return
        if attempt.upstream is not None and attempt.upstream.response is not None:
            for name, value in hs.forwarded(attempt.upstream.response.headers.raw_items()):
                response.headers[name] = value

    def _forget(self, client: ServerConnection) -> _Attempt | None:
        attempt = self._attempts.pop(client, None)
        if attempt is not None and attempt.reaper is not None:
            attempt.reaper.cancel()
        return attempt

    def _reap(self, client: ServerConnection) -> None:
        """Close the upstream of a client that went away during its handshake (recorded as canceled)."""
        attempt = self._forget(client)
        if attempt is None or attempt.upstream is None or attempt.usage is None:
            return
        upstream, usage = attempt.upstream, attempt.usage

        async def close() -> None:
            await upstream.close(1001, "client went away")
            usage.closed(_now(), "canceled", {"closed_by": "client", "close_code": "handshake not completed"})

        task = asyncio.get_running_loop().create_task(close())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- relay ------------------------------------------------------------------------------------------
    async def _handle(self, client: ServerConnection) -> None:
        attempt = self._forget(client)
        if attempt is None or attempt.upstream is None or attempt.usage is None:
            refusal = attempt.refusal if attempt is not None else None
            if refusal is None:
                await client.close(1011, "talktime proxy: no upstream connection")
            else:
                await client.close(refusal.close_code, refusal.close_reason)
            return
        self.active += 1
        self.peak = max(self.peak, self.active)
        try:
            await self._relay(client, attempt.upstream, attempt.usage)
        finally:
            self.active -= 1

    async def _relay(
        self, client: ServerConnection, upstream: ClientConnection, usage: ConnectionUsage
    ) -> None:
        up = asyncio.create_task(_pump(client, upstream, usage.from_client))
        down = asyncio.create_task(_pump(upstream, client, usage.from_upstream))
        attrs = {"closed_by": "proxy", "close_code": "1011", "close_reason": "talktime proxy error"}
        ended = 0
        try:
            first, ended = await _first_closed(up, down, client, upstream)
            code, reason = _close_of(first) if first is not None else (1011, "")
            by = "upstream" if first is upstream else ("proxy" if self._closing else "client")
            attrs = {"closed_by": by, "close_code": str(code), "close_reason": reason}
            if first is upstream:
                await _close_like(client, code, reason)
            else:
                await _close_like(upstream, code, reason)
                ended = _now()
            if isinstance(upstream, _Upstream) and upstream.lost_ns:
                ended = upstream.lost_ns
            await _settle({up, down}, self.options.close_timeout)
        except BaseException:
            up.cancel()
            down.cancel()
            await _close_like(upstream, 1011, "talktime proxy error")
            ended = _now()
            raise
        finally:
            usage.closed(ended or _now(), "completed", {k: v for k, v in attrs.items() if v})


async def _first_closed(
    up: asyncio.Task[tuple[bool, int]],
    down: asyncio.Task[tuple[bool, int]],
    client: ServerConnection,
    upstream: ClientConnection,
) -> tuple[ServerConnection | ClientConnection | None, int]:
    """The connection that closed first and when (the upstream when both did at once)."""
    pending: set[asyncio.Task[tuple[bool, int]]] = {up, down}
    while pending:
        done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        for task, source in ((down, upstream), (up, client)):
            if task in done and task.result()[0]:
                return source, task.result()[1]
    return None, _now()  # neither source closed first: both targets failed (not seen in practice)


async def _pump(
    source: ServerConnection | ClientConnection,
    target: ServerConnection | ClientConnection,
    observe: Callable[[str | bytes, int], None],
) -> tuple[bool, int]:
    """Relay ``source`` to ``target`` in order. Returns (True, when) when ``source`` closed, (False, when)
    when ``target`` could take no more."""
    try:
        async for message in source:
            now = _now()
            try:
                await target.send(message)
            except ConnectionClosed:
                return False, _now()
            observe(message, now)
    except ConnectionClosed:  # closed without a proper close handshake (1006 and the like)
        pass
    return True, _now()


def _close_of(connection: ServerConnection | ClientConnection) -> tuple[int, str]:
    """The close code and reason ``connection``'s peer sent (1006 when it sent none)."""
    code = connection.close_code
    return (1006 if code is None else code), connection.close_reason or ""


async def _close_like(target: ServerConnection | ClientConnection, code: int, reason: str) -> None:
    """Close ``target`` the way its peer's connection was closed."""
    if code in _ABNORMAL:
        target.transport.abort()
        await target.wait_closed()
    elif code == _NO_CODE:
        # An empty close frame, as received: websockets sends one for code None (its type says int).
        await target.close(None, "")  # type: ignore[arg-type]
    else:
        await target.close(code, hs.reason_text(reason))


async def _settle(tasks: set[asyncio.Task[tuple[bool, int]]], timeout: float) -> None:
    """Wait for both pumps to end (their connections are closing), cancelling any still running after
    ``timeout``."""
    _, late = await asyncio.wait(tasks, timeout=timeout)
    for task in late:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def run(
    options: ProxyOptions,
    sink: EventSink,
    host: str,
    port: int,
    stop: Awaitable[object],
    ready: Callable[[MeteringProxy, Server], None] | None = None,
) -> MeteringProxy:
    """Serve until ``stop`` completes, then close every connection and deliver the events."""
    proxy = MeteringProxy(options, sink)
    await sink.start()
    try:
        server = await proxy.listen(host, port)
        if ready is not None:
            ready(proxy, server)
        try:
            await stop
        finally:
            await proxy.shutdown(server)
    finally:
        await sink.aclose()
    return proxy
