"""The records the plausibility guards hold back, found in SQL for the vectorised margin: the same records as
:func:`talktime.core.rating.margin.held_of`, with their reason codes, without a Python object per record.

Each reason is :mod:`talktime.store.held`'s predicate, whose "now" is ``least(first_received, now)``. A
record of a file has no ``first_received``: it is judged, as ``talktime invoice`` judges a month, as of the
end of its customer's month, or ``now`` if that is earlier. Two steps keep ten million records fast:

1. every record against the predicates with "now" itself (one comparison per reason, no time zone work): a
   record held as of an earlier moment is held as of ``now`` too, since "starts long ago" only grows with
   "now" and "starts in the future" cannot hold as of the end of the record's own month;
2. the few records found, again, with "now" the end of each one's customer month (``first_received``).

Owns: that SQL. Does not own: the rule (``core.plausibility``) or its predicates (``store.held``).
"""

from __future__ import annotations

from typing import Final

from talktime.core.rating.cards import PriceCard
from talktime.core.rating.margin import NO_CUSTOMER, Guard
from talktime.engine.dialects import DUCKDB
from talktime.simulate.card_sql import lit
from talktime.store.held import any_reason, predicates

__all__ = ["held_sql"]

#: The end of a record's column as the predicates read it: a file's records are as they ended.
_ENDED: Final = "ended_at"


def _month_end(zone: str) -> str:
    """SQL: the end of ``started_at``'s month in ``zone``, as an instant."""
    local = f"date_trunc('month', timezone({lit(zone)}, started_at)) + INTERVAL 1 MONTH"
    return f"timezone({lit(zone)}, {local})"


def held_sql(history: str, prices: PriceCard, customers: list[str], guard: Guard) -> str:
    """SQL for every record of ``history`` the guard holds back: its columns and ``reasons`` (the codes, in
    :data:`~talktime.core.plausibility.REASONS` order), in file order (``_row``). ``customers``: those
    whose zone may differ from the card's."""
    now = f"CAST({lit(guard.now.isoformat())} AS TIMESTAMPTZ)"
    limits = guard.limits
    found = (
        f"(SELECT * FROM (SELECT *, {now} AS first_received FROM {history}) "
        f"WHERE {any_reason(DUCKDB, _ENDED, guard.now, limits)})"
    )
    default = prices.customer(NO_CUSTOMER).timezone
    zones = {c: prices.customer(c).timezone for c in customers}
    cases = " ".join(f"WHEN {lit(c)} THEN {_month_end(z)}" for c, z in zones.items() if z != default)
    end = f"CASE customer {cases} ELSE {_month_end(default)} END" if cases else _month_end(default)
    judged = f"(SELECT * REPLACE (least(first_received, {end}) AS first_received) FROM {found})"
    codes = ", ".join(
        f"CASE WHEN coalesce({sql}, false) THEN {lit(code)} END"
        for code, sql in predicates(DUCKDB, _ENDED, guard.now, limits).items()
    )
    reasons = f"list_filter([{codes}], lambda x: x IS NOT NULL)"
    return f"(SELECT * FROM (SELECT *, {reasons} AS reasons FROM {judged}) WHERE len(reasons) > 0)"
