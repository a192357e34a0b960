"""Graduated tiers: each part of the quantity is priced by the tier it falls in (the first 1,000 minutes at
one price, the next at another). Tier edges: ``up_to`` inclusive; a tier's flat fee only once usage reaches
into the tier.

>>> g = Graduated((Tier(Decimal(1000), Decimal("0.02")), Tier(None, Decimal("0.01"))))
>>> g.rate([Decimal(1000)]).amount, g.rate([Decimal(1001)]).amount
(Decimal('20.00'), Decimal('20.01'))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from talktime.core.rating.charges.base import ZERO, Charge, ChargeStep, check_quantities, pro_rata, show
from talktime.core.rating.charges.tiers import Tier, check_tiers, label, lower_bounds


@dataclass(frozen=True, slots=True)
class Graduated:
    tiers: tuple[Tier, ...]
    name: str = "graduated"

    def __post_init__(self) -> None:
        check_tiers(self.tiers)

    def rate(self, quantities: Sequence[Decimal]) -> Charge:
        quantity = check_quantities(quantities)
        steps: list[ChargeStep] = []
        for index, (lower, tier) in enumerate(zip(lower_bounds(self.tiers), self.tiers, strict=True)):
            if quantity <= lower:
                break
            upper = quantity if tier.up_to is None else min(quantity, tier.up_to)
            part = upper - lower
            amount = part * tier.unit_price
            words = f"{label(index, lower, tier)}: {show(part)} x {show(tier.unit_price)}"
            if tier.flat_fee:
                amount += tier.flat_fee
                words += f" + flat {show(tier.flat_fee)}"
            steps.append(ChargeStep(words, part, tier.unit_price, amount))
        if not steps:
            steps.append(ChargeStep("no usage: no tier reached, nothing charged", ZERO, None, ZERO))
        total = sum((s.amount for s in steps), ZERO)
        single = self.tiers[0].unit_price if len(steps) <= 1 and not self.tiers[0].flat_fee else None
        return Charge(self.name, quantity, total, tuple(steps), pro_rata(total, quantities), single)
