"""Benchmark: what ``talktime serve --alerts`` costs the server's process per new snapshot of a tenant, beyond
the snapshot itself. Prints process CPU-seconds (more robust than wall time on a shared machine) for the two
steps its alerts thread runs (:meth:`talktime.web.served_alerts.ServedAlerts.check`, without the POSTs):
the rated rows taken back out of the board's calls table (``CallsTable.rows``: Python values, under the
interpreter lock the pages need) and the check over them (``alerts_of_rated``: DuckDB facts, the periods,
the rules); the board's rating, which the snapshot makes in a worker process anyway, is printed for scale.

    python benchmarks/bench_served_alerts.py [--calls 3000,50000] [--seed 7]

The records are ``talktime.synth.synthetic_month`` whole calls over October 2026, rated as the served
dashboard rates a snapshot (:func:`talktime.web.data.load`) with the built-in ``costs-informative.toml`` and
``plan-call-minute.toml``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import TypeVar

import numpy as np

from talktime.app.alerts import alerts_of_rated
from talktime.app.cards import cost_card, price_card
from talktime.core.alerts.config import AlertConfig, CustomerRules
from talktime.io.records_io import write_records
from talktime.synth import synthetic_month
from talktime.web.data import load

T = TypeVar("T")
CONFIG = AlertConfig(CustomerRules(spend=Decimal(1000), minutes=Decimal(10_000)))


def _cpu(action: Callable[[], T]) -> tuple[T, float]:
    began = time.process_time()
    result = action()
    return result, time.process_time() - began


def run(calls: int, seed: int) -> None:
    costs, prices = cost_card(Path("costs-informative.toml")), price_card(Path("plan-call-minute.toml"))
    assert prices is not None
    with tempfile.TemporaryDirectory(prefix="talktime-bench-served-alerts-") as folder:
        path = Path(folder) / "month.parquet"
        write_records(path, synthetic_month(calls, seed=seed, whole_call=True))
        board, rate_s = _cpu(lambda: load(path, costs, prices, collect=False))
        board.jobs.shutdown()
        table = board.calls
        rows, rows_s = _cpu(lambda: table.rows(np.arange(table.count, dtype=np.int64)))
        found, check_s = _cpu(lambda: alerts_of_rated(rows, board.scan, CONFIG, board.currency))
        total = rows_s + check_s
        print(
            f"{calls:>9,} calls: board (worker process) {rate_s:6.2f} CPU-s | alerts thread {total:6.2f} "
            f"CPU-s = rows {rows_s:5.2f} + check {check_s:5.2f} ({len(found.alerts)} alerts) | "
            f"alerts / board {total / rate_s:.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", default="3000,50000", help="comma-separated call counts")
    parser.add_argument("--seed", type=int, default=7)
    options = parser.parse_args()
    for calls in (int(n) for n in options.calls.split(",")):
        run(calls, options.seed)


if __name__ == "__main__":
    main()
