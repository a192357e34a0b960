"""Benchmark: what checking the alerts costs over a generated month, beyond rating it (which the dashboard
and ``talktime margin`` do anyway). Prints process CPU-seconds (more robust than wall time on a shared
machine) for each step of :func:`talktime.app.alerts.alerts_of_rated`: reading every call's span and
tokens on DuckDB, adding up each customer period, and the rules (the robust norms on Decimal logarithms).

    python benchmarks/bench_alerts.py [--calls 3000,200000] [--seed 7]

The records are ``talktime.synth.synthetic_month`` whole calls (about 5.2 records a call) over October 2026,
rated once with the built-in ``costs-informative.toml`` and ``plan-call-minute.toml`` (its time printed too).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import TypeVar

from talktime.app.alerts import periods_of, record_facts
from talktime.app.calls import call_margins
from talktime.core.alerts.check import open_alerts
from talktime.core.alerts.config import AlertConfig, CustomerRules
from talktime.io.records_io import write_records
from talktime.synth import synthetic_month

T = TypeVar("T")
CONFIG = AlertConfig(CustomerRules(spend=Decimal(1000), minutes=Decimal(10_000)))


def _cpu(action: Callable[[], T]) -> tuple[T, float]:
    began = time.process_time()
    result = action()
    return result, time.process_time() - began


def run(calls: int, seed: int) -> None:
    with tempfile.TemporaryDirectory(prefix="talktime-bench-alerts-") as folder:
        path = Path(folder) / "month.parquet"
        write_records(path, synthetic_month(calls, seed=seed, whole_call=True))
        margins, rate_s = _cpu(
            lambda: call_margins(path, Path("costs-informative.toml"), Path("plan-call-minute.toml"))
        )
        rows = margins.view.rows
        facts, facts_s = _cpu(lambda: record_facts(path, CONFIG))
        periods, periods_s = _cpu(lambda: periods_of(rows))
        now = facts.latest
        assert now is not None
        found, rules_s = _cpu(
            lambda: open_alerts(CONFIG, periods, facts.calls, facts.spans, margins.view.currency, now)
        )
        total = facts_s + periods_s + rules_s
        print(
            f"{calls:>9,} calls ({len(facts.calls):,} sessions): rating {rate_s:6.2f} CPU-s | alerts "
            f"{total:6.2f} CPU-s = facts on DuckDB {facts_s:5.2f} + periods {periods_s:5.2f} + rules "
            f"{rules_s:5.2f} ({len(found)} alerts) | alerts / rating {total / rate_s:.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", default="3000,200000")
    parser.add_argument("--seed", type=int, default=7)
    options = parser.parse_args()
    for calls in (int(c) for c in options.calls.split(",")):
        run(calls, options.seed)


if __name__ == "__main__":
    main()
