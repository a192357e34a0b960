"""The scalar reference meter: clear before fast, and the oracle every vectorised engine is tested against.

Owns: turning one record (or a session's, or a period's records) into actual, provider-reported and billable
seconds with an explain trail, one :class:`Step` per rule applied. Does not own: reading records or policies,
pricing, or speed (``talktime.engine`` does volume).

Each record's trail reads left to right, e.g. ``answered 47.3 s -> 6/6 up -> 48 s -> x2 channels -> 96 s``.
A record the policy does not bill still appears, with billable 0 and the reason as its last step.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from zoneinfo import ZoneInfo

from talktime.core.decimals import quantize, text
from talktime.core.metering.policy import (
    QUANTITY_PLACES,
    Basis,
    MeteringParams,
    Policy,
    PolicyVersion,
    Segment,
    apply_overrides,
)
from talktime.core.records import COUNT_PARTS, UsageRecord, seconds_between
from talktime.errors import MeteringError, RecordError

ZERO = Decimal(0)
#: The meter of records whose kind the policy does not count (a SIP leg under a WebRTC-only policy, say).
NOT_COUNTED = "not-counted"

_BASIS_WORDS: dict[str, str] = {
    "connection": "connection",
    "answered": "answered",
    "audio_span": "audio span",
    "audio_sent": "audio sent",
    "speech": "speech",
    "provider_reported": "provider-reported",
}


@dataclass(frozen=True, slots=True)
class Step:
    """One rule applied: its name, how it was applied, and the seconds before and after."""

    step: str
    rule: str
    input_seconds: Decimal | None
    output_seconds: Decimal

    def render(self) -> str:
        return f"{self.rule} -> {text(self.output_seconds)} s"

    def as_dict(self) -> dict[str, str | None]:
        return {
            "step": self.step,
            "rule": self.rule,
            "input_seconds": None if self.input_seconds is None else text(self.input_seconds),
            "output_seconds": text(self.output_seconds),
        }


@dataclass(frozen=True, slots=True)
class MeteredRecord:
    """A record as the policy bills it: the three durations side by side, and how the billable one came."""

    id: str
    customer: str | None
    provider: str | None
    session: str
    meter: str
    unit: str
    policy: str
    version: str
    started_at: datetime
    actual_seconds: Decimal
    provider_reported_seconds: Decimal | None
    billable_seconds: Decimal
    billable_quantity: Decimal
    explain: tuple[Step, ...]
    #: What ``actual_seconds``, ``billable_seconds`` and the steps count: ``s`` for time, or ``tokens``,
    #: ``characters``, ``requests``, ``credits`` under a count policy (the fields keep their time names).
    symbol: str = "s"

    def trail(self) -> str:
        """The whole trail on one line: ``answered 47.3 s -> 6/6 up -> 48 s -> x2 channels -> 96 s``."""
        first, *rest = self.explain
        parts = [f"{first.rule} {text(first.output_seconds)} {self.symbol}"]
        parts += [f"{step.rule} -> {text(step.output_seconds)} {self.symbol}" for step in rest]
        return " -> ".join(parts)


def round_increments(seconds: Decimal, first: Decimal, increment: Decimal, direction: str) -> Decimal:
    """Telecom A/B increments: ``first`` (A) for anything up to A, then blocks of ``increment`` (B).

    With A == B this is plain rounding to a multiple of B in ``direction`` (``up``, ``nearest`` with halves
    going up, ``down``). With A != B any positive duration bills at least A. Zero stays zero.

    >>> round_increments(Decimal("47.3"), Decimal(6), Decimal(6), "up")
    Decimal('48')
    >>> round_increments(Decimal(61), Decimal(60), Decimal(1), "up")
    Decimal('61')
    >>> round_increments(Decimal(10), Decimal(30), Decimal(6), "up")
    Decimal('30')
    """
    if seconds <= 0:
        return ZERO
    if first != increment:
        if seconds <= first:
            return first
        return first + _round_multiple(seconds - first, increment, direction)
    return _round_multiple(seconds, increment, direction)


def _round_multiple(value: Decimal, block: Decimal, direction: str) -> Decimal:
    whole = value // block
    rest = value - whole * block
    if (direction == "up" and rest > 0) or (direction == "nearest" and rest * 2 >= block):
        whole += 1
    return whole * block


def _round_fraction(value: Fraction, block: Decimal, direction: str) -> Decimal:
    steps = value / Fraction(block)
    whole = steps.numerator // steps.denominator
    rest = steps - whole
    if (direction == "up" and rest > 0) or (direction == "nearest" and rest * 2 >= 1):
        whole += 1
    return Decimal(whole) * block


class _Trail:
    """Collects steps while a record is metered."""

    def __init__(self) -> None:
        self.steps: list[Step] = []
        self.seconds = ZERO

    def start(self, step: str, rule: str, seconds: Decimal) -> None:
        self.steps.append(Step(step, rule, None, seconds))
        self.seconds = seconds

    def apply(self, step: str, rule: str, seconds: Decimal) -> None:
        self.steps.append(Step(step, rule, self.seconds, seconds))
        self.seconds = seconds


@dataclass(frozen=True, slots=True)
class _Partial:
    """A record metered up to the point where a session or period scope takes over."""

    record: UsageRecord
    version: PolicyVersion
    params: MeteringParams
    meter: str
    actual: Decimal
    contribution: Decimal
    steps: tuple[Step, ...]
    group: tuple[str, ...] | None = None


def _measure(record: UsageRecord, basis: Basis, end: datetime | None, strict: bool) -> Decimal | None:
    """One measure of the record's time, or None when it is missing and ``strict`` is off."""

    def need(name: str, why: str) -> None:
        if strict:
            raise RecordError(name, why, record_id=record.id)

    if basis == "connection":
        if end is None:
            need("ended_at", "is needed to measure connection time")
            return None
        return seconds_between(record.started_at, end)
    if basis == "answered":
        if record.answered_at is None:
            if record.status == "completed":
                need("answered_at", "a completed call needs it to measure answered time")
            return ZERO if record.status != "completed" else None
        if end is None:
            need("ended_at", "is needed to measure answered time")
            return None
        return seconds_between(record.answered_at, end)
    if basis == "audio_span":
        if record.first_audio_at is None or record.last_audio_at is None:
            missing = "first_audio_at" if record.first_audio_at is None else "last_audio_at"
            need(missing, "is needed to measure the audio span")
            return None
        return seconds_between(record.first_audio_at, record.last_audio_at)
    value = {
        "audio_sent": record.audio_seconds,
        "speech": record.speech_seconds,
        "provider_reported": record.provider_reported_seconds,
    }[basis]
    if value is None:
        name = {"audio_sent": "audio_seconds", "speech": "speech_seconds"}.get(basis, basis + "_seconds")
        need(name, f"is needed to measure {_BASIS_WORDS[basis]} time")
    return value


