"""``talktime demo`` (what ``make demo`` runs) tells the whole story: the same call metered differently per
provider, then one call's cost across its providers and the month's margin per customer; the Twilio
statement it writes beside the month is reconciled to exactly the overcharges it says it planted."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from talktime.cli.main import app
from talktime.io.records_io import read_records


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The folder ``talktime demo --out`` wrote, and what it printed (words joined by single spaces: the
    console wraps at its width)."""
    folder = tmp_path_factory.mktemp("demo")
    result = CliRunner().invoke(app, ["demo", "--out", str(folder)])
    assert result.exit_code == 0, result.output
    return folder, " ".join(result.output.split())


def test_the_demo_meters_the_month_and_stacks_the_whole_call(demo: tuple[Path, str]) -> None:
    tmp_path, output = demo
    assert "twilio-voice" in output and "deepgram-streaming" in output
    assert "LiveKit bills 22 participant-minutes" in output
    assert "The whole call:" in output
    # one call's stack names each modality, and the month table its per-customer margin
    stack = output[output.index("The whole call:") : output.index("sold as")]
    for modality in ("telephony", "stt", "llm", "tts"):
        assert modality in stack
    pairs = re.findall(r"margin (\d+\.\d)% with LLM and TTS; (\d+\.\d)% if only minutes were costed", output)
    assert pairs and all(float(whole) < float(minutes_only) for whole, minutes_only in pairs)
    kinds = {r.kind for r in read_records(tmp_path / "month.csv")}
    assert {"leg", "stream", "sip", "agent", "llm", "tts"} <= kinds


def test_the_demo_writes_a_statement_whose_reconciliation_finds_the_overcharges(
    demo: tuple[Path, str],
) -> None:
    tmp_path, output = demo
    statement = tmp_path / "twilio-statement.csv"
    assert f"--statement twilio-voice={statement}" in output, "the printed dashboard command reconciles it"
    found = re.search(r"synthetic: (\d+) lines overcharged, (\d+\.\d+) USD in all", output)
    assert found is not None, output
    lines, amount = int(found.group(1)), found.group(2)
    checked = CliRunner().invoke(
        app,
        [
            "reconcile",
            "--provider",
            "twilio-voice",
            "--statement",
            str(statement),
            "--records",
            str(tmp_path / "month.csv"),
            "--costs",
            "costs-informative.toml",
        ],
    )
    assert checked.exit_code == 1, checked.output  # lines flagged
    said = " ".join(checked.output.split())
    assert lines > 0 and f"mispriced {lines}," in said and "mismatched 0," in said
    assert f"PRICE +{amount}000 USD ({lines} lines" in said, "every overcharge found, nothing else"
    assert "UNEXPLAINED 0 0.0 0.00000" in said
