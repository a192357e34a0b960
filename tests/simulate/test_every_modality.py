"""compare and simulate over whole calls: carrier legs, STT streams, room participants, LLM tokens and TTS
characters. The keep-margin price counts every modality's cost, the records no entry prices are named on the
rows, a provider with parts (input, cached and output tokens) switches as a whole, each side bills a stream's
channels by its own rule, and the vectorised path gives the reference's JSON.

The card prices every modality but TTS, so the TTS records are the missing costs. Its LLM policy and the
channel-rule policies are inline, so the expectations do not move with the built-in profiles.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from talktime.cli.main import app
from talktime.core.metering.meter import meter_records
from talktime.core.rating.margin import session_margins
from talktime.core.records import UsageRecord
from talktime.core.simulate.costs import Missing, cost_stack, record_modality
from talktime.core.simulate.switch import compare
from talktime.io.ratecards import load_cost_card, load_price_card
from talktime.io.records_io import read_records, write_records
from talktime.providers import builtin
from talktime.simulate.report import switch_dict
from talktime.simulate.switch_run import compare_vectorised
from talktime.synth import synthetic_month

LLM_POLICY = """
id = "llm-tokens"
name = "LLM tokens (tests)"
provider = "openai"
product = "chat"
unit = "token"
modality = "llm"
[[parts]]
name = "input"
basis = { input_tokens = 1, cached_input_tokens = -1 }
[[parts]]
name = "cached_input"
basis = "cached_input_tokens"
[[parts]]
name = "output"
basis = "output_tokens"
[[versions]]
effective_from = 2020-01-01
basis = { input_tokens = 1, output_tokens = 1 }
kinds = ["llm"]
"""

STT_POLICY = """
id = "stt-{name}"
name = "STT session time, channels {rule} (tests)"
provider = "sttco"
product = "streaming"
unit = "second"
modality = "stt"
[[versions]]
effective_from = 2020-01-01
basis = "connection"
kinds = ["stream"]
channels = "{rule}"
"""


def _llm_prices(key: str, prices: tuple[str, str, str]) -> str:
    out = ""
    for part, price in zip(("input", "cached_input", "output"), prices, strict=True):
        out += f"""
[costs.{key}.parts.{part}]
unit = "million_tokens"
[[costs.{key}.parts.{part}.versions]]
effective_from = 2020-01-01
model = "per_unit"
unit_price = "{price}"
"""
    return out


COSTS = (
    """
kind = "cost"
name = "whole calls without TTS (tests)"
currency = "USD"

[costs.twilio-voice]
match = { provider = "twilio", kind = ["leg"] }
[[costs.twilio-voice.versions]]
effective_from = 2021-07-08
model = "per_unit"
unit_price = "0.0085"

[costs.telnyx-voice]
[[costs.telnyx-voice.versions]]
effective_from = 2020-01-01
model = "graduated"
tiers = [{ up_to = "100", unit_price = "0.012" }, { unit_price = "0.009" }]

[costs.deepgram-streaming]
match = { provider = "deepgram", kind = ["stream"] }
[[costs.deepgram-streaming.versions]]
effective_from = 2020-01-01
model = "per_unit"
unit_price = "0.0077"

[costs.per_channel]
policy = "stt-per_channel.toml"
[[costs.per_channel.versions]]
effective_from = 2020-01-01
model = "per_unit"
unit_price = "0.0001"

[costs.per_call]
policy = "stt-per_call.toml"
[[costs.per_call.versions]]
effective_from = 2020-01-01
model = "per_unit"
unit_price = "0.0001"

[costs.livekit-sip]
match = { provider = "livekit", kind = ["sip"] }
[[costs.livekit-sip.versions]]
effective_from = 2025-01-01
model = "per_unit"
unit_price = "0.004"

[costs.livekit-participant]
match = { provider = "livekit", kind = ["participant", "agent"] }
[[costs.livekit-participant.versions]]
effective_from = 2025-01-01
model = "per_unit"
unit_price = "0.0005"
included = "300"

[costs.livekit-agent]
match = { provider = "livekit", kind = ["agent"] }
additional = true
[[costs.livekit-agent.versions]]
effective_from = 2025-01-01
model = "per_unit"
unit_price = "0.01"

[costs.llm-mini]
policy = "llm-tokens.toml"
match = { provider = "openai", kind = ["llm"], "attr.model" = ["gpt-4o-mini"] }
"""
    + _llm_prices("llm-mini", ("0.15", "0.075", "0.60"))
    + """