def _words(name: str) -> str:
    return _BASIS_WORDS.get(name, name.replace("_", " "))


def _count(record: UsageRecord, params: MeteringParams, strict: bool) -> tuple[Decimal, str]:
    """A count basis: the weighted sum of the record's counts (``request`` is 1), in the trail's words.

    A missing part (cached tokens, SSML characters) is none of them when its total is there, and a part
    with a negative weight is none of them anyway; any other missing field makes a billed record uncountable
    (an error when ``strict``). A sum below zero (parts larger than their totals) is an error on a billed
    record, naming the first subtracted field it has; a record not billed counts nothing.
    """
    total = ZERO
    shown: list[str] = []
    missing = False
    for name, weight in params.count_terms:
        raw = Decimal(1) if name == "request" else record.value_of(name)
        if raw is None and name in COUNT_PARTS and record.value_of(COUNT_PARTS[name]) is not None:
            raw = ZERO
        if raw is None:
            if weight > 0:
                if strict:
                    raise RecordError(name, f"is needed to count {_words(name)}", record_id=record.id)
                missing = True
            continue
        value = raw if isinstance(raw, Decimal) else Decimal(str(raw))
        total += weight * value
        shown.append(f"{_term(name, weight)} {text(value)}")
    if total < 0:
        if not strict:  # not billed: its parts exceeding its totals count nothing, and bill nothing
            return ZERO, f"{count_label(params.count_terms)} (not counted: its parts exceed its totals)"
        subtracted = [name for name, weight in params.count_terms if weight < 0]
        culprit = next((name for name in subtracted if _present(record, name)), subtracted[0])
        raise RecordError(
            culprit,
            f"leaves a negative count ({text(total)}) in {count_label(params.count_terms)}",
            record_id=record.id,
        )
    if missing and not shown:
        return ZERO, f"{count_label(params.count_terms)} (not counted)"
    if len(params.count_terms) == 1 and params.count_terms[0][1] == 1:
        return total, _words(params.count_terms[0][0])
    return total, f"{' '.join(shown).removeprefix('+ ')} ="


