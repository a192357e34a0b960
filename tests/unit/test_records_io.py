"""Records IO: the same records through CSV, JSON Lines and Parquet, exact numbers, and bad rows located."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from talktime.core.records import UsageRecord, parse_record
from talktime.errors import InputError, RecordError
from talktime.io.records_io import count_hint, file_format, read_records, write_records

RECORDS = [
    parse_record(
        {
            "id": "full",
            "customer": "acme",
            "provider": "twilio",
            "product": "voice",
            "session": "s1",
            "kind": "leg",
            "status": "completed",
            "started_at": "2024-03-01T10:00:00+00:00",
            "ended_at": "2024-03-01T10:00:52.300000+00:00",
            "answered_at": "2024-03-01T10:00:05+00:00",
            "first_audio_at": "2024-03-01T10:00:06.125+00:00",
            "last_audio_at": "2024-03-01T10:00:50+00:00",
            "audio_seconds": "0.1",
            "speech_seconds": "30.000001",
            "channels": "2",
            "provider_reported_seconds": "60",
            "characters": "1200",
            "input_tokens": "4000",
            "output_tokens": "17",
            "attr.region": "eu",
            "attr.note": 'hello, "world"',
        }
    ),
    parse_record(
        {
            "id": "minimal",
            "started_at": "2024-03-01T12:00:00+02:00",
            "ended_at": "2024-03-01T12:00:01+02:00",
            "attr.region": "us",
        }
    ),
    parse_record({"id": "failed-no-end", "status": "failed", "started_at": "2024-03-02T00:00:00+00:00"}),
    parse_record({"id": "open", "status": "open", "kind": "stream", "started_at": "2024-03-02T00:00:00Z"}),
]


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".ndjson", ".parquet"])
def test_round_trip_keeps_every_field(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"records{suffix}"
    assert write_records(path, RECORDS) == len(RECORDS)
    back = list(read_records(path))
    assert back == RECORDS
    assert [r.id for r in back] == [r.id for r in RECORDS]


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_attr_columns_survive(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"records{suffix}"
    write_records(path, RECORDS)
    back = {r.id: r.attrs for r in read_records(path)}
    assert back["full"] == {"region": "eu", "note": 'hello, "world"'}
    assert back["minimal"] == {"region": "us"}
    assert back["open"] == {}


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_decimals_stay_exact_through_every_format(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"records{suffix}"
    write_records(path, RECORDS)
    full = next(r for r in read_records(path) if r.id == "full")
    assert full.audio_seconds == Decimal("0.1")
    assert full.speech_seconds == Decimal("30.000001")
    assert isinstance(full.audio_seconds, Decimal)


def test_the_same_records_read_the_same_from_all_three_formats(tmp_path: Path) -> None:
    reads = []
    for suffix in (".csv", ".jsonl", ".parquet"):
        path = tmp_path / f"r{suffix}"
        write_records(path, RECORDS)
        reads.append(list(read_records(path)))
    assert reads[0] == reads[1] == reads[2]


def test_json_numbers_stay_exact(tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    line = (
        '{"id": "a", "started_at": "2024-01-01T00:00:00Z", "ended_at": "2024-01-01T00:01:00Z", '
        '"audio_seconds": 0.1, "speech_seconds": 12345678.123456789, "provider_reported_seconds": 60, '
        '"channels": 2}\n'
    )
    path.write_text(line)
    (record,) = read_records(path)
    assert record.audio_seconds == Decimal("0.1")
    assert str(record.audio_seconds) == "0.1"
    assert record.speech_seconds == Decimal("12345678.123456789")
    assert record.provider_reported_seconds == 60
    assert record.channels == 2


def test_jsonl_skips_blank_lines_and_accepts_nested_attrs(tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    rows = [
        {
            "id": "a",
            "started_at": "2024-01-01T00:00:00Z",
            "ended_at": "2024-01-01T00:01:00Z",
            "attrs": {"x": "1"},
        },
        {"id": "b", "started_at": "2024-01-01T00:00:00Z", "ended_at": "2024-01-01T00:01:00Z", "attr.y": "2"},
    ]
    path.write_text(json.dumps(rows[0]) + "\n\n" + json.dumps(rows[1]) + "\n")
    assert [r.attrs for r in read_records(path)] == [{"x": "1"}, {"y": "2"}]


def test_parquet_double_column_is_read_through_its_shortest_text(tmp_path: Path) -> None:
    path = tmp_path / "doubles.parquet"
    table = pa.table(
        {
            "id": ["a"],
            "started_at": ["2024-01-01T00:00:00+00:00"],
            "ended_at": ["2024-01-01T00:01:00+00:00"],
            "audio_seconds": pa.array([0.1], type=pa.float64()),
        }
    )
    pq.write_table(table, path)
    (record,) = read_records(path)
    assert record.audio_seconds == Decimal("0.1")


def test_count_hint_reads_parquet_metadata(tmp_path: Path) -> None:
    path = tmp_path / "r.parquet"
    write_records(path, RECORDS)
    assert count_hint(path) == len(RECORDS)
    csv_path = tmp_path / "r.csv"
    write_records(csv_path, RECORDS)
    assert count_hint(csv_path) is None


def test_reading_streams_records_lazily(tmp_path: Path) -> None:
    # The first record arrives before a bad row further down is reached.
    path = tmp_path / "calls.csv"
    path.write_text(
        "id,started_at,ended_at\n"
        "a,2024-01-01T00:00:00Z,2024-01-01T00:01:00Z\n"
        "b,2024-01-01T00:00:00Z,2023-01-01T00:01:00Z\n"
    )
    records = read_records(path)
    assert next(records).id == "a"
    with pytest.raises(RecordError):
        next(records)


# --- bad files ----------------------------------------------------------------------------------------------


def test_bad_csv_row_names_file_line_record_and_field(tmp_path: Path) -> None:
    path = tmp_path / "calls.csv"
    path.write_text(
        "id,started_at,ended_at,channels\n"
        "a,2024-01-01T00:00:00Z,2024-01-01T00:01:00Z,1\n"
        "b,2024-01-01T00:00:00Z,2024-01-01T00:01:00Z,0\n"
    )
    with pytest.raises(RecordError) as caught:
        list(read_records(path))
    message = str(caught.value)
    assert f"{path} line 3" in message
    assert "'b'" in message
    assert "'channels'" in message
    assert caught.value.field == "channels"
    assert isinstance(caught.value, ValueError)


def test_bad_jsonl_line_names_file_line_record_and_field(tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    good = {"id": "a", "started_at": "2024-01-01T00:00:00Z", "ended_at": "2024-01-01T00:01:00Z"}
    bad = {**good, "id": "b", "ended_at": "2024-01-01T00:01:00"}
    path.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(RecordError) as caught:
        list(read_records(path))
    message = str(caught.value)
    assert f"{path} line 2" in message
    assert "'b'" in message
    assert "'ended_at'" in message
    assert "offset" in message


def test_invalid_json_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    path.write_text('{"id": "a"\n')
    with pytest.raises(RecordError, match="line 1") as caught:
        list(read_records(path))
    assert str(path) in str(caught.value)
    assert "JSON" in str(caught.value)


def test_bad_parquet_row_names_file_row_record_and_field(tmp_path: Path) -> None:
    path = tmp_path / "calls.parquet"
    table = pa.table(
        {
            "id": ["a", "b"],
            "started_at": ["2024-01-01T00:00:00+00:00", "2024-01-01T00:00:00+00:00"],
            "ended_at": ["2024-01-01T00:01:00+00:00", "2024-01-01T00:01:00+00:00"],
            "kind": ["leg", "robot"],
        }
    )
    pq.write_table(table, path)
    with pytest.raises(RecordError) as caught:
        list(read_records(path))
    message = str(caught.value)
    assert f"{path} row 2" in message
    assert "'b'" in message
    assert "'kind'" in message


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_unknown_column_is_named_with_the_file(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"calls{suffix}"
    table = pa.table(
        {
            "id": ["a"],
            "started_at": ["2024-01-01T00:00:00+00:00"],
            "ended_at": ["2024-01-01T00:01:00+00:00"],
            "duration": ["60"],
        }
    )
    if suffix == ".csv":
        path.write_text("id,started_at,ended_at,duration\na,2024-01-01T00:00:00Z,2024-01-01T00:01:00Z,60\n")
    else:
        pq.write_table(table, path)
    with pytest.raises(RecordError) as caught:
        list(read_records(path))
    assert caught.value.field == "duration"
    assert str(path) in str(caught.value)
    assert "attr." in str(caught.value)


def test_unknown_key_in_jsonl_names_file_line_record_and_key(tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    path.write_text(
        json.dumps(
            {"id": "a", "started_at": "2024-01-01T00:00:00Z", "ended_at": "2024-01-01T00:01:00Z", "dur": 1}
        )
        + "\n"
    )
    with pytest.raises(RecordError) as caught:
        list(read_records(path))
    assert f"{path} line 1" in str(caught.value)
    assert "'a'" in str(caught.value)
    assert caught.value.field == "dur"


def test_csv_row_with_more_cells_than_columns_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "calls.csv"
    path.write_text("id,started_at,ended_at\na,2024-01-01T00:00:00Z,2024-01-01T00:01:00Z,extra\n")
    with pytest.raises(RecordError, match="line 2"):
        list(read_records(path))


def test_unknown_extension_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        file_format(tmp_path / "calls.xlsx")
    assert ".csv" in str(caught.value)
    assert ".parquet" in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        read_records(tmp_path / "nope.csv")


def test_empty_csv_has_no_records(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("")
    assert list(read_records(path)) == []
    write_records(path, [])
    assert list(read_records(path)) == []


def test_written_record_types_are_usage_records(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    write_records(path, RECORDS)
    assert all(isinstance(r, UsageRecord) for r in read_records(path))


def test_csv_with_a_byte_order_mark_reads(tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes(b"\xef\xbb\xbfid,started_at,ended_at\r\na,2024-01-01T00:00:00Z,2024-01-01T00:01:00Z\r\n")
    assert [r.id for r in read_records(path)] == ["a"]
