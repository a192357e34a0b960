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

import re
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Annotated, Any, Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from talktime.core.decimals import text
from talktime.core.metering.problems import KeyedProblems, describe, shown
from talktime.core.records import ATTR_PREFIX, COUNT_FIELDS, KINDS, RECORD_FIELDS, STATUSES
from talktime.errors import MeteringError, PolicyError

Basis = Literal["connection", "answered", "audio_span", "audio_sent", "speech", "provider_reported"]
Direction = Literal["up", "nearest", "down"]
Rounding = Literal["up", "nearest", "down", "exact"]
Scope = Literal["record", "session", "period"]
Unit = Literal["second", "minute", "hour", "token", "character", "request", "credit"]
Modality = Literal["telephony", "stt", "llm", "tts", "platform"]

TIME_UNITS: Final[dict[str, Decimal]] = {"second": Decimal(1), "minute": Decimal(60), "hour": Decimal(3600)}
#: Units that count things. A count policy's base quantity is one of the unit (a token, a character, ...).
COUNT_UNITS: Final = ("token", "character", "request", "credit")
#: The size of each policy unit in the policy's base quantity: seconds for time, 1 for counts.
UNIT_SECONDS: Final[dict[str, Decimal]] = {**TIME_UNITS, **dict.fromkeys(COUNT_UNITS, Decimal(1))}
#: What a count basis may read: the record's count fields, ``request`` (1 per record) and, weighted into a
#: count (OpenAI Realtime: 10 audio tokens a second), its seconds fields.
COUNT_BASES: Final = (*COUNT_FIELDS, "request")
WEIGHTABLE_SECONDS: Final = ("audio_seconds", "speech_seconds", "provider_reported_seconds")
#: Shorter names a policy file may use for the parameters that, on a count policy, hold a count, not seconds.
PARAM_ALIASES: Final = {
    "increment": "increment_seconds",
    "initial": "initial_seconds",
    "minimum": "minimum_seconds",
    "free_below": "free_below_seconds",
}
_TIME_BASES: Final = ("connection", "answered", "audio_span", "audio_sent", "speech", "provider_reported")
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
        *COUNT_FIELDS,
        "channels",
    }
)


