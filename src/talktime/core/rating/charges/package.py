"""Package: units sold in blocks of ``size`` at ``price`` a block; a started block is a whole block (rounded
up). Zero usage is zero blocks.

>>> Package(size=Decimal(100), price=Decimal(5)).rate([Decimal(101)]).amount
Decimal('10')
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal

from talktime.core.rating.charges.base import (
    Charge,
    ChargeStep,
    check_quantities,
    positive_or_zero,
    pro_rata,
    show,
)
from talktime.core.rating.money import MoneyError


@dataclass(frozen=True, slots=True)
class Package:
    size: Decimal
    price: Decimal
    name: str = "package"

    def __post_init__(self) -> None:
        if positive_or_zero(self.size, "size") == 0:
            raise MoneyError("size: a package holds a positive number of units")
        positive_or_zero(self.price, "price")

    def rate(self, quantities: Sequence[Decimal]) -> Charge:
        quantity = check_quantities(quantities)
        blocks = (quantity / self.size).to_integral_value(rounding=ROUND_CEILING)
        amount = blocks * self.price
        step = ChargeStep(
            f"{show(quantity)} in blocks of {show(self.size)} -> "
            f"{show(blocks)} block(s) x {show(self.price)}",
            blocks,
            self.price,
            amount,
        )
        return Charge(self.name, quantity, amount, (step,), pro_rata(amount, quantities))
