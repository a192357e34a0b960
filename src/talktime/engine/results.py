"""Engine rows back into the domain's shapes: :class:`MeteredRecord` and :class:`Totals`, and engine error
codes back into the reference meter's errors (naming the record, the row and the field).

Owns: integer-at-scale -> Decimal, and the code -> message table. Does not own: the queries.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Final

from talktime.core.decimals import plain, text
from talktime.core.metering.meter import NOT_COUNTED, MeteredRecord, MeterTotals, Step, Totals
from talktime.core.metering.policy import QUANTITY_PLACES, Policy
from talktime.engine.compile import Compiled
from talktime.errors import MeteringError, RecordError

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)

_FORMAT_WHY: Final = {
    "id": "is required and may not be empty",
    "started_at": "is required",
    "status": "is not one of the record statuses",
    "kind": "is not one of the record kinds",
    "completed": "a completed record needs an end time",
    "before": "is before started_at",
    "after": "is after ended_at",
    "order": "is before first_audio_at",
    "negative": "is negative",
    "positive": "is not a positive whole number (a mono call has 1)",
}


def number(value: Any, scale: int) -> Decimal:
    """An engine's integer at ``scale`` (int, Decimal or text) as exact seconds."""
    return plain(Decimal(int(Decimal(value))).scaleb(-scale))


def metered_record(row: Sequence[Any], policy: Policy, compiled: Compiled, engine: str) -> MeteredRecord:
    """One row of :attr:`Compiled.records` as the reference meter's record (with a one-step trail)."""
    _, rid, customer, provider, session, meter, variant, start, actual, reported, billable, quantity = row
    version = policy.versions[compiled.version_of[int(variant)]]
    seconds = number(billable, compiled.billable_scale)
    step = Step(
        "engine", f"metered by {engine}; `talktime explain --id {rid}` shows each step", None, seconds
    )
    return MeteredRecord(
        id=rid,
        customer=customer,
        provider=provider,
        session=session if session is not None else f"record:{rid}",
        meter=meter,
        unit=policy.unit,
        policy=policy.id,
        version=version.effective_from.date().isoformat(),
        started_at=_EPOCH + timedelta(microseconds=int(Decimal(start))),
        actual_seconds=number(actual, 6),
        provider_reported_seconds=None if reported is None else number(reported, 6),
        billable_seconds=seconds,
        billable_quantity=number(quantity, QUANTITY_PLACES),
        explain=(step,),
        symbol=policy.symbol,
    )


def totals(rows: Sequence[Sequence[Any]], policy: Policy, compiled: Compiled) -> Totals:
    """Rows of :attr:`Compiled.totals` (one per meter) as :class:`Totals`; the overall line is their sum."""
    result = Totals.for_policy(policy)
    for meter, records, actual, reported, reported_records, billable in sorted(rows, key=lambda r: str(r[0])):
        counted = str(meter) != NOT_COUNTED  # as the reference: no provider figure from records not counted
        part = MeterTotals(
            records=int(records),
            actual_seconds=number(actual or 0, 6),
            provider_reported_seconds=number(reported or 0, 6) if counted else Decimal(0),
            provider_reported_records=int(reported_records) if counted else 0,
            billable_seconds=number(billable or 0, compiled.billable_scale),
        )
        result.meters[str(meter)] = part
        whole = result.all
        whole.records += part.records
        whole.actual_seconds += part.actual_seconds
        whole.provider_reported_seconds += part.provider_reported_seconds
        whole.provider_reported_records += part.provider_reported_records
        whole.billable_seconds += part.billable_seconds
    return result


def engine_error(code: str, record_id: str | None, where: str, policy: Policy) -> Exception:
    """The error the reference meter raises for the same record, from an engine's error code."""
    kind, _, rest = code.partition(":")
    if kind == "dup":
        return RecordError(
            "id", "appears twice; each record is billed once", where=where, record_id=record_id
        )
    if kind == "fmt":
        name, _, why = rest.partition(":")
        if why.startswith("part:"):
            whole = why.removeprefix("part:")
            why_part = f"is more than {whole}, which it is part of"
            return RecordError(name, why_part, where=where, record_id=record_id)
        return RecordError(
            name, _FORMAT_WHY.get(why or name, "breaks the record format"), where=where, record_id=record_id
        )
    if kind == "before_policy":
        return MeteringError(
            f"{where}, record {record_id!r}: field 'started_at': is before policy {policy.id!r} takes effect "
            f"({policy.versions[0].effective_from.date().isoformat()})"
        )
    if kind == "open_no_cap":
        return MeteringError(
            f"{where}, record {record_id!r}: field 'status': the record is still open and policy "
            f"{policy.id!r} has no open_cap_seconds to close it; meter it once it has ended"
        )
    if kind == "need":
        name, _, basis = rest.partition(":")
        return RecordError(
            name, f"is needed to measure {basis.replace('_', ' ')} time", where=where, record_id=record_id
        )
    if kind == "count":
        return RecordError(
            rest, f"is needed to count {rest.replace('_', ' ')}", where=where, record_id=record_id
        )
    if kind == "negcount":  # negcount:<first field subtracted>:<the basis in words>:<count at scale 6>
        name, _, described = rest.partition(":")
        label, _, count = described.rpartition(":")
        why = f"leaves a negative count ({text(number(count, 6))}) in {label}"
        return RecordError(name, why, where=where, record_id=record_id)
    if kind == "kind_missing":
        return RecordError(
            "kind",
            f"policy {policy.id!r} counts only some kinds; the record has none",
            where=where,
            record_id=record_id,
        )
    if kind == "segment":
        return RecordError(
            rest, "is more seconds than the record bills at that step", where=where, record_id=record_id
        )
    if kind == "number":
        return RecordError(
            rest, "is not a decimal number with at most 6 places", where=where, record_id=record_id
        )
    return MeteringError(f"{where}, record {record_id!r}: {code}")
