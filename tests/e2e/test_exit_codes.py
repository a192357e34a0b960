"""The exit codes docs/cli.md documents, command by command: 0 done, 1 differences found (reconcile), 2 bad
input (one ``talktime: error:`` line on stderr, or Click's usage message for a malformed command line)."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from talktime.cli.main import app
from talktime.core.records import UsageRecord
from talktime.io.records_io import write_records

EXAMPLES = Path(__file__).parents[2] / "examples" / "records.csv"
STATEMENTS = Path(__file__).parents[1] / "fixtures" / "statements"
# Prices Twilio legs only: every other record of the example matches no entry. The closest entry to the
# Deepgram stream is the Deepgram one, which takes batch jobs only.
COSTS = """\
kind = "cost"
name = "legs only"
currency = "USD"
[costs.twilio-voice]
match = { provider = "twilio", kind = ["leg"] }
[[costs.twilio-voice.versions]]
effective_from = 2021-07-08
model = "per_unit"
unit_price = "0.0085"
[costs.deepgram-prerecorded]
match = { provider = "deepgram", kind = ["batch"] }
[[costs.deepgram-prerecorded.versions]]
effective_from = 2020-01-01
model = "per_unit"
unit_price = "0.0043"
"""


def run(*args: object) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args])


def one_error_line(result: Result) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("talktime: error: "), result.stderr
    return lines[0]


def test_a_run_that_does_its_work_is_0() -> None:
    assert run("meter", EXAMPLES, "--policy", "twilio-voice", "--summary").exit_code == 0


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(("meter", EXAMPLES, "--policy", "nosuch"), id="meter unknown policy"),
        pytest.param(("explain", EXAMPLES, "--policy", "twilio-voice", "--id", "nope"), id="explain no id"),
        pytest.param(("policies", "show", "nosuch.toml"), id="policies show"),
        pytest.param(("simulate", "--policies", "twilio-voice", "--distribution", "fixed:45"), id="simulate"),
        pytest.param(("compare", "--from", "twilio-voice", "--to", "telnyx-voice"), id="compare"),
        pytest.param(
            ("proxy", "--upstream", "wss://x", "--events", "e.jsonl", "--listen", "bad"), id="proxy"
        ),
    ],
)
def test_bad_input_is_2_and_one_error_line(args: tuple[object, ...]) -> None:
    one_error_line(run(*args))


def test_a_bad_policy_file_is_2_naming_the_key(tmp_path: Path) -> None:
    policy = tmp_path / "p.toml"
    policy.write_text('id = "p"\nname = "p"\n[[versions]]\neffective_from = 2024-01-01\nrounding = "upp"\n')
    line = one_error_line(run("meter", EXAMPLES, "--policy", policy))
    assert line.endswith("versions[0].rounding: 'upp' is not one of 'up', 'nearest', 'down' or 'exact'")


def test_a_malformed_command_line_is_2_with_clicks_usage_message() -> None:
    result = run("meter", EXAMPLES)  # --policy missing
    assert result.exit_code == 2
    assert "Missing option '--policy'" in result.stderr


def test_margin_marks_uncosted_rows_with_0_and_refuses_them_with_strict_2(tmp_path: Path) -> None:
    costs = tmp_path / "costs.toml"
    costs.write_text(COSTS)
    args = ("margin", "--records", EXAMPLES, "--costs", costs, "--prices", "plan-call-minute.toml")
    marked = run(*args)
    assert marked.exit_code == 0, marked.output
    assert "INCOMPLETE" in marked.stdout
    line = one_error_line(run(*args, "--strict"))
    assert "6 record(s) matched no cost entry" in line
    assert (
        "record 'stt-1': closest cost entry deepgram-prerecorded: kind 'stream' (the entry takes ['batch'])"
        in line
    )


def test_reconcile_with_an_unexplained_gap_is_1(tmp_path: Path) -> None:
    # The statement's two priced legs last 80 s; our records say 200 s: a gap no cause explains.
    start = datetime(2026, 10, 14, 9, 0, 5, tzinfo=UTC)
    legs = [
        UsageRecord(
            id=f"CA0000000000000000000000000000000{n}",
            kind="leg",
            provider="twilio",
            started_at=start,
            answered_at=start,
            ended_at=start + timedelta(seconds=200),
        )
        for n in (1, 2)
    ]
    records = tmp_path / "records.csv"
    write_records(records, legs)
    statement = STATEMENTS / "twilio-calls.json"
    flagged = run("reconcile", "--provider", "twilio-voice", "--statement", statement, "--records", records)
    assert flagged.exit_code == 1, flagged.output
    assert isinstance(flagged.exception, SystemExit), "a chosen exit, not a crash (also 1)"


@pytest.mark.slow
def test_exit_codes_reach_the_shell() -> None:
    def code(*args: str) -> int:
        return subprocess.run(
            [sys.executable, "-m", "talktime", *args], capture_output=True, timeout=120, check=False
        ).returncode

    assert code("policies", "show", "twilio-voice") == 0
    assert code("policies", "show", "nosuch") == 2
    assert code("no-such-command") == 2
