"""Metering policies: building them (Python dicts and TOML), versions, and the bad input they refuse.

A bad policy must say which key is wrong (with its path inside the file) and why, every problem at once, and
be a ValueError too.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from talktime.core.metering import meter_record, policy_from_dict
from talktime.core.metering.policy import MeteringParams, Policy
from talktime.core.records import parse_record
from talktime.errors import InputError, PolicyError, TalktimeError
from talktime.providers import builtin, builtin_ids, load_policy, parse_policy_text

V0 = {"effective_from": "2020-01-01"}


def build(*versions: dict[str, Any], **header: Any) -> Policy:
    return policy_from_dict({"id": "t", "name": "test", **header, "versions": list(versions)})


def policy_error(*versions: dict[str, Any], **header: Any) -> str:
    with pytest.raises(PolicyError) as caught:
        build(*versions, **header)
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, InputError)
    assert isinstance(caught.value, TalktimeError)
    return str(caught.value)


# --- building -----------------------------------------------------------------------------------------------


def test_defaults_are_exact_connection_seconds_per_record() -> None:
    params = build(V0).current.params
    assert params == MeteringParams()
    assert (params.basis, params.rounding, params.scope, params.channels) == (
        "connection", "exact", "record", "per_call",
    )  # fmt: skip
    assert params.billed_statuses == ("completed",)


def test_numbers_from_python_as_strings_or_ints_are_exact_decimals() -> None:
    params = build({**V0, "increment_seconds": "0.1", "minimum_seconds": 60}).current.params
    assert params.increment_seconds == Decimal("0.1")
    assert params.minimum_seconds == Decimal(60)


def test_toml_floats_are_read_as_exact_decimals() -> None:
    text = 'id = "t"\nname = "t"\n[[versions]]\neffective_from = 2020-01-01\nincrement_seconds = 0.1\n'
    params = parse_policy_text(text, where="p.toml").current.params
    assert params.increment_seconds == Decimal("0.1")


def test_versions_inherit_from_the_one_before_and_change_only_what_they_state() -> None:
    policy = build(
        {**V0, "basis": "answered", "rounding": "up", "increment_seconds": 60, "free_below_seconds": 1},
        {"effective_from": "2021-07-08", "free_below_seconds": 0},
    )
    first, second = (v.params for v in policy.versions)
    assert first.free_below_seconds == 1
    assert second.free_below_seconds == 0
    assert (second.basis, second.rounding, second.increment_seconds) == ("answered", "up", 60)


def test_plain_date_means_midnight_utc() -> None:
    assert build(V0).versions[0].effective_from == datetime(2020, 1, 1, tzinfo=UTC)


def test_version_at_picks_the_last_version_not_after_the_moment() -> None:
    policy = build(V0, {"effective_from": "2021-01-01", "rounding": "up"})
    assert policy.version_at(datetime(2020, 12, 31, 23, 59, 59, tzinfo=UTC)).params.rounding == "exact"
    assert policy.version_at(datetime(2021, 1, 1, tzinfo=UTC)).params.rounding == "up"
    assert policy.version_at(datetime(2030, 1, 1, tzinfo=UTC)).params.rounding == "up"


def test_rounding_label() -> None:
    assert build({**V0, "rounding": "up", "increment_seconds": 6}).current.params.rounding_label() == "6/6 up"
    thirty_six = build({**V0, "rounding": "up", "initial_seconds": 30, "increment_seconds": 6})
    assert thirty_six.current.params.rounding_label() == "30/6 up"
    assert build(V0).current.params.rounding_label() == "exact"


def test_default_meter_is_the_policy_id_unless_named() -> None:
    assert build(V0).default_meter == "t"
    assert build(V0, meter="minutes").default_meter == "minutes"


def test_the_builtin_twilio_profile_loads_with_source_and_confidence() -> None:
    twilio = load_policy("twilio-voice")
    assert twilio.id == "twilio-voice"
    assert twilio.unit == "minute"
    assert twilio.source
    assert twilio.confidence in {"H", "M", "L"}
    assert "twilio-voice" in builtin_ids()
    assert builtin("twilio-voice") is builtin("twilio-voice")


def test_toml_policy_file_loads_by_path(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(
        'id = "mine"\nname = "Mine"\n[[versions]]\neffective_from = 2024-01-01\nrounding = "up"\n'
    )
    assert load_policy(str(path)).current.params.rounding == "up"


# --- bad policies -------------------------------------------------------------------------------------------


def test_unknown_top_level_key_is_named() -> None:
    message = policy_error(V0, rounding="up")
    assert "rounding: unknown policy key" in message


def test_unknown_version_key_is_named_with_its_path() -> None:
    assert "versions[0].roundng: unknown key" in policy_error({**V0, "roundng": "up"})


def test_unknown_nested_key_is_named_with_its_path() -> None:
    message = policy_error({**V0, "multiplier": {"field": "input_tokens", "per": "3500", "perr": "1"}})
    assert "versions[0].multiplier.perr: unknown key" in message


def test_unknown_key_in_a_toml_file_names_the_file_and_key_path() -> None:
    text = 'id = "t"\nname = "t"\n[[versions]]\neffective_from = 2020-01-01\n\n[[versions]]\n'
    text += "effective_from = 2021-01-01\nincrement_secs = 6\n"
    with pytest.raises(PolicyError) as caught:
        parse_policy_text(text, where="policies/mine.toml")
    assert str(caught.value).startswith("policies/mine.toml: ")
    assert "versions[1].increment_secs: unknown key" in str(caught.value)


def test_invalid_toml_names_the_file() -> None:
    with pytest.raises(PolicyError, match=r"^bad\.toml: not valid TOML"):
        parse_policy_text("id = ", where="bad.toml")


def test_several_invalid_values_are_reported_at_once_in_one_message() -> None:
    message = policy_error(
        {**V0, "rounding": "sideways", "increment_seconds": 0, "period_timezone": "Mars/Base"}
    )
    assert "versions[0].rounding" in message
    assert "sideways" in message or "'up', 'nearest', 'down' or 'exact'" in message
    assert "versions[0].increment_seconds" in message
    assert "versions[0].period_timezone" in message
    assert "Mars/Base" in message


def test_problems_in_different_versions_and_the_header_are_reported_together() -> None:
    message = policy_error(
        {**V0, "channels": "per_person"},
        {"effective_from": "2021-01-01", "minimum_seconds": "-1"},
        colour="red",
    )
    assert "colour: unknown policy key" in message
    assert "versions[0].channels" in message
    assert "versions[1].minimum_seconds" in message


@pytest.mark.parametrize(
    ("params", "key", "why"),
    [
        pytest.param({"basis": "vibes"}, "versions[0].basis", "connection", id="unknown basis"),
        pytest.param({"basis": ["connection"]}, "versions[0].basis", "two or more", id="larger-of of one"),
        pytest.param(
            {"basis": ["speech", "speech"]}, "versions[0].basis", "listed twice", id="larger-of repeated"
        ),
        pytest.param(
            {"kinds": ["robot"]}, "versions[0].kinds", "'robot' is not a record kind", id="unknown kind"
        ),
        pytest.param(
            {"meters": {"robot": "r"}}, "versions[0].meters", "'robot' is not a record kind", id="meter kind"
        ),
        pytest.param(
            {"billed_statuses": ["open"]}, "versions[0].billed_statuses", "open_cap_seconds", id="open billed"
        ),
        pytest.param(
            {"billed_statuses": ["done"]}, "versions[0].billed_statuses", "'done'", id="unknown status"
        ),
        pytest.param(
            {"increment_seconds": "-6"}, "versions[0].increment_seconds", "must be more than 0", id="neg"
        ),
        pytest.param({"minimum_seconds": "-1"}, "versions[0].minimum_seconds", "must be 0 or more", id="min"),
        pytest.param(
            {"open_cap_seconds": 0}, "versions[0].open_cap_seconds", "must be more than 0 (got 0)", id="cap 0"
        ),
        pytest.param({"scope": "year"}, "versions[0].scope", "record", id="unknown scope"),
        pytest.param({"period_timezone": "Mars/Base"}, "versions[0].period_timezone", "IANA", id="zone"),
        pytest.param(
            {"segments": [{"name": "s", "field": "nope", "factor": "1"}]},
            "segments",
            "'nope'",
            id="segment field",
        ),
        pytest.param(
            {"multiplier": {"field": "customer", "per": "1"}}, "multiplier.field", "numeric", id="mult field"
        ),
    ],
)
def test_invalid_value_names_its_key(params: dict[str, Any], key: str, why: str) -> None:
    message = policy_error({**V0, **params})
    assert key in message
    assert why in message


@pytest.mark.parametrize(
    ("params", "key"),
    [
        pytest.param({"increment_seconds": 6.0}, "versions[0].increment_seconds", id="version parameter"),
        pytest.param({"extra_channel_factor": 0.5}, "versions[0].extra_channel_factor", id="channel factor"),
        pytest.param(
            {"multiplier": {"field": "input_tokens", "per": 3500.0}},
            "versions[0].multiplier.per",
            id="nested",
        ),
        pytest.param(
            {"rules": [{"name": "x", "when": {"attr.a": "b"}, "set": {"factor": 0.5}}]},
            "versions[0].rules[0].set.factor",
            id="in a rule",
        ),
    ],
)
def test_a_float_in_a_policy_built_in_python_is_refused(params: dict[str, Any], key: str) -> None:
    message = policy_error({**V0, **params})
    assert key in message
    assert "float" in message


def test_a_rule_setting_an_unknown_parameter_is_named() -> None:
    message = policy_error(
        {**V0, "rules": [{"name": "x", "when": {"attr.a": "b"}, "set": {"colour": "red"}}]}
    )
    assert "versions[0].rules" in message
    assert "colour" in message


def test_a_rule_may_not_change_scope() -> None:
    message = policy_error(
        {**V0, "rules": [{"name": "x", "when": {"attr.a": "b"}, "set": {"scope": "session"}}]}
    )
    assert "scope" in message


def test_a_rule_setting_an_invalid_value_is_named_with_its_path() -> None:
    message = policy_error(
        {**V0, "rules": [{"name": "x", "when": {"attr.a": "b"}, "set": {"increment_seconds": "-1"}}]}
    )
    assert "versions[0].rules[0].set.increment_seconds" in message


def test_a_rule_condition_on_an_unknown_field_is_named() -> None:
    message = policy_error(
        {**V0, "rules": [{"name": "x", "when": {"nonsense": "b"}, "set": {"factor": "2"}}]}
    )
    assert "rules" in message
    assert "'nonsense' is not a record field or attr.<name>" in message


def test_versions_are_required() -> None:
    assert "versions" in policy_error()


def test_versions_must_be_in_increasing_order() -> None:
    message = policy_error({"effective_from": "2021-01-01"}, V0)
    assert "versions: must be listed oldest first" in message


def test_policy_id_is_a_slug() -> None:
    message = policy_error(V0, id="Not A Slug")
    assert "id" in message


def test_unknown_unit_is_named() -> None:
    assert "unit" in policy_error(V0, unit="fortnight")


def test_effective_from_as_a_datetime_without_offset_is_refused() -> None:
    message = policy_error({"effective_from": datetime(2020, 1, 1)})
    assert "effective_from" in message
    assert "UTC offset" in message


def test_a_bad_effective_from_is_reported_once() -> None:
    message = policy_error({"effective_from": datetime(2020, 1, 1)})
    assert "at least 1 item" not in message


def test_effective_from_as_a_string_without_offset_is_refused() -> None:
    message = policy_error({"effective_from": "2020-01-01T00:00:00"})
    assert "effective_from" in message


def test_a_naive_effective_from_never_crashes_the_meter() -> None:
    record = parse_record(
        {"id": "a", "started_at": "2024-01-01T00:00:00Z", "ended_at": "2024-01-01T00:00:10Z"}
    )
    try:
        policy = build({"effective_from": "2020-01-01T00:00:00"})
    except PolicyError:
        return
    meter_record(record, policy)


def test_unknown_builtin_id_lists_the_builtins() -> None:
    with pytest.raises(PolicyError) as caught:
        load_policy("no-such-provider")
    message = str(caught.value)
    assert "no-such-provider" in message
    assert "twilio-voice" in message


def test_missing_policy_file_is_named() -> None:
    with pytest.raises(PolicyError, match=r"nowhere\.toml"):
        load_policy("/nonexistent/nowhere.toml")
