"""Benchmark: what judging a stored record's time-worded guards as of its first receipt costs a face.

Loads ``--events`` talktime.record events into a DuckDB store (``bench_dashboard_served.py``'s whole calls
over the last ``--history`` months, all received at load time), then prints, in process CPU-seconds (more
robust than wall time on a shared machine), for two receipts of the same records:

* **backfill**: every record received at load time, so those of past months more than a day after their
  start: the worst case, every record of the window carries its receipt (``Kept.received``);
* **on time**: the records' ``first_received`` set to one minute after their start (SQL on the bench's own
  store), so none carries one, the common case.

For each: the snapshot written by the store's SQL (``take_snapshot``, which now reads the store's word on
the records, ``kept_in``) and that read alone (``receipts_in``), the pickled size of the word a worker job is
sent, and the vectorised margin's HELD marks over the snapshot file with the word (moments joined from an
Arrow table) and without it (the old judgement as of each month's end).

    .venv/bin/python benchmarks/bench_receipts.py --events 200000 [--history 12] [--months 3]
"""

from __future__ import annotations

import argparse
import pickle
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).parent))

from bench_dashboard_served import TENANT, load

from talktime.app.snapshot import card_zones, take_snapshot
from talktime.core.plausibility import Limits
from talktime.core.rating.margin import Guard
from talktime.ingest.sessionize import DEFAULT_IDLE_TIMEOUT
from talktime.io.ratecards import load_cost_card, load_price_card
from talktime.simulate.margin_run import margin_vectorised
from talktime.store import open_store
from talktime.store.reviews import receipts_in

T = TypeVar("T")


def _cpu(run: Callable[[], T]) -> tuple[float, T]:
    """Process CPU-seconds of ``run()`` (DuckDB's threads included), and what it gave."""
    began = time.process_time()
    found = run()
    return time.process_time() - began, found


def _measure(store_path: str, folder: Path, label: str, months: int) -> None:
    costs = load_cost_card(Path("costs-informative.toml"))
    prices = load_price_card(Path("plan-call-minute.toml"))
    as_of = datetime.now(UTC)
    store = open_store(store_path)
    try:
        target = folder / f"{label}.parquet"
        snap_cpu, taken = _cpu(
            lambda: take_snapshot(
                store,
                TENANT,
                target,
                as_of=as_of,
                months=months,
                idle_timeout=DEFAULT_IDLE_TIMEOUT,
                zones=card_zones(prices),
            )
        )
        where = f"tenant = '{TENANT}'"
        read_cpu, received = _cpu(lambda: receipts_in(store.read, False, where, as_of))  # type: ignore[attr-defined]  # DuckDB's store reads SQL
    finally:
        store.close()
    kept = taken.accepted
    size = len(pickle.dumps(kept, protocol=5))
    limits = Limits()
    with_cpu, with_word = _cpu(
        lambda: margin_vectorised(target, costs, prices, guard=Guard(replace(limits, accepted=kept), as_of))
    )
    without_cpu, without = _cpu(lambda: margin_vectorised(target, costs, prices, guard=Guard(limits, as_of)))
    print(
        f"{label}: {taken.records:,} records in the snapshot, {len(kept.received):,} carry a receipt "
        f"({len(received):,} of the tenant's); snapshot {snap_cpu:.2f} CPU-s; the receipts read alone "
        f"(tenant-wide) {read_cpu:.2f} CPU-s; the word pickled {size / 1e6:.2f} MB; margin HELD with "
        f"the word {with_cpu:.2f} CPU-s ({len(with_word.held_records):,} held), without "
        f"{without_cpu:.2f} ({len(without.held_records):,} held)"
    )


def _on_time(store_path: str) -> None:
    import duckdb

    connection = duckdb.connect(store_path)
    try:
        connection.execute(
            "UPDATE records SET first_received = started_at + INTERVAL 1 MINUTE, "
            "last_received = started_at + INTERVAL 1 MINUTE WHERE tenant = ?",
            [TENANT],
        )
    finally:
        connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000, help="events stored")
    parser.add_argument("--history", type=int, default=12, help="months the events are spread over")
    parser.add_argument("--months", type=int, default=3, help="the snapshot's window in months")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-receipts-") as name:
        folder = Path(name)
        store_path = str(folder / "events.duckdb")
        began = time.perf_counter()
        loaded = load(store_path, args.events, args.history)
        print(f"loaded {loaded:,} events in {time.perf_counter() - began:.1f} s", file=sys.stderr)
        _measure(store_path, folder, "backfill", args.months)
        _on_time(store_path)
        _measure(store_path, folder, "on time", args.months)


if __name__ == "__main__":
    main()
