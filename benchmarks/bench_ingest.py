"""Ingestion load test: a real `talktime serve` on loopback with the embedded (DuckDB file) store, fed
pre-serialised CloudEvents batches by a few keep-alive clients. Bounded in time and in events.

Prints sustained accepted events/s (durable store, dedup on: every batch is committed before the answer),
p50/p99 latency per batch, and the server's peak memory (VmHWM). Then, in-process, where the time of one
batch goes (parse, validate, store), and the memory of the store's in-memory hash sets at ``--hashes-at``
stored events (10 million by default), with the CPU to build them and to check one batch.

    .venv/bin/python benchmarks/bench_ingest.py --seconds 20 --max-events 2000000 --batch 10000 --clients 2

Compare CPU seconds per 10,000 events (``server_cpu_s_per_10k``): on a machine shared with other work,
events/s move with the load. Figures (2 cores, load average 4-5.6, ``--seconds 15 --clients 2``, the code
before and after the Arrow record conversion, the hashes computed once per batch and a leaner fast check,
runs alternated): one process 0.241 and 0.260 before, 0.198 and 0.197 after; ``--workers 2``, the server
process 0.131 and 0.159 before, 0.110 and 0.110 after (workers 0.154 and 0.171 before, 0.121 and 0.122
after); at load average 1.6-3, one run each, 0.229 before and 0.182 after in one process, 0.127 and 0.099
with ``--workers 2``. With the hashes computed in Python where a batch is decoded (and the simple fold),
against the code before and the store of events alone (commit f1c3b41, before records were kept), all
three alternated by this load generator with ``--server-only`` and ``PYTHONPATH=OTHER/src`` (load average
3.2-9.8, two rounds): one process 0.179 and 0.178 before, 0.176 and 0.174 after, events alone 0.094 and
0.105; ``--workers 2``, the server process 0.098 and 0.102 before, 0.084 and 0.086 after, events alone
0.043 and 0.040 (docs/ingest.md, "Limits known today", has every run).

``--kind lifecycle``: calls opened and, in the next batch, closed (``make_lifecycle_batch``), the shape a
voice framework sends; each record is folded by ``sessionize`` when it opens and again when it closes.
``--seconds 15 --clients 2 --max-events 600000``, one process, the code before and after the fold's
one-list-per-type pass and the one-pass record rows, alternated (load average 3.2-5): 0.501 and 0.512
before, 0.421 and 0.413 after; before and after the simple fold and the hashes in Python, four runs each
(load average 3.2-9.8): 0.446, 0.448, 0.428 and 0.441 before, 0.402, 0.379, 0.422 and 0.392 after (the
events-only store, which folded nothing, 0.069-0.077).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import orjson

BATCH = "application/cloudevents-batch+json"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_batch(number: int, size: int) -> bytes:
    """A batch of talktime.record events, unique ids, a realistic mix of fields."""
    events = []
    for i in range(size):
        n = number * size + i
        events.append(
            {
                "specversion": "1.0",
                "id": f"ev-{n}",
                "source": "/bench/platform",
                "type": "talktime.record",
                "time": "2025-03-01T10:01:00Z",
                "subject": f"call-{n // 2}",
                "data": {
                    "id": f"leg-{n}",
                    "customer": f"cust-{n % 50}",
                    "provider": "twilio",
                    "kind": "leg",
                    "started_at": "2025-03-01T10:00:00Z",
                    "answered_at": "2025-03-01T10:00:04.5Z",
                    "ended_at": "2025-03-01T10:00:52.3Z",
                    "provider_reported_seconds": 48,
                },
            }
        )
    return orjson.dumps(events)


def make_lifecycle_batch(number: int, size: int) -> bytes:
    """Batch ``number`` of lifecycle events, the shape a voice framework sends: ``size // 2`` calls opened
    (customer, provider and kind in the data) and the previous batch's calls closed, so every record is
    made from its opened event and re-derived when its closed event comes (the first batch opens only)."""
    half = size // 2
    events = []
    for call in range(number * half, (number + 1) * half):
        events.append(
            {
                "specversion": "1.0",
                "id": f"o-{call}",
                "source": "/bench/agent",
                "type": "talktime.connection.opened",
                "time": f"2025-03-01T10:{call // 60 % 60:02d}:{call % 60:02d}Z",
                "subject": f"call-{call}",
                "data": {"customer": f"cust-{call % 50}", "provider": "twilio", "kind": "leg"},
            }
        )
    for call in range((number - 1) * half, number * half) if number else ():
        events.append(
            {
                "specversion": "1.0",
                "id": f"c-{call}",
                "source": "/bench/agent",
                "type": "talktime.connection.closed",
                "time": f"2025-03-01T11:{call // 60 % 60:02d}:{call % 60:02d}Z",
                "subject": f"call-{call}",
                "data": {},
            }
        )
    return orjson.dumps(events)


def peak_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def children(pid: int) -> list[int]:
    """The server's worker processes (``--workers``)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found.extend(int(c) for c in (task / "children").read_text().split())
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def in_process_profile(size: int, maker: Callable[[int, int], bytes]) -> dict[str, float]:
    """Seconds per stage for one batch of ``size`` events, in this process (no HTTP), on a warm store."""
    from talktime.app import service
    from talktime.ingest.fastpath import quick_check
    from talktime.store import open_store

    body = maker(10_000_001, size)
    with tempfile.TemporaryDirectory() as folder:
        store = open_store(str(Path(folder) / "p.duckdb"))
        service.ingest(store, "t", orjson.loads(maker(10_000_000, size)))  # warm: table exists
        t0 = time.perf_counter()
        items = orjson.loads(body)
        t1 = time.perf_counter()
        checked = [quick_check(item) for item in items]
        t2 = time.perf_counter()
        result = service.ingest(store, "t", items)
        t3 = time.perf_counter()
        answer = orjson.dumps(result.as_dict())
        t4 = time.perf_counter()
        store.close()
    assert all(checked) and len(answer) > 0
    return {"parse": t1 - t0, "fast_check": t2 - t1, "ingest_with_store": t3 - t2, "answer_json": t4 - t3}


