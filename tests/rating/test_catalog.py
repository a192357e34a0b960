"""LLM token prices from the genai-prices catalog: exact, dated, and a typo names what was meant.

Runs against the real, pinned package and its bundled data (no network, no mocks).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from importlib.metadata import version

import pytest
from genai_prices import data_snapshot
from genai_prices.data import providers as package_providers
from genai_prices.types import ModelPrice

from talktime.catalog import (
    PARTS,
    TokenPrices,
    UnknownModel,
    UnknownProvider,
    catalog_version,
    known_models,
    token_prices,
)
from talktime.errors import InputError

AT = datetime(
    2026, 1, 1, tzinfo=UTC
)  # a fixed moment, so a price change scheduled in the data cannot flip a row
D = Decimal

PUBLISHED = [
    # (model, provider, catalog id, input, output, cached_input, cache_write, audio_in, audio_out, why)
    ("gpt-4o", "openai", "gpt-4o", D("2.5"), D("10"), D("1.25"), None, None, None, "OpenAI list price"),
    ("gpt-4o-realtime-preview", "openai", "gpt-4o-realtime-preview", D("5"), D("20"), D("2.5"), None,
     D("40"), D("80"), "realtime: audio tokens priced apart from text"),
    ("claude-sonnet-4-20250514", "anthropic", "claude-sonnet-4-0", D("3"), D("15"), D("0.3"), D("3.75"),
     None, None, "a dated API name resolves to the catalog entry; 5-minute cache write"),
    ("gemini-2.0-flash", "google", "gemini-2.0-flash", D("0.1"), D("0.4"), D("0.025"), None, D("0.7"),
     None, "Gemini prices audio input apart"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("model", "provider", "catalog_id", "input_", "output", "cached", "cache_write", "audio_in", "audio_out",
     "why"),
    PUBLISHED,
)  # fmt: skip
def test_published_prices_per_million_tokens(
    model: str,
    provider: str,
    catalog_id: str,
    input_: Decimal | None,
    output: Decimal | None,
    cached: Decimal | None,
    cache_write: Decimal | None,
    audio_in: Decimal | None,
    audio_out: Decimal | None,
    why: str,
) -> None:
    prices = token_prices(model, provider=provider, at=AT)
    assert (prices.model, prices.provider, prices.requested) == (catalog_id, provider, model), why
    got = (prices.input, prices.output, prices.cached_input, prices.cache_write)
    assert got == (input_, output, cached, cache_write), why
    assert (prices.audio_input, prices.audio_output) == (audio_in, audio_out), why
    assert prices.currency == "USD"


def test_gpt_4o_mini_equals_the_package_data_read_directly() -> None:
    openai = next(p for p in package_providers if p.id == "openai")
    entry = next(m for m in openai.models if m.id == "gpt-4o-mini")
    assert isinstance(entry.prices, ModelPrice), "gpt-4o-mini has one price set, not dated ones"
    ours = token_prices("gpt-4o-mini", provider="openai", at=AT)
    assert ours.input == entry.prices.input_mtok == D("0.15")
    assert ours.output == entry.prices.output_mtok == D("0.6")
    assert ours.cached_input == entry.prices.cache_read_mtok


def test_anthropic_and_gemini_resolve_from_the_name_alone() -> None:
    haiku = token_prices("claude-3-5-haiku-latest", at=AT)
    assert (haiku.provider, haiku.input, haiku.output) == ("anthropic", D("0.8"), D("4"))
    gemini = token_prices("gemini-2.5-pro", at=AT)
    assert (gemini.provider, gemini.model) == ("google", "gemini-2.5-pro")
    assert (gemini.input, gemini.output) == (D("1.25"), D("10")), "prompts up to 200k tokens: the base tier"
    assert any(n.startswith("input: tiered by prompt size; base $1.25/M") for n in gemini.notes)


def test_prices_in_force_at_the_given_moment() -> None:
    before = token_prices("o3", provider="openai", at=datetime(2025, 6, 9, 23, 59, tzinfo=UTC))
    after = token_prices("o3", provider="openai", at=datetime(2025, 6, 10, tzinfo=UTC))
    assert (before.input, before.output) == (D("10"), D("40"))
    assert (after.input, after.output) == (D("2"), D("8")), "OpenAI cut o3 by 80% on 2025-06-10"
    assert any("2025-06-10" in note for note in after.notes)


def test_time_of_day_prices_honour_the_time_zone_and_a_naive_moment_is_utc() -> None:
    peak = token_prices("deepseek-chat", provider="deepseek", at=datetime(2025, 3, 1, 12, 0))
    off_peak = token_prices("deepseek-chat", provider="deepseek", at=datetime(2025, 3, 1, 20, 0, tzinfo=UTC))
    tokyo_20h = datetime(2025, 3, 1, 20, 0, tzinfo=timezone(timedelta(hours=9)))  # 11:00 UTC
    assert peak.at.tzinfo is UTC
    assert off_peak.input is not None and peak.input is not None and off_peak.input < peak.input
    assert token_prices("deepseek-chat", provider="deepseek", at=tokyo_20h).input == peak.input


def test_a_typo_names_the_closest_models() -> None:
    with pytest.raises(UnknownModel) as caught:
        token_prices("gpt-4o-mnii", provider="openai")
    message = str(caught.value)
    assert message.startswith(f"model 'gpt-4o-mnii' is not in the {catalog_version()} catalog")
    assert "closest: gpt-4o-mini" in message
    assert caught.value.closest[0] == "gpt-4o-mini"
    assert isinstance(caught.value, InputError) and isinstance(caught.value, ValueError)


def test_a_typo_without_a_provider_searches_every_provider() -> None:
    with pytest.raises(UnknownModel, match=r"'claude-sonet-4' .*closest: claude-sonnet-4"):
        token_prices("claude-sonet-4")


def test_an_unknown_provider_names_the_closest_provider() -> None:
    with pytest.raises(UnknownProvider, match=r"provider 'opnai' .*closest: openai"):
        token_prices("gpt-4o", provider="opnai")
    with pytest.raises(UnknownProvider):
        known_models("opnai")


def test_a_reseller_without_its_own_entry_gets_the_makers_prices_and_says_so() -> None:
    azure = token_prices("gpt-4o", provider="azure", at=AT)
    assert (azure.provider, azure.input, azure.output) == ("azure", D("2.5"), D("10"))
    assert any("openai's prices" in note for note in azure.notes)


def test_every_known_model_resolves_to_itself_with_decimal_prices() -> None:
    checked = 0
    for provider in sorted({p.id for p in package_providers}):
        for model in known_models(provider):
            prices = token_prices(model, provider=provider, at=AT)
            assert prices.model == model
            for part in PARTS:
                per_million = getattr(prices, part)
                assert per_million is None or type(per_million) is Decimal, (provider, model, part)
                per_token = prices.per_token(part)
                assert per_token is None or type(per_token) is Decimal
            checked += 1
    assert checked > 1000, "the catalog holds well over a thousand models"
    assert "gpt-4o-mini" in known_models("openai") and "gpt-4o-mini" in known_models()


def test_per_token_is_exact() -> None:
    prices = token_prices("gpt-4o-mini", provider="openai", at=AT)
    assert prices.per_token("input") == D("0.00000015")
    assert prices.per_token("output") == D("0.0000006")
    per_token = prices.per_token("input")
    assert per_token is not None and per_token * 1_000_000 == prices.input
    assert prices.per_token("audio_output") is None
    with pytest.raises(InputError, match="'audio'; expected one of input, output"):
        prices.per_token("audio")


def test_a_float_price_is_refused() -> None:
    with pytest.raises(InputError, match="non-negative Decimal"):
        TokenPrices(model="m", provider="p", catalog="c", requested="m", at=AT, input=0.15)  # type: ignore[arg-type]


def test_catalog_version_names_the_pinned_package_and_every_price_carries_it() -> None:
    assert catalog_version() == f"genai-prices {version('genai-prices')}"
    assert token_prices("gpt-4o", at=AT).catalog == catalog_version()


def test_prices_downloaded_by_another_library_do_not_change_the_pinned_catalog() -> None:
    # genai-prices' UpdatePrices replaces a process-wide snapshot; an empty one stands in for it here.
    data_snapshot.set_custom_snapshot(data_snapshot.DataSnapshot(providers=[], from_auto_update=True))
    try:
        assert token_prices("gpt-4o", provider="openai", at=AT).input == D("2.5")
    finally:
        data_snapshot.set_custom_snapshot(None)