def _present(record: UsageRecord, name: str) -> bool:
    """True when the record has a count (or seconds) above zero in ``name``."""
    value = record.value_of(name)
    return isinstance(value, int | Decimal) and value > 0


def _term(name: str, weight: int) -> str:
    """One weighted term in words, with its sign: ``- cached input tokens``, ``+ 10 x audio seconds``."""
    factor = "" if abs(weight) == 1 else f"{abs(weight)} x "
    return f"{'-' if weight < 0 else '+'} {factor}{_words(name)}"


def count_label(terms: tuple[tuple[str, int], ...]) -> str:
    """A count basis in words: ``input tokens - cached input tokens``, ``characters + cjk characters``."""
    return " ".join(_term(name, weight) for name, weight in terms).removeprefix("+ ")


def _basis(
    record: UsageRecord, params: MeteringParams, end: datetime | None, strict: bool
) -> tuple[Decimal, str]:
    if params.is_count:
        return _count(record, params, strict)
    measures = [(b, _measure(record, b, end, strict)) for b in params.bases]
    known = [(b, v) for b, v in measures if v is not None]
    if not known:
        return ZERO, f"{_BASIS_WORDS[params.bases[0]]} (not measured)"
    if len(params.bases) == 1:
        return known[0][1], _BASIS_WORDS[known[0][0]]
    best = max(known, key=lambda bv: bv[1])
    shown = ", ".join(f"{_BASIS_WORDS[b]} {text(v)} s" for b, v in known)
    return best[1], f"larger of ({shown}): {_BASIS_WORDS[best[0]]}"


def _effective_end(record: UsageRecord, params: MeteringParams) -> datetime | None:
    if record.status == "open" and params.open_cap_seconds is not None:
        return record.started_at + _as_timedelta(params.open_cap_seconds)
    return record.ended_at


def _as_timedelta(seconds: Decimal) -> timedelta:
    micro = int(seconds.scaleb(6))
    return timedelta(microseconds=micro)


def _resolve(record: UsageRecord, version: PolicyVersion) -> tuple[MeteringParams, list[str]]:
    params = version.params
    applied: list[str] = []
    for rule in version.params.rules:
        if rule.matches(record.value_of):
            params = apply_overrides(params, rule.set)
            applied.append(rule.name)
    return params, applied


def _meter_name(policy: Policy, params: MeteringParams, record: UsageRecord) -> str:
    if record.kind is not None and record.kind in params.meters:
        return params.meters[record.kind]
    return policy.default_meter


def _period_key(record: UsageRecord, params: MeteringParams) -> str:
    local = record.started_at.astimezone(ZoneInfo(params.period_timezone))
    return f"{local.year:04d}-{local.month:02d}"


def _partial(record: UsageRecord, policy: Policy) -> _Partial:
    """The record metered up to where a session or period scope would take over (all of it, per record)."""
    version = policy.version_at(record.started_at, record.id)
    params, rules = _resolve(record, version)
    trail = _Trail()
    if params.kinds is not None and record.kind not in params.kinds:
        _kind_not_counted(record, params, policy, trail)
        return _Partial(
            record,
            version,
            params,
            NOT_COUNTED,
            ZERO,
            ZERO,
            tuple(trail.steps),
            _group(record, params, NOT_COUNTED),
        )
    actual = _measure_actual(record, params, policy, rules, trail)
    if _billable(record, params, actual, trail):
        _shape(record, params, trail)
    meter = _meter_name(policy, params, record)
    return _Partial(
        record,
        version,
        params,
        meter,
        actual,
        trail.seconds,
        tuple(trail.steps),
        _group(record, params, meter),
    )


