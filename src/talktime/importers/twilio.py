"""Twilio calls: the REST list-calls JSON page (``{"calls": [...]}``), and the CSV of calls, in either header
style: the API's field names (``sid, start_time, end_time, duration, status, price, price_unit``) or the
console's call-log export (``Call Sid, Date Created, Start Time, End Time, Duration, Price, Price Unit,
Status, Direction, From, To``; headers compared without case, spaces or underscores).

Times: RFC 2822 (``Tue, 10 Aug 2010 08:02:17 +0000``, the API) or ISO 8601 with an offset or a trailing
``UTC`` (exports). A call never dialled has no start time: ``Date Created`` stands in. ``duration`` is whole
seconds; a call that did not complete (busy, failed, no-answer, canceled) may leave it empty: 0.
``price`` is what Twilio charged: the API writes it negative, exports either way, so its magnitude is read;
null until Twilio has priced the call. ``price_unit`` is the currency. Calls still queued, ringing or in
progress are an error: export once they have ended. Twilio does not export billed minutes; they are derived
from ``duration`` by the profile. ``parent_call_sid``, ``direction``, ``from`` and ``to`` are not needed.
"""

from __future__ import annotations

import pyarrow as pa

from talktime.importers._text import csv_columns, load_json, raw_from_csv, rows_from_json
from talktime.importers.base import Reading, normalize, raw_table

#: Twilio's call statuses (``queued``, ``ringing``, ``in-progress`` are not finished: refused).
STATUSES = {
    "completed": "completed",
    "failed": "failed",
    "busy": "busy",
    "no-answer": "unanswered",
    "no answer": "unanswered",
    "canceled": "canceled",
}
FIELDS = {"id": "sid", "started_at": "start_time", "ended_at": "end_time", "amount": "price"}
COLUMNS = {
    "id": ("sid", "Call Sid"),
    "started_at": ("start_time", "Start Time", "date_created", "Date Created"),
    "ended_at": ("end_time", "End Time"),
    "duration": ("duration", "Duration"),
    "status": ("status", "Status"),
    "amount": ("price", "Price"),
    "currency": ("price_unit", "Price Unit"),
}


def _reading(where: str, json_page: bool) -> Reading:
    return Reading(
        where=(lambda n: f"{where} calls[{n}]") if json_page else (lambda n: f"{where} line {n}"),
        time_format="rfc2822" if json_page else "either",
        absolute_amount=True,
        statuses=STATUSES,
        field_names=FIELDS,
    )


def read_json(data: bytes, where: str) -> pa.Table:
    """A list-calls JSON page (``calls``) as statement lines."""
    fields = {raw: tuple(n for n in names if n.islower()) for raw, names in COLUMNS.items()}
    rows = rows_from_json(load_json(data, where, "calls"), fields)
    return normalize(raw_table(rows), _reading(where, json_page=True))


def read_csv(data: bytes, where: str) -> pa.Table:
    """A CSV of calls (API field names or the console's headers) as statement lines."""
    table = csv_columns(data, where)
    reading = _reading(where, json_page=False)
    names = {n.lower(): n for n in table.column_names}
    if "call sid" in names:  # the console's headers name the fields in errors
        reading = Reading(
            where=reading.where,
            time_format=reading.time_format,
            absolute_amount=True,
            statuses=STATUSES,
            field_names={
                "id": "Call Sid",
                "started_at": "Start Time",
                "ended_at": "End Time",
                "duration": "Duration",
                "status": "Status",
                "amount": "Price",
            },
        )
    return normalize(raw_from_csv(table, COLUMNS), reading)
