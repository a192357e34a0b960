"""The alert configuration, checked key by key: every problem is named at once (``key 'x.y': why``), with
the file it came from. Parsed from the TOML file's tables (read at the edge, floats as exact decimals);
docs/alerts.md lists every key with its default.

A customer's table (``[customers.<id>]``) overrides the ``[defaults]`` key by key, rule tables included:
``[customers.blue-bank.long_call] spread = 3`` changes that one parameter for that one customer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from talktime.errors import InputError


class AlertConfigError(InputError):
    """An alert configuration with keys that are unknown, missing or out of range: each one named."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))


@dataclass(frozen=True, slots=True)
class LongCall:
    enabled: bool = True
    window_days: int = 30
    min_calls: int = 30
    spread: Decimal = Decimal(4)
    min_factor: Decimal = Decimal(3)
    min_minutes: Decimal = Decimal(5)


@dataclass(frozen=True, slots=True)
class TokensPerMinute:
    enabled: bool = True
    window_days: int = 30
    min_calls: int = 30
    spread: Decimal = Decimal(4)
    min_factor: Decimal = Decimal(5)
    min_call_seconds: Decimal = Decimal(60)


@dataclass(frozen=True, slots=True)
class StuckCall:
    enabled: bool = True
    open_after_minutes: Decimal = Decimal(60)
    max_minutes: Decimal = Decimal(240)


@dataclass(frozen=True, slots=True)
class CustomerRules:
    """The rules of one customer: a threshold left out (None) is not checked."""

    spend: Decimal | None = None
    minutes: Decimal | None = None
    long_call: LongCall = field(default_factory=LongCall)
    tokens_per_minute: TokensPerMinute = field(default_factory=TokensPerMinute)
    stuck_call: StuckCall = field(default_factory=StuckCall)


@dataclass(frozen=True, slots=True)
class Webhook:
    url: str
    secret_env: str = "TALKTIME_ALERTS_SECRET"
    attempts: int = 5
    backoff_seconds: Decimal = Decimal(1)
    timeout_seconds: Decimal = Decimal(10)
    state: str = "alerts-state.json"


@dataclass(frozen=True, slots=True)
class AlertConfig:
    defaults: CustomerRules = field(default_factory=CustomerRules)
    customers: Mapping[str, CustomerRules] = field(default_factory=dict)
    webhook: Webhook | None = None

    def rules_for(self, customer: str) -> CustomerRules:
        return self.customers.get(customer, self.defaults)


# --- checking each key ------------------------------------------------------------------------------------

Check = Callable[[object], tuple[object, str]]  # a value -> (the value to keep, "" or why it is refused)


def _said(value: object) -> str:
    """A value as the file has it: numbers plain, text quoted."""
    return str(value) if isinstance(value, int | Decimal) and not isinstance(value, bool) else repr(value)


def _number(low: Decimal, high: Decimal | None = None, *, whole: bool = False, above: bool = False) -> Check:
    """A number (an integer, a TOML decimal, or a decimal string) within bounds."""

    def check(value: object) -> tuple[object, str]:
        if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
            return None, f"is {type(value).__name__} {value!r}, not a number"
        try:
            number = Decimal(value) if not isinstance(value, Decimal) else value
        except ArithmeticError:
            return None, f"{_said(value)} is not a number"
        if not number.is_finite():
            return None, f"{_said(value)} is not a finite number"
        if whole and number != number.to_integral_value():
            return None, f"{_said(value)} is not a whole number"
        if (above and number <= low) or number < low:
            return None, f"{_said(value)} must be {'above' if above else 'at least'} {low}"
        if high is not None and number > high:
            return None, f"{_said(value)} must be at most {high}"
        return (int(number) if whole else number), ""

    return check


def _flag(value: object) -> tuple[object, str]:
    if isinstance(value, bool):
        return value, ""
    return None, f"is {value!r}, not true or false"


def _text(value: object) -> tuple[object, str]:
    if isinstance(value, str) and value.strip():
        return value, ""
    return None, f"is {value!r}, not a non-empty string"


def _url(value: object) -> tuple[object, str]:
    if not isinstance(value, str):
        return None, f"is {value!r}, not a URL"
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None, f"{value!r} is not an http:// or https:// URL"
    return value, ""


def _env_name(value: object) -> tuple[object, str]:
    if isinstance(value, str) and value and all(c.isalnum() or c == "_" for c in value):
        return value, ""
    return None, f"is {value!r}: name an environment variable (the secret itself never goes in the file)"


_DAYS = _number(Decimal(1), Decimal(366), whole=True)
_CALLS = _number(Decimal(1), whole=True)
_POSITIVE = _number(Decimal(0), above=True)
_FACTOR = _number(Decimal(1))
_AMOUNT = _number(Decimal(0))

