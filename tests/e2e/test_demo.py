"""``talktime demo`` (what ``make demo`` runs) tells the whole story: the same call metered differently per
provider, then one call's cost across its providers and the month's margin per customer; the Twilio
statement it writes beside the month is reconciled to exactly the overcharges it says it planted."""

from __future__ import annotations

import json
import re
from decimal import Decimal
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


def test_the_demos_whole_call_costs_what_margin_by_session_says_for_the_month(
    demo: tuple[Path, str],
) -> None:
    """Rated alone, the card's 1,000 free SIP minutes covered the call (cost 0.0287 against 0.032737): the
    demo must show the call as the month's margin (and the dashboard) rate it."""
    tmp_path, output = demo
    found = re.search(r"The whole call: (\S+) \((\S+)\)", output)
    assert found is not None, output
    session, customer = found.groups()
    said = re.search(
        r"cost (\S+) \(([^)]*)\); sold as (\S+) call minute\(s\) for (\S+); margin (\S+) \((\S+)%\)", output
    )
    assert said is not None, output
    cost, stack, minutes, price, margin, percent = said.groups()
    result = CliRunner().invoke(
        app,
        [
            "margin",
            "--records",
            str(tmp_path / "month.csv"),
            "--costs",
            "costs-informative.toml",
            "--prices",
            "plan-call-minute.toml",
            "--by",
            "session",
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    row = next(
        r for r in json.loads(result.stdout)["rows"] if r["session"] == session and r["customer"] == customer
    )
    assert (cost, minutes, price, margin) == (row["cost"], row["minutes"], row["price"], row["margin"])
    assert percent == str(Decimal(row["margin_percent"]).quantize(Decimal("0.1")))
    shown = dict(part.rsplit(" ", 1) for part in stack.split(", "))
    expected = {k.removeprefix("cost_"): v for k, v in row.items() if k.startswith("cost_") and v != "0"}
    expected.pop("per_minute")
    assert shown == expected


def test_the_demo_counts_the_calls_its_month_holds(demo: tuple[Path, str]) -> None:
    tmp_path, output = demo
    calls = len({r.session_key for r in read_records(tmp_path / "month.csv")})
    found = re.search(r"A synthetic month: ([\d,]+) calls placed, ([\d,]+) with usage records", output)
    assert found is not None, output
    assert int(found.group(2).replace(",", "")) == calls
    assert (
        f"the other {int(found.group(1).replace(',', '')) - calls:,}: web calls that never connected"
        in output
    )
