"""Rate cards, both sides, as validated values: cost cards (what each provider charges the platform, per unit
of that provider's billable quantity, keyed by metering profile id) and price cards (a customer plan: per
call minute, a unified minute over several meters, or per component; with currency, fees and a minimum).

Owns: the cards' shape and validation (every problem at once, each naming its key), effective-dated charge
versions and which records an entry applies to. Does not own: reading TOML (``talktime.io.ratecards``) or
finding metering policies: the caller passes a ``resolve_policy`` function, so this module does no IO.

An entry is metered by its policy (a built-in profile or an inline/path policy), its billable seconds are
turned into the card's unit *exactly* (no rounding), and its charge version in force when each record
started prices them. A charge-version change inside a period splits that period: tiers and free quotas count
from zero again in each part (put version changes on period boundaries to avoid it).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal
from functools import partial
from typing import Any, Final, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from talktime.core.metering.policy import COUNT_UNITS, TIME_UNITS, InvalidPolicy, Policy
from talktime.core.rating.charges import (
    ChargeModel,
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
from talktime.core.rating.money import MoneyError, check_currency, exact
from talktime.core.records import ATTR_PREFIX, UsageRecord
from talktime.errors import InputError, TalktimeError


class RateCardError(InputError):
    """A rate card that is invalid: the message names the card, the key and why."""


PolicyResolver = Callable[[object, str], Policy]


class CatalogPrices(Protocol):
    """A catalog model's token prices (``talktime.catalog.genai.TokenPrices`` is one)."""

    @property
    def model(self) -> str: ...
    @property
    def catalog(self) -> str: ...
    @property
    def currency(self) -> str: ...
    @property
    def at(self) -> datetime: ...
    def per_token(self, part: str) -> Decimal | None: ...


#: Finds a catalog model's prices: (model, provider or None, moment or None for now) -> prices; raises an
#: InputError naming the closest models when the model is unknown. The caller passes it (no IO here).
CatalogLookup = Callable[[str, "str | None", "datetime | None"], CatalogPrices]


def _no_catalog(model: str, provider: str | None, at: datetime | None) -> CatalogPrices:
    raise ValueError("this card reader has no price catalog; give unit prices")


_THOUSAND: Final = Decimal(1000)
_MILLION: Final = Decimal(1_000_000)
#: Units a card may price in: each unit's dimension (the policy units it can price) and its size in the
#: policy's base quantity (seconds, tokens, characters, requests, credits).
CARD_UNITS: Final[dict[str, tuple[str, Decimal]]] = {
    **{unit: ("time", size) for unit, size in TIME_UNITS.items()},
    **{unit: (unit, Decimal(1)) for unit in COUNT_UNITS},
    "thousand_tokens": ("token", _THOUSAND),
    "million_tokens": ("token", _MILLION),
    "thousand_characters": ("character", _THOUSAND),
    "million_characters": ("character", _MILLION),
    "thousand_requests": ("request", _THOUSAND),
    "thousand_credits": ("credit", _THOUSAND),
}


def unit_dimension(policy_unit: str) -> str:
    """What a policy's unit measures: ``time`` for second/minute/hour, else the count itself."""
    return "time" if policy_unit in TIME_UNITS else policy_unit


MODELS: Final = ("per_unit", "package", "graduated", "volume", "flat_fee", "per_attempt")
_MATCH_FIELDS: Final = ("provider", "product", "kind", "status", "customer")


@dataclass(frozen=True, slots=True)
class Match:
    """Which records an entry applies to: each given field (a record field or ``attr.<name>``, such as
    ``attr.model`` for an LLM's model) must have one of the listed values, compared without case."""

    fields: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def matches(self, record: UsageRecord) -> bool:
        for name, allowed in self.fields.items():
            value = record.value_of(name)
            if value is None or str(value).lower() not in allowed:
                return False
        return True

    def describe(self) -> str:
        if not self.fields:
            return "all records"
        return ", ".join(f"{k} in {list(v)}" for k, v in self.fields.items())


@dataclass(frozen=True, slots=True)
class ChargeVersion:
    """The charge in force from ``effective_from`` (inclusive) until the next version."""

    effective_from: datetime
    model: ChargeModel
    note: str = ""

    @property
    def label(self) -> str:
        return self.effective_from.date().isoformat()