[costs.llm-big]
policy = "llm-tokens.toml"
match = { provider = "openai", kind = ["llm"], "attr.model" = ["gpt-4o"] }
"""
    + _llm_prices("llm-big", ("2.50", "1.25", "10.00"))
)

PRICES = """
kind = "price"
name = "call minutes (tests)"
currency = "USD"
timezone = "UTC"
[components.call-minutes]
policy = "twilio-voice"
match = { kind = ["leg"] }
[[components.call-minutes.versions]]
effective_from = 2021-07-08
model = "per_unit"
unit_price = "0.12"
"""


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("whole")
    calls = synthetic_month(400, seed=7, month=datetime(2026, 10, 20, tzinfo=UTC), whole_call=True)
    write_records(path / "history.parquet", calls)
    (path / "costs.toml").write_text(COSTS, encoding="utf-8")
    (path / "prices.toml").write_text(PRICES, encoding="utf-8")
    (path / "llm-tokens.toml").write_text(LLM_POLICY, encoding="utf-8")
    for rule in ("per_call", "per_channel"):
        (path / f"stt-{rule}.toml").write_text(
            STT_POLICY.format(rule=rule, name=rule.replace("_", "-")), encoding="utf-8"
        )
    return path


@pytest.fixture(scope="module")
def records(folder: Path) -> list[UsageRecord]:
    return list(read_records(folder / "history.parquet"))


def _kinds(records: list[UsageRecord], kind: str) -> Iterator[UsageRecord]:
    return (r for r in records if r.kind == kind)


def _both(folder: Path, records: list[UsageRecord], from_id: str, to_id: str, priced: bool) -> dict[str, Any]:
    costs = load_cost_card(folder / "costs.toml")
    prices = load_price_card(folder / "prices.toml") if priced else None
    reference = switch_dict(compare(records, from_id, to_id, costs, prices), 10)
    vectorised = switch_dict(
        compare_vectorised(folder / "history.parquet", from_id, to_id, costs, prices), 10
    )
    assert vectorised == reference
    return reference


def test_the_history_has_every_modality_and_tts_is_unpriced(records: list[UsageRecord]) -> None:
    kinds = {r.kind for r in records}
    assert {"leg", "stream", "sip", "participant", "agent", "llm", "tts"} <= kinds
    assert any(r.channels == 2 for r in _kinds(records, "stream"))


def test_keep_margin_price_counts_every_modality_and_names_what_is_missing(
    folder: Path, records: list[UsageRecord]
) -> None:
    switch = _both(folder, records, "twilio-voice", "telnyx-voice", priced=True)
    costs, prices = load_cost_card(folder / "costs.toml"), load_price_card(folder / "prices.toml")
    report = session_margins(records, costs, prices)
    total = switch["total"]
    # the platform cost is the margin report's whole cost stack: telephony, STT, LLM and platform
    assert Decimal(total["platform_cost"]) == pytest.approx(
        sum((s.cost for s in report.sessions), Decimal(0))
    )
    stack = total["other_costs_by_modality"]
    assert Decimal(stack["llm"]) > 0 and Decimal(stack["stt"]) > 0 and Decimal(stack["platform"]) > 0
    tts = sum(1 for _ in _kinds(records, "tts"))
    assert total["complete"] is False
    assert total["missing_costs"] == {"records": tts, "by_product": {"elevenlabs/tts": tts}}
    assert sum(c["missing_costs"]["records"] for c in switch["customers"]) == tts
    # keep the margin percentage over the whole stack: (platform cost + change) / (minutes x cost share)
    platform, delta = Decimal(total["platform_cost"]), Decimal(total["cost_change"])
    share = Decimal(total["margin_percent"]) / 100
    expected = (platform + delta) / (Decimal(total["minutes_sold"]) * (1 - share))
    assert Decimal(total["price_per_minute_to_keep_margin_percent"]) == pytest.approx(
        expected, rel=Decimal("1e-5")
    )


def test_the_table_shows_the_missing_costs_on_each_row(folder: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "compare",
            "--from",
            "twilio-voice",
            "--to",
            "telnyx-voice",
            "--records",
            str(folder / "history.parquet"),
            "--costs",
            str(folder / "costs.toml"),
            "--prices",
            str(folder / "prices.toml"),
            "--top",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    rows = [line for line in result.output.splitlines() if line.startswith("│ ")]
    customers = [row for row in rows if not row.startswith("│ call-")]
    assert len(customers) == 4  # three customers and the total
    assert all("elevenlabs/tts" in row and ">= " in row for row in customers)


def test_a_provider_with_parts_switches_as_a_whole(folder: Path, records: list[UsageRecord]) -> None:
    switch = _both(folder, records, "llm-mini", "llm-big", priced=True)
    llm = list(_kinds(records, "llm"))
    tokens = sum(((r.input_tokens or 0) + (r.output_tokens or 0) for r in llm), 0)
    assert Decimal(switch["total"]["billable_seconds_from"]) == tokens  # the three parts add up
    assert Decimal(switch["total"]["billable_seconds_to"]) == tokens

    def priced(record: UsageRecord, rates: tuple[str, str, str]) -> Decimal:
        cached = record.cached_input_tokens or 0
        counts = ((record.input_tokens or 0) - cached, cached, record.output_tokens or 0)
        return sum((Decimal(n) * Decimal(p) for n, p in zip(counts, rates, strict=True)), Decimal(0)) / 10**6

    cost_from = sum((priced(r, ("0.15", "0.075", "0.60")) for r in llm), Decimal(0))
    cost_to = sum((priced(r, ("2.50", "1.25", "10.00")) for r in llm), Decimal(0))
    assert Decimal(switch["total"]["cost_from"]) == pytest.approx(cost_from, abs=Decimal("0.000001"))
    assert Decimal(switch["total"]["cost_to"]) == pytest.approx(cost_to, abs=Decimal("0.000001"))


@pytest.mark.parametrize(("to_id", "per_channel"), [("per_channel", True), ("per_call", False)])
def test_each_side_bills_a_stream_s_channels_by_its_own_rule(
    folder: Path, records: list[UsageRecord], to_id: str, per_channel: bool
) -> None:
    switch = _both(folder, records, "deepgram-streaming", to_id, priced=False)
    streams = list(_kinds(records, "stream"))
    expected = sum(
        (
            Decimal(str((r.ended_at - r.started_at).total_seconds())) * (r.channels if per_channel else 1)
            for r in streams
            if r.ended_at is not None and r.status == "completed"
        ),
        Decimal(0),
    )
    assert Decimal(switch["total"]["billable_seconds_to"]) == expected


def test_assemblyai_streaming_bills_what_meter_bills(folder: Path, records: list[UsageRecord]) -> None:
    """Whatever the built-in profile's channel rule, compare applies it, not one of its own."""
    card = """
kind = "cost"
currency = "USD"
[costs.deepgram-streaming]
match = { provider = "deepgram", kind = ["stream"] }
[[costs.deepgram-streaming.versions]]
effective_from = 2020-01-01
model = "per_unit"
unit_price = "0.0077"
[costs.assemblyai-streaming]
unit = "hour"
[[costs.assemblyai-streaming.versions]]
effective_from = 2020-01-01
model = "per_unit"
unit_price = "0.15"
"""
    (folder / "stt.toml").write_text(card, encoding="utf-8")
    costs = load_cost_card(folder / "stt.toml")
    streams = list(_kinds(records, "stream"))
    metered = sum((m.billable_seconds for m in meter_records(streams, builtin("assemblyai-streaming"))), 0)
    for switch in (
        compare(records, "deepgram-streaming", "assemblyai-streaming", costs),
        compare_vectorised(folder / "history.parquet", "deepgram-streaming", "assemblyai-streaming", costs),
    ):
        assert switch.total.seconds_to == metered


