"""Running several policies over the same calls on the vectorised engine (DuckDB), one pass each.

Owns: the moment generated calls start (the anchor), which records each policy meters and as what (a
generated call is a call of every policy; on history, each policy meters the records of its modality), and
collecting each policy's totals, cost and the history's cost stack into
:class:`~talktime.core.simulate.impact.PolicyImpact` lines. Does not own: generating calls, the SQL rating
(``passes.py``) or the rules (``talktime.core.simulate.rules``).

Rules (ADR 0004): on history, each record is metered and priced by the versions in force when it started
(as ``talktime meter`` and ``margin`` do), or with ``--at`` by those in force on that date. Generated calls
start on the anchor and are metered by the rules in force on it. Every record keeps its ``channels``; each
policy bills them by its own rule. Costs are rated per provider month, as in the margin report.

Which records a policy meters: each is read as the kind the policy counts (and its provider and product),
so all policies bill the same calls. On history, a policy with a modality meters only the records of that
modality (a record's cost entry says which, else its kind; ``talktime.core.simulate.costs``), so a
telephony profile does not bill the LLM's records; the other modalities' cost and the records no entry
prices are on every line.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Final

from talktime.core.decimals import plain
from talktime.core.metering.describe import one_line
from talktime.core.metering.policy import Policy
from talktime.core.rating.cards import CostCard, Entry, Match
from talktime.core.simulate.costs import Missing, Stack, placeholder_note
from talktime.core.simulate.impact import PolicyImpact
from talktime.core.simulate.rules import Rules, cost_group
from talktime.engine.sources import canonical_parquet
from talktime.errors import InputError
from talktime.simulate.passes import (
    Passes,
    attrs_of,
    card_attrs,
    cost_by_modality,
    cut_sql,
    entry_supported,
    left_off_notes,
    lit,
    missing_by,
    modality_sql,
    month_sql,
    rate_pass,
    relabel_sql,
    taken_sql,
    uncosted_sql,
)

ZERO: Final = Decimal(0)
_ALL: Final = ("'all'",)


def anchor(policies: Sequence[Policy], card: CostCard | None) -> datetime:
    """The first day of the month on or after every policy's current version and its current price, so the
    rules and prices in force today apply to every simulated call."""
    moments = [p.current.effective_from for p in policies]
    for policy in policies:
        for entry in cost_group(card, policy.id) if card is not None else ():
            moments.append(entry.versions[-1].effective_from)
    latest = max(moments).astimezone(UTC)
    first = latest.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if first == latest:
        return first
    return (
        first.replace(year=first.year + 1, month=1)
        if first.month == 12
        else first.replace(month=first.month + 1)
    )


@dataclass(slots=True)
class Simulation:
    """Every policy over the same calls, with where the calls came from and which rules applied."""

    source: str
    records: int
    rules: Rules
    policies: list[Policy]
    impacts: list[PolicyImpact] = field(default_factory=list)
    calls: int | None = None
    seed: int | None = None
    channels: str = ""
    participants: str = ""
    notes: list[str] = field(default_factory=list)
    #: On history: what the records cost today by modality, and the records no entry prices.
    stack: Stack | None = None


@dataclass(frozen=True, slots=True)
class _Metered:
    records: int
    first_start: int | None  # microseconds since 1970 of the earliest record metered
    exact: Decimal
    billable: Decimal
    cost: Decimal | None
    exact_cost: Decimal | None


def _one_part(
    engine: Passes, component: Policy, entry: Entry | None, where: str, rewrite: dict[str, str]
) -> _Metered:
    """One policy (or part) metered into ``m_sim``, and rated by its entry (exact quantities too)."""
    scale = engine.meter_into("m_sim", component, where, rewrite)
    found = engine.connection.execute(
        "SELECT COUNT(*), COALESCE(SUM(CAST(_actual AS HUGEINT)), 0), "
        "COALESCE(SUM(CAST(_billable AS HUGEINT)), 0), MIN(_start) FROM m_sim"
    ).fetchall()[0]
    records, actual, billable = int(found[0]), int(found[1]), int(found[2])
    first_start = None if found[3] is None else int(found[3])
    cost = exact_cost = None
    if entry is not None:
        cost = rate_pass(engine, "m_sim", entry, scale, _ALL).amounts.get(("all",), ZERO)
        engine.connection.execute(
            "CREATE OR REPLACE TEMP VIEW m_exact AS SELECT * REPLACE (_actual AS _billable) FROM m_sim"
        )
        exact_cost = rate_pass(engine, "m_exact", entry, 6, _ALL).amounts.get(("all",), ZERO)
    return _Metered(
        records,
        first_start,
        plain(Decimal(actual).scaleb(-6)),
        plain(Decimal(billable).scaleb(-scale)),
        cost,
        exact_cost,
    )


def _priced_by(card: CostCard, policy: Policy, rules: Rules) -> tuple[dict[str | None, Entry], str]:
    """The card's entries for the policy by part, under ``rules``, and how it is priced (or why not). The
    entries take every record they are given: the policy chose them."""
    group = cost_group(card, policy.id)
    if not group:
        return {}, f"no [costs.{policy.id}] on the card"
    for entry in group:
        why = entry_supported(entry)
        if why is not None:
            return {}, f"{why}: not rated here"
    try:
        entries = {e.part: replace(rules.entry(e), match=Match()) for e in group}
    except InputError as why:
        return {}, str(why)
    first = next(iter(entries.values()))
    label = "the version at each record's start"
    if rules.at is not None:
        label = f"from {(group[0].version_at(rules.at) or group[0].versions[0]).label}"
    how = f"{group[0].group} ({first.versions[-1].model.name}, {label}, per {first.unit})"
    return entries, how


def meter_policies(
    path: Path,
    policies: Sequence[Policy],
    card: CostCard,
    rules: Rules,
    *,
    history: bool,
    trusted: bool = False,
    step: Callable[[str], None] = lambda _: None,
) -> tuple[list[PolicyImpact], Stack | None, list[str]]:
    """Each policy's line over the records at ``path`` (one engine pass per policy and part); on history also
    the records' cost stack under the same rules. Returns the lines, the stack and notes."""
    costs, left_off = rules.costs(card)
    attrs = [*attrs_of(rules.policy(p) for p in policies), *card_attrs(card)]
    with canonical_parquet(path, sorted(set(attrs))) as source:
        engine = Passes(source, attrs, trusted=trusted)
        try:
            notes = left_off_notes(engine, card, left_off) if history else []
            modality = modality_sql(costs)
            chosen: list[str] = []
            for policy in policies:
                where = "TRUE"
                if history and policy.modality is not None:
                    where, note = _selection(engine, rules.policy(policy), modality)
                    notes += [note] if note else []
                chosen.append(where)
            stacks = _stacks(engine, costs, list(dict.fromkeys(chosen)), step) if history else {}
            lines = []
            for policy, where in zip(policies, chosen, strict=True):
                step(f"metering under {policy.id}")
                lines.append(_line(engine, policy, card, costs, rules, where, stacks.get(where)))
        finally:
            engine.close()
    stack = next(iter(stacks.values()), None)
    whole = None if stack is None else stack[0]
    marked = {g for line in lines for g in (*line.placeholder, *line.placeholder_now)}
    marked |= set(whole.placeholder if whole is not None else ())
    if marked:
        notes.append(placeholder_note(sorted(marked)))
    return lines, whole, notes


