"""Vonage Voice API call records: the list-calls JSON page (``GET /v1/calls``:
``{"_embedded": {"calls": [...]}}``) and a CSV with the same field names (a call-records export).

Fields: ``uuid``, ``start_time`` and ``end_time`` (ISO 8601, ``2026-10-14T09:00:05.000Z``), ``duration``
(seconds, as a string), ``status``, ``price`` (the charge) and ``rate`` (per minute; not read: the rate is
the cost card's, or inferred), ``currency`` when the export has it (the call object has none: the account's
currency). Calls still ``started``, ``ringing`` or ``answered`` are an error: export once they have ended.
Vonage bills per second from answer, so billed seconds are derived by the profile.
"""

from __future__ import annotations

import pyarrow as pa

from talktime.importers._text import csv_columns, load_json, raw_from_csv, rows_from_json
from talktime.importers.base import Reading, normalize, raw_table

COLUMNS = {
    "id": ("uuid",),
    "started_at": ("start_time",),
    "ended_at": ("end_time",),
    "duration": ("duration",),
    "status": ("status",),
    "amount": ("price",),
    "currency": ("currency", "price_unit"),
}
#: Vonage's final call statuses in talktime's words (``machine``: answered by a machine, billed as answered).
STATUSES = {
    "completed": "completed",
    "machine": "completed",
    "busy": "busy",
    "cancelled": "canceled",
    "failed": "failed",
    "rejected": "failed",
    "timeout": "unanswered",
    "unanswered": "unanswered",
}


def _reading(where: str, json_page: bool) -> Reading:
    return Reading(
        where=(lambda n: f"{where} _embedded.calls[{n}]") if json_page else (lambda n: f"{where} line {n}"),
        statuses=STATUSES,
        field_names={"started_at": "start_time", "ended_at": "end_time", "amount": "price", "id": "uuid"},
    )


def read_csv(data: bytes, where: str) -> pa.Table:
    """A CSV of call records as statement lines."""
    return normalize(raw_from_csv(csv_columns(data, where), COLUMNS), _reading(where, json_page=False))


def read_json(data: bytes, where: str) -> pa.Table:
    """A list-calls JSON page as statement lines."""
    calls = load_json(data, where, "_embedded.calls")
    rows = rows_from_json(calls, COLUMNS)
    return normalize(raw_table(rows), _reading(where, json_page=True))
