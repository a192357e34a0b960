"""Every cost entry's cost per key over a history (``simulate``, ``compare``): the margin report's cost stack
added up per key, the records no entry takes, and the entries ``--at`` left off.

Owns: one pass per cost entry over the records it is first to take, rated per provider month. Does not own:
which records an entry takes (``card_sql.py``) or the rating (``rate_groups.py``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Final

from talktime.core.rating.cards import CostCard
from talktime.core.simulate.costs import Missing, product_label
from talktime.core.simulate.rules import left_off_note
from talktime.simulate.card_sql import cut_sql, group_sql, taken_sql, uncosted_sql
from talktime.simulate.pass_engine import Passes
from talktime.simulate.rate_groups import rate_pass

ZERO: Final = Decimal(0)


def missing_by(engine: Passes, costs: CostCard, keys: Sequence[str]) -> dict[tuple[str, ...], Missing]:
    """Per key (SQL over the history's columns): the records no cost entry takes, by provider and product."""
    key_sql = ", ".join(f"{expr} AS k{i}" for i, expr in enumerate(keys))
    names = [f"k{i}" for i in range(len(keys))]
    rows = engine.connection.execute(
        f"SELECT {', '.join(names)}, provider, product, COUNT(*) FROM (SELECT {key_sql}, provider, product "
        f"FROM {engine.history()} WHERE {uncosted_sql(costs)}) GROUP BY ALL"
    ).fetchall()
    found: dict[tuple[str, ...], Missing] = defaultdict(Missing)
    for row in rows:
        key = tuple(str(k) for k in row[: len(keys)])
        provider, product, count = row[len(keys) :]
        found[key] += Missing({product_label(provider, product): int(count)})
    return dict(found)


def cost_by_modality(
    engine: Passes,
    costs: CostCard,
    keys: Sequence[str],
    skip_group: str | None = None,
    step: Callable[[str], None] = lambda _: None,
) -> dict[tuple[str, ...], dict[str, Decimal]]:
    """Per key: every cost entry's cost over the records it is first to take (per provider month), added up
    by modality, as the margin report's cost stack; ``skip_group`` leaves one card entry out."""
    out: dict[tuple[str, ...], dict[str, Decimal]] = defaultdict(dict)
    provider_month = {"session": cut_sql(engine.months(costs.period_timezone))}
    for first, where in taken_sql(costs):
        if first.group == skip_group:
            continue
        for entry in (e for e in costs.entries if e.group == first.group):
            step(f"costing {entry.id}")
            scale = engine.meter_into("m_cost", entry.policy, where, provider_month)
            for key, amount in rate_pass(engine, "m_cost", entry, scale, keys).amounts.items():
                stack = out[key]
                stack[entry.modality] = stack.get(entry.modality, ZERO) + amount
    return dict(out)


def cost_passes(costs: CostCard, skip_group: str | None = None) -> int:
    """How many times :func:`cost_by_modality` calls ``step``."""
    return sum(1 for e in costs.entries if e.group != skip_group)


def left_off_notes(engine: Passes, card: CostCard, left_off: Mapping[str, str]) -> list[str]:
    """Notes for the card entries ``--at`` left off that price some record of the history (``card`` is the
    card before pinning)."""
    notes = []
    for group, why in left_off.items():
        found = engine.connection.execute(
            f"SELECT COUNT(*) FROM {engine.history()} WHERE {group_sql(card, group)}"
        ).fetchall()
        if found[0][0]:
            notes.append(left_off_note(group, why, int(found[0][0])))
    return notes
