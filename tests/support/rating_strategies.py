"""Hypothesis strategies for rating: exact quantities, prices and tier lists (never floats)."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import strategies as st

QUANTITIES = st.decimals(min_value=0, max_value=100_000, places=3, allow_nan=False, allow_infinity=False)
PRICES = st.decimals(min_value=0, max_value=10, places=4, allow_nan=False, allow_infinity=False)


@st.composite
def tier_lists(draw: st.DrawFn) -> list[dict[str, Decimal | None]]:
    """Two to five tiers with strictly increasing positive bounds, the last open-ended."""
    bounds = sorted(
        draw(
            st.sets(
                st.decimals(min_value=1, max_value=50_000, places=2, allow_nan=False, allow_infinity=False),
                min_size=1,
                max_size=4,
            )
        )
    )
    return [
        {"up_to": bound, "unit_price": draw(PRICES), "flat_fee": draw(PRICES)} for bound in [*bounds, None]
    ]
