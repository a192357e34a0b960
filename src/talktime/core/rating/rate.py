"""Rating: an entry's records metered by its policy, priced by its charge version, and the amount split back
over the records (per-call cost or price).

Owns: grouping metered records by meter and charge version, turning billable seconds into the entry's unit
exactly, and the per-record allocation. Does not own: which period or customer the records belong to (the
caller selects them) or rounding (invoices).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from talktime.core.metering.meter import MeteredRecord, meter_records
from talktime.core.rating.cards import ChargeVersion, Entry
from talktime.core.rating.charges import Charge
from talktime.core.records import UsageRecord
from talktime.errors import MeteringError

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class RatedItem:
    """One record under one entry: its metered quantities and the part of the amount it carries."""

    metered: MeteredRecord
    quantity: Decimal
    actual_quantity: Decimal
    amount: Decimal

    @property
    def record_id(self) -> str:
        return self.metered.id


@dataclass(frozen=True, slots=True)
class RatedGroup:
    """An entry's records of one meter under one charge version, priced together."""

    entry: Entry
    meter: str
    version: ChargeVersion
    charge: Charge
    items: tuple[RatedItem, ...]

    @property
    def actual_quantity(self) -> Decimal:
        return sum((i.actual_quantity for i in self.items), ZERO)

    @property
    def billable_quantity(self) -> Decimal:
        return self.charge.quantity

    @property
    def policy_version(self) -> str:
        versions = sorted({i.metered.version for i in self.items})
        return ", ".join(versions)


def _order(metered: MeteredRecord) -> tuple[datetime, str]:
    return metered.started_at, metered.id


def rate_entry(entry: Entry, records: Iterable[UsageRecord]) -> list[RatedGroup]:
    """Meter the records the entry matches and price each (meter, charge version) group.

    Items are priced in start order, so free quotas go to the first calls. A group is rated even with no
    usage (a volume tier with zero usage is charged nothing, see the charge models).
    """
    selected = [r for r in records if entry.match.matches(r)]
    metered = meter_records(selected, entry.policy)
    groups: dict[tuple[str, datetime], tuple[ChargeVersion, list[MeteredRecord]]] = {}
    for item in sorted(metered, key=_order):
        version = entry.version_at(item.started_at)
        if version is None:
            raise MeteringError(
                f"record {item.id!r}: field 'started_at': {item.started_at.isoformat()} is before "
                f"{entry.id!r} has a price (from {entry.versions[0].label})"
            )
        groups.setdefault((item.meter, version.effective_from), (version, []))[1].append(item)
    rated: list[RatedGroup] = []
    for (meter, _), (version, items) in sorted(groups.items()):
        quantities = [m.billable_seconds / entry.unit_seconds for m in items]
        charge = version.model.rate(quantities)
        rated.append(
            RatedGroup(
                entry,
                meter,
                version,
                charge,
                tuple(
                    RatedItem(m, q, m.actual_seconds / entry.unit_seconds, a)
                    for m, q, a in zip(items, quantities, charge.allocation, strict=True)
                ),
            )
        )
    return rated


def total_amount(groups: Sequence[RatedGroup]) -> Decimal:
    return sum((g.charge.amount for g in groups), ZERO)
