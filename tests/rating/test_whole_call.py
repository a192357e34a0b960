"""The whole call: a call's carrier minutes, STT seconds, LLM tokens and TTS credits each priced by their own
rule, stacked per call by modality, and a margin that never looks whole while a cost is missing.

The expected amounts are computed by hand in the test from the published unit prices, not by talktime.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from talktime.cli.main import app
from talktime.core.rating.cards import RateCardError, cost_card_from_dict, price_card_from_dict
from talktime.core.rating.margin import margin_view, session_margins
from talktime.core.records import UsageRecord, parse_record
from talktime.io.ratecards import catalog_lookup, policy_resolver
from talktime.io.records_io import write_records

D = Decimal
runner = CliRunner()

# A TTS product billed in credits, 0.5 credit per character on the Flash model, 1 on the others.
TTS_POLICY = {
    "id": "tts-credits",
    "name": "TTS credits",
    "provider": "voiceco",
    "unit": "credit",
    "modality": "tts",
    "versions": [
        {
            "effective_from": "2024-01-01",
            "basis": "characters",
            "kinds": ["tts"],
            "rules": [{"name": "flash", "when": {"attr.model": "flash"}, "set": {"factor": "0.5"}}],
        }
    ],
}

COSTS: dict[str, Any] = {
    "kind": "cost",
    "currency": "USD",
    "costs": {
        "twilio-voice": {
            "match": {"provider": "twilio", "kind": ["leg"]},
            "versions": [{"effective_from": "2021-07-08", "model": "per_unit", "unit_price": "0.0085"}],
        },
        "deepgram-streaming": {
            "match": {"provider": "deepgram", "kind": ["stream"]},
            "versions": [{"effective_from": "2020-01-01", "model": "per_unit", "unit_price": "0.0059"}],
        },
        "openai-mini": {
            "policy": "openai-chat",
            "match": {"provider": "openai", "attr.model": "gpt-4o-mini"},
            "catalog": {"model": "gpt-4o-mini", "provider": "openai", "at": "2026-10-01"},
        },
        "tts": {
            "policy": TTS_POLICY,
            "match": {"provider": "voiceco"},
            "unit": "thousand_credits",
            "versions": [{"effective_from": "2024-01-01", "model": "per_unit", "unit_price": "0.10"}],
        },
    },
}

PRICES: dict[str, Any] = {
    "kind": "price",
    "currency": "USD",
    "components": {
        "call-minutes": {
            "match": {"kind": ["leg"]},
            "policy": "twilio-voice",
            "versions": [{"effective_from": "2021-07-08", "model": "per_unit", "unit_price": "0.12"}],
        }
    },
}


def card(data: dict[str, Any]) -> Any:
    return cost_card_from_dict(data, policy_resolver(None), where="costs", lookup=catalog_lookup)


def prices() -> Any:
    return price_card_from_dict(PRICES, policy_resolver(None), where="prices")


def call(
    session: str, customer: str, *, answered: int, audio: str, tokens: tuple[int, int, int], chars: int
) -> list[UsageRecord]:
    """One call's four records; ``tokens`` is (input incl. cached, cached, output)."""
    start = "2026-10-05T10:00:00+00:00"
    end = f"2026-10-05T10:{answered // 60 + 0:02d}:{answered % 60:02d}+00:00"
    common = {"customer": customer, "session": session, "started_at": start, "ended_at": end}
    return [
        parse_record(
            {**common, "id": f"{session}-leg", "kind": "leg", "provider": "twilio", "answered_at": start}
        ),
        parse_record(
            {
                **common,
                "id": f"{session}-stt",
                "kind": "stream",
                "provider": "deepgram",
                "audio_seconds": audio,
            }
        ),
        parse_record(
            {
                **common,
                "id": f"{session}-llm",
                "kind": "llm",
                "provider": "openai",
                "input_tokens": str(tokens[0]),
                "cached_input_tokens": str(tokens[1]),
                "output_tokens": str(tokens[2]),
                "attr.model": "gpt-4o-mini",
            }
        ),
        parse_record(
            {
                **common,
                "id": f"{session}-tts",
                "kind": "tts",
                "provider": "voiceco",
                "characters": str(chars),
                "attr.model": "flash",
            }
        ),
    ]


CALLS = [
    *call("a", "acme", answered=47, audio="48", tokens=(5000, 2048, 300), chars=1200),
    *call("b", "acme", answered=125, audio="120", tokens=(20000, 16384, 900), chars=3000),
    *call("c", "blue", answered=30, audio="30", tokens=(1000, 0, 50), chars=400),
]


