"""Reconciliation in money: the rate a statement line is checked against, and the Python reference of every
amount a line carries (the vectorised engine must give the same amounts, line by line).

Amounts per line (``--costs CARD``, ``--rate``, or the rate inferred from the statement):

* ``due``: the provider's own billed quantity priced at the rate (per unit, or ``max(fee, usage)`` for a
  per-attempt price): what the statement line should cost for what it bills.
* ``expected_amount``: our metering of the line's record priced the same way: what it should cost for
  what we counted.
* ``price`` (a cause of its own): the line's amount minus ``due``. A line whose ``|price|`` is over the
  money tolerance is flagged, whatever its seconds say.

So ``amount - expected_amount = (due - expected_amount) + price``: a seconds difference, valued at the
rate, plus a price difference. Values are exact rationals; they are written rounded half-even to 12
decimal places (the precise amounts of invoices), and a flag is decided on the exact value.

The inferred rate (no card, no ``--rate``) is the *most common* per-unit rate of the priced lines, each
line's rate rounded to the statement's amount precision (ties: the lower rate). An average would absorb
an overcharge into the rate and hide it; the most common rate leaves an overcharged line off it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction
from typing import Final, Literal

from talktime.core.decimals import text
from talktime.core.rating.cards import CostCard, Entry, RateCardError
from talktime.core.rating.charges import PerAttempt, PerUnit

#: Places every computed amount is written to (half-even), as invoices' precise amounts.
AMOUNT_PLACES: Final = 12
#: The moment before any statement: a rate given or inferred applies from it.
ALWAYS: Final = datetime(1970, 1, 1, tzinfo=UTC)
RateSource = Literal["card", "given", "inferred"]


@dataclass(frozen=True, slots=True)
class PriceVersion:
    """A price in force from ``effective_from``: ``unit_price`` per unit, at least ``fee`` per line."""

    effective_from: datetime
    unit_price: Decimal
    fee: Decimal = Decimal(0)


@dataclass(frozen=True, slots=True)
class Pricing:
    """The rate statement lines are checked against, and where it comes from (named in every report)."""

    source: RateSource
    label: str
    unit: str
    unit_seconds: int
    versions: tuple[PriceVersion, ...]
    currency: str | None = None

    def version_at(self, moment: datetime) -> PriceVersion | None:
        chosen = None
        for version in self.versions:
            if version.effective_from <= moment:
                chosen = version
        return chosen

    def describe(self) -> str:
        """The rate in words: ``0.0085 per minute from 2021-07-08`` (each version)."""
        parts = []
        for v in self.versions:
            fee = f", at least {text(v.fee)} a line" if v.fee else ""
            since = "" if v.effective_from == ALWAYS else f" from {v.effective_from.date().isoformat()}"
            parts.append(f"{text(v.unit_price)} per {self.unit}{fee}{since}")
        return "; ".join(parts)

    def as_dict(self) -> list[dict[str, str]]:
        return [
            {
                "effective_from": v.effective_from.date().isoformat(),
                "unit_price": text(v.unit_price),
                "fee": text(v.fee),
                "unit": self.unit,
            }
            for v in self.versions
        ]


def given_rate(rate: Decimal, unit: str, unit_seconds: Decimal) -> Pricing:
    """``--rate``: one price per profile unit, for every line."""
    return Pricing(
        "given",
        f"given: --rate {text(rate)} per {unit}",
        unit,
        int(unit_seconds),
        (PriceVersion(ALWAYS, rate),),
    )


def card_pricing(card: CostCard, policy_id: str, entry_id: str | None = None) -> Pricing:
    """The cost card entry that prices the provider's profile, as line prices.

    The entry is ``entry_id`` when given, else the one entry whose policy is ``policy_id``. Only prices a
    line can carry on its own are accepted (per_unit, per_attempt); a tiered, package or flat price
    prices a month's total, so a line cannot be checked against it: that is an error naming the entry.
    """
    entry = _entry(card, policy_id, entry_id)
    versions = []
    for version in entry.versions:
        model = version.model
        if isinstance(model, PerUnit):
            versions.append(PriceVersion(version.effective_from, model.unit_price))
        elif isinstance(model, PerAttempt):
            versions.append(PriceVersion(version.effective_from, model.unit_price, model.fee))
        else:
            raise RateCardError(
                f"{card.name}: costs.{entry.id} (from {version.label}): model {model.name!r} prices a "
                "period's "
                "total, not a line; reconcile checks each line against a per_unit or per_attempt price"
            )
    size = entry.unit_seconds
    if size != size.to_integral_value():
        raise RateCardError(f"{card.name}: costs.{entry.id}: unit {entry.unit!r} is not a time unit")
    label = f"cost card {card.name}, entry {entry.id}"
    return Pricing("card", label, entry.unit, int(size), tuple(versions), card.currency)


def _entry(card: CostCard, policy_id: str, entry_id: str | None) -> Entry:
    if entry_id is not None:
        for entry in card.entries:
            if entry.id == entry_id:
                if entry.policy.id != policy_id:
                    raise RateCardError(
                        f"{card.name}: costs.{entry_id} meters with {entry.policy.id!r}, the statement is "
                        f"reconciled under {policy_id!r}"
                    )
                return entry
        known = ", ".join(e.id for e in card.entries)
        raise RateCardError(f"{card.name}: --cost-entry {entry_id!r}: no such entry (entries: {known})")
    found = [e for e in card.entries if e.policy.id == policy_id and not e.additional]
    if not found:
        known = ", ".join(f"{e.id} ({e.policy.id})" for e in card.entries)
        raise RateCardError(f"{card.name}: no entry prices {policy_id!r} (entries: {known})")
    if len(found) > 1:
        ids = ", ".join(e.id for e in found)
        raise RateCardError(
            f"{card.name}: {len(found)} entries price {policy_id!r} ({ids}); name one with --cost-entry"
        )
    return found[0]


def line_rate(amount: Decimal, seconds: Decimal, unit_seconds: int, places: int) -> Decimal:
    """A line's rate per unit, rounded half-even to ``places``: ``amount / (seconds / unit_seconds)``.

    >>> line_rate(Decimal("0.00744"), Decimal(47), 60, 5)
    Decimal('0.00950')
    """
    exact = Fraction(amount) * unit_seconds / Fraction(seconds)
    return Decimal(round_half_even(exact * 10**places)).scaleb(-places)


def line_rates(
    lines: Iterable[tuple[Decimal | None, Decimal]], unit_seconds: int, places: int
) -> Counter[Decimal]:
    """How many lines (amount, billed seconds) have each rate; lines without an amount, with a negative one
    (a credit) or with nothing billed have no rate."""
    return Counter(
        line_rate(amount, seconds, unit_seconds, places)
        for amount, seconds in lines
        if amount is not None and amount >= 0 and seconds > 0
    )


def modal_rate(rates: Counter[Decimal], unit: str, unit_seconds: int, places: int) -> Pricing | None:
    """The most common rate (ties: the lower one) as the pricing of an inferred-rate reconciliation.

    >>> modal_rate(Counter({Decimal("0.013"): 9, Decimal("0.05"): 1}), "minute", 60, 5).describe()
    '0.013 per minute'
    """
    if not rates:
        return None
    rate, count = min(rates.items(), key=lambda kv: (-kv[1], kv[0]))
    total = sum(rates.values())
    label = (
        f"inferred: {text(rate)} per {unit}, the most common rate on the statement "
        f"({count} of {total} priced lines); no cost card given"
    )
    return Pricing("inferred", label, unit, unit_seconds, (PriceVersion(ALWAYS, rate),))


def round_half_even(value: Fraction) -> int:
    """The nearest integer, halves to even (exact)."""
    floor = value.numerator // value.denominator
    rest = value - floor
    if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and floor % 2 == 1):
        return floor + 1
    return floor


def written(value: Fraction) -> Decimal:
    """An exact amount as written in reports: half-even to :data:`AMOUNT_PLACES` places."""
    return Decimal(round_half_even(value * 10**AMOUNT_PLACES)).scaleb(-AMOUNT_PLACES)


@dataclass(frozen=True, slots=True)
class LineMoney:
    """A line's amounts, exact."""

    due: Fraction
    expected: Fraction
    price: Fraction | None
    flagged: bool


