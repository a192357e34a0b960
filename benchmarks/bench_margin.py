"""Benchmark: ``talktime margin`` (per-call cost stack, price and margin) on the vectorised engine at 1M and
10M records, and the per-record reference on a sample. Prints seconds, records/s and peak memory of each run.

    python benchmarks/bench_margin.py [--records 1000000,10000000] [--sample 50000] [--seed 7]
                                      [--costs costs-informative.toml] [--prices plan-call-minute.toml]
                                      [--by customer]

History: ``talktime.synth.synthetic_month`` with whole calls (seeded: Twilio legs, Deepgram streams, LiveKit
rooms, OpenAI tokens and ElevenLabs characters over three customers) generates a base month once, written with
``write_records``; DuckDB then copies it until the wanted size, each copy with its own ids and sessions and
moved by 0-11 times 30 days (``bench_compare.REPLICATE``), so the history is a year long and some calls
straddle a month's edge. Each ``talktime margin`` runs in its own process; peak memory is that process's
maximum resident set. The reference reads every record into Python, so it runs on ``--sample`` records only;
its rate is what a larger run would approach, and the ratio compares it with the vectorised 1M run.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
import tempfile
from decimal import Decimal
from pathlib import Path

from bench_compare import REPLICATE, TIMESTAMPS  # the same yearly history (benchmarks/ is the script's path)
from bench_meter import run_child  # the same child-process timer

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


def _totals(out: str) -> str:
    """The CSV rows added up: sessions, cost, price (exact amounts, shown to the cent)."""
    rows = list(csv.DictReader(io.StringIO(out)))
    sessions = sum(int(r["sessions"]) for r in rows if r.get("sessions"))
    cost = sum((Decimal(r["cost"]) for r in rows), Decimal(0))
    price = sum((Decimal(r["price"]) for r in rows), Decimal(0))
    incomplete = sum(1 for r in rows if r.get("incomplete"))
    return (
        f"{len(rows)} rows, {sessions:,} sessions, cost {cost:,.2f}, price {price:,.2f}, "
        f"margin {price - cost:,.2f}" + (f", {incomplete} incomplete row(s)" if incomplete else "")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", default="1000000,10000000", help="comma-separated history sizes")
    parser.add_argument("--sample", type=int, default=50_000, help="records for the reference (0: skip)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--costs", default="costs-informative.toml")
    parser.add_argument("--prices", default="plan-call-minute.toml")
    parser.add_argument("--by", default="customer", help="session, customer, provider or period")
    args = parser.parse_args()
    sizes = [int(s) for s in args.records.split(",") if s.strip()]
    talktime = str(Path(sys.executable).parent / "talktime")
    python = [sys.executable, "-c"]
    rates: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="talktime-bench-") as folder:
        base = Path(folder) / "base.parquet"
        gen_s, _, _ = run_child([*python, GENERATE, str(base), str(BASE_CALLS), str(args.seed)])
        print(f"base month: {BASE_CALLS:,} whole calls (synthetic_month, seed {args.seed}) in {gen_s:.1f} s")
        print(f"margin --costs {args.costs} --prices {args.prices} --by {args.by}")
        runs = [(n, "duckdb") for n in sizes] + ([(args.sample, "reference")] if args.sample else [])
        for count, engine in runs:
            data = Path(folder) / f"history-{count}.parquet"
            script = REPLICATE.format(timestamps=TIMESTAMPS)
            rep_s, _, _ = run_child([*python, script, str(base), str(data), str(count)])
            argv = [talktime, "margin", "--records", str(data), "--costs", args.costs]
            argv += ["--prices", args.prices, "--by", args.by, "--format", "csv", "--engine", engine]
            seconds, kib, out = run_child(argv)
            rate = count / seconds
            rates.setdefault(engine, rate)
            print(
                f"{engine:>9} {count:>12,} records: {seconds:7.1f} s, {rate:>11,.0f} records/s, "
                f"peak {kib / 1024:,.0f} MiB (history written in {rep_s:.1f} s)"
            )
            print(f"{'':>31}{_totals(out)}")
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
