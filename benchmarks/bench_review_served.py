"""Benchmark: the served dashboard's live held list (``/flagged`` under ``talktime serve``), in one process.

    python benchmarks/bench_review_served.py [--calls 3000,50000] [--seed 7]

Loads ``talktime.synth.synthetic_month`` whole calls of last month (about 5.2 records a call) into a DuckDB
store, with two callers per customer "ending" nine years late (held back by the guards), then prints wall
seconds and this process's CPU-seconds for what the page does (``talktime.web.review_forms.LiveHeld``):

* cold: the first read (the held records in SQL, then each customer's months rated twice, as
  ``GET /v1/invoices`` and ``--allow-flagged``);
* unchanged: a page asked for again (two marks read, nothing rated);
* after an acceptance: the page after one record is accepted (the held records again, and only that
  customer's months rated again).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from talktime.app.review import review
from talktime.io.ratecards import load_price_card
from talktime.store import open_store
from talktime.synth import synthetic_month

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))  # the loader the tests use
from support.stored import store_records

TENANT = "acme-platform"


def timed(label: str, work: Callable[[], Any]) -> Any:
    wall, cpu = time.perf_counter(), time.process_time()
    result = work()
    print(f"  {label:48} {time.perf_counter() - wall:8.2f} s wall {time.process_time() - cpu:8.2f} CPU-s")
    return result


def bench(calls: int, seed: int) -> None:
    from talktime.web.review_forms import LiveHeld, StoreReview

    this = datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    last = (this - timedelta(days=1)).replace(day=1)
    records = list(synthetic_month(calls, seed=seed, month=last, whole_call=True))
    late: dict[str, int] = {}
    for i, record in enumerate(records):
        if record.id.endswith("-caller") and late.get(record.customer or "", 0) < 2 and record.ended_at:
            late[record.customer or ""] = late.get(record.customer or "", 0) + 1
            records[i] = dataclasses.replace(
                record, ended_at=record.ended_at.replace(year=record.ended_at.year + 9)
            )
    with tempfile.TemporaryDirectory(prefix="bench-review-served-") as folder:
        target = str(Path(folder) / "events.duckdb")
        began = time.perf_counter()
        store_records(target, TENANT, records)
        print(f"{calls:,} calls, {len(records):,} records (loaded in {time.perf_counter() - began:.0f} s):")
        store = open_store(target)
        try:
            source = StoreReview(
                store,
                TENANT,
                None,
                load_price_card(Path("plan-call-minute.toml")),
                None,
                timedelta(hours=1),
                timedelta(minutes=15),
                lambda: datetime.now(UTC),
            )
            live = LiveHeld(source)
            first = timed("cold: held records and every customer rated", live.get)
            held = sum(len(m.records) for m in first.months)
            print(f"    {held} held in {len(first.months)} customer months")
            timed("unchanged: the page again", live.get)
            target_id = first.months[0].records[0].record.id
            timed(
                "one acceptance (the use case)",
                lambda: review(
                    store,
                    TENANT,
                    None,
                    target_id,
                    "accept",
                    at=datetime.now(UTC),
                    idle_timeout=timedelta(hours=1),
                ),
            )
            after = timed("after it: the page (one customer rated again)", live.get)
            assert sum(len(m.records) for m in after.months) == held - 1
        finally:
            store.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", default="3000,50000")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    for calls in (int(c) for c in args.calls.split(",")):
        bench(calls, args.seed)


if __name__ == "__main__":
    main()
