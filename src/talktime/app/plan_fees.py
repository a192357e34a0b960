"""``plan_fees``: what a plan bills per customer month beside the calls' usage price.

The margin report prices calls; the plan's fees (``[fees.<id>]``, once per customer month) and a minimum
commitment's true-up are period items that only an invoice has (:mod:`talktime.core.rating.margin`). A face
that shows the margin report's price beside invoices (the dashboard's overview) says how much the fees add,
so its price is never read as the invoices' total.

Owns: adding the fees up over customer months. Does not own: the invoice's lines (``core.invoicing``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from talktime.core.rating.cards import PriceCard
from talktime.core.rating.margin import NO_CUSTOMER
from talktime.core.rating.money import Money

__all__ = ["PlanFees", "plan_fees"]

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class PlanFees:
    """What the plan bills per customer month beside the calls' usage price (the overview's price leaves it
    out): each fee (description, amount as an invoice rounds it), how many customer months the rows hold,
    their total, and whether a minimum commitment may add a true-up on top."""

    each: tuple[tuple[str, Decimal], ...]
    months: int
    total: Decimal
    minimum: Decimal | None

    @property
    def per_month(self) -> Decimal:
        return sum((amount for _, amount in self.each), ZERO)


def plan_fees(prices: PriceCard, months: Iterable[Mapping[str, object]]) -> PlanFees:
    """The plan's fees over the customer months of ``months`` (the margin view's rows by customer: one a
    customer month; calls of no customer are on no invoice), each rounded as an invoice's fee line is.

    >>> from talktime.io.ratecards import load_price_card
    >>> from pathlib import Path
    >>> card = load_price_card(Path("plan-call-minute.toml"))
    >>> fees = plan_fees(card, [{"customer": "a"}, {"customer": "b"}, {"customer": "-"}])
    >>> fees.each, fees.months, fees.total
    ((('Platform fee', Decimal('49.00')),), 2, Decimal('98.00'))
    """
    each = tuple(
        (fee.description, Money(fee.charge.rate([]).amount, prices.currency).rounded().money.amount)
        for fee in prices.fees
    )
    count = sum(1 for row in months if row.get("customer") not in (None, "", NO_CUSTOMER))
    total = sum((amount for _, amount in each), ZERO) * count
    minimum = None if prices.minimum is None else prices.minimum.minimum
    return PlanFees(each, count, total, minimum)
