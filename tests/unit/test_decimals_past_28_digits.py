"""Exact decimal text however many digits (the default context's 28 once made a 41-digit value fail)."""

from __future__ import annotations

from decimal import Decimal

from talktime.core.decimals import plain, quantize, text


def test_values_past_28_digits_stay_exact() -> None:
    huge = "1" + "0" * 40
    assert text(Decimal(huge)) == huge
    assert text(Decimal("123456789012345678901234567890123.5000")) == "123456789012345678901234567890123.5"
    assert quantize(Decimal("123456789012345678901234567890123.45"), 1) == Decimal(
        "123456789012345678901234567890123.4"
    )
    assert plain(Decimal("60.000")) == Decimal(60) and text(Decimal("0.00")) == "0"
