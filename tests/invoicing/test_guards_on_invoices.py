"""Guards on invoices (issue 12, item 4): a record that cannot be right (the call "ending" in 2035 became a
662,666.48 USD invoice) is held back and named on the draft, whose total says INCOMPLETE; finalising such a
month is refused, saying how many, unless told to go on; a customer id nobody knows is refused, not
finalised as a zero invoice for ever."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from typer.testing import CliRunner

from talktime.cli.main import app
from talktime.core.records import UsageRecord
from talktime.io.records_io import write_records

runner = CliRunner()
START = datetime(2026, 10, 5, 14, tzinfo=UTC)


def _records(path: Path, *, runaway: bool) -> Path:
    records = [
        UsageRecord(
            id=f"call-{n}",
            customer="blue-bank",
            kind="leg",
            provider="twilio",
            product="voice",
            started_at=START + timedelta(hours=n),
            answered_at=START + timedelta(hours=n),
            ended_at=START + timedelta(hours=n, seconds=90),
        )
        for n in range(3)
    ]
    if runaway:
        records.append(
            UsageRecord(
                id="call-2035",
                customer="blue-bank",
                kind="leg",
                provider="twilio",
                product="voice",
                started_at=START,
                answered_at=START,
                ended_at=datetime(2035, 1, 1, tzinfo=UTC),
            )
        )
    write_records(path, records)
    return path


def _args(records: Path, *more: str) -> list[str]:
    return [*more, "--customer", "blue-bank", "--period", "2026-10", "--records", str(records)]


def _draft(records: Path, *more: str) -> dict[str, object]:
    result = runner.invoke(app, ["invoice", *_args(records), "--prices", "plan-call-minute.toml", *more])
    assert result.exit_code == 0, result.output
    data: dict[str, object] = json.loads(result.stdout)
    return data


def test_the_runaway_call_is_held_back_and_named_and_the_total_says_incomplete(tmp_path: Path) -> None:
    clean = _draft(_records(tmp_path / "clean.csv", runaway=False))
    flagged = _draft(_records(tmp_path / "flagged.csv", runaway=True))
    assert flagged["total"] == clean["total"]  # 3 calls of 2 minutes, not 4,400,000 minutes
    assert flagged["held"] == [
        {
            "id": "call-2035",
            "reasons": [
                "call-too-long: 260013600 s (72226 h) from start to end, over the 24 h limit",
            ],
        }
    ]
    notes = flagged["notes"]
    assert isinstance(notes, list)
    assert notes[0].startswith("INCOMPLETE: 1 record(s) of this period are held back as implausible")
    assert "call-2035 (call-too-long)" in notes[0]
    assert clean["held"] == []


def test_finalising_a_month_with_held_records_is_refused_unless_allowed(tmp_path: Path) -> None:
    records = _records(tmp_path / "flagged.csv", runaway=True)
    ledger = ["--ledger", str(tmp_path / "ledger"), "--prices", "plan-call-minute.toml"]
    refused = runner.invoke(app, ["invoice", "finalize", *_args(records), *ledger])
    assert refused.exit_code == 2
    assert "is not finalised: INCOMPLETE: 1 record(s)" in refused.stderr
    assert "call-2035 (call-too-long)" in refused.stderr
    assert not (tmp_path / "ledger" / "blue-bank").exists()

    done = runner.invoke(app, ["invoice", "finalize", *_args(records), *ledger, "--allow-flagged"])
    assert done.exit_code == 0, done.output
    assert "finalised blue-bank-2026-10" in done.stdout


def test_a_guards_file_sets_the_limits(tmp_path: Path) -> None:
    records = _records(tmp_path / "flagged.csv", runaway=True)
    guards = tmp_path / "guards.toml"
    guards.write_text("[tenants.acme]\nmax_call_hours = 100000\n", encoding="utf-8")
    assert [h["id"] for h in _draft(records, "--guards", str(guards))["held"]] == ["call-2035"]  # type: ignore[attr-defined]
    guards.write_text("max_call_hours = 100000\n", encoding="utf-8")
    assert _draft(records, "--guards", str(guards))["held"] == []
    guards.write_text("max_call_hours = -3\n", encoding="utf-8")
    bad = runner.invoke(
        app, ["invoice", *_args(records), "--prices", "plan-call-minute.toml", "--guards", str(guards)]
    )
    assert bad.exit_code == 2
    assert "max_call_hours: -3 is not a positive whole number" in bad.stderr


def test_an_unknown_customer_is_refused_with_the_closest_ids(tmp_path: Path) -> None:
    records = _records(tmp_path / "clean.csv", runaway=False)
    args = ["--customer", "blue-bnak", "--period", "2026-10", "--records", str(records)]
    ledger = ["--ledger", str(tmp_path / "ledger"), "--prices", "plan-call-minute.toml"]
    refused = runner.invoke(app, ["invoice", "finalize", *args, *ledger])
    assert refused.exit_code == 2
    assert "customer 'blue-bnak' is in neither the price card's [customers] nor any record" in refused.stderr
    assert "did you mean 'blue-bank'" in refused.stderr
    assert not (tmp_path / "ledger").exists()
