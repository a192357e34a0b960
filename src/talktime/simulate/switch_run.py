"""Provider switch on the vectorised engine (DuckDB): the same numbers as
:func:`talktime.core.simulate.switch.compare`, for histories of tens of millions of records.

Owns: the switch's passes: the *from* provider's records (those its cost entry is first to take) metered
under each side (every part of a policy with parts), the *to* side reading them relabelled, the calls added
up, and with a price card every other cost entry (every modality) and price component per customer, plus the
records no entry takes. Does not own: the SQL rating (``passes.py``), metering (``talktime.engine``) or the
switch's shape and rules (``talktime.core.simulate``).

Speed: a history of 10M records has about two million calls, so Python touches each call once: one query
joins both sides' metered records, adds them up per call and sorts the calls; a per-unit part's seconds and
amount are computed once per distinct billable integer, and the calls are made from those columns.
"""

from __future__ import annotations

import operator
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Final

from talktime.core.decimals import plain
from talktime.core.rating.cards import CostCard, Entry, PriceCard
from talktime.core.rating.charges import PerUnit
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
    cut_sql,
    group_sql,
    left_off_notes,
    lit,
    match_sql,
    missing_by,
    rate_pass,
    relabel_sql,
    supported,
    taken_sql,
)

ZERO: Final = Decimal(0)
#: The columns of a metering pass this module reads (``rate_pass`` and the calls).
_METERED: Final = ("_row", "id", "customer", "session", "_meter", "_start", "_billable")
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


@dataclass(frozen=True, slots=True)
class _Part:
    """One part of one side metered into ``table``; ``rated`` per call, unless the part's one per-unit price
    makes each call's amount a function of its billable integer (added up per call in SQL)."""

    table: str
    entry: Entry
    scale: int
    rated: Rated | None


def _side(
    engine: Passes, entries: Sequence[Entry], where: str, replace: Mapping[str, str], name: str
) -> list[_Part]:
    """Every part of one side metered (into ``name0``, ``name1``...) and, unless per unit, rated per call."""
    parts = []
    checked = engine.ids_checked
    for index, entry in enumerate(entries):
        table = f"{name}{index}"
        scale = engine.meter_into(table, entry.policy, where, replace, _METERED)
        engine.ids_checked = True  # every part meters the same records: their ids are checked
        linear = len(entry.versions) == 1 and isinstance(entry.versions[0].model, PerUnit)
        rated = None if linear else rate_pass(engine, table, entry, scale, _CALL)
        parts.append(_Part(table, entry, scale, rated))
    engine.ids_checked = checked
    return parts


def _calls(engine: Passes, before: Sequence[_Part], after: Sequence[_Part]) -> tuple[CallChange, ...]:
    """Each call of the *from* side, sorted by customer and session: its records, and on each side its
    billable quantity and cost, the parts added up in order. One query gives every call's billable integers
    per part; a per-unit part's seconds and amount are computed once per distinct integer (as ``rate_pass``
    does), another part's come from its rating."""
    import duckdb

    parts = [*before, *after]
    keys_sql = ", ".join(f"{expr} AS k{i}" for i, expr in enumerate(_CALL))
    # every part meters the same records: joined record by record, grouped by call once
    joins = "".join(
        f" LEFT JOIN (SELECT _row, _billable AS b FROM {part.table}) AS p{i} USING (_row)"
        for i, part in enumerate(parts[1:], 1)
    )

    def query(integer: str) -> str:
        sums = ", ".join(
            f"CAST(SUM(CAST(p{i}.b AS HUGEINT)) AS {integer}) AS b{i}" for i in range(len(parts))
        )
        return (
            f"SELECT k0, k1, COUNT(*) AS n, {sums} FROM (SELECT _row, {keys_sql}, _billable AS b "
            f"FROM {parts[0].table}) AS p0{joins} GROUP BY k0, k1 ORDER BY k0, k1"
        )

    try:
        found = engine.arrow_columns(query("BIGINT"))
    except (duckdb.OutOfRangeException, duckdb.ConversionException):  # a call beyond 64 bits
        found = engine.arrow_columns(query("VARCHAR"))
        for i in range(len(parts)):
            found[f"b{i}"] = [None if b is None else int(b) for b in found[f"b{i}"]]
    keys = list(zip(found["k0"], found["k1"], strict=True))
    sides = []
    for side, offset in ((before, 0), (after, len(before))):
        seconds: list[Decimal] = []
        amounts: list[Decimal] = []
        for index, part in enumerate(side):
            part_seconds, part_amounts = _part_values(part, keys, found[f"b{offset + index}"])
            if index == 0:
                seconds, amounts = part_seconds, part_amounts
            else:
                seconds = list(map(operator.add, seconds, part_seconds))
                amounts = list(map(operator.add, amounts, part_amounts))
        sides.append((seconds, amounts))
    (seconds_from, amounts_from), (seconds_to, amounts_to) = sides
    return tuple(
        map(
            CallChange,
            found["k0"],
            found["k1"],
            found["n"],
            seconds_from,
            seconds_to,
            amounts_from,
            amounts_to,
        )
    )


