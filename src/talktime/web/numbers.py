"""Numbers as the pages show them: exact values rounded only for display, at the precision the reader
needs (a call's amounts to 4 decimals, a month's to the cent, minutes to 2), right-aligned by the CSS."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

from talktime.core.decimals import text


def fixed(value: object, places: int) -> str:
    """``value`` to ``places`` decimals with thousands separators; ``-`` for no value.

    >>> fixed(Decimal("1234.56789"), 2), fixed(Decimal("-0.07399"), 4), fixed(None, 2)
    ('1,234.57', '-0.0740', '-')
    """
    if not isinstance(value, Decimal | int):
        return "-"
    step = Decimal(1).scaleb(-places)
    return f"{Decimal(value).quantize(step, rounding=ROUND_HALF_EVEN):,.{places}f}"


def exact(value: object) -> str:
    """The exact value for a data attribute (tests and copy-paste compare it with the CLI's JSON)."""
    return text(value) if isinstance(value, Decimal) else "" if value is None else str(value)


def minutes(seconds: Decimal) -> Decimal:
    return seconds / 60


def uplift(actual: Decimal, billable: Decimal) -> str:
    """How much more is billed than was used, in percent with one decimal; ``-`` with nothing used.

    >>> uplift(Decimal(100), Decimal(120)), uplift(Decimal(0), Decimal(5))
    ('+20.0%', '-')
    """
    if not actual:
        return "-"
    return f"{(billable / actual - 1) * 100:+.1f}%"
