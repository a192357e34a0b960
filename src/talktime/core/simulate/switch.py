"""Provider switch: the same history re-metered and re-priced under another provider's profile and cost.

Owns: which records the switch concerns (those the *from* provider's cost entry prices, as in the margin
report: ``CostCard.entries_for``), reading them as the *to* provider's records (its provider, product and a
kind it counts; ``channels`` and every other field kept), the cost of each call, customer and the whole
under both, and the customer price per minute that keeps the margin. Does not own: metering or charge
models (``talktime.core.metering``, ``talktime.core.rating``).

Rules (ADR 0004): by default each record is metered and priced on both sides by the versions in force when
it started, as ``talktime meter`` and ``talktime margin`` do; with ``at``, every policy, cost entry and price
component is pinned to its version on that date (:mod:`talktime.core.simulate.rules`). Each side's policy
applies its own channel rule to the record's ``channels``. Tiers count per provider month in the cost card's
zone, as on a provider's invoice. A provider whose policy has parts (an LLM's input, cached and output tokens)
is switched as a whole: its cost is the sum of its parts.

With a price card, revenue and every other provider's cost, every modality (telephony, STT, LLM, TTS,
platform), come from the margin report (:func:`~talktime.core.rating.margin.session_margins`); the customer
price needed is an average price per minute sold:

* keep the margin percentage: ``new platform cost / (minutes sold x (1 - margin share today))``;
* keep the margin amount: ``(revenue + cost change) / minutes sold``.

Records no cost entry takes have an unknown cost: each customer row counts them, by provider and product
(:class:`~talktime.core.simulate.costs.Missing`). The platform cost is then a lower bound and the price that
keeps the margin percentage leaves their cost out; the price that keeps the margin amount does not depend
on it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Final

from talktime.core.invoicing.periods import period_label
from talktime.core.metering.policy import Policy
from talktime.core.rating.cards import CostCard, Entry, Match, PriceCard
from talktime.core.rating.margin import session_margins
from talktime.core.rating.rate import rate_entry
from talktime.core.records import UsageRecord
from talktime.core.simulate.costs import Missing, placeholder_note
from talktime.core.simulate.rules import Rules, cost_group, left_off_note
from talktime.errors import InputError

ZERO: Final = Decimal(0)
NO_CUSTOMER: Final = "-"


@dataclass(frozen=True, slots=True)
class CallChange:
    """One call (session) of the switched provider: billable quantity and cost before and after.

    ``seconds_*`` are the policies' billable base quantities: seconds for time, tokens or characters for a
    count (all parts added up)."""

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
    """A customer's (or everyone's) cost before and after, the records whose cost is unknown, and with a
    price card, the price that keeps the margin."""

    customer: str
    calls: int
    seconds_from: Decimal
    seconds_to: Decimal
    cost_from: Decimal
    cost_to: Decimal
    revenue: Decimal | None = None
    minutes_sold: Decimal | None = None
    platform_cost: Decimal | None = None
    missing: Missing = field(default_factory=Missing)
    other_by_modality: Mapping[str, Decimal] | None = None
    #: The cost entries with placeholder prices (``placeholder = true``) in the platform cost (made up).
    placeholder: tuple[str, ...] = ()

    @property
    def delta(self) -> Decimal:
        return self.cost_to - self.cost_from

    @property
    def delta_percent(self) -> Decimal | None:
        return None if self.cost_from == 0 else self.delta / self.cost_from * 100

    @property
    def incomplete(self) -> bool:
        """Some record has no cost entry: the platform cost is a lower bound."""
        return bool(self.missing)

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
    rules: Rules = field(default_factory=Rules)

    @property
    def name(self) -> str:
        """``from -> to`` by the cost card's keys (an LLM's card key names its model; its policy does not)."""
        return f"{self.from_entry.group or self.from_policy.id} -> {self.to_entry.group or self.to_policy.id}"

    def biggest(self, count: int = 10) -> list[CallChange]:
        """The calls whose cost changes most (either way)."""
        return sorted(self.calls, key=lambda c: (-abs(c.delta), c.customer, c.session))[:count]


def cost_entries_for(card: CostCard, policy_id: str, side: str) -> tuple[Entry, ...]:
    """The card's entries for one side of the switch (one, or one per part); an error names the fix."""
    found = cost_group(card, policy_id)
    if not found:
        known = ", ".join(sorted({e.group or e.id for e in card.entries}))
        raise InputError(
            f"--{side} {policy_id!r}: the cost card {card.name!r} has no entry for it; add a "
            f"[costs.{policy_id}] table (entries: {known})"
        )
    return found


