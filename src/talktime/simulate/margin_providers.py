"""``talktime margin --by provider`` on DuckDB without a report object per call: each session's amounts from
the per-call passes (``margin_run.MarginRun.sums``), added up per cost entry as
:func:`talktime.core.rating.margin.margin_rows` adds up the report's sessions.

Owns: the provider rows from a run's session sums. Does not own: metering or rating (``margin_run.py``), or
how rows are shown (``rows_view``).

Exactness. A session's price is attributed to its entries in proportion to their cost (``cost / total`` of
28 significant digits, then times the price), and each row adds those up session by session: the rows are
the reference's own, Decimal for Decimal, because every operation is the reference's, on the same values,
in the same order (sessions in the report's order, entries in card order). What is saved is a
``SessionMargin`` per call and the properties it recomputes for each entry (its cost three times over).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Final

from talktime.core.rating.cards import CostCard
from talktime.core.rating.margin import UNCOSTED_ROW, MarginRow, MarginView, rows_view, shown_modalities
from talktime.simulate.margin_run import MarginRun, SessionSums

__all__ = ["provider_view"]

ZERO: Final = Decimal(0)
ONE: Final = Decimal(1)
#: A session no cost entry costs has one share, of no provider.
_NO_COST: Final[Mapping[str, Decimal]] = {"(no provider cost)": ZERO}


def provider_view(run: MarginRun, step: Callable[[str], None] = lambda _: None) -> MarginView:
    """``margin_view(run.report(), "provider")``: the same rows, from the run's session sums."""
    found = run.sums()
    step("adding up providers")
    rows, used = _rows(found, run.costs)
    ordered = [rows[key] for key in sorted(rows)]
    return rows_view(
        "provider",
        run.prices.currency,
        ordered,
        shown_modalities(used),
        found.uncosted_ids,
        found.held_ids,
    )


def _rows(found: SessionSums, costs: CostCard) -> tuple[dict[tuple[str, str], MarginRow], set[str]]:
    """The rows by (entry, "") as ``margin_rows`` keys them, and the modalities of the entries that cost some
    session."""
    modality_of = {entry.id: entry.modality for entry in costs.entries}
    placeholders = costs.placeholders
    rows: dict[tuple[str, str], MarginRow] = {}
    used: set[str] = set()
    for sid, session_costs in enumerate(found.costs):
        price, quantities = found.price[sid], found.quantities[sid]
        total = sum(session_costs.values(), ZERO)
        loss = int(price - total < 0)
        parts = session_costs or _NO_COST
        for entry_id, cost in parts.items():
            share = (cost / total) if total else ONE / len(parts)
            row = rows.get((entry_id, ""))
            if row is None:
                row = rows[(entry_id, "")] = MarginRow(entry_id, "")
            row.sessions += 1
            row.loss_sessions += loss
            row.minutes += quantities.get(entry_id, ZERO)
            row.cost += cost
            row.price += price * share
            modality = modality_of.get(entry_id, "other") if session_costs else "other"
            row.modality_costs[modality] = row.modality_costs.get(modality, ZERO) + cost
            held = found.held.get(sid)
            if held:
                row.add_held(*held)
            if entry_id in placeholders:
                row.placeholder_sessions += 1
                row.placeholder_entries.add(entry_id)
        used.update(modality_of[entry_id] for entry_id in session_costs)
        uncosted = found.uncosted.get(sid)
        if uncosted:  # records no cost entry takes belong to no provider: a row of their own
            ids, modalities = uncosted
            row = rows.get((UNCOSTED_ROW, ""))
            if row is None:
                row = rows[(UNCOSTED_ROW, "")] = MarginRow(UNCOSTED_ROW, "")
            row.sessions += 1
            row.incomplete_sessions += 1
            row.uncosted_records += len(ids)
            row.uncosted_modalities |= modalities
    return rows, used
