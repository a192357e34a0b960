"""What-if says when a cost it shows is priced by placeholder prices (the informative card's LiveKit
entries, ``placeholder = true``): ``talktime simulate`` over history marks the LiveKit policy's cost, the
records' cost stack and names the entries in a note, and leaves Twilio's own cost unmarked; ``talktime
compare`` from LiveKit marks the cost it switches from and the platform cost. Without LiveKit records
nothing is marked and the JSON has no placeholder field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from talktime.cli.main import app

runner = CliRunner()
LIVEKIT = ["livekit-agent", "livekit-participant", "livekit-sip"]


def _records(path: Path, livekit: bool = True) -> Path:
    def line(id: str, session: str, kind: str, provider: str, hour: int) -> str:
        start, end = f"2026-10-05T{hour}:00:00+00:00", f"2026-10-05T{hour}:03:00+00:00"
        record = {"id": id, "customer": "acme-health", "session": session, "kind": kind, "provider": provider}
        record |= {"started_at": start, "ended_at": end, "answered_at": start}
        return json.dumps(record)

    lines = [line("tw-leg", "tw-call", "leg", "twilio", 11)]
    if livekit:
        lines += [
            line("lk-sip", "lk-call", "sip", "livekit", 10),
            line("lk-agent", "lk-call", "agent", "livekit", 10),
        ]
    path.write_text("\n".join(lines) + "\n")
    return path


def _json(*args: str) -> Any:
    done = runner.invoke(app, [*args, "--format", "json"])
    assert done.exit_code == 0, done.output
    return json.loads(done.stdout)


def test_simulate_marks_the_livekit_policy_and_the_stack(tmp_path: Path) -> None:
    records = _records(tmp_path / "calls.jsonl")
    found = _json("simulate", "--policies", "livekit-participant,twilio-voice", "--records", str(records))
    lines = {line["policy"]: line for line in found["policies"]}
    assert lines["livekit-participant"]["placeholder_entries"] == ["livekit-participant"]
    assert "placeholder_entries" not in lines["twilio-voice"]  # the legs' own cost: a published price
    assert found["cost_stack_now"]["placeholder_entries"] == LIVEKIT
    assert any(n.startswith("* PLACEHOLDER") and "livekit-sip" in n for n in found["notes"])
    table = runner.invoke(
        app, ["simulate", "--policies", "livekit-participant,twilio-voice", "--records", str(records)]
    ).stdout
    assert any(line.startswith("these records' cost") and "total * 0." in line for line in table.splitlines())


def test_compare_from_livekit_marks_what_it_switches_from(tmp_path: Path) -> None:
    records = _records(tmp_path / "calls.jsonl")
    args = ["compare", "--from", "livekit-participant", "--to", "vapi", "--records", str(records)]
    found = _json(*args, "--prices", "plan-call-minute.toml")
    assert found["from_placeholder"] is True and "to_placeholder" not in found
    assert found["total"]["placeholder_entries"] == LIVEKIT  # the platform cost includes them
    assert any(n.startswith("* PLACEHOLDER") for n in found["notes"])


def test_nothing_is_marked_without_a_placeholder_price(tmp_path: Path) -> None:
    records = _records(tmp_path / "calls.jsonl", livekit=False)
    found = _json("simulate", "--policies", "twilio-voice", "--records", str(records))
    assert "placeholder" not in json.dumps(found).lower()
