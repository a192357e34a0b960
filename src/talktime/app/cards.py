"""Rate cards as a use case takes them: a card object, or the file (or built-in example) a user named."""

from __future__ import annotations

from pathlib import Path

from talktime.core.rating.cards import CostCard, PriceCard
from talktime.io.ratecards import load_cost_card, load_price_card


def cost_card(value: Path | CostCard) -> CostCard:
    """A cost card object, or the file (or built-in example) a user named."""
    return value if isinstance(value, CostCard) else load_cost_card(value)


def required_price_card(value: Path | PriceCard) -> PriceCard:
    """A price card object, or the file (or built-in example) a user named."""
    return value if isinstance(value, PriceCard) else load_price_card(value)


def price_card(value: Path | PriceCard | None) -> PriceCard | None:
    """A price card object, the file (or built-in example) a user named, or none."""
    return value if value is None or isinstance(value, PriceCard) else load_price_card(value)
