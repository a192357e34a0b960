"""Charts are real PNG files, and the HTML report embeds every one of them."""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path

from typer.testing import CliRunner

from talktime.cli.main import app

PNG = b"\x89PNG\r\n\x1a\n"


def _size(data: bytes) -> tuple[int, int]:
    assert data.startswith(PNG) and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_simulate_writes_charts_report_and_json(tmp_path: Path) -> None:
    out = tmp_path / "report"
    result = CliRunner().invoke(
        app,
        [
            "simulate",
            "--policies",
            "twilio-voice,deepgram-streaming,livekit-participant",
            "--distribution",
            "lognormal:mean=90,sigma=0.8",
            "--calls",
            "3000",
            "--channels",
            "1:0.7,2:0.3",
            "--seed",
            "5",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    html = (out / "report.html").read_text(encoding="utf-8")
    for name in ("durations.png", "cost-by-policy.png"):
        data = (out / name).read_bytes()
        width, height = _size(data)
        assert width > 400 and height > 200
        assert base64.b64encode(data).decode("ascii") in html  # embedded, not linked
    data = json.loads((out / "simulation.json").read_text(encoding="utf-8"))
    assert [p["policy"] for p in data["policies"]] == [
        "twilio-voice",
        "deepgram-streaming",
        "livekit-participant",
    ]


def test_html_format_on_standard_output_embeds_the_figures() -> None:
    result = CliRunner().invoke(
        app,
        [
            "simulate",
            "--policies",
            "twilio-voice",
            "--distribution",
            "uniform:1,120",
            "--calls",
            "500",
            "--format",
            "html",
        ],
    )
    assert result.exit_code == 0
    assert result.output.count("data:image/png;base64,") == 2
