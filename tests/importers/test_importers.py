"""Importers on samples shaped like each provider's published export; bad rows named by file, line, field."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from talktime.errors import InputError, StatementError
from talktime.importers import read_statement

FIXTURES = Path(__file__).parent.parent / "fixtures" / "statements"


def test_twilio_json_and_csv_read_the_same_calls() -> None:
    page = read_statement(FIXTURES / "twilio-calls.json").to_pylist()
    rows = read_statement(FIXTURES / "twilio-calls.csv").to_pylist()
    assert [r["id"] for r in page] == [r["id"] for r in rows]
    first = page[0]
    assert first["started_at"].isoformat() == "2026-10-14T09:00:05+00:00"
    assert first["duration_us"] == 80_000_000
    assert first["amount"] == Decimal("0.017")  # Twilio writes the charge negative
    assert page[2]["status"] == "unanswered"  # no-answer


def test_deepgram_requests_keep_channels_and_exact_duration() -> None:
    lines = read_statement(FIXTURES / "deepgram-requests.json").to_pylist()
    assert lines[0]["channels"] == 2
    assert lines[1]["duration_us"] == 31_004_625
    assert lines[1]["amount"] == Decimal("0.002222")


def test_assemblyai_failed_transcript_bills_nothing_and_times_are_utc() -> None:
    lines = read_statement(FIXTURES / "assemblyai-transcripts.json").to_pylist()
    assert lines[0]["duration_us"] == 281_000_000
    assert lines[0]["started_at"].isoformat() == "2026-10-14T09:10:00+00:00"
    assert lines[1]["status"] == "failed"


def test_generic_csv_with_mapping_reads_billed_minutes() -> None:
    lines = read_statement(FIXTURES / "generic.csv", mapping=FIXTURES / "generic.toml").to_pylist()
    assert [line["billed_us"] for line in lines] == [120_000_000, 60_000_000]


def test_bad_rows_name_file_line_field_and_why() -> None:
    with pytest.raises(StatementError) as caught:
        read_statement(FIXTURES / "twilio-calls-bad.csv")
    message = str(caught.value)
    assert "twilio-calls-bad.csv line 3: field 'start_time'" in message
    assert "RFC 2822" in message
    assert "line 4: field 'status': 'in-progress'" in message
    assert isinstance(caught.value, InputError)


def test_livekit_participants_csv(tmp_path: Path) -> None:
    path = tmp_path / "participants.csv"
    path.write_text(
        "sessionId,roomName,participantIdentity,joinedAt,leftAt\n"
        "RM_1,room-00,user,2026-10-14T09:00:00+00:00,2026-10-14T09:00:58+00:00\n"
        "RM_1,room-00,agent,2026-10-14T09:00:00.700+00:00,2026-10-14T09:00:58+00:00\n"
    )
    lines = read_statement(path).to_pylist()
    assert [line["duration_us"] for line in lines] == [58_000_000, 57_300_000]
    path.write_text("sessionId,joinedAt,leftAt\nRM_1,2026-10-14T09:00:00,2026-10-14T09:00:58+00:00\n")
    with pytest.raises(StatementError, match=r"line 2: field 'joinedAt'.*UTC offset"):
        read_statement(path)
