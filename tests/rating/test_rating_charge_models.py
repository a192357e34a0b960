"""Golden tables for every charge model at its edges: zero, exactly on a tier edge, one unit past.

Conventions under test (docs/pricing.md): ``up_to`` is an inclusive upper bound; a tier's flat fee is charged
only when some usage falls in the tier, so zero usage costs nothing; amounts are exact (never rounded here).
Each row: (quantities, expected amount, why). Expected values were worked out by hand.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from talktime.core.rating.charges import (
    FlatFee,
    Graduated,
    Included,
    MinimumCommitment,
    Package,
    PerAttempt,
    PerUnit,
    Tier,
    Volume,
)
from talktime.core.rating.money import MoneyError

D = Decimal
TIERS = (Tier(D(1000), D("0.02"), D(5)), Tier(D(5000), D("0.01"), D(3)), Tier(None, D("0.005")))

PER_UNIT = [
    ([], "0", "no usage"),
    ([D(0)], "0", "a zero-length call"),
    ([D(1)], "0.013", "one minute"),
    ([D("2.5"), D("0.5")], "0.039", "3 minutes over two calls, priced on the exact quantity"),
]
PACKAGE = [
    ([D(0)], "0", "zero usage is zero blocks"),
    ([D(100)], "4", "exactly one block"),
    ([D(101)], "8", "one unit past a block starts the next, rounded up"),
    ([D("0.001")], "4", "any usage starts a block"),
]
GRADUATED = [
    ([D(0)], "0", "zero usage: no tier reached, not even tier 1's flat fee"),
    ([D("0.001")], "5.00002", "a sliver reaches tier 1: its flat fee plus 0.001 x 0.02"),
    ([D(1000)], "25.00", "exactly on the edge: up_to is inclusive, all in tier 1 (20 + flat 5)"),
    ([D(1001)], "28.01", "one past the edge: 1 unit in tier 2 at 0.01, plus tier 2's flat 3"),
    ([D(5000)], "68.00", "tier 1 25 + tier 2 4000 x 0.01 + 3 = 43"),
    ([D(5001)], "68.005", "one past the second edge: tier 3 has no flat fee"),
    ([D(600), D(400)], "25.00", "tiers apply to the period's total, not per call"),
]
VOLUME = [
    ([D(0)], "0", "zero usage costs nothing"),
    ([D(1000)], "25.00", "exactly on the edge stays in tier 1: 1000 x 0.02 + 5"),
    ([D(1001)], "13.01", "one past: all 1001 at tier 2's 0.01, plus its flat 3 (cheaper than 1000!)"),
    ([D(5001)], "25.005", "all at tier 3's 0.005"),
]
PER_ATTEMPT = [
    ([], "0", "no attempts"),
    ([D(0)], "0.015", "a failed call pays the fee"),
    ([D(10) / 60], "0.015", "10 s at 0.09/min = 0.015: equal to the fee"),
    ([D(11) / 60], "0.0165", "11 s: usage passes the fee and absorbs it"),
    ([D(0), D(1)], "0.105", "fee + 1 minute of usage"),
]


def _check(model: object, quantities: list[Decimal], expected: str, why: str) -> None:
    charge = model.rate(quantities)  # type: ignore[attr-defined]
    assert charge.amount == D(expected), why
    assert sum(charge.allocation, D(0)) == charge.amount, "per-call parts add up to the amount"
    assert len(charge.allocation) == len(quantities)
    assert charge.steps, "every charge explains itself"


@pytest.mark.parametrize(("quantities", "expected", "why"), PER_UNIT)
def test_per_unit(quantities: list[Decimal], expected: str, why: str) -> None:
    _check(PerUnit(D("0.013")), quantities, expected, why)


@pytest.mark.parametrize(("quantities", "expected", "why"), PACKAGE)
def test_package(quantities: list[Decimal], expected: str, why: str) -> None:
    _check(Package(D(100), D(4)), quantities, expected, why)


@pytest.mark.parametrize(("quantities", "expected", "why"), GRADUATED)
def test_graduated(quantities: list[Decimal], expected: str, why: str) -> None:
    _check(Graduated(TIERS), quantities, expected, why)


@pytest.mark.parametrize(("quantities", "expected", "why"), VOLUME)
def test_volume(quantities: list[Decimal], expected: str, why: str) -> None:
    _check(Volume(TIERS), quantities, expected, why)


@pytest.mark.parametrize(("quantities", "expected", "why"), PER_ATTEMPT)
def test_per_attempt_is_max_of_fee_and_usage(quantities: list[Decimal], expected: str, why: str) -> None:
    _check(PerAttempt(D("0.015"), D("0.09")), quantities, expected, why)


def test_per_attempt_allocates_per_call() -> None:
    charge = PerAttempt(D("0.015"), D("0.09")).rate([D(0), D(2)])
    assert charge.allocation == (D("0.015"), D("0.18"))


def test_flat_fee_whatever_the_usage() -> None:
    assert FlatFee(D(49)).rate([]).amount == D(49)
    assert FlatFee(D(49)).rate([D(1000)]).amount == D(49)


@pytest.mark.parametrize(
    ("usage", "true_up", "why"),
    [
        ("0", "500", "no usage: the whole minimum is owed"),
        ("499.99", "0.01", "one cent short"),
        ("500", "0", "exactly the minimum: no true-up"),
        ("500.01", "0", "above the minimum: never a negative true-up"),
    ],
)
def test_minimum_commitment_true_up(usage: str, true_up: str, why: str) -> None:
    assert MinimumCommitment(D(500)).true_up(D(usage)).amount == D(true_up), why


@pytest.mark.parametrize(
    ("quantities", "expected", "why"),
    [
        ([D(0)], "0", "zero usage"),
        ([D(100)], "0", "exactly the included quantity is free"),
        ([D(101)], "0.01", "one past the quota is billed"),
        ([D(60), D(60)], "0.20", "the quota is consumed first, by the first calls"),
    ],
)
def test_included_quantity(quantities: list[Decimal], expected: str, why: str) -> None:
    _check(Included(D(100), PerUnit(D("0.01"))), quantities, expected, why)


def test_included_goes_to_the_first_calls() -> None:
    charge = Included(D(100), PerUnit(D("0.01"))).rate([D(60), D(60)])
    assert charge.allocation == (D(0), D("0.20"))


def test_included_is_consumed_before_tiers() -> None:
    model = Included(D(1000), Graduated(TIERS))
    assert model.rate([D(1000)]).amount == 0, "the quota covers tier 1 entirely: no flat fee either"
    assert model.rate([D(2000)]).amount == D("25.00"), "the next 1000 start at tier 1"


@pytest.mark.parametrize(
    "tiers",
    [
        (),
        (Tier(D(10), D(1)),),
        (Tier(D(10), D(1)), Tier(D(5), D(1)), Tier(None, D(1))),
        (Tier(None, D(1)), Tier(None, D(1))),
    ],
    ids=["none", "last bounded", "decreasing", "two open"],
)
def test_bad_tiers_are_refused(tiers: tuple[Tier, ...]) -> None:
    with pytest.raises(MoneyError, match="tiers"):
        Graduated(tiers)


def test_negative_prices_are_refused() -> None:
    with pytest.raises(MoneyError, match="negative"):
        PerUnit(D("-0.01"))
