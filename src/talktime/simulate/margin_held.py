"""The records the plausibility guards hold back, found in SQL for the vectorised margin: the same records as
:func:`talktime.core.rating.margin.held_of`, with their reason codes, without a Python object per record.

Each reason is :mod:`talktime.store.held`'s predicate, whose "now" is ``least(first_received, now)``. A
record of a file has no ``first_received``: it is judged, as ``talktime invoice`` judges a month, as of the
end of its customer's month, or ``now`` if that is earlier. Two steps keep ten million records fast:

1. every record against the predicates with "now" itself (one comparison per reason, no time zone work): a
   record held as of an earlier moment is held as of ``now`` too, since "starts long ago" only grows with
   "now" and "starts in the future" cannot hold as of the end of the record's own month;
2. the few records found, again, with "now" the end of each one's customer month (``first_received``).

A record a person accepted (:attr:`~talktime.core.plausibility.Limits.accepted`) is judged in Python, as the
invoices judge it: :func:`covered_rows` reads the few records the SQL holds that have an acceptance, and
:func:`~talktime.core.plausibility.hold_back` says which of them their acceptance still covers (every reason,
word for word; a record whose reasons changed since is still held). The SQL then leaves those rows out.
The reasons' text, and so an acceptance, has figures SQL does not write; the records with an acceptance are
a person's work, a few per month, so reading them costs nothing next to the scan.

Owns: that SQL and the acceptances' step. Does not own: the rule (``core.plausibility``) or its predicates
(``store.held``).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, Final

from talktime.core.plausibility import hold_back
from talktime.core.rating.cards import PriceCard
from talktime.core.rating.margin import NO_CUSTOMER, Guard
from talktime.core.records import RECORD_FIELDS, parse_record
from talktime.engine.dialects import DUCKDB
from talktime.simulate.card_sql import lit
from talktime.store.held import any_reason, predicates

if TYPE_CHECKING:
    import duckdb

__all__ = ["covered_rows", "held_sql"]

#: The end of a record's column as the predicates read it: a file's records are as they ended.
_ENDED: Final = "ended_at"


def _month_end(zone: str) -> str:
    """SQL: the end of ``started_at``'s month in ``zone``, as an instant."""
    local = f"date_trunc('month', timezone({lit(zone)}, started_at)) + INTERVAL 1 MONTH"
    return f"timezone({lit(zone)}, {local})"


def held_sql(
    history: str, prices: PriceCard, customers: list[str], guard: Guard, covered: Collection[int] = ()
) -> str:
    """SQL for every record of ``history`` the guard holds back: its columns and ``reasons`` (the codes, in
    :data:`~talktime.core.plausibility.REASONS` order), in file order (``_row``). ``customers``: those
    whose zone may differ from the card's; ``covered``: the rows (``_row``) a person's acceptance covers
    (:func:`covered_rows`), not held."""
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
    kept = f" AND _row NOT IN ({', '.join(str(int(row)) for row in sorted(covered))})" if covered else ""
    return f"(SELECT * FROM (SELECT *, {reasons} AS reasons FROM {judged}) WHERE len(reasons) > 0{kept})"


def covered_rows(
    connection: duckdb.DuckDBPyConnection,
    history: str,
    prices: PriceCard,
    customers: list[str],
    guard: Guard,
) -> frozenset[int]:
    """The rows (``_row``) of ``history`` the guard's SQL holds back whose record a person accepted, and
    whose acceptance still covers every reason it has (as :func:`~talktime.core.plausibility.hold_back`
    judges it for the invoices): none without acceptances."""
    accepted = guard.limits.accepted
    if not accepted:
        return frozenset()
    ids = ", ".join(lit(i) for i in sorted(accepted))
    trimmed = DUCKDB.trim.format(x="id")
    columns = ", ".join(DUCKDB.ident(name) for name in RECORD_FIELDS)
    held = held_sql(history, prices, customers, guard)
    table = connection.sql(f"SELECT _row, {columns} FROM {held} WHERE {trimmed} IN ({ids})").to_arrow_table()
    covered: set[int] = set()
    for values in table.to_pylist():
        row = int(values.pop("_row"))
        record = parse_record({k: v for k, v in values.items() if v is not None})
        _, still = hold_back([record], guard.limits, guard.moment(record, prices))
        if not still:
            covered.add(row)
    return frozenset(covered)
