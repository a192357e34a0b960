"""What the embedded store's checkpoints cost: CPU seconds per 10,000-event batch through ``append_rows``.

Appends ``--batches`` batches of 10,000 new events to a DuckDB store in this process (no HTTP, no
decoding: the batches are prepared before the clock starts, and the first batch, which loads the hashes
in memory, is not counted) and ends with a ``CHECKPOINT``, counted too, so every run folds all it wrote.
Prints CPU seconds (the process's, DuckDB's threads included) and wall seconds per batch, the median
batch (one that did not checkpoint), the batches that took over twice the median (the checkpointing
ones), and the deleted record rows still on disk.

``--kind records``: ``talktime.record`` events (``bench_ingest.make_batch``), no record ever rewritten.
``--kind lifecycle``: 5,000 calls opened per batch and the previous batch's 5,000 closed, so every record
is re-derived once and leaves a deleted row behind. Mostly the fold in Python: ``--batches 16`` on a new
store, old and new alternated (load average 2.5-4), 0.413 and 0.428 CPU s per 10,000 events before the
fold read each field from one list per type and the record rows were made in one pass, 0.347 and 0.346
after.

A large store: load one with ``bench_serve.py --events 10000000 --store PATH`` (kept), then run this on
it (each run adds its events). Before and after a change, run each on a copy of the same file, or in the
order old, old, new, new: a run inherits the row groups the previous one left.

    .venv/bin/python benchmarks/bench_checkpoint.py --store /tmp/ck/s.duckdb --batches 64
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
from bench_ingest import make_batch

from talktime.ingest.batch import prepare_body
from talktime.store.base import ROWS_SCHEMA, RawEvent, event_columns
from talktime.store.duckdb_store import DuckDBStore

BATCH = "application/cloudevents-batch+json"
CALLS = 5_000
START = datetime(2025, 3, 1, 10, tzinfo=UTC)


def lifecycle(number: int, run: str) -> pa.Table:
    """Batch ``number``: its calls open, the previous batch's close (10,000 events from the second on)."""
    events = [
        RawEvent(
            f"/bench/{run}",
            f"o{call}",
            "talktime.connection.opened",
            f"{run}-{call}",
            START + timedelta(seconds=call),
            '{"customer":"acme","kind":"leg"}',
        )
        for call in range(number * CALLS, (number + 1) * CALLS)
    ]
    events += [
        RawEvent(
            f"/bench/{run}",
            f"c{call}",
            "talktime.connection.closed",
            f"{run}-{call}",
            START + timedelta(seconds=call + 60),
            "{}",
        )
        for call in range((number - 1) * CALLS, number * CALLS)
        if number
    ]
    return pa.table({"pos": range(len(events)), **event_columns(events)}, schema=ROWS_SCHEMA)


def batches(kind: str, count: int, run: str, first: int) -> list[pa.Table]:
    if kind == "lifecycle":
        return [lifecycle(number, run) for number in range(count + 1)]
    return [prepare_body(BATCH, make_batch(first + n, 10_000), 10_000).rows for n in range(count + 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--store", help="a DuckDB store file (default: a new one in a temporary folder)")
    parser.add_argument("--batches", type=int, default=64, help="10,000-event batches counted (default 64)")
    parser.add_argument("--kind", choices=["records", "lifecycle"], default="records")
    args = parser.parse_args()
    path = args.store or str(Path(tempfile.mkdtemp(prefix="talktime-bench-ckpt-")) / "events.duckdb")
    run = f"r{time.time_ns()}"
    # record-event ids: ev-N with N past anything bench_serve or an earlier run of this loaded
    first = time.time_ns() // 1_000_000 % 10**9 * 10
    prepared = batches(args.kind, args.batches, run, first)
    gc.freeze()
    gc.set_threshold(100_000, 20, 100)  # as talktime serve does
    store = DuckDBStore(path)
    try:
        if not all(store.append_rows("bench", prepared[0])):
            raise SystemExit("the first batch was not all new")
        stored_before = store.count("bench")
        per_batch: list[tuple[float, float]] = []
        cpu0, wall0 = time.process_time(), time.perf_counter()
        for rows in prepared[1:]:
            cpu, wall = time.process_time(), time.perf_counter()
            if not all(store.append_rows("bench", rows)):
                raise SystemExit("a batch was not all new")
            per_batch.append((time.process_time() - cpu, time.perf_counter() - wall))
        store._con.execute("CHECKPOINT")  # fold what is left, so every run pays for all it wrote
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        (dead,) = store.read(
            "SELECT (SELECT estimated_size FROM duckdb_tables() WHERE table_name = 'records' "
            "AND database_name = current_database()) - (SELECT count(*) FROM records)"
        )[0]
    finally:
        store.close()
    median = statistics.median(c for c, _ in per_batch)
    slow = [round(c, 2) for c, _ in per_batch if c > 2 * median]
    print(
        f"{args.kind}: {args.batches} batches onto {stored_before:,} stored events ({path})\n"
        f"  per 10,000 events: {cpu / args.batches:.3f} CPU s, {wall / args.batches:.3f} s wall "
        f"(median batch {median:.3f} CPU s)\n"
        f"  batches over twice the median (CPU s): {slow}\n"
        f"  deleted record rows on disk: {dead:,}",
        file=sys.stdout,
    )


if __name__ == "__main__":
    main()