@dataclass(frozen=True, slots=True)
class Entry:
    """One priced meter: a provider profile on a cost card, a component of a plan on a price card.

    A card entry whose policy has parts (an LLM call's input, cached input and output tokens) becomes one
    entry per part, each with its own price: ``id`` is ``<card key>.<part>``, ``group`` the card key, and
    ``policy`` the part's component policy. ``catalog`` names the price catalog and model a price came from.
    """

    id: str
    description: str
    policy: Policy
    match: Match
    unit: str
    versions: tuple[ChargeVersion, ...]
    source: tuple[str, ...] = ()
    group: str = ""
    part: str | None = None
    catalog: str | None = None
    #: Prices the records it matches on top of the first entry that takes them (LiveKit Cloud agent session
    #: minutes come on top of the agent's participant minutes), instead of only when no entry before did.
    additional: bool = False
    #: Its prices are placeholders (no published price): every cost it prices, and every total or margin
    #: that includes one, is marked where it is shown (a cost card's ``placeholder = true``).
    placeholder: bool = False

    @property
    def unit_seconds(self) -> Decimal:
        return CARD_UNITS[self.unit][1]

    @property
    def modality(self) -> str:
        return self.policy.modality or "other"

    def version_at(self, moment: datetime) -> ChargeVersion | None:
        chosen = None
        for version in self.versions:
            if version.effective_from <= moment:
                chosen = version
        return chosen


@dataclass(frozen=True, slots=True)
class Fee:
    id: str
    description: str
    charge: FlatFee


@dataclass(frozen=True, slots=True)
class Customer:
    id: str
    name: str
    timezone: str
    #: Days from issue to due date for this customer; None: the card's ``payment_terms_days``.
    payment_terms_days: int | None = None


@dataclass(frozen=True, slots=True)
class Seller:
    """Who issues the invoices (the ``[seller]`` table): shown on every invoice; ``id`` names the seller's
    invoice number sequence (``invoice_prefix`` then six digits, gap-free, assigned at finalisation)."""

    id: str
    name: str
    address: tuple[str, ...] = ()
    tax_id: str = ""
    email: str = ""
    phone: str = ""
    website: str = ""
    invoice_prefix: str = "INV-"
    #: The published methodology page; ``{policy}`` in it becomes each line's policy id.
    methodology_url: str = ""


@dataclass(frozen=True, slots=True)
class CostCard:
    name: str
    currency: str
    period_timezone: str
    entries: tuple[Entry, ...]
    informative: bool = False
    source: tuple[str, ...] = ()

    @property
    def placeholders(self) -> frozenset[str]:
        """The ids of the entries whose prices are placeholders (``placeholder = true``)."""
        return frozenset(e.id for e in self.entries if e.placeholder)

    def entry_for(self, record: UsageRecord) -> Entry | None:
        """The first entry, not an additional one, whose match takes the record (in card order)."""
        return next((e for e in self.entries if not e.additional and e.match.matches(record)), None)

    def entries_for(self, record: UsageRecord) -> tuple[Entry, ...]:
        """The entries that price the record: those of the first card entry whose match takes it (one, or
        one per part), then those of every ``additional`` card entry that matches it too."""
        first = self.entry_for(record)
        if first is None:
            return ()
        return tuple(
            e for e in self.entries if e.group == first.group or (e.additional and e.match.matches(record))
        )


@dataclass(frozen=True, slots=True)
class PriceCard:
    name: str
    plan: str
    currency: str
    timezone: str
    components: tuple[Entry, ...]
    fees: tuple[Fee, ...] = ()
    minimum: MinimumCommitment | None = None
    customers: Mapping[str, Customer] = field(default_factory=dict)
    informative: bool = False
    seller: Seller | None = None
    #: Days from an invoice's issue date to its due date (0: due on receipt).
    payment_terms_days: int = 0

    def customer(self, customer_id: str) -> Customer:
        return self.customers.get(customer_id) or Customer(customer_id, customer_id, self.timezone)

    def terms_days(self, customer_id: str) -> int:
        """Days from issue to due date for the customer: its own terms, else the card's."""
        own = self.customer(customer_id).payment_terms_days
        return self.payment_terms_days if own is None else own


# --- building cards from TOML-shaped mappings ---------------------------------------------------------------


