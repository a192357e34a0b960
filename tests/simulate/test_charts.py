"""Charts are real PNG files, and the HTML report embeds every one of them."""

from __future__ import annotations

import base64
import json
import struct
from decimal import Decimal
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


def test_cost_axis_ticks_read_as_distinct_amounts() -> None:
    """Costs under a dollar: the cost axis shows its ticks with decimals (0.25, 0.50), not ``0 0 0 1 1``."""
    import matplotlib.pyplot as plt

    from talktime.core.simulate.impact import PolicyImpact
    from talktime.simulate.charts import cost_figure, tick_labels

    impacts = [
        PolicyImpact(
            policy=name,
            name=name,
            rule="60/60 up",
            records=3,
            exact_seconds=Decimal(exact),
            billable_seconds=Decimal(billed),
            currency="USD",
            cost=Decimal(cost),
            exact_cost=Decimal(exact_cost),
        )
        for name, exact, billed, cost, exact_cost in (
            ("twilio-voice", "100.5", "180", "0.9", "0.63"),
            ("telnyx-voice", "100.5", "102", "0.51", "0.5025"),
        )
    ]
    figure = cost_figure(impacts, "cost")
    try:
        figure.canvas.draw()
        money = figure.axes[1]
        labels = [t.get_text() for t in money.get_xticklabels() if t.get_text()]
    finally:
        plt.close(figure)
    assert len(labels) >= 3 and len(set(labels)) == len(labels), labels
    ticks = [Decimal(label.replace(",", "")) for label in labels]
    assert ticks == sorted(ticks) and ticks[-1] < 2 and any(t % 1 for t in ticks), labels
    assert tick_labels([0.0, 0.25, 0.5, 0.75, 1.0]) == ["0.00", "0.25", "0.50", "0.75", "1.00"]
    assert tick_labels([0.0, 0.2, 0.4, 0.6000000000000001]) == ["0.0", "0.2", "0.4", "0.6"]
    assert tick_labels([0.0, 5000.0, 10000.0]) == ["0", "5,000", "10,000"]
