"""A last audio before the first audio is a contradiction sessionize keeps and flags (it used to make an
invalid record, which failed every read of the tenant and now would fail the batch that stores it)."""

from __future__ import annotations

from datetime import UTC, datetime

from support.events import event
from talktime.ingest.events import validate_event
from talktime.ingest.sessionize import sessionize


def test_last_audio_before_first_audio_is_flagged_and_spans_both() -> None:
    raw = [
        event("talktime.connection.opened", "call-1", "2025-03-01T10:00:00Z"),
        event("talktime.audio.first", "call-1", "2025-03-01T10:00:30Z"),
        event("talktime.audio.last", "call-1", "2025-03-01T10:00:10Z"),
        event("talktime.connection.closed", "call-1", "2025-03-01T10:01:00Z"),
    ]
    typed = [validate_event(item).event for item in raw]
    (found,) = sessionize([e for e in typed if e is not None], as_of=datetime(2025, 3, 2, tzinfo=UTC))
    assert found.record.first_audio_at == datetime(2025, 3, 1, 10, 0, 10, tzinfo=UTC)
    assert found.record.last_audio_at == datetime(2025, 3, 1, 10, 0, 30, tzinfo=UTC)
    assert any("last audio" in flag and "before first audio" in flag for flag in found.flags)
