"""Benchmark: ``talktime dashboard`` page times over a generated month: the demo month (3,000 whole calls) and
a file of about 1M records. Prints the time the dashboard took to rate the file (until its first page
answers), its peak memory, and p50/p99 of each page's response over HTTP on loopback.

    python benchmarks/bench_dashboard.py [--records 15000,1000000] [--requests 40] [--seed 7]

The records are ``talktime.synth.synthetic_month`` whole calls (about 5.2 records a call: a Twilio leg, a
Deepgram stream, LiveKit participants, OpenAI tokens, ElevenLabs characters) over October 2026, rated with
the built-in ``costs-informative.toml`` and ``plan-call-minute.toml``. The server is the real command in its
own process; each page is asked for ``--requests`` times, one at a time, after one warm-up request.
"""

from __future__ import annotations

import argparse
import json
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from talktime.io.records_io import write_records
from talktime.synth import synthetic_month

RECORDS_PER_CALL = 5.2


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> tuple[float, bytes]:
    began = time.perf_counter()
    with urllib.request.urlopen(url, timeout=600) as response:
        body = response.read()
    return time.perf_counter() - began, body


def _peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def bench(path: Path, requests: int) -> None:
    port = _port()
    command = [sys.executable, "-m", "talktime", "dashboard", "--records", str(path)]
    command += ["--costs", "costs-informative.toml", "--prices", "plan-call-minute.toml", "--port", str(port)]
    began = time.perf_counter()
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        while True:
            if server.poll() is not None:
                raise SystemExit("the dashboard stopped")
            try:
                _get(base + "/methodology")
                break
            except OSError:
                time.sleep(0.2)
        loaded = time.perf_counter() - began
        while True:  # the invoices and what-if runs: in the background after the pages serve
            states = json.loads(_get(base + "/jobs")[1])
            if all(state in ("done", "failed") for state in states.values()):
                break
            time.sleep(0.5)
        background = time.perf_counter() - began - loaded
        rows = json.loads(
            subprocess.run(
                [sys.executable, "-c", _FIRST_CALL, str(path)], capture_output=True, text=True, check=True
            ).stdout
        )
        listed = _get(base + "/invoices")[1].decode()
        found = re.search(rf'href="/invoices/{re.escape(rows["customer"])}/(\d{{4}}-\d{{2}})\.pdf"', listed)
        rows["period"] = found.group(1) if found else "none"
        pages = {
            "overview": "/",
            "calls": "/calls",
            "calls sorted by margin": "/calls?sort=margin&dir=desc",
            "calls filtered (customer, loss)": f"/calls?customer={rows['customer']}&loss=1",
            "calls page 50": "/calls?page=50",
            "one call": f"/call?customer={rows['customer']}&session={rows['session']}",
            "methodology": "/methodology/twilio-voice",
            "invoices (every customer month)": "/invoices",
            "what-if (rounding, first switch)": "/whatif",
            "what-if (another switch)": "/whatif?switch=2",
            "one invoice's PDF": f"/invoices/{rows['customer']}/{rows['period']}.pdf",
        }
        print(f"{path.name}: rated in {loaded:.1f} s (until the first page answered)")
        done = sum(state == "done" for state in states.values())
        print(
            f"  background work (invoices, what-if): {background:.1f} s more; {done}/{len(states)} jobs done"
        )
        print(f"  {'page':<34}{'p50 ms':>9}{'p99 ms':>9}{'KB':>8}")
        for name, page in pages.items():
            _get(base + page)
            times = []
            size = 0
            for _ in range(requests):
                took, body = _get(base + page)
                times.append(took * 1000)
                size = len(body)
            times.sort()
            p99 = times[min(len(times) - 1, round(0.99 * (len(times) - 1)))]
            print(f"  {name:<34}{statistics.median(times):>9.1f}{p99:>9.1f}{size / 1024:>8.0f}")
        print(f"  peak memory of the dashboard: {_peak_mb(server.pid):,.0f} MB")
    finally:
        server.terminate()
        server.wait(timeout=30)


#: The first record's call, for the one-call page (read in a child so this process stays small).
_FIRST_CALL = """
import json, sys
from pathlib import Path
from talktime.io.records_io import read_records
r = next(iter(read_records(Path(sys.argv[1]))))
print(json.dumps({"customer": r.customer, "session": r.session_key}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", default="15000,1000000", help="record counts, comma-separated")
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--seed", type=int, default=7)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="talktime-bench-dashboard-") as folder:
        for wanted in (int(n) for n in options.records.split(",")):
            path = Path(folder) / f"month-{wanted}.parquet"
            calls = max(1, round(wanted / RECORDS_PER_CALL))
            began = time.perf_counter()
            written = write_records(path, synthetic_month(calls, seed=options.seed, whole_call=True))
            print(f"generated {written:,} records ({calls:,} calls) in {time.perf_counter() - began:.1f} s")
            bench(path, options.requests)


if __name__ == "__main__":
    main()
