"""Telnyx voice CDRs: the CSV of a detail-record report (Mission Control's Reporting, or
``/legacy/reporting/batch_detail_records/voice``), one row per call leg.

Fields are those the report API lists (``/batch_detail_records/voice/fields``): an id (``call_leg_id``,
else ``call_session_id``, ``uuid`` or ``sip_call_id``), ``start_timestamp_utc`` (else ``start_timestamp``,
``answer_timestamp``), ``end_timestamp``, the leg's seconds (``call_sec``, else ``duration_sec``), what Telnyx
billed (``billable_time``, else ``billed_sec``, in seconds: the increments already applied), ``cost`` and
``currency``, and how it ended (``hangup_cause``, else ``status``). Times without an offset are UTC: request
the report in UTC (its default). Billed seconds are compared as Telnyx states them.
"""

from __future__ import annotations

import pyarrow as pa

from talktime.importers._text import csv_columns, raw_from_csv
from talktime.importers.base import COMMON_STATUSES, Reading, normalize

COLUMNS = {
    "id": ("call_leg_id", "call_session_id", "uuid", "sip_call_id", "id"),
    "started_at": ("start_timestamp_utc", "start_timestamp", "answer_timestamp", "start_time"),
    "ended_at": ("end_timestamp_utc", "end_timestamp", "end_time"),
    "duration": ("call_sec", "duration_sec", "duration"),
    "billed": ("billable_time", "billed_sec", "billsec"),
    "status": ("hangup_cause", "status"),
    "amount": ("cost",),
    "currency": ("currency",),
}
#: Telnyx hangup causes (call.hangup's ``hangup_cause``), in talktime's words.
STATUSES = {
    **COMMON_STATUSES,
    "normal_clearing": "completed",
    "time_limit": "completed",
    "user_busy": "busy",
    "no_answer": "unanswered",
    "timeout": "unanswered",
    "originator_cancel": "canceled",
    "call_rejected": "failed",
    "not_found": "failed",
    "unallocated_number": "failed",
    "destination_out_of_order": "failed",
    "unspecified": "failed",
}


def read_csv(data: bytes, where: str) -> pa.Table:
    """A CDR report CSV as statement lines."""
    table = csv_columns(data, where)
    reading = Reading(
        where=lambda n: f"{where} line {n}",
        naive_utc=True,
        statuses=STATUSES,
        field_names={
            "started_at": "start_timestamp_utc",
            "ended_at": "end_timestamp",
            "duration": "call_sec",
            "billed": "billable_time",
            "status": "hangup_cause",
            "amount": "cost",
        },
    )
    return normalize(raw_from_csv(table, COLUMNS), reading)
