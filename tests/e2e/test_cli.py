"""The ``talktime`` command line, end to end: what a user types and what they get back (issue 2, section 6).

Expected numbers are worked out by hand from the policy in each test (see POLICY and CALLS below).
"""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from talktime.cli.main import app

runner = CliRunner()

# 6/6 up on answered time, per channel, legs and SIP counted, SIP on its own meter, results in minutes.
POLICY = """\
id = "six"
name = "Six-second blocks"
unit = "minute"
meter = "calls"

[[versions]]
effective_from = 2024-01-01
basis = "answered"
rounding = "up"
increment_seconds = 6
channels = "per_channel"
kinds = ["leg", "sip"]
meters = { sip = "sip" }
"""

# a: answered 47.3 s, stereo -> 6/6 up 48 s -> x2 channels = 96 s (1.6 min); the provider says 90 s.
# b: answered 7 s -> 12 s (0.2 min).   c: SIP, answered 61 s -> 66 s (1.1 min) on the "sip" meter.
# d: failed -> 0 s, actual 0 (never answered).
# Totals: 4 records, actual 47.3 + 7 + 61 + 0 = 115.3 s, reported 90 s, billable 174 s = 2.9 min;
# meter calls: 3 records, 54.3 s actual, 108 s billable (1.8 min); meter sip: 1 record, 61 s, 66 s (1.1 min).
CALLS = """\
id,customer,kind,status,started_at,answered_at,ended_at,channels,provider_reported_seconds
a,acme,leg,completed,2024-03-01T10:00:00Z,2024-03-01T10:00:05Z,2024-03-01T10:00:52.3Z,2,90
b,acme,leg,completed,2024-03-01T11:00:00Z,2024-03-01T11:00:03Z,2024-03-01T11:00:10Z,1,
c,beta,sip,completed,2024-03-01T12:00:00Z,2024-03-01T12:00:00Z,2024-03-01T12:01:01Z,1,
d,beta,leg,failed,2024-03-01T13:00:00Z,,2024-03-01T13:00:30Z,1,
"""
EXPECTED_BILLABLE = {"a": "96", "b": "12", "c": "66", "d": "0"}
EXPECTED_TOTALS = {
    "records": 4,
    "actual_seconds": "115.3",
    "provider_reported_seconds": "90",
    "billable_seconds": "174",
    "billable_quantity": "2.9",
    "unit": "minute",
}
EXPECTED_METERS = {
    "calls": {"records": 3, "actual_seconds": "54.3", "billable_seconds": "108", "billable_quantity": "1.8"},
    "sip": {"records": 1, "actual_seconds": "61", "billable_seconds": "66", "billable_quantity": "1.1"},
}
RECORD_KEYS = {
    "id", "actual_seconds", "provider_reported_seconds", "billable_seconds", "billable_quantity", "unit",
    "meter", "explain",
}  # fmt: skip
TOTAL_KEYS = {
    "records", "actual_seconds", "provider_reported_seconds", "billable_seconds", "billable_quantity", "unit",
    "meters",
}  # fmt: skip


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    policy = tmp_path / "six.toml"
    policy.write_text(POLICY)
    calls = tmp_path / "calls.csv"
    calls.write_text(CALLS)
    return calls, policy


