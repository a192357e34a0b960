"""``calls``: each call's cost stack, price and margin (the rows of ``talktime margin --by session``), and one
call's records, each with the explain trail of every meter that costs or prices it.

The engine is chosen as for ``talktime margin``: DuckDB (vectorised, any size) unless a card uses a charge
model or a policy it does not handle, then the per-record reference, with a note saying why. Both give the
same report, Decimal for Decimal, so a face that shows these rows agrees with the command line.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from talktime.app.cards import cost_card, price_card, required_price_card
from talktime.app.explain import trail_lines
from talktime.app.history import HistorySource
from talktime.app.margin import session_report
from talktime.core.metering.meter import meter_records
from talktime.core.rating.cards import CostCard, Entry, PriceCard
from talktime.core.rating.margin import NO_CUSTOMER, MarginReport, MarginView, margin_view
from talktime.core.records import UsageRecord
from talktime.io.records_io import record_of_row

__all__ = [
    "CallKey",
    "CallMargins",
    "CallRecords",
    "MeterTrail",
    "RecordTrails",
    "added_up",
    "call_margins",
    "call_trails",
    "calls_index",
    "scannable_copy",
]

#: A call as the margin report keys it: (customer, session).
CallKey = tuple[str, str]


@dataclass(frozen=True, slots=True)
class CallMargins:
    """The margin report of every call and its rows as ``talktime margin --by session`` shows them."""

    report: MarginReport
    view: MarginView
    note: str  # why the reference rated the cards instead of DuckDB; empty when DuckDB did


def call_margins(records: Path, costs: Path | CostCard, prices: Path | PriceCard) -> CallMargins:
    """Every call's cost by provider and modality, price and margin, over the record file ``records``, on
    the engine ``talktime margin`` chooses (:func:`talktime.app.margin.session_report`)."""
    report, note = session_report(HistorySource(records), cost_card(costs), required_price_card(prices))
    return CallMargins(report, margin_view(report, "session"), note)


def calls_index(records: Iterable[UsageRecord]) -> dict[CallKey, list[UsageRecord]]:
    """The records of each call, keyed as the margin report keys its sessions, in file order."""
    found: dict[CallKey, list[UsageRecord]] = defaultdict(list)
    for record in records:
        found[(record.customer or NO_CUSTOMER, record.session_key)].append(record)
    return dict(found)


@dataclass(frozen=True, slots=True)
class MeterTrail:
    """One meter's explain trail of a record: on the cost side (a provider's meter) or the price side."""

    side: str  # "cost" or "price"
    entry: str  # the cost entry or price component id
    provider: str
    modality: str
    policy: str
    lines: tuple[str, ...]  # as ``talktime explain`` prints them


@dataclass(frozen=True, slots=True)
class RecordTrails:
    record: UsageRecord
    trails: tuple[MeterTrail, ...]
    uncosted: bool  # no cost entry takes the record: its cost is unknown, not zero


def call_trails(
    call: list[UsageRecord], costs: Path | CostCard, prices: Path | PriceCard
) -> list[RecordTrails]:
    """Each record of one call with the trail of every meter that costs or prices it. The call's records
    are metered together (a policy that rounds per session rounds them as a whole), as ``talktime explain``
    meters them inside the file."""
    card = cost_card(costs)
    plan = price_card(prices)
    assert plan is not None
    cost_sides = {r.id: card.entries_for(r) for r in call}
    price_sides = {r.id: tuple(c for c in plan.components if r.customer and c.match.matches(r)) for r in call}
    takers: dict[tuple[str, str], list[UsageRecord]] = defaultdict(list)
    entries: dict[tuple[str, str], Entry] = {}
    for record in call:
        for side, found in (("cost", cost_sides[record.id]), ("price", price_sides[record.id])):
            for entry in found:
                entries[(side, entry.id)] = entry
                takers[(side, entry.id)].append(record)
    metered = {key: meter_records(takers[key], entry.policy) for key, entry in entries.items()}
    out = []
    for record in call:
        trails: list[MeterTrail] = []
        for side, found in (("cost", cost_sides[record.id]), ("price", price_sides[record.id])):
            for entry in found:  # a card entry with parts (an LLM's input, cached, output): one each
                lines = [
                    line
                    for item in metered[(side, entry.id)]
                    if item.id == record.id
                    for line in trail_lines(item, entry.policy.id)
                ]
                provider = entry.policy.provider or entry.id
                trails.append(
                    MeterTrail(side, entry.id, provider, entry.modality, entry.policy.id, tuple(lines))
                )
        out.append(RecordTrails(record, tuple(trails), not cost_sides[record.id]))
    return out


def added_up(margins: CallMargins, by: str) -> MarginView:
    """The calls added up ``by`` customer (each customer's month), provider or period: the rows of
    ``talktime margin --by <by>``."""
    return margin_view(margins.report, by)


def scannable_copy(records: Path, folder: Path) -> Path:
    """``records`` as a Parquet file the engines scan as it is: the file itself when it already is one, else
    the records read once (record-format errors name the file, line and field) and written into ``folder``,
    so that every later pass reads Parquet instead of parsing the text again."""
    from talktime.engine.sources import scannable
    from talktime.io.records_io import read_records, write_records

    if scannable(records) is not None:
        return records
    target = folder / "records.parquet"
    write_records(target, read_records(records))
    return target


class CallRecords:
    """The records of a Parquet record file kept as one Arrow table (not a Python object per record), with
    the rows of each call (keyed as the margin report keys it) and of each customer; records are made for
    the rows asked for only, in file order."""

    def __init__(self, path: Path) -> None:
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute
        import pyarrow.parquet as pq

        pc: Any = pyarrow.compute  # its stubs type these calls over chunked arrays too narrowly
        self.table = pq.read_table(path)
        customer = self.table.column("customer")
        blank = pc.fill_null(pc.equal(customer, pa.scalar("")), True)
        customers = pc.if_else(blank, NO_CUSTOMER, customer)
        session = self.table.column("session")
        own = pc.binary_join_element_wise(pa.scalar("record:"), self.table.column("id"), pa.scalar(""))
        sessions = pc.if_else(pc.is_null(session), own, session)
        rows = pa.array(np.arange(self.table.num_rows, dtype=np.int64))
        keys = pa.table({"c": customers, "s": sessions, "i": rows})
        grouped = keys.group_by(["c", "s"], use_threads=False).aggregate([("i", "list")])
        lists = cast("pa.ListArray[Any]", grouped.column("i_list").combine_chunks())
        self._offsets = lists.offsets.to_numpy()
        self._rows = lists.values.to_numpy()
        names = zip(grouped.column("c").to_pylist(), grouped.column("s").to_pylist(), strict=True)
        self._calls = {(str(c), str(s)): i for i, (c, s) in enumerate(names)}
        self._customers = customers

    def __len__(self) -> int:
        return int(self.table.num_rows)

    def _records(self, rows: Any) -> list[UsageRecord]:
        import pyarrow as pa

        chosen = self.table.take(pa.array(rows, type=pa.int64()))
        rows = chosen.to_pylist()  # a value past the typed columns: from the row's _exact (record_of_row)
        return [record_of_row({k: v for k, v in r.items() if v is not None}) for r in rows]

    def of_call(self, key: CallKey) -> list[UsageRecord]:
        """The records of one call, in file order (none for a call the file does not hold)."""
        group = self._calls.get(key)
        if group is None:
            return []
        return self._records(self._rows[self._offsets[group] : self._offsets[group + 1]])

    def of_customer(self, customer: str) -> list[UsageRecord]:
        """The records of one customer (every month), in file order."""
        import pyarrow as pa
        import pyarrow.compute

        pc: Any = pyarrow.compute
        found = pc.indices_nonzero(pc.equal(self._customers, pa.scalar(customer)))
        return self._records(found)
