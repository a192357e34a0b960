"""Plausibility guards: limits a usage record must stay within before it is billed without a person looking.

A record can be valid (every field well formed, ends after it starts) and still be wrong in a way that costs
real money: a call that "ends" in 2035 after a clock or an integration bug, an ``audio.sent`` of 10^9
seconds, ten billion tokens on one LLM request, a start date two years ahead. Such a record is kept (nothing
accepted is lost) and *flagged* with every reason it breaks a limit; it stays out of usage totals and
invoices until a person accepts it as it is or corrects it.

Limits have safe defaults and can be set per tenant in a TOML file (``docs/guards.md``)::

    max_call_hours = 24          # a record longer than this (ended or reported) is flagged
    max_future_hours = 24        # a start later than now + this
    max_past_days = 400          # a start earlier than now - this
    max_tokens = 10000000        # any token count of one record
    max_characters = 1000000     # any character count of one record
    slack_seconds = 2            # audio or speech seconds may exceed the record's span by this much

    [tenants.acme]               # per tenant: only the keys that differ from the defaults above
    max_call_hours = 72

A person's acceptance of a flagged record travels with the limits (:attr:`Limits.accepted`, empty unless a
face read the acceptances from a store): :func:`hold_back` then counts a record whose every reason is among
the reasons its latest acceptance accepted, word for word, as the store counts it.

The two limits worded in time are judged as of a moment (:func:`judged_as_of`, the one place that decides
it): a record a store kept, as of when the store first received it (or the read's "now" if that is earlier),
in every face; a record of a plain file, as of the "now" the face passes (an invoice: its month's end, or
now). A face that read its records from a store passes the store's word on them as :class:`Kept`.

Owns: the limits, their file format and the check of one record (pure: "now" is passed in). Does not own:
where flags and acceptances are kept (``talktime.store``) or how a person accepts or corrects a record.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Final

from talktime.core.decimals import quantize, text
from talktime.core.records import UsageRecord, seconds_between
from talktime.errors import InputError

#: Every reason a record can be flagged for; a flag is ``CODE: what was found and the limit``.
REASONS: Final = (
    "call-too-long",
    "audio-longer-than-call",
    "speech-longer-than-audio",
    "reported-longer-than-limit",
    "tokens-over-limit",
    "characters-over-limit",
    "starts-in-future",
    "starts-long-ago",
)
_TOKEN_FIELDS: Final = (
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "audio_input_tokens",
    "audio_output_tokens",
)
_CHARACTER_FIELDS: Final = ("characters", "ssml_characters", "cjk_characters")


@dataclass(frozen=True, slots=True)
class Accepted:
    """A person's latest acceptance of a record: the reasons accepted, word for word, and the moment the
    record's reasons are worded as of (the store judges a record as of when it first received it, or of the
    read if that is earlier: ``starts-in-future`` names that moment)."""

    reasons: frozenset[str]
    judged_at: datetime


#: The loosest time-worded limits a guards file can set (whole hours and days, at least 1): a record these do
#: not flag as of the moment it is judged as of breaks no ``max_future_hours`` or ``max_past_days``.
RECEIPT_BOUNDS: Final = (timedelta(hours=1), timedelta(days=1))


class Kept(dict[str, Accepted]):
    """A store's word on the records a face read from it: by id, the latest acceptance of each record a
    person accepted, and in :attr:`received` the moment of each record whose time-worded limits could flag
    it (received more than :data:`RECEIPT_BOUNDS` before its start or after it), each judged as of the
    store's first receipt of it, or the read's "now" if that is earlier. Every other record the store kept
    was received within those bounds of its start, so no ``max_future_hours`` or ``max_past_days`` flags it
    as of its receipt: :func:`judged_as_of` gives None for it. A plain ``dict`` of acceptances (or none)
    says nothing of the other records: they are judged as of the face's "now"."""

    def __init__(
        self,
        accepted: Mapping[str, Accepted] | None = None,
        received: Mapping[str, datetime] | None = None,
    ) -> None:
        super().__init__(accepted or {})
        self.received: dict[str, datetime] = dict(received or {})

    def __reduce__(self) -> tuple[Any, ...]:
        return (Kept, (dict(self), self.received))