class _Problems:
    def __init__(self, where: str) -> None:
        self.where = where
        self.items: list[str] = []

    def add(self, key: str, why: str) -> None:
        item = f"{key}: {why}"
        if item not in self.items:  # the parts of one entry share its keys: say each problem once
            self.items.append(item)

    def run(self, key: str, build: Callable[[], Any]) -> Any:
        try:
            return build()
        except InvalidPolicy as error:  # an inline policy: each of its problems under its key in the card
            inline = error.where == key
            for name, why in error.problems:
                if inline:
                    self.add(f"{key}.{name}".replace(".[", "[") if name else key, why)
                else:
                    self.add(key, f"{error.where}: {name}: {why}" if name else f"{error.where}: {why}")
        except MoneyError as error:  # an amount: its message starts with the key it is about
            self.add(*_under(key, str(error)))
        except TalktimeError as error:
            self.add(key, str(error))
        except (ValueError, TypeError) as error:
            self.add(*_under(key, str(error)))
        return None

    def raise_any(self) -> None:
        if self.items:
            raise RateCardError(f"{self.where}: " + "; ".join(self.items))


#: A message that starts with the key it is about (``unit_price: 'abc' is not a decimal number``).
_KEYED: Final = re.compile(r"^([a-z_]+(?:\[\d+\])?(?:\.[a-z_]+)*): (.+)$", re.DOTALL)


def _under(key: str, message: str) -> tuple[str, str]:
    """A problem found building ``key``: a message that names a key inside it goes under that key, once."""
    found = _KEYED.match(message)
    if found is None:
        return key, message
    return f"{key}.{found.group(1)}", found.group(2)


def _moment(value: object) -> datetime:
    if isinstance(value, datetime):
        if value.utcoffset() is None:
            raise ValueError("needs a UTC offset, or write a plain date (midnight UTC)")
        return value
    if isinstance(value, date):
        return datetime.combine(value, time(0), tzinfo=UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value) if len(value) > 10 else date.fromisoformat(value)
        except ValueError:
            raise ValueError(
                f"{value!r} is not a date (2024-01-01) or a date-time with an offset (2024-01-01T00:00:00Z)"
            ) from None
        return _moment(parsed)
    raise ValueError(f"{value!r} is not a date")


def _timezone(value: object) -> str:
    try:
        ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{value!r} is not an IANA time zone like Europe/Berlin") from None
    return str(value)


def _flat_fee(amount: object) -> FlatFee:
    return FlatFee(exact(amount, "amount"))


def _unknown(problems: _Problems, prefix: str, data: Mapping[str, Any], known: set[str]) -> None:
    for key in sorted(set(data) - known):
        problems.add(f"{prefix}{key}", "unknown key")


def _tiers(raw: object) -> tuple[Tier, ...]:
    if not isinstance(raw, list):
        raise ValueError("tiers must be a list of {up_to, unit_price, flat_fee} tables")
    tiers = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict) or set(item) - {"up_to", "unit_price", "flat_fee"}:
            raise ValueError(f"tiers[{index}]: keys are up_to, unit_price, flat_fee")
        up_to = item.get("up_to")
        tiers.append(
            Tier(
                None if up_to is None else exact(up_to, f"tiers[{index}].up_to"),
                exact(item.get("unit_price", 0), f"tiers[{index}].unit_price"),
                exact(item.get("flat_fee", 0), f"tiers[{index}].flat_fee"),
            )
        )
    return tuple(tiers)


_MODEL_KEYS: Final[dict[str, set[str]]] = {
    "per_unit": {"unit_price"},
    "package": {"size", "price"},
    "graduated": {"tiers"},
    "volume": {"tiers"},
    "flat_fee": {"amount"},
    "per_attempt": {"fee", "unit_price"},
}


def charge_model(data: Mapping[str, Any]) -> ChargeModel:
    """A charge model from ``model = "..."`` and its parameters, with an optional ``included`` free quota."""
    model = data.get("model")
    if model not in _MODEL_KEYS:
        raise ValueError(f"model {model!r} is not one of {', '.join(MODELS)}")
    needed = _MODEL_KEYS[model]
    extra = set(data) - needed - {"model", "included"}
    if extra:
        raise ValueError(f"unknown key(s) {sorted(extra)} for model {model}, which takes {sorted(needed)}")
    missing = needed - set(data)
    if missing:
        raise ValueError(f"model {model} needs {sorted(missing)}")
    built: ChargeModel
    if model == "per_unit":
        built = PerUnit(exact(data["unit_price"], "unit_price"))
    elif model == "package":
        built = Package(exact(data["size"], "size"), exact(data["price"], "price"))
    elif model == "graduated":
        built = Graduated(_tiers(data["tiers"]))
    elif model == "volume":
        built = Volume(_tiers(data["tiers"]))
    elif model == "flat_fee":
        built = FlatFee(exact(data["amount"], "amount"))
    else:
        built = PerAttempt(exact(data["fee"], "fee"), exact(data["unit_price"], "unit_price"))
    if "included" in data:
        if model == "per_attempt":
            raise ValueError("included is not supported with per_attempt")
        built = Included(exact(data["included"], "included"), built)
    return built