def _group(record: UsageRecord, params: MeteringParams, meter: str) -> tuple[str, ...] | None:
    """The session or calendar period whose total is rounded as a whole, or None for per-record rounding."""
    if params.scope == "session":
        return (meter, "session", record.session_key)
    if params.scope == "period":
        return (meter, "period", record.customer or "", _period_key(record, params))
    return None


def _kind_not_counted(record: UsageRecord, params: MeteringParams, policy: Policy, trail: _Trail) -> None:
    """Outside this policy: listed on a meter of its own, measuring and billing nothing, never dropped."""
    counted = list(params.kinds or ())
    if record.kind is None:
        raise RecordError(
            "kind",
            f"policy {policy.id!r} counts only kinds {counted}; the record has none",
            record_id=record.id,
        )
    trail.start("kind", f"kind {record.kind} not counted (counts {', '.join(counted)})", ZERO)


def _measure_actual(
    record: UsageRecord, params: MeteringParams, policy: Policy, rules: list[str], trail: _Trail
) -> Decimal:
    """The actual duration on the policy's time basis: the trail's first step, then the rules that apply."""
    if record.status == "open" and params.open_cap_seconds is None:
        raise MeteringError(
            f"record {record.id!r}: field 'status': the record is still open and policy {policy.id!r} has no "
            "open_cap_seconds to close it; meter it once it has ended"
        )
    # Only a record the policy bills must carry what its basis measures; others show what can be measured.
    billed_status = record.status == "open" or record.status in params.billed_statuses
    actual, basis_words = _basis(record, params, _effective_end(record, params), strict=billed_status)
    if policy.unit == "credit":  # what is counted becomes credits, one each until a factor says otherwise
        basis_words += ", 1 credit each"
    trail.start("basis", basis_words, actual)
    for name in rules:
        trail.apply("rule", f"rule {name!r} applies", actual)
    return actual


def _billable(record: UsageRecord, params: MeteringParams, actual: Decimal, trail: _Trail) -> bool:
    """False, with the reason in the trail and 0 billed, for a record the policy does not bill at all."""
    if record.status == "open":
        cap = params.open_cap_seconds
        assert cap is not None  # _measure_actual refused an open record without a cap
        trail.apply("cap", f"left open: closed at the {text(cap)} s cap", trail.seconds)
    elif record.status not in params.billed_statuses:
        trail.apply("status", f"status {record.status}: not billed by this policy", ZERO)
        return False
    if actual <= 0:
        trail.apply("zero", "nothing to bill", ZERO)
        return False
    if params.free_below_seconds > 0 and actual < params.free_below_seconds:
        trail.apply("exemption", f"under {text(params.free_below_seconds)} s: not billed", ZERO)
        return False
    return True


def _shape(record: UsageRecord, params: MeteringParams, trail: _Trail) -> None:
    """Cap, segments, rounding and minimum (per-record scope), channels, factor and multiplier."""
    cap = params.open_cap_seconds
    if cap is not None and trail.seconds > cap:
        trail.apply("cap", f"capped at {text(cap)} s", cap)
    for segment in params.segments:
        _segment(trail, segment, record)
    if params.scope == "record":
        _round_and_minimum(trail, params)
    _channels(trail, params, record)
    if params.factor != 1:
        trail.apply("factor", f"x{text(params.factor)}", trail.seconds * params.factor)
    _multiplier(trail, params, record)


def _segment(trail: _Trail, segment: Segment, record: UsageRecord) -> None:
    raw = record.value_of(segment.field)
    if raw is None:
        return
    seconds = _number(record, segment.field, raw)
    if seconds < 0 or seconds > trail.seconds:
        raise RecordError(
            segment.field,
            f"{text(seconds)} s of {segment.name!r} does not fit in {text(trail.seconds)} s billed",
            record_id=record.id,
        )
    reduced = trail.seconds - seconds + seconds * segment.factor
    trail.apply("segment", f"{segment.name} {text(seconds)} s at x{text(segment.factor)}", reduced)


