"""WebSocket metering proxy benchmark: the latency `talktime proxy` adds per message on loopback, and how many
connections it holds at once. Bounded in messages, connections and time.

Three processes: an upstream (a websockets server that answers each message with the monotonic times it
received and sent it, then the message), a real `talktime proxy` in front of it (events to a JSON Lines
file), and this client. Linux's monotonic clock is one clock for every process, so each message's one-way
time is measured in each direction: client -> upstream (up) and upstream -> client (down), first directly,
then through the proxy, in alternating rounds. Added latency = proxied - direct, at p50 and p99.
Then it opens N connections through the proxy, each sending a 20 ms audio message every --hold-interval
seconds, and prints how many are held at once, the proxy's memory, and a probe's latency while they are.

    .venv/bin/python benchmarks/bench_proxy.py --messages 10000 --connections 2000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve

CHUNK = bytes(640)  # 20 ms of 16 kHz mono linear16
STAMP = struct.Struct("<qq")  # upstream's receive and send times, monotonic ns
PATH = "/v1/listen?encoding=linear16&sample_rate=16000&channels=1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def raise_open_files() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# -- the upstream ---------------------------------------------------------------------------------------
async def upstream_main(port: int) -> None:
    async def answer(connection: ServerConnection) -> None:
        async for message in connection:
            received = time.monotonic_ns()
            body = message if isinstance(message, bytes) else message.encode()
            await connection.send(STAMP.pack(received, time.monotonic_ns()) + body)

    async with serve(answer, "127.0.0.1", port, compression=None, max_queue=None):
        await asyncio.Future()


# -- the client -----------------------------------------------------------------------------------------
async def ping(client: ClientConnection) -> tuple[int, int]:
    """One message there and its answer back: (up ns, down ns)."""
    sent = time.monotonic_ns()
    await client.send(CHUNK)
    reply = await client.recv()
    back = time.monotonic_ns()
    assert isinstance(reply, bytes)
    received, answered = STAMP.unpack_from(reply)
    return received - sent, back - answered


async def latency(url: str, count: int) -> tuple[list[int], list[int]]:
    ups, downs = [], []
    async with connect(url, compression=None) as client:
        for _ in range(min(200, count)):  # warm-up, not counted
            await ping(client)
        for _ in range(count):
            up, down = await ping(client)
            ups.append(up)
            downs.append(down)
    return ups, downs


def pct(values: list[int], q: float) -> float:
    """The q-quantile in microseconds."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] / 1000


