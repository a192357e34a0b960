"""Reads while serving: usage and record look-ups over a store holding many events, and ingest beside them.

Loads ``--events`` talktime.record events (50 customers, a year of calls) straight through the store's
``append_rows`` in big batches (the records are kept as they would be over HTTP), then starts a real
``talktime serve`` on loopback and measures, each against its goal:

* ``GET /v1/usage`` for one customer-month: p50 <= 50 ms, p99 <= 250 ms;
* ``GET /v1/usage`` for the whole tenant (no goal; printed);
* ``GET /v1/records/{id}``: p50 <= 10 ms;
* ingest over HTTP (10,000-event batches, 2 clients) alone, then while a client reads without pause:
  no slower with reads than without (at least 0.95 of it: one run's noise).

Prints one line per figure with its goal and PASS or MISS, then everything as JSON. ``--store PATH`` keeps
the loaded store (loads it only when PATH does not exist yet), so the reads can be measured again without
loading 10M events again; each run ingests events and records of its own.

    .venv/bin/python benchmarks/bench_serve.py --events 10000000
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pyarrow as pa
from bench_ingest import free_port

BATCH = "application/cloudevents-batch+json"
CUSTOMERS = 50
SECONDS_IN_YEAR = 365 * 24 * 3600


def _month(start: datetime, months: int) -> datetime:
    """The first of the month ``months`` after ``start``'s month."""
    index = start.year * 12 + start.month - 1 + months
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


#: The twelve months before this one: calls of the past year, none ahead of now and none "long ago" under
#: the server's default plausibility guards (which would hold them back and leave the totals empty).
YEAR = _month(datetime.now(UTC), -12)


