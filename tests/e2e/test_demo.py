"""``talktime demo`` (what ``make demo`` runs) tells the whole story: the same call metered differently per
provider, then one call's cost across its providers and the month's margin per customer."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from talktime.cli.main import app
from talktime.io.records_io import read_records


def test_the_demo_meters_the_month_and_stacks_the_whole_call(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["demo", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())  # the console wraps at its width
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