@dataclass(frozen=True, slots=True)
class Limits:
    """What a record may be before a person has to look at it, and the records a person accepted (by id;
    not a key of the guards file: read from a store's acceptances)."""

    max_call_hours: int = 24
    max_future_hours: int = 24
    max_past_days: int = 400
    max_tokens: int = 10_000_000
    max_characters: int = 1_000_000
    slack_seconds: int = 2
    accepted: Mapping[str, Accepted] = field(default_factory=dict, hash=False, repr=False)

    @property
    def max_call(self) -> Decimal:
        return Decimal(self.max_call_hours * 3600)


@dataclass(frozen=True, slots=True)
class Guards:
    """Default limits and each tenant's own."""

    default: Limits = field(default_factory=Limits)
    tenants: Mapping[str, Limits] = field(default_factory=dict)

    def limits_for(self, tenant: str | None) -> Limits:
        if tenant is None:
            return self.default
        return self.tenants.get(tenant, self.default)


class GuardsError(InputError):
    """A guards file that is invalid: names the key and why."""


_KEYS: Final = tuple(f.name for f in fields(Limits) if f.name != "accepted")


def _limits(data: Mapping[str, Any], base: Limits, where: str, problems: list[str]) -> Limits:
    values: dict[str, Any] = {}  # whole numbers, checked below
    for key, value in data.items():
        if key not in _KEYS:
            problems.append(f"{where}{key}: not a guard; the guards are {', '.join(_KEYS)}")
        elif isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            problems.append(f"{where}{key}: {value!r} is not a positive whole number")
        else:
            values[key] = value
    return replace(base, **values)


def guards_from_dict(data: Mapping[str, Any], *, source: str = "guards") -> Guards:
    """Guards from a parsed TOML document; every problem at once, each naming its key."""
    problems: list[str] = []
    top = {k: v for k, v in data.items() if k != "tenants"}
    default = _limits(top, Limits(), "", problems)
    tenants: dict[str, Limits] = {}
    raw_tenants = data.get("tenants", {})
    if not isinstance(raw_tenants, Mapping):
        problems.append("tenants: must be a table of tenant tables, e.g. [tenants.acme]")
    else:
        for name, raw in raw_tenants.items():
            if not isinstance(raw, Mapping):
                problems.append(f"tenants.{name}: must be a table of limits")
                continue
            tenants[str(name)] = _limits(raw, default, f"tenants.{name}.", problems)
    if problems:
        raise GuardsError(f"{source}: " + "; ".join(problems))
    return Guards(default, tenants)


def _seconds(value: Decimal) -> str:
    """Exact seconds, with hours beside them when that is easier to read."""
    if value < 3600:
        return f"{text(value)} s"
    return f"{text(value)} s ({text(quantize(value / 3600, 1))} h)"


def judged_as_of(record: UsageRecord, limits: Limits, now: datetime) -> datetime | None:
    """The moment the record's time-worded limits are judged as of: the store's, when the face read it from
    a store (:class:`Kept`: its first receipt, or the read's "now" if earlier; None for a record received
    within :data:`RECEIPT_BOUNDS` of its start, which no time-worded limit flags then); else ``now``."""
    made = limits.accepted.get(record.id)
    if made is not None:
        return made.judged_at
    if isinstance(limits.accepted, Kept):
        return limits.accepted.received.get(record.id)
    return now


def receipt_moment(first_received: datetime, now: datetime) -> datetime:
    """The moment a store judges a record it keeps as of: its first receipt, or ``now`` if that is earlier
    (a replay with a clock in the past). ``talktime.store.held`` writes the same as SQL."""
    return min(first_received, now)


