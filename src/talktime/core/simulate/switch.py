"""Provider switch: the same history re-metered and re-priced under another provider's profile and cost.

Owns: which records the switch concerns (those the *from* provider's cost entry takes), reading them as the
*to* provider's records (its provider, product and counted kind), the cost of each call, customer and the
whole under both, and the customer price per minute that keeps today's margin. Does not own: metering or
charge models (``talktime.core.metering``, ``talktime.core.rating``).

Both sides are judged at today's rules: the current version of each profile and each cost entry, applied to
every past call (the history is a sample of the traffic the switch will carry). Tiers count per provider
month in the cost card's zone, as on a provider's invoice. With a price card, revenue and the rest of the
platform's cost come from the margin report (as ``talktime margin`` shows them); the customer price needed
is an average price per minute sold:

* keep the margin percentage: ``new cost / (minutes sold x (1 - margin share today))``;
* keep the margin amount: ``(revenue + cost change) / minutes sold``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Final

from talktime.core.invoicing.periods import period_label
from talktime.core.metering.policy import Policy
from talktime.core.rating.cards import CostCard, Entry, Match, PriceCard
from talktime.core.rating.margin import session_margins
from talktime.core.rating.rate import rate_entry
from talktime.core.records import UsageRecord
from talktime.core.simulate.impact import cost_entry
from talktime.errors import InputError

ZERO: Final = Decimal(0)
_SINCE_EVER: Final = datetime(1970, 1, 1, tzinfo=UTC)
NO_CUSTOMER: Final = "-"


@dataclass(frozen=True, slots=True)
class CallChange:
    """One call (session) of the switched provider: billable seconds and cost before and after."""

    customer: str
    session: str
    records: int
    seconds_from: Decimal
    seconds_to: Decimal
    cost_from: Decimal
    cost_to: Decimal

    @property
    def delta(self) -> Decimal:
        return self.cost_to - self.cost_from


@dataclass(frozen=True, slots=True)
class CustomerChange:
    """A customer's (or everyone's) cost before and after, and with a price card, the price that keeps
    the margin."""

    customer: str
    calls: int
    seconds_from: Decimal
    seconds_to: Decimal
    cost_from: Decimal
    cost_to: Decimal
    revenue: Decimal | None = None
    minutes_sold: Decimal | None = None
    platform_cost: Decimal | None = None

    @property
    def delta(self) -> Decimal:
        return self.cost_to - self.cost_from

    @property
    def delta_percent(self) -> Decimal | None:
        return None if self.cost_from == 0 else self.delta / self.cost_from * 100

    @property
    def price_per_minute(self) -> Decimal | None:
        if self.revenue is None or not self.minutes_sold:
            return None
        return self.revenue / self.minutes_sold

    @property
    def margin_share(self) -> Decimal | None:
        """Today's margin as a share of revenue."""
        if self.revenue is None or self.platform_cost is None or self.revenue == 0:
            return None
        return (self.revenue - self.platform_cost) / self.revenue

    @property
    def price_keep_share(self) -> Decimal | None:
        """Average price per minute sold that keeps today's margin percentage after the switch."""
        share = self.margin_share
        if share is None or self.platform_cost is None or not self.minutes_sold or share >= 1:
            return None
        return (self.platform_cost + self.delta) / (self.minutes_sold * (1 - share))

    @property
    def price_keep_amount(self) -> Decimal | None:
        """Average price per minute sold that keeps today's margin amount after the switch."""
        if self.revenue is None or not self.minutes_sold:
            return None
        return (self.revenue + self.delta) / self.minutes_sold


@dataclass(frozen=True, slots=True)
class Switch:
    from_policy: Policy
    to_policy: Policy
    from_entry: Entry
    to_entry: Entry
    currency: str
    calls: tuple[CallChange, ...]
    customers: tuple[CustomerChange, ...]
    total: CustomerChange
    notes: tuple[str, ...] = ()

    def biggest(self, count: int = 10) -> list[CallChange]:
        """The calls whose cost changes most (either way)."""
        return sorted(self.calls, key=lambda c: (-abs(c.delta), c.customer, c.session))[:count]


def cost_entry_for(card: CostCard, policy_id: str, side: str) -> Entry:
    found = cost_entry(card, policy_id)
    if found is None:
        known = ", ".join(e.id for e in card.entries)
        raise InputError(
            f"--{side} {policy_id!r}: the cost card {card.name!r} has no entry for it; add a "
            f"[costs.{policy_id}] table (entries: {known})"
        )
    return found


def today(entry: Entry) -> Entry:
    """The entry at today's rules: its current profile version and price, applied to every call it takes."""
    policy = entry.policy
    current = policy.current.model_copy(update={"effective_from": _SINCE_EVER})
    now_policy = policy.model_copy(update={"versions": (current,)})
    price = replace(entry.versions[-1], effective_from=_SINCE_EVER)
    return replace(entry, policy=now_policy, versions=(price,))


def as_provider(record: UsageRecord, policy: Policy) -> UsageRecord:
    """The record as the other provider would see it: its provider and product, and a kind it counts."""
    kinds = policy.current.params.kinds
    kind = record.kind if kinds is None or record.kind in kinds else kinds[0]
    return replace(
        record,
        provider=policy.provider or record.provider,
        product=policy.product or record.product,
        kind=kind,
    )


def _costs(entry: Entry, records: Sequence[UsageRecord], timezone: str) -> dict[str, tuple[Decimal, Decimal]]:
    """Per record id: (billable seconds, cost), rated per provider month."""
    months: dict[str, list[UsageRecord]] = defaultdict(list)
    for record in records:
        months[period_label(record.started_at, timezone)].append(record)
    out: dict[str, tuple[Decimal, Decimal]] = {}
    for month in sorted(months):
        for group in rate_entry(entry, months[month]):
            for item in group.items:
                out[item.record_id] = (item.metered.billable_seconds, item.amount)
    return out


