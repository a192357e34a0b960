"""``talktime proxy``: a WebSocket metering proxy in front of a streaming STT or voice-agent provider
(:mod:`talktime.app.proxy`).

The proxy (and websockets) is imported when the command runs, so other commands never load it.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import typer

from talktime.cli.guard import guarded
from talktime.errors import InputError


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8765`` for IPv6) as a host and a port.

    >>> parse_listen("127.0.0.1:8765"), parse_listen("[::1]:0")
    (('127.0.0.1', 8765), ('::1', 0))
    """
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise InputError(f"--listen {value!r}: write HOST:PORT, e.g. 127.0.0.1:8765")
    return host.strip("[]") or "127.0.0.1", int(port)


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
        from talktime.app.proxy import ProxyOptions, prepare, relay

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
        prepared = prepare(
            options, events, key, spill, loop
        )  # every option checked before the process changes
        logging.basicConfig(level=logging.WARNING, format="talktime proxy: %(message)s", stream=sys.stderr)

        def ready(addresses: list[str]) -> None:
            where = ", ".join(addresses)
            print(f"talktime proxy: {where} -> {upstream}; events to {events}", file=sys.stderr, flush=True)

        relay(prepared, host, port, ready)

    guarded(start)