def hand_cost(minutes: int, audio: str, tokens: tuple[int, int, int], chars: int) -> dict[str, Decimal]:
    """The published unit prices applied by hand: Twilio per started minute, Deepgram per exact audio minute,
    gpt-4o-mini $0.15 / $0.075 / $0.60 per million uncached input / cached input / output tokens, and
    $0.10 per thousand credits at 0.5 credit a character."""
    per_million = D(1_000_000)
    llm = (
        (tokens[0] - tokens[1]) * D("0.15") / per_million
        + tokens[1] * D("0.075") / per_million
        + tokens[2] * D("0.60") / per_million
    )
    return {
        "telephony": minutes * D("0.0085"),
        "stt": D(audio) / 60 * D("0.0059"),
        "llm": llm,
        "tts": chars * D("0.5") / 1000 * D("0.10"),
    }


def test_the_cost_stack_of_each_call_equals_a_hand_computation() -> None:
    report = session_margins(CALLS, card(COSTS), prices())
    by_session = {s.session: s for s in report.sessions}
    for session, minutes, audio, tokens, chars in (
        ("a", 1, "48", (5000, 2048, 300), 1200),
        ("b", 3, "120", (20000, 16384, 900), 3000),
        ("c", 1, "30", (1000, 0, 50), 400),
    ):
        expected = hand_cost(minutes, audio, tokens, chars)
        got = by_session[session]
        stack = got.cost_by_modality
        assert {m: stack[m] for m in expected} == expected, session
        assert got.cost == sum(expected.values())
        assert got.price == minutes * D("0.12")
        assert got.margin == minutes * D("0.12") - sum(expected.values())
        assert not got.incomplete
    # call a by hand: 0.0085 + 0.00472 + 0.0007764 + 0.06 = 0.0739964; sold 0.12; margin 0.0460036
    assert by_session["a"].cost == D("0.0739964") and by_session["a"].margin == D("0.0460036")


def test_per_customer_month_rows_add_the_calls_and_price_a_customer_minute() -> None:
    view = margin_view(session_margins(CALLS, card(COSTS), prices()), "customer")
    rows = {row["customer"]: row for row in view.rows}
    acme = hand_cost(1, "48", (5000, 2048, 300), 1200)
    acme_b = hand_cost(3, "120", (20000, 16384, 900), 3000)
    total = sum(acme.values()) + sum(acme_b.values())
    assert rows["acme"]["period"] == "2026-10"
    assert rows["acme"]["cost"] == total
    assert rows["acme"]["cost_llm"] == acme["llm"] + acme_b["llm"]
    assert rows["acme"]["cost_per_minute"] == total / 4  # 4 customer minutes sold
    assert rows["acme"]["incomplete"] is False


def test_token_prices_come_from_the_catalog_with_its_version_on_the_line() -> None:
    costs = card(COSTS)
    llm = [e for e in costs.entries if e.group == "openai-mini"]
    assert [e.id for e in llm] == ["openai-mini.input", "openai-mini.cached_input", "openai-mini.output"]
    assert {e.unit for e in llm} == {"million_tokens"}
    assert all(e.catalog == "genai-prices 0.2.3 (gpt-4o-mini)" for e in llm)
    assert "genai-prices 0.2.3" in llm[0].versions[0].note and "as of 2026-10-01" in llm[0].versions[0].note
    report = session_margins(CALLS, costs, prices())
    assert all(s.catalogs == {"genai-prices 0.2.3 (gpt-4o-mini)"} for s in report.sessions)


def test_a_typed_part_price_overrides_the_catalog() -> None:
    data = json.loads(json.dumps(COSTS))
    data["costs"]["openai-mini"]["parts"] = {
        "output": {
            "unit": "million_tokens",
            "versions": [{"effective_from": "2020-01-01", "model": "per_unit", "unit_price": "0.50"}],
        }
    }
    costs = card(data)
    output = next(e for e in costs.entries if e.id == "openai-mini.output")
    assert output.catalog is None and output.versions[0].model.unit_price == D("0.50")  # type: ignore[attr-defined]
    cached = next(e for e in costs.entries if e.id == "openai-mini.cached_input")
    assert cached.catalog is not None


def test_an_unknown_catalog_model_names_the_entry_and_the_closest_models() -> None:
    data = json.loads(json.dumps(COSTS))
    data["costs"]["openai-mini"]["catalog"] = "gpt-4o-mnii"
    with pytest.raises(RateCardError) as caught:
        card(data)
    message = str(caught.value)
    assert "costs.openai-mini.catalog" in message and "gpt-4o-mnii" in message and "gpt-4o-mini" in message


