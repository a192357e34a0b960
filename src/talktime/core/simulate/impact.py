"""Rounding impact: what each policy bills for the same calls, against billing their exact quantity.

Owns: one policy's line (records, exact and billable quantity, its cost and the cost of exact billing, and
on history the rest of the calls' cost stack and the records no entry prices), and a policy's billable steps
(billable seconds against call length, metered by the reference meter). Does not own: metering or rating at
volume (``talktime.simulate`` runs the engine).

*Exact* billing is each record's actual quantity (the policy's own basis: answered time, audio sent, tokens,
...), one charge per record: no rounding, no minimum, no channel multiple. So the difference shows everything
a policy adds on top of the stopwatch.

Quantities are the policy's base quantity: seconds for a time policy (shown in minutes), tokens, characters,
requests or credits for a count policy (shown as they are).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Final

from talktime.core.metering.example import example_call
from talktime.core.metering.meter import meter_records
from talktime.core.metering.policy import TIME_UNITS, Policy
from talktime.core.simulate.costs import Missing

ZERO: Final = Decimal(0)
MINUTE: Final = Decimal(60)


@dataclass(frozen=True, slots=True)
class PolicyImpact:
    """One policy over the simulated (or historical) calls.

    On history, ``cost_now`` is what the records of the policy's modality cost today (their own providers),
    ``others_cost`` what every other record costs, and ``missing`` the history's records no cost entry
    prices (the stack is then a lower bound; ``own_incomplete`` when some are among the policy's records)."""

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
    unit: str = "minute"
    modality: str | None = None
    cost_now: Decimal | None = None
    others_cost: Decimal | None = None
    missing: Missing = field(default_factory=Missing)
    #: Some record the policy meters has no cost entry: ``cost_now`` is a lower bound.
    own_incomplete: bool = False
    #: The cost entries with placeholder prices (``placeholder = true``) that price the policy's ``cost``
    #: (and its exact and extra cost), and those that price some of its records today (``cost_now``).
    placeholder: tuple[str, ...] = ()
    placeholder_now: tuple[str, ...] = ()

    @property
    def is_time(self) -> bool:
        return self.unit in TIME_UNITS

    @property
    def quantity_unit(self) -> str:
        """What :attr:`billable_quantity` counts: ``min`` for time, else the count's plural."""
        return "min" if self.is_time else f"{self.unit}s"

    def _quantity(self, base: Decimal) -> Decimal:
        return base / MINUTE if self.is_time else base

    @property
    def billable_quantity(self) -> Decimal:
        return self._quantity(self.billable_seconds)

    @property
    def exact_quantity(self) -> Decimal:
        return self._quantity(self.exact_seconds)

    @property
    def extra_quantity(self) -> Decimal:
        """Billed beyond the exact quantity (negative when a policy bills less, e.g. speech only)."""
        return self._quantity(self.billable_seconds - self.exact_seconds)

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
        """Extra billable quantity as a percentage of the exact one (None when there is none at all)."""
        if self.exact_seconds == 0:
            return None
        return (self.billable_seconds - self.exact_seconds) / self.exact_seconds * 100

    @property
    def calls_cost(self) -> Decimal | None:
        """On history: the calls' whole cost stack with this policy in its modality (a lower bound when
        some record has no cost entry)."""
        if self.cost is None or self.others_cost is None:
            return None
        return self.cost + self.others_cost


def billable_steps(policy: Policy, lengths: Sequence[Decimal], at: datetime | None = None) -> list[Decimal]:
    """Billable seconds of a mono call of each length, metered by the reference meter: the policy's steps."""
    calls = [
        example_call(policy, length, at=at, record_id=f"step-{index}") for index, length in enumerate(lengths)
    ]
    by_id = {m.id: m.billable_seconds for m in meter_records(calls, policy)}
    return [by_id[call.id] for call in calls]
