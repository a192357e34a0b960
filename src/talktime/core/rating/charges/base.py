"""What every charge model returns: the amount and the breakdown of how it was reached (Lago's shape), plus
how that amount splits over the usage items (calls, attempts) that made it.

Conventions shared by the models (docs/pricing.md has the full text):

* Quantities and prices are exact ``Decimal``; a float is refused where a model is built.
* Tier edges: ``up_to`` is an **inclusive** upper bound. A tier ``up_to = 1000`` covers quantities above the
  previous tier's bound up to and including 1000; 1000.001 is in the next tier.
* A tier's flat fee is charged only when some quantity falls in that tier: at zero usage nothing is charged,
  not even the first tier's flat fee (use a flat fee charge for a fixed monthly amount).
* Amounts are never rounded here: rounding belongs to invoice lines (``talktime.core.rating.money``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

from talktime.core.decimals import quantize, text
from talktime.core.rating.money import MoneyError, exact

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class ChargeStep:
    """One line of a breakdown, e.g. ``tier 2 (1000, 5000]: 1200 x 0.01 = 12``."""

    description: str
    quantity: Decimal
    unit_price: Decimal | None
    amount: Decimal

    def as_dict(self) -> dict[str, str | None]:
        return {
            "description": self.description,
            "quantity": text(self.quantity),
            "unit_price": None if self.unit_price is None else text(self.unit_price),
            "amount": text(quantize(self.amount, 12)),
        }


@dataclass(frozen=True, slots=True)
class Charge:
    """A model's result: the precise amount, the steps that add up to it, and the amount of each usage item.

    ``allocation[i]`` is the part of ``amount`` that usage item ``i`` carries (per-call cost or price); the
    allocation always adds up to ``amount`` exactly.
    """

    model: str
    quantity: Decimal
    amount: Decimal
    steps: tuple[ChargeStep, ...]
    allocation: tuple[Decimal, ...] = field(default=())
    unit_price: Decimal | None = None


class ChargeModel(Protocol):
    """The one rating interface: usage items (one quantity per call or attempt) in, a :class:`Charge` out."""

    @property
    def name(self) -> str: ...

    def rate(self, quantities: Sequence[Decimal]) -> Charge: ...


def show(value: Decimal) -> str:
    """A quantity or price for a breakdown's words: at most 6 decimals (the step's numbers stay exact)."""
    return text(quantize(value, 6))


def positive_or_zero(value: object, what: str) -> Decimal:
    parsed = exact(value, what)
    if parsed < 0:
        raise MoneyError(f"{what}: {parsed} is negative")
    return parsed


def pro_rata(amount: Decimal, quantities: Sequence[Decimal]) -> tuple[Decimal, ...]:
    """Split ``amount`` over items in proportion to their quantities; the last item with quantity takes the
    remainder so the parts add up exactly. Items of zero quantity carry nothing.

    >>> pro_rata(Decimal(10), [Decimal(1), Decimal(0), Decimal(3)])
    (Decimal('2.5'), Decimal('0'), Decimal('7.5'))
    """
    total = sum(quantities, ZERO)
    if total == 0:
        if amount != 0 and quantities:
            share = amount / len(quantities)
            parts = [share] * len(quantities)
            parts[-1] = amount - share * (len(quantities) - 1)
            return tuple(parts)
        return tuple(ZERO for _ in quantities)
    last = max(i for i, q in enumerate(quantities) if q != 0)
    parts = [amount * q / total if i != last else ZERO for i, q in enumerate(quantities)]
    parts[last] = amount - sum(parts, ZERO)
    return tuple(parts)


def check_quantities(quantities: Sequence[Decimal]) -> Decimal:
    """The total of usage quantities, each checked exact and non-negative."""
    return sum((positive_or_zero(q, "quantity") for q in quantities), ZERO)