RULE_KEYS: dict[str, dict[str, Check]] = {
    "long_call": {
        "enabled": _flag,
        "window_days": _DAYS,
        "min_calls": _CALLS,
        "spread": _POSITIVE,
        "min_factor": _FACTOR,
        "min_minutes": _AMOUNT,
    },
    "tokens_per_minute": {
        "enabled": _flag,
        "window_days": _DAYS,
        "min_calls": _CALLS,
        "spread": _POSITIVE,
        "min_factor": _FACTOR,
        "min_call_seconds": _POSITIVE,
    },
    "stuck_call": {"enabled": _flag, "open_after_minutes": _POSITIVE, "max_minutes": _POSITIVE},
}
CUSTOMER_KEYS: dict[str, Check] = {"spend": _AMOUNT, "minutes": _AMOUNT}
WEBHOOK_KEYS: dict[str, Check] = {
    "url": _url,
    "secret_env": _env_name,
    "attempts": _number(Decimal(1), Decimal(20), whole=True),
    "backoff_seconds": _number(Decimal(0), Decimal(3600)),
    "timeout_seconds": _number(Decimal(0), Decimal(300), above=True),
    "state": _text,
}
_RULE_TYPES = {"long_call": LongCall, "tokens_per_minute": TokensPerMinute, "stuck_call": StuckCall}


def _table(value: object, key: str, problems: list[str]) -> Mapping[str, Any]:
    if isinstance(value, Mapping):
        return value
    problems.append(f"key {key!r}: is {value!r}, not a table")
    return {}


def _checked(
    table: Mapping[str, Any], keys: Mapping[str, Check], prefix: str, problems: list[str]
) -> dict[str, object]:
    kept: dict[str, object] = {}
    for name, value in table.items():
        check = keys.get(name)
        if check is None:
            continue  # the caller names unknown keys (it knows the sub-tables too)
        found, why = check(value)
        if why:
            problems.append(f"key '{prefix}{name}': {why}")
        else:
            kept[name] = found
    return kept


def _unknown(table: Mapping[str, Any], known: set[str], prefix: str, problems: list[str]) -> None:
    for name in table:
        if name not in known:
            problems.append(f"key '{prefix}{name}' is not known (known here: {', '.join(sorted(known))})")


def _rules_values(table: Mapping[str, Any], prefix: str, problems: list[str]) -> dict[str, Any]:
    """A ``[defaults]`` or ``[customers.<id>]`` table's values, each checked (nested per rule)."""
    _unknown(table, {*CUSTOMER_KEYS, *RULE_KEYS}, prefix, problems)
    values: dict[str, Any] = _checked(table, CUSTOMER_KEYS, prefix, problems)
    for rule, keys in RULE_KEYS.items():
        if rule in table:
            sub = _table(table[rule], prefix + rule, problems)
            _unknown(sub, set(keys), f"{prefix}{rule}.", problems)
            values[rule] = _checked(sub, keys, f"{prefix}{rule}.", problems)
    return values


def _rules(base: CustomerRules, values: Mapping[str, Any]) -> CustomerRules:
    changes: dict[str, Any] = {k: v for k, v in values.items() if k in CUSTOMER_KEYS}
    for rule, kind in _RULE_TYPES.items():
        if rule in values:
            changes[rule] = dataclasses.replace(getattr(base, rule), **values[rule])
            assert isinstance(changes[rule], kind)
    return dataclasses.replace(base, **changes)


def parse_config(data: Mapping[str, Any], source: str) -> AlertConfig:
    """The configuration of the TOML tables ``data`` (from ``source``, named in errors); every key checked,
    every problem reported at once as an :class:`AlertConfigError`."""
    problems: list[str] = []
    _unknown(data, {"webhook", "defaults", "customers"}, "", problems)
    defaults = _rules(
        CustomerRules(),
        _rules_values(_table(data.get("defaults", {}), "defaults", problems), "defaults.", problems),
    )
    customers: dict[str, CustomerRules] = {}
    for customer, table in _table(data.get("customers", {}), "customers", problems).items():
        prefix = f"customers.{customer}."
        values = _rules_values(_table(table, prefix[:-1], problems), prefix, problems)
        customers[customer] = _rules(defaults, values)
    webhook = None
    if "webhook" in data:
        table = _table(data["webhook"], "webhook", problems)
        if "secret" in table:
            problems.append(
                "key 'webhook.secret': the signing secret never goes in the file; put it in an environment "
                "variable and name the variable in webhook.secret_env"
            )
        _unknown(table, {*WEBHOOK_KEYS, "secret"}, "webhook.", problems)
        values = _checked(table, WEBHOOK_KEYS, "webhook.", problems)
        if "url" not in table:
            problems.append("key 'webhook.url' is missing: where to POST the alerts")
        elif "url" in values:
            webhook = Webhook(**values)  # type: ignore[arg-type]
    if problems:
        raise AlertConfigError(source, problems)
    return AlertConfig(defaults, customers, webhook)
