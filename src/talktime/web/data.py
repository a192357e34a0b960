"""What the dashboard shows, computed once when it loads a record file: every call's margin row, the usage
series, and each call's records (for its page). All of it from :mod:`talktime.app`."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from talktime.app.calls import CallKey, CallMargins, RecordTrails, call_margins, call_trails, calls_index
from talktime.app.cards import cost_card, price_card
from talktime.app.usage_series import UsageSeries, usage_series
from talktime.core.rating.cards import CostCard, PriceCard
from talktime.core.records import UsageRecord
from talktime.io.records_io import read_records


@dataclass(slots=True)
class Dashboard:
    """A record file with its cards, rated once: the pages read from here."""

    source: str
    costs: CostCard
    prices: PriceCard
    margins: CallMargins
    usage: UsageSeries
    calls: dict[CallKey, list[UsageRecord]]
    rows: tuple[dict[str, object], ...]
    load_seconds: float
    row_index: dict[CallKey, int] = field(default_factory=dict)

    @property
    def currency(self) -> str:
        return self.margins.view.currency

    @property
    def policies(self) -> list[str]:
        """The ids of every policy the cards meter with, in card order, each once."""
        found = [e.policy.id for e in (*self.costs.entries, *self.prices.components)]
        return list(dict.fromkeys(found))

    def row(self, key: CallKey) -> dict[str, object] | None:
        index = self.row_index.get(key)
        return None if index is None else self.rows[index]

    def trails(self, key: CallKey) -> list[RecordTrails]:
        return call_trails(self.calls.get(key, []), self.costs, self.prices)

    def totals(self) -> dict[str, Decimal]:
        """Minutes sold, cost, price and margin over every call (exact)."""
        out = {"minutes": Decimal(0), "cost": Decimal(0), "price": Decimal(0)}
        for row in self.rows:
            for name in out:
                value = row[name]
                assert isinstance(value, Decimal)
                out[name] += value
        out["margin"] = out["price"] - out["cost"]
        return out


def load(records: Path, costs: Path | CostCard, prices: Path | PriceCard) -> Dashboard:
    """Rate the record file once: margins and usage on DuckDB, the records of each call indexed."""
    began = time.perf_counter()
    card = cost_card(costs)
    plan = price_card(prices)
    assert plan is not None
    margins = call_margins(records, card, plan)
    usage = usage_series(records, card, plan)
    calls = calls_index(read_records(records))
    rows = margins.view.rows
    index = {(str(r["customer"]), str(r["session"])): i for i, r in enumerate(rows)}
    return Dashboard(
        str(records), card, plan, margins, usage, calls, rows, time.perf_counter() - began, index
    )
