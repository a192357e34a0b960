"""Benchmark: the dashboard's review pages (``/reconcile``, ``/flagged``) over a generated month. Prints how
long the dashboard took until its first page answered, how long its background work took until the review
pages were ready (wall, and the server process's CPU-seconds), and p50/p99 of each page over HTTP.

    python benchmarks/bench_review_pages.py [--calls 3000,200000] [--requests 40] [--seed 7]

The records are ``talktime.synth.synthetic_month`` whole calls (about 5.2 records a call) over October 2026,
with one caller per customer "ending" in 2035 (held back by the guards); the statement is a Twilio console
export of every Twilio leg (``tests/support/statements.py``) with 1 line in 100 overcharged, so the
reconciliation page has many flagged lines (it lists the first 200). The server is the real command in its
own process; each page is asked for ``--requests`` times, one at a time, after one warm-up request.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from bench_dashboard import _get
from bench_ingest import cpu_seconds, free_port

from talktime.io.records_io import write_records
from talktime.synth import synthetic_month

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))  # the statement writer the tests use
from support.statements import twilio_console

REVIEW_JOBS = ("reconcile:0", "held:acme-health", "held:blue-bank", "held:cobalt-retail")


def month(calls: int, seed: int, folder: Path) -> tuple[Path, Path, int]:
    records = list(synthetic_month(calls, seed=seed, whole_call=True))
    runaway: set[str] = set()
    for i, record in enumerate(records):
        if record.id.endswith("-caller") and record.customer not in runaway and record.ended_at is not None:
            runaway.add(record.customer or "")
            records[i] = dataclasses.replace(record, ended_at=record.ended_at.replace(year=2035))
    path = folder / "month.parquet"
    write_records(path, records)
    legs = [r for r in records if r.provider == "twilio" and r.kind == "leg" and r.answered_at is not None]
    over = {leg.id: Decimal("0.05") for leg in legs[::100]}
    statement = folder / "twilio-console.csv"
    twilio_console(statement, records, overcharge=over)
    return path, statement, len(records)


def bench(calls: int, seed: int, requests: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-review-") as name:
        path, statement, count = month(calls, seed, Path(name))
        port = free_port()
        command = [sys.executable, "-m", "talktime", "dashboard", "--records", str(path), "--port", str(port)]
        command += ["--costs", "costs-informative.toml", "--prices", "plan-call-minute.toml"]
        command += ["--statement", f"twilio-voice={statement}"]
        began = time.perf_counter()
        server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            while True:
                try:
                    _get(base + "/methodology")
                    break
                except OSError:
                    time.sleep(0.2)
            started = time.perf_counter() - began
            cpu_started = cpu_seconds(server.pid)
            while True:
                states = json.loads(_get(base + "/jobs")[1])
                if all(states.get(key) in ("done", "failed") for key in REVIEW_JOBS):
                    break
                time.sleep(0.2)
            ready = time.perf_counter() - began
            failed = [key for key in REVIEW_JOBS if states[key] == "failed"]
            cpu_ready = cpu_seconds(server.pid)
            print(
                f"{calls:,} calls, {count:,} records: first page after {started:.1f} s; review pages ready "
                f"after {ready:.1f} s (server CPU {cpu_started:.1f} s at the first page, {cpu_ready:.1f} s "
                f"when ready){'; FAILED ' + ', '.join(failed) if failed else ''}"
            )
            while any(
                state not in ("done", "failed") for state in json.loads(_get(base + "/jobs")[1]).values()
            ):
                time.sleep(0.5)  # the other pages' work, so the pages are timed without it
            for page in ("/reconcile", "/flagged"):
                _get(base + page)
                times = sorted(_get(base + page)[0] * 1000 for _ in range(requests))
                p99 = times[min(len(times) - 1, round(0.99 * (len(times) - 1)))]
                size = len(_get(base + page)[1])
                print(
                    f"  {page:12} p50 {statistics.median(times):7.1f} ms  p99 {p99:7.1f} ms  ({size:,} bytes)"
                )
        finally:
            server.terminate()
            server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", default="3000,200000")
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    for calls in (int(c) for c in args.calls.split(",")):
        bench(calls, args.seed, args.requests)


if __name__ == "__main__":
    main()