def _part_values(
    part: _Part, keys: list[tuple[str, str]], bs: list[int | None]
) -> tuple[list[Decimal], list[Decimal]]:
    """One part's billable seconds and amount per call (zero for a call it has no record of)."""
    if part.rated is not None:
        rated = part.rated
        return [rated.seconds.get(k, ZERO) for k in keys], [rated.amounts.get(k, ZERO) for k in keys]
    model = part.entry.versions[0].model
    assert isinstance(model, PerUnit)
    unit, price, scale = part.entry.unit_seconds, model.unit_price, part.scale
    known: dict[int | None, tuple[Decimal, Decimal]] = {None: (ZERO, ZERO)}
    for b in set(bs) - known.keys():
        assert b is not None
        seconds = plain(Decimal(b).scaleb(-scale))
        known[b] = (seconds, seconds / unit * price)
    values = list(map(known.__getitem__, bs))
    return [v[0] for v in values], [v[1] for v in values]


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
    cut = {"session": cut_sql(engine.months(costs.period_timezone))}
    step(f"metering under {before[0].policy.id}")
    parts_from = _side(engine, before, selected, cut, "m_from")
    step(f"metering under {after[0].policy.id}")
    relabel = relabel_sql(after[0].policy)
    engine.ids_checked = True  # the same records read as the other provider's: their ids are checked
    parts_to = _side(engine, after, selected, {**relabel, **cut}, "m_to")
    engine.ids_checked = False
    notes = [*notes, *_notes(engine, selected, relabel, after[0])]
    missing = {key[0]: m for key, m in missing_by(engine, costs, _CUSTOMER).items()}
    margins = _margins(engine, costs, prices, before[0].group, step) if prices is not None else None
    step("adding up calls")
    changes = _calls(engine, parts_from, parts_to)
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
    customer_month = {"session": cut_sql(engine.customer_months(prices, customers))}
    for component in prices.components:
        step(f"pricing {component.id}")
        where = f"customer IS NOT NULL AND customer <> '' AND ({match_sql(component.match)})"
        scale = engine.meter_into("m_price", component.policy, where, customer_month)
        rated = rate_pass(engine, "m_price", component, scale, _CUSTOMER, own_groups=True)
        for (customer,), amount in rated.amounts.items():
            revenue[customer] += amount
            seconds[customer] += rated.seconds[(customer,)]
    marked: dict[str, set[str]] = defaultdict(set)
    for entry, taken in taken_sql(costs):  # the customers some other placeholder-priced entry costs
        if entry.placeholder and entry.group != switched:
            for (customer,) in engine.connection.execute(
                f"SELECT DISTINCT {_CUSTOMER[0]} FROM {engine.history()} WHERE {taken}"
            ).fetchall():
                marked[str(customer)].add(entry.group)
    return {
        c: CustomerMargin(revenue[c], seconds[c] / 60, dict(other.get((c,), {})), tuple(sorted(marked[c])))
        for c in customers
    }
