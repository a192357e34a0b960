"""Provider switch on the vectorised engine (DuckDB): the same numbers as
:func:`talktime.core.simulate.switch.compare`, for histories of tens of millions of records.

Owns: the switch's passes: the *from* provider's records (those its cost entry is first to take) metered
under each side (every part of a policy with parts), the *to* side reading them relabelled, the calls added
up, and with a price card every other cost entry (every modality) and price component per customer, plus the
records no entry takes. Does not own: the SQL rating (``passes.py``), metering (``talktime.engine``) or the
switch's shape and rules (``talktime.core.simulate``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Final

from talktime.core.rating.cards import CostCard, Entry, PriceCard
from talktime.core.rating.money import MoneyError
from talktime.core.simulate.rules import Rules
from talktime.core.simulate.switch import (
    NO_CUSTOMER,
    CallChange,
    CustomerMargin,
    Switch,
    assemble,
    switch_sides,
)
from talktime.engine.sources import canonical_parquet
from talktime.errors import InputError
from talktime.simulate.passes import (
    CUT_LENGTH,
    Passes,
    Rated,
    attrs_of,
    card_attrs,
    cost_by_modality,
    cost_passes,
    customer_month_sql,
    cut_sql,
    group_sql,
    left_off_notes,
    lit,
    match_sql,
    missing_by,
    month_sql,
    rate_pass,
    relabel_sql,
    supported,
)

ZERO: Final = Decimal(0)
_CUSTOMER: Final = (f"COALESCE(NULLIF(customer, ''), {lit(NO_CUSTOMER)})",)
_CALL: Final = (*_CUSTOMER, f"left(session, length(session) - {CUT_LENGTH})")

__all__ = ["compare_vectorised", "steps", "supported"]


def compare_vectorised(
    path: Path,
    from_id: str,
    to_id: str,
    costs: CostCard,
    prices: PriceCard | None = None,
    *,
    at: datetime | None = None,
    step: Callable[[str], None] = lambda _: None,
) -> Switch:
    """:func:`talktime.core.simulate.switch.compare` over the records at ``path``, on DuckDB. Check
    :func:`supported` first."""
    rules = Rules(at)
    card, left_off = rules.costs(costs)
    price_card = rules.prices(prices)
    before, after = switch_sides(costs, from_id, to_id, rules)
    why = supported(card, price_card)
    if why is not None:
        raise InputError(f"the vectorised compare cannot rate this card: {why}")
    policies = [e.policy for e in (*before, *after)]
    attrs = sorted({*attrs_of(policies), *card_attrs(card, price_card), *card_attrs(costs)})
    step("reading history")
    with canonical_parquet(path, attrs) as source:
        engine = Passes(source, attrs)
        try:
            notes = left_off_notes(engine, costs, left_off)
            return _compare(engine, before, after, card, price_card, rules, notes, step)
        finally:
            engine.close()


def steps(costs: CostCard, prices: PriceCard | None) -> int:
    """About how many times :func:`compare_vectorised` calls ``step`` (for a progress bar)."""
    if prices is None:
        return 4
    return 4 + cost_passes(costs) + len(prices.components)


def _side(engine: Passes, entries: Sequence[Entry], where: str, replace: Mapping[str, str]) -> Rated:
    """Every part of one side metered and rated per call, added up (records counted once)."""
    total = Rated()
    for index, entry in enumerate(entries):
        scale = engine.meter_into("m_side", entry.policy, where, replace)
        rated = rate_pass(engine, "m_side", entry, scale, _CALL)
        for key, amount in rated.amounts.items():
            if index == 0:
                total.records[key] = rated.records[key]
            total.seconds[key] = total.seconds.get(key, ZERO) + rated.seconds[key]
            total.amounts[key] = total.amounts.get(key, ZERO) + amount
    return total


def _compare(
    engine: Passes,
    before: Sequence[Entry],
    after: Sequence[Entry],
    costs: CostCard,
    prices: PriceCard | None,
    rules: Rules,
    notes: list[str],
    step: Callable[[str], None],
) -> Switch:
    selected = group_sql(costs, before[0].group)
    found = engine.connection.execute(f"SELECT 1 FROM {engine.history()} WHERE {selected} LIMIT 1").fetchall()
    if not found:
        raise InputError(
            f"--from {before[0].group!r}: no record in the history is one of its calls "
            f"({before[0].match.describe()}, and no earlier cost entry takes it)"
        )
    cut = {"session": cut_sql(month_sql(costs.period_timezone))}
    step(f"metering under {before[0].policy.id}")
    rated_from = _side(engine, before, selected, cut)
    step(f"metering under {after[0].policy.id}")
    relabel = relabel_sql(after[0].policy)
    rated_to = _side(engine, after, selected, {**relabel, **cut})
    notes = [*notes, *_notes(engine, selected, relabel, after[0])]
    missing = {key[0]: m for key, m in missing_by(engine, costs, _CUSTOMER).items()}
    margins = _margins(engine, costs, prices, before[0].group, step) if prices is not None else None
    step("adding up calls")
    changes = tuple(
        CallChange(
            key[0],
            key[1],
            rated_from.records[key],
            rated_from.seconds[key],
            rated_to.seconds.get(key, ZERO),
            rated_from.amounts[key],
            rated_to.amounts.get(key, ZERO),
        )
        for key in sorted(rated_from.records)
    )
    return assemble(before, after, costs.currency, changes, margins, missing, notes, rules)


def _notes(engine: Passes, selected: str, relabel: Mapping[str, str], to_entry: Entry) -> list[str]:
    if "kind" not in relabel:
        return []
    found = engine.connection.execute(
        f"SELECT COUNT(*) FILTER (WHERE kind IS DISTINCT FROM ({relabel['kind']})), "
        f"arg_min({relabel['kind']}, _row) FROM {engine.history()} WHERE {selected}"
    ).fetchall()[0]
    if not found[0]:
        return []
    return [f"{found[0]} record(s) read as kind {found[1]!r}, the kind {to_entry.group} counts"]


def _margins(
    engine: Passes,
    costs: CostCard,
    prices: PriceCard,
    switched: str,
    step: Callable[[str], None],
) -> dict[str, CustomerMargin]:
    """Each customer's revenue, minutes sold and every other provider's cost by modality, as the margin
    report has them: every cost entry over the records it is first to take (per provider month, split per
    customer), every price component per customer month."""
    if costs.currency != prices.currency:
        raise MoneyError(
            f"the cost card is in {costs.currency} and the price card in {prices.currency}; "
            "margins need one currency (no FX here)"
        )
    customers = [
        str(c)
        for (c,) in engine.connection.execute(
            f"SELECT DISTINCT {_CUSTOMER[0]} FROM {engine.history()} ORDER BY 1"
        ).fetchall()
    ]
    other = cost_by_modality(engine, costs, _CUSTOMER, skip_group=switched, step=step)
    revenue: dict[str, Decimal] = defaultdict(Decimal)
    seconds: dict[str, Decimal] = defaultdict(Decimal)
    customer_month = {"session": cut_sql(customer_month_sql(prices, customers))}
    for component in prices.components:
        step(f"pricing {component.id}")
        where = f"customer IS NOT NULL AND customer <> '' AND ({match_sql(component.match)})"
        scale = engine.meter_into("m_price", component.policy, where, customer_month)
        rated = rate_pass(engine, "m_price", component, scale, _CUSTOMER, own_groups=True)
        for (customer,), amount in rated.amounts.items():
            revenue[customer] += amount
            seconds[customer] += rated.seconds[(customer,)]
    return {c: CustomerMargin(revenue[c], seconds[c] / 60, dict(other.get((c,), {}))) for c in customers}
