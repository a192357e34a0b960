"""Included quantity (a free quota): the first ``included`` units of the period are free and are consumed
first, before any tier; the rest is priced by the wrapped model. Items are consumed in the order given
(callers pass calls in start order), so the free minutes go to the period's first calls.

>>> from talktime.core.rating.charges.per_unit import PerUnit
>>> Included(Decimal(100), PerUnit(Decimal("0.01"))).rate([Decimal(60), Decimal(60)]).amount
Decimal('0.20')
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from talktime.core.rating.charges.base import (
    ZERO,
    Charge,
    ChargeModel,
    ChargeStep,
    check_quantities,
    positive_or_zero,
    show,
)


@dataclass(frozen=True, slots=True)
class Included:
    included: Decimal
    then: ChargeModel
    name: str = "included"

    def __post_init__(self) -> None:
        positive_or_zero(self.included, "included")

    def rate(self, quantities: Sequence[Decimal]) -> Charge:
        quantity = check_quantities(quantities)
        left = self.included
        billed: list[Decimal] = []
        for q in quantities:
            free = min(left, q)
            left -= free
            billed.append(q - free)
        used = self.included - left
        inner = self.then.rate(billed)
        step = ChargeStep(
            f"included {show(self.included)}: {show(used)} free, {show(quantity - used)} billed",
            used,
            ZERO,
            ZERO,
        )
        return Charge(
            f"{self.then.name}+included",
            quantity,
            inner.amount,
            (step, *inner.steps),
            inner.allocation,
            inner.unit_price,
        )
