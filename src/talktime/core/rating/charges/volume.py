"""Volume tiers: the whole quantity is priced by the one tier the total falls in (1,200 minutes -> all 1,200
at the second tier's price). Tier edges: ``up_to`` inclusive, so exactly 1,000 stays in the first tier.
That tier's flat fee is added; zero usage is charged nothing.

>>> v = Volume((Tier(Decimal(1000), Decimal("0.02")), Tier(None, Decimal("0.01"))))
>>> v.rate([Decimal(1000)]).amount, v.rate([Decimal(1001)]).amount
(Decimal('20.00'), Decimal('10.01'))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from talktime.core.rating.charges.base import ZERO, Charge, ChargeStep, check_quantities, pro_rata, show
from talktime.core.rating.charges.tiers import Tier, check_tiers, label, lower_bounds


@dataclass(frozen=True, slots=True)
class Volume:
    tiers: tuple[Tier, ...]
    name: str = "volume"

    def __post_init__(self) -> None:
        check_tiers(self.tiers)

    def rate(self, quantities: Sequence[Decimal]) -> Charge:
        quantity = check_quantities(quantities)
        if quantity == 0:
            step = ChargeStep("no usage: nothing charged", ZERO, None, ZERO)
            return Charge(self.name, quantity, ZERO, (step,), pro_rata(ZERO, quantities))
        for index, (lower, tier) in enumerate(zip(lower_bounds(self.tiers), self.tiers, strict=True)):
            if tier.up_to is None or quantity <= tier.up_to:
                amount = quantity * tier.unit_price + tier.flat_fee
                words = f"{label(index, lower, tier)} holds {show(quantity)}: all at {show(tier.unit_price)}"
                if tier.flat_fee:
                    words += f" + flat {show(tier.flat_fee)}"
                step = ChargeStep(words, quantity, tier.unit_price, amount)
                unit = tier.unit_price if not tier.flat_fee else None
                return Charge(self.name, quantity, amount, (step,), pro_rata(amount, quantities), unit)
        raise AssertionError("check_tiers guarantees an open-ended last tier")  # pragma: no cover