def switch_sides(
    costs: CostCard, from_id: str, to_id: str, rules: Rules
) -> tuple[tuple[Entry, ...], tuple[Entry, ...]]:
    """Both sides' entries under ``rules``; the *to* side takes every record it is given (no match)."""
    before = tuple(rules.entry(e) for e in cost_entries_for(costs, from_id, "from"))
    after = tuple(replace(rules.entry(e), match=Match()) for e in cost_entries_for(costs, to_id, "to"))
    return before, after


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


def _costs(
    entries: Sequence[Entry], records: Sequence[UsageRecord], timezone: str
) -> dict[str, tuple[Decimal, Decimal]]:
    """Per record id: (billable quantity, cost), every part added up, rated per provider month."""
    months: dict[str, list[UsageRecord]] = defaultdict(list)
    for record in records:
        months[period_label(record.started_at, timezone)].append(record)
    out: dict[str, tuple[Decimal, Decimal]] = {}
    for entry in entries:
        for month in sorted(months):
            for group in rate_entry(entry, months[month]):
                for item in group.items:
                    seconds, amount = out.get(item.record_id, (ZERO, ZERO))
                    out[item.record_id] = (seconds + item.metered.billable_seconds, amount + item.amount)
    return out


def compare(
    records: Iterable[UsageRecord],
    from_id: str,
    to_id: str,
    costs: CostCard,
    prices: PriceCard | None = None,
    at: datetime | None = None,
) -> Switch:
    """Re-meter and re-price the history's ``from_id`` records under ``to_id``; see the module docstring."""
    history = list(records)
    rules = Rules(at)
    card, left_off = rules.costs(costs)
    before, after = switch_sides(costs, from_id, to_id, rules)
    notes = []
    for group, why in left_off.items():
        priced = sum(1 for r in history if any(e.group == group for e in costs.entries_for(r)))
        notes += [left_off_note(group, why, priced)] if priced else []
    group = before[0].group
    selected = [r for r in history if any(e.group == group for e in card.entries_for(r))]
    if not selected:
        raise InputError(
            f"--from {from_id!r}: no record in the history is one of its calls "
            f"({before[0].match.describe()}, and no earlier cost entry takes it)"
        )
    as_to = [as_provider(r, after[0].policy) for r in selected]
    cost_before = _costs(before, selected, costs.period_timezone)
    cost_after = _costs(after, as_to, costs.period_timezone)
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
    price_card = rules.prices(prices)
    missing = customer_missing(history, card)
    margins = (
        customer_margins(history, card, price_card, {e.id for e in before})
        if price_card is not None
        else None
    )
    return assemble(before, after, costs.currency, changes, margins, missing, notes, rules)


@dataclass(frozen=True, slots=True)
class CustomerMargin:
    """A customer's side of the margin report: revenue, minutes sold and the cost of every provider but the
    one being switched, by modality."""

    revenue: Decimal = ZERO
    minutes_sold: Decimal = ZERO
    other_by_modality: Mapping[str, Decimal] = field(default_factory=dict)
    #: The other providers' cost entries with placeholder prices that price some of the customer's records.
    placeholder: tuple[str, ...] = ()

    @property
    def other_cost(self) -> Decimal:
        return sum(self.other_by_modality.values(), ZERO)


def customer_missing(history: Iterable[UsageRecord], costs: CostCard) -> dict[str, Missing]:
    """Per customer: the records no cost entry takes."""
    found: dict[str, list[UsageRecord]] = defaultdict(list)
    for record in history:
        if costs.entry_for(record) is None:
            found[record.customer or NO_CUSTOMER].append(record)
    return {customer: Missing.of(records) for customer, records in found.items()}


