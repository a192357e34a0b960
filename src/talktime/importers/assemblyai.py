"""AssemblyAI transcript list JSON: ``{"transcripts": [{"id", "status", "created", "audio_duration", ...}]}``.

``audio_duration`` is whole seconds (the transcript field). The list endpoint (``GET /v2/transcript``)
returns ``id, status, created, completed, audio_url`` per item; ``audio_duration`` comes from each transcript
(``GET /v2/transcript/{id}``), so the export this reads is the list with each item's
``audio_duration`` merged in. A completed transcript without it is an error. ``created`` carries no
offset in AssemblyAI's API; it is UTC. Statuses: ``completed``, ``error`` (failed, not billed);
``queued`` and ``processing`` are an error (export once finished).
"""

from __future__ import annotations

import pyarrow as pa

from talktime.importers._text import MICRO, load_json, text, utc_if_naive
from talktime.importers.base import Reading, normalize, raw_table

STATUSES = {"completed": "completed", "error": "failed"}


def read_json(data: bytes, where: str) -> pa.Table:
    """Transcripts as statement lines (one per transcript id)."""
    rows = []
    for index, transcript in enumerate(load_json(data, where, "transcripts")):
        item = transcript if isinstance(transcript, dict) else {}
        created = utc_if_naive(text(item.get("created")))
        status = text(item.get("status"))
        duration = text(item.get("audio_duration"), MICRO)
        if duration is None and status == "error":
            duration = "0"
        rows.append(
            {
                "line": str(index),
                "id": text(item.get("id")),
                "started_at": created,
                "duration": duration,
                "status": status,
            }
        )
    reading = Reading(
        where=lambda n: f"{where} transcripts[{n}]",
        statuses=STATUSES,
        field_names={"started_at": "created", "duration": "audio_duration"},
    )
    return normalize(raw_table(rows), reading)
