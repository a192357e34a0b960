"""``meter``: records metered under a policy, per record and in total, on an engine or the reference.

The engine (DuckDB by default, any engine URL, or ``reference``) meters; unless only totals are asked, the
scalar reference meters the same file alongside, so every record comes with its full explain trail, and a
record the two meter differently stops the run. Records stream: :attr:`Metering.totals` is complete once
:attr:`Metering.records` has been consumed (at once when ``summary`` is asked).

A file holding a record the engines' typed columns cannot hold (seconds with more than 6 decimals, as an
SDK's float ``0.1 + 0.2`` arrives; a count past 64 bits) is metered by the reference when no engine was
named (:attr:`Metering.note` says why); an engine named explicitly refuses it, naming the record and field.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from talktime.app.methodology import policy as load
from talktime.app.progress import Ticker, no_ticks
from talktime.core.metering.meter import MeteredRecord, Totals, meter_iter
from talktime.core.metering.policy import Policy
from talktime.core.records import UsageRecord
from talktime.engine.urls import connect
from talktime.errors import MeteringError, RecordError
from talktime.io.records_io import BeyondTypedLayout, RecordFile, count_hint

__all__ = ["DEFAULT_ENGINE", "MeteredRecord", "Metering", "Totals", "metering", "record_source"]

DEFAULT_ENGINE = "duckdb"


@dataclass(frozen=True, slots=True)
class Metering:
    """A metering run: the policy, its records (an iterator, in file order) and the totals they fill."""

    policy: Policy
    records: Iterator[MeteredRecord]
    totals: Totals
    note: str = ""  # why the reference metered instead of the default engine; empty when it did not


@contextmanager
def record_source(path: Path, ticks: Ticker = no_ticks) -> Iterator[Iterator[UsageRecord]]:
    """Records of a file; an error while they are metered names the file and line."""
    source = RecordFile(path)
    try:
        yield ticks(iter(source), count_hint(path), f"metering {path.name}")
    except RecordError as error:
        raise error if error.where else error.located(source.where) from None
    except MeteringError as error:
        raise MeteringError(f"{source.where}, {error}") from None


@contextmanager
def metering(
    path: Path,
    policy: str | Policy,
    *,
    engine: str | None = None,
    summary: bool = False,
    ticks: Ticker = no_ticks,
) -> Iterator[Metering]:
    """Meter the records of ``path`` under ``policy`` on ``engine`` (None: DuckDB; ``reference``: the scalar
    meter alone). With ``summary`` an engine computes the totals alone and no record is yielded. The engine
    and the file stay open inside the ``with`` block, where the records are consumed."""
    chosen = load(policy)
    totals = Totals.for_policy(chosen)
    with ExitStack() as stack:
        url = engine or DEFAULT_ENGINE
        metered: Iterator[MeteredRecord] | None = None
        note = ""
        if url.strip() != "reference":
            runner = connect(url)
            stack.callback(runner.close)
            try:
                if summary:
                    totals, metered = runner.totals(path, chosen), iter(())
                else:
                    engine_records = _validated(runner.meter(path, chosen))
                    records = stack.enter_context(record_source(path, ticks))
                    metered = _counted(_with_trails(engine_records, meter_iter(records, chosen)), totals)
            except BeyondTypedLayout as error:
                if engine is not None:  # named: the user asked for that engine
                    raise error.hinted("--engine reference meters it exactly (so does the default)") from None
                note = f"metered by the reference: {error}"
        if metered is None:
            records = stack.enter_context(record_source(path, ticks))
            metered = _counted(meter_iter(records, chosen), totals)
        yield Metering(chosen, metered, totals, note)


def _validated(metered: Iterator[MeteredRecord]) -> Iterator[MeteredRecord]:
    """The same records, the engine's validation run before any output is written."""
    first = next(metered, None)
    return metered if first is None else itertools.chain([first], metered)


def _with_trails(
    engine: Iterable[MeteredRecord], reference: Iterable[MeteredRecord]
) -> Iterator[MeteredRecord]:
    """The engine's records as the scalar meter writes them, with every step of their explain trails.

    Both come in file order. A record the two meter differently stops the run: that is a bug to report.
    """
    for ours, theirs in itertools.zip_longest(engine, reference):
        if (
            ours is None
            or theirs is None
            or (ours.id, ours.billable_seconds) != (theirs.id, theirs.billable_seconds)
        ):
            found = theirs or ours
            raise MeteringError(
                f"record {found.id if found else '?'!r}: the engine and the scalar meter disagree "
                f"({ours.billable_seconds if ours else 'no record'} s vs "
                f"{theirs.billable_seconds if theirs else 'no record'} s); please report this"
            )
        yield theirs


def _counted(metered: Iterable[MeteredRecord], totals: Totals) -> Iterator[MeteredRecord]:
    for item in metered:
        totals.add(item)
        yield item
