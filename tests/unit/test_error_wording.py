"""Policy and rate card errors in the file's own words: each key once, as written, and what is allowed.

Pydantic names a value that fits no member of a union once per member (``when.kind.str``), counts list items
with dots (``rules.0``) and speaks of its own types ("a valid tuple"); an inline policy in a card used to
carry its path twice. These tests read the messages a user gets from bad files.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from talktime.core.metering.policy import InvalidPolicy, policy_from_dict
from talktime.core.rating.cards import RateCardError
from talktime.errors import PolicyError
from talktime.io.ratecards import load_cost_card
from talktime.providers import load_policy

V0 = {"effective_from": "2024-01-01"}


def problems(*versions: dict[str, Any], **header: Any) -> list[tuple[str, str]]:
    with pytest.raises(InvalidPolicy) as caught:
        policy_from_dict({"id": "t", "name": "t", **header, "versions": list(versions)})
    return caught.value.problems


def why(found: list[tuple[str, str]], key: str) -> str:
    said = [w for k, w in found if k == key]
    assert len(said) == 1, f"{key} said {len(said)} times in {found}"
    return said[0]


def test_a_value_no_union_member_takes_is_one_problem_in_plain_words() -> None:
    found = problems({**V0, "rules": [{"name": "r", "when": {"kind": 1.5}, "set": {"factor": "2"}}]})
    assert why(found, "versions[0].rules[0].when.kind") == (
        "must be text, true/false or a whole number (got 1.5)"
    )


@pytest.mark.parametrize(
    ("params", "key", "said"),
    [
        (
            {"rounding": "upp"},
            "versions[0].rounding",
            "'upp' is not one of 'up', 'nearest', 'down' or 'exact'",
        ),
        ({"kinds": "leg"}, "versions[0].kinds", 'must be a list, e.g. ["a", "b"] (got \'leg\')'),
        ({"multiplier": 5}, "versions[0].multiplier", "must be a table (got 5)"),
        ({"increment": "x"}, "versions[0].increment_seconds", "'x' is not a number"),
        ({"minimum": "-1"}, "versions[0].minimum_seconds", "must be 0 or more (got '-1')"),
        (
            {"segments": [{"name": "s", "field": "nope", "factor": "1"}]},
            "versions[0].segments[0].field",
            "'nope'",
        ),
    ],
)
def test_each_key_is_named_as_written_with_what_is_allowed(
    params: dict[str, Any], key: str, said: str
) -> None:
    assert said in why(problems({**V0, **params}), key)


def test_no_message_shows_library_internals() -> None:
    bad = {
        "id": "Bad Id",
        "name": "t",
        "unit": "minutes",
        "source": "https://example.com",
        "versions": [{**V0, "kinds": "leg", "rules": [{"name": "r", "when": {"kind": 1.5}}]}],
    }
    with pytest.raises(PolicyError) as caught:
        policy_from_dict(bad)
    message = str(caught.value)
    for internal in (
        "Input should",
        "valid tuple",
        "literal[",
        ".str",
        ".0.",
        "Field required",
        "pattern '^",
    ):
        assert internal not in message, internal
    assert "id: 'Bad Id': use lowercase letters, digits and '-'" in message
    assert "versions[0].rules[0].set: is required" in message


def test_a_problem_a_version_inherits_is_said_on_the_version_that_wrote_it() -> None:
    bad_rule = {"name": "r", "when": {"nosuch": "x"}, "set": {"factor": "2"}}
    found = problems({**V0, "rules": [bad_rule]}, {"effective_from": "2025-01-01", "increment": "6"})
    assert [k for k, _ in found] == ["versions[0].rules[0].when"]


def test_header_and_version_problems_are_reported_together() -> None:
    found = problems({**V0, "rounding": "upp"}, unit="minutes", modality="voice")
    assert [k for k, _ in found] == ["versions[0].rounding", "unit", "modality"]


def test_every_part_problem_at_once_under_its_part() -> None:
    found = problems(
        {**V0, "basis": "input_tokens"},
        unit="token",
        parts=[
            {"name": "in", "basis": "answerd", "colour": "red"},
            {"name": "in"},
        ],
    )
    keys = [k for k, _ in found]
    assert keys == ["parts[0].colour", "parts[0].basis", "parts[1].name", "parts[1]"]
    assert why(found, "parts[1]") == "part 'in' needs a basis of its own"


CARD = """\
kind = "cost"
name = "bad"
currency = "USD"
[costs.twilio-voice]
match = { provider = "twilio", colour = "red" }
[[costs.twilio-voice.versions]]
effective_from = 2021-07-08
model = "graduated"
tiers = [{ up_to = "x", unit_price = "0.1" }, { unit_price = "0.2" }]
[costs.mine]
match = { provider = "mine" }
[costs.mine.policy]
id = "mine"
name = "Mine"
[[costs.mine.policy.versions]]
effective_from = 2024-01-01
basis = "answerd"
rounding = "upp"
[[costs.mine.versions]]
effective_from = "yesterday"
model = "per_unit"
unit_price = "abc"
"""


def test_card_problems_name_each_key_once(tmp_path: Path) -> None:
    path = tmp_path / "card.toml"
    path.write_text(CARD)
    with pytest.raises(RateCardError) as caught:
        load_cost_card(path)
    said = str(caught.value).removeprefix(f"{path}: ").split("; ")
    keys = [item.split(": ", 1)[0] for item in said]
    assert keys == [
        "costs.twilio-voice.match",
        "costs.twilio-voice.versions[0].tiers[0].up_to",
        "costs.mine.policy.versions[0].basis",
        "costs.mine.policy.versions[0].rounding",
        "costs.mine.versions[0].effective_from",
        "costs.mine.versions[0].unit_price",
    ], said
    assert "'colour' is not a field a match can test" in said[0]
    assert not any(re.search(r"costs\.mine\.policy.*costs\.mine\.policy", item) for item in said)


def test_a_policy_file_error_names_the_file_once(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text('id = "p"\nname = "p"\n[[versions]]\neffective_from = 2024-01-01\nrounding = "upp"\n')
    with pytest.raises(PolicyError) as caught:
        load_policy(str(path))
    assert (
        str(caught.value)
        == f"{path}: versions[0].rounding: 'upp' is not one of 'up', 'nearest', 'down' or 'exact'"
    )
