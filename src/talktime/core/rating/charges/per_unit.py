"""Per unit: every unit at one price. ``amount = quantity x unit_price``.

>>> PerUnit(unit_price=Decimal("0.013")).rate([Decimal(2), Decimal("0.5")]).amount
Decimal('0.0325')
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from talktime.core.rating.charges.base import Charge, ChargeStep, check_quantities, positive_or_zero, show


@dataclass(frozen=True, slots=True)
class PerUnit:
    unit_price: Decimal
    name: str = "per_unit"

    def __post_init__(self) -> None:
        positive_or_zero(self.unit_price, "unit_price")

    def rate(self, quantities: Sequence[Decimal]) -> Charge:
        quantity = check_quantities(quantities)
        amount = quantity * self.unit_price
        step = ChargeStep(f"{show(quantity)} x {show(self.unit_price)}", quantity, self.unit_price, amount)
        allocation = tuple(q * self.unit_price for q in quantities)
        return Charge(self.name, quantity, amount, (step,), allocation, self.unit_price)
