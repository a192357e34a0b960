"""Distribution and mix specs as the command line writes them, parsed into validated values.

Durations are exact: a spec's seconds are Decimals and the generated durations whole milliseconds (or the
microseconds of a history). A bad spec raises :class:`SpecError` naming the option, the text and the fix.

>>> parse_distribution("fixed:45")
Fixed(seconds=Decimal('45'))
>>> parse_distribution("lognormal:mean=90,sigma=0.8")
LogNormal(mean=Decimal('90'), sigma=Decimal('0.8'))
>>> parse_mix("1:0.7,2:0.3", "channels")
((1, Decimal('0.7')), (2, Decimal('0.3')))
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Final

from talktime.errors import InputError

FORMS: Final = "fixed:SECONDS, lognormal:mean=S,sigma=X, uniform:LOW,HIGH or empirical:FILE"
#: Generated durations are whole milliseconds; a spec's seconds may not be finer than that.
MS_PLACES: Final = 3


class SpecError(InputError):
    """A --distribution, --channels or --participants value that cannot be read."""


@dataclass(frozen=True, slots=True)
class Fixed:
    """Every call lasts ``seconds``."""

    seconds: Decimal


@dataclass(frozen=True, slots=True)
class LogNormal:
    """Durations whose logarithm is normal with spread ``sigma``, scaled so their mean is ``mean`` seconds."""

    mean: Decimal
    sigma: Decimal


@dataclass(frozen=True, slots=True)
class Uniform:
    """Durations uniform over the whole milliseconds from ``low`` to ``high`` seconds, both included."""

    low: Decimal
    high: Decimal


@dataclass(frozen=True, slots=True)
class Empirical:
    """Durations drawn (with replacement) from the completed records of a history file."""

    path: Path


Distribution = Fixed | LogNormal | Uniform | Empirical
Mix = tuple[tuple[int, Decimal], ...]


def _fail(option: str, value: str, why: str, example: str) -> SpecError:
    return SpecError(f"{option} {value!r}: {why}; e.g. {example}")


def _seconds(text: str, option: str, value: str, what: str, example: str, positive: bool = False) -> Decimal:
    try:
        number = Decimal(text.strip())
    except InvalidOperation:
        raise _fail(option, value, f"{what} {text.strip()!r} is not a number of seconds", example) from None
    if not number.is_finite() or number < 0 or (positive and number == 0):
        need = "positive" if positive else "zero or more"
        raise _fail(option, value, f"{what} must be a finite number of seconds, {need}", example)
    if number != number.quantize(Decimal(1).scaleb(-MS_PLACES)):
        raise _fail(option, value, f"{what} {text.strip()} is finer than a millisecond", example)
    return number


def parse_distribution(value: str) -> Distribution:
    """``fixed:45``, ``lognormal:mean=90,sigma=0.8``, ``uniform:5,300`` or ``empirical:calls.csv``."""
    option = "--distribution"
    name, sep, rest = value.strip().partition(":")
    name = name.strip().lower()
    if not sep or not rest.strip():
        raise _fail(option, value, f"write one of {FORMS}", "fixed:45")
    if name == "fixed":
        return Fixed(_seconds(rest, option, value, "the duration", "fixed:45", positive=True))
    if name == "uniform":
        parts = rest.split(",")
        if len(parts) != 2:
            raise _fail(option, value, "uniform takes LOW,HIGH in seconds", "uniform:5,300")
        low = _seconds(parts[0], option, value, "LOW", "uniform:5,300")
        high = _seconds(parts[1], option, value, "HIGH", "uniform:5,300")
        if high < low:
            raise _fail(option, value, "HIGH is below LOW", "uniform:5,300")
        return Uniform(low, high)
    if name == "lognormal":
        return _lognormal(option, value, rest)
    if name == "empirical":
        return Empirical(Path(rest.strip()))
    raise _fail(option, value, f"{name!r} is not a distribution; write one of {FORMS}", "fixed:45")


def _lognormal(option: str, value: str, rest: str) -> LogNormal:
    example = "lognormal:mean=90,sigma=0.8"
    found: dict[str, str] = {}
    for part in rest.split(","):
        key, eq, number = part.partition("=")
        key = key.strip().lower()
        if not eq or key not in ("mean", "sigma"):
            raise _fail(option, value, f"{part.strip()!r} is not mean=SECONDS or sigma=X", example)
        found[key] = number
    missing = [k for k in ("mean", "sigma") if k not in found]
    if missing:
        raise _fail(option, value, f"lognormal needs {' and '.join(missing)}", example)
    mean = _seconds(found["mean"], option, value, "mean", example, positive=True)
    try:
        sigma = Decimal(found["sigma"].strip())
    except InvalidOperation:
        raise _fail(option, value, f"sigma {found['sigma'].strip()!r} is not a number", example) from None
    if not sigma.is_finite() or sigma < 0 or sigma > 5:
        raise _fail(option, value, "sigma is the spread of log-durations, from 0 to 5", example)
    return LogNormal(mean, sigma)


def parse_mix(value: str, what: str) -> Mix:
    """``1:0.7,2:0.3``: counts (whole numbers from 1) with shares that add up to exactly 1."""
    option, example = f"--{what}", "1:0.7,2:0.3"
    mix: list[tuple[int, Decimal]] = []
    for part in value.split(","):
        count, sep, share = part.partition(":")
        if not sep:
            raise _fail(option, value, f"{part.strip()!r} is not COUNT:SHARE", example)
        try:
            number = int(count.strip())
            weight = Decimal(share.strip())
        except (ValueError, InvalidOperation):
            raise _fail(option, value, f"{part.strip()!r} is not COUNT:SHARE", example) from None
        if number < 1 or number > 64:
            raise _fail(option, value, f"{what} count {number} is not between 1 and 64", example)
        if not weight.is_finite() or weight <= 0:
            raise _fail(option, value, f"share {share.strip()!r} is not a positive number", example)
        if any(number == known for known, _ in mix):
            raise _fail(option, value, f"{what} count {number} is listed twice", example)
        mix.append((number, weight))
    total = sum((w for _, w in mix), Decimal(0))
    if total != 1:
        raise _fail(option, value, f"the shares add up to {total}, not 1", example)
    return tuple(mix)


def describe_distribution(spec: Distribution) -> str:
    """The spec as the command line writes it."""
    if isinstance(spec, Fixed):
        return f"fixed:{spec.seconds}"
    if isinstance(spec, LogNormal):
        return f"lognormal:mean={spec.mean},sigma={spec.sigma}"
    if isinstance(spec, Uniform):
        return f"uniform:{spec.low},{spec.high}"
    return f"empirical:{spec.path}"


def describe_mix(mix: Mix) -> str:
    return ",".join(f"{count}:{share}" for count, share in mix)
