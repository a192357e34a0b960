"""Guards on invoices (issue 12, item 4): a record that cannot be right (the call "ending" in 2035 became a
662,666.48 USD invoice) is held back and named on the draft, whose total says INCOMPLETE; finalising such a
month is refused, saying how many, unless told to go on; a customer id nobody knows is refused, not
finalised as a zero invoice for ever."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from typer.testing import CliRunner

from talktime.cli.main import app
from talktime.core.records import UsageRecord
from talktime.io.records_io import write_records

runner = CliRunner()
START = datetime(2026, 10, 5, 14, tzinfo=UTC)


def _records(path: Path, *, runaway: bool) -> Path:
    """Three calls of 90 s (2 billed minutes each) of blue-bank, and with ``runaway`` one "ending" in 2035:
    caller connections, the records plan-call-minute.toml bills per minute."""
    records = [
        UsageRecord(
            id=f"call-{n}",
            customer="blue-bank",
            kind="sip",
            provider="livekit",
            product="rooms",
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
                kind="sip",
                provider="livekit",
                product="rooms",
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
    assert flagged["total"] == clean["total"] == "49.72"  # 3 calls of 2 minutes + the fee, not 4,400,000 min
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
    assert "pass --allow-flagged to bill them as they are" in " ".join(refused.stderr.split())
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


def _export(kind: str, records: Path, *more: str) -> tuple[list[dict[str, str]], str]:
    args = ["export", kind, "--period", "2026-10", "--records", str(records), "--prices"]
    result = runner.invoke(app, [*args, "plan-call-minute.toml", *more])
    assert result.exit_code == 0, result.output
    return list(csv.DictReader(io.StringIO(result.stdout))), result.stderr


def test_exports_hold_back_what_the_draft_holds_back(tmp_path: Path) -> None:
    """The exported lines of a draft are the draft's lines: the runaway call is not exported as
    346,000 USD of minutes while the draft says 49.72; with --allow-flagged both bill it."""
    records = _records(tmp_path / "flagged.csv", runaway=True)
    draft = _draft(records)
    lines, said = _export("invoice-lines", records)
    assert sum(Decimal(row["amount"]) for row in lines) == Decimal(str(draft["total"]))
    assert "blue-bank-2026-10: INCOMPLETE: 1 record(s)" in said
    focus, said = _export("focus", records)
    assert sum(Decimal(row["BilledCost"]) for row in focus) == Decimal(str(draft["total"]))
    assert "call-2035 (call-too-long)" in said

    allowed = _draft(records, "--allow-flagged")
    lines, said = _export("invoice-lines", records, "--allow-flagged")
    assert sum(Decimal(row["amount"]) for row in lines) == Decimal(str(allowed["total"])) > 1000
    assert said == ""


def test_exports_refuse_an_unknown_customer_with_the_closest_ids(tmp_path: Path) -> None:
    records = _records(tmp_path / "clean.csv", runaway=False)
    args = ["--period", "2026-10", "--records", str(records), "--prices", "plan-call-minute.toml"]
    for kind in ("invoice-lines", "focus"):
        refused = runner.invoke(app, ["export", kind, *args, "--customer", "blue-bnak"])
        assert refused.exit_code == 2, refused.output
        assert "did you mean 'blue-bank'" in refused.stderr


def test_the_incomplete_total_says_so_on_paper_and_in_csv(tmp_path: Path) -> None:
    """On paper the total of a draft with records held back is not 'due' and says INCOMPLETE beside it;
    the CSV's TOTAL row carries the note."""
    records = _records(tmp_path / "flagged.csv", runaway=True)
    base = ["invoice", *_args(records), "--prices", "plan-call-minute.toml", "--format"]
    html = runner.invoke(app, [*base, "html"]).stdout
    totals = html[html.index('<table class="totals">') : html.index('<div class="footer">')]
    assert "Total so far" in totals and "Total due" not in totals
    assert "INCOMPLETE: 1 record held back, not in this total" in totals
    assert '<p class="incomplete">INCOMPLETE: 1 record(s) of this period are held back' in totals
    total_row = list(csv.DictReader(io.StringIO(runner.invoke(app, [*base, "csv"]).stdout)))[-1]
    assert total_row["kind"] == "TOTAL"
    assert total_row["description"].startswith("INCOMPLETE: 1 record(s)")

    clean = _records(tmp_path / "clean.csv", runaway=False)
    plain = runner.invoke(app, ["invoice", *_args(clean), "--prices", "plan-call-minute.toml", "-f", "html"])
    assert "Total due" in plain.stdout and "INCOMPLETE" not in plain.stdout
