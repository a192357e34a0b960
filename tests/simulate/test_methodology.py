"""The published methodology: its worked example is metered by the engine, and it follows the policy."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from typer.testing import CliRunner

from talktime.cli.main import app
from talktime.core.metering.describe import (
    EXAMPLE_ANSWERED,
    EXAMPLE_CHANNELS,
    EXAMPLE_SETUP,
    EXAMPLE_SPEECH,
    methodology_page,
)
from talktime.core.metering.example import example_call
from talktime.core.metering.meter import meter_records
from talktime.core.metering.policy import policy_from_dict
from talktime.providers import builtin


def _policy(increment: int) -> Any:
    return policy_from_dict(
        {
            "id": "test-voice",
            "name": "Test Voice",
            "versions": [
                {
                    "effective_from": "2026-01-01",
                    "basis": "answered",
                    "rounding": "up",
                    "increment_seconds": increment,
                }
            ],
        }
    )


def test_the_worked_example_is_the_meters_own_result() -> None:
    policy = builtin("deepgram-streaming")
    call = example_call(
        policy, EXAMPLE_ANSWERED, channels=EXAMPLE_CHANNELS, setup=EXAMPLE_SETUP, speech=EXAMPLE_SPEECH
    )
    metered = meter_records([call], policy)[0]
    page = methodology_page(policy)
    assert metered.trail() in page
    assert "audio sent 47.3 s -> x2 channels -> 94.6 s" in page  # per channel: a stereo call bills twice
    for heading in (
        "What is included",
        "Rounding and minimums",
        "Channels and participants",
        "Version history",
    ):
        assert f"## {heading}" in page
    assert "Silence: included" in page and "Sources" in page


def test_the_page_changes_when_the_policy_does() -> None:
    six, sixty = methodology_page(_policy(6)), methodology_page(_policy(60))
    assert "answered 47.3 s -> 6/6 up -> 48 s" in six
    assert "answered 47.3 s -> 60/60 up -> 60 s" in sixty
    assert "Billable: 48 s = 0.8 minute(s)" in six


def test_speech_basis_excludes_silence_in_words_and_numbers() -> None:
    policy = policy_from_dict(
        {
            "id": "speechy",
            "name": "Speechy",
            "versions": [{"effective_from": "2026-01-01", "basis": "speech"}],
        }
    )
    page = methodology_page(policy)
    assert "Silence: not included" in page and f"speech {Decimal(31)} s" in page


def test_methodology_command_markdown_and_html(tmp_path: Any) -> None:
    result = CliRunner().invoke(app, ["methodology", "twilio-voice"])
    assert result.exit_code == 0 and "answered 47.3 s -> 60/60 up -> 60 s" in result.output
    target = tmp_path / "twilio.html"
    result = CliRunner().invoke(
        app, ["methodology", "twilio-voice", "--format", "html", "--out", str(target)]
    )
    assert result.exit_code == 0
    html = target.read_text(encoding="utf-8")
    assert html.startswith("<!doctype html>") and "<h2>Worked example</h2>" in html
    bad = CliRunner().invoke(app, ["methodology", "no-such-provider"])
    assert bad.exit_code == 2 and "no-such-provider" in bad.output