def test_simulate_puts_each_policy_in_the_whole_stack(folder: Path, records: list[UsageRecord]) -> None:
    costs = load_cost_card(folder / "costs.toml")
    result = CliRunner().invoke(
        app,
        [
            "simulate",
            "--records",
            str(folder / "history.parquet"),
            "--costs",
            str(folder / "costs.toml"),
            "--policies",
            f"twilio-voice,deepgram-streaming,{folder / 'llm-tokens.toml'}",
            "-f",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    reference = cost_stack(records, costs)
    stack = data["cost_stack_now"]
    for modality, cost in reference.by_modality.items():
        assert Decimal(stack["by_modality"].get(modality, "0")) == pytest.approx(
            cost, abs=Decimal("0.0000005")
        )
    tts = sum(1 for _ in _kinds(records, "tts"))
    assert reference.missing == Missing({"elevenlabs/tts": tts})
    assert stack["missing_costs"] == {"records": tts, "by_product": {"elevenlabs/tts": tts}}
    lines = {p["policy"]: p for p in data["policies"]}
    for line in lines.values():
        assert line["missing_costs"]["records"] == tts and line["complete"] is False
    # the carrier profile meters the carrier's legs only (not the room's SIP participants, nor the LLM's)
    twilio = lines["twilio-voice"]
    telephony = [r for r in records if record_modality(r, costs) == "telephony"]
    assert {r.kind for r in telephony} == {"leg", "sip"}
    assert twilio["records"] == sum(1 for r in telephony if r.kind == "leg")
    assert twilio["modality_cost_now_complete"] is True  # the TTS records are not the carrier's
    assert any("not its calls" in note for note in data["notes"])
    # a profile re-metering its own records at its own price is today's stack again
    for name in ("twilio-voice", "deepgram-streaming"):
        assert Decimal(lines[name]["cost"]) == pytest.approx(Decimal(lines[name]["modality_cost_now"]))
        assert Decimal(lines[name]["calls_cost"]) == pytest.approx(Decimal(stack["total"]))
    # an LLM policy with parts: every token once, priced part by part
    llm = lines["llm-tokens"]
    tokens = sum(((r.input_tokens or 0) + (r.output_tokens or 0) for r in _kinds(records, "llm")), 0)
    assert llm["unit"] == "token" and Decimal(llm["billable_quantity"]) == tokens
    assert llm["billable_minutes"] is None and llm["extra_quantity"] == "0"