def _match(raw: object, default: Mapping[str, tuple[str, ...]]) -> Match:
    if raw is None:
        return Match(dict(default))
    if not isinstance(raw, dict):
        raise ValueError("match must be a table like { provider = 'twilio', kind = ['leg'] }")
    fields: dict[str, tuple[str, ...]] = {}
    for key, value in raw.items():
        if key not in _MATCH_FIELDS and not (key.startswith(ATTR_PREFIX) and len(key) > len(ATTR_PREFIX)):
            raise ValueError(
                f"{key!r} is not a field a match can test: use {', '.join(_MATCH_FIELDS)} or attr.<name>"
            )
        values = value if isinstance(value, list) else [value]
        fields[key] = tuple(str(v).lower() for v in values)
    return Match(fields)


_ENTRY_KEYS: Final = {
    "description",
    "policy",
    "match",
    "unit",
    "versions",
    "source",
    "catalog",
    "parts",
    "additional",
    "placeholder",
}
_PART_PRICE_KEYS: Final = {"unit", "versions", "source"}
_VERSION_KEYS: Final = {"effective_from", "note"}


def _charge_versions(raw_versions: object, here: str, problems: _Problems) -> list[ChargeVersion]:
    versions: list[ChargeVersion] = []
    if not isinstance(raw_versions, list) or not raw_versions:
        problems.add(f"{here}.versions", "needs at least one [[...versions]] table with effective_from")
        raw_versions = []
    inherited: dict[str, Any] = {}
    for index, version in enumerate(raw_versions):
        vwhere = f"{here}.versions[{index}]"
        if not isinstance(version, dict):
            problems.add(vwhere, "must be a table")
            continue
        if "effective_from" not in version:
            problems.add(vwhere + ".effective_from", "is required")
            continue
        params = {k: v for k, v in version.items() if k not in _VERSION_KEYS}
        if "model" in params and params["model"] != inherited.get("model"):
            inherited = {}
        inherited = {**inherited, **params}
        start = problems.run(vwhere + ".effective_from", partial(_moment, version["effective_from"]))
        model = problems.run(vwhere, partial(charge_model, inherited))
        if start is not None and model is not None:
            versions.append(ChargeVersion(start, model, str(version.get("note", ""))))
    starts = [v.effective_from for v in versions]
    if starts != sorted(starts) or len(set(starts)) != len(starts):
        problems.add(f"{here}.versions", "must be in increasing, distinct effective_from order")
    return versions


def _unit(raw: object, policy: Policy, here: str, problems: _Problems) -> str | None:
    unit = str(raw)
    if unit not in CARD_UNITS:
        problems.add(f"{here}.unit", f"{unit!r} is not one of {', '.join(CARD_UNITS)}")
        return None
    if CARD_UNITS[unit][0] != unit_dimension(policy.unit):
        same = [u for u, (dim, _) in CARD_UNITS.items() if dim == unit_dimension(policy.unit)]
        problems.add(
            f"{here}.unit",
            f"{unit!r} cannot price policy {policy.id!r}, which bills in {policy.unit}s; use one of "
            + ", ".join(same),
        )
        return None
    return unit


def _catalog_spec(raw: object) -> tuple[str, str | None, datetime | None]:
    if isinstance(raw, str):
        return raw, None, None
    if isinstance(raw, dict) and "model" in raw and not set(raw) - {"model", "provider", "at"}:
        at = _moment(raw["at"]) if "at" in raw else None
        provider = raw.get("provider")
        return str(raw["model"]), None if provider is None else str(provider), at
    raise ValueError("catalog is a model name, or a table { model = ..., provider = ..., at = <date> }")