def _selection(engine: Passes, policy: Policy, modality: str) -> tuple[str, str]:
    """The history's records a policy meters: those of its modality (or of none), and of them only the kinds
    it counts when some are (a carrier's legs, not the room's SIP participants); else all of them, each
    read as its kind. Returns the SQL and a note when records of the modality are left out."""
    assert policy.modality is not None
    mine = f"({modality} = {lit(policy.modality)} OR {modality} IS NULL)"
    kinds = policy.current.params.kinds
    if kinds is None:
        return mine, ""
    counted = f"kind IN ({', '.join(lit(k) for k in kinds)})"
    rows = engine.connection.execute(
        f"SELECT COUNT(*) FILTER (WHERE {counted}), COUNT(*), "
        f"string_agg(DISTINCT kind, ', ' ORDER BY kind) FILTER (WHERE NOT ({counted})) "
        f"FROM {engine.history()} WHERE {mine}"
    ).fetchall()
    own, everything, others = int(rows[0][0]), int(rows[0][1]), rows[0][2]
    if own == 0 or own == everything:
        return mine, ""
    note = (
        f"{policy.id}: meters the {own:,} {policy.modality} records of the kinds it counts "
        f"({', '.join(kinds)}); the other {everything - own:,} (kind {others}) are not its calls"
    )
    return f"{mine} AND {counted}", note