@pytest.mark.parametrize(
    ("entry", "change", "says"),
    [
        (
            "openai-mini",
            {
                "unit": "minute",
                "versions": [{"effective_from": "2020-01-01", "model": "per_unit", "unit_price": "1"}],
            },
            "'minute' cannot price policy 'openai-chat'",
        ),
        ("twilio-voice", {"unit": "million_tokens"}, "'million_tokens' cannot price policy 'twilio-voice'"),
        ("twilio-voice", {"catalog": "gpt-4o"}, "has no parts to price from a catalog model"),
        (
            "openai-mini",
            {"parts": {"reasoning": {}}},
            "parts.reasoning: policy 'openai-chat' has no such part",
        ),
    ],
)
def test_bad_cards_name_the_key_and_why(entry: str, change: dict[str, Any], says: str) -> None:
    data = json.loads(json.dumps(COSTS))
    data["costs"][entry].update(change)
    if "catalog" not in change and "parts" not in change and entry == "openai-mini":
        del data["costs"][entry]["catalog"]
    with pytest.raises(RateCardError, match=says):
        card(data)


def test_a_call_with_an_uncosted_record_is_incomplete_everywhere(tmp_path: Path) -> None:
    data = json.loads(json.dumps(COSTS))
    del data["costs"]["tts"]
    report = session_margins(CALLS, card(data), prices())
    assert all(s.incomplete for s in report.sessions)
    assert set(report.uncosted_records) == {"a-tts", "b-tts", "c-tts"}
    view = margin_view(report, "session")
    assert all(row["incomplete"] and row["uncosted"] == 1 for row in view.rows)


def test_the_margin_command_marks_incomplete_rows_and_strict_refuses(tmp_path: Path) -> None:
    records = tmp_path / "calls.csv"
    write_records(records, CALLS)
    costs = tmp_path / "costs.toml"
    costs.write_text(_COSTS_WITHOUT_TTS, encoding="utf-8")
    plan = tmp_path / "plan.toml"
    plan.write_text(_PLAN, encoding="utf-8")
    base = ["margin", "--records", str(records), "--costs", str(costs), "--prices", str(plan)]
    table = runner.invoke(app, [*base, "--by", "session"])
    assert table.exit_code == 0, table.output
    lines = [line for line in table.output.splitlines() if " a " in f" {line} " or "│ a " in line]
    assert any("INCOMPLETE (1 uncosted)" in line and "<=" in line for line in lines), table.output
    as_json = json.loads(runner.invoke(app, [*base, "--by", "customer", "--format", "json"]).output)
    assert as_json["complete"] is False
    assert {row["customer"]: row["incomplete"] for row in as_json["rows"]} == {"acme": True, "blue": True}
    strict = runner.invoke(app, [*base, "--strict"])
    assert strict.exit_code == 2
    assert "3 record(s) matched no cost entry" in strict.output and "a-tts" in strict.output


_COSTS_WITHOUT_TTS = """
kind = "cost"
currency = "USD"
[costs.twilio-voice]
match = { provider = "twilio", kind = ["leg"] }
[[costs.twilio-voice.versions]]
effective_from = 2021-07-08
model = "per_unit"
unit_price = "0.0085"
[costs.openai-mini]
policy = "openai-chat"
match = { provider = "openai" }
catalog = { model = "gpt-4o-mini", at = 2026-10-01 }
[costs.deepgram-streaming]
match = { provider = "deepgram", kind = ["stream"] }
[[costs.deepgram-streaming.versions]]
effective_from = 2020-01-01
model = "per_unit"
unit_price = "0.0059"
"""

_PLAN = """
kind = "price"
currency = "USD"
[components.call-minutes]
policy = "twilio-voice"
match = { kind = ["leg"] }
[[components.call-minutes.versions]]
effective_from = 2021-07-08
model = "per_unit"
unit_price = "0.12"
"""


def test_an_additional_entry_prices_a_record_on_top_of_the_first() -> None:
    """A LiveKit Cloud agent bills participant minutes and, on top, agent session minutes."""
    data: dict[str, Any] = {
        "kind": "cost",
        "currency": "USD",
        "costs": {
            "livekit-participant": {
                "match": {"provider": "livekit", "kind": ["participant", "agent"]},
                "versions": [{"effective_from": "2025-01-01", "model": "per_unit", "unit_price": "0.0005"}],
            },
            "livekit-agent": {
                "match": {"provider": "livekit", "kind": ["agent"]},
                "additional": True,
                "versions": [{"effective_from": "2025-01-01", "model": "per_unit", "unit_price": "0.01"}],
            },
        },
    }
    costs = card(data)
    common = {"provider": "livekit", "customer": "acme", "session": "room-1"}
    person = parse_record(
        {
            **common,
            "id": "p",
            "kind": "participant",
            "started_at": "2026-10-01T10:00:00Z",
            "ended_at": "2026-10-01T10:00:55Z",
        }
    )
    agent = parse_record(
        {
            **common,
            "id": "a",
            "kind": "agent",
            "started_at": "2026-10-01T10:00:01Z",
            "ended_at": "2026-10-01T10:00:55Z",
        }
    )
    assert [e.id for e in costs.entries_for(person)] == ["livekit-participant"]
    assert [e.id for e in costs.entries_for(agent)] == ["livekit-participant", "livekit-agent"]
    session = session_margins([person, agent], costs, prices()).sessions[0]
    # 2 participant minutes (person and agent, each rounded up) and 1 agent session minute
    assert session.costs == {"livekit-participant": 2 * D("0.0005"), "livekit-agent": D("0.01")}
    data["costs"]["livekit-agent"]["additional"] = "yes"
    with pytest.raises(RateCardError, match=r"costs\.livekit-agent\.additional: is true or false"):
        card(data)


