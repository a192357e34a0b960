"""The records the plausibility guards hold back, found in SQL for the vectorised margin: the same records as
:func:`talktime.core.rating.margin.held_of`, with their reason codes, without a Python object per record.

Each reason is :mod:`talktime.store.held`'s predicate, whose "now" is ``least(first_received, now)``. A
record of a file has no ``first_received``: it is judged, as ``talktime invoice`` judges a month, as of the
end of its customer's month, or ``now`` if that is earlier. Two steps keep ten million records fast:

1. every record against the predicates with "now" itself (one comparison per reason, no time zone work): a
   record held as of an earlier moment is held as of ``now`` too, since "starts long ago" only grows with
   "now" and "starts in the future" cannot hold as of the end of the record's own month;
2. the few records found, again, with "now" the end of each one's customer month (``first_received``).

Records a store kept (the served dashboard's snapshot, ``margin --store``: the guard's limits carry the
store's word on them, a :class:`~talktime.core.plausibility.Kept`) are judged as the store judges them
(:func:`~talktime.core.plausibility.judged_as_of`): the time-worded reasons as of the moment the store
gives a record (its first receipt; :func:`covered_rows` registers them as an Arrow table, joined by id), and
none for a record it gives none (received within an hour before its start to a day after it, where no
time-worded limit flags it).

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
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

from talktime.core.plausibility import Kept, hold_back
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
#: Later than any moment: the predicates' "now" cap, lifted for a store's records (their moment rules).
_LATEST: Final = datetime(9999, 1, 1, tzinfo=UTC)
#: The relation of a store's moments (``rid``, ``moment``) :func:`covered_rows` registers on the connection.
MOMENTS: Final = "_talktime_store_moments"


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
    (:func:`covered_rows`), not held. A guard carrying a store's word (a ``Kept``) reads the moments
    :func:`covered_rows` registered on the connection: call it first."""
    now = f"CAST({lit(guard.now.isoformat())} AS TIMESTAMPTZ)"
    limits = guard.limits
    kept = limits.accepted if isinstance(limits.accepted, Kept) else None
    stored = kept is not None
    moments = (
        f"(SELECT *, {now} AS first_received FROM {history})" if kept is None else _store_moments(history)
    )
    at = _LATEST if stored else guard.now  # a store's moment is the moment itself: no "now" caps it
    found = f"(SELECT * FROM {moments} WHERE {any_reason(DUCKDB, _ENDED, at, limits)})"
    default = prices.customer(NO_CUSTOMER).timezone
    zones = {c: prices.customer(c).timezone for c in customers}
    cases = " ".join(f"WHEN {lit(c)} THEN {_month_end(z)}" for c, z in zones.items() if z != default)
    end = f"CASE customer {cases} ELSE {_month_end(default)} END" if cases else _month_end(default)
    judged = (
        found
        if stored
        else f"(SELECT * REPLACE (least(first_received, {end}) AS first_received) FROM {found})"
    )
    codes = ", ".join(
        f"CASE WHEN coalesce({_timed(code, sql) if stored else sql}, false) THEN {lit(code)} END"
        for code, sql in predicates(DUCKDB, _ENDED, at, limits).items()
    )
    reasons = f"list_filter([{codes}], lambda x: x IS NOT NULL)"
    spared = f" AND _row NOT IN ({', '.join(str(int(row)) for row in sorted(covered))})" if covered else ""
    return f"(SELECT * FROM (SELECT *, {reasons} AS reasons FROM {judged}) WHERE len(reasons) > 0{spared})"


#: The reasons worded in time: judged as of the moment a store gives a record, none without one.
_TIMED: Final = ("starts-in-future", "starts-long-ago")


def _timed(code: str, sql: str) -> str:
    """A predicate over a store's records: a time-worded one holds only for a record given a moment."""
    return f"(first_received IS NOT NULL AND {sql})" if code in _TIMED else sql


def _store_moments(history: str) -> str:
    """SQL: ``history``'s records, each with ``first_received`` the moment the store judges it as of
    (:func:`~talktime.core.plausibility.judged_as_of`; NULL for a record received near its start), from the
    relation :func:`covered_rows` registers (:data:`MOMENTS`)."""
    trimmed = DUCKDB.trim.format(x="h.id")
    return (
        f"(SELECT h.*, m.moment AS first_received FROM (SELECT * FROM {history}) h "
        f"LEFT JOIN {MOMENTS} m ON {trimmed} = m.rid)"
    )


def _register_moments(connection: duckdb.DuckDBPyConnection, kept: Kept) -> None:
    """Register :data:`MOMENTS`, the moment of each record the store's word gives one, as an Arrow table
    (a backfill gives every record one: SQL text listing them would take the parser seconds per 100,000)."""
    import pyarrow as pa

    moments = {**kept.received, **{rid: made.judged_at for rid, made in kept.items()}}
    table = pa.table(
        {
            "rid": pa.array(list(moments), pa.string()),
            "moment": pa.array(list(moments.values()), pa.timestamp("us", tz="UTC")),
        }
    )
    connection.register(MOMENTS, table)


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
    if isinstance(accepted, Kept):
        _register_moments(connection, accepted)
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
