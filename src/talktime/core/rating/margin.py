"""Per-call cost, price and margin: for every session, the cost from each provider meter (cost card) and the
price charged (price card), and reports of them by customer, provider or period.

Owns: putting cost and price side by side per session and adding them up. Does not own: the prices (cards)
or the arithmetic of a charge (charge models).

How amounts reach a session: a per-unit or per-attempt charge is exact per record; a tiered, package or
flat charge is computed over its whole group (provider: the month in the cost card's zone, over all
customers; price: the customer's month) and split over the records pro rata to their billable quantity.
Each record is costed by the first cost entry (in card order) whose match takes it; a record no entry
takes is listed as uncosted, never silently free. Fees and minimum-commitment true-ups are period items,
not per call: they are not in these margins.
A session is flagged ``loss`` when its minutes cost more than they sell for (margin < 0). By provider, a
session's price and margin are attributed to its providers in proportion to their cost.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from talktime.core.invoicing.periods import period_label
from talktime.core.rating.cards import CostCard, PriceCard
from talktime.core.rating.money import MoneyError
from talktime.core.rating.rate import rate_entry
from talktime.core.records import UsageRecord

ZERO = Decimal(0)
NO_CUSTOMER = "-"


@dataclass(slots=True)
class SessionMargin:
    customer: str
    session: str
    period: str
    started_at: datetime
    costs: dict[str, Decimal] = field(default_factory=dict)
    providers: dict[str, str] = field(default_factory=dict)
    cost_quantities: dict[str, Decimal] = field(default_factory=dict)
    price: Decimal = ZERO
    price_seconds: Decimal = ZERO
    uncosted: list[str] = field(default_factory=list)

    @property
    def cost(self) -> Decimal:
        return sum(self.costs.values(), ZERO)

    @property
    def margin(self) -> Decimal:
        return self.price - self.cost

    @property
    def loss(self) -> bool:
        return self.margin < 0

    @property
    def minutes(self) -> Decimal:
        """Minutes sold (the price components' billable seconds, in minutes)."""
        return self.price_seconds / 60


@dataclass(frozen=True, slots=True)
class MarginReport:
    currency: str
    sessions: tuple[SessionMargin, ...]
    uncosted_records: tuple[str, ...]


def session_margins(records: Iterable[UsageRecord], costs: CostCard, prices: PriceCard) -> MarginReport:
    """Cost, price and margin for every session in ``records``."""
    if costs.currency != prices.currency:
        raise MoneyError(
            f"the cost card is in {costs.currency} and the price card in {prices.currency}; "
            "margins need one currency (no FX here)"
        )
    records = list(records)
    sessions: dict[tuple[str, str], SessionMargin] = {}

    def session_of(record: UsageRecord) -> SessionMargin:
        customer = record.customer or NO_CUSTOMER
        key = (customer, record.session_key)
        found = sessions.get(key)
        tz = prices.customer(customer).timezone
        if found is None:
            found = SessionMargin(
                customer, record.session_key, period_label(record.started_at, tz), record.started_at
            )
            sessions[key] = found
        elif record.started_at < found.started_at:
            found.started_at = record.started_at
            found.period = period_label(record.started_at, tz)
        return found

    by_id = {r.id: r for r in records}
    for record in records:
        session_of(record)

    # cost side: each provider month over all customers
    by_cost_period: dict[str, list[UsageRecord]] = defaultdict(list)
    for record in records:
        by_cost_period[period_label(record.started_at, costs.period_timezone)].append(record)
    costed: set[str] = set()
    for period_records in by_cost_period.values():
        assigned: dict[str, list[UsageRecord]] = defaultdict(list)
        for record in period_records:
            chosen = costs.entry_for(record)
            if chosen is not None:
                assigned[chosen.id].append(record)
        for entry in costs.entries:
            for group in rate_entry(entry, assigned.get(entry.id, [])):
                for item in group.items:
                    costed.add(item.record_id)
                    s = session_of(by_id[item.record_id])
                    s.costs[entry.id] = s.costs.get(entry.id, ZERO) + item.amount
                    s.providers[entry.id] = entry.policy.provider or entry.id
                    s.cost_quantities[entry.id] = s.cost_quantities.get(entry.id, ZERO) + item.quantity
    uncosted = tuple(r.id for r in records if r.id not in costed)
    for record_id in uncosted:
        session_of(by_id[record_id]).uncosted.append(record_id)

    # price side: each customer's month in the customer's zone
    by_customer_period: dict[tuple[str, str], list[UsageRecord]] = defaultdict(list)
    for record in records:
        if record.customer is None:
            continue
        tz = prices.customer(record.customer).timezone
        by_customer_period[(record.customer, period_label(record.started_at, tz))].append(record)
    for period_records in by_customer_period.values():
        for component in prices.components:
            for group in rate_entry(component, period_records):
                for item in group.items:
                    s = session_of(by_id[item.record_id])
                    s.price += item.amount
                    s.price_seconds += item.metered.billable_seconds
    ordered = sorted(sessions.values(), key=lambda s: (s.started_at, s.customer, s.session))
    return MarginReport(prices.currency, tuple(ordered), uncosted)


@dataclass(slots=True)
class MarginRow:
    key: str
    sessions: int = 0
    loss_sessions: int = 0
    minutes: Decimal = ZERO
    cost: Decimal = ZERO
    price: Decimal = ZERO

    @property
    def margin(self) -> Decimal:
        return self.price - self.cost

    @property
    def margin_percent(self) -> Decimal | None:
        return None if self.price == 0 else self.margin / self.price * 100

    @property
    def loss(self) -> bool:
        return self.margin < 0


def margin_rows(report: MarginReport, by: str) -> list[MarginRow]:
    """Sessions added up by ``customer``, ``period`` or ``provider`` (price attributed by cost share)."""
    rows: dict[str, MarginRow] = {}

    def row(key: str) -> MarginRow:
        return rows.setdefault(key, MarginRow(key))

    for s in report.sessions:
        if by == "provider":
            parts: Mapping[str, Decimal] = s.costs or {"(no provider cost)": ZERO}
            total_cost = s.cost
            for entry_id, cost in parts.items():
                share = (cost / total_cost) if total_cost else Decimal(1) / len(parts)
                r = row(entry_id)
                r.sessions += 1
                r.loss_sessions += int(s.loss)
                r.minutes += s.cost_quantities.get(entry_id, ZERO)
                r.cost += cost
                r.price += s.price * share
        else:
            r = row(s.customer if by == "customer" else s.period)
            r.sessions += 1
            r.loss_sessions += int(s.loss)
            r.minutes += s.minutes
            r.cost += s.cost
            r.price += s.price
    return [rows[k] for k in sorted(rows)]