def test_a_part_named_otherwise_takes_the_catalog_price_its_profile_names() -> None:
    """Anthropic's cache_read part is the catalog's cached_input price; Realtime's text_input its input."""
    data: dict[str, Any] = {
        "kind": "cost",
        "currency": "USD",
        "costs": {
            "claude": {
                "policy": "anthropic-messages",
                "catalog": {"model": "claude-sonnet-4-0", "at": "2026-10-01"},
            },
            "realtime": {
                "policy": "openai-realtime",
                "catalog": {"model": "gpt-4o-realtime-preview", "at": "2026-10-01"},
            },
        },
    }
    prices_of = {e.id: e.versions[0].model.unit_price for e in card(data).entries}  # type: ignore[attr-defined]
    assert prices_of["claude.cache_read"] == D("0.3") and prices_of["claude.cache_write"] == D("3.75")
    assert prices_of["realtime.text_input"] == D(5) and prices_of["realtime.audio_output"] == D(80)


def test_per_minute_rows_say_what_one_customer_minute_costs_by_modality_and_provider() -> None:
    from talktime.core.rating.margin import per_minute

    view = per_minute(margin_view(session_margins(CALLS, card(COSTS), prices()), "customer"))
    acme = next(row for row in view.rows if row["customer"] == "acme")
    a, b = hand_cost(1, "48", (5000, 2048, 300), 1200), hand_cost(3, "120", (20000, 16384, 900), 3000)
    minutes = D(4)
    assert acme["cost_tts"] == (a["tts"] + b["tts"]) / minutes
    assert acme["providers"] == {  # the TTS test card's provider is voiceco
        "deepgram": (a["stt"] + b["stt"]) / minutes,
        "openai": (a["llm"] + b["llm"]) / minutes,
        "twilio": (a["telephony"] + b["telephony"]) / minutes,
        "voiceco": (a["tts"] + b["tts"]) / minutes,
    }
    assert acme["price"] == D("0.12") and acme["cost"] == acme["cost_per_minute"]


def test_an_uncosted_modality_is_unknown_not_zero() -> None:
    data = json.loads(json.dumps(COSTS))
    del data["costs"]["tts"]
    report = session_margins(CALLS, card(data), prices())
    session_rows = margin_view(report, "session").rows
    assert all(row["uncosted_modalities"] == ["tts"] for row in session_rows)
    provider_rows = {row["provider"]: row for row in margin_view(report, "provider").rows}
    assert provider_rows["twilio-voice"]["incomplete"] is False, "a fully costed provider is not incomplete"
    uncosted = provider_rows["(uncosted)"]
    assert (uncosted["sessions"], uncosted["uncosted"], uncosted["incomplete"]) == (3, 3, True)


def test_meter_totals_count_each_record_once_under_parts() -> None:
    from talktime.core.metering.meter import summarize
    from talktime.providers import builtin

    totals = summarize(CALLS, builtin("openai-chat"))
    assert totals.all.records == len(CALLS), "12 records, not 12 x 3 parts"
    assert totals.meters["not-counted"].records == 9
    assert totals.all.provider_reported_records == 0, "the legs' provider figures are not this product's"


def test_a_card_problem_shared_by_the_parts_is_said_once() -> None:
    data = json.loads(json.dumps(COSTS))
    data["costs"]["openai-mini"]["catalog"] = "gpt-4o-mnii"
    with pytest.raises(RateCardError) as caught:
        card(data)
    assert str(caught.value).count("gpt-4o-mnii") == 1 and "has no price" not in str(caught.value)
    data = json.loads(json.dumps(COSTS))
    del data["costs"]["openai-mini"]["catalog"]
    data["costs"]["openai-mini"]["unit"] = "minute"
    data["costs"]["openai-mini"]["versions"] = [
        {"effective_from": "2020-01-01", "model": "per_unit", "unit_price": "1"}
    ]
    with pytest.raises(RateCardError) as caught:
        card(data)
    assert str(caught.value).count("cannot price") == 1
    assert "use one of token, thousand_tokens, million_tokens" in str(caught.value)