def _round_and_minimum(trail: _Trail, params: MeteringParams, label: str = "") -> None:
    if params.rounding != "exact":
        rounded = round_increments(
            trail.seconds, params.first_block_seconds, params.increment_seconds, params.rounding
        )
        trail.apply("rounding", label + params.rounding_label(), rounded)
    if 0 < trail.seconds < params.minimum_seconds:
        trail.apply("minimum", f"{label}minimum {text(params.minimum_seconds)} s", params.minimum_seconds)


def _channels(trail: _Trail, params: MeteringParams, record: UsageRecord) -> None:
    if record.channels == 1:
        return
    if params.channels == "per_call":
        trail.apply("channels", f"{record.channels} channels billed once (per call)", trail.seconds)
        return
    if params.extra_channel_factor == 1:
        trail.apply("channels", f"x{record.channels} channels", trail.seconds * record.channels)
        return
    factor = 1 + (record.channels - 1) * params.extra_channel_factor
    trail.apply(
        "channels",
        f"x{text(factor)} ({record.channels} channels, extra at x{text(params.extra_channel_factor)})",
        trail.seconds * factor,
    )


def _number(record: UsageRecord, name: str, raw: object) -> Decimal:
    """A field a policy reads as a number (an ``attr.*`` value is text until then)."""
    try:
        value = Decimal(str(raw).strip())
    except InvalidOperation:
        raise RecordError(name, f"{raw!r} is not a number", record_id=record.id) from None
    if not value.is_finite():
        raise RecordError(name, f"{raw!r} is not a finite number", record_id=record.id)
    return value


def _multiplier(trail: _Trail, params: MeteringParams, record: UsageRecord) -> None:
    rule = params.multiplier
    if rule is None:
        return
    raw = record.value_of(rule.field)
    if raw is None:
        return
    value = _number(record, rule.field, raw)
    if value <= rule.above:
        return
    product = Fraction(trail.seconds) * Fraction(value) / Fraction(rule.per)
    scaled = _round_fraction(product, rule.round_to_seconds, rule.direction)
    trail.apply(
        "multiplier",
        f"x {rule.field} {text(value)}/{text(rule.per)}, {text(rule.round_to_seconds)} s {rule.direction}",
        scaled,
    )


def _finish(partial: _Partial, policy: Policy, billable: Decimal, steps: tuple[Step, ...]) -> MeteredRecord:
    record = partial.record
    return MeteredRecord(
        id=record.id,
        customer=record.customer,
        provider=record.provider,
        session=record.session_key,
        meter=partial.meter,
        unit=policy.unit,
        policy=policy.id,
        version=partial.version.effective_from.date().isoformat(),
        started_at=record.started_at,
        actual_seconds=partial.actual,
        provider_reported_seconds=record.provider_reported_seconds,
        billable_seconds=billable,
        billable_quantity=quantity(billable, policy),
        explain=steps,
        symbol=policy.symbol,
    )


def quantity(seconds: Decimal, policy: Policy) -> Decimal:
    """Billable seconds in the policy's unit (see :data:`QUANTITY_PLACES`)."""
    return quantize(seconds / policy.unit_seconds, QUANTITY_PLACES)


def meter_record(record: UsageRecord, policy: Policy) -> MeteredRecord:
    """Meter one record on its own. With a session or period scope, or parts, use :func:`meter_records`."""
    if policy.parts:
        raise MeteringError(
            f"policy {policy.id!r} meters {len(policy.parts)} parts of each record: use meter_records"
        )
    partial = _partial(record, policy)
    if partial.group is not None:
        raise MeteringError(
            f"policy {policy.id!r} rounds per {partial.params.scope}: meter the whole "
            f"{partial.params.scope} with meter_records"
        )
    return _finish(partial, policy, partial.contribution, partial.steps)


