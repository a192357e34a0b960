"""SQL for what the cards take: which records a cost entry prices (first entry first, as the margin report),
which no entry takes, a record's modality, its rating month in a zone, and the ``as_provider`` relabelling.

Owns: the card's matches as DuckDB SQL over the canonical record columns. Does not own: running the
queries (``pass_engine.py``), metering (``talktime.engine``) or rating (``rate_groups.py``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from talktime.core.metering.policy import Policy
from talktime.core.rating.cards import CostCard, Entry, Match, PriceCard
from talktime.core.rating.margin import KIND_MODALITY
from talktime.core.records import ATTR_PREFIX
from talktime.engine.compile import attr_columns
from talktime.engine.dialects import DUCKDB

_SEP: Final = "\x1f"
#: How long the cut (separator + YYYY-MM) that :func:`cut_sql` appends to each session key is.
CUT_LENGTH: Final = len(_SEP) + 7


def lit(value: str) -> str:
    return DUCKDB.str_lit(value)


def match_sql(match: Match) -> str:
    """SQL true for the records ``match`` takes (each given field lower-cased among the allowed values)."""
    parts = []
    for name, allowed in match.fields.items():
        column = DUCKDB.ident(name)
        values = ", ".join(lit(v) for v in allowed)
        parts.append(f"({column} IS NOT NULL AND lower(CAST({column} AS VARCHAR)) IN ({values}))")
    return " AND ".join(parts) or "TRUE"


def month_sql(zone: str, moment: str = "started_at") -> str:
    """SQL for the month (YYYY-MM) ``moment`` falls in, in ``zone`` (``period_label``)."""
    return f"strftime(timezone({lit(zone)}, {moment}), '%Y-%m')"


def customer_month_sql(
    prices: PriceCard, customers: Iterable[str], moment: str = "started_at", customer: str = "customer"
) -> str:
    """SQL for the month of ``moment`` in the zone of the ``customer`` column's customer."""
    cases = [
        f"WHEN {lit(c)} THEN {month_sql(prices.customer(c).timezone, moment)}"
        for c in customers
        if prices.customer(c).timezone != prices.timezone
    ]
    if not cases:
        return month_sql(prices.timezone, moment)
    return f"CASE {customer} {' '.join(cases)} ELSE {month_sql(prices.timezone, moment)} END"


def cut_sql(month: str) -> str:
    """Each session key with its rating month appended, so session rounding never crosses a month."""
    return f"COALESCE(session, 'record:' || id) || {lit(_SEP)} || {month}"


def relabel_sql(policy: Policy) -> dict[str, str]:
    """The ``as_provider`` rewrite in SQL: the other provider's provider, product and a kind it counts."""
    out: dict[str, str] = {}
    if policy.provider:
        out["provider"] = lit(policy.provider)
    if policy.product:
        out["product"] = lit(policy.product)
    kinds = policy.current.params.kinds
    if kinds is not None:
        allowed = ", ".join(lit(k) for k in kinds)
        out["kind"] = f"CASE WHEN kind IS NOT NULL AND kind IN ({allowed}) THEN kind ELSE {lit(kinds[0])} END"
    return out


def attrs_of(policies: Iterable[Policy]) -> list[str]:
    return sorted({a for p in policies for a in attr_columns(p)})


def card_attrs(costs: CostCard, prices: PriceCard | None = None) -> list[str]:
    """Every ``attr.*`` column the cards read: their policies' and their matches' (``attr.model``)."""
    entries = [*costs.entries, *(prices.components if prices is not None else ())]
    names = {a for e in entries for a in attr_columns(e.policy)}
    names |= {name for e in entries for name in e.match.fields if name.startswith(ATTR_PREFIX)}
    return sorted(names)


def group_firsts(costs: CostCard) -> list[Entry]:
    """The first entry of each card entry (one per part share a match), in card order."""
    seen: set[str] = set()
    out = []
    for entry in costs.entries:
        if entry.group not in seen:
            seen.add(entry.group)
            out.append(entry)
    return out


def taken_sql(costs: CostCard) -> list[tuple[Entry, str]]:
    """Each card entry's first entry with SQL true for the records it prices, as ``CostCard.entries_for``:
    an entry the records it is the first (not additional) entry to take, in card order; an ``additional``
    entry the records it matches that some other entry prices. Only the other entries that could take a
    record of the entry's match are named (:func:`overlap`): the rest cannot change the answer, and each
    costs a pass a test of every record it reads."""
    out: list[tuple[Entry, str]] = []
    earlier: list[Entry] = []
    firsts = [e for e in group_firsts(costs) if not e.additional]
    for entry in group_firsts(costs):
        if entry.additional:
            mine = match_sql(entry.match)
            others = [f"NOT ({match_sql(e.match)})" for e in firsts if overlap(e.match, entry.match)]
            out.append((entry, f"({mine}) AND NOT ({' AND '.join(others) or 'TRUE'})"))
            continue
        named = [f"NOT ({match_sql(t.match)})" for t in earlier if overlap(t.match, entry.match)]
        out.append((entry, " AND ".join([f"({match_sql(entry.match)})", *named])))
        earlier.append(entry)
    return out


def overlap(one: Match, other: Match) -> bool:
    """Whether some record could match both: no field both name has allowed values in common.

    >>> overlap(Match({"provider": ("openai",)}), Match({"provider": ("twilio",), "kind": ("leg",)}))
    False
    >>> overlap(Match({"provider": ("livekit",)}), Match({"kind": ("agent",)}))
    True
    """
    return all(
        set(allowed) & set(other.fields[name]) for name, allowed in one.fields.items() if name in other.fields
    )


def group_sql(costs: CostCard, group: str) -> str:
    """SQL true for the records the card entry ``group`` prices (see :func:`taken_sql`)."""
    return next((where for entry, where in taken_sql(costs) if entry.group == group), "FALSE")


def uncosted_sql(costs: CostCard) -> str:
    """SQL true for the records no cost entry takes (an additional entry alone does not price a record)."""
    firsts = [e for e in group_firsts(costs) if not e.additional]
    return " AND ".join(f"NOT ({match_sql(e.match)})" for e in firsts) or "TRUE"


def modality_sql(costs: CostCard) -> str:
    """SQL for a record's modality: its cost entry's, else its kind's, else NULL (``record_modality``)."""
    firsts = [e for e in group_firsts(costs) if not e.additional]
    whens = [f"WHEN {match_sql(e.match)} THEN {lit(e.modality)}" for e in firsts]
    whens += [f"WHEN kind = {lit(kind)} THEN {lit(modality)}" for kind, modality in KIND_MODALITY.items()]
    return f"(CASE {' '.join(whens)} END)"
