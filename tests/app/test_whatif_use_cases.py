"""``talktime.app.compare``, ``talktime.app.simulate`` and ``talktime.app.methodology`` called directly: the
engine compare chose and why it fell back, both engines' numbers equal, where the history came from, and
the sources a run refuses. Numbers of the small Twilio history are the hand-checked ones of
tests/simulate/test_compare.py."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from talktime.app.compare import CompareEngine, compare
from talktime.app.history import HistorySource
from talktime.app.methodology import PageFormat, describe, page, profiles
from talktime.app.simulate import Generated, simulate
from talktime.core.records import UsageRecord
from talktime.engine.compile import UnsupportedPolicy
from talktime.errors import InputError
from talktime.io.records_io import write_records
from talktime.simulate.report import switch_dict

COSTS = Path("costs-informative.toml")

# A free quota finer than a microsecond of a minute: DuckDB cannot rate it exactly, the reference can.
FINE_QUOTA = """
kind = "cost"
name = "fine quota (tests)"
currency = "USD"
[costs.twilio-voice]
match = { provider = "twilio", kind = ["leg"] }
[[costs.twilio-voice.versions]]
effective_from = 2021-07-08
model = "per_unit"
included = "0.0000000001"
unit_price = "0.0085"
[costs.telnyx-voice]
[[costs.telnyx-voice.versions]]
effective_from = 2020-01-01
model = "per_unit"
unit_price = "0.01"
"""


@pytest.fixture
def history(tmp_path: Path, legs: list[UsageRecord]) -> HistorySource:
    path = tmp_path / "history.csv"
    write_records(path, legs)
    return HistorySource(records=path)


def _notes(history: HistorySource, engine: CompareEngine, costs: Path = COSTS) -> tuple[str, ...]:
    return compare("twilio-voice", "telnyx-voice", history, costs, engine=engine).notes


def test_compare_costs_the_switch(history: HistorySource) -> None:
    switch = compare("twilio-voice", "telnyx-voice", history, COSTS)
    assert switch.total.cost_from == Decimal("0.034") and switch.total.cost_to == Decimal("0.04")


def test_both_engines_give_the_same_switch(history: HistorySource) -> None:
    duckdb = compare("twilio-voice", "telnyx-voice", history, COSTS, engine=CompareEngine.duckdb)
    reference = compare("twilio-voice", "telnyx-voice", history, COSTS, engine=CompareEngine.reference)
    assert switch_dict(duckdb, 10) == switch_dict(reference, 10)


def test_auto_says_why_it_used_the_reference(history: HistorySource, tmp_path: Path) -> None:
    card = tmp_path / "fine.toml"
    card.write_text(FINE_QUOTA, encoding="utf-8")
    notes = _notes(history, CompareEngine.auto, card)
    assert notes[-1] == (
        "used the per-record reference: twilio-voice: an included quota finer than a microsecond of a minute"
    )
    assert not any(
        n.startswith("used the per-record") for n in _notes(history, CompareEngine.reference, card)
    )
    assert not any(n.startswith("used the per-record") for n in _notes(history, CompareEngine.auto))


def test_a_policy_duckdb_cannot_compile_falls_back_only_on_auto(
    history: HistorySource, monkeypatch: pytest.MonkeyPatch
) -> None:
    from talktime.simulate import switch_run

    def refuse(*args: object, **kwargs: object) -> None:
        raise UnsupportedPolicy("policy 'x': too many combinations")

    monkeypatch.setattr(switch_run, "compare_vectorised", refuse)
    assert (
        _notes(history, CompareEngine.auto)[-1]
        == "used the per-record reference: policy 'x': too many combinations"
    )
    with pytest.raises(UnsupportedPolicy):
        _notes(history, CompareEngine.duckdb)


def test_compare_needs_exactly_one_history(history: HistorySource) -> None:
    both = HistorySource(records=history.records, store="events.duckdb", tenant="t")
    for source in (HistorySource(), both):
        with pytest.raises(InputError, match="exactly one of --records FILE or --store URL"):
            compare("twilio-voice", "telnyx-voice", source, COSTS)


def test_simulate_history_meters_each_policy(history: HistorySource) -> None:
    done = simulate(["twilio-voice", "telnyx-voice"], COSTS, history=history)
    sim = done.simulation
    assert sim.records == 3 and sim.source == f"history {history.records}"
    assert [i.policy for i in sim.impacts] == ["twilio-voice", "telnyx-voice"]
    billed = {i.policy: i.billable_seconds for i in sim.impacts}
    assert billed == {"twilio-voice": Decimal(240), "telnyx-voice": Decimal(240)}
    assert done.histogram is None


def test_simulate_generated_calls_are_the_same_for_a_seed() -> None:
    calls = Generated("fixed:45", 20, seed=3)
    first = simulate(["twilio-voice"], COSTS, generate=calls, histogram=True)
    again = simulate(["twilio-voice"], COSTS, generate=calls)
    assert first.simulation.records == 20 and first.simulation.seed == 3
    assert (
        first.simulation.impacts[0].billable_seconds
        == again.simulation.impacts[0].billable_seconds
        == Decimal(20 * 60)
    )
    assert first.histogram is not None and sum(n for _, n in first.histogram[0]) == 20


@pytest.mark.parametrize(
    ("history", "generate", "message"),
    [
        (None, None, "give exactly one of --records FILE, --store URL or --distribution"),
        (HistorySource(records=Path("h.csv")), Generated("fixed:45", 5), "give exactly one of"),
        (None, Generated("fixed:45", None), "--distribution needs --calls N"),
    ],
)
def test_simulate_refuses_what_it_cannot_run(
    history: HistorySource | None, generate: Generated | None, message: str
) -> None:
    with pytest.raises(InputError, match=message):
        simulate(["twilio-voice"], COSTS, history=history, generate=generate)


def test_mixes_shape_generated_calls_only(history: HistorySource) -> None:
    with pytest.raises(InputError, match="--channels and --participants shape generated calls"):
        simulate(["twilio-voice"], COSTS, history=history, generate=Generated(None, None, "2:1"))


def test_profiles_and_pages() -> None:
    twilio = next(p for p in profiles() if p.id == "twilio-voice")
    assert (twilio.unit, twilio.effective_from) == ("minute", "2021-07-08")
    assert describe("twilio-voice").startswith("Twilio Programmable Voice (twilio-voice)")
    assert page("twilio-voice", PageFormat.html).lstrip().startswith("<")
    assert "60" in page("twilio-voice")
