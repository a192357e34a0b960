"""Benchmark: the margin report's HELD marks with a store's acceptances (what the served dashboard's board
rates), in process CPU-seconds: DuckDB without acceptances, DuckDB with them (the held records that have an
acceptance read and judged in Python: ``simulate.margin_held.covered_rows``), and the per-record reference
the use case fell back to before (``session_report`` with acceptances, session 7).

    python benchmarks/bench_margin_accepted.py [--calls 20000,100000] [--accepted 50] [--seed 7]

The history is ``synthetic_month`` (whole calls, three customers, October 2026), with limits tight enough to
hold back about one record in twenty (tokens over 1,500, calls over an hour); ``--accepted`` of the held
records are accepted with their present reasons. Each run is checked to mark the same records.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from talktime.app.history import HistorySource
from talktime.app.margin import MarginEngine, session_report
from talktime.core.plausibility import Accepted, Limits, check
from talktime.core.rating.margin import Guard
from talktime.io.ratecards import load_cost_card, load_price_card
from talktime.io.records_io import write_records
from talktime.simulate.margin_grouped import grouped_view
from talktime.synth import synthetic_month

NOW = datetime(2026, 11, 10, 12, tzinfo=UTC)
LIMITS = Limits(max_call_hours=1, max_tokens=1500)


def _cpu(work: Callable[[], Any]) -> tuple[float, Any]:
    began = time.process_time()
    found = work()
    return time.process_time() - began, found


def run(calls: int, accepted: int, seed: int) -> None:
    costs, prices = (
        load_cost_card(Path("costs-informative.toml")),
        load_price_card(Path("plan-call-minute.toml")),
    )
    records = list(
        synthetic_month(calls, seed=seed, month=datetime(2026, 10, 1, tzinfo=UTC), whole_call=True)
    )
    guard = Guard(LIMITS, NOW)
    held = [r for r in records if r.customer and check(r, LIMITS, guard.moment(r, prices))]
    chosen = {
        r.id: Accepted(frozenset(check(r, LIMITS, guard.moment(r, prices))), guard.moment(r, prices))
        for r in held[:accepted]
    }
    with_them = Guard(replace(LIMITS, accepted=chosen), NOW)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "history.parquet"
        write_records(path, records)
        plain, view = _cpu(lambda: grouped_view(path, costs, prices, "customer", guard=guard))
        judged, accepted_view = _cpu(lambda: grouped_view(path, costs, prices, "customer", guard=with_them))
        sessions, duckdb = _cpu(lambda: session_report(HistorySource(path), costs, prices, guard=with_them))
        before, reference = _cpu(
            lambda: session_report(HistorySource(path), costs, prices, MarginEngine.reference, with_them)
        )
    assert set(accepted_view.held_records) == set(view.held_records) - set(chosen)
    assert duckdb[0].held_records == reference[0].held_records == accepted_view.held_records
    print(
        f"{calls:,} calls, {len(records):,} records, {len(view.held_records):,} held, "
        f"{len(chosen)} accepted: "
        f"by customer on DuckDB {plain:.2f} CPU-s without acceptances, {judged:.2f} with them; "
        f"by session on DuckDB with them {sessions:.2f}; the reference with them (before) {before:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", default="20000,100000")
    parser.add_argument("--accepted", type=int, default=50)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    for calls in (int(c) for c in args.calls.split(",")):
        run(calls, args.accepted, args.seed)


if __name__ == "__main__":
    main()
