"""The Flexprice seed example, at full size through the vectorised engine: 100,000 calls of 45 s are
100,000 minutes under per-minute rounding and 75,000 under per-second billing."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from typer.testing import CliRunner

from talktime.cli.main import app
from talktime.core.simulate.rules import Rules
from talktime.core.simulate.spec import parse_distribution
from talktime.io.ratecards import load_cost_card
from talktime.providers import builtin
from talktime.simulate.generate import write_calls
from talktime.simulate.run import anchor, meter_policies


def test_seed_example_full_size_on_the_engine(tmp_path: Path) -> None:
    card = load_cost_card(Path("costs-informative.toml"))
    per_minute, per_second = builtin("twilio-voice"), builtin("vonage-voice")  # 60/60 up and 1/1 up
    moment = anchor([per_minute, per_second], card)
    path = tmp_path / "calls.parquet"
    assert write_calls(path, parse_distribution("fixed:45"), 100_000, seed=1, anchor=moment) == 100_000
    lines, stack, _ = meter_policies(
        path, [per_minute, per_second], card, Rules(moment), history=False, trusted=True
    )
    minute, second = lines
    assert stack is None  # generated calls have no other costs
    assert minute.billable_minutes == 100_000
    assert second.billable_minutes == 75_000
    assert minute.exact_minutes == second.exact_minutes == 75_000
    assert minute.extra_minutes == 25_000
    assert round(minute.extra_percent or 0, 2) == Decimal("33.33")
    # Twilio's informative price: $0.0085 a minute
    assert minute.cost == Decimal("850") and minute.exact_cost == Decimal("637.5")
    assert minute.extra_cost == Decimal("212.5")


def test_seed_example_from_the_command_line() -> None:
    result = CliRunner().invoke(
        app,
        [
            "simulate",
            "--policies",
            "twilio-voice,vonage-voice",
            "--distribution",
            "fixed:45",
            "--calls",
            "100000",
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    lines = {p["policy"]: p for p in json.loads(result.output)["policies"]}
    assert lines["twilio-voice"]["billable_minutes"] == "100000"
    assert lines["vonage-voice"]["billable_minutes"] == "75000"
    assert lines["twilio-voice"]["extra_minutes"] == "25000"
