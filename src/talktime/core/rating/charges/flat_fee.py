"""Flat fee: a fixed amount per billing period, whatever the usage (a platform fee, a seat).

>>> FlatFee(amount=Decimal(49)).rate([]).amount
Decimal('49')
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from talktime.core.rating.charges.base import (
    Charge,
    ChargeStep,
    check_quantities,
    positive_or_zero,
    pro_rata,
    show,
)


@dataclass(frozen=True, slots=True)
class FlatFee:
    amount: Decimal
    name: str = "flat_fee"

    def __post_init__(self) -> None:
        positive_or_zero(self.amount, "amount")

    def rate(self, quantities: Sequence[Decimal]) -> Charge:
        quantity = check_quantities(quantities)
        step = ChargeStep(f"flat fee {show(self.amount)} per period", Decimal(1), self.amount, self.amount)
        return Charge(
            self.name, quantity, self.amount, (step,), pro_rata(self.amount, quantities), self.amount
        )
