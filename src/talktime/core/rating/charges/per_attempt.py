"""Per attempt with max(fee, usage): every attempt (dispatched call, failed ones included) costs at least
``fee``; an attempt whose usage at ``unit_price`` is more pays its usage instead, so the fee is absorbed
(Bland: $0.015 per dispatched call, absorbed once usage passes it). A failed call has quantity 0
and pays the fee.

>>> p = PerAttempt(fee=Decimal("0.015"), unit_price=Decimal("0.09"))
>>> p.rate([Decimal(0), Decimal("0.1"), Decimal(1)]).allocation
(Decimal('0.015'), Decimal('0.015'), Decimal('0.09'))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from talktime.core.rating.charges.base import (
    ZERO,
    Charge,
    ChargeStep,
    check_quantities,
    positive_or_zero,
    show,
)


@dataclass(frozen=True, slots=True)
class PerAttempt:
    fee: Decimal
    unit_price: Decimal
    name: str = "per_attempt"

    def __post_init__(self) -> None:
        positive_or_zero(self.fee, "fee")
        positive_or_zero(self.unit_price, "unit_price")

    def rate(self, quantities: Sequence[Decimal]) -> Charge:
        quantity = check_quantities(quantities)
        allocation = tuple(max(self.fee, q * self.unit_price) for q in quantities)
        at_fee = sum(1 for q in quantities if q * self.unit_price < self.fee)
        fee_part = self.fee * at_fee
        amount = sum(allocation, ZERO)
        steps = (
            ChargeStep(
                f"{len(quantities)} attempt(s): {at_fee} below the fee pay the fee {show(self.fee)}",
                Decimal(at_fee),
                self.fee,
                fee_part,
            ),
            ChargeStep(
                f"{len(quantities) - at_fee} attempt(s) pay usage at {show(self.unit_price)}",
                quantity,
                self.unit_price,
                amount - fee_part,
            ),
        )
        return Charge(self.name, quantity, amount, steps, allocation, self.unit_price)
