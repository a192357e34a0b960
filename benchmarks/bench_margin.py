"""Benchmark: ``talktime margin`` (per-call cost stack, price and margin) on the vectorised engine at 1M and
10M records, and the per-record reference on a sample. Prints CPU seconds, wall seconds, records/s and peak
memory of each run.

    python benchmarks/bench_margin.py [--records 1000000,10000000] [--sample 50000] [--seed 7]
                                      [--costs costs-informative.toml] [--prices plan-call-minute.toml]
                                      [--by customer,provider,session]

History: ``talktime.synth.synthetic_month`` with whole calls (seeded: Twilio legs, Deepgram streams, LiveKit
rooms, OpenAI tokens and ElevenLabs characters over three customers) generates a base month once, written with
``write_records``; DuckDB then copies it until the wanted size, each copy with its own ids and sessions and
moved by 0-11 times 30 days (``bench_compare.REPLICATE``), so the history is a year long and some calls
straddle a month's edge. Each ``talktime margin`` runs in its own process; its CPU seconds are the process's
user and system time (every DuckDB thread included: on a shared machine the steadier figure), peak memory its
maximum resident set. The reference reads every record into Python, so it runs on ``--sample`` records only
(with the first ``--by``); its rate is what a larger run would approach, and the ratio compares it with the
vectorised run at the first size.

Figures (2 cores shared with other work, so wall time is noise; CSV out; before -> after issue 11's speed
changes, same machine, same hour, output byte for byte the same). 10M whole-call records (1.9M calls):
``--by customer`` 28.6-28.7 -> 20.5-20.9 CPU-s (wall 64 -> 43 s), peak 1.8 -> 1.7 GB; ``--by provider``
90.6 -> 64.0 CPU-s, peak 4.1 -> 3.8 GB; ``--by session`` 217 -> 206 CPU-s, peak 8.6 GB (the report's objects
and the rows held for rendering). 1M: customer 3.8 -> 3.2 CPU-s (process start and imports are about a
third), provider 9.5 -> 6.9, session 20.9 -> 21.2. The second push (calls grouped by their keys, not by a
hash with a clash check; each pass's filter names only the entries that could take its records), in turn
in one run: 10M ``--by customer`` 26.7-28.6 (HEAD) -> 18.9-19.9 (first push) -> 17.4-18.3 CPU-s (wall
15-20 s when the machine was quiet), peak 1.7 GB; ``--by provider`` 57.0 -> 51.1 CPU-s (each call's amounts
read in call order); 1M: customer unchanged within noise, session 20.6 -> 19.7. The third push (a card
entry's parts metered in one statement over a WITH of their records; tables without insertion order; the
per-term totals from the per-row sums; session rows made and written one at a time for JSON and CSV), in
turn in one run under a load of 4-6: 10M ``--by customer`` 17.5-17.6 -> 15.4-15.5 CPU-s (wall 28 -> 23 s),
peak 1.7 -> 1.6 GB; 10M ``--by session`` 193 -> 186 CPU-s, peak 8.5 -> 3.9 GB; 1M ``--by session`` peak
1,036 -> 652 MiB (CSV), 2,153 -> 634 MiB (JSON).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import subprocess
import sys
import tempfile
from decimal import Decimal
from pathlib import Path

from bench_compare import REPLICATE, TIMESTAMPS  # the same yearly history (benchmarks/ is the script's path)
from bench_meter import run_child  # the same child-process timer (generating and copying the history)

BASE_CALLS = 100_000

GENERATE = """
import sys
from datetime import UTC, datetime
from pathlib import Path
from talktime.io.records_io import write_records
from talktime.synth import synthetic_month

month = datetime(2026, 1, 1, tzinfo=UTC)
calls = synthetic_month(int(sys.argv[2]), seed=int(sys.argv[3]), month=month, whole_call=True)
write_records(Path(sys.argv[1]), calls)
"""


#: Runs a command and prints [wall seconds, CPU seconds, peak RSS KiB, stdout] as JSON (its child's rusage).
TIMER = """
import json, resource, subprocess, sys, time
start = time.perf_counter()
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
wall = time.perf_counter() - start
sys.stderr.write(done.stderr)
if done.returncode:
    sys.exit(done.returncode)
used = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps([wall, used.ru_utime + used.ru_stime, used.ru_maxrss, done.stdout]))
"""


def timed(argv: list[str]) -> tuple[float, float, int, str]:
    """Run ``argv`` in a child process: (wall seconds, CPU seconds, peak RSS in KiB, stdout)."""
    done = subprocess.run([sys.executable, "-c", TIMER, *argv], capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"benchmark step failed: {' '.join(argv)}\n{done.stderr}")
    wall, cpu, peak, out = json.loads(done.stdout)
    return float(wall), float(cpu), int(peak), str(out)


def _totals(out: str, by: str) -> str:
    """The CSV rows added up: calls (a provider row counts the calls it costs, so no total there), cost,
    price (exact amounts, shown to the cent)."""
    rows = list(csv.DictReader(io.StringIO(out)))
    calls = len(rows) if by == "session" else sum(int(r["sessions"]) for r in rows if r.get("sessions"))
    cost = sum((Decimal(r["cost"]) for r in rows), Decimal(0))
    price = sum((Decimal(r["price"]) for r in rows), Decimal(0))
    incomplete = sum(1 for r in rows if r.get("incomplete"))
    return (
        f"{len(rows)} rows, "
        + ("" if by == "provider" else f"{calls:,} calls, ")
        + f"cost {cost:,.2f}, price {price:,.2f}, margin {price - cost:,.2f}"
        + (f", {incomplete} incomplete row(s)" if incomplete else "")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", default="1000000,10000000", help="comma-separated history sizes")
    parser.add_argument("--sample", type=int, default=50_000, help="records for the reference (0: skip)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--costs", default="costs-informative.toml")
    parser.add_argument("--prices", default="plan-call-minute.toml")
    parser.add_argument("--by", default="customer,provider,session", help="comma-separated views")
    args = parser.parse_args()
    sizes = [int(s) for s in args.records.split(",") if s.strip()]
    views = [v.strip() for v in args.by.split(",") if v.strip()]
    talktime = str(Path(sys.executable).parent / "talktime")
    python = [sys.executable, "-c"]
    rates: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="talktime-bench-") as folder:
        base = Path(folder) / "base.parquet"
        gen_s, _, _ = run_child([*python, GENERATE, str(base), str(BASE_CALLS), str(args.seed)])
        print(f"base month: {BASE_CALLS:,} whole calls (synthetic_month, seed {args.seed}) in {gen_s:.1f} s")
        print(f"margin --costs {args.costs} --prices {args.prices} --format csv")
        runs = [(n, "duckdb", views) for n in sizes]
        runs += [(args.sample, "reference", views[:1])] if args.sample else []
        for count, engine, chosen in runs:
            data = Path(folder) / f"history-{count}.parquet"
            script = REPLICATE.format(timestamps=TIMESTAMPS)
            rep_s, _, _ = run_child([*python, script, str(base), str(data), str(count)])
            print(f"{engine} on {count:,} records (history written in {rep_s:.1f} s)")
            for by in chosen:
                argv = [talktime, "margin", "--records", str(data), "--costs", args.costs]
                argv += ["--prices", args.prices, "--by", by, "--format", "csv", "--engine", engine]
                seconds, cpu, kib, out = timed(argv)
                rate = count / seconds
                rates.setdefault(engine, rate)
                print(
                    f"  --by {by:<9} {cpu:7.1f} CPU-s, {seconds:7.1f} s, {rate:>11,.0f} records/s, "
                    f"peak {kib / 1024:,.0f} MiB"
                )
                print(f"{'':>14}{_totals(out, by)}")
            data.unlink()
    if "duckdb" in rates and "reference" in rates:
        first, reference = sizes[0], rates["reference"]
        print(
            f"vectorised at {first:,} records: {rates['duckdb'] / reference:,.0f} times the reference's "
            f"records/s ({reference:,.0f} records/s; {first:,} records would take it about "
            f"{first / reference / 60:,.1f} min)"
        )


if __name__ == "__main__":
    main()
