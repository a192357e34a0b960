"""Provider switch on a small history, numbers checked by hand.

History (Twilio legs): customer a, one 45 s call; customer b, a 61 s call and a 10 s call.
Twilio today (60/60 up, min 60 s) at $0.0085/min: a 1 min = 0.0085; b 2 + 1 min = 0.0255; total 0.034.
Telnyx today (60/60 up) at $0.01/min: a 1 min = 0.01; b 3 min = 0.03; total 0.04 (+17.65%).
Price card: $0.10 per Twilio-metered minute: a sells 1 min (0.10), b 3 min (0.30), total 4 min (0.40).
Margin today a: (0.10 - 0.0085) / 0.10 = 91.5%; to keep it with cost 0.01: 0.01 / (1 x 0.085) = 0.117647...
To keep the margin amount: (0.10 + 0.0015) / 1 = 0.1015 per minute.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from talktime.cli.main import app
from talktime.core.records import UsageRecord
from talktime.core.simulate.switch import compare
from talktime.errors import InputError
from talktime.io.ratecards import load_cost_card, load_price_card

COSTS = Path("costs-informative.toml")


def test_costs_per_call_customer_and_total(history: list[UsageRecord], price_file: Path) -> None:
    switch = compare(
        history, "twilio-voice", "telnyx-voice", load_cost_card(COSTS), load_price_card(price_file)
    )
    by_customer = {c.customer: c for c in switch.customers}
    assert by_customer["a"].cost_from == Decimal("0.0085") and by_customer["a"].cost_to == Decimal("0.01")
    assert by_customer["b"].cost_from == Decimal("0.0255") and by_customer["b"].cost_to == Decimal("0.03")
    assert switch.total.cost_from == Decimal("0.034") and switch.total.cost_to == Decimal("0.04")
    assert round(switch.total.delta_percent or 0, 2) == Decimal("17.65")
    calls = {c.session: c for c in switch.calls}
    assert calls["b-1"].seconds_from == 120 and calls["b-1"].cost_to == Decimal("0.02")
    assert [c.session for c in switch.biggest(1)] == ["b-1"]
    a = by_customer["a"]
    assert a.revenue == Decimal("0.10") and a.minutes_sold == 1
    assert a.margin_share == Decimal("0.915")
    assert round(a.price_keep_share or 0, 6) == Decimal("0.117647")
    assert a.price_keep_amount == Decimal("0.1015")
    assert switch.total.price_keep_amount == Decimal("0.1015")  # (0.40 + 0.006) / 4


def test_a_profile_without_a_cost_entry_is_named() -> None:
    with pytest.raises(InputError, match=r"\[costs.vonage-voice\]"):
        compare([], "twilio-voice", "vonage-voice", load_cost_card(COSTS))


def test_compare_from_the_command_line(history_file: Path, price_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    result = CliRunner().invoke(
        app,
        [
            "compare",
            "--from",
            "twilio-voice",
            "--to",
            "telnyx-voice",
            "--records",
            str(history_file),
            "--prices",
            str(price_file),
            "--format",
            "json",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["total"]["cost_from"] == "0.034" and data["total"]["cost_to"] == "0.04"
    assert data["biggest_changes"][0]["session"] == "b-1"
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "data:image/png;base64," in html and "switch-by-customer.png" in html
    assert (out / "switch-by-customer.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_compare_reads_history_from_an_event_store(history: list[UsageRecord], tmp_path: Path) -> None:
    from support.stored import store_records

    target = str(tmp_path / "events.duckdb")
    store_records(target, "t1", history)
    args = [
        "compare",
        "--from",
        "twilio-voice",
        "--to",
        "telnyx-voice",
        "--store",
        target,
        "--format",
        "json",
    ]
    missing = CliRunner().invoke(app, args)
    assert missing.exit_code == 2 and "--tenant" in missing.output
    result = CliRunner().invoke(app, [*args, "--tenant", "t1"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["total"]["cost_to"] == "0.04"