def price_of(version: PriceVersion, seconds: Decimal, unit_seconds: int) -> Fraction:
    """``seconds`` priced by ``version``: per unit, at least the fee."""
    usage = Fraction(seconds) * Fraction(version.unit_price) / unit_seconds
    return max(Fraction(version.fee), usage)


def line_money(
    pricing: Pricing,
    moment: datetime,
    provider_seconds: Decimal | None,
    expected_seconds: Decimal | None,
    amount: Decimal | None,
    tolerance: Decimal,
) -> LineMoney:
    """The reference: a line's due and expected amounts, its price difference and whether it is flagged.

    ``provider_seconds`` is None for a record not on the statement (nothing is due), ``expected_seconds``
    None for a line with no record of ours (nothing is expected).
    """
    version = pricing.version_at(moment)
    if version is None:
        raise RateCardError(f"{pricing.label}: no price before {pricing.versions[0].effective_from.date()}")
    none = Fraction(0)
    due = none if provider_seconds is None else price_of(version, provider_seconds, pricing.unit_seconds)
    expected = none if expected_seconds is None else price_of(version, expected_seconds, pricing.unit_seconds)
    price = None if amount is None else Fraction(amount) - due
    return LineMoney(due, expected, price, price is not None and abs(price) > Fraction(tolerance))
