"""``talktime records flagged|accept|correct`` on a store no server holds: the command calls the review use
case (``talktime.app.review``) and prints what it answers; a correction the record cannot take exits 2 with
the field named and keeps nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from typer.testing import CliRunner, Result

from support.events import record_event
from talktime.app import service
from talktime.cli.main import app
from talktime.store import open_store

TENANT = "acme-platform"


def _store(tmp_path: Path) -> str:
    """A call of yesterday, and one "ending" in 2035 (over the 24 h limit)."""
    target = str(tmp_path / "events.duckdb")
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    times = {"started_at": start.isoformat(), "answered_at": (start + timedelta(seconds=5)).isoformat()}
    opened = open_store(target)
    try:
        events = [
            record_event("r1", **times, ended_at=(start + timedelta(seconds=50)).isoformat()),
            record_event("runaway", **times, ended_at="2035-03-01T10:00:00Z"),
        ]
        assert service.ingest(opened, TENANT, events).rejected == 0
    finally:
        opened.close()
    return target


def run(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def test_a_held_record_is_listed_refused_a_bad_correction_then_accepted(tmp_path: Path) -> None:
    store = _store(tmp_path)
    where = ("--store", store, "--tenant", TENANT)
    listed = run("records", "flagged", *where)
    assert listed.exit_code == 0, listed.output
    assert listed.output.startswith("1 record(s) held back, 0 accepted")
    assert "held     runaway  customer acme" in listed.output and "call-too-long" in listed.output
    bad = run("records", "correct", "runaway", *where, "--set", "input_tokens=-5")
    assert bad.exit_code == 2
    assert "field 'input_tokens': -5 is negative" in bad.output
    done = run("records", "accept", "runaway", *where, "--note", "a bridge")
    assert done.exit_code == 0, done.output
    assert done.output.startswith("record runaway: accepted; counted")
    found = json.loads(run("records", "flagged", *where, "--format", "json").output)
    assert found["held"] == []
    ((item,),) = [found["accepted"]]
    assert (item["id"], item["accepted"]["note"]) == ("runaway", "a bridge")
