"""Distribution and mix specs: each form parsed exactly; bad ones refused with a message and exit code 2."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from talktime.cli.main import app
from talktime.core.simulate.spec import (
    Empirical,
    Fixed,
    LogNormal,
    SpecError,
    Uniform,
    parse_distribution,
    parse_mix,
)

GOOD = [
    ("fixed:45", Fixed(Decimal(45))),
    ("fixed:47.3", Fixed(Decimal("47.3"))),
    ("lognormal:mean=90,sigma=0.8", LogNormal(Decimal(90), Decimal("0.8"))),
    ("LogNormal: sigma=1, mean=30", LogNormal(Decimal(30), Decimal(1))),
    ("uniform:5,300", Uniform(Decimal(5), Decimal(300))),
    ("empirical:calls.csv", Empirical(Path("calls.csv"))),
]


@pytest.mark.parametrize(("text", "expected"), GOOD)
def test_each_form_parses(text: str, expected: object) -> None:
    assert parse_distribution(text) == expected


BAD = [
    ("fixed", "write one of"),
    ("fixed:abc", "is not a number"),
    ("fixed:0", "positive"),
    ("fixed:1.0001", "finer than a millisecond"),
    ("uniform:300,5", "HIGH is below LOW"),
    ("uniform:5", "LOW,HIGH"),
    ("lognormal:mean=45", "needs sigma"),
    ("lognormal:mean=45,sigma=9", "from 0 to 5"),
    ("lognormal:mean=45,spread=1", "not mean=SECONDS or sigma=X"),
    ("gamma:2,3", "not a distribution"),
]


@pytest.mark.parametrize(("text", "why"), BAD)
def test_bad_specs_are_refused_with_the_reason(text: str, why: str) -> None:
    with pytest.raises(SpecError, match=why):
        parse_distribution(text)


def test_mixes() -> None:
    assert parse_mix("1:0.7,2:0.3", "channels") == ((1, Decimal("0.7")), (2, Decimal("0.3")))
    for bad, why in [
        ("1:0.7,2:0.2", "add up to 0.9"),
        ("1", "COUNT:SHARE"),
        ("0:1", "between 1 and 64"),
        ("1:0.5,1:0.5", "listed twice"),
    ]:
        with pytest.raises(SpecError, match=why):
            parse_mix(bad, "channels")


@pytest.mark.parametrize(
    ("args", "why"),
    [
        (["--distribution", "lognormal:mean=45", "--calls", "10"], "lognormal needs sigma"),
        (["--distribution", "fixed:45"], "needs --calls"),
        (["--distribution", "fixed:45", "--calls", "10", "--channels", "2:0.5"], "add up to 0.5"),
        ([], "exactly one of"),
        (["--distribution", "empirical:nowhere.csv", "--calls", "10"], "nowhere.csv"),
    ],
)
def test_the_command_line_exits_2_with_a_clear_message(args: list[str], why: str) -> None:
    result = CliRunner().invoke(app, ["simulate", "--policies", "twilio-voice", *args])
    assert result.exit_code == 2
    assert "talktime: error:" in result.output and why in result.output
