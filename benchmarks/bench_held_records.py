"""Benchmark: the file dashboard's held-records job alone (``talktime.app.held_records``, what ``/flagged``
waits for), in process CPU-seconds, before and after it reuses the invoices job's drafts.

    python benchmarks/bench_held_records.py [--calls 3000,200000] [--seed 7]

The month is ``bench_review_pages``' (synthetic whole calls over October 2026, one caller per customer
"ending" in 2035, so every customer's October holds a record back), loaded as ``talktime dashboard`` loads
it. For each customer, in one process and one after the other: the invoices job (its records read, each
month's draft); the held job as it was (its records read again, each month's draft made again, and a month
holding records back rated once more with them in); and as it is (the invoices job's drafts reused, the
records read only for a month that holds some back). Both held results are checked equal.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench_review_pages import month

from talktime.app.held_records import held_records
from talktime.app.month_invoices import customer_invoices
from talktime.core.records import UsageRecord
from talktime.web.data import Dashboard, load


def _cpu(work: Callable[[], Any]) -> tuple[float, Any]:
    began = time.process_time()
    found = work()
    return time.process_time() - began, found


def _customer(board: Dashboard, customer: str, months: list[str]) -> tuple[list[float], int]:
    """The CPU-seconds of the invoices job, the held job as it was and as it is, for one customer; and how
    many records its months hold back."""
    prices, now = board.prices, board.started

    def records() -> list[UsageRecord]:
        return board.records.of_customer(customer)

    invoices, drafts = _cpu(lambda: customer_invoices(records(), prices, customer, months, now=now))
    was, before = _cpu(lambda: held_records(records(), prices, customer, months, now=now))
    now_is, after = _cpu(lambda: held_records(records, prices, customer, months, now=now, drafts=drafts))
    assert after == before, f"{customer}: the held months differ"
    return [invoices, was, now_is], sum(len(m.records) for m in after)


def bench(calls: int, seed: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-held-") as name:
        path, _, count = month(calls, seed, Path(name))
        board = load(path, Path("costs-informative.toml"), Path("plan-call-minute.toml"))
        periods: dict[str, list[str]] = {}
        for customer, period in board.months:
            periods.setdefault(customer, []).append(period)
        spent = [0.0, 0.0, 0.0]
        held = 0
        for customer, months in periods.items():
            seconds, found = _customer(board, customer, months)
            spent = [a + b for a, b in zip(spent, seconds, strict=True)]
            held += found
        names = ("invoices job", "held job, as it was", "held job, drafts reused")
        figures = ", ".join(f"{n} {v:.2f}" for n, v in zip(names, spent, strict=True))
        print(
            f"{calls:,} calls, {count:,} records, {len(periods)} customers, {held} records held "
            f"(CPU-s): {figures}; after/before {spent[2] / spent[1]:.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", default="3000,200000")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    for calls in (int(c) for c in args.calls.split(",")):
        bench(calls, args.seed)


if __name__ == "__main__":
    main()