def _catalog_version(
    prices: CatalogPrices, part: str, catalog_part: str, since: datetime, currency: str
) -> ChargeVersion:
    per_token = prices.per_token(catalog_part)
    if per_token is None:
        raise ValueError(
            f"{prices.catalog} has no {catalog_part} price for {prices.model}: give "
            f"parts.{part}.versions with a unit price"
        )
    if prices.currency != currency:
        raise ValueError(f"{prices.catalog} prices in {prices.currency}, the card is in {currency}")
    per_million = per_token * _MILLION
    note = (
        f"{prices.catalog}: {prices.model} {catalog_part} {per_million.normalize():f} {currency}"
        f"/million tokens, prices as of {prices.at.date().isoformat()}"
    )
    return ChargeVersion(since, PerUnit(per_million), note)


def _entry(
    key: str,
    raw: object,
    resolve: PolicyResolver,
    problems: _Problems,
    prefix: str,
    costing: bool,
    lookup: CatalogLookup = _no_catalog,
    currency: str = "",
) -> list[Entry]:
    """A card entry: one :class:`Entry`, or one per part when its policy has parts."""
    here = f"{prefix}.{key}"
    if not isinstance(raw, dict):
        problems.add(here, "must be a table")
        return []
    _unknown(problems, here + ".", raw, _ENTRY_KEYS)
    policy: Policy | None = problems.run(f"{here}.policy", lambda: resolve(raw.get("policy", key), here))
    default: dict[str, tuple[str, ...]] = {}
    if costing and policy is not None and "match" not in raw:
        if not policy.provider:
            problems.add(f"{here}.match", f"profile {policy.id!r} names no provider: give a match table")
        default = {"provider": (policy.provider.lower(),)}
        if policy.product:
            default["product"] = (policy.product.lower(),)
    match = problems.run(f"{here}.match", lambda: _match(raw.get("match"), default))
    source = raw.get("source", ())
    sources = tuple(source) if isinstance(source, list) else (str(source),)
    if "additional" in raw and (not costing or not isinstance(raw["additional"], bool)):
        problems.add(f"{here}.additional", "is true or false, on a cost card's entry")
    if "placeholder" in raw and (not costing or not isinstance(raw["placeholder"], bool)):
        problems.add(
            f"{here}.placeholder",
            f"{raw['placeholder']!r} is not true or false (true: the entry's prices are placeholders, and "
            "every cost it prices is marked so); only a cost card's entry has it",
        )
    if policy is None:
        if "versions" in raw:  # the prices can be checked without the policy: every problem at once
            _charge_versions(raw["versions"], here, problems)
        return []
    prices: CatalogPrices | None = None
    if "catalog" in raw:
        if not policy.parts:
            problems.add(
                f"{here}.catalog", f"policy {policy.id!r} has no parts to price from a catalog model"
            )
        else:
            spec = problems.run(f"{here}.catalog", partial(_catalog_spec, raw["catalog"]))
            if spec is not None:
                prices = problems.run(f"{here}.catalog", partial(lookup, *spec))
    raw_parts = raw.get("parts", {})
    if not isinstance(raw_parts, dict):
        problems.add(f"{here}.parts", "must be a table of [...parts.<name>] tables")
        raw_parts = {}
    part_names = [p.name for p in policy.parts]
    for name in sorted(set(raw_parts) - set(part_names)):
        problems.add(f"{here}.parts.{name}", f"policy {policy.id!r} has no such part (it has {part_names})")
    entries: list[Entry] = []
    for component in policy.components():
        part = component.part
        where = here if part is None else f"{here}.parts.{part}"
        own = raw_parts.get(part, {}) if part is not None else {}
        if not isinstance(own, dict):
            problems.add(where, "must be a table")
            continue
        if part is not None:
            _unknown(problems, where + ".", own, _PART_PRICE_KEYS)
        catalog_label: str | None = None
        if "versions" in own:
            versions = _charge_versions(own["versions"], where, problems)
            unit = _unit(own.get("unit", raw.get("unit", policy.unit)), policy, where, problems)
        elif prices is not None and part is not None:
            catalog_part = policy.parts[part_names.index(part)].catalog or part
            first = component.versions[0].effective_from
            version = problems.run(
                f"{here}.catalog", partial(_catalog_version, prices, part, catalog_part, first, currency)
            )
            versions = [] if version is None else [version]
            unit = "million_tokens" if version is not None else None
            catalog_label = f"{prices.catalog} ({prices.model})"
            if version is not None and CARD_UNITS["million_tokens"][0] != unit_dimension(policy.unit):
                problems.add(f"{here}.catalog", f"policy {policy.id!r} does not bill tokens")
                versions = []
        elif "versions" in raw:
            versions = _charge_versions(raw["versions"], here, problems)
            unit = _unit(raw.get("unit", policy.unit), policy, here, problems)
        elif "catalog" in raw and part is not None:
            continue  # the catalog could not be read: its own problem says why, once
        else:
            what = f"part {part!r}" if part is not None else "the entry"
            problems.add(
                f"{where}.versions",
                f"{what} has no price: give versions" + (" or a catalog model" if part is not None else ""),
            )
            continue
        if match is None or unit is None or not versions:
            continue
        entries.append(
            Entry(
                id=key if part is None else f"{key}.{part}",
                description=str(raw.get("description", policy.name)) + ("" if part is None else f" ({part})"),
                policy=component,
                match=match,
                unit=unit,
                versions=tuple(versions),
                source=sources + tuple(own.get("source", ()) if isinstance(own.get("source"), list) else ()),
                group=key,
                part=part,
                catalog=catalog_label,
                additional=costing and raw.get("additional") is True,
                placeholder=costing and raw.get("placeholder") is True,
            )
        )
    return entries


