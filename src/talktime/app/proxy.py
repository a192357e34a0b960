"""``proxy``: a WebSocket metering proxy in front of a streaming STT or voice-agent provider, relaying each
connection unchanged and recording its usage as events (to a talktime server, or a JSON Lines file).

:func:`prepare` checks every input before :func:`relay` changes anything about the process; the face
passes ``ready``, told the addresses the proxy listens on. The relay itself is :mod:`talktime.proxy`'s
(this module loads websockets: a face imports it when the proxy runs).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import resource
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from talktime.errors import InputError
from talktime.proxy import EventSink, HttpTransport, JsonLinesTransport, ProxyOptions, run

if TYPE_CHECKING:
    from websockets.asyncio.server import Server

    from talktime.proxy.relay import MeteringProxy
    from talktime.proxy.sinks import Transport

__all__ = ["ProxyOptions", "Relay", "loop_factory", "prepare", "relay"]

LoopFactory = Callable[[], asyncio.AbstractEventLoop] | None


@dataclass(frozen=True, slots=True)
class Relay:
    """A proxy ready to run: its options, where its events go, and the event loop it runs on."""

    options: ProxyOptions
    sink: EventSink
    loop: LoopFactory


def prepare(options: ProxyOptions, events: str, key: str | None, spill: Path, loop: str) -> Relay:
    """``events`` (a talktime server's URL, which needs ``key``, or a JSON Lines file path) and ``loop``
    checked; events a server refuses or cannot take in time go to ``spill``."""
    transport = _transport(events, key)
    sink = EventSink(transport, spill=spill if isinstance(transport, HttpTransport) else None)
    return Relay(options, sink, loop_factory(loop))


def _transport(events: str, key: str | None) -> Transport:
    if events.startswith(("http://", "https://")):
        if not key:
            raise InputError(f"--events {events}: a talktime server needs --key (or TALKTIME_API_KEY)")
        return HttpTransport(events, key)
    return JsonLinesTransport(Path(events))


def loop_factory(name: str) -> LoopFactory:
    """The event loop to relay on: with uvloop (libuv) the proxy took about 13% less CPU per relayed message
    than on asyncio's own loop (``make bench-proxy``); ``auto`` uses it when it is installed."""
    if name not in ("auto", "asyncio", "uvloop"):
        raise InputError(f"--loop {name!r}: must be auto, asyncio or uvloop")
    if name == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if name == "uvloop":
            raise InputError("--loop uvloop: uvloop is not installed (pip install uvloop)") from None
        return None
    return uvloop.new_event_loop


def relay(prepared: Relay, host: str, port: int, ready: Callable[[list[str]], None]) -> None:
    """Listen on ``host``:``port`` until SIGINT or SIGTERM, then close every connection and deliver the
    events; ``ready`` is given the ``ws://`` addresses once the proxy listens."""
    _raise_open_files_limit()
    # Start-up objects (a CLI imports every command's modules) out of the cyclic collector: a full
    # collection walking them took ~30 ms, a pause every relayed message behind it would wait out.
    gc.collect()
    gc.freeze()
    with asyncio.Runner(loop_factory=prepared.loop) as runner:
        runner.run(_serve(prepared, host, port, ready))


def _raise_open_files_limit() -> None:
    """Two sockets per proxied connection: let the process hold as many as the hard limit allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def _serve(prepared: Relay, host: str, port: int, ready: Callable[[list[str]], None]) -> None:
    stop = asyncio.Event()
    for number in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(number, stop.set)

    def listening(_: MeteringProxy, server: Server) -> None:
        ready([f"ws://{s.getsockname()[0]}:{s.getsockname()[1]}" for s in server.sockets])

    try:
        await run(prepared.options, prepared.sink, host, port, stop.wait(), listening)
    except OSError as error:
        raise InputError(f"--listen {host}:{port}: {error.strerror or error}") from None
