"""``simulate``: what each policy bills for the same calls, against exact billing; the calls generated from
a distribution, or a history (a file or a store) with the rest of its cost by modality.

The calls and the result live in a temporary folder for the run; the result carries what a face needs to
draw afterwards (the durations histogram, when asked).
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from talktime.app.cards import cost_card
from talktime.app.history import HistorySource, named_at_store, store_history
from talktime.app.methodology import policy as load
from talktime.app.progress import Progress, no_progress
from talktime.core.metering.policy import Policy
from talktime.core.rating.cards import CostCard
from talktime.core.simulate.spec import (
    Mix,
    describe_distribution,
    describe_mix,
    parse_distribution,
    parse_mix,
)
from talktime.errors import InputError

if TYPE_CHECKING:
    from talktime.simulate.run import Simulation

__all__ = ["Generated", "Histogram", "Simulated", "simulate"]

#: Calls' answered durations in bins: ``([(bin start s, calls)], bin width s, longest shown s)``.
Histogram = tuple[list[tuple[Decimal, int]], Decimal, Decimal]


@dataclass(frozen=True, slots=True)
class Generated:
    """Calls to generate: a distribution spec (``fixed:S``, ``lognormal:mean=S,sigma=X``, ...), how many,
    channel and participant mixes (``1:0.7,2:0.3``; None: all one), and the seed. A face passes what it
    was given: a spec of None (no calls to generate) with a mix is refused, mixes shape generated calls."""

    distribution: str | None
    calls: int | None
    channels: str | None = None
    participants: str | None = None
    seed: int = 7


@dataclass(frozen=True, slots=True)
class Simulated:
    """The simulation, and the histogram of its calls' durations when it was asked for."""

    simulation: Simulation
    histogram: Histogram | None


def _mix(value: str | None, what: str) -> Mix:
    return parse_mix(value, what) if value else ((1, Decimal(1)),)


def simulate(
    policies: Sequence[str | Policy],
    costs: Path | CostCard,
    *,
    history: HistorySource | None = None,
    generate: Generated | None = None,
    at: datetime | str | None = None,
    histogram: bool = False,
    progress: Progress = no_progress,
) -> Simulated:
    """Meter the calls under every policy (and price them by ``costs``). ``at`` applies the rules and
    prices in force on that date (YYYY-MM-DD) to every record; by default each record is metered by those in
    force when it started, and generated calls start on the first day of the month after every current
    version and price. Exactly one source: a history (a file or a store) or calls to generate."""
    from talktime.core.simulate.rules import Rules, at_date
    from talktime.io.records_io import BeyondTypedLayout
    from talktime.simulate.generate import duration_histogram, write_calls
    from talktime.simulate.passes import cost_passes
    from talktime.simulate.run import Simulation, anchor, meter_policies

    chosen = [load(p) for p in policies]
    source = history or HistorySource()
    spec_text = generate.distribution if generate is not None else None
    if sum(x is not None for x in (source.records, source.store, spec_text)) != 1:
        raise InputError("give exactly one of --records FILE, --store URL or --distribution SPEC --calls N")
    generated = generate if spec_text is not None else None
    if generated is not None and generated.calls is None:
        raise InputError("--distribution needs --calls N, the number of calls to generate")
    card = cost_card(costs)
    moment = at_date(at) if isinstance(at, str) else at
    on_history = generated is None
    total = len(chosen) + 1 + (cost_passes(card) if on_history else 0)
    with tempfile.TemporaryDirectory(prefix="talktime-sim-") as folder, progress(total) as step:
        trusted = False
        if generated is not None:
            calls = generated.calls or 0
            start = moment or anchor(chosen, card)
            spec, ch, pa = (
                parse_distribution(spec_text or ""),
                _mix(generated.channels, "channels"),
                _mix(generated.participants, "participants"),
            )
            step(f"generating {calls:,} calls")
            path = Path(folder) / "calls.parquet"
            written = write_calls(
                path, spec, calls, seed=generated.seed, channels=ch, participants=pa, anchor=start
            )
            sim = Simulation(
                f"{describe_distribution(spec)} x {calls:,} calls (seed {generated.seed})",
                written,
                Rules(start),  # generated calls start on the anchor: its rules are every call's own
                chosen,
                calls=calls,
                seed=generated.seed,
                channels=describe_mix(ch),
                participants=describe_mix(pa),
            )
            trusted = True
        else:
            if generate is not None and (generate.channels or generate.participants):
                raise InputError("--channels and --participants shape generated calls; use --distribution")
            step("reading history")
            path = (
                source.records
                if source.records is not None
                else store_history(str(source.store), source.tenant, Path(folder) / "h.parquet")
            )
            sim = Simulation(f"history {source.label}", 0, Rules(moment), chosen)
            sim.notes.append(
                "Each record is read as a call of the kind each policy counts; on history a policy "
                "meters the records of its modality. Costs are rated per provider month."
            )
        try:
            sim.impacts, sim.stack, notes = meter_policies(
                path, chosen, card, sim.rules, history=on_history, trusted=trusted, step=step
            )
        except BeyondTypedLayout as error:
            raise named_at_store(error, source).hinted(
                "simulate meters on DuckDB alone; `talktime meter --policy P` and `talktime compare` meter "
                "it exactly on the reference"
            ) from None
        sim.notes += notes
        if sim.impacts and not sim.records:
            sim.records = sim.impacts[0].records
        no_cost = sorted({i.cost_note for i in sim.impacts if i.cost is None and i.cost_note})
        sim.notes += [f"No cost: {n}." for n in no_cost]
        return Simulated(sim, duration_histogram(path) if histogram else None)
