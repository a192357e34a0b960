"""Twilio calls: the REST list-calls JSON page (``{"calls": [...]}``) and a CSV with the same field names.

Fields read: ``sid`` (the id a record carries as ``attr.provider_id`` or as its id), ``start_time`` and
``end_time`` (RFC 2822, ``Tue, 10 Aug 2010 08:02:17 +0000``), ``duration`` (whole seconds, as a string),
``status``, ``price`` (a negative decimal string: a charge; null until Twilio has priced the call) and
``price_unit``. ``parent_call_sid`` and ``direction`` are not needed to reconcile and are ignored.
Calls still queued, ringing or in progress are an error: export once they have ended.
Twilio does not export billed minutes; they are derived from ``duration`` by the profile.
"""

from __future__ import annotations

import pyarrow as pa

from talktime.importers._text import csv_columns, load_json, raw_from_csv, text
from talktime.importers.base import Reading, normalize, raw_table

STATUSES = {
    "completed": "completed",
    "failed": "failed",
    "busy": "busy",
    "no-answer": "unanswered",
    "canceled": "canceled",
}
FIELDS = {"id": "sid", "started_at": "start_time", "ended_at": "end_time", "amount": "price"}
_CSV = {
    "id": ("sid",),
    "started_at": ("start_time",),
    "ended_at": ("end_time",),
    "duration": ("duration",),
    "status": ("status",),
    "amount": ("price",),
    "currency": ("price_unit",),
}


def _reading(where: str, json_page: bool) -> Reading:
    return Reading(
        where=(lambda n: f"{where} calls[{n}]") if json_page else (lambda n: f"{where} line {n}"),
        time_format="rfc2822",
        negate_amount=True,
        statuses=STATUSES,
        field_names=FIELDS,
    )


def read_json(data: bytes, where: str) -> pa.Table:
    """A list-calls JSON page (``calls``) as statement lines."""
    calls = load_json(data, where, "calls")
    rows = []
    for index, call in enumerate(calls):
        get = call.get if isinstance(call, dict) else (lambda _k: None)
        rows.append(
            {
                "line": str(index),
                "id": text(get("sid")),
                "started_at": text(get("start_time")),
                "ended_at": text(get("end_time")),
                "duration": text(get("duration")),
                "status": text(get("status")),
                "amount": text(get("price")),
                "currency": text(get("price_unit")),
            }
        )
    return normalize(raw_table(rows), _reading(where, json_page=True))


def read_csv(data: bytes, where: str) -> pa.Table:
    """A CSV whose columns are the list-calls field names, as statement lines."""
    return normalize(raw_from_csv(csv_columns(data, where), _CSV), _reading(where, json_page=False))
