"""Metering policies: declarative answers to "what is a billable minute?" for one provider product.

Owns: the policy's shape, its validation (every error at once, each naming its key), effective-dated versions
and conditional rules. Does not own: applying a policy (``meter.py``), reading TOML files (``load.py``).

A policy is a list of versions. Each version is a full set of :class:`MeteringParams`; in a file, a version
states only what changes and inherits the rest from the version before it. A record is metered by the
version in force when it started. Parameters, in the order the meter applies them::

    status gate -> kind gate -> basis (actual) -> short-call exemption -> cap -> segments
      -> rounding (A/B increments, direction) -> minimum -> channels -> factor -> multiplier

With ``scope = "session"`` or ``"period"`` the rounding and minimum move after the multiplier and apply to
the sum of a session's (or a customer's calendar period's) records instead of to each record.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Annotated, Any, Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from talktime.core.decimals import text
from talktime.core.records import ATTR_PREFIX, KINDS, RECORD_FIELDS, STATUSES
from talktime.errors import MeteringError, PolicyError

Basis = Literal["connection", "answered", "audio_span", "audio_sent", "speech", "provider_reported"]
Direction = Literal["up", "nearest", "down"]
Rounding = Literal["up", "nearest", "down", "exact"]
Scope = Literal["record", "session", "period"]
Unit = Literal["second", "minute", "hour"]

UNIT_SECONDS: Final[dict[str, Decimal]] = {"second": Decimal(1), "minute": Decimal(60), "hour": Decimal(3600)}
#: Billable quantity in the policy's unit is billable seconds / unit size, rounded half-even to this many
#: places. Prices are applied to billable seconds, so this rounding never reaches money.
QUANTITY_PLACES: Final = 6
_NOT_BY_RULE: Final = frozenset({"rules", "scope", "period_timezone"})
_NUMERIC_FIELDS: Final = frozenset(
    {
        "audio_seconds",
        "speech_seconds",
        "provider_reported_seconds",
        "characters",
        "input_tokens",
        "output_tokens",
        "channels",
    }
)


def _no_float(value: object) -> object:
    if isinstance(value, float):
        raise ValueError(
            "floats are not exact; write the number as a string or read TOML with decimal floats"
        )
    return value


Exact = Annotated[Decimal, BeforeValidator(_no_float)]
NonNegative = Annotated[Decimal, BeforeValidator(_no_float), Field(ge=0)]
Positive = Annotated[Decimal, BeforeValidator(_no_float), Field(gt=0)]


def _check_field_name(name: str) -> str:
    if name.startswith(ATTR_PREFIX) and len(name) > len(ATTR_PREFIX):
        return name
    if name in RECORD_FIELDS:
        return name
    raise ValueError(f"{name!r} is not a record field or attr.<name>")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Multiplier(_Frozen):
    """Scale billable time by another quantity: ``billable x value / per``, only when ``value > above``.

    Retell: prompt tokens over 3,500 scale the billed duration: ``field = "input_tokens", per = 3500,
    above = 3500, round_to_seconds = 60``. The product is rounded to ``round_to_seconds`` in ``direction``.
    """

    field: str
    per: Positive
    above: NonNegative = Decimal(0)
    round_to_seconds: Positive = Decimal("0.001")
    direction: Direction = "up"

    @field_validator("field")
    @classmethod
    def _known_field(cls, value: str) -> str:
        name = _check_field_name(value)
        if not name.startswith(ATTR_PREFIX) and name not in _NUMERIC_FIELDS:
            raise ValueError(f"{name!r} is not a numeric record field")
        return name


class Segment(_Frozen):
    """Part of the basis billed at another factor, e.g. silence beyond 10 s at 5% (ElevenLabs Agents).

    ``field`` holds the segment's seconds on each record; a record without it has no such segment.
    """

    name: str
    field: str
    factor: NonNegative

    @field_validator("field")
    @classmethod
    def _known_field(cls, value: str) -> str:
        return _check_field_name(value)


class MeteringParams(_Frozen):
    """One version's complete answer to "what is billable". Defaults: exact connection seconds."""

    basis: Basis | tuple[Basis, ...] = "connection"
    rounding: Rounding = "exact"
    initial_seconds: Positive | None = None
    increment_seconds: Positive = Decimal(1)
    minimum_seconds: NonNegative = Decimal(0)
    free_below_seconds: NonNegative = Decimal(0)
    scope: Scope = "record"
    period_timezone: str = "UTC"
    channels: Literal["per_call", "per_channel"] = "per_call"
    extra_channel_factor: NonNegative = Decimal(1)
    kinds: tuple[str, ...] | None = None
    meters: dict[str, str] = Field(default_factory=dict)
    billed_statuses: tuple[str, ...] = ("completed",)
    open_cap_seconds: Positive | None = None
    factor: NonNegative = Decimal(1)
    multiplier: Multiplier | None = None
    segments: tuple[Segment, ...] = ()
    rules: tuple[Rule, ...] = ()

    @field_validator("basis")
    @classmethod
    def _basis_list(cls, value: Basis | tuple[Basis, ...]) -> Basis | tuple[Basis, ...]:
        if isinstance(value, tuple):
            if len(value) < 2:
                raise ValueError("a list basis means 'the larger of' and needs two or more measures")
            if len(set(value)) != len(value):
                raise ValueError("a measure is listed twice")
        return value

    @field_validator("kinds")
    @classmethod
    def _known_kinds(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        for kind in value or ():
            if kind not in KINDS:
                raise ValueError(f"{kind!r} is not a record kind; kinds are {sorted(KINDS)}")
        return value

    @field_validator("meters")
    @classmethod
    def _known_meter_kinds(cls, value: dict[str, str]) -> dict[str, str]:
        for kind in value:
            if kind not in KINDS:
                raise ValueError(f"{kind!r} is not a record kind; kinds are {sorted(KINDS)}")
        return value

    @field_validator("billed_statuses")
    @classmethod
    def _known_statuses(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for status in value:
            if status not in STATUSES - {"open"}:
                raise ValueError(
                    f"{status!r} is not a closed status; statuses are {sorted(STATUSES - {'open'})} "
                    "(open records are billed through open_cap_seconds)"
                )
        return value

    @field_validator("period_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone (e.g. UTC, Europe/Paris)") from None
        return value

    @property
    def first_block_seconds(self) -> Decimal:
        """A, the first (minimum) billed block: ``initial_seconds``, or the increment when not set."""
        return self.initial_seconds if self.initial_seconds is not None else self.increment_seconds

    @property
    def bases(self) -> tuple[Basis, ...]:
        return self.basis if isinstance(self.basis, tuple) else (self.basis,)

    def rounding_label(self) -> str:
        """How a telecom engineer says it: ``6/6 up``, ``60/60 up``, ``exact``."""
        if self.rounding == "exact":
            return "exact"
        first = _num(self.first_block_seconds)
        return f"{first}/{_num(self.increment_seconds)} {self.rounding}"


class Rule(_Frozen):
    """Parameters that change when a record's fields have given values.

    ``when`` maps a field (``status``, ``kind``, ``attr.<name>``, ...) to the text it must equal (compared
    without regard to case); every entry must match. ``set`` holds the parameters that change.
    """

    name: str
    when: dict[str, str | bool | int]
    set: dict[str, Any]

    @field_validator("when")
    @classmethod
    def _fields(cls, value: dict[str, str | bool | int]) -> dict[str, str | bool | int]:
        if not value:
            raise ValueError("needs at least one condition")
        for name in value:
            _check_field_name(name)
        return value

    @field_validator("set")
    @classmethod
    def _settable(cls, value: dict[str, Any]) -> dict[str, Any]:
        if not value:
            raise ValueError("needs at least one parameter to set")
        unknown = sorted(set(value) - set(MeteringParams.model_fields) | (_NOT_BY_RULE & set(value)))
        if unknown:
            raise ValueError(
                f"cannot set {unknown}: not a metering parameter, or one a rule may not change "
                "(rules, scope and period_timezone hold for a whole version)"
            )
        return value

    def matches(self, value_of: Any) -> bool:
        """True when every condition holds; ``value_of`` maps a field name to the record's value."""
        return all(_same(value_of(name), expected) for name, expected in self.when.items())


def _same(actual: object, expected: str | bool | int) -> bool:
    if actual is None:
        return False
    return str(actual).strip().lower() == str(expected).strip().lower()


def _num(value: Decimal) -> str:
    return text(value)


class PolicyVersion(_Frozen):
    """The parameters in force from ``effective_from`` (inclusive) until the next version."""

    effective_from: datetime
    note: str = ""
    params: MeteringParams

    @field_validator("effective_from", mode="before")
    @classmethod
    def _aware(cls, value: object) -> object:
        if isinstance(value, date) and not isinstance(value, datetime):
            return datetime.combine(value, time(0), tzinfo=UTC)
        if isinstance(value, str) and len(value) == 10:
            return datetime.combine(date.fromisoformat(value), time(0), tzinfo=UTC)
        return value

    @field_validator("effective_from", mode="after")
    @classmethod
    def _has_offset(cls, value: datetime) -> datetime:
        if value.utcoffset() is None:
            raise ValueError("needs a UTC offset, or write a plain date (midnight UTC)")
        return value


class Policy(_Frozen):
    """A provider product's metering rules, with where they come from."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    name: str
    unit: Unit = "minute"
    provider: str = ""
    product: str = ""
    description: str = ""
    source: tuple[str, ...] = ()
    confidence: Literal["H", "M", "L"] | None = None
    meter: str | None = None
    versions: tuple[PolicyVersion, ...] = Field(min_length=1)

    @field_validator("versions")
    @classmethod
    def _ordered(cls, value: tuple[PolicyVersion, ...]) -> tuple[PolicyVersion, ...]:
        starts = [v.effective_from for v in value]
        if starts != sorted(starts) or len(set(starts)) != len(starts):
            raise ValueError("versions must be listed in increasing, distinct effective_from order")
        return value

    @property
    def unit_seconds(self) -> Decimal:
        return UNIT_SECONDS[self.unit]

    @property
    def default_meter(self) -> str:
        return self.meter or self.id

    @property
    def current(self) -> PolicyVersion:
        return self.versions[-1]

    def version_at(self, moment: datetime, record_id: str = "") -> PolicyVersion:
        """The version in force at ``moment``: the last one whose effective_from is not after it."""
        chosen: PolicyVersion | None = None
        for version in self.versions:
            if version.effective_from <= moment:
                chosen = version
        if chosen is None:
            raise MeteringError(
                f"record {record_id!r}: field 'started_at': {moment.isoformat()} is before policy "
                f"{self.id!r} takes effect ({self.versions[0].effective_from.date().isoformat()})"
            )
        return chosen


MeteringParams.model_rebuild()

_POLICY_KEYS: Final = frozenset(Policy.model_fields) - {"versions"}
_VERSION_KEYS: Final = frozenset({"effective_from", "note"})


def policy_from_dict(data: dict[str, Any], *, where: str = "policy") -> Policy:
    """Build a policy from a TOML-shaped mapping, inheriting each version's parameters from the one before.

    Every problem is reported at once in one :class:`PolicyError`, each naming its key.
    """
    problems: list[str] = []
    unknown = sorted(set(data) - _POLICY_KEYS - {"versions"})
    problems.extend(f"{key}: unknown policy key" for key in unknown)
    raw_versions = data.get("versions")
    if not isinstance(raw_versions, list) or not raw_versions:
        problems.append("versions: needs at least one [[versions]] table with an effective_from")
        raw_versions = []
    versions: list[PolicyVersion] = []
    inherited: dict[str, Any] = {}
    for index, raw in enumerate(raw_versions):
        if not isinstance(raw, dict):
            problems.append(f"versions[{index}]: must be a table")
            continue
        params = {k: v for k, v in raw.items() if k not in _VERSION_KEYS}
        inherited = {**inherited, **params}
        try:
            built = MeteringParams.model_validate(inherited)
        except ValidationError as error:
            problems.extend(_describe(error, prefix=f"versions[{index}]"))
            continue
        problems.extend(_check_rules(built, prefix=f"versions[{index}]"))
        try:
            version = {k: raw[k] for k in _VERSION_KEYS if k in raw}
            versions.append(PolicyVersion.model_validate({**version, "params": built}))
        except ValidationError as error:
            problems.extend(_describe(error, prefix=f"versions[{index}]"))
    header = {k: v for k, v in data.items() if k in _POLICY_KEYS}
    if not problems:
        try:
            return Policy.model_validate({**header, "versions": versions})
        except ValidationError as error:
            problems.extend(_describe(error, prefix=""))
    raise PolicyError(f"{where}: " + "; ".join(problems))


def _check_rules(params: MeteringParams, prefix: str) -> list[str]:
    problems: list[str] = []
    for index, rule in enumerate(params.rules):
        try:
            apply_overrides(params, rule.set)
        except ValidationError as error:
            problems.extend(_describe(error, prefix=f"{prefix}.rules[{index}].set"))
    return problems


def apply_overrides(params: MeteringParams, overrides: dict[str, Any]) -> MeteringParams:
    """``params`` with some parameters replaced, validated like the rest (a rule's ``set``)."""
    merged = {**params.model_dump(exclude={"rules"}), **overrides}
    return MeteringParams.model_validate(merged)


def _describe(error: ValidationError, prefix: str) -> list[str]:
    lines = []
    for item in error.errors():
        loc = ".".join(str(p) for p in item["loc"] if not str(p).startswith("function-"))
        where = ".".join(p for p in (prefix, loc) if p)
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        lines.append(f"{where}: {message}")
    return lines
