"""What the review pages draw and print, without a browser: the gap-by-cause chart carries each non-zero
cause (seconds in the profile's unit, money at the rate), and the commands they print run as printed."""

from __future__ import annotations

import json
import shlex
from decimal import Decimal
from pathlib import Path

from talktime.app.held_records import HeldMonth
from talktime.core.reconcile.model import CAUSES, Summary
from talktime.web.review_data import ReviewInputs, accept_commands, cause_figure


def _summary(**causes: int) -> Summary:
    seconds = {c: Decimal(causes.get(c, 0)) for c in CAUSES}
    return Summary(
        policy="twilio-voice",
        unit="minute",
        unit_seconds=Decimal(60),
        counts={"matched": 3},
        internal_billable_seconds=Decimal(600),
        expected_seconds=Decimal(720),
        provider_billable_seconds=Decimal(600) + sum(seconds.values()) + 60,
        causes=seconds,
        unexplained_seconds=Decimal(60),
        flagged_lines=1,
        not_counted_records=0,
    )


def test_the_chart_has_each_cause_that_is_not_zero() -> None:
    money = {"rounding": Decimal("0.0170"), "missing": Decimal(0), "unexplained": Decimal("0.0085")}
    money["price"] = Decimal("0.05")
    drawn = json.loads(cause_figure(_summary(rounding=120, participants=-30), money, "USD"))
    seconds, amounts = drawn["data"]
    assert seconds["y"] == ["participants", "rounding", "UNEXPLAINED"]  # in the causes' order
    assert seconds["x"] == [-0.5, 2.0, 1.0]  # minutes
    assert amounts["y"] == ["rounding", "UNEXPLAINED", "PRICE (charged - due)"]
    assert amounts["x"] == [0.017, 0.0085, 0.05]
    assert drawn["layout"]["xaxis2"]["title"]["text"] == "gap (USD) at the rate"


def test_without_a_rate_the_chart_has_seconds_only() -> None:
    drawn = json.loads(cause_figure(_summary(rounding=120), {}, ""))
    assert len(drawn["data"]) == 1 and "xaxis2" not in drawn["layout"]


def test_the_commands_quote_what_the_shell_would_split(tmp_path: Path) -> None:
    records = tmp_path / "my month.csv"
    inputs = ReviewInputs((), tmp_path / "guards.toml", str(records), "costs.toml", "plan.toml")
    month = HeldMonth("blue bank", "2026-10", "USD", Decimal(1), Decimal(2), ())
    draft, final = accept_commands(inputs, month, tmp_path / "ledger")
    assert shlex.split(draft) == [
        "talktime",
        "invoice",
        "--customer",
        "blue bank",
        "--period",
        "2026-10",
        "--records",
        str(records),
        "--prices",
        "plan.toml",
        "--guards",
        str(tmp_path / "guards.toml"),
        "--allow-flagged",
    ]
    assert shlex.split(final)[:3] == ["talktime", "invoice", "finalize"]
    assert shlex.split(final)[-3:] == ["--ledger", str(tmp_path / "ledger"), "--allow-flagged"]
    assert accept_commands(inputs, month, None) == [draft]  # finalising needs a ledger
    started = shlex.split(inputs.command("--statement", "twilio-voice=a b.csv"))
    assert started[-2:] == ["--statement", "twilio-voice=a b.csv"] and str(records) in started


def test_served_the_commands_review_the_stored_record() -> None:
    from datetime import UTC, datetime

    from talktime.app.held_records import HeldRecord
    from talktime.core.records import UsageRecord
    from talktime.web.review_data import store_commands

    moment = datetime(2026, 10, 1, tzinfo=UTC)
    record = UsageRecord(id="r 1", started_at=moment, ended_at=moment, kind="sip", provider="livekit")
    held = HeldRecord(record, ("tokens-over-limit: 2e10", "call-too-long: 9 y"), ())
    inputs = ReviewInputs(store="/data/events.duckdb", tenant="acme")
    accept, correct = (shlex.split(c) for c in store_commands(inputs, held))
    where = ["--store", "/data/events.duckdb", "--tenant", "acme"]
    assert accept == ["talktime", "records", "accept", "r 1", *where, "--note", "why it is right"]
    assert correct == ["talktime", "records", "correct", "r 1", *where, "--set", "input_tokens=VALUE"]
