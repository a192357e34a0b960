"""Money: minor units per currency, half-even rounding on invoice amounts only, floats refused everywhere."""

from __future__ import annotations

from decimal import Decimal

import pytest

from talktime.core.rating.charges import Graduated, PerUnit, Tier
from talktime.core.rating.money import Money, MoneyError, minor_units, total

ROUNDING = [
    # (amount, currency, rounded, why)
    ("1234.5", "JPY", "1234", "JPY has no minor unit; half goes to the even yen"),
    ("1235.5", "JPY", "1236", "half-even: 1235.5 -> 1236"),
    ("1234.51", "JPY", "1235", "above half rounds up"),
    ("99.4999", "KRW", "99", "KRW: 0 decimals"),
    ("10.5", "CLP", "10", "CLP: 0 decimals, half to even"),
    ("25000.7", "VND", "25001", "VND: 0 decimals"),
    ("0.0125", "KWD", "0.012", "KWD has 3 decimals (fils); half to even"),
    ("0.0135", "KWD", "0.014", "half to even the other way"),
    ("1.23456", "BHD", "1.235", "BHD: 3 decimals"),
    ("2.675", "USD", "2.68", "exact decimal 2.675 (a float would be 2.67499...) rounds half-even to 2.68"),
    ("2.665", "EUR", "2.66", "half-even: 2.665 -> 2.66"),
    ("-0.015", "USD", "-0.02", "credits round the same way"),
    ("-0.005", "USD", "0.00", "a credit that rounds to nothing shows 0.00, not -0.00"),
]


@pytest.mark.parametrize(("amount", "currency", "rounded", "why"), ROUNDING)
def test_rounding_to_the_minor_unit(amount: str, currency: str, rounded: str, why: str) -> None:
    result = Money.of(amount, currency).rounded()
    assert str(result.amount) == rounded, why
    assert result.precise.amount == Decimal(amount), "the precise amount is kept beside the rounded one"


def test_minor_units() -> None:
    assert [minor_units(c) for c in ("JPY", "KRW", "CLP", "VND", "KWD", "BHD", "USD", "EUR")] == [
        0, 0, 0, 0, 3, 3, 2, 2,
    ]  # fmt: skip


@pytest.mark.parametrize(
    "build",
    [
        lambda: Money.of(0.1, "USD"),
        lambda: Money(0.1, "USD"),  # type: ignore[arg-type]
        lambda: Money.of("1", "USD") * 1.5,  # type: ignore[operator]
        lambda: PerUnit(unit_price=0.013),  # type: ignore[arg-type]
        lambda: Graduated((Tier(None, 0.01),)),  # type: ignore[arg-type]
        lambda: PerUnit(Decimal("0.01")).rate([0.5]),  # type: ignore[list-item]
    ],
    ids=["Money.of", "Money()", "multiply", "per_unit price", "tier price", "quantity"],
)
def test_float_is_refused_on_the_money_path(build: object) -> None:
    with pytest.raises(MoneyError, match="float"):
        build()  # type: ignore[operator]


def test_currencies_do_not_mix() -> None:
    with pytest.raises(MoneyError, match="USD and EUR"):
        Money.of(1, "USD") + Money.of(1, "EUR")
    with pytest.raises(MoneyError, match="ISO 4217"):
        Money.of(1, "usd")


def test_total_adds_rounded_lines_and_keeps_the_precise_sum() -> None:
    lines = [Money.of("0.005", "USD").rounded(), Money.of("0.015", "USD").rounded()]
    summed = total(lines, "USD")
    assert summed.amount == Decimal("0.02"), "0.00 + 0.02: the paper adds up"
    assert summed.precise.amount == Decimal("0.020")