def _record(n: int, rng: random.Random) -> tuple[str, str]:
    """Record ``n``: a call leg of the past year (starts spread over the year in order, as calls arrive)."""
    start = YEAR + timedelta(seconds=n * SECONDS_IN_YEAR // TOTAL[0] + rng.randint(0, 59))
    length = rng.randint(5, 900)
    data = {
        "id": f"leg-{n}",
        "customer": f"cust-{n % CUSTOMERS}",
        "provider": "twilio",
        "kind": "leg",
        "started_at": start.isoformat().replace("+00:00", "Z"),
        "answered_at": (start + timedelta(seconds=3)).isoformat().replace("+00:00", "Z"),
        "ended_at": (start + timedelta(seconds=length, milliseconds=300)).isoformat().replace("+00:00", "Z"),
        "provider_reported_seconds": length - 2,
    }
    return f"ev-{n}", orjson.dumps(data).decode()


TOTAL = [1]


def rows(first: int, count: int, rng: random.Random) -> pa.Table:
    from talktime.store.base import ROWS_SCHEMA

    made = [_record(n, rng) for n in range(first, first + count)]
    time_us = int((YEAR - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds() * 1_000_000)
    return pa.Table.from_arrays(
        [
            pa.array(range(count), pa.int64()),
            pa.array(["/bench/platform"] * count, pa.string()),
            pa.array([e for e, _ in made], pa.string()),
            pa.array(["talktime.record"] * count, pa.string()),
            pa.array([f"call-{n // 2}" for n in range(first, first + count)], pa.string()),
            pa.array([time_us] * count, pa.int64()).cast(pa.timestamp("us", tz="UTC")),
            pa.array([d for _, d in made], pa.string()),
        ],
        schema=ROWS_SCHEMA,
    )


def load(store_path: str, events: int, batch: int) -> float:
    """Events per second through append_rows (records kept), in big batches."""
    from talktime.store import open_store

    TOTAL[0] = events
    rng = random.Random(7)
    store = open_store(store_path)
    began = time.perf_counter()
    try:
        for first in range(0, events, batch):
            store.append_rows("bench", rows(first, min(batch, events - first), rng))  # type: ignore[attr-defined]
            done = min(first + batch, events)
            if done % (batch * 10) == 0 or done == events:
                rate = done / (time.perf_counter() - began)
                print(f"  loaded {done:,} events ({rate:,.0f}/s)", file=sys.stderr)
    finally:
        store.close()
    return events / (time.perf_counter() - began)


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return {"p50_ms": round(statistics.median(ordered) * 1000, 2), "p99_ms": round(p99 * 1000, 2)}


def timed(client: httpx.Client, path: str, params: dict[str, str]) -> float:
    began = time.perf_counter()
    answer = client.get(path, params=params)
    took = time.perf_counter() - began
    if answer.status_code != 200:
        raise SystemExit(f"{path} {params}: {answer.status_code} {answer.text[:300]}")
    held = answer.json().get("held") if path == "/v1/usage" else None
    if held:  # the guards held records back: the figures would time a read that leaves them out
        raise SystemExit(f"{path} {params}: {len(held)} record(s) held by the guards, e.g. {held[0]}")
    return took


def month_params(rng: random.Random) -> dict[str, str]:
    month = rng.randrange(12)
    start, end = _month(YEAR, month), _month(YEAR, month + 1)
    return {
        "policy": "twilio-voice",
        "customer": f"cust-{rng.randrange(CUSTOMERS)}",
        "from": start.isoformat(),
        "to": end.isoformat(),
    }


def ingest_rate(base: str, key: str, first: int, batches: int, run: str) -> float:
    """Accepted events/s over HTTP: 2 clients posting 10,000-event batches of new records (ids of ``run``)."""
    rng = random.Random(first)
    bodies = []
    for b in range(batches):
        items = []
        for n in range(first + b * 10_000, first + (b + 1) * 10_000):
            _, data = _record(n % TOTAL[0], rng)
            items.append(
                {
                    "specversion": "1.0",
                    "id": f"live-{n}",
                    "source": f"/bench/live/{run}",
                    "type": "talktime.record",
                    "time": _month(YEAR, 6).isoformat(),
                    "data": {**orjson.loads(data), "id": f"live-{run}-leg-{n}"},
                }
            )
        bodies.append(orjson.dumps(items))
    queue = iter(range(batches))
    lock = threading.Lock()
    accepted = [0]
    headers = {"Authorization": f"Bearer {key}", "Content-Type": BATCH}

    def client() -> None:
        with httpx.Client(base_url=base, headers=headers, timeout=300) as http:
            while True:
                with lock:
                    number = next(queue, None)
                if number is None:
                    return
                answer = http.post("/v1/events", content=bodies[number]).json()
                with lock:
                    accepted[0] += answer["accepted"]

    began = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return accepted[0] / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000, help="events stored before reading")
    parser.add_argument("--load-batch", type=int, default=100_000, help="events per append_rows call")
    parser.add_argument("--reads", type=int, default=200, help="customer-month and record reads each")
    parser.add_argument("--tenant-reads", type=int, default=5, help="whole-tenant usage reads (0: none)")
    parser.add_argument("--ingest-batches", type=int, default=20, help="10,000-event batches per ingest run")
    parser.add_argument("--store", help="a store file to keep (loaded only if it does not exist yet)")
    args = parser.parse_args()

    store_path = args.store or str(Path(tempfile.mkdtemp(prefix="talktime-bench-serve-")) / "events.duckdb")
    folder = Path(store_path).parent
    loaded = Path(store_path).exists()
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
    TOTAL[0] = args.events
    load_rate = None
    if not loaded:
        print(f"loading {args.events:,} events into {store_path} ...", file=sys.stderr)
        load_rate = load(store_path, args.events, args.load_batch)
    size = sum(p.stat().st_size for p in folder.iterdir() if p.name.startswith(Path(store_path).name))
    run = str(time.time_ns())

    port = free_port()
    log = Path(store_path).with_suffix(".serve.log")  # the access lines go here, not among the figures
    print(f"server log: {log}")
    server = subprocess.Popen(
        [sys.executable, "-m", "talktime", "serve", "--store", store_path, "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=log.open("w", encoding="utf-8"),
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            httpx.get(base + "/openapi.json", timeout=1)
            break
        except httpx.TransportError:
            time.sleep(0.1)
    rng = random.Random(11)
    result: dict[str, Any] = {
        "events": args.events,
        "load_events_per_s": None if load_rate is None else round(load_rate),
        "store_mib": size >> 20,
    }
    try:
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=600) as client:
            timed(client, "/v1/usage", month_params(rng))  # the policy's query compiled once, then cached
            month = [timed(client, "/v1/usage", month_params(rng)) for _ in range(args.reads)]
            tenant = [
                timed(client, "/v1/usage", {"policy": "twilio-voice"}) for _ in range(args.tenant_reads)
            ]
            record = [
                timed(client, f"/v1/records/leg-{rng.randrange(args.events)}", {"policy": "twilio-voice"})
                for _ in range(args.reads)
            ]
        result["usage_customer_month"] = percentiles(month)
        result["usage_whole_tenant"] = percentiles(tenant) if tenant else {"p50_ms": None, "p99_ms": None}
        result["record"] = percentiles(record)

        alone = ingest_rate(base, key, 0, args.ingest_batches, run)
        stop = threading.Event()
        reads = [0]

        def reader() -> None:
            with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=600) as c:
                while not stop.is_set():
                    timed(c, "/v1/usage", month_params(rng))
                    timed(c, f"/v1/records/leg-{rng.randrange(args.events)}", {"policy": "twilio-voice"})
                    reads[0] += 2

        thread = threading.Thread(target=reader)
        thread.start()
        beside = ingest_rate(base, key, 1_000_000_000, args.ingest_batches, run)
        stop.set()
        thread.join()
        result["ingest_events_per_s"] = {
            "alone": round(alone),
            "with_reads": round(beside),
            "ratio": round(beside / alone, 3),
            "reads_meanwhile": reads[0],
        }
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait()
    m, t, r, i = (
        result["usage_customer_month"],
        result["usage_whole_tenant"],
        result["record"],
        result["ingest_events_per_s"],
    )
    lines = [  # figure, value, goal (None: printed, no goal), met
        ("usage customer-month p50", f"{m['p50_ms']} ms", "<= 50 ms", m["p50_ms"] <= 50),
        ("usage customer-month p99", f"{m['p99_ms']} ms", "<= 250 ms", m["p99_ms"] <= 250),
        ("usage whole tenant p50", f"{t['p50_ms']} ms", None, None),
        ("usage whole tenant p99", f"{t['p99_ms']} ms", None, None),
        ("record look-up p50", f"{r['p50_ms']} ms", "<= 10 ms", r["p50_ms"] <= 10),
        ("record look-up p99", f"{r['p99_ms']} ms", None, None),
        ("ingest alone", f"{i['alone']:,} events/s", None, None),
        (
            "ingest while reading",
            f"{i['with_reads']:,} events/s = {i['ratio']} x alone",
            ">= 0.95 x alone",
            i["ratio"] >= 0.95,
        ),
    ]
    result["goals"] = {name: met for name, _, goal, met in lines if goal is not None}
    print(f"{result['events']:,} events stored ({result['store_mib']:,} MiB)")
    for name, value, goal, met in lines:
        verdict = "(no goal)" if goal is None else f"goal {goal}: {'PASS' if met else 'MISS'}"
        print(f"  {name:26} {value:38} {verdict}")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
