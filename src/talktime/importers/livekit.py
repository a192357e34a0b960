"""LiveKit Cloud sessions/participants export (CSV): one row per participant connection.

LiveKit publishes no CSV layout; the columns follow the field names of its Analytics API
(``/api/project/{id}/sessions/{session}``: ``participantIdentity``, ``joinedAt``, ``leftAt`` per participant),
in either camelCase or snake_case: ``sessionId``/``session_id``, ``roomName``/``room_name``,
``participantIdentity``/``participant_identity``, ``participantSid``/``participant_sid`` (optional id),
``joinedAt``/``joined_at``, ``leftAt``/``left_at`` (ISO 8601 with offset). Billed minutes are not in the
export: the profile derives them from each connection's join and leave times (each rounded up on its own).
"""

from __future__ import annotations

import pyarrow as pa

from talktime.importers._text import csv_columns, raw_from_csv
from talktime.importers.base import Reading, normalize

_CSV = {
    "id": ("participantSid", "participant_sid", "participantId", "participant_id"),
    "started_at": ("joinedAt", "joined_at"),
    "ended_at": ("leftAt", "left_at"),
    "duration": ("durationSeconds", "duration_seconds"),
}


def read_csv(data: bytes, where: str) -> pa.Table:
    """Participant rows as statement lines (duration = leave - join unless a duration column is given)."""
    table = csv_columns(data, where)
    reading = Reading(
        where=lambda n: f"{where} line {n}",
        field_names={"started_at": "joinedAt", "ended_at": "leftAt", "duration": "durationSeconds"},
    )
    return normalize(raw_from_csv(table, _CSV), reading)