def meter_records(records: Iterable[UsageRecord], policy: Policy) -> list[MeteredRecord]:
    """Meter records, rounding sessions or periods as wholes where the policy says so.

    The rounding a session (or period) total gains or loses is put on its last record (latest start, then
    highest id), so per-record billables always add up to the totals and do not depend on input order.
    """
    if policy.parts:
        records = list(_unique(records))
        per_part = [meter_records(records, component) for component in policy.components()]
        return [metered for row in zip(*per_part, strict=True) for metered in row]
    partials = [_partial(record, policy) for record in _unique(records)]
    groups: dict[tuple[str, ...], list[_Partial]] = {}
    for partial in partials:
        if partial.group is not None:
            groups.setdefault(partial.group, []).append(partial)
    finished: dict[str, MeteredRecord] = {}
    for group in groups.values():
        finished.update(_finish_group(group, policy))
    return [finished.get(p.record.id) or _finish(p, policy, p.contribution, p.steps) for p in partials]


def meter_iter(records: Iterable[UsageRecord], policy: Policy) -> Iterator[MeteredRecord]:
    """Metered records as they come: streams when every version rounds per record, else meters all first."""
    components = policy.components()
    if policy.parts:  # every part over every record, so the first error is meter_records' (and the engines')
        yield from meter_records(records, policy)
        return
    if all(version.params.scope == "record" for c in components for version in c.versions):
        for record in _unique(records):
            for component in components:
                yield meter_record(record, component)
    else:
        yield from meter_records(records, policy)


def _unique(records: Iterable[UsageRecord]) -> Iterator[UsageRecord]:
    seen: dict[str, int] = {}
    for position, record in enumerate(records, start=1):
        if record.id in seen:
            raise RecordError(
                "id",
                f"appears twice (records {seen[record.id]} and {position}); each record is billed once",
                record_id=record.id,
            )
        seen[record.id] = position
        yield record


def _group_order(partial: _Partial) -> tuple[datetime, str]:
    return partial.record.started_at, partial.record.id


def _finish_group(group: list[_Partial], policy: Policy) -> dict[str, MeteredRecord]:
    """Round a session's (or period's) total and share what the rounding changed among its records.

    A gain goes on the last record that bills anything; a loss is taken from the billing records from the
    last one back, none below zero. So no record bills a negative amount, and the records always add up to
    the rounded total.
    """
    ordered = sorted(group, key=_group_order)
    scope = ordered[0].params.scope
    total = sum((p.contribution for p in ordered), ZERO)
    trail = _Trail()
    trail.start("scope", f"{scope} total", total)
    _round_and_minimum(trail, ordered[0].params, label=f"{scope} ")
    shares = _share_delta([p.contribution for p in ordered], trail.seconds - total)
    headline = f"{scope} total {text(total)} s ({len(ordered)} records) -> {text(trail.seconds)} s"
    results: dict[str, MeteredRecord] = {}
    for partial, share in zip(ordered, shares, strict=True):
        if share > 0:
            note = f"{headline}: +{text(share)} s on this record, the {scope}'s last billed"
        elif share < 0:
            note = f"{headline}: {text(share)} s taken from this record (from the {scope}'s last back)"
        else:
            note = f"rounded with the {scope} total ({headline})"
        billable = partial.contribution + share
        step = Step(scope, note, partial.contribution, billable)
        results[partial.record.id] = _finish(partial, policy, billable, (*partial.steps, step))
    return results


def _share_delta(contributions: list[Decimal], delta: Decimal) -> list[Decimal]:
    """Each record's part of ``delta``, records in group order (see :func:`_finish_group`).

    >>> _share_delta([Decimal(20), Decimal(0)], Decimal(40))
    [Decimal('40'), Decimal('0')]
    >>> _share_delta([Decimal(20), Decimal(20), Decimal(19)], Decimal(-59))
    [Decimal('-20'), Decimal('-20'), Decimal('-19')]
    >>> _share_delta([Decimal(30), Decimal(10)], Decimal(-15))
    [Decimal('-5'), Decimal('-10')]
    """
    shares = [ZERO] * len(contributions)
    if delta > 0:
        last_billed = max(i for i, c in enumerate(contributions) if c > 0)
        shares[last_billed] = delta
        return shares
    need = -delta
    for index in range(len(contributions) - 1, -1, -1):
        if need <= 0:
            break
        taken = min(contributions[index], need)
        if taken > 0:
            shares[index] = -taken
            need -= taken
    return shares


