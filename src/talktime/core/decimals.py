"""Exact decimal helpers shared by the domain: no float ever passes through here."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, localcontext


def plain(value: Decimal) -> Decimal:
    """The same value with trailing zeros dropped and never in exponent form (``60.000`` -> ``60``),
    exact however many digits it has (the context's 28 would round, or refuse, a longer one)."""
    _, digits, exponent = value.as_tuple()
    with localcontext() as context:
        if isinstance(exponent, int):
            context.prec = max(context.prec, len(digits) + max(exponent, 0))
        normal = value.normalize()
        if normal == 0:
            return Decimal(0)
        return normal.quantize(Decimal(1)) if normal.as_tuple().exponent > 0 else normal  # type: ignore[operator]


def text(value: Decimal) -> str:
    """A decimal as text without exponent or trailing zeros: the form we write to JSON and CSV."""
    return format(plain(value), "f")


def quantize(value: Decimal, places: int) -> Decimal:
    """Round half-even to ``places`` decimal places, then drop trailing zeros (exact at any length)."""
    _, digits, exponent = value.as_tuple()
    with localcontext() as context:
        if isinstance(exponent, int):
            context.prec = max(context.prec, len(digits) + abs(exponent) + places)
        return plain(value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN))
