"""LLM token prices from the ``genai-prices`` package's bundled catalog, offline, as exact Decimals.

Owns: finding a model the way genai-prices matches names (its per-model match rules, provider fallbacks
such as Azure -> OpenAI, dated ids like ``-20250514``), choosing the prices in force at a moment (the
catalog dates price changes, and a few providers price by time of day), and turning them into
:class:`TokenPrices`: USD per million tokens for input, output, cache read, cache write and audio, with
notes on what was simplified (tiers by prompt size, variants not applied, units not carried).

Does not own: what a call costs (rating in ``talktime.core.rating`` multiplies quantities by prices),
reading usage from provider responses, and newer price data. Nothing here touches the network: the
package's ``UpdatePrices`` is never started, and a snapshot another library installed in the same process
is ignored, so the prices are always those of the pinned package version named by :func:`catalog_version`.

Only standard prices are returned: batch, priority, flex and fast variants are named in ``notes``. A price
tiered by prompt size is returned at its base tier (below the first threshold), also noted.

Why a library and not prices typed in by hand: the catalog holds over two thousand models from dozens of
providers with their price history, tiers and cache rates, each with a source, kept up to date upstream.
Pinned in ``requirements.lock`` it is reproducible, and a price update is a reviewed one-line upgrade
instead of a hand-edited table that goes stale or carries typos.

>>> prices = token_prices("gpt-4o", provider="openai", at=datetime(2026, 1, 1, tzinfo=UTC))
>>> prices.input, prices.output, prices.cached_input
(Decimal('2.5'), Decimal('10'), Decimal('1.25'))
>>> prices.per_token("output")
Decimal('0.000010')
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache
from typing import Final

import genai_prices
from genai_prices.data import providers as _bundled_providers
from genai_prices.data_snapshot import DataSnapshot, find_provider_by_id
from genai_prices.types import (
    ModelInfo,
    ModelPrice,
    Provider,
    StartDateConstraint,
    TieredPrices,
    TimeOfDateConstraint,
)

from talktime.errors import InputError

__all__ = [
    "PARTS",
    "TokenPrices",
    "UnknownModel",
    "UnknownProvider",
    "catalog_version",
    "known_models",
    "token_prices",
]

#: Our name for each token price -> the genai-prices price key (USD per million tokens).
PARTS: Final[dict[str, str]] = {
    "input": "input_mtok",
    "output": "output_mtok",
    "cached_input": "cache_read_mtok",
    "cache_write": "cache_write_mtok",
    "audio_input": "input_audio_mtok",
    "audio_output": "output_audio_mtok",
}
CURRENCY: Final = "USD"  # every genai-prices price is in US dollars
_PER_MILLION_EXPONENT: Final = -6


class UnknownModel(InputError):
    """A model name the catalog does not match; the message names the closest known ids."""

    def __init__(self, model: str, *, provider: str | None, closest: list[str]) -> None:
        self.model = model
        self.provider = provider
        self.closest = closest
        under = f" under provider {provider!r}" if provider else ""
        hint = f"; closest: {', '.join(closest)}" if closest else "; see known_models() for the ids it has"
        super().__init__(f"model {model!r} is not in the {catalog_version()} catalog{under}{hint}")


class UnknownProvider(InputError):
    """A provider id the catalog does not know; the message names the closest known ids."""

    def __init__(self, provider: str, *, closest: list[str]) -> None:
        self.provider = provider
        self.closest = closest
        hint = f"; closest: {', '.join(closest)}" if closest else ""
        super().__init__(f"provider {provider!r} is not in the {catalog_version()} catalog{hint}")


@dataclass(frozen=True, slots=True)
class TokenPrices:
    """One model's standard token prices, USD per million tokens; ``None`` where the catalog has no price.

    ``model`` is the catalog's id for what ``requested`` matched (``claude-sonnet-4-20250514`` matches
    ``claude-sonnet-4-0``); ``provider`` is the provider the lookup went through.
    """

    model: str
    provider: str
    catalog: str
    requested: str
    at: datetime
    input: Decimal | None = None
    output: Decimal | None = None
    cached_input: Decimal | None = None
    cache_write: Decimal | None = None
    audio_input: Decimal | None = None
    audio_output: Decimal | None = None
    notes: tuple[str, ...] = ()
    currency: str = CURRENCY

    def __post_init__(self) -> None:
        for part in PARTS:
            value = getattr(self, part)
            if value is not None and not (isinstance(value, Decimal) and value.is_finite() and value >= 0):
                raise InputError(f"{self.model}: {part} price must be a non-negative Decimal, got {value!r}")

    def per_token(self, part: str) -> Decimal | None:
        """The price of one token of ``part`` (exact: the per-million price shifted six places)."""
        if part not in PARTS:
            raise InputError(f"unknown token price part {part!r}; expected one of {', '.join(PARTS)}")
        per_million: Decimal | None = getattr(self, part)
        return None if per_million is None else per_million.scaleb(_PER_MILLION_EXPONENT)


def catalog_version() -> str:
    """The catalog's label, e.g. ``genai-prices 0.2.3``.

    The package records no date for its data, so the version alone identifies it.
    """
    return f"genai-prices {genai_prices.__version__}"


def known_models(provider: str | None = None) -> list[str]:
    """The model ids :func:`token_prices` resolves, sorted: one provider's own, or every provider's.

    A few catalog entries (fine-tunes, cross-region AWS ids) are matched only by the API's names for them,
    not by their own id; they are left out, so every id listed here looks up the entry it names.
    """
    if provider is None:
        return _resolvable_ids(_snapshot().providers)
    return _resolvable_ids([_provider(provider)])


def token_prices(model: str, *, provider: str | None = None, at: datetime | None = None) -> TokenPrices:
    """The standard prices of ``model`` in force at ``at`` (default: now; a naive ``at`` is UTC).

    Without ``provider`` the catalog picks the provider from the model name (``claude-*`` -> anthropic).
    Raises :class:`UnknownModel` or :class:`UnknownProvider` naming the closest known ids.
    """
    when = _moment(at)
    found_provider, info = _find(model, provider)
    prices = info.get_prices(when)  # no price context: standard prices, not batch/priority/fast variants

    def price(part: str) -> Decimal | None:
        return _base_price(getattr(prices, PARTS[part], None))

    return TokenPrices(
        model=info.id,
        provider=found_provider.id,
        catalog=catalog_version(),
        requested=model,
        at=when,
        input=price("input"),
        output=price("output"),
        cached_input=price("cached_input"),
        cache_write=price("cache_write"),
        audio_input=price("audio_input"),
        audio_output=price("audio_output"),
        notes=(*_tier_notes(prices), *_notes(found_provider, info, prices, when)),
    )


def _moment(at: datetime | None) -> datetime:
    if at is None:
        return datetime.now(UTC)  # the clock is read here, at the edge, and only when no moment is given
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)  # naive is UTC, as in genai-prices


@cache
def _snapshot() -> DataSnapshot:
    # The data bundled in the installed package, never genai_prices' process-wide custom snapshot (which
    # UpdatePrices, started by another library, may have replaced with prices downloaded from GitHub).
    return DataSnapshot(providers=_bundled_providers, from_auto_update=False)


def _provider(provider: str) -> Provider:
    found = find_provider_by_id(_snapshot().providers, provider)
    if found is None:
        ids = [p.id for p in _snapshot().providers]
        raise UnknownProvider(provider, closest=difflib.get_close_matches(provider.lower(), ids, n=3))
    return found


def _find(model: str, provider: str | None) -> tuple[Provider, ModelInfo]:
    if provider is not None and provider.lower() != "litellm":  # litellm: the provider is the name's prefix
        _provider(provider)
    try:
        return _snapshot().find_provider_model(model, None, provider, None)
    except LookupError:
        raise UnknownModel(model, provider=provider, closest=_closest(model, provider)) from None


def _resolvable_ids(providers: list[Provider]) -> list[str]:
    return sorted({m.id for p in providers for m in p.models if m.is_match(m.id)})


def _closest(model: str, provider: str | None) -> list[str]:
    """Close ids among the provider's models and those it falls back to, or among every provider's."""
    found = find_provider_by_id(_snapshot().providers, provider) if provider else None
    if found is None:
        candidates = known_models()
    else:
        fallbacks = [p for p in _snapshot().providers if p.id in (found.fallback_model_providers or ())]
        candidates = _resolvable_ids([found, *fallbacks])
    return difflib.get_close_matches(model.lower(), candidates, n=3)


def _base_price(value: object) -> Decimal | None:
    if value is None:
        return None
    return _decimal(value.base if isinstance(value, TieredPrices) else value)


def _tier_notes(prices: ModelPrice) -> list[str]:
    notes: list[str] = []
    for part, key in PARTS.items():
        value = getattr(prices, key, None)
        if isinstance(value, TieredPrices):
            tiers = ", ".join(f"${tier.price}/M above {tier.start:,} input tokens" for tier in value.tiers)
            notes.append(f"{part}: tiered by prompt size; base ${value.base}/M used ({tiers} not applied)")
    return notes


def _decimal(value: object) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        # genai-prices 0.2.3 stores every price as a Decimal. Should a later version hand us a float, go
        # through str(): Decimal(str(0.15)) is 0.15, Decimal(0.15) is 0.1499999999999999944488848768...
        return Decimal(str(value))
    raise TypeError(f"genai-prices gave a price that is not a number: {value!r}")


def _notes(provider: Provider, info: ModelInfo, prices: ModelPrice, when: datetime) -> list[str]:
    notes: list[str] = []
    if not any(m is info for m in provider.models):
        owner = next((p.id for p in _snapshot().providers if any(m is info for m in p.models)), "another")
        notes.append(f"{provider.id} has no entry of its own for {info.id}: these are {owner}'s prices")
    if info.deprecated:
        notes.append("deprecated by the provider")
    conditions = info.prices if isinstance(info.prices, list) else []
    dates = sorted(
        {c.constraint.start_date for c in conditions if isinstance(c.constraint, StartDateConstraint)}
    )
    if dates:
        listed = ", ".join(d.isoformat() for d in dates)
        notes.append(f"prices change on {listed}: these are the ones in force at {when.isoformat()}")
    if any(isinstance(c.constraint, TimeOfDateConstraint) for c in conditions):
        notes.append(f"prices vary by time of day (UTC): these are the ones in force at {when.isoformat()}")
    if info.price_variants:
        variants = sorted({f"{k}={v}" for variant in info.price_variants for k, v in variant.when.items()})
        notes.append(f"standard prices; variants not applied: {', '.join(variants)}")
    if (one_hour := getattr(prices, "cache_write_1h_mtok", None)) is not None:
        base = one_hour.base if isinstance(one_hour, TieredPrices) else one_hour
        notes.append(f"cache_write is the 5-minute cache write; 1-hour cache writes cost ${base}/M")
    carried = {*PARTS.values(), "cache_write_1h_mtok"}
    others = sorted(k for k, v in vars(prices).items() if v is not None and k not in carried)
    if others:
        notes.append(f"also priced in the catalog, not carried here: {', '.join(others)}")
    return notes
