"""Invoice, margin and reconcile read the API's event store (--store URL --tenant T) as they read a file.

The same records go into a file and, as talktime.record events, into a DuckDB event store for tenant t1; each
command must give the same answer from both, and another tenant's store view must not see them.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from support.stored import store_records
from talktime.cli.main import app
from talktime.core.records import UsageRecord
from talktime.io.records_io import write_records

runner = CliRunner()


def _calls() -> list[UsageRecord]:
    start = datetime(2026, 10, 5, 14, tzinfo=UTC)
    calls = []
    for number, seconds in enumerate([134, 59, 61, 600]):
        began = start + timedelta(hours=number)
        ended = began + timedelta(seconds=seconds)
        session = f"call-{number}"
        calls += [
            UsageRecord(
                id=f"{session}-leg",
                kind="leg",
                provider="twilio",
                product="voice",
                customer="blue-bank",
                session=session,
                started_at=began,
                answered_at=began,
                ended_at=ended,
            ),
            UsageRecord(
                id=f"{session}-caller",
                kind="sip",
                provider="livekit",
                product="rooms",
                customer="blue-bank",
                session=session,
                started_at=began,
                ended_at=ended,
            ),
        ]
    return calls


@pytest.fixture
def sources(tmp_path: Path) -> tuple[list[str], list[str]]:
    """(--records FILE) and (--store URL --tenant t1) over the same calls."""
    calls = _calls()
    file = tmp_path / "records.csv"
    write_records(file, calls)
    target = str(tmp_path / "events.duckdb")
    store_records(target, "t1", calls)
    return ["--records", str(file)], ["--store", target, "--tenant", "t1"]


def _ok(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_invoice_from_the_store_equals_the_invoice_from_the_file(
    sources: tuple[list[str], list[str]],
) -> None:
    base = ["invoice", "--customer", "blue-bank", "--period", "2026-10", "--prices", "plan-call-minute.toml"]
    from_file, from_store = (json.loads(_ok([*base, *source])) for source in sources)
    assert from_store == from_file
    minutes = {line["meter"]: line["billable_quantity"] for line in from_store["lines"]}
    assert "16" in minutes.values(), "3 + 1 + 2 + 10 billable minutes under 60/60 up"


def test_margin_from_the_store_equals_the_margin_from_the_file(sources: tuple[list[str], list[str]]) -> None:
    base = [
        "margin",
        "--costs",
        "costs-informative.toml",
        "--prices",
        "plan-call-minute.toml",
        "--format",
        "json",
    ]
    from_file, from_store = (json.loads(_ok([*base, *source])) for source in sources)
    assert from_store == from_file


def test_reconcile_from_the_store(sources: tuple[list[str], list[str]], tmp_path: Path) -> None:
    statement = tmp_path / "twilio.json"
    calls = [
        {
            "sid": r.id,
            "parent_call_sid": None,
            "status": "completed",
            "direction": "inbound",
            "start_time": r.started_at.strftime("%a, %d %b %Y %H:%M:%S +0000"),
            "end_time": r.ended_at.strftime("%a, %d %b %Y %H:%M:%S +0000") if r.ended_at else None,
            "duration": str(int((r.ended_at - r.started_at).total_seconds())) if r.ended_at else "0",
            "price": "-0.0085",
            "price_unit": "USD",
        }
        for r in _calls()
        if r.kind == "leg"
    ]
    statement.write_text(json.dumps({"calls": calls}), encoding="utf-8")
    # Every line is priced a flat 0.0085 whatever its minutes: a wide money tolerance keeps to seconds.
    base = ["reconcile", "--provider", "twilio-voice", "--statement", str(statement), "--format", "json"]
    base += ["--money-tolerance", "1"]
    from_file, from_store = (json.loads(_ok([*base, *source])) for source in sources)
    assert from_store["summary"] == from_file["summary"]
    assert from_store["summary"]["matched"] + from_store["summary"]["mismatched"] == 4


def test_store_needs_a_tenant_and_one_source(sources: tuple[list[str], list[str]]) -> None:
    from_file, from_store = sources
    base = ["margin", "--costs", "costs-informative.toml", "--prices", "plan-call-minute.toml"]
    no_tenant = runner.invoke(app, [*base, *from_store[:2]])
    assert no_tenant.exit_code == 2 and "--tenant" in no_tenant.output
    both = runner.invoke(app, [*base, *from_file, *from_store])
    assert both.exit_code == 2 and "exactly one" in both.output
    other = runner.invoke(app, [*base, *from_store[:2], "--tenant", "t2"])
    assert other.exit_code == 2 and "no usage records" in other.output
