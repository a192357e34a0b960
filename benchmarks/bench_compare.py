"""Benchmark: ``talktime compare`` (provider switch) on the vectorised engine at 1M and 10M records, and the
per-record Python reference on a sample. Prints seconds, records/s and peak memory of each run.

    python benchmarks/bench_compare.py [--records 1000000,10000000] [--sample 50000] [--seed 7]
                                       [--pair twilio-voice:telnyx-voice] [--prices plan-call-minute.toml]

History: ``talktime.synth.synthetic_month`` (seeded) generates a base month of calls once (Twilio legs,
Deepgram streams, LiveKit rooms over three customers), written with ``write_records``; DuckDB then copies
it until the wanted size, each copy with its own ids and sessions and moved by 0-11 times 30 days, so the
history is a year long. Each ``talktime compare`` runs in its own process; peak memory is that process's
maximum resident set (getrusage of children). The reference reads every record into Python, so it runs on
``--sample`` records only and its rate is what a larger run would approach.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from bench_meter import run_child  # the same child-process timer (benchmarks/ is the script's path)

BASE_CALLS = 100_000

GENERATE = """
import sys
from datetime import UTC, datetime
from pathlib import Path
from talktime.io.records_io import write_records
from talktime.synth import synthetic_month

month = datetime(2026, 1, 1, tzinfo=UTC)
write_records(Path(sys.argv[1]), synthetic_month(int(sys.argv[2]), seed=int(sys.argv[3]), month=month))
"""

TIMESTAMPS = ("started_at", "ended_at", "answered_at", "first_audio_at", "last_audio_at")

REPLICATE = """
import sys, duckdb
base, target, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
names = [r[0] for r in duckdb.sql(f"DESCRIBE SELECT * FROM read_parquet('{{base}}')").fetchall()]
n = duckdb.sql(f"SELECT count(*) FROM read_parquet('{{base}}')").fetchall()[0][0]
copies = -(-count // n)
shifted = {timestamps!r}
cols = []
for name in names:
    q = '"' + name + '"'
    if name in ("id", "session"):
        cols.append(f"{{q}} || '-c' || CAST(c AS VARCHAR) AS {{q}}")
    elif name in shifted:
        cols.append(f"{{q}} + to_days(CAST((c % 12) * 30 AS INTEGER)) AS {{q}}")
    else:
        cols.append(q)
duckdb.sql(
    f"COPY (SELECT {{', '.join(cols)}} FROM read_parquet('{{base}}'), range({{copies}}) t(c) "
    f"LIMIT {{count}}) TO '{{target}}' (FORMAT parquet)"
)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", default="1000000,10000000", help="comma-separated history sizes")
    parser.add_argument("--sample", type=int, default=50_000, help="records for the reference (0: skip)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--pair", default="twilio-voice:telnyx-voice", help="FROM:TO profiles")
    parser.add_argument("--prices", default=None, help="a price card (adds the margin part)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.records.split(",") if s.strip()]
    from_id, to_id = args.pair.split(":")
    talktime = str(Path(sys.executable).parent / "talktime")
    python = [sys.executable, "-c"]
    rates: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="talktime-bench-") as folder:
        base = Path(folder) / "base.parquet"
        gen_s, _, _ = run_child([*python, GENERATE, str(base), str(BASE_CALLS), str(args.seed)])
        print(f"base month: {BASE_CALLS:,} calls of synthetic_month (seed {args.seed}) in {gen_s:.1f} s")
        print(f"compare --from {from_id} --to {to_id}" + (f" --prices {args.prices}" if args.prices else ""))
        runs = [(n, "duckdb") for n in sizes] + ([(args.sample, "reference")] if args.sample else [])
        for count, engine in runs:
            data = Path(folder) / f"history-{count}.parquet"
            script = REPLICATE.format(timestamps=TIMESTAMPS)
            rep_s, _, _ = run_child([*python, script, str(base), str(data), str(count)])
            argv = [talktime, "compare", "--from", from_id, "--to", to_id, "--records", str(data)]
            argv += ["--engine", engine, "--format", "table", "--top", "3"]
            if args.prices:
                argv += ["--prices", args.prices]
            seconds, kib, out = run_child(argv)
            total = next((line for line in out.splitlines() if " all " in f" {line} "), "").strip()
            rates.setdefault(engine, count / seconds)
            print(
                f"{engine:>9} {count:>12,} records: {seconds:7.1f} s, {count / seconds:>11,.0f} records/s, "
                f"peak {kib / 1024:,.0f} MiB (history written in {rep_s:.1f} s)"
            )
            if total:
                print(f"{'':>31}{total}")
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