def run(*args: str | Path) -> Any:
    result = runner.invoke(app, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def is_exact_decimal_string(value: object) -> bool:
    return isinstance(value, str) and re.fullmatch(r"-?\d+(\.\d+)?", value) is not None


def check_totals(totals: dict[str, Any]) -> None:
    assert set(totals) >= TOTAL_KEYS
    for key, expected in EXPECTED_TOTALS.items():
        assert totals[key] == expected, key
    assert set(totals["meters"]) == set(EXPECTED_METERS)
    for name, expected_meter in EXPECTED_METERS.items():
        for key, expected in expected_meter.items():
            assert totals["meters"][name][key] == expected, (name, key)
    for part in (totals, *totals["meters"].values()):
        for key in ("actual_seconds", "provider_reported_seconds", "billable_seconds", "billable_quantity"):
            assert is_exact_decimal_string(part[key]), (key, part[key])


# --- meter --------------------------------------------------------------------------------------------------


def test_meter_json_shape_and_numbers(files: tuple[Path, Path]) -> None:
    calls, policy = files
    result = run("meter", calls, "--policy", policy, "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) >= {"records", "totals"}
    records = data["records"]
    assert [r["id"] for r in records] == ["a", "b", "c", "d"]
    for r in records:
        assert set(r) >= RECORD_KEYS
        assert r["unit"] == "minute"
        assert isinstance(r["explain"], list)
        assert r["explain"]
        for key in ("actual_seconds", "billable_seconds", "billable_quantity"):
            assert is_exact_decimal_string(r[key]), (key, r[key])
    assert {r["id"]: r["billable_seconds"] for r in records} == EXPECTED_BILLABLE
    by_id = {r["id"]: r for r in records}
    assert by_id["a"]["actual_seconds"] == "47.3"
    assert by_id["a"]["provider_reported_seconds"] == "90"
    assert by_id["a"]["billable_quantity"] == "1.6"
    assert by_id["b"]["provider_reported_seconds"] is None
    assert by_id["c"]["meter"] == "sip"
    assert by_id["a"]["meter"] == "calls"
    assert [s["output_seconds"] for s in by_id["a"]["explain"]] == ["47.3", "48", "96"]
    assert "status failed" in by_id["d"]["explain"][-1]["rule"]
    check_totals(data["totals"])
    # Per-record billables add up to the totals, exactly.
    assert sum(Decimal(r["billable_seconds"]) for r in records) == Decimal(data["totals"]["billable_seconds"])


def test_meter_json_summary_leaves_out_records(files: tuple[Path, Path]) -> None:
    calls, policy = files
    result = run("meter", calls, "--policy", policy, "--format", "json", "--summary")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert "records" not in data
    assert set(data["totals"]) >= TOTAL_KEYS


def test_meter_json_summary_totals_are_the_real_totals(files: tuple[Path, Path]) -> None:
    calls, policy = files
    result = run("meter", calls, "--policy", policy, "--format", "json", "--summary")
    check_totals(json.loads(result.stdout)["totals"])


def test_meter_csv_has_one_row_per_record(files: tuple[Path, Path]) -> None:
    calls, policy = files
    result = run("meter", calls, "--policy", policy, "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert {r["id"]: r["billable_seconds"] for r in rows} == EXPECTED_BILLABLE
    a = next(r for r in rows if r["id"] == "a")
    assert a["actual_seconds"] == "47.3"
    assert a["billable_quantity"] == "1.6"
    assert a["unit"] == "minute"
    assert "6/6 up -> 48 s -> x2 channels -> 96 s" in a["explain"]
    assert next(r for r in rows if r["id"] == "b")["provider_reported_seconds"] == ""


def test_meter_csv_summary_is_one_row_per_meter_and_a_total(files: tuple[Path, Path]) -> None:
    calls, policy = files
    result = run("meter", calls, "--policy", policy, "--format", "csv", "--summary")
    assert result.exit_code == 0, result.output
    rows = {r["meter"]: r for r in csv.DictReader(io.StringIO(result.stdout))}
    assert set(rows) == {"calls", "sip", "TOTAL"}
    assert rows["TOTAL"]["records"] == "4"
    assert rows["TOTAL"]["billable_seconds"] == "174"
    assert rows["TOTAL"]["billable_quantity"] == "2.9"
    assert rows["TOTAL"]["actual_seconds"] == "115.3"
    assert rows["sip"]["billable_seconds"] == "66"
    assert rows["calls"]["billable_quantity"] == "1.8"


def test_meter_table_shows_records_and_totals(files: tuple[Path, Path]) -> None:
    calls, policy = files
    result = run("meter", calls, "--policy", policy)
    assert result.exit_code == 0, result.output
    out = result.stdout
    for record_id in "abcd":
        assert re.search(rf"^│ {record_id} ", out, re.MULTILINE), record_id
    all_row = next(line for line in out.splitlines() if line.startswith("│ all"))
    assert re.findall(r"[\d.]+", all_row) == [
        "4",
        "115.3",
        "90",
        "1",
        "4",
        "174",
        "2.9",
    ]  # 90 (1 of 4 records)


def test_meter_table_summary_has_totals_only(files: tuple[Path, Path]) -> None:
    calls, policy = files
    result = run("meter", calls, "--policy", policy, "--summary")
    assert result.exit_code == 0, result.output
    assert not re.search(r"^│ a ", result.stdout, re.MULTILINE)
    all_row = next(line for line in result.stdout.splitlines() if line.startswith("│ all"))
    assert re.findall(r"[\d.]+", all_row) == [
        "4",
        "115.3",
        "90",
        "1",
        "4",
        "174",
        "2.9",
    ]  # 90 (1 of 4 records)


@pytest.mark.parametrize("fmt", ["json", "csv", "table"])
def test_meter_out_writes_the_file_and_nothing_to_stdout(files: tuple[Path, Path], fmt: str) -> None:
    calls, policy = files
    out = calls.parent / "results" / f"out.{fmt}"
    result = run("meter", calls, "--policy", policy, "--format", fmt, "--out", out)
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert out.is_file()
    written = out.read_text()
    if fmt == "table":
        all_row = next(line for line in written.splitlines() if line.startswith("│ all"))
        assert re.findall(r"[\d.]+", all_row) == [
            "4",
            "115.3",
            "90",
            "1",
            "4",
            "174",
            "2.9",
        ]  # 90 (1 of 4 records)
    else:
        # The file holds exactly what standard output would have shown.
        assert written == run("meter", calls, "--policy", policy, "--format", fmt).stdout
    if fmt == "json":
        check_totals(json.loads(written)["totals"])
    assert [p.name for p in out.parent.iterdir()] == [out.name]


def test_meter_reads_jsonl_and_parquet_the_same(files: tuple[Path, Path]) -> None:
    from talktime.io.records_io import read_records, write_records

    calls, policy = files
    records = list(read_records(calls))
    for suffix in (".jsonl", ".parquet"):
        other = calls.with_suffix(suffix)
        write_records(other, records)
        result = run("meter", other, "--policy", policy, "--format", "json")
        assert result.exit_code == 0, result.output
        data = json.loads(result.stdout)
        assert {r["id"]: r["billable_seconds"] for r in data["records"]} == EXPECTED_BILLABLE
        check_totals(data["totals"])


def test_meter_with_the_builtin_twilio_profile(tmp_path: Path) -> None:
    # Twilio: each leg billed from answer, rounded up to the whole minute. 11 s -> 60 s, 96 s -> 120 s.
    calls = tmp_path / "legs.csv"
    calls.write_text(
        "id,kind,started_at,answered_at,ended_at\n"
        "l1,leg,2024-03-01T10:00:00Z,2024-03-01T10:00:05Z,2024-03-01T10:00:16Z\n"
        "l2,leg,2024-03-01T11:00:00Z,2024-03-01T11:00:04Z,2024-03-01T11:01:40Z\n"
    )
    result = run("meter", calls, "--policy", "twilio-voice", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert {r["id"]: (r["actual_seconds"], r["billable_seconds"]) for r in data["records"]} == {
        "l1": ("11", "60"),
        "l2": ("96", "120"),
    }
    assert data["totals"]["billable_quantity"] == "3"
    assert data["totals"]["unit"] == "minute"


# --- explain ------------------------------------------------------------------------------------------------


def test_explain_prints_one_records_trail(files: tuple[Path, Path]) -> None:
    calls, policy = files
    result = run("explain", calls, "--policy", policy, "--id", "a")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "record a" in out
    assert "answered" in out
    assert "6/6 up: 47.3 s -> 48 s" in out
    assert "x2 channels: 48 s -> 96 s" in out
    assert "billable 96 s = 1.6 minute" in out
    assert "provider-reported 90 s" in out
    assert "record b" not in out


def test_explain_failed_record_gives_the_reason(files: tuple[Path, Path]) -> None:
    calls, policy = files
    result = run("explain", calls, "--policy", policy, "--id", "d")
    assert result.exit_code == 0, result.output
    assert "status failed: not billed" in result.stdout
    assert "billable 0 s" in result.stdout


def test_explain_unknown_id_is_exit_2(files: tuple[Path, Path]) -> None:
    calls, policy = files
    result = run("explain", calls, "--policy", policy, "--id", "zz")
    assert result.exit_code == 2
    assert "'zz'" in result.stderr
    assert str(calls) in result.stderr


# --- bad input ----------------------------------------------------------------------------------------------


def one_error_line(result: Any) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    return str(lines[0])


@pytest.mark.parametrize(
    ("bad_row", "field"),
    [
        (
            "e,acme,leg,completed,2024-03-01T14:00:00Z,2024-03-01T14:00:05Z,2024-03-01T13:00:00Z,1,",
            "ended_at",
        ),
        ("e,acme,robot,completed,2024-03-01T14:00:00Z,,2024-03-01T14:01:00Z,1,", "kind"),
        ("e,acme,leg,completed,2024-03-01T14:00:00Z,,2024-03-01T14:01:00Z,0,", "channels"),
        ("e,acme,leg,completed,2024-03-01T14:00:00,,2024-03-01T14:01:00Z,1,", "started_at"),
        ("e,acme,leg,completed,2024-03-01T14:00:00Z,,2024-03-01T14:01:00Z,1,-5", "provider_reported_seconds"),
        ("e,acme,leg,completed,2024-03-01T14:00:00Z,,,1,", "ended_at"),
        ("e,acme,leg,done,2024-03-01T14:00:00Z,,2024-03-01T14:01:00Z,1,", "status"),
    ],
)
def test_bad_record_file_is_one_line_naming_file_line_and_field(
    files: tuple[Path, Path], bad_row: str, field: str
) -> None:
    calls, policy = files
    calls.write_text(CALLS + bad_row + "\n")
    line = one_error_line(run("meter", calls, "--policy", policy, "--format", "json"))
    assert f"{calls} line 6" in line
    assert "'e'" in line
    assert repr(field) in line


def test_record_error_found_while_metering_names_the_file_and_line(files: tuple[Path, Path]) -> None:
    # A completed leg without answered_at is valid as a record; the answered basis then needs the field.
    calls, policy = files
    calls.write_text(CALLS + "e,acme,leg,completed,2024-03-01T14:00:00Z,,2024-03-01T14:01:00Z,1,\n")
    line = one_error_line(run("meter", calls, "--policy", policy, "--format", "csv"))
    assert f"{calls} line 6" in line
    assert "'e'" in line
    assert "'answered_at'" in line


def test_duplicate_id_in_a_file_is_exit_2_naming_the_line(files: tuple[Path, Path]) -> None:
    calls, policy = files
    calls.write_text(CALLS + CALLS.splitlines()[2] + "\n")
    line = one_error_line(run("meter", calls, "--policy", policy, "--summary"))
    assert f"{calls} line 6" in line
    assert "'b'" in line
    assert "'id'" in line


def test_unknown_column_is_exit_2_naming_file_and_column(files: tuple[Path, Path]) -> None:
    calls, policy = files
    calls.write_text("id,started_at,ended_at,duration\nx,2024-03-01T10:00:00Z,2024-03-01T10:01:00Z,60\n")
    line = one_error_line(run("meter", calls, "--policy", policy))
    assert str(calls) in line
    assert "'duration'" in line


def test_record_before_the_policy_takes_effect_is_exit_2(files: tuple[Path, Path]) -> None:
    calls, policy = files
    calls.write_text(
        CALLS + "e,acme,leg,completed,2023-03-01T14:00:00Z,2023-03-01T14:00:00Z,2023-03-01T14:01:00Z,1,\n"
    )
    line = one_error_line(run("meter", calls, "--policy", policy, "--format", "json"))
    assert f"{calls} line 6" in line
    assert "'e'" in line
    assert "started_at" in line


def test_bad_policy_file_is_one_line_naming_file_and_key(files: tuple[Path, Path]) -> None:
    calls, policy = files
    policy.write_text(POLICY.replace('rounding = "up"', 'rounding = "sideways"\nincrement_secs = 6'))
    line = one_error_line(run("meter", calls, "--policy", policy))
    assert str(policy) in line
    assert "versions[0].rounding" in line
    assert "versions[0].increment_secs: unknown key" in line


def test_policy_with_invalid_toml_is_exit_2(files: tuple[Path, Path]) -> None:
    calls, policy = files
    policy.write_text("id = \n")
    line = one_error_line(run("meter", calls, "--policy", policy))
    assert str(policy) in line
    assert "TOML" in line


def test_unknown_policy_id_is_exit_2_listing_builtins(files: tuple[Path, Path]) -> None:
    calls, _ = files
    line = one_error_line(run("meter", calls, "--policy", "acme-telecom"))
    assert "acme-telecom" in line
    assert "twilio-voice" in line


def test_missing_input_file_is_exit_2(tmp_path: Path, files: tuple[Path, Path]) -> None:
    _, policy = files
    line = one_error_line(run("meter", tmp_path / "nope.csv", "--policy", policy))
    assert "nope.csv" in line


def test_unknown_input_extension_is_exit_2(tmp_path: Path, files: tuple[Path, Path]) -> None:
    _, policy = files
    path = tmp_path / "calls.xlsx"
    path.write_text("x")
    line = one_error_line(run("meter", path, "--policy", policy))
    assert ".xlsx" in line


@pytest.mark.parametrize("fmt", ["json", "csv", "table"])
def test_out_leaves_no_half_written_file_after_an_error(files: tuple[Path, Path], fmt: str) -> None:
    calls, policy = files
    calls.write_text(CALLS + "e,acme,leg,completed,2024-03-01T14:00:00Z,,2024-03-01T13:00:00Z,1,\n")
    out = calls.parent / "out" / "result.txt"
    result = run("meter", calls, "--policy", policy, "--format", fmt, "--out", out)
    assert result.exit_code == 2
    assert not out.exists()
    assert list(out.parent.iterdir()) == []


def test_out_keeps_the_previous_file_when_a_run_fails(files: tuple[Path, Path]) -> None:
    calls, policy = files
    out = calls.parent / "result.json"
    assert run("meter", calls, "--policy", policy, "--format", "json", "--out", out).exit_code == 0
    before = out.read_text()
    calls.write_text(CALLS + "e,acme,leg,completed,2024-03-01T14:00:00Z,,2024-03-01T13:00:00Z,1,\n")
    assert run("meter", calls, "--policy", policy, "--format", "json", "--out", out).exit_code == 2
    assert out.read_text() == before


# --- a real process -----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_python_dash_m_talktime_meter_in_a_subprocess(files: tuple[Path, Path]) -> None:
    calls, policy = files
    done = subprocess.run(
        [sys.executable, "-m", "talktime", "meter", str(calls), "--policy", str(policy), "--format", "json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert {r["id"]: r["billable_seconds"] for r in data["records"]} == EXPECTED_BILLABLE
    check_totals(data["totals"])


@pytest.mark.slow
def test_bad_input_in_a_subprocess_is_exit_2_and_one_stderr_line(files: tuple[Path, Path]) -> None:
    calls, policy = files
    calls.write_text(CALLS + "e,acme,leg,completed,2024-03-01T14:00:00Z,,2024-03-01T14:01:00Z,0,\n")
    done = subprocess.run(
        [sys.executable, "-m", "talktime", "meter", str(calls), "--policy", str(policy), "--summary"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"{calls} line 6" in lines[0]
    assert "'channels'" in lines[0]


def test_non_numeric_multiplier_attribute_is_exit_2(tmp_path: Path) -> None:
    policy = tmp_path / "mul.toml"
    policy.write_text(
        'id = "mul"\nname = "mul"\n[[versions]]\neffective_from = 2024-01-01\n'
        'multiplier = { field = "attr.tokens", per = 3500, above = 3500 }\n'
    )
    calls = tmp_path / "calls.csv"
    calls.write_text("id,started_at,ended_at,attr.tokens\na,2024-03-01T10:00:00Z,2024-03-01T10:00:52Z,lots\n")
    result = runner.invoke(app, ["meter", str(calls), "--policy", str(policy)])
    line = one_error_line(result)
    assert f"{calls} line 2" in line
    assert "'attr.tokens'" in line


# Three sessions under 30/30 down per session (30 s minimum): s1 (20 + 25 + 0 s answered) rounds 45 -> 30,
# the 15 s loss taken from its last billing record (a2: 25 -> 10); s2 (40 s) rounds down to 30; s3 (5 s)
# rounds down to 0, which no minimum lifts.
SESSION_POLICY = """\
id = "sessions"
name = "Thirty-second session blocks"
unit = "minute"

[[versions]]
effective_from = 2024-01-01
basis = "answered"
rounding = "down"
increment_seconds = 30
minimum_seconds = 30
scope = "session"
"""
SESSION_CALLS = """\
id,session,status,started_at,answered_at,ended_at
a1,s1,completed,2024-03-01T10:00:00Z,2024-03-01T10:00:00Z,2024-03-01T10:00:20Z
a2,s1,completed,2024-03-01T10:01:00Z,2024-03-01T10:01:00Z,2024-03-01T10:01:25Z
a3,s1,failed,2024-03-01T10:02:00Z,,2024-03-01T10:02:10Z
b1,s2,completed,2024-03-01T11:00:00Z,2024-03-01T11:00:00Z,2024-03-01T11:00:40Z
c1,s3,completed,2024-03-01T12:00:00Z,2024-03-01T12:00:00Z,2024-03-01T12:00:05Z
"""


@pytest.mark.parametrize("fmt", ["json", "csv", "table"])
def test_meter_default_engine_writes_what_the_reference_writes(tmp_path: Path, fmt: str) -> None:
    """DuckDB is the default; its per-record output, explain trails included, is the scalar meter's."""
    policy = tmp_path / "sessions.toml"
    policy.write_text(SESSION_POLICY)
    calls = tmp_path / "calls.csv"
    calls.write_text(SESSION_CALLS)
    default = run("meter", calls, "--policy", policy, "--format", fmt)
    reference = run("meter", calls, "--policy", policy, "--format", fmt, "--engine", "reference")
    assert default.exit_code == 0, default.output
    assert default.output == reference.output
    if fmt == "json":
        billable = {r["id"]: r["billable_seconds"] for r in json.loads(default.output)["records"]}
        assert billable == {"a1": "20", "a2": "10", "a3": "0", "b1": "30", "c1": "0"}
        assert all(len(r["explain"]) > 1 for r in json.loads(default.output)["records"])
