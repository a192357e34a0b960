"""Tiers shared by the graduated and volume models.

``up_to`` is an inclusive upper bound; the last tier has none (``None``: no limit). A tier's ``flat_fee`` is
charged when some usage falls in the tier (never at zero usage).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from talktime.core.rating.charges.base import ZERO, positive_or_zero, show
from talktime.core.rating.money import MoneyError


@dataclass(frozen=True, slots=True)
class Tier:
    up_to: Decimal | None
    unit_price: Decimal
    flat_fee: Decimal = ZERO

    def __post_init__(self) -> None:
        if self.up_to is not None:
            positive_or_zero(self.up_to, "up_to")
        positive_or_zero(self.unit_price, "unit_price")
        positive_or_zero(self.flat_fee, "flat_fee")


def check_tiers(tiers: Sequence[Tier]) -> tuple[Tier, ...]:
    """Tiers in increasing order of ``up_to``, the last one open-ended; every problem at once."""
    problems: list[str] = []
    if not tiers:
        problems.append("tiers: at least one tier is needed")
    bounds = [t.up_to for t in tiers]
    if tiers and bounds[-1] is not None:
        problems.append("tiers: the last tier must have no up_to (it takes every quantity above)")
    if any(b is None for b in bounds[:-1]):
        problems.append("tiers: only the last tier may leave out up_to")
    finite = [b for b in bounds if b is not None]
    if finite != sorted(finite) or len(set(finite)) != len(finite) or (finite and finite[0] <= 0):
        problems.append("tiers: up_to bounds must be positive and strictly increasing")
    if problems:
        raise MoneyError("; ".join(problems))
    return tuple(tiers)


def label(index: int, lower: Decimal, tier: Tier) -> str:
    upper = "∞" if tier.up_to is None else show(tier.up_to)
    return f"tier {index + 1} ({show(lower)}, {upper}]"


def lower_bounds(tiers: Sequence[Tier]) -> list[Decimal]:
    return [ZERO] + [t.up_to for t in tiers[:-1] if t.up_to is not None]