def customer_margins(
    history: Sequence[UsageRecord], costs: CostCard, prices: PriceCard, switched: set[str]
) -> dict[str, CustomerMargin]:
    """Per customer of the history, from the margin report (``talktime margin``): the reference. ``switched``
    are the entry ids of the provider being switched, whose cost the switch replaces."""
    revenue: dict[str, Decimal] = defaultdict(Decimal)
    minutes: dict[str, Decimal] = defaultdict(Decimal)
    other: dict[str, dict[str, Decimal]] = defaultdict(dict)
    group_of = {e.id: e.group for e in costs.entries}
    marked: dict[str, set[str]] = defaultdict(set)
    for session in session_margins(history, costs, prices).sessions:
        revenue[session.customer] += session.price
        minutes[session.customer] += session.minutes
        marked[session.customer].update(group_of[e] for e in session.placeholders if e not in switched)
        stack = other[session.customer]
        for entry_id, cost in session.costs.items():
            if entry_id not in switched:
                modality = session.modalities.get(entry_id, "other")
                stack[modality] = stack.get(modality, ZERO) + cost
    return {c: CustomerMargin(revenue[c], minutes[c], other[c], tuple(sorted(marked[c]))) for c in revenue}


def assemble(
    before: Sequence[Entry],
    after: Sequence[Entry],
    currency: str,
    changes: tuple[CallChange, ...],
    margins: Mapping[str, CustomerMargin] | None,
    missing: Mapping[str, Missing],
    notes: Sequence[str] = (),
    rules: Rules | None = None,
) -> Switch:
    """The switch from its calls (sorted by customer and session) and, with a price card, each customer's
    margin (every customer of the history, calls or not)."""
    customers = _customers(changes, margins, missing, before[0].group if before[0].placeholder else None)
    marked = {e for c in customers for e in c.placeholder}
    marked |= {e.group for e in (before[0], after[0]) if e.placeholder}
    if marked:
        notes = [*notes, placeholder_note(sorted(marked))]
    return Switch(
        before[0].policy,
        after[0].policy,
        before[0],
        after[0],
        currency,
        changes,
        tuple(customers),
        _sum("all", customers),
        tuple(notes),
        rules or Rules(),
    )


def _customers(
    changes: Sequence[CallChange],
    margins: Mapping[str, CustomerMargin] | None,
    missing: Mapping[str, Missing],
    switched_placeholder: str | None = None,
) -> list[CustomerChange]:
    """Each customer's change; ``switched_placeholder``: the switched entry when its prices are placeholders
    (its cost, in a customer's platform cost when the customer has calls of it)."""
    by_customer: dict[str, list[CallChange]] = defaultdict(list)
    for change in changes:
        by_customer[change.customer].append(change)
    for customer in [*(margins or {}), *missing]:
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
            missing=missing.get(customer, Missing()),
        )
        if margins is not None:
            margin = margins.get(customer, CustomerMargin())
            part = replace(
                part,
                revenue=margin.revenue,
                minutes_sold=margin.minutes_sold,
                platform_cost=margin.other_cost + part.cost_from,
                other_by_modality=dict(margin.other_by_modality),
                placeholder=tuple(
                    sorted(
                        {
                            *margin.placeholder,
                            *([switched_placeholder] if switched_placeholder and items else []),
                        }
                    )
                ),
            )
        out.append(part)
    return out


def _sum(name: str, parts: Sequence[CustomerChange]) -> CustomerChange:
    def total(values: Iterable[Decimal | None]) -> Decimal | None:
        known = list(values)
        return None if any(v is None for v in known) else sum((v for v in known if v is not None), ZERO)

    stacks = [p.other_by_modality for p in parts]
    stack: dict[str, Decimal] | None = None
    if parts and all(s is not None for s in stacks):
        stack = {}
        for one in stacks:
            for modality, cost in (one or {}).items():
                stack[modality] = stack.get(modality, ZERO) + cost
    missing = Missing()
    for p in parts:
        missing += p.missing
    placeholder = tuple(sorted({e for p in parts for e in p.placeholder}))
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
        missing,
        stack,
        placeholder,
    )