def _no_float(value: object) -> object:
    if isinstance(value, float):
        raise ValueError(
            "floats are not exact: write the number as a string or read TOML with decimal floats"
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


def _count_terms(value: dict[Any, Any]) -> dict[str, int]:
    """Validate a weighted count basis: known fields, whole non-zero weights, at least one positive."""
    if not value:
        raise ValueError("a weighted basis needs at least one field")
    terms: dict[str, int] = {}
    for name, weight in value.items():
        if name not in COUNT_BASES and name not in WEIGHTABLE_SECONDS:
            raise ValueError(
                f"{name!r} cannot be counted: use one of {list(COUNT_BASES)} or {list(WEIGHTABLE_SECONDS)}"
            )
        if isinstance(weight, bool) or not isinstance(weight, int) or weight == 0:
            raise ValueError(
                f"the weight of {name!r} must be a whole number other than 0 (got {shown(weight)})"
            )
        terms[str(name)] = weight
    if all(weight < 0 for weight in terms.values()):
        raise ValueError("a weighted basis needs at least one field with a positive weight")
    return terms


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

    basis: Basis | tuple[Basis, ...] | str | dict[str, int] = "connection"
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

    @field_validator("basis", mode="before")
    @classmethod
    def _basis_shape(cls, value: object) -> object:
        if isinstance(value, list):
            value = tuple(value)
        if isinstance(value, tuple):
            if len(value) < 2:
                raise ValueError("a list basis means 'the larger of' and needs two or more measures")
            if len(set(value)) != len(value):
                raise ValueError("a measure is listed twice")
            for item in value:
                if item not in _TIME_BASES:
                    raise ValueError(
                        f"{item!r} in a 'larger of' list is not a time basis {list(_TIME_BASES)}"
                    )
            return value
        if isinstance(value, str):
            if value not in _TIME_BASES and value not in COUNT_BASES:
                raise ValueError(
                    f"{value!r} is not a basis: time bases are {list(_TIME_BASES)}, "
                    f"counts are {list(COUNT_BASES)}"
                )
            return value
        if isinstance(value, dict):
            return _count_terms(value)
        raise ValueError(
            "a basis is a name, a list of time bases (the larger of), or a table {field = weight}"
        )

    @property
    def is_count(self) -> bool:
        """True when the basis counts things (tokens, characters, requests), not time."""
        return isinstance(self.basis, dict) or self.basis in COUNT_BASES

    @property
    def count_terms(self) -> tuple[tuple[str, int], ...]:
        """A count basis as (field, whole-number weight) terms: ``characters`` is ``(("characters", 1),)``."""
        if isinstance(self.basis, dict):
            return tuple(self.basis.items())
        if isinstance(self.basis, str) and self.basis in COUNT_BASES:
            return ((self.basis, 1),)
        return ()

    @field_validator("kinds")
    @classmethod
    def _known_kinds(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        for kind in value or ():
            if kind not in KINDS:
                raise ValueError(f"{kind!r} is not a record kind (kinds are {sorted(KINDS)})")
        return value

    @field_validator("meters")
    @classmethod
    def _known_meter_kinds(cls, value: dict[str, str]) -> dict[str, str]:
        for kind in value:
            if kind not in KINDS:
                raise ValueError(f"{kind!r} is not a record kind (kinds are {sorted(KINDS)})")
        return value

    @field_validator("billed_statuses")
    @classmethod
    def _known_statuses(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for status in value:
            if status not in STATUSES - {"open"}:
                raise ValueError(
                    f"{status!r} is not a closed status (statuses are {sorted(STATUSES - {'open'})}: "
                    "open records are billed through open_cap_seconds)"
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
        """The time measures of a time basis (empty for a count basis)."""
        if self.is_count:
            return ()
        if isinstance(self.basis, tuple):
            return self.basis
        return (self.basis,)  # type: ignore[return-value]  # a str that is not a count is a time basis

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


class Part(_Frozen):
    """One of several billable quantities a policy takes from each record, on a meter of its own.

    An LLM call bills input, cached input and output tokens at three prices: three parts of one policy.
    ``set`` holds the metering parameters that differ from the versions' (at least the ``basis``); they apply
    on top of every version. The part's meter is ``meter``, or the policy's meter and the part's name.
    """

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    meter: str | None = None
    description: str = ""
    #: The price catalog's name for this quantity's price (input, output, cached_input, cache_write,
    #: audio_input, audio_output), when a cost card prices the policy from a catalog model.
    catalog: str | None = None
    set: dict[str, Any] = Field(default_factory=dict)

    @field_validator("set")
    @classmethod
    def _settable(cls, value: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(value) - set(MeteringParams.model_fields))
        if unknown:
            raise ValueError(f"{unknown}: not metering parameters")
        return value


class Policy(_Frozen):
    """A provider product's metering rules, with where they come from.

    ``unit`` says what is billed: time (second, minute, hour: the basis measures time) or a count (token,
    character, request, credit: the basis counts). ``modality`` says where in a call the product sits, for
    cost stacks. ``parts`` meter several quantities of one record apart (see :class:`Part`).
    """

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    name: str
    unit: Unit = "minute"
    provider: str = ""
    product: str = ""
    description: str = ""
    source: tuple[str, ...] = ()
    confidence: Literal["H", "M", "L"] | None = None
    meter: str | None = None
    modality: Modality | None = None
    parts: tuple[Part, ...] = ()
    versions: tuple[PolicyVersion, ...] = Field(min_length=1)
    _components: tuple[Policy, ...] | None = PrivateAttr(default=None)
    _part_name: str | None = PrivateAttr(default=None)

    @field_validator("versions")
    @classmethod
    def _ordered(cls, value: tuple[PolicyVersion, ...]) -> tuple[PolicyVersion, ...]:
        starts = [v.effective_from for v in value]
        if starts != sorted(starts) or len(set(starts)) != len(starts):
            raise ValueError("must be listed oldest first, each with its own effective_from")
        return value

    @model_validator(mode="after")
    def _dimensions(self) -> Policy:
        problems = self._part_problems()
        if self.unit in COUNT_UNITS and any(v.params.open_cap_seconds is not None for v in self.versions):
            problems.append(
                ("", "open_cap_seconds caps time: a count policy (tokens, characters, ...) has no cap")
            )
        if not problems:
            problems = self._unit_problems()
        if problems:
            raise KeyedProblems(problems)
        return self

    def _part_problems(self) -> list[tuple[str, str]]:
        """Each part's name, basis and parameters (over every version), and what parts rule out."""
        problems: list[tuple[str, str]] = []
        seen: set[str] = set()
        for index, part in enumerate(self.parts):
            where = f"parts[{index}]"
            if part.name in seen:
                problems.append((f"{where}.name", f"{part.name!r} is the name of an earlier part"))
            seen.add(part.name)
            if "basis" not in part.set:
                problems.append((where, f"part {part.name!r} needs a basis of its own"))
                continue
            for version in self.versions:
                try:
                    _with(version.params, part.set)
                except ValidationError as error:
                    problems.extend(describe(error, where))
                    break
        if self.parts and any(v.params.meters for v in self.versions):
            problems.append(("", "a policy with parts has a meter per part, not meters by kind"))
        if self.parts and any("basis" in r.set for v in self.versions for r in v.params.rules):
            problems.append(
                (
                    "",
                    "a rule may not set the basis of a policy with parts (it would replace every part's "
                    "basis): give the parts their own bases",
                )
            )
        return problems

    def _unit_problems(self) -> list[tuple[str, str]]:
        """A time unit needs a time basis and a count unit a count basis, in every version, rule and part."""
        counts = self.unit in COUNT_UNITS
        problems: list[tuple[str, str]] = []
        for component in self._build_components():
            for number, version in enumerate(component.versions):
                where = f"versions[{number}]" + (f" (part {component.part!r})" if component.part else "")
                outcomes = [version.params] + [
                    apply_overrides(version.params, r.set) for r in version.params.rules
                ]
                for params in outcomes:
                    if params.is_count != counts:
                        problems.append(
                            (
                                where,
                                f"unit {self.unit!r} "
                                + (
                                    "counts, but the basis measures time"
                                    if counts
                                    else "is time, but the basis counts"
                                )
                                + f" ({shown(params.basis)}): time units are {list(TIME_UNITS)}, "
                                f"counts {list(COUNT_UNITS)}",
                            )
                        )
                        break
        return problems

    @property
    def part(self) -> str | None:
        """The part this policy is, when it is one component of a policy with parts (else None)."""
        return self._part_name

    def components(self) -> tuple[Policy, ...]:
        """The policy once per part (each a policy without parts, metering one quantity), or itself alone.

        Metering a policy with parts is metering each component and putting the results side by side.
        """
        if not self.parts:
            return (self,)
        if self._components is None:
            self._components = self._build_components()
        return self._components

    def _build_components(self) -> tuple[Policy, ...]:
        if not self.parts:
            return (self,)
        built: list[Policy] = []
        for part in self.parts:
            versions = tuple(
                v.model_copy(update={"params": _with(v.params, part.set)}) for v in self.versions
            )
            meter = part.meter or f"{self.default_meter}-{part.name.replace('_', '-')}"
            component = self.model_copy(update={"parts": (), "meter": meter, "versions": versions})
            component._components = None
            component._part_name = part.name
            built.append(component)
        return tuple(built)

    @property
    def unit_seconds(self) -> Decimal:
        return UNIT_SECONDS[self.unit]

    @property
    def is_count(self) -> bool:
        return self.unit in COUNT_UNITS

    @property
    def symbol(self) -> str:
        """The base quantity's symbol in trails: ``s`` for time, else the unit's plural."""
        return "s" if self.unit in TIME_UNITS else f"{self.unit}s"

    @property
    def meter_names(self) -> tuple[str, ...]:
        """Every meter the policy's components bill on by default (kind meters aside)."""
        return tuple(c.default_meter for c in self.components())

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


def _with(params: MeteringParams, overrides: dict[str, Any]) -> MeteringParams:
    """``params`` with a part's overrides, its rules kept (a rule's ``set`` drops rules instead)."""
    return MeteringParams.model_validate({**params.model_dump(), **overrides})


MeteringParams.model_rebuild()

_POLICY_KEYS: Final = frozenset(Policy.model_fields) - {"versions"}
_VERSION_KEYS: Final = frozenset({"effective_from", "note"})


class InvalidPolicy(PolicyError):
    """A policy with problems: ``where`` is the file (or table) and ``problems`` each ``(key, why)``, so that
    a reader that embeds policies (a rate card's inline policy) can put its own key in front of each."""

    def __init__(self, where: str, problems: list[tuple[str, str]]) -> None:
        self.where = where
        self.problems = problems
        said = "; ".join(f"{key}: {why}" if key else why for key, why in problems)
        super().__init__(f"{where}: {said}" if where else said)


#: A version that stands in for versions with problems while the header and parts are checked.
_STAND_IN: Final = PolicyVersion(effective_from=datetime(2000, 1, 1, tzinfo=UTC), params=MeteringParams())


def policy_from_dict(data: dict[str, Any], *, where: str = "policy") -> Policy:
    """Build a policy from a TOML-shaped mapping, inheriting each version's parameters from the one before.

    Every problem is reported at once in one :class:`InvalidPolicy` (a :class:`PolicyError`), each naming
    its key once, as written in the file. A problem a version inherits is said on the version that wrote it.
    """
    problems: list[tuple[str, str]] = [
        (key, "unknown policy key") for key in sorted(set(data) - _POLICY_KEYS - {"versions"})
    ]
    raw_versions = data.get("versions")
    if not isinstance(raw_versions, list) or not raw_versions:
        problems.append(("versions", "needs at least one [[versions]] table with an effective_from"))
        raw_versions = []
    versions: list[PolicyVersion] = []
    inherited: dict[str, Any] = {}
    said: set[tuple[str, str]] = set()
    for index, raw in enumerate(raw_versions):
        prefix = f"versions[{index}]"
        if not isinstance(raw, dict):
            problems.append((prefix, "must be a table"))
            continue
        params = _unalias({k: v for k, v in raw.items() if k not in _VERSION_KEYS})
        if isinstance(params.get("rules"), list):
            params["rules"] = [_unalias_rule(rule) for rule in params["rules"]]
        inherited = {**inherited, **params}
        found, built = _version(raw, inherited, prefix)
        if built is not None:
            versions.append(built)
        for key, why in found:
            tail = key.removeprefix(prefix)
            written = re.match(r"\.?(\w+)", tail)
            if (written is not None and written.group(1) in params) or (tail, why) not in said:
                problems.append((key, why))
            said.add((tail, why))
    header = {k: v for k, v in data.items() if k in _POLICY_KEYS}
    if isinstance(header.get("parts"), list):
        parts = [_part_table(part, f"parts[{i}]", problems) for i, part in enumerate(header["parts"])]
        header["parts"] = parts
    complete = not problems
    try:
        policy = Policy.model_validate({**header, "versions": versions if complete else [_STAND_IN]})
    except ValidationError as error:
        found = describe(error)
        if not complete:  # checked over a stand-in version: only what the header and parts say holds
            found = [(key, why) for key, why in found if key and not key.startswith("versions")]
        problems.extend(found)
    else:
        if complete:
            return policy
    raise InvalidPolicy(where, problems)


def _version(
    raw: dict[str, Any], params: dict[str, Any], prefix: str
) -> tuple[list[tuple[str, str]], PolicyVersion | None]:
    """One version's problems, and the version when it has none."""
    found: list[tuple[str, str]] = []
    built: MeteringParams | None = None
    try:
        built = MeteringParams.model_validate(params)
    except ValidationError as error:
        found.extend(describe(error, prefix))
    if built is not None:
        found.extend(_check_rules(built, prefix))
    try:
        dated = {k: raw[k] for k in _VERSION_KEYS if k in raw}
        version = PolicyVersion.model_validate({**dated, "params": built or MeteringParams()})
    except ValidationError as error:
        found.extend((key.replace(".params", ""), why) for key, why in describe(error, prefix))
        return found, None
    return found, (version if built is not None and not found else None)


_PART_KEYS: Final = frozenset({"name", "meter", "description", "catalog"})


def _unalias(table: dict[str, Any]) -> dict[str, Any]:
    """A parameter table with the short names (``increment``, ``minimum``, ...) spelt out."""
    return {PARAM_ALIASES.get(key, key): value for key, value in table.items()}


def _unalias_rule(rule: object) -> object:
    if isinstance(rule, dict) and isinstance(rule.get("set"), dict):
        return {**rule, "set": _unalias(rule["set"])}
    return rule


def _part_table(part: object, where: str, problems: list[tuple[str, str]]) -> object:
    """A ``[[parts]]`` table as a :class:`Part`: its own keys, and every other key a parameter it sets."""
    if not isinstance(part, dict):
        return part
    own = {k: v for k, v in part.items() if k in _PART_KEYS}
    params = _unalias({k: v for k, v in part.items() if k not in _PART_KEYS})
    for key in sorted(set(params) - set(MeteringParams.model_fields)):
        problems.append(
            (
                f"{where}.{key}",
                "unknown key: not a part key (name, meter, description, catalog) or a metering parameter",
            )
        )
    return {**own, "set": {k: v for k, v in params.items() if k in MeteringParams.model_fields}}


def _check_rules(params: MeteringParams, prefix: str) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    for index, rule in enumerate(params.rules):
        try:
            apply_overrides(params, rule.set)
        except ValidationError as error:
            problems.extend(describe(error, f"{prefix}.rules[{index}].set"))
    return problems


def apply_overrides(params: MeteringParams, overrides: dict[str, Any]) -> MeteringParams:
    """``params`` with some parameters replaced, validated like the rest (a rule's ``set``)."""
    merged = {**params.model_dump(exclude={"rules"}), **overrides}
    return MeteringParams.model_validate(merged)
