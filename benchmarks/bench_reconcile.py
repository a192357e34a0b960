"""Reconcile a million Twilio statement lines against a million records; prints the seconds it takes.

Data is generated first (not timed): records with answered and end times, and a Twilio list-calls CSV
(RFC 2822 times, whole-second durations, negative prices) with a few differences planted: a missing record,
duplicated lines, a changed duration. Timed: reading the CSV into statement lines, and reconciling.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa

from talktime.core.reconcile.model import Options
from talktime.core.records import RECORD_FIELDS
from talktime.engine.reconcile import reconcile
from talktime.importers import read_statement
from talktime.io.records_io import _ARROW_TYPES
from talktime.providers import builtin


def records(n: int, seed: int) -> tuple[pa.Table, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    base = int(datetime(2026, 10, 1, tzinfo=UTC).timestamp() * 1_000_000)
    start = base + np.sort(rng.integers(0, 30 * 86_400_000_000, n))
    ring = rng.integers(1_000_000, 12_000_000, n)
    talk = rng.integers(800_000, 600_000_000, n)
    ids = pa.array([f"CA{i:032d}" for i in range(n)])
    ts = pa.timestamp("us", tz="UTC")
    cols = {
        "id": ids,
        "kind": pa.array(["leg"] * n),
        "provider": pa.array(["twilio"] * n),
        "started_at": pa.array(start, ts),
        "answered_at": pa.array(start + ring, ts),
        "ended_at": pa.array(start + ring + talk, ts),
    }
    arrays = [cols.get(f, pa.nulls(n, _ARROW_TYPES[f])).cast(_ARROW_TYPES[f]) for f in RECORD_FIELDS]
    return pa.Table.from_arrays(arrays, names=list(RECORD_FIELDS)), start + ring, talk, start


def statement_csv(path: Path, answered: np.ndarray, talk: np.ndarray, n: int) -> None:
    seconds = -(-talk // 1_000_000)
    seconds[7] += 90  # a line that disagrees
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    fmt = "%a, %d %b %Y %H:%M:%S +0000"
    with path.open("w") as out:
        out.write("sid,parent_call_sid,status,direction,start_time,end_time,duration,price,price_unit\n")
        rows = [*range(1, n), 3, 4]  # record 0 unbilled; lines 3 and 4 duplicated
        for i in rows:
            start = epoch + timedelta(microseconds=int(answered[i]))
            minutes = -(-int(seconds[i]) // 60)
            out.write(
                f'CA{i:032d},,completed,outbound-api,"{start.strftime(fmt)}",,{seconds[i]},'
                f"-{minutes * 13 / 1000:.5f},USD\n"
            )


def cpu_seconds() -> float:
    """User + system CPU of this process (all threads): steadier than wall time on a shared machine."""
    used = resource.getrusage(resource.RUSAGE_SELF)
    return used.ru_utime + used.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=1_000_000)
    args = parser.parse_args()
    table, answered, talk, _ = records(args.lines, 7)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "calls.csv"
        statement_csv(path, answered, talk, args.lines)
        load = os.getloadavg()[0]
        began, cpu0 = time.perf_counter(), cpu_seconds()
        lines = read_statement(path)
        read, cpu_read = time.perf_counter() - began, cpu_seconds() - cpu0
        result = reconcile(table, lines, builtin("twilio-voice"), Options(delay_seconds=Decimal(0)))
        total, cpu_total = time.perf_counter() - began, cpu_seconds() - cpu0
    s = result.summary
    print(s.story())
    print(
        f"{lines.num_rows:,} statement lines vs {table.num_rows:,} records: read {read:.2f} s, "
        f"reconciled in {total - read:.2f} s, total {total:.2f} s"
    )
    print(
        f"CPU (all threads): read {cpu_read:.2f} s, reconcile {cpu_total - cpu_read:.2f} s; "
        f"load average {load:.1f} on {os.cpu_count()} CPUs when timing began"
    )
    if args.lines == 1_000_000:
        verdict = "met" if total < 10 else "MISSED"
        print(f"1M figure: {total:.2f} s to read and reconcile a million lines (goal under 10 s: {verdict})")
    else:
        print("1M figure: run with --lines 1000000 (the goal: a million lines in under 10 s)")


if __name__ == "__main__":
    main()
