"""``compare``: a provider switch, history re-metered under another profile and priced, per call, customer
and total; with prices, the price that keeps the margin over every modality's cost.

The engine is chosen here: DuckDB (vectorised, any size) or the per-record reference, ``auto`` taking DuckDB
unless a card uses a charge model or a policy it does not handle, or a record has a value DuckDB's typed
columns cannot hold (seconds with more than 6 decimals; a count past 64 bits), and saying so in a note.
Both give the same numbers.
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from talktime.app.cards import cost_card, price_card
from talktime.app.history import HistorySource, history_file, history_records, named_at_store
from talktime.app.progress import Progress, no_progress
from talktime.core.rating.cards import CostCard, PriceCard

if TYPE_CHECKING:
    from talktime.core.simulate.switch import Switch

__all__ = ["CompareEngine", "compare", "compare_totals"]

FALLBACK = "used the per-record reference: "


class CompareEngine(StrEnum):
    auto = "auto"
    duckdb = "duckdb"
    reference = "reference"


def compare(
    from_: str,
    to: str,
    history: HistorySource,
    costs: Path | CostCard,
    prices: Path | PriceCard | None = None,
    *,
    at: datetime | str | None = None,
    engine: CompareEngine = CompareEngine.auto,
    progress: Progress = no_progress,
) -> Switch:
    """Re-meter ``history`` from profile ``from_`` to profile ``to``. ``at`` applies the rules and prices in
    force on that date (YYYY-MM-DD) to every record. A fallback from ``auto`` to the reference is the last
    note of the result, with its reason."""
    from talktime.core.simulate.rules import at_date
    from talktime.core.simulate.switch import compare as compare_switch
    from talktime.engine.compile import UnsupportedPolicy
    from talktime.io.records_io import BeyondTypedLayout
    from talktime.simulate import switch_run

    moment = at_date(at) if isinstance(at, str) else at
    with tempfile.TemporaryDirectory(prefix="talktime-cmp-") as folder:
        card = cost_card(costs)
        prices_card = price_card(prices)
        why = switch_run.supported(card, prices_card)
        vectorised = engine is CompareEngine.duckdb or (engine is CompareEngine.auto and why is None)
        fallback = FALLBACK + why if why and engine is CompareEngine.auto else ""
        switch = None
        if vectorised:
            try:
                with progress(switch_run.steps(card, prices_card)) as step:
                    path = history_file(history, Path(folder))
                    switch = switch_run.compare_vectorised(
                        path, from_, to, card, prices_card, at=moment, step=step
                    )
            except (UnsupportedPolicy, BeyondTypedLayout) as error:
                if isinstance(error, BeyondTypedLayout):
                    error = named_at_store(error, history)
                if engine is CompareEngine.duckdb:
                    if isinstance(error, BeyondTypedLayout):
                        hint = "--engine reference (or auto, the default) meters it exactly"
                        raise error.hinted(hint) from None
                    raise error from None
                fallback = f"{FALLBACK}{error}"
        if switch is None:
            records = history_records(history, Path(folder))
            switch = compare_switch(records, from_, to, card, prices_card, at=moment)
        if fallback:
            switch = replace(switch, notes=(*switch.notes, fallback))
        return switch


def compare_totals(
    from_: str,
    to: str,
    history: HistorySource,
    costs: Path | CostCard,
    prices: Path | PriceCard | None = None,
) -> Switch:
    """:func:`compare`, without each call's change (``calls`` empty): the per-customer and total changes the
    dashboard's what-if page shows. A dashboard keeps one result per switch it offers for as long as it
    serves the records; a change per call, in every switch, would be millions of Python values at 10
    million events that no page shows, each one more object for the server's cycle collector to walk."""
    return replace(compare(from_, to, history, costs, prices), calls=())
