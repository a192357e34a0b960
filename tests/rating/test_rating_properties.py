"""Hypothesis invariants of the charge models: what must hold for any tiers and any usage."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from support.rating_strategies import PRICES, QUANTITIES, tier_lists
from talktime.core.rating.charges import Graduated, Included, PerUnit, Tier, Volume, pro_rata


def _tiers(raw: list[dict[str, Decimal | None]]) -> tuple[Tier, ...]:
    return tuple(Tier(t["up_to"], t["unit_price"] or Decimal(0), t["flat_fee"] or Decimal(0)) for t in raw)


@given(tier_lists(), QUANTITIES, QUANTITIES)
def test_graduated_is_never_negative_and_never_decreasing(
    raw: list[dict[str, Decimal | None]], a: Decimal, b: Decimal
) -> None:
    model = Graduated(_tiers(raw))
    low, high = sorted((a, b))
    assert model.rate([low]).amount >= 0
    assert model.rate([high]).amount >= model.rate([low]).amount


@given(tier_lists(), st.lists(QUANTITIES, max_size=8))
def test_graduated_depends_on_the_total_only(
    raw: list[dict[str, Decimal | None]], parts: list[Decimal]
) -> None:
    model = Graduated(_tiers(raw))
    whole = model.rate([sum(parts, Decimal(0))]).amount
    assert model.rate(parts).amount == whole


@given(tier_lists(), QUANTITIES)
def test_volume_is_never_negative(raw: list[dict[str, Decimal | None]], q: Decimal) -> None:
    assert Volume(_tiers(raw)).rate([q]).amount >= 0


@given(QUANTITIES, PRICES, st.lists(QUANTITIES, max_size=8))
def test_included_never_costs_more_than_without_it(
    included: Decimal, price: Decimal, parts: list[Decimal]
) -> None:
    bare = PerUnit(price).rate(parts).amount
    with_quota = Included(included, PerUnit(price)).rate(parts).amount
    assert 0 <= with_quota <= bare


@given(QUANTITIES, st.lists(QUANTITIES, min_size=1, max_size=8))
def test_allocation_always_adds_up_exactly(amount: Decimal, parts: list[Decimal]) -> None:
    shares = pro_rata(amount, parts)
    assert sum(shares, Decimal(0)) == amount
    assert len(shares) == len(parts)