def hashes_in_memory(count: int) -> dict[str, float]:
    """The embedded store's hash sets (talktime.store.hash_set) at ``count`` stored events, each one record:
    memory, and the CPU to build them (at the first batch after a start) and to check a 10,000-event batch."""
    import numpy as np

    from talktime.store.hash_set import HashSet

    rng = np.random.default_rng(1)
    began = time.process_time()
    sets = [HashSet(rng.integers(0, 2**64, count, dtype=np.uint64)) for _ in ("events", "records")]
    built = time.process_time() - began
    batch = rng.integers(0, 2**64, 10_000, dtype=np.uint64)
    began = time.process_time()
    for _ in range(10):
        for known in sets:
            known.contains(batch)
    checked = (time.process_time() - began) / 10
    return {
        "stored_events": count,
        "memory_mib": round(sum(known.nbytes for known in sets) / 2**20, 1),
        "build_cpu_s": round(built, 2),
        "check_per_10k_batch_ms": round(checked * 1000, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="stop after this long")
    parser.add_argument("--max-events", type=int, default=2_000_000, help="stop after this many events")
    parser.add_argument("--batch", type=int, default=10_000, help="events per request")
    parser.add_argument("--clients", type=int, default=2, help="concurrent keep-alive connections")
    parser.add_argument("--workers", type=int, default=0, help="talktime serve --workers")
    parser.add_argument(
        "--hashes-at",
        type=int,
        default=10_000_000,
        help="print the in-memory hash sets' size at this many events",
    )
    parser.add_argument(
        "--kind",
        choices=["records", "lifecycle"],
        default="records",
        help="talktime.record events (default), or calls opened and closed (make_lifecycle_batch)",
    )
    parser.add_argument(
        "--server-only",
        action="store_true",
        help="only the served figures (no in-process profile or hash sets, which import talktime here): "
        "to compare other code with this load generator, PYTHONPATH=OTHER/src",
    )
    args = parser.parse_args()

    batches = max(1, args.max_events // args.batch)
    print(f"preparing {batches} batches of {args.batch} events ...", file=sys.stderr)
    maker = make_lifecycle_batch if args.kind == "lifecycle" else make_batch
    bodies = [maker(n, args.batch) for n in range(batches)]

    folder = tempfile.mkdtemp(prefix="talktime-bench-")
    store_path = str(Path(folder) / "events.duckdb")
    key = (
        subprocess.run(
            [sys.executable, "-m", "talktime", "keys", "create", "bench", "--store", store_path],
            capture_output=True,
            text=True,
            check=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    port = free_port()
    server = subprocess.Popen(
        [
            *(sys.executable, "-m", "talktime", "serve", "--store", store_path, "--port", str(port)),
            *("--workers", str(args.workers)),
        ],
        stdout=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            httpx.get(base + "/openapi.json", timeout=1)
            break
        except httpx.TransportError:
            time.sleep(0.1)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": BATCH}
    latencies: list[float] = []
    accepted = duplicate = rejected = 0
    lock = threading.Lock()
    next_batch = iter(range(batches))
    deadline = time.perf_counter() + args.seconds

    def client() -> None:
        nonlocal accepted, duplicate, rejected
        with httpx.Client(base_url=base, headers=headers, timeout=120) as http:
            while time.perf_counter() < deadline:
                with lock:
                    number = next(next_batch, None)
                if number is None:
                    return
                started = time.perf_counter()
                answer = http.post("/v1/events", content=bodies[number])
                took = time.perf_counter() - started
                body = answer.json()
                with lock:
                    latencies.append(took)
                    accepted += body["accepted"]
                    duplicate += body["duplicate"]
                    rejected += body["rejected"]

    load_before = os.getloadavg()[0]
    workers = children(server.pid)
    server_cpu = cpu_seconds(server.pid)
    worker_cpu = sum(cpu_seconds(w) for w in workers)
    own_cpu = sum(os.times()[:2])
    began = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(args.clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    server_cpu = cpu_seconds(server.pid) - server_cpu
    worker_cpu = sum(cpu_seconds(w) for w in workers) - worker_cpu
    worker_peak = sum(peak_kib(w) for w in workers)
    own_cpu = sum(os.times()[:2]) - own_cpu
    peak = peak_kib(server.pid)
    server.send_signal(signal.SIGTERM)
    server.wait()
    shutil.rmtree(folder, ignore_errors=True)  # the store: up to 2 million events, hundreds of MiB
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    result = {
        "kind": args.kind,
        "cores": os.cpu_count(),
        "batch": args.batch,
        "clients": args.clients,
        "workers": args.workers,
        "batches": len(latencies),
        "seconds": round(elapsed, 2),
        "accepted": accepted,
        "duplicate": duplicate,
        "rejected": rejected,
        "accepted_per_second": round(accepted / elapsed),
        "p50_batch_ms": round(statistics.median(latencies) * 1000, 1),
        "p99_batch_ms": round(p99 * 1000, 1),
        "server_peak_rss_mib": round(peak / 1024, 1),
        "workers_peak_rss_mib": round(worker_peak / 1024, 1),
        # CPU per 10,000 accepted events: less sensitive than events/s to other work on the machine.
        "server_cpu_s_per_10k": round(server_cpu / max(accepted, 1) * 10_000, 3),
        "workers_cpu_s_per_10k": round(worker_cpu / max(accepted, 1) * 10_000, 3),
        "server_cores_busy": round(server_cpu / elapsed, 2),
        "workers_cores_busy": round(worker_cpu / elapsed, 2),
        "load_generator_cores_busy": round(own_cpu / elapsed, 2),
        "load_average_1min_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }
    if not args.server_only:
        profile = in_process_profile(args.batch, maker)
        result["one_batch_in_process_s"] = {k: round(v, 4) for k, v in profile.items()}
        result["hash_sets"] = hashes_in_memory(args.hashes_at)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
