"""``talktime proxy``: a WebSocket metering proxy in front of a streaming STT or voice-agent provider.

The proxy package (and websockets) is imported when the command runs, so other commands never load it.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import resource
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from talktime.cli.guard import guarded
from talktime.errors import InputError

if TYPE_CHECKING:
    from websockets.asyncio.server import Server

    from talktime.proxy import EventSink, ProxyOptions
    from talktime.proxy.relay import MeteringProxy
    from talktime.proxy.sinks import Transport


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8765`` for IPv6) as a host and a port.

    >>> parse_listen("127.0.0.1:8765"), parse_listen("[::1]:0")
    (('127.0.0.1', 8765), ('::1', 0))
    """
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise InputError(f"--listen {value!r}: write HOST:PORT, e.g. 127.0.0.1:8765")
    return host.strip("[]") or "127.0.0.1", int(port)


def _transport(events: str, key: str | None) -> Transport:
    from talktime.proxy import HttpTransport, JsonLinesTransport

    if events.startswith(("http://", "https://")):
        if not key:
            raise InputError(f"--events {events}: a talktime server needs --key (or TALKTIME_API_KEY)")
        return HttpTransport(events, key)
    return JsonLinesTransport(Path(events))


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
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


def _raise_open_files_limit() -> None:
    """Two sockets per proxied connection: let the process hold as many as the hard limit allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def proxy(
    upstream: str = typer.Option(
        ..., "--upstream", help="The provider's WebSocket base URL, e.g. wss://api.deepgram.com."
    ),
    listen: str = typer.Option("127.0.0.1:8765", "--listen", help="HOST:PORT to accept clients on."),
    events: str = typer.Option(
        ...,
        "--events",
        help="Where the events go: a talktime server URL (http://HOST:PORT) or a JSON Lines file path.",
    ),
    key: str | None = typer.Option(
        None, "--key", envvar="TALKTIME_API_KEY", help="API key of the talktime server (--events URL)."
    ),
    spill: Path = typer.Option(
        Path("talktime-proxy-unsent.jsonl"),
        "--spill",
        help="Events the server refused or could not take in time, as JSON Lines (--events URL).",
    ),
    provider: str | None = typer.Option(
        None,
        "--provider",
        help="Record's provider; deepgram and assemblyai also pick the protocol's messages.",
    ),
    product: str | None = typer.Option(None, "--product", help="Record's product, e.g. stt-streaming."),
    kind: str = typer.Option("stream", "--kind", help="Record kind (stream, agent, ...)."),
    customer: str | None = typer.Option(
        None, "--customer", help="Customer, unless the client sends X-Talktime-Customer."
    ),
    source: str = typer.Option("talktime-proxy", "--source", help="CloudEvents source of the events."),
    refusal: str = typer.Option(
        "close",
        "--refusal",
        help="An upstream refusal reaches the client as: close (code 4000+HTTP status, 1014 unreachable) "
        "or http (the upstream's own HTTP answer).",
    ),
    gap: float = typer.Option(1.0, "--gap", help="Seconds between audio messages counted as a gap."),
    report_every: float = typer.Option(
        60.0, "--report-every", help="Seconds between running audio totals of a long connection."
    ),
    open_timeout: float = typer.Option(10.0, "--open-timeout", help="Seconds to wait for the upstream."),
    loop: str = typer.Option(
        "auto", "--loop", help="Event loop: auto (uvloop when installed, else asyncio), asyncio or uvloop."
    ),
) -> None:
    """Relay WebSocket connections to a streaming provider unchanged, recording each one's usage as events."""

    def start() -> None:
        from talktime.proxy import EventSink, HttpTransport, ProxyOptions

        host, port = parse_listen(listen)
        options = ProxyOptions(
            upstream=upstream,
            provider=provider,
            product=product,
            kind=kind,
            customer=customer,
            source=source,
            refusal=refusal,  # type: ignore[arg-type]  # checked by ProxyOptions
            gap_seconds=gap,
            report_every_seconds=report_every,
            open_timeout=open_timeout,
        )
        transport = _transport(events, key)
        sink = EventSink(transport, spill=spill if isinstance(transport, HttpTransport) else None)
        factory = loop_factory(loop)  # every option checked before anything below changes the process
        logging.basicConfig(level=logging.WARNING, format="talktime proxy: %(message)s", stream=sys.stderr)
        _raise_open_files_limit()
        # Start-up objects (this CLI imports every command's modules) out of the cyclic collector: a full
        # collection walking them took ~30 ms, a pause every relayed message behind it would wait out.
        gc.collect()
        gc.freeze()
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(_serve(options, sink, host, port, events))

    guarded(start)


async def _serve(options: ProxyOptions, sink: EventSink, host: str, port: int, events: str) -> None:
    from talktime.proxy import run

    stop = asyncio.Event()
    for number in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(number, stop.set)

    def ready(_: MeteringProxy, server: Server) -> None:
        where = ", ".join(f"ws://{s.getsockname()[0]}:{s.getsockname()[1]}" for s in server.sockets)
        print(
            f"talktime proxy: {where} -> {options.upstream}; events to {events}", file=sys.stderr, flush=True
        )

    try:
        await run(options, sink, host, port, stop.wait(), ready)
    except OSError as error:
        raise InputError(f"--listen {host}:{port}: {error.strerror or error}") from None
