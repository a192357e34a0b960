"""An events file turned into records offline counts each event once, as the server does."""

from __future__ import annotations

import json
from pathlib import Path

from talktime.io.records_io import read_records
from talktime.proxy.records import main


def test_a_repeated_event_in_the_file_counts_once(tmp_path: Path) -> None:
    def event(event_id: str, event_type: str, time: str, data: dict[str, object]) -> str:
        return json.dumps(
            {"specversion": "1.0", "id": event_id, "source": "/capture", "type": event_type,
             "subject": "call-1", "time": time, "data": data}
        )  # fmt: skip

    lines = [
        event("e1", "talktime.connection.opened", "2026-10-01T10:00:00Z", {"kind": "tts"}),
        event("e2", "talktime.characters", "2026-10-01T10:00:05Z", {"characters": 32}),
        event("e2", "talktime.characters", "2026-10-01T10:00:05Z", {"characters": 32}),  # a resent batch
        event("e3", "talktime.connection.closed", "2026-10-01T10:00:09Z", {}),
    ]
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert main([str(events), str(tmp_path / "records.csv")]) == 0
    (record,) = read_records(tmp_path / "records.csv")
    assert record.characters == 32
