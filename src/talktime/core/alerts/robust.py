"""The statistic behind "far above the customer's usual": the median and the median absolute deviation
(MAD) of the values' logarithms, so one runaway call barely moves the norm it is measured against.

Call durations and tokens per minute are skewed (most calls short, a long tail): on a log scale their spread
is about symmetric, and a threshold there reads as a factor of the median. The threshold is

    exp(median(ln v) + spread x 1.4826 x MAD(ln v)),  and never below min_factor x median(v)

1.4826 x MAD estimates a standard deviation for normally distributed logs, so ``spread = 4`` is four robust
standard deviations; the floor keeps a customer whose calls all last about the same from being alerted
for a call just above them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, localcontext

#: 1.4826 x MAD is a consistent estimate of the standard deviation of normally distributed values.
MAD_TO_SD = Decimal("1.4826")


def median(values: Sequence[Decimal]) -> Decimal:
    """The middle value (the mean of the middle two for an even count).

    >>> median([Decimal(3), Decimal(1), Decimal(2), Decimal(10)])
    Decimal('2.5')
    """
    if not values:
        raise ValueError("the median of no values")
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


@dataclass(frozen=True, slots=True)
class Norm:
    """A customer's usual value (the median), the threshold above which a value is far above it, and how
    many values the norm was drawn from."""

    median: Decimal
    threshold: Decimal
    sample: int


def _log_median(values: Sequence[Decimal]) -> Decimal:
    """exp(median(ln v)) without a logarithm per value: the logarithm keeps the order, so it is the middle
    value (the geometric mean of the middle two for an even count)."""
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] * ordered[middle]).sqrt()


def norm(values: Sequence[Decimal], spread: Decimal, min_factor: Decimal) -> Norm:
    """The norm of positive ``values`` (see the module). Worked out on ratios, so that only two
    logarithms are taken however many values there are: with m = exp(median(ln v)),
    |ln v - ln m| = ln(max(v/m, m/v)), so MAD(ln v) = ln(R) with R = exp(median(ln max(v/m, m/v))).

    >>> n = norm([Decimal(v) for v in (60, 90, 75, 80, 70, 65, 85)], Decimal(4), Decimal(3))
    >>> n.median, round(n.threshold, 1)
    (Decimal('75'), Decimal('225.0'))
    >>> n = norm([Decimal(v) for v in (60, 90, 75, 80, 70, 65, 85)], Decimal(4), Decimal(1))
    >>> round(n.threshold, 3)  # exp(ln 75 + 4 x 1.4826 x MAD of the logs)
    Decimal('157.552')
    """
    if any(v <= 0 for v in values):
        raise ValueError("a norm on a log scale needs positive values")
    with localcontext() as context:
        context.prec = 28
        centre = _log_median(values)
        spread_ratio = _log_median([max(v / centre, centre / v) for v in values])
        above = centre * (spread * MAD_TO_SD * spread_ratio.ln()).exp()
    middle = median(values)
    return Norm(middle, max(above, min_factor * middle), len(values))
