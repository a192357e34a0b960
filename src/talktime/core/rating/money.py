"""Money: an exact ``Decimal`` amount with an ISO 4217 currency, and the one place amounts get rounded.

Owns: currencies' minor units, refusing floats, adding and scaling amounts, rounding to a currency's minor
unit. Does not own: what anything costs (the charge models) or where rounding happens (invoices).

Rounding policy (see docs/pricing.md):

* Amounts stay unrounded through metering, charge models, allocation to calls and margins.
* Rounding happens only on invoice lines and invoice totals, to the currency's minor unit, **half-even**
  (banker's rounding: unbiased when many lines end in exactly half a minor unit). Each rounded amount keeps
  the precise amount beside it (:class:`Rounded`).
* Minor units: 0 for JPY, KRW, CLP, VND (and the other ISO zero-decimal currencies below), 3 for KWD, BHD
  (and the other three-decimal ones), 2 otherwise.

>>> Money.of("1234.5", "JPY").rounded().amount
Decimal('1234')
>>> Money.of("0.0125", "KWD").rounded().amount
Decimal('0.012')
>>> Money.of("2.675", "USD").rounded().amount
Decimal('2.68')
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Final

from talktime.errors import InputError

#: ISO 4217 currencies whose minor unit is not 2 decimals. Everything else rounds to cents.
MINOR_UNITS: Final[dict[str, int]] = {
    **dict.fromkeys(("JPY", "KRW", "CLP", "VND", "ISK", "UGX", "XAF", "XOF", "PYG", "RWF"), 0),
    **dict.fromkeys(("KWD", "BHD", "OMR", "JOD", "IQD", "LYD", "TND"), 3),
}
DEFAULT_MINOR_UNITS: Final = 2
ROUNDING: Final = ROUND_HALF_EVEN
_CURRENCY = re.compile(r"^[A-Z]{3}$")


class MoneyError(InputError):
    """An amount that is not exact (a float), not finite, or in the wrong currency."""


def minor_units(currency: str) -> int:
    """Decimal places of the currency's minor unit: ``JPY`` 0, ``USD`` 2, ``KWD`` 3."""
    return MINOR_UNITS.get(currency, DEFAULT_MINOR_UNITS)


def exact(value: object, what: str = "amount") -> Decimal:
    """An exact decimal from a Decimal, int or numeric string; a float (or bool) is refused.

    >>> exact("0.013")
    Decimal('0.013')
    >>> exact(0.1)
    Traceback (most recent call last):
    ...
    talktime.core.rating.money.MoneyError: amount: 0.1 is a float; floats are not exact, write "0.1"
    """
    if isinstance(value, bool):
        raise MoneyError(f"{what}: {value!r} is not a number")
    if isinstance(value, float):
        raise MoneyError(f'{what}: {value!r} is a float; floats are not exact, write "{value!r}"')
    if isinstance(value, Decimal):
        parsed = value
    elif isinstance(value, int):
        parsed = Decimal(value)
    elif isinstance(value, str):
        try:
            parsed = Decimal(value.strip())
        except InvalidOperation:
            raise MoneyError(f"{what}: {value!r} is not a decimal number") from None
    else:
        raise MoneyError(f"{what}: {value!r} is not a decimal number")
    if not parsed.is_finite():
        raise MoneyError(f"{what}: {value!r} is not a finite number")
    return parsed


def check_currency(code: str) -> str:
    if not isinstance(code, str) or not _CURRENCY.match(code):
        raise MoneyError(f"currency: {code!r} is not an ISO 4217 code like USD, EUR or JPY")
    return code


@dataclass(frozen=True, slots=True)
class Money:
    """An exact amount in one currency. Arithmetic with another currency or with a float is an error."""

    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.amount, Decimal):
            raise MoneyError(
                f"amount: {self.amount!r} is a {type(self.amount).__name__}; use Money.of or a Decimal"
            )
        exact(self.amount)
        check_currency(self.currency)

    @classmethod
    def of(cls, amount: object, currency: str) -> Money:
        """Money from a Decimal, int or numeric string (never a float)."""
        return cls(exact(amount), currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(Decimal(0), currency)

    def _same(self, other: Money) -> None:
        if not isinstance(other, Money):
            raise MoneyError(f"cannot combine {self.currency} money with {other!r}")
        if other.currency != self.currency:
            raise MoneyError(f"cannot combine {self.currency} and {other.currency} amounts (no FX here)")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def __mul__(self, factor: Decimal | int) -> Money:
        return Money(self.amount * exact(factor, "factor"), self.currency)

    __rmul__ = __mul__

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.amount <= other.amount

    def rounded(self) -> Rounded:
        """This amount rounded half-even to the currency's minor unit, the precise amount kept beside it."""
        places = Decimal(1).scaleb(-minor_units(self.currency))
        rounded = self.amount.quantize(places, rounding=ROUNDING)
        if rounded == 0:
            rounded = rounded.copy_abs()  # no "-0.00" on an invoice
        return Rounded(Money(rounded, self.currency), self)

    def text(self) -> str:
        """The amount at exactly the currency's minor unit, e.g. ``12.30 USD``, ``1235 JPY``."""
        return f"{self.rounded().amount} {self.currency}"


@dataclass(frozen=True, slots=True)
class Rounded:
    """An invoice amount: rounded to the minor unit, with the unrounded amount it came from."""

    money: Money
    precise: Money

    @property
    def amount(self) -> Decimal:
        return self.money.amount

    @property
    def currency(self) -> str:
        return self.money.currency

    @property
    def rounding_difference(self) -> Decimal:
        return self.money.amount - self.precise.amount


def total(amounts: list[Rounded], currency: str) -> Rounded:
    """Rounded amounts added up: the rounded sum is the sum of rounded lines (what the paper shows adds up),
    the precise sum is the sum of precise amounts."""
    rounded = sum((a.money.amount for a in amounts), Decimal(0))
    precise = sum((a.precise.amount for a in amounts), Decimal(0))
    for a in amounts:
        check = a.currency == currency
        if not check:
            raise MoneyError(f"cannot add a {a.currency} line to a {currency} invoice")
    return Rounded(Money(rounded, currency), Money(precise, currency))
