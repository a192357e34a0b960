"""The vectorised provider switch (DuckDB) against the per-record reference: the same JSON, exactly.

History: ``synthetic_month`` (2,000 calls over three customers, seed 7) starting 20 October, so calls fall in
two provider months and two customer months. Cards: the informative cost card (per unit, per attempt,
included free quotas) and a card made to stress the per-call split: graduated tiers with flat fees behind a
free quota, a package behind a quota, volume tiers, a flat fee, per attempt, a price change in the history's
second month and a New York provider month. Price cards: the two built-in examples (graduated per call
minute with customers in three zones; per component with an included quota, volume tiers and packages).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from talktime.cli.main import app
from talktime.core.records import UsageRecord
from talktime.core.simulate.switch import compare
from talktime.errors import InputError
from talktime.io.ratecards import load_cost_card, load_price_card
from talktime.io.records_io import read_records, write_records
from talktime.simulate.report import switch_dict
from talktime.simulate.switch_run import compare_vectorised, supported
from talktime.synth import synthetic_month

INFORMATIVE = Path("costs-informative.toml")
PLANS = (None, Path("plan-call-minute.toml"), Path("plan-per-component.toml"))

STRESS = """
kind = "cost"
name = "stress card (tests)"
currency = "USD"
period_timezone = "America/New_York"

[costs.twilio-voice]
match = { provider = "twilio", kind = ["leg"] }
[[costs.twilio-voice.versions]]
effective_from = 2021-07-08
model = "graduated"
included = "50"
tiers = [{ up_to = "300", unit_price = "0.013", flat_fee = "0.5" }, { up_to = "900", unit_price = "0.0085" },
         { unit_price = "0.007" }]
[[costs.twilio-voice.versions]]
effective_from = 2026-11-03
model = "per_unit"
unit_price = "0.0091"

[costs.telnyx-voice]
[[costs.telnyx-voice.versions]]
effective_from = 2020-01-01
model = "package"
included = "30"
size = "7"
price = "0.05"

[costs.deepgram-streaming]
match = { provider = "deepgram", kind = ["stream"] }
[[costs.deepgram-streaming.versions]]
effective_from = 2020-01-01
model = "volume"
tiers = [{ up_to = "500", unit_price = "0.0077" }, { unit_price = "0.0059", flat_fee = "1.25" }]

[costs.assemblyai-streaming]
match = { provider = "assemblyai", kind = ["stream"] }
[[costs.assemblyai-streaming.versions]]
effective_from = 2020-01-01
model = "graduated"
tiers = [{ up_to = "1000", unit_price = "0.0065" }, { unit_price = "0.0045" }]

[costs.livekit-participant]
match = { provider = "livekit", kind = ["participant"] }
[[costs.livekit-participant.versions]]
effective_from = 2025-01-01
model = "flat_fee"
amount = "3.33"

[costs.livekit-sip]
match = { provider = "livekit", kind = ["sip"] }
[[costs.livekit-sip.versions]]
effective_from = 2025-01-01
model = "per_unit"
unit_price = "0.004"
included = "100"

[costs.livekit-agent]
match = { provider = "livekit", kind = ["agent"] }
[[costs.livekit-agent.versions]]
effective_from = 2025-01-01
model = "per_unit"
unit_price = "0.01"
included = "700"

