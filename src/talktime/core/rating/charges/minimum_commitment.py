"""Minimum commitment: the customer pays at least ``minimum`` per period; a period that used less gets a
true-up line for the difference. Here the "quantity" is the period's amount before the true-up.

>>> MinimumCommitment(minimum=Decimal(500)).true_up(Decimal("420.50")).amount
Decimal('79.50')
>>> MinimumCommitment(minimum=Decimal(500)).true_up(Decimal(500)).amount
Decimal('0')
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from talktime.core.rating.charges.base import ZERO, Charge, ChargeStep, positive_or_zero, show


@dataclass(frozen=True, slots=True)
class MinimumCommitment:
    minimum: Decimal
    name: str = "minimum_commitment"

    def __post_init__(self) -> None:
        positive_or_zero(self.minimum, "minimum")

    def true_up(self, committed_usage: Decimal) -> Charge:
        """The true-up owed on top of ``committed_usage`` (the period's usage amount): never negative."""
        usage = positive_or_zero(committed_usage, "usage amount")
        owed = max(ZERO, self.minimum - usage)
        words = (
            f"minimum {show(self.minimum)} - usage {show(usage)} = true-up {show(owed)}"
            if owed
            else f"usage {show(usage)} meets the minimum {show(self.minimum)}: no true-up"
        )
        step = ChargeStep(words, Decimal(1) if owed else ZERO, owed, owed)
        return Charge(self.name, usage, owed, (step,), (), owed)
