"""``usage_series``: usage over time, actual beside billable, per customer (the meters its plan prices) and
per provider (the meters the cost card pays), one point per UTC day and meter.

The same meters as the margin report: each price component over the customer records it matches, each cost
entry over the records it takes (the first matching entry, then the additional ones), sessions cut at the
rating month. The actual quantity is what the meter measured before any rounding, minimum or channel rule;
the billable one is what it bills, so their gap is the rounding uplift. On DuckDB for any size; the
per-record reference gives the same numbers (and is used when a policy does not compile, or when a record
has a value DuckDB's typed columns cannot hold: seconds with more than 6 decimals, a count past 64 bits).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, timedelta
from decimal import Decimal
from pathlib import Path

from talktime.app.cards import cost_card, price_card
from talktime.core.metering.meter import meter_records
from talktime.core.rating.cards import CostCard, Entry, PriceCard
from talktime.core.records import UsageRecord

__all__ = ["UsagePoint", "UsageSeries", "usage_series", "usage_series_reference"]

_EPOCH = date(1970, 1, 1)
_DAY_MICROS = 86_400_000_000


@dataclass(frozen=True, slots=True)
class UsagePoint:
    """One day of one meter for one customer (price side) or provider (cost side)."""

    day: date  # UTC
    key: str  # the customer, or the provider
    meter: str  # the price component or cost entry id
    unit: str  # "s" for time meters, else the count unit (token, character, request, credit)
    actual: Decimal  # seconds for time meters, else the count
    billable: Decimal
    records: int


@dataclass(frozen=True, slots=True)
class UsageSeries:
    by_customer: tuple[UsagePoint, ...]
    by_provider: tuple[UsagePoint, ...]


def _unit(entry: Entry) -> str:
    return entry.policy.unit if entry.policy.is_count else "s"


def _provider(entry: Entry) -> str:
    return entry.policy.provider or entry.id


def usage_series(records: Path, costs: Path | CostCard, prices: Path | PriceCard) -> UsageSeries:
    """The series over the record file ``records``, on DuckDB; on the reference, exactly, when a record has
    a value DuckDB's typed columns cannot hold."""
    from talktime.io.records_io import BeyondTypedLayout, read_records

    try:
        return _on_duckdb(records, costs, prices)
    except BeyondTypedLayout:
        return usage_series_reference(read_records(records), costs, prices)


def _on_duckdb(records: Path, costs: Path | CostCard, prices: Path | PriceCard) -> UsageSeries:
    from talktime.engine.sources import canonical_parquet
    from talktime.simulate.margin_run import month_cuts
    from talktime.simulate.passes import Passes, card_attrs, match_sql, taken_sql

    card = cost_card(costs)
    plan = price_card(prices)
    assert plan is not None
    attrs = card_attrs(card, plan)
    with canonical_parquet(records, attrs) as source:
        engine = Passes(source, attrs)
        try:

            def points(entry: Entry, where: str, month: str, key: str) -> list[UsagePoint]:
                scale = engine.meter_into("_m", entry.policy, where, month_cuts(entry, month))
                rows = engine.connection.execute(
                    f"SELECT _start // {_DAY_MICROS} AS d, {key} AS k, _meter, "
                    "CAST(sum(_actual) AS HUGEINT), CAST(sum(_billable) AS HUGEINT), count(*) "
                    "FROM _m GROUP BY d, k, _meter ORDER BY d, k"
                ).fetchall()
                return [
                    UsagePoint(
                        _EPOCH + timedelta(days=int(d)),
                        str(k),
                        str(meter),
                        _unit(entry),
                        Decimal(int(actual)).scaleb(-6),
                        Decimal(int(billable)).scaleb(-scale),
                        int(n),
                    )
                    for d, k, meter, actual, billable, n in rows
                ]

            provider_points: list[UsagePoint] = []
            cost_month = engine.months(card.period_timezone)
            taken = {first.group or first.id: where for first, where in taken_sql(card)}
            for entry in card.entries:  # every part of an entry with several (an LLM's input, output)
                where = taken.get(entry.group or entry.id)
                if where is not None:
                    found = points(entry, where, cost_month, "provider")
                    provider_points += [_renamed(p, _provider(entry)) for p in found]
            customers = sorted(set(plan.customers))
            own_month = engine.customer_months(plan, customers)
            customer_points: list[UsagePoint] = []
            for component in plan.components:
                where = f"customer IS NOT NULL AND customer <> '' AND ({match_sql(component.match)})"
                customer_points += points(component, where, own_month, "customer")
        finally:
            engine.close()
    return UsageSeries(_merged(customer_points), _merged(provider_points))


def _renamed(point: UsagePoint, key: str) -> UsagePoint:
    return UsagePoint(point.day, key, point.meter, point.unit, point.actual, point.billable, point.records)


def _merged(points: Iterable[UsagePoint]) -> tuple[UsagePoint, ...]:
    """Points of the same day, key and meter added up, in (day, key, meter) order."""
    found: dict[tuple[date, str, str, str], list[Decimal]] = {}
    for p in points:
        sums = found.setdefault((p.day, p.key, p.meter, p.unit), [Decimal(0), Decimal(0), Decimal(0)])
        sums[0] += p.actual
        sums[1] += p.billable
        sums[2] += p.records
    return tuple(
        UsagePoint(day, key, meter, unit, a, b, int(n))
        for (day, key, meter, unit), (a, b, n) in sorted(found.items())
    )


def usage_series_reference(
    records: Iterable[UsageRecord], costs: Path | CostCard, prices: Path | PriceCard
) -> UsageSeries:
    """The same series with the per-record reference meter (records read whole)."""
    card = cost_card(costs)
    plan = price_card(prices)
    assert plan is not None
    listed = list(records)
    taken: dict[str, list[UsageRecord]] = defaultdict(list)
    entries: dict[str, Entry] = {}
    for record in listed:
        for entry in card.entries_for(record):
            entries.setdefault(entry.id, entry)
            taken[entry.id].append(record)
    provider_points = [
        point
        for entry_id, entry in entries.items()
        for point in _reference_points(taken[entry_id], entry, _provider(entry), by_customer=False)
    ]
    customer_points = [
        point
        for component in plan.components
        for point in _reference_points(
            [r for r in listed if r.customer and component.match.matches(r)], component, "", by_customer=True
        )
    ]
    return UsageSeries(_merged(customer_points), _merged(provider_points))


def _reference_points(
    records: list[UsageRecord], entry: Entry, provider: str, *, by_customer: bool
) -> list[UsagePoint]:
    by_id = {r.id: r for r in records}
    out = []
    for item in meter_records(records, entry.policy):
        record = by_id[item.id]
        day = record.started_at.astimezone(UTC).date()
        key = str(record.customer) if by_customer else provider
        out.append(
            UsagePoint(
                day,
                key,
                item.meter,
                _unit(entry),
                item.actual_seconds,
                item.billable_seconds,
                1,
            )
        )
    return out