[costs.bland]
[[costs.bland.versions]]
effective_from = 2020-01-01
model = "per_attempt"
fee = "0.015"
unit_price = "0.09"
"""


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("switch")
    calls = synthetic_month(2000, seed=7, month=datetime(2026, 10, 20, tzinfo=UTC))
    write_records(path / "history.parquet", calls)
    (path / "stress.toml").write_text(STRESS, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def records(folder: Path) -> list[UsageRecord]:
    return list(read_records(folder / "history.parquet"))


def _both(
    folder: Path,
    records: list[UsageRecord],
    pair: str,
    card: Path,
    plan: Path | None,
    at: datetime | None = None,
) -> dict[str, Any]:
    from_id, to_id = pair.split("->")
    costs = load_cost_card(card)
    prices = load_price_card(plan) if plan is not None else None
    assert supported(costs, prices) is None
    reference = switch_dict(compare(records, from_id, to_id, costs, prices, at=at), 10)
    vectorised = switch_dict(
        compare_vectorised(folder / "history.parquet", from_id, to_id, costs, prices, at=at), 10
    )
    assert len(reference["calls"]) > 300
    assert vectorised == reference
    return reference


CALL_MINUTE, PER_COMPONENT = PLANS[1], PLANS[2]
CASES = [
    ("twilio-voice->telnyx-voice", None),
    ("twilio-voice->telnyx-voice", PER_COMPONENT),
    ("deepgram-streaming->assemblyai-streaming", None),
    ("deepgram-streaming->assemblyai-streaming", CALL_MINUTE),
    ("livekit-participant->livekit-sip", None),
    ("livekit-participant->livekit-sip", PER_COMPONENT),
]


@pytest.mark.parametrize(("pair", "plan"), CASES)
def test_informative_card_same_json(
    folder: Path, records: list[UsageRecord], pair: str, plan: Path | None
) -> None:
    _both(folder, records, pair, INFORMATIVE, plan)


@pytest.mark.parametrize(
    ("pair", "plan"),
    [
        *CASES,
        ("twilio-voice->bland", None),
        ("twilio-voice->bland", CALL_MINUTE),
        ("livekit-sip->livekit-participant", None),
        ("livekit-agent->livekit-sip", PER_COMPONENT),
    ],
)
def test_tiers_quotas_packages_and_fees_same_json(
    folder: Path, records: list[UsageRecord], pair: str, plan: Path | None
) -> None:
    _both(folder, records, pair, folder / "stress.toml", plan)


def test_the_command_line_gives_the_same_json_on_either_engine(
    folder: Path, records: list[UsageRecord]
) -> None:
    csv = folder / "history.csv"
    write_records(csv, records)
    outputs = []
    for engine in ("reference", "duckdb", "auto"):
        args = ["compare", "--from", "twilio-voice", "--to", "telnyx-voice", "--records", str(csv)]
        args += ["--prices", "plan-call-minute.toml", "--format", "json", "--engine", engine]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        outputs.append(json.loads(result.output))
    assert outputs[0] == outputs[1] == outputs[2]


def test_no_call_of_the_from_profile_is_the_same_error(folder: Path, records: list[UsageRecord]) -> None:
    costs = load_cost_card(INFORMATIVE)
    messages = []
    with pytest.raises(InputError) as python:
        compare(records, "plivo-voice", "telnyx-voice", costs)
    messages.append(str(python.value))
    with pytest.raises(InputError) as duckdb:
        compare_vectorised(folder / "history.parquet", "plivo-voice", "telnyx-voice", costs)
    messages.append(str(duckdb.value))
    assert messages[0] == messages[1]


@pytest.mark.parametrize("pair", ["twilio-voice->telnyx-voice", "twilio-voice->bland"])
def test_at_pins_both_sides_and_the_margin_the_same_way(
    folder: Path, records: list[UsageRecord], pair: str
) -> None:
    """The stress card's Twilio price changes on 2026-11-03, inside the history: --at 2026-10-25 prices
    every call at the October price, --at 2026-11-15 at the November one."""
    october = _both(
        folder, records, pair, folder / "stress.toml", CALL_MINUTE, datetime(2026, 10, 25, tzinfo=UTC)
    )
    november = _both(
        folder, records, pair, folder / "stress.toml", CALL_MINUTE, datetime(2026, 11, 15, tzinfo=UTC)
    )
    by_start = _both(folder, records, pair, folder / "stress.toml", CALL_MINUTE)
    costs = {o["total"]["cost_from"] for o in (october, november, by_start)}
    assert len(costs) == 3
    assert october["rules"].startswith("the rules and prices in force on 2026-10-25")


def test_at_before_an_entry_has_a_price_leaves_it_off_and_counts_its_records(
    folder: Path, records: list[UsageRecord]
) -> None:
    """The stress card's LiveKit entries start on 2025-01-01: on 2024-06-01 their records are uncosted."""
    at = datetime(2024, 6, 1, tzinfo=UTC)
    switch = _both(folder, records, "twilio-voice->telnyx-voice", folder / "stress.toml", None, at)
    livekit = sum(1 for r in records if r.provider == "livekit")
    assert switch["total"]["missing_costs"]["records"] == livekit
    assert any(n.startswith("livekit-sip: left off the cost card") for n in switch["notes"])


def test_a_policy_the_engine_cannot_compile_falls_back_with_a_note(
    folder: Path, records: list[UsageRecord], monkeypatch: pytest.MonkeyPatch
) -> None:
    from talktime.engine.compile import UnsupportedPolicy
    from talktime.simulate import switch_run

    def refuse(*args: object, **kwargs: object) -> None:
        raise UnsupportedPolicy("policy 'x': more than 4096 version/rule combinations")

    monkeypatch.setattr(switch_run, "compare_vectorised", refuse)
    csv = folder / "history.csv"
    write_records(csv, records)
    args = ["compare", "--from", "twilio-voice", "--to", "telnyx-voice", "--records", str(csv), "-f", "json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    notes = json.loads(result.output)["notes"]
    assert "used the per-record reference: policy 'x': more than 4096 version/rule combinations" in notes
    refused = CliRunner().invoke(app, [*args, "--engine", "duckdb"])
    assert refused.exit_code != 0