async def hold(
    url: str, direct_url: str, count: int, interval: float, seconds: float, probe: int
) -> dict[str, Any]:
    """Open ``count`` connections through the proxy, keep them streaming, and meanwhile measure a probe's
    latency directly and through the proxy (this client is loaded by the held connections too)."""
    connections: list[ClientConnection] = []
    failures = 0
    started = time.monotonic()
    for first in range(0, count, 100):
        opened = await asyncio.gather(
            *(connect(url, compression=None, open_timeout=30) for _ in range(first, min(count, first + 100))),
            return_exceptions=True,
        )
        connections += [c for c in opened if isinstance(c, ClientConnection)]
        failures += sum(1 for c in opened if not isinstance(c, ClientConnection))
    open_seconds = time.monotonic() - started
    stop = asyncio.Event()

    async def stream(client: ClientConnection, offset: float) -> None:
        await asyncio.sleep(offset)
        while not stop.is_set():
            await client.send(CHUNK)
            await client.recv()
            await asyncio.sleep(interval)

    streams = [
        asyncio.create_task(stream(c, i * interval / max(1, len(connections))))
        for i, c in enumerate(connections)
    ]
    await asyncio.sleep(min(seconds, interval * 2))
    direct_ups, direct_downs = await latency(direct_url, probe)
    ups, downs = await latency(url, probe)
    await asyncio.sleep(max(0.0, seconds - interval * 2))
    alive = sum(1 for c in connections if c.close_code is None)
    stop.set()
    await asyncio.gather(*streams, return_exceptions=True)
    await asyncio.gather(*(c.close() for c in connections), return_exceptions=True)
    return {
        "requested": count,
        "held": alive,
        "failed_to_open": failures,
        "open_seconds": round(open_seconds, 2),
        "probe_messages": probe,
        **{
            f"probe_{path}_{direction}_{label}_us": round(pct(values, q), 1)
            for path, (up, down) in (("direct", (direct_ups, direct_downs)), ("proxied", (ups, downs)))
            for direction, values in (("up", up), ("down", down))
            for q, label in ((0.5, "p50"), (0.99, "p99"))
        },
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds the process has used (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def start_proxy(upstream_port: int, events: Path, loop: str = "auto") -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    command = [
        sys.executable, "-m", "talktime", "proxy",
        "--listen", f"127.0.0.1:{port}",
        "--upstream", f"ws://127.0.0.1:{upstream_port}",
        "--events", str(events),
        "--provider", "deepgram", "--product", "stt-streaming",
        "--loop", loop,
    ]  # fmt: skip
    process = subprocess.Popen(command, stderr=subprocess.PIPE)
    assert process.stderr is not None
    banner = process.stderr.readline().decode()
    if not banner.startswith("talktime proxy:"):
        raise SystemExit(f"the proxy did not start: {banner}")
    return process, f"ws://127.0.0.1:{port}"


async def client_main(
    args: argparse.Namespace, upstream_port: int, proxy_url: str, proxy_pid: int
) -> dict[str, Any]:
    direct_url = f"ws://127.0.0.1:{upstream_port}{PATH}"
    proxied_url = f"{proxy_url}{PATH}"
    samples: dict[str, list[int]] = {"direct_up": [], "direct_down": [], "proxied_up": [], "proxied_down": []}
    per_round = max(1, args.messages // args.rounds)
    proxy_cpu = 0.0
    for _ in range(args.rounds):  # alternate, so a busy moment of the machine hits both alike
        for name, url in (("direct", direct_url), ("proxied", proxied_url)):
            before = cpu_seconds(proxy_pid)
            ups, downs = await latency(url, per_round)
            proxy_cpu += cpu_seconds(proxy_pid) - before if name == "proxied" else 0.0
            samples[f"{name}_up"] += ups
            samples[f"{name}_down"] += downs
    relayed = 2 * (per_round + min(200, per_round)) * args.rounds  # each ping crosses twice, warm-up included
    result: dict[str, Any] = {
        "messages_per_path": per_round * args.rounds,
        "message_bytes": len(CHUNK),
        "proxy_cpu_us_per_relayed_message": round(proxy_cpu / relayed * 1e6, 1),
    }
    for direction in ("up", "down"):
        direct, proxied = samples[f"direct_{direction}"], samples[f"proxied_{direction}"]
        for q, label in ((0.5, "p50"), (0.99, "p99")):
            result[f"{direction}_direct_{label}_us"] = round(pct(direct, q), 1)
            result[f"{direction}_proxied_{label}_us"] = round(pct(proxied, q), 1)
            result[f"{direction}_added_{label}_us"] = round(pct(proxied, q) - pct(direct, q), 1)
        result[f"{direction}_direct_mean_us"] = round(statistics.fmean(direct) / 1000, 1)
        result[f"{direction}_proxied_mean_us"] = round(statistics.fmean(proxied) / 1000, 1)
    idle_rss = rss_kib(proxy_pid)
    probe = min(2000, args.messages)
    held = await hold(proxied_url, direct_url, args.connections, args.hold_interval, args.hold_seconds, probe)
    peak_rss = int(Path(f"/proc/{proxy_pid}/status").read_text().split("VmHWM:")[1].split()[0])
    held["proxy_rss_idle_mib"] = round(idle_rss / 1024, 1)
    held["proxy_rss_peak_mib"] = round(peak_rss / 1024, 1)
    held["proxy_kib_per_connection"] = round((peak_rss - idle_rss) / max(1, held["held"]), 1)
    result["held"] = held
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10000, help="messages per path (direct, proxied)")
    parser.add_argument("--rounds", type=int, default=5, help="alternating direct/proxied rounds")
    parser.add_argument("--connections", type=int, default=2000, help="connections to hold at once")
    parser.add_argument(
        "--hold-interval", type=float, default=1.0, help="seconds between a held connection's messages"
    )
    parser.add_argument("--hold-seconds", type=float, default=10.0, help="how long to hold them")
    parser.add_argument("--proxy-loop", default="auto", help="the proxy's --loop: auto, asyncio or uvloop")
    parser.add_argument("--serve-upstream", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    raise_open_files()
    if args.serve_upstream:
        asyncio.run(upstream_main(args.serve_upstream))
        return
    upstream_port = free_port()
    upstream = subprocess.Popen([sys.executable, __file__, "--serve-upstream", str(upstream_port)])
    with tempfile.TemporaryDirectory() as scratch:
        events = Path(scratch) / "events.jsonl"
        proxy = None
        try:
            for _ in range(300):  # wait for the upstream to listen
                with socket.socket() as sock:
                    if sock.connect_ex(("127.0.0.1", upstream_port)) == 0:
                        break
                time.sleep(0.02)
            proxy, proxy_url = start_proxy(upstream_port, events, args.proxy_loop)
            print(f"cores: {os.cpu_count()} (shared), proxy --loop {args.proxy_loop}; ...", file=sys.stderr)
            result = asyncio.run(client_main(args, upstream_port, proxy_url, proxy.pid))
        finally:
            if proxy is not None:
                proxy.send_signal(signal.SIGTERM)
                proxy.wait(60)
            upstream.terminate()
            upstream.wait(10)
        lines = events.read_text().splitlines() if events.exists() else []
        closed = sum(1 for line in lines if '"talktime.connection.closed"' in line)
        result["connections_recorded"] = closed
    report(result)


def report(result: dict[str, Any]) -> None:
    count, size = result["messages_per_path"], result["message_bytes"]
    print(
        f"latency per message on loopback, {count} messages of {size} B each way (goal: added p99 <= 1 ms):"
    )
    for direction, words in (("up", "client -> upstream"), ("down", "upstream -> client")):
        r = {key.removeprefix(f"{direction}_"): value for key, value in result.items()}
        print(
            f"  {words}: direct p50 {r['direct_p50_us']} us, p99 {r['direct_p99_us']} us; "
            f"proxied p50 {r['proxied_p50_us']} us, p99 {r['proxied_p99_us']} us; "
            f"added p50 {r['added_p50_us']} us, p99 {r['added_p99_us']} us"
        )
    print(
        f"  proxy CPU per relayed message: {result['proxy_cpu_us_per_relayed_message']} us "
        "(user + system, handshakes included; moves less than latency when the machine is shared)"
    )
    h = result["held"]
    print(
        f"connections held at once: {h['held']} of {h['requested']} (opened in {h['open_seconds']} s, "
        f"{h['failed_to_open']} failed); proxy RSS {h['proxy_rss_idle_mib']}->{h['proxy_rss_peak_mib']} MiB "
        f"(~{h['proxy_kib_per_connection']} KiB per connection)"
    )
    for direction in ("up", "down"):
        p = {key.removeprefix("probe_"): value for key, value in h.items()}
        print(
            f"  while held, {h['probe_messages']} probe messages {direction}: "
            f"direct p50 {p[f'direct_{direction}_p50_us']} us p99 {p[f'direct_{direction}_p99_us']} us; "
            f"proxied p50 {p[f'proxied_{direction}_p50_us']} us p99 {p[f'proxied_{direction}_p99_us']} us"
        )
    print(f"connections recorded (connection.closed events): {result['connections_recorded']}")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
