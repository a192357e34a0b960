"""What the dashboard shows, computed once when it loads a record file: every call's margin row (kept as
columns, with its sort orders), the month per customer and the cost per provider, the usage series, and the
records as one Arrow table for the call and invoice pages. All of it from :mod:`talktime.app`.

The slower questions (the what-if runs, each customer's invoices) are queued on :class:`Jobs` when the
pages start serving; their pages show each answer when it is ready.
"""

from __future__ import annotations

import gc
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from talktime.app.calls import (
    CallKey,
    CallRecords,
    RecordTrails,
    added_up,
    call_trails,
    scannable_copy,
)
from talktime.app.cards import cost_card, price_card
from talktime.app.margin import guarded_calls
from talktime.app.statements import StatementSpec
from talktime.app.usage_series import UsageSeries, usage_series
from talktime.app.what_if import WhatIfChoices, what_if_choices
from talktime.core.rating.cards import CostCard, PriceCard
from talktime.core.rating.margin import MarginView
from talktime.web.calls_table import CallsTable
from talktime.web.jobs import Jobs

if TYPE_CHECKING:
    from collections.abc import Mapping

    from talktime.core.plausibility import Accepted


class Served(Protocol):
    """What a page says of a served dashboard's data (``talktime serve --costs --prices``): whose records,
    of which window, as of when, and whether a newer snapshot is being made (:mod:`talktime.web.served`)."""

    #: when the snapshot's window opens: the pages list a customer's month only when it began then or later
    since: datetime

    def line(self) -> str: ...


@dataclass(slots=True)
class Dashboard:
    """A record file with its cards, rated once: the pages read from here."""

    source: str
    scan: Path  # the records as Parquet (the file itself, or a copy made once)
    costs: CostCard
    prices: PriceCard
    note: str  # why the reference rated the cards instead of DuckDB; empty when DuckDB did
    currency: str
    calls: CallsTable
    customers: MarginView
    providers: MarginView
    usage: UsageSeries
    records: CallRecords
    choices: WhatIfChoices
    load_seconds: float
    ledger: Path | None = None
    statements: tuple[StatementSpec, ...] = ()  # --statement: provider statements for /reconcile
    guards: Path | None = None  # --guards: the limits /flagged and /invoices apply
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    jobs: Jobs = field(default_factory=Jobs)
    folder: tempfile.TemporaryDirectory[str] | None = None
    served: Served | None = None  # set when the records are a snapshot of a tenant's in the store
    card_files: tuple[str, str] = ("", "")  # --costs and --prices as given (the commands pages print)

    @property
    def policies(self) -> list[str]:
        """The ids of every policy the cards meter with, in card order, each once."""
        found = [e.policy.id for e in (*self.costs.entries, *self.prices.components)]
        return list(dict.fromkeys(found))

    @property
    def months(self) -> list[tuple[str, str]]:
        """Each customer's months in the file (customer, YYYY-MM), as the margin report has them; served, only
        the months the snapshot's window holds whole (:func:`talktime.app.snapshot.whole_months`: a customer
        west of UTC has the window's first hours in its month before, a stub no page lists as a month)."""
        found = [(str(r["customer"]), str(r["period"])) for r in self.customers.rows]
        if self.served is None:
            return found
        from talktime.app.snapshot import whole_months

        return whole_months(found, self.prices, self.served.since)

    def trails(self, key: CallKey) -> list[RecordTrails]:
        return call_trails(self.records.of_call(key), self.costs, self.prices)

    def totals(self) -> dict[str, Decimal]:
        """Minutes sold, cost, price and margin over every call (exact)."""
        return self.calls.totals


def load(
    records: Path,
    costs: Path | CostCard,
    prices: Path | PriceCard,
    *,
    ledger: Path | None = None,
    statements: tuple[StatementSpec, ...] | list[StatementSpec] = (),
    guards: Path | None = None,
    source: str | None = None,
    as_of: datetime | None = None,
    collect: bool = True,
    tenant: str | None = None,
    accepted: Mapping[str, Accepted] | None = None,
) -> Dashboard:
    """Rate the record file once: margins and usage on DuckDB, the calls table's orders, the records kept as
    an Arrow table. A CSV or JSON Lines file is read once into a Parquet copy that every step then scans.
    ``source`` names the records on the pages (default: the file); ``as_of`` is "now" for the invoices'
    guards (default: when loading starts). ``collect``: a full garbage collection at the end (a server
    already answering pages passes False: over millions of objects it stops every thread for seconds).
    ``tenant`` picks the guards' limits and ``accepted`` is the store's acceptances of these records (a
    served snapshot's): the HELD marks then count an accepted record as the invoices do."""
    began = time.perf_counter()
    started = as_of or datetime.now(UTC)
    card = cost_card(costs)
    plan = price_card(prices)
    assert plan is not None
    folder = tempfile.TemporaryDirectory(prefix="talktime-dashboard-")
    # The report holds a few objects per call and no cycles: the cycle collector would only scan its
    # millions of objects again and again while it is made (as `talktime margin` does, see app.margin).
    collecting = gc.isenabled()
    gc.disable()
    try:
        scan = scannable_copy(records, Path(folder.name))
        margins = guarded_calls(  # held calls marked, as the invoices hold them back
            scan, card, plan, guards=guards, now=started, tenant=tenant, accepted=accepted
        )
        customers = added_up(margins, "customer")
        providers = added_up(margins, "provider")
        calls = CallsTable(margins.view.rows, margins.view.columns)
        note, currency = margins.note, margins.view.currency
        if source is not None:  # a record a note names is where the reader knows it, not in a copy of ours
            note = note.replace(str(scan), source).replace(str(records), source)
        del margins  # every call's report: the table above keeps what the pages show
        usage = usage_series(scan, card, plan)
        kept = CallRecords(scan)
    finally:
        if collecting:
            gc.enable()
    if collect:
        gc.collect()
    used = [str(r["provider"]) for r in providers.rows]
    return Dashboard(
        str(records) if source is None else source,
        scan,
        card,
        plan,
        note,
        currency,
        calls,
        customers,
        providers,
        usage,
        kept,
        what_if_choices(card, used),
        time.perf_counter() - began,
        ledger,
        statements=tuple(statements),
        guards=guards,
        started=started,
        folder=folder,
        card_files=(
            str(costs) if isinstance(costs, Path) else "",
            str(prices) if isinstance(prices, Path) else "",
        ),
    )