_COMMON_KEYS: Final = {"kind", "name", "currency", "informative", "source", "description"}


def cost_card_from_dict(
    data: Mapping[str, Any], resolve: PolicyResolver, *, where: str, lookup: CatalogLookup = _no_catalog
) -> CostCard:
    """A cost card: ``[costs.<profile-id>]`` tables, each with charge ``versions``, or per-part prices
    (``[costs.<id>.parts.<part>]``) or a ``catalog`` model for a policy with parts."""
    problems = _Problems(where)
    _unknown(problems, "", data, _COMMON_KEYS | {"costs", "period_timezone"})
    if data.get("kind") != "cost":
        problems.add("kind", 'a cost card says kind = "cost"')
    currency = problems.run("currency", lambda: check_currency(data.get("currency", "")))
    tz = problems.run("period_timezone", lambda: _timezone(data.get("period_timezone", "UTC")))
    raw = data.get("costs")
    if not isinstance(raw, dict) or not raw:
        problems.add("costs", "needs at least one [costs.<profile-id>] table")
        raw = {}
    entries = [
        e
        for k, v in raw.items()
        for e in _entry(
            k, v, resolve, problems, "costs", costing=True, lookup=lookup, currency=currency or ""
        )
    ]
    problems.raise_any()
    return CostCard(
        name=str(data.get("name", where)),
        currency=currency,
        period_timezone=tz,
        entries=tuple(e for e in entries if e is not None),
        informative=bool(data.get("informative", False)),
        source=tuple(data.get("source", ())),
    )


_SELLER_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_PREFIX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9/_.-]{0,19}$|^$")
_SELLER_TEXT: Final = ("tax_id", "email", "phone", "website", "methodology_url")
MAX_TERMS_DAYS: Final = 365


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:64] or "seller"