def _micros(moment: datetime) -> int:
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _stacks(
    engine: Passes, costs: CostCard, selections: Sequence[str], step: Callable[[str], None]
) -> dict[str, tuple[Stack, Decimal, bool, tuple[str, ...]]]:
    """The history's cost by modality (every cost entry, as the margin report rates it) and the records no
    entry prices; and for each selection the part of that cost its records carry (what a policy metering
    them replaces: every entry that prices them, split from each month's bill as the margin report splits
    it). One pass per cost entry: each record's key says which selections keep it. With each, the card
    entries with placeholder prices that price some of the records (the whole history's, the selection's)."""
    flags = [
        f"(CASE WHEN _row IN (SELECT _row FROM {engine.history()} WHERE {where}) THEN 'y' ELSE 'n' END)"
        for where in selections
    ]
    per_key = cost_by_modality(engine, costs, (" || ".join(flags),), step=step)
    by_modality = dict(Stack().by_modality)
    for stack in per_key.values():
        for name, cost in stack.items():
            by_modality[name] = by_modality.get(name, ZERO) + cost
    marked = [(entry.group, where) for entry, where in taken_sql(costs) if entry.placeholder]

    def placeholders(selection: str) -> tuple[str, ...]:
        """The placeholder-priced card entries that price some record ``selection`` keeps."""
        return tuple(
            sorted(
                group
                for group, taken in marked
                if engine.connection.execute(
                    f"SELECT EXISTS (SELECT 1 FROM {engine.history()} WHERE ({selection}) AND ({taken}))"
                ).fetchall()[0][0]
            )
        )

    whole = Stack(by_modality, missing_by(engine, costs, _ALL).get(("all",), Missing()), placeholders("TRUE"))
    out = {}
    for index, where in enumerate(selections):
        mine = (sum(c.values(), ZERO) for (key,), c in per_key.items() if key[index] == "y")
        uncosted = engine.connection.execute(
            f"SELECT COUNT(*) FROM {engine.history()} WHERE ({where}) AND {uncosted_sql(costs)}"
        ).fetchall()[0][0]
        out[where] = (whole, sum(mine, ZERO), bool(uncosted), placeholders(where))
    return out


def _line(
    engine: Passes,
    policy: Policy,
    card: CostCard,
    costs: CostCard,
    rules: Rules,
    where: str,
    stacked: tuple[Stack, Decimal, bool, tuple[str, ...]] | None,
) -> PolicyImpact:
    applied = rules.policy(policy)
    entries, how = _priced_by(card, policy, rules)
    rewrite = {**relabel_sql(applied), "session": cut_sql(month_sql(costs.period_timezone))}
    parts = [
        _one_part(engine, component, entries.get(component.part), where, rewrite)
        for component in applied.components()
    ]
    priced = bool(entries) and all(entries.get(c.part) is not None for c in applied.components())
    rule = one_line(applied.current.params)
    earliest = parts[0].first_start
    if rules.at is None and earliest is not None and _micros(policy.current.effective_from) > earliest:
        rule += f"; records before {policy.current.effective_from.date().isoformat()} by their own version"
    cost_now = others = None
    stack, own_incomplete = None, False
    placeholder_now: tuple[str, ...] = ()
    if stacked is not None:
        stack, cost_now, own_incomplete, placeholder_now = stacked
        others = stack.total - cost_now
    return PolicyImpact(
        policy.id,
        policy.name,
        rule,
        parts[0].records,
        sum((p.exact for p in parts), ZERO),
        sum((p.billable for p in parts), ZERO),
        costs.currency,
        sum((p.cost or ZERO for p in parts), ZERO) if priced else None,
        sum((p.exact_cost or ZERO for p in parts), ZERO) if priced else None,
        how,
        unit=policy.unit,
        modality=policy.modality,
        cost_now=cost_now,
        others_cost=others,
        missing=stack.missing if stack is not None else Missing(),
        own_incomplete=own_incomplete,
        placeholder=tuple(sorted({e.group for e in entries.values() if e.placeholder})) if priced else (),
        placeholder_now=placeholder_now,
    )
