"""Metered results as plain data: the JSON and CSV shapes ``talktime meter`` writes (and the API returns).

Every number is a decimal string, so no consumer reads money or time through a float. The ``*_seconds``
fields hold the policy's base quantity, which ``base`` names: ``s`` for time, or ``tokens``, ``characters``,
``requests``, ``credits`` under a count policy (``provider_reported_seconds`` is always seconds).
"""

from __future__ import annotations

from typing import Any, Final

from talktime.core.decimals import text
from talktime.core.metering.meter import MeteredRecord, MeterTotals, Totals

CSV_COLUMNS: Final = (
    "id",
    "customer",
    "session",
    "meter",
    "policy",
    "version",
    "actual_seconds",
    "provider_reported_seconds",
    "billable_seconds",
    "billable_quantity",
    "unit",
    "explain",
)


def record_dict(metered: MeteredRecord) -> dict[str, Any]:
    """One metered record, with its explain trail as a list of steps."""
    reported = metered.provider_reported_seconds
    return {
        "id": metered.id,
        "customer": metered.customer,
        "session": metered.session,
        "meter": metered.meter,
        "policy": metered.policy,
        "version": metered.version,
        "actual_seconds": text(metered.actual_seconds),
        "provider_reported_seconds": None if reported is None else text(reported),
        "billable_seconds": text(metered.billable_seconds),
        "billable_quantity": text(metered.billable_quantity),
        "unit": metered.unit,
        "base": metered.symbol,
        "explain": [step.as_dict() for step in metered.explain],
    }


def record_row(metered: MeteredRecord) -> dict[str, str]:
    """One metered record as a CSV row; the trail is one readable line."""
    data = record_dict(metered)
    row = {key: "" if data[key] is None else str(data[key]) for key in CSV_COLUMNS if key != "explain"}
    row["explain"] = metered.trail()
    return row


def _meter_totals(totals: Totals, part: MeterTotals) -> dict[str, Any]:
    return {
        "records": part.records,
        "actual_seconds": text(part.actual_seconds),
        "provider_reported_seconds": text(part.provider_reported_seconds),
        "provider_reported_records": part.provider_reported_records,
        "billable_seconds": text(part.billable_seconds),
        "billable_quantity": text(totals.quantity(part)),
        "unit": totals.unit,
        "base": totals.symbol,
    }


def totals_dict(totals: Totals) -> dict[str, Any]:
    """Totals over everything, and per meter."""
    return {
        **_meter_totals(totals, totals.all),
        "meters": {name: _meter_totals(totals, part) for name, part in sorted(totals.meters.items())},
    }