# --- totals ------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class MeterTotals:
    """Sums over some metered records. Quantity is derived from the seconds total, not summed."""

    records: int = 0
    actual_seconds: Decimal = ZERO
    provider_reported_seconds: Decimal = ZERO
    provider_reported_records: int = 0
    billable_seconds: Decimal = ZERO

    def add(self, metered: MeteredRecord) -> None:
        self.records += 1
        self.actual_seconds += metered.actual_seconds
        self.billable_seconds += metered.billable_seconds
        # a record the policy does not count is listed, but its provider's figure is not this product's
        if metered.provider_reported_seconds is not None and metered.meter != NOT_COUNTED:
            self.provider_reported_seconds += metered.provider_reported_seconds
            self.provider_reported_records += 1

    def merge(self, other: MeterTotals) -> None:
        self.records += other.records
        self.actual_seconds += other.actual_seconds
        self.billable_seconds += other.billable_seconds
        self.provider_reported_seconds += other.provider_reported_seconds
        self.provider_reported_records += other.provider_reported_records


@dataclass(slots=True)
class Totals:
    """Totals over all records and per meter (``webrtc`` vs ``sip`` minutes, say)."""

    unit: str
    unit_seconds: Decimal
    all: MeterTotals = field(default_factory=MeterTotals)
    #: What the seconds fields count: ``s``, or ``tokens``, ``characters``, ... under a count policy.
    symbol: str = "s"
    meters: dict[str, MeterTotals] = field(default_factory=dict)
    #: The id of the record added last: under a policy with parts a record comes once per part, in a row.
    _last_id: str | None = field(default=None, repr=False, compare=False)

    @classmethod
    def for_policy(cls, policy: Policy) -> Totals:
        return cls(unit=policy.unit, unit_seconds=policy.unit_seconds, symbol=policy.symbol)

    def add(self, metered: MeteredRecord) -> None:
        """Add one metered row. The rows of one record under several parts (which come one after the other)
        count the record once overall, and once on the not-counted meter, as :meth:`merge` does."""
        again = metered.id == self._last_id
        self._last_id = metered.id
        if not again:
            self.all.add(metered)
        else:
            self.all.actual_seconds += metered.actual_seconds
            self.all.billable_seconds += metered.billable_seconds
        if not (again and metered.meter == NOT_COUNTED):
            self.meters.setdefault(metered.meter, MeterTotals()).add(metered)

    def merge(self, other: Totals) -> None:
        """Add another part's totals (same unit, meters of its own). Every part meters the same records, so
        the overall record count and provider-reported figures, and the not-counted meter, are the first
        part's; quantities add up."""
        first = not self.meters and self.all.records == 0
        if first:
            self.all.merge(other.all)
        else:
            self.all.actual_seconds += other.all.actual_seconds
            self.all.billable_seconds += other.all.billable_seconds
        for name, part in other.meters.items():
            if name == NOT_COUNTED and not first:
                continue
            self.meters.setdefault(name, MeterTotals()).merge(part)

    def quantity(self, totals: MeterTotals) -> Decimal:
        return quantize(totals.billable_seconds / self.unit_seconds, QUANTITY_PLACES)


def summarize(records: Iterable[UsageRecord], policy: Policy) -> Totals:
    """Totals without keeping records: streams record-scope policies, keeps one sum per session or period."""
    if policy.parts:
        records = list(_unique(records))
        merged = Totals.for_policy(policy)
        for component in policy.components():
            merged.merge(summarize(records, component))
        return merged
    totals = Totals.for_policy(policy)
    groups: dict[tuple[str, ...], list[_Partial]] = {}
    for record in _unique(records):
        partial = _partial(record, policy)
        if partial.group is None:
            totals.add(_finish(partial, policy, partial.contribution, partial.steps))
        else:
            # Keep only what the group rounding needs: the contribution and the ordering key.
            slim = replace(partial, steps=())
            groups.setdefault(partial.group, []).append(slim)
    for group in groups.values():
        for metered in _finish_group(group, policy).values():
            totals.add(metered)
    return totals