def payment_terms(value: object) -> int:
    """Days from issue to due date: a whole number from 0 (due on receipt) to 365."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TERMS_DAYS:
        raise ValueError(f"{value!r} is not a whole number of days from 0 to {MAX_TERMS_DAYS}")
    return value


def _seller(raw: object, problems: _Problems) -> Seller | None:
    """The ``[seller]`` table: name (required), address (lines), tax_id, email, phone, website, id (the
    invoice number sequence; default: the name in lower case with dashes), invoice_prefix, methodology_url."""
    if not isinstance(raw, dict):
        problems.add("seller", "must be a table with name, address, tax_id, email, phone, website")
        return None
    known = {"id", "name", "address", "invoice_prefix", *_SELLER_TEXT}
    _unknown(problems, "seller.", raw, known)
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        problems.add("seller.name", "is required: the legal name printed on the invoices")
        name = ""
    texts = {key: raw.get(key, "") for key in _SELLER_TEXT}
    for key, value in texts.items():
        if not isinstance(value, str):
            problems.add(f"seller.{key}", f"{value!r} is not text")
            texts[key] = ""
    if texts["email"] and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", str(texts["email"])):
        problems.add("seller.email", f"{texts['email']!r} is not an e-mail address")
    for key in ("website", "methodology_url"):
        if texts[key] and not str(texts[key]).startswith(("https://", "http://")):
            problems.add(f"seller.{key}", f"{texts[key]!r} is not a URL starting with https://")
    address = raw.get("address", [])
    if isinstance(address, str):
        address = [line.strip() for line in address.splitlines() if line.strip()]
    if not isinstance(address, list) or not all(isinstance(line, str) for line in address):
        problems.add("seller.address", "is a list of lines, or one text with a line per row")
        address = []
    seller_id = raw.get("id", _slug(str(name)))
    if not isinstance(seller_id, str) or not _SELLER_ID.match(seller_id):
        problems.add("seller.id", f"{seller_id!r} is not lower-case letters, digits, - and _ (up to 64)")
    prefix = raw.get("invoice_prefix", "INV-")
    if not isinstance(prefix, str) or not _PREFIX.match(prefix):
        problems.add(
            "seller.invoice_prefix", f"{prefix!r} is not up to 20 letters, digits and / _ . - (or empty)"
        )
    return Seller(
        id=str(seller_id),
        name=str(name).strip(),
        address=tuple(str(line) for line in address),
        tax_id=str(texts["tax_id"]),
        email=str(texts["email"]),
        phone=str(texts["phone"]),
        website=str(texts["website"]),
        invoice_prefix=str(prefix),
        methodology_url=str(texts["methodology_url"]),
    )


def price_card_from_dict(data: Mapping[str, Any], resolve: PolicyResolver, *, where: str) -> PriceCard:
    """A price card: ``[components.<meter>]`` tables, optional ``[fees.<id>]``, ``[commitment]`` and
    ``[customers.<id>]`` (name, timezone)."""
    problems = _Problems(where)
    known = _COMMON_KEYS | {"plan", "timezone", "components", "fees", "commitment", "customers"}
    known |= {"seller", "payment_terms_days"}
    _unknown(problems, "", data, known)
    if data.get("kind") != "price":
        problems.add("kind", 'a price card says kind = "price"')
    currency = problems.run("currency", lambda: check_currency(data.get("currency", "")))
    tz = problems.run("timezone", lambda: _timezone(data.get("timezone", "UTC")))
    raw = data.get("components")
    if not isinstance(raw, dict) or not raw:
        problems.add("components", "needs at least one [components.<meter>] table")
        raw = {}
    components = [
        e for k, v in raw.items() for e in _entry(k, v, resolve, problems, "components", costing=False)
    ]
    fees: list[Fee] = []
    for key, fee in (data.get("fees") or {}).items():
        if not isinstance(fee, dict) or set(fee) - {"description", "amount"}:
            problems.add(f"fees.{key}", "a fee is a table with description and amount")
            continue
        built = problems.run(f"fees.{key}.amount", partial(_flat_fee, fee.get("amount")))
        if built is not None:
            fees.append(Fee(key, str(fee.get("description", key)), built))
    minimum = None
    commitment = data.get("commitment")
    if commitment is not None:
        if not isinstance(commitment, dict) or set(commitment) != {"minimum"}:
            problems.add("commitment", "a table with one key, minimum (the amount per period)")
        else:
            minimum = problems.run(
                "commitment.minimum", lambda: MinimumCommitment(exact(commitment["minimum"], "minimum"))
            )
    customers: dict[str, Customer] = {}
    for key, cust in (data.get("customers") or {}).items():
        if not isinstance(cust, dict) or set(cust) - {"name", "timezone", "payment_terms_days"}:
            problems.add(f"customers.{key}", "a table with name, timezone and payment_terms_days")
            continue
        ctz = problems.run(f"customers.{key}.timezone", partial(_timezone, cust.get("timezone", tz)))
        terms = None
        if "payment_terms_days" in cust:
            terms = problems.run(
                f"customers.{key}.payment_terms_days", partial(payment_terms, cust["payment_terms_days"])
            )
        customers[key] = Customer(key, str(cust.get("name", key)), ctz or "UTC", terms)
    seller = _seller(data["seller"], problems) if "seller" in data else None
    card_terms = problems.run("payment_terms_days", partial(payment_terms, data.get("payment_terms_days", 0)))
    problems.raise_any()
    return PriceCard(
        name=str(data.get("name", where)),
        plan=str(data.get("plan", data.get("name", where))),
        currency=currency,
        timezone=tz,
        components=tuple(c for c in components if c is not None),
        fees=tuple(fees),
        minimum=minimum,
        customers=customers,
        informative=bool(data.get("informative", False)),
        seller=seller,
        payment_terms_days=card_terms or 0,
    )
