"""Plivo voice CDRs: the call-detail-record CSV (console: Logs, Voice, export) and the list-calls JSON page
(``GET /v1/Account/{auth_id}/Call/``: ``{"meta": ..., "objects": [...]}``), one row per call leg.

Fields (the call object's names): ``call_uuid``, ``answer_time`` (else ``initiation_time`` for a call never
answered), ``end_time`` (``2015-02-08 14:14:20+05:30``: the account's zone, with its offset),
``call_duration`` (seconds), ``billed_duration`` (seconds Plivo billed, rounded to the billing interval:
47 -> 60), ``total_amount`` (the charge), ``currency`` when given, and how it ended (``call_state``, else
``hangup_cause_name``). ``bill_duration`` (seconds from answer, before rounding) is the duration when
``call_duration`` is missing.
"""

from __future__ import annotations

import pyarrow as pa

from talktime.importers._text import csv_columns, load_json, raw_from_csv, rows_from_json
from talktime.importers.base import COMMON_STATUSES, Reading, normalize, raw_table

COLUMNS = {
    "id": ("call_uuid",),
    "started_at": ("answer_time", "initiation_time"),
    "ended_at": ("end_time",),
    "duration": ("call_duration", "bill_duration"),
    "billed": ("billed_duration",),
    "status": ("call_state", "hangup_cause_name"),
    "amount": ("total_amount",),
    "currency": ("currency",),
}
#: Plivo call states and hangup cause names, in talktime's words.
STATUSES = {
    **COMMON_STATUSES,
    "normal hangup": "completed",
    "end of xml instructions": "completed",
    "busy line": "busy",
    "no answer": "unanswered",
    "ring timeout reached": "unanswered",
    "canceled": "canceled",
    "cancelled": "canceled",
    "rejected": "failed",
    "unknown": "failed",
}
FIELD_NAMES = {
    "started_at": "answer_time",
    "ended_at": "end_time",
    "duration": "call_duration",
    "billed": "billed_duration",
    "status": "call_state",
    "amount": "total_amount",
    "id": "call_uuid",
}


def _reading(where: str, json_page: bool) -> Reading:
    return Reading(
        where=(lambda n: f"{where} objects[{n}]") if json_page else (lambda n: f"{where} line {n}"),
        statuses=STATUSES,
        field_names=FIELD_NAMES,
    )


def read_csv(data: bytes, where: str) -> pa.Table:
    """A CDR CSV as statement lines."""
    return normalize(raw_from_csv(csv_columns(data, where), COLUMNS), _reading(where, json_page=False))


def read_json(data: bytes, where: str) -> pa.Table:
    """A list-calls JSON page (``objects``) as statement lines."""
    rows = rows_from_json(load_json(data, where, "objects"), COLUMNS)
    return normalize(raw_table(rows), _reading(where, json_page=True))
