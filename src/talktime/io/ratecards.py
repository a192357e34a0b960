"""Reading rate cards from TOML files (the edge): floats are read as exact decimals, policies named by a
card are built-in profile ids, paths relative to the card, or inline ``[....policy]`` tables.
"""

from __future__ import annotations

import tomllib
from datetime import datetime
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

from talktime.core.metering.policy import Policy, policy_from_dict
from talktime.core.rating.cards import (
    CatalogPrices,
    CostCard,
    PriceCard,
    RateCardError,
    cost_card_from_dict,
    price_card_from_dict,
)
from talktime.providers import load_policy

EXAMPLES = "talktime.ratecards"


def policy_resolver(base: Path | None) -> Any:
    def resolve(spec: object, where: str) -> Policy:
        if isinstance(spec, dict):
            return policy_from_dict(spec, where=f"{where}.policy")
        name = str(spec)
        if name.endswith(".toml") and base is not None and not Path(name).is_absolute():
            return load_policy(str(base / name))
        return load_policy(name)

    return resolve


def _read(path: Path) -> dict[str, Any]:
    text = _text(path)
    try:
        return tomllib.loads(text, parse_float=Decimal)
    except tomllib.TOMLDecodeError as error:
        raise RateCardError(f"{path}: not valid TOML: {error}") from None


def _text(path: Path) -> str:
    if path.is_file():
        return path.read_text(encoding="utf-8")
    example = resources.files(EXAMPLES) / path.name
    if not path.parent.parts and example.is_file():
        return example.read_text(encoding="utf-8")
    raise RateCardError(f"{path}: no such rate card file (built-in examples: {', '.join(example_names())})")


def example_names() -> list[str]:
    folder = resources.files(EXAMPLES)
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".toml"))


def _base(path: Path) -> Path | None:
    return path.parent if path.is_file() else None


def catalog_lookup(model: str, provider: str | None, at: datetime | None) -> CatalogPrices:
    from talktime.catalog import token_prices  # loads the price catalog only for cards that name a model

    return token_prices(model, provider=provider, at=at)


def load_cost_card(path: Path) -> CostCard:
    """A cost card file, or a built-in example by file name (``costs-informative.toml``).

    An entry may name a ``catalog`` model: its token prices come from the pinned genai-prices catalog.
    """
    return cost_card_from_dict(
        _read(path), policy_resolver(_base(path)), where=str(path), lookup=catalog_lookup
    )


def load_price_card(path: Path) -> PriceCard:
    """A price card file, or a built-in example by file name (``plan-call-minute.toml``)."""
    return price_card_from_dict(_read(path), policy_resolver(_base(path)), where=str(path))