def check(record: UsageRecord, limits: Limits, now: datetime) -> tuple[str, ...]:
    """Every limit the record breaks, as ``code: detail`` (empty when it is plausible); the time-worded ones
    as of :func:`judged_as_of` (``now`` for a record no store's word covers)."""
    found: list[str] = []
    slack = Decimal(limits.slack_seconds)
    span = None if record.ended_at is None else seconds_between(record.started_at, record.ended_at)
    if span is not None and span > limits.max_call:
        found.append(
            f"call-too-long: {_seconds(span)} from start to end, over the {limits.max_call_hours} h limit"
        )
    for name in ("audio_seconds", "speech_seconds"):
        value: Decimal | None = getattr(record, name)
        if value is None:
            continue
        if span is not None and value > span + slack:
            found.append(
                f"audio-longer-than-call: {name} {_seconds(value)} is longer than the record's "
                f"{_seconds(span)} (slack {limits.slack_seconds} s)"
            )
        elif span is None and value > limits.max_call:
            found.append(
                f"audio-longer-than-call: {name} {_seconds(value)} on a record still open is over the "
                f"{limits.max_call_hours} h limit"
            )
    if (
        record.speech_seconds is not None
        and record.audio_seconds is not None
        and record.speech_seconds > record.audio_seconds + slack
    ):
        found.append(
            f"speech-longer-than-audio: speech_seconds {_seconds(record.speech_seconds)} is longer than "
            f"audio_seconds {_seconds(record.audio_seconds)}"
        )
    reported = record.provider_reported_seconds
    if reported is not None and reported > limits.max_call:
        found.append(
            f"reported-longer-than-limit: provider_reported_seconds {_seconds(reported)} is over the "
            f"{limits.max_call_hours} h limit"
        )
    for name in _TOKEN_FIELDS:
        count: int | None = getattr(record, name)
        if count is not None and count > limits.max_tokens:
            found.append(f"tokens-over-limit: {name} {count} is over the {limits.max_tokens} limit")
    for name in _CHARACTER_FIELDS:
        count = getattr(record, name)
        if count is not None and count > limits.max_characters:
            found.append(f"characters-over-limit: {name} {count} is over the {limits.max_characters} limit")
    moment = judged_as_of(record, limits, now)
    if moment is not None and record.started_at > moment + timedelta(hours=limits.max_future_hours):
        found.append(
            f"starts-in-future: started_at {record.started_at.isoformat()} is more than "
            f"{limits.max_future_hours} h after {moment.isoformat()}"
        )
    if moment is not None and record.started_at < moment - timedelta(days=limits.max_past_days):
        found.append(
            f"starts-long-ago: started_at {record.started_at.isoformat()} is more than "
            f"{limits.max_past_days} days before {moment.isoformat()}"
        )
    return tuple(found)


def hold_back(
    records: Iterable[UsageRecord], limits: Limits, now: datetime
) -> tuple[list[UsageRecord], list[tuple[UsageRecord, tuple[str, ...]]]]:
    """The plausible records, and the implausible ones with their reasons (kept, never dropped). A flagged
    record a person accepted (``limits.accepted``) is plausible while every reason it has, worded as of the
    acceptance's ``judged_at``, is among the reasons accepted."""
    kept: list[UsageRecord] = []
    held: list[tuple[UsageRecord, tuple[str, ...]]] = []
    for record in records:
        reasons = check(record, limits, now)
        if reasons and _accepted(record, limits):
            reasons = ()
        if reasons:
            held.append((record, reasons))
        else:
            kept.append(record)
    return kept, held


def _accepted(record: UsageRecord, limits: Limits) -> bool:
    made = limits.accepted.get(record.id)
    return made is not None and set(check(record, limits, made.judged_at)) <= made.reasons


def reason_code(flag: str) -> str:
    """The code of a flag (``call-too-long: ...`` -> ``call-too-long``)."""
    return flag.partition(":")[0]
