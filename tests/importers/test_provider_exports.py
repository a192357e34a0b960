"""The exports users download: Twilio's console call log, Telnyx CDR reports, Plivo CDRs, Vonage call records;
each detected from its header or JSON shape, statuses in talktime's words, billed seconds where stated."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from talktime.errors import StatementError
from talktime.importers import detect, read_statement

FIXTURES = Path(__file__).parent.parent / "fixtures" / "statements"


@pytest.mark.parametrize(
    ("file", "source"),
    [
        ("twilio-console.csv", "twilio-csv"),
        ("twilio-calls.csv", "twilio-csv"),
        ("telnyx-cdr.csv", "telnyx-csv"),
        ("plivo-cdr.csv", "plivo-csv"),
        ("vonage-calls.json", "vonage-json"),
    ],
)
def test_each_export_is_detected(file: str, source: str) -> None:
    assert detect((FIXTURES / file).read_bytes(), file) == source


def test_twilio_console_csv_reads_without_a_mapping() -> None:
    lines = read_statement(FIXTURES / "twilio-console.csv").to_pylist()
    assert [line["status"] for line in lines] == ["completed"] * 3 + ["unanswered", "completed"]
    first = lines[0]
    assert first["started_at"].isoformat() == "2026-10-14T09:00:05+00:00"  # "2026-10-14 09:00:05 UTC"
    assert (first["duration_us"], first["amount"], first["currency"]) == (
        150_000_000,
        Decimal("0.0255"),
        "USD",
    )
    assert first["amount_places"] == 5
    no_answer = lines[3]  # never dialled: no start time (Date Created stands in), no duration
    assert no_answer["started_at"].isoformat() == "2026-10-14T11:00:00+00:00"
    assert no_answer["duration_us"] == 0


def test_twilio_console_bad_row_names_the_console_header(tmp_path: Path) -> None:
    path = tmp_path / "console.csv"
    text = (FIXTURES / "twilio-console.csv").read_text().replace("completed,-0.01700", "in-progress,-0.01700")
    path.write_text(text)
    with pytest.raises(StatementError, match=r"console.csv line 3: field 'Status': 'in-progress' is not"):
        read_statement(path)


def test_telnyx_cdr_keeps_billed_seconds_and_maps_hangup_causes() -> None:
    lines = read_statement(FIXTURES / "telnyx-cdr.csv").to_pylist()
    assert [line["billed_us"] for line in lines] == [120_000_000, 0, 0]
    assert [line["status"] for line in lines] == ["completed", "busy", "canceled"]
    assert lines[0]["started_at"].isoformat() == "2026-10-14T09:00:05+00:00"  # the _utc column, no offset


def test_plivo_cdr_billed_duration_and_local_offsets() -> None:
    lines = read_statement(FIXTURES / "plivo-cdr.csv").to_pylist()
    assert (lines[0]["duration_us"], lines[0]["billed_us"]) == (47_000_000, 60_000_000)
    assert lines[0]["started_at"].isoformat() == "2026-10-14T09:00:05+00:00"  # answer_time at +05:30
    assert lines[1]["status"] == "unanswered"  # NO ANSWER
    assert lines[1]["started_at"].isoformat() == "2026-10-14T09:09:55+00:00"  # never answered: initiation


def test_plivo_json_page_reads_the_same_fields(tmp_path: Path) -> None:
    path = tmp_path / "calls.json"
    path.write_text(
        '{"api_id": "x", "meta": {"limit": 20}, "objects": [{"call_uuid": "u1", "answer_time": '
        '"2026-10-14 14:30:05+05:30", "end_time": "2026-10-14 14:30:52+05:30", "call_duration": 47, '
        '"bill_duration": 47, "billed_duration": 60, "total_amount": "0.00750", "call_state": "ANSWER"}]}'
    )
    [line] = read_statement(path).to_pylist()
    assert (line["id"], line["billed_us"], line["amount"]) == ("u1", 60_000_000, Decimal("0.0075"))


def test_vonage_calls_page_keeps_the_price_as_written() -> None:
    lines = read_statement(FIXTURES / "vonage-calls.json").to_pylist()
    assert lines[0]["amount"] == Decimal("0.01693333") and lines[0]["amount_places"] == 8
    assert [line["status"] for line in lines] == ["completed", "unanswered"]


def test_vonage_call_in_progress_is_refused_by_field(tmp_path: Path) -> None:
    path = tmp_path / "vonage.json"
    path.write_text((FIXTURES / "vonage-calls.json").read_text().replace('"unanswered"', '"ringing"'))
    with pytest.raises(
        StatementError, match=r"_embedded.calls\[1\]: field 'status': 'ringing' is not a finished"
    ):
        read_statement(path)


def test_generic_mapping_knows_provider_words_and_its_own(tmp_path: Path) -> None:
    mapping = tmp_path / "map.toml"
    mapping.write_text(
        '[columns]\nid = "Call"\nstart = "Start"\nduration = "Secs"\nstatus = "Outcome"\n'
        '[units]\nnaive_utc = true\n[statuses]\n"Hung up" = "completed"\n'
    )
    path = tmp_path / "usage.csv"
    path.write_text(
        "Call,Start,Secs,Outcome\n"
        "a,2026-10-14 09:00:00,10,Hung up\n"
        "b,2026-10-14 09:05:00,0,no-answer\n"
        "c,2026-10-14 09:06:00,0,Cancelled\n"
    )
    lines = read_statement(path, mapping=mapping).to_pylist()
    assert [line["status"] for line in lines] == ["completed", "unanswered", "canceled"]
    mapping.write_text('[columns]\nstart = "Start"\n[statuses]\n"Hung up" = "done"\n')
    with pytest.raises(StatementError, match=r"statuses.Hung up: 'done' is not one of"):
        read_statement(path, mapping=mapping)


def test_an_unknown_header_points_at_the_mapping(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(
        StatementError, match=r"not a known export .*--mapping TOML file \(docs/reconcile.md\)"
    ):
        read_statement(path)
