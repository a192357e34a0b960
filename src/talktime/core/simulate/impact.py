"""Rounding impact: what each policy bills for the same calls, against billing their exact duration.

Owns: one policy's billable minutes, cost at its cost-card entry and the difference to exact billing, in
minutes, money and percent; and a policy's billable steps (billable seconds against call length, metered
by the reference meter). Does not own: metering at volume (``talktime.simulate`` runs the engine).

*Exact* billing is each record's actual seconds (the policy's own basis: answered time, audio sent, ...),
one charge per record: no rounding, no minimum, no channel multiple. So the difference shows everything a
policy adds on top of the stopwatch.

Costs are rated on the period's total quantity, which is exact for the models whose amount depends only on
the total (per unit, graduated, volume, package, flat fee, with or without an included quota). A per-attempt
charge needs every call's own quantity and is left out at volume, with a note saying so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Final

from talktime.core.metering.example import example_call
from talktime.core.metering.meter import meter_records
from talktime.core.metering.policy import Policy
from talktime.core.rating.cards import CostCard, Entry
from talktime.core.rating.charges import PerAttempt

ZERO: Final = Decimal(0)
MINUTE: Final = Decimal(60)


@dataclass(frozen=True, slots=True)
class PolicyImpact:
    """One policy over the simulated (or historical) calls."""

    policy: str
    name: str
    rule: str
    records: int
    exact_seconds: Decimal
    billable_seconds: Decimal
    currency: str | None = None
    cost: Decimal | None = None
    exact_cost: Decimal | None = None
    cost_note: str = ""

    @property
    def billable_minutes(self) -> Decimal:
        return self.billable_seconds / MINUTE

    @property
    def exact_minutes(self) -> Decimal:
        return self.exact_seconds / MINUTE

    @property
    def extra_minutes(self) -> Decimal:
        """Minutes billed beyond the exact duration (negative when a policy bills less, e.g. speech only)."""
        return (self.billable_seconds - self.exact_seconds) / MINUTE

    @property
    def extra_cost(self) -> Decimal | None:
        if self.cost is None or self.exact_cost is None:
            return None
        return self.cost - self.exact_cost

    @property
    def extra_percent(self) -> Decimal | None:
        """Extra billable time as a percentage of the exact time (None when there is no time at all)."""
        if self.exact_seconds == 0:
            return None
        return (self.billable_seconds - self.exact_seconds) / self.exact_seconds * 100


def cost_entry(card: CostCard, policy_id: str) -> Entry | None:
    """The card's entry priced by ``policy_id`` (its key, or the profile it meters by)."""
    return next((e for e in card.entries if e.id == policy_id or e.policy.id == policy_id), None)


def period_cost(entry: Entry, at: datetime, billable_seconds: Decimal) -> tuple[Decimal | None, str]:
    """What the entry charges for a period's total billable seconds, and how (or why it cannot say)."""
    version = entry.version_at(at)
    if version is None:
        return None, f"{entry.id}: no price before {entry.versions[0].label}"
    if isinstance(version.model, PerAttempt):
        return None, f"{entry.id}: per-attempt charges need each call's quantity; not rated at volume"
    charge = version.model.rate([billable_seconds / entry.unit_seconds])
    return charge.amount, f"{entry.id} ({version.model.name}, from {version.label}, per {entry.unit})"


def impact(
    policy: Policy,
    rule: str,
    records: int,
    exact_seconds: Decimal,
    billable_seconds: Decimal,
    card: CostCard | None,
    at: datetime,
) -> PolicyImpact:
    """A policy's line: totals from any engine, priced by the card's entry for the policy (if it has one)."""
    base = PolicyImpact(policy.id, policy.name, rule, records, exact_seconds, billable_seconds)
    if card is None:
        return base
    entry = cost_entry(card, policy.id)
    if entry is None:
        return replace(base, currency=card.currency, cost_note=f"no [costs.{policy.id}] on the card")
    cost, note = period_cost(entry, at, billable_seconds)
    exact_cost, _ = period_cost(entry, at, exact_seconds)
    return replace(base, currency=card.currency, cost=cost, exact_cost=exact_cost, cost_note=note)


def billable_steps(policy: Policy, lengths: Sequence[Decimal], at: datetime | None = None) -> list[Decimal]:
    """Billable seconds of a mono call of each length, metered by the reference meter: the policy's steps."""
    calls = [
        example_call(policy, length, at=at, record_id=f"step-{index}") for index, length in enumerate(lengths)
    ]
    by_id = {m.id: m.billable_seconds for m in meter_records(calls, policy)}
    return [by_id[call.id] for call in calls]