def compare(
    records: Iterable[UsageRecord], from_id: str, to_id: str, costs: CostCard, prices: PriceCard | None = None
) -> Switch:
    """Re-meter and re-price the history's ``from_id`` records under ``to_id``; see the module docstring."""
    history = list(records)
    from_entry, to_entry = cost_entry_for(costs, from_id, "from"), cost_entry_for(costs, to_id, "to")
    selected = [r for r in history if from_entry.match.matches(r)]
    if not selected:
        raise InputError(
            f"--from {from_id!r}: no record in the history is one of its calls "
            f"({from_entry.match.describe()})"
        )
    before = today(from_entry)
    after = replace(today(to_entry), match=Match())
    as_to = [as_provider(r, after.policy) for r in selected]
    cost_before = _costs(before, selected, costs.period_timezone)
    cost_after = _costs(after, as_to, costs.period_timezone)
    notes = []
    relabelled = sum(1 for a, b in zip(selected, as_to, strict=True) if a.kind != b.kind)
    if relabelled:
        notes.append(f"{relabelled} record(s) read as kind {as_to[0].kind!r}, the kind {to_id} counts")
    calls: dict[tuple[str, str], list[Decimal]] = {}
    for record in selected:
        key = (record.customer or NO_CUSTOMER, record.session_key)
        seconds_from, amount_from = cost_before.get(record.id, (ZERO, ZERO))
        seconds_to, amount_to = cost_after.get(record.id, (ZERO, ZERO))
        sums = calls.setdefault(key, [ZERO] * 5)
        for index, value in enumerate((Decimal(1), seconds_from, seconds_to, amount_from, amount_to)):
            sums[index] += value
    changes = tuple(
        CallChange(customer, session, int(s[0]), s[1], s[2], s[3], s[4])
        for (customer, session), s in sorted(calls.items())
    )
    margins = customer_margins(history, costs, prices, from_entry) if prices is not None else None
    return assemble(before, after, from_entry, to_entry, costs.currency, changes, margins, notes)


@dataclass(frozen=True, slots=True)
class CustomerMargin:
    """A customer's side of today's margin report: revenue, minutes sold and the cost of every provider
    but the one being switched."""

    revenue: Decimal = ZERO
    minutes_sold: Decimal = ZERO
    other_cost: Decimal = ZERO


def customer_margins(
    history: Sequence[UsageRecord], costs: CostCard, prices: PriceCard, from_entry: Entry
) -> dict[str, CustomerMargin]:
    """Per customer of the history, from the margin report (``talktime margin``): the reference."""
    revenue: dict[str, Decimal] = defaultdict(Decimal)
    minutes: dict[str, Decimal] = defaultdict(Decimal)
    other: dict[str, Decimal] = defaultdict(Decimal)
    for session in session_margins(history, costs, prices).sessions:
        revenue[session.customer] += session.price
        minutes[session.customer] += session.minutes
        other[session.customer] += session.cost - session.costs.get(from_entry.id, ZERO)
    return {c: CustomerMargin(revenue[c], minutes[c], other[c]) for c in revenue}


def assemble(
    before: Entry,
    after: Entry,
    from_entry: Entry,
    to_entry: Entry,
    currency: str,
    changes: tuple[CallChange, ...],
    margins: Mapping[str, CustomerMargin] | None,
    notes: Sequence[str] = (),
) -> Switch:
    """The switch from its calls (sorted by customer and session) and, with a price card, each customer's
    margin today (every customer of the history, calls or not)."""
    customers = _customers(changes, margins)
    return Switch(
        before.policy,
        after.policy,
        from_entry,
        to_entry,
        currency,
        changes,
        tuple(customers),
        _sum("all", customers),
        tuple(notes),
    )


def _customers(
    changes: Sequence[CallChange], margins: Mapping[str, CustomerMargin] | None
) -> list[CustomerChange]:
    by_customer: dict[str, list[CallChange]] = defaultdict(list)
    for change in changes:
        by_customer[change.customer].append(change)
    for customer in margins or {}:
        by_customer.setdefault(customer, [])
    out = []
    for customer in sorted(by_customer):
        items = by_customer[customer]
        part = CustomerChange(
            customer,
            len(items),
            sum((c.seconds_from for c in items), ZERO),
            sum((c.seconds_to for c in items), ZERO),
            sum((c.cost_from for c in items), ZERO),
            sum((c.cost_to for c in items), ZERO),
        )
        if margins is not None:
            margin = margins.get(customer, CustomerMargin())
            part = replace(
                part,
                revenue=margin.revenue,
                minutes_sold=margin.minutes_sold,
                platform_cost=margin.other_cost + part.cost_from,
            )
        out.append(part)
    return out


def _sum(name: str, parts: Sequence[CustomerChange]) -> CustomerChange:
    def total(values: Iterable[Decimal | None]) -> Decimal | None:
        known = list(values)
        return None if any(v is None for v in known) else sum((v for v in known if v is not None), ZERO)

    return CustomerChange(
        name,
        sum(p.calls for p in parts),
        sum((p.seconds_from for p in parts), ZERO),
        sum((p.seconds_to for p in parts), ZERO),
        sum((p.cost_from for p in parts), ZERO),
        sum((p.cost_to for p in parts), ZERO),
        total(p.revenue for p in parts) if parts else None,
        total(p.minutes_sold for p in parts) if parts else None,
        total(p.platform_cost for p in parts) if parts else None,
    )
