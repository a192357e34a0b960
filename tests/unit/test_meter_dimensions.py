"""Golden case tables: one table per metering dimension of the foundation issue (section 3).

Each row is (record fields, policy parameters, expected billable seconds, why). Records are built with
``parse_record`` and policies with ``policy_from_dict``, the way a file would be read. Every expected value
was worked out by hand from the rule in ../shared/reference/provider-rules.md, never copied from output.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from talktime.core.metering import meter_record, meter_records, policy_from_dict, summarize
from talktime.core.metering.policy import Policy
from talktime.core.records import UsageRecord, parse_record
from talktime.errors import MeteringError, RecordError

T0 = datetime.fromisoformat("2024-03-01T10:00:00+00:00")


def at(seconds: str | int, start: datetime = T0) -> str:
    """The ISO timestamp ``seconds`` after ``start`` (exact: the offset is a decimal string)."""
    micro = int(Decimal(str(seconds)).scaleb(6))
    return (start + timedelta(microseconds=micro)).isoformat()


def record(**fields: Any) -> UsageRecord:
    values: dict[str, Any] = {"id": "r1", "started_at": T0.isoformat()}
    values.update(fields)
    return parse_record(values)


def policy(*versions: dict[str, Any], unit: str = "second", **header: Any) -> Policy:
    """A policy with the given versions; a version without effective_from starts 2020-01-01."""
    built = [{"effective_from": "2020-01-01", **v} for v in versions] if versions else None
    data: dict[str, Any] = {"id": "test", "name": "test policy", "unit": unit, **header}
    data["versions"] = built or [{"effective_from": "2020-01-01"}]
    return policy_from_dict(data)


def billable(fields: dict[str, Any], params: dict[str, Any]) -> Decimal:
    return meter_record(record(**fields), policy(params)).billable_seconds


def check(fields: dict[str, Any], params: dict[str, Any], expected: str) -> None:
    got = billable(fields, params)
    assert got == Decimal(expected), f"billed {got} s, expected {expected} s"


# --- time basis ---------------------------------------------------------------------------------------------

BASIS_CASES = [
    pytest.param(
        {"ended_at": at("47.3")},
        {"basis": "connection"},
        "47.3",
        id="connection: start to end, exact",
    ),
    pytest.param(
        {"answered_at": at(5), "ended_at": at("52.3")},
        {"basis": "answered"},
        "47.3",
        id="answered: ringing (5 s) is free",
    ),
    pytest.param(
        {"first_audio_at": at(2), "last_audio_at": at(30), "ended_at": at(40)},
        {"basis": "audio_span"},
        "28",
        id="audio_span: first audio to last audio",
    ),
    pytest.param(
        {"ended_at": at(60), "audio_seconds": "12.5"},
        {"basis": "audio_sent"},
        "12.5",
        id="audio_sent: the audio seconds field, not the connection",
    ),
    pytest.param(
        {"ended_at": at(60), "audio_seconds": "50", "speech_seconds": "8.25"},
        {"basis": "speech"},
        "8.25",
        id="speech: speech seconds only",
    ),
    pytest.param(
        {"ended_at": at(60), "provider_reported_seconds": "33"},
        {"basis": "provider_reported"},
        "33",
        id="provider_reported: what the provider says",
    ),
    pytest.param(
        {"ended_at": at(20), "audio_seconds": "31.5"},
        {"basis": ["connection", "audio_sent"]},
        "31.5",
        id="larger-of: audio sent beats wall clock (Rev.ai)",
    ),
    pytest.param(
        {"ended_at": at(40), "audio_seconds": "31.5"},
        {"basis": ["connection", "audio_sent"]},
        "40",
        id="larger-of: wall clock beats audio sent",
    ),
]


@pytest.mark.parametrize(("fields", "params", "expected"), BASIS_CASES)
def test_time_basis(fields: dict[str, Any], params: dict[str, Any], expected: str) -> None:
    check(fields, params, expected)


def test_actual_seconds_is_the_basis_and_provider_reported_is_kept_apart() -> None:
    metered = meter_record(
        record(answered_at=at(5), ended_at=at("52.3"), provider_reported_seconds="60"),
        policy({"basis": "answered", "rounding": "up", "increment_seconds": 60}),
    )
    assert metered.actual_seconds == Decimal("47.3")
    assert metered.provider_reported_seconds == Decimal(60)
    assert metered.billable_seconds == Decimal(60)


def test_larger_of_trail_names_both_measures_and_the_winner() -> None:
    metered = meter_record(
        record(ended_at=at(20), audio_seconds="31.5"), policy({"basis": ["connection", "audio_sent"]})
    )
    first = metered.explain[0].rule
    assert "connection 20 s" in first
    assert "audio sent 31.5 s" in first
    assert first.endswith("audio sent")


# --- A/B increments -----------------------------------------------------------------------------------------


def ab(first: int | None, increment: int, direction: str = "up") -> dict[str, Any]:
    params: dict[str, Any] = {"rounding": direction, "increment_seconds": increment}
    if first is not None and first != increment:
        params["initial_seconds"] = first
    return params


INCREMENT_CASES = [
    # The reference's examples, "A/B increments" in provider-rules.md.
    pytest.param("11", ab(60, 60), "60", id="60/60 up: 11 s -> 60"),
    pytest.param("96", ab(60, 60), "120", id="60/60 up: 96 s -> 120"),
    pytest.param("1", ab(6, 6), "6", id="6/6 up: 1 -> 6"),
    pytest.param("7", ab(6, 6), "12", id="6/6 up: 7 -> 12"),
    pytest.param("61", ab(6, 6), "66", id="6/6 up: 61 -> 66"),
    pytest.param("10", ab(30, 6), "30", id="30/6 up: 10 -> 30 (anything up to A bills A)"),
    pytest.param("31", ab(30, 6), "36", id="30/6 up: 31 -> 30 + one 6 s block"),
    pytest.param("1.2", ab(1, 1), "2", id="1/1 up: whole seconds, up"),
    pytest.param("5", ab(1, 1), "5", id="1/1 up: a whole second stays"),
    pytest.param("61", ab(60, 1), "61", id="60/1 up: 61 -> 61"),
    pytest.param("60.5", ab(60, 1), "61", id="60/1 up: 60.5 -> 61"),
    pytest.param("59", ab(60, 1), "60", id="60/1 up: under A bills A"),
    pytest.param("60", ab(60, 60), "60", id="60/60 up: an exact minute is not rounded further"),
    # nearest: halves go up
    pytest.param("8.9", ab(6, 6, "nearest"), "6", id="6/6 nearest: 8.9 -> 6"),
    pytest.param("9", ab(6, 6, "nearest"), "12", id="6/6 nearest: 9 (exactly half) -> 12"),
    # With A == B a direction other than up is plain rounding (documented in round_increments): a call under
    # half a block can round to 0; a floor is minimum_seconds' job. With A != B anything up to A bills A.
    pytest.param("29.5", ab(60, 60, "nearest"), "0", id="60/60 nearest: under half a minute -> 0"),
    pytest.param("90", ab(60, 60, "nearest"), "120", id="60/60 nearest: 1.5 min -> 2"),
    pytest.param("32.9", ab(30, 6, "nearest"), "30", id="30/6 nearest: 2.9 s past A -> A"),
    pytest.param("33", ab(30, 6, "nearest"), "36", id="30/6 nearest: 3 s past A -> A + 6"),
    # down
    pytest.param("11.9", ab(6, 6, "down"), "6", id="6/6 down: 11.9 -> 6"),
    pytest.param("119", ab(60, 60, "down"), "60", id="60/60 down: 119 -> 60"),
    pytest.param("10", ab(30, 6, "down"), "30", id="30/6 down: under A still bills A"),
    pytest.param("35", ab(30, 6, "down"), "30", id="30/6 down: 35 -> 30"),
    # per second and exact
    pytest.param("47.3", {"rounding": "up", "increment_seconds": 1}, "48", id="per second: 47.3 -> 48"),
    pytest.param("47.3", {"rounding": "nearest", "increment_seconds": 1}, "47", id="nearest second"),
    pytest.param("47.3", {"rounding": "exact"}, "47.3", id="exact: no rounding"),
    pytest.param("47.3", {}, "47.3", id="default policy: exact connection seconds"),
]


@pytest.mark.parametrize(("seconds", "params", "expected"), INCREMENT_CASES)
def test_increments(seconds: str, params: dict[str, Any], expected: str) -> None:
    check({"ended_at": at(seconds)}, params, expected)


def test_rounding_step_is_labelled_the_way_a_telecom_engineer_says_it() -> None:
    metered = meter_record(record(ended_at=at(10)), policy(ab(30, 6)))
    assert [s.rule for s in metered.explain if s.step == "rounding"] == ["30/6 up"]


def test_billable_quantity_is_in_the_policy_unit() -> None:
    metered = meter_record(record(ended_at=at(96)), policy(ab(60, 60), unit="minute"))
    assert metered.billable_seconds == Decimal(120)
    assert metered.billable_quantity == Decimal(2)
    assert metered.unit == "minute"


# --- minimum and short-call exemption -----------------------------------------------------------------------

MINIMUM_CASES = [
    pytest.param("10", {"minimum_seconds": 60}, "60", id="minimum: 10 s exact -> 60"),
    pytest.param("75", {"minimum_seconds": 60}, "75", id="minimum: above it, untouched"),
    pytest.param("0", {"minimum_seconds": 60}, "0", id="minimum: nothing connected, nothing billed"),
    pytest.param(
        "3",
        {"minimum_seconds": 15, "rounding": "up", "increment_seconds": 1},
        "15",
        id="minimum after rounding: 3 s per second, 15 s minimum (Rev.ai)",
    ),
    pytest.param(
        "0.4",
        {"minimum_seconds": 60, **ab(60, 60)},
        "60",
        id="Twilio today: a sub-second leg is a minute",
    ),
]


@pytest.mark.parametrize(("seconds", "params", "expected"), MINIMUM_CASES)
def test_minimum(seconds: str, params: dict[str, Any], expected: str) -> None:
    check({"ended_at": at(seconds)}, params, expected)


EXEMPTION_CASES = [
    pytest.param("5.9", {"free_below_seconds": 6, **ab(6, 6)}, "0", id="5.9 s raw is under 6: free"),
    pytest.param("6", {"free_below_seconds": 6, **ab(6, 6)}, "6", id="6 s raw is not under 6: billed"),
    pytest.param(
        "9.99",
        {"free_below_seconds": 10, **ab(30, 6)},
        "0",
        id="judged on raw 9.99 s, not on the 30 s it would round to",
    ),
    pytest.param("10", {"free_below_seconds": 10, **ab(30, 6)}, "30", id="10 s raw: billed, rounded to A"),
    pytest.param(
        "0.5",
        {"free_below_seconds": 1, "minimum_seconds": 60, **ab(60, 60)},
        "0",
        id="Twilio before 2021-07-08: a sub-second leg was free despite the minimum",
    ),
]


@pytest.mark.parametrize(("seconds", "params", "expected"), EXEMPTION_CASES)
def test_short_call_exemption(seconds: str, params: dict[str, Any], expected: str) -> None:
    check({"ended_at": at(seconds)}, params, expected)


def test_exempt_record_says_why_in_its_trail() -> None:
    metered = meter_record(record(ended_at=at("5.9")), policy({"free_below_seconds": 6, **ab(6, 6)}))
    assert metered.billable_seconds == 0
    assert metered.actual_seconds == Decimal("5.9")
    assert "under 6 s" in metered.explain[-1].rule


# --- rounding scope -----------------------------------------------------------------------------------------


def by_id(metered: list[Any]) -> dict[str, Decimal]:
    return {m.id: m.billable_seconds for m in metered}


def test_record_scope_rounds_each_record() -> None:
    records = [
        record(id="a", session="s1", ended_at=at(20)),
        record(id="b", session="s1", started_at=at(30), ended_at=at(55)),
    ]
    assert by_id(meter_records(records, policy(ab(60, 60)))) == {"a": 60, "b": 60}


def test_session_scope_sums_then_rounds_with_the_delta_on_the_last_record() -> None:
    # 20 s + 25 s = 45 s -> one minute for the session, not two. The 15 s the rounding adds go on "b",
    # the session's last record (latest start), whatever order the records come in.
    records = [
        record(id="b", session="s1", started_at=at(30), ended_at=at(55)),
        record(id="a", session="s1", ended_at=at(20)),
        record(id="c", session="s2", ended_at=at(10)),
    ]
    got = meter_records(records, policy({**ab(60, 60), "scope": "session"}))
    assert by_id(got) == {"a": Decimal(20), "b": Decimal(40), "c": Decimal(60)}
    last = next(m for m in got if m.id == "b")
    assert "+15 s" in last.explain[-1].rule
    totals = summarize(records, policy({**ab(60, 60), "scope": "session"}))
    assert totals.all.billable_seconds == 120


def test_session_scope_minimum_applies_to_the_session_total() -> None:
    records = [
        record(id="a", session="s1", ended_at=at(5)),
        record(id="b", session="s1", started_at=at(10), ended_at=at(15)),
    ]
    got = meter_records(records, policy({"minimum_seconds": 15, "scope": "session"}))
    assert sum(by_id(got).values()) == 15


def test_meter_record_refuses_a_session_scope_policy() -> None:
    with pytest.raises(MeteringError, match="meter_records"):
        meter_record(record(ended_at=at(5)), policy({"scope": "session", **ab(60, 60)}))


def test_period_scope_is_a_calendar_month_in_the_policy_time_zone() -> None:
    # 23:10 UTC on 31 January is already 00:10 on 1 February in Paris. In UTC the two 20 s calls fall in
    # different months (one minute each); in Paris both are February: 40 s rounded once to one minute.
    records = [
        record(
            id="x",
            customer="acme",
            started_at="2024-01-31T23:10:00+00:00",
            ended_at="2024-01-31T23:10:20+00:00",
        ),
        record(
            id="y",
            customer="acme",
            started_at="2024-02-01T02:00:00+00:00",
            ended_at="2024-02-01T02:00:20+00:00",
        ),
    ]
    utc = meter_records(records, policy({**ab(60, 60), "scope": "period"}))
    assert by_id(utc) == {"x": 60, "y": 60}
    paris = meter_records(
        records, policy({**ab(60, 60), "scope": "period", "period_timezone": "Europe/Paris"})
    )
    assert by_id(paris) == {"x": 20, "y": 40}


def test_period_scope_is_per_customer_and_per_meter() -> None:
    params = {**ab(60, 60), "scope": "period", "meters": {"sip": "sip-minutes"}}
    records = [
        record(id="a1", customer="a", kind="participant", ended_at=at(20)),
        record(id="a2", customer="a", kind="participant", started_at=at(100), ended_at=at(120)),
        record(id="b1", customer="b", kind="participant", ended_at=at(20)),
        record(id="a3", customer="a", kind="sip", ended_at=at(20)),
    ]
    totals = summarize(records, policy(params))
    # customer a webrtc: 40 s -> 60; customer b: 20 s -> 60; customer a sip: 20 s -> 60.
    assert totals.all.billable_seconds == 180
    assert totals.meters["sip-minutes"].billable_seconds == 60
    assert totals.meters["test"].billable_seconds == 120


def test_vonage_reseller_month_total_rounded_up_once() -> None:
    # Vonage via KWC: seconds summed per month, then rounded up to the minute.
    records = [
        record(id=f"c{i}", customer="kwc", started_at=at(i * 100), ended_at=at(i * 100 + 61))
        for i in range(10)
    ]
    totals = summarize(records, policy({**ab(60, 60), "scope": "period"}, unit="minute"))
    assert totals.all.billable_seconds == 660  # 610 s -> 11 minutes, not 10 x 2 minutes
    assert totals.quantity(totals.all) == 11


# --- channels -----------------------------------------------------------------------------------------------

CHANNEL_CASES = [
    pytest.param({"channels": 2}, {"channels": "per_call"}, "300", id="per call: stereo billed once (AWS)"),
    pytest.param({"channels": 2}, {"channels": "per_channel"}, "600", id="per channel: stereo x2 (Deepgram)"),
    pytest.param({"channels": 1}, {"channels": "per_channel"}, "300", id="per channel: mono x1"),
    pytest.param(
        {"channels": 2},
        {"channels": "per_channel", "extra_channel_factor": "0.5"},
        "450",
        id="extra-channel discount: 5 min stereo at 0.5 -> 7.5 min",
    ),
    pytest.param(
        {"channels": 4},
        {"channels": "per_channel", "extra_channel_factor": "0.5"},
        "750",
        id="extra-channel discount: 4 channels = 1 + 3 x 0.5",
    ),
]


@pytest.mark.parametrize(("fields", "params", "expected"), CHANNEL_CASES)
def test_channels(fields: dict[str, Any], params: dict[str, Any], expected: str) -> None:
    check({"ended_at": at(300), **fields}, params, expected)


def test_stereo_discount_in_minutes() -> None:
    metered = meter_record(
        record(ended_at=at(300), channels="2"),
        policy({"channels": "per_channel", "extra_channel_factor": "0.5"}, unit="minute"),
    )
    assert metered.billable_quantity == Decimal("7.5")


def test_channels_multiply_after_rounding_per_channel() -> None:
    # 70 s stereo under 60/60 up per channel: each channel rounds to 120 s, so 240 s; multiplying first
    # (140 s) and rounding after would bill only 180 s.
    check({"ended_at": at(70), "channels": 2}, {**ab(60, 60), "channels": "per_channel"}, "240")


# --- kinds and meters ---------------------------------------------------------------------------------------

LIVEKIT_LIKE = {
    **ab(60, 60),
    "minimum_seconds": 60,
    "kinds": ["participant", "sip"],
    "meters": {"sip": "sip-minutes"},
}


def test_kinds_not_counted_bill_zero_with_reason() -> None:
    metered = meter_record(record(kind="agent", ended_at=at(70)), policy(LIVEKIT_LIKE))
    assert metered.billable_seconds == 0
    assert metered.actual_seconds == 0  # outside the policy: it measures nothing of the record
    assert metered.meter == "not-counted"
    assert "kind agent not counted" in metered.explain[-1].rule


def test_sip_goes_on_its_own_meter() -> None:
    records = [
        record(id="web", kind="participant", ended_at=at(10)),
        record(id="sip", kind="sip", ended_at=at(70)),
        record(id="bot", kind="agent", ended_at=at(70)),
    ]
    got = {m.id: m for m in meter_records(records, policy(LIVEKIT_LIKE, meter="webrtc-minutes"))}
    assert (got["web"].meter, got["web"].billable_seconds) == ("webrtc-minutes", 60)  # 10 s -> 1 min
    assert (got["sip"].meter, got["sip"].billable_seconds) == ("sip-minutes", 120)  # 70 s -> 2 min
    totals = summarize(records, policy(LIVEKIT_LIKE, meter="webrtc-minutes"))
    assert totals.meters["sip-minutes"].billable_seconds == 120
    assert totals.meters["webrtc-minutes"].billable_seconds == 60
    assert totals.all.billable_seconds == 180
    assert totals.all.records == 3


def test_kinds_policy_with_a_record_without_kind_is_an_error() -> None:
    with pytest.raises(RecordError) as caught:
        meter_record(record(ended_at=at(10)), policy(LIVEKIT_LIKE))
    assert caught.value.field == "kind"
    assert "'r1'" in str(caught.value)


def test_twilio_two_leg_call_bills_each_leg() -> None:
    # A 1:20 call with two legs is 2 legs x 2 minutes.
    twilio = {"basis": "answered", **ab(60, 60), "minimum_seconds": 60, "kinds": ["leg"]}
    legs = [
        record(id=f"leg{i}", kind="leg", session="call", answered_at=at(0), ended_at=at(80)) for i in (1, 2)
    ]
    totals = summarize(legs, policy(twilio, unit="minute"))
    assert totals.quantity(totals.all) == 4


# --- open sessions and cap ----------------------------------------------------------------------------------


def test_open_session_is_billed_at_the_cap() -> None:
    # AssemblyAI streaming: an unclosed session is auto-closed at 3 h and billed 3 h.
    metered = meter_record(record(status="open"), policy({"open_cap_seconds": 10800}))
    assert metered.billable_seconds == 10800
    assert any("cap" in s.rule for s in metered.explain)


def test_longer_session_is_capped() -> None:
    metered = meter_record(record(ended_at=at(12000)), policy({"open_cap_seconds": 10800}))
    assert metered.actual_seconds == 12000
    assert metered.billable_seconds == 10800
    assert "capped at 10800 s" in metered.trail()


def test_shorter_session_is_not_touched_by_the_cap() -> None:
    check({"ended_at": at(600)}, {"open_cap_seconds": 10800}, "600")


def test_open_record_without_a_cap_is_an_error_naming_record_and_status() -> None:
    with pytest.raises(MeteringError) as caught:
        meter_record(record(status="open"), policy({}))
    assert "'r1'" in str(caught.value)
    assert "status" in str(caught.value)
    assert isinstance(caught.value, ValueError)


# --- failed and unanswered ----------------------------------------------------------------------------------

LIFECYCLE_CASES = [
    pytest.param({"status": "failed", "ended_at": at(30)}, {}, "status failed", id="failed: free"),
    pytest.param(
        {"status": "unanswered", "ended_at": at(30)},
        {"basis": "answered", **ab(60, 60)},
        "status unanswered",
        id="unanswered with no answered_at: free, not an error",
    ),
    pytest.param({"status": "busy", "ended_at": at(3)}, {}, "status busy", id="busy: free"),
    pytest.param({"status": "canceled", "ended_at": at(3)}, {}, "status canceled", id="canceled: free"),
    pytest.param({"status": "failed"}, {}, "status failed", id="failed without an end: free"),
]


@pytest.mark.parametrize(("fields", "params", "reason"), LIFECYCLE_CASES)
def test_unbilled_status_is_zero_with_the_reason(
    fields: dict[str, Any], params: dict[str, Any], reason: str
) -> None:
    metered = meter_record(record(**fields), policy(params))
    assert metered.billable_seconds == 0
    assert reason in metered.explain[-1].rule


def test_failed_record_is_billed_when_the_policy_bills_failures() -> None:
    check({"status": "failed", "ended_at": at(30)}, {"billed_statuses": ["completed", "failed"]}, "30")


def test_failed_record_still_shows_its_actual_time() -> None:
    metered = meter_record(record(status="failed", ended_at=at(30)), policy({}))
    assert metered.actual_seconds == 30


# --- rules on attributes ------------------------------------------------------------------------------------

EU_RULE = {
    "rules": [{"name": "eu", "when": {"attr.region": "eu"}, "set": {"increment_seconds": 60}}],
    **ab(6, 6),
}


def test_rule_applies_when_the_attribute_matches_ignoring_case() -> None:
    metered = meter_record(record(ended_at=at(7), **{"attr.region": "EU"}), policy(EU_RULE))
    assert metered.billable_seconds == 60
    assert "rule 'eu' applies" in metered.trail()


def test_rule_does_not_apply_to_other_values_or_absent_attributes() -> None:
    assert billable({"ended_at": at(7), "attr.region": "us"}, EU_RULE) == 12
    assert billable({"ended_at": at(7)}, EU_RULE) == 12


def test_retell_opener_rule_needs_every_condition() -> None:
    # Retell: a 10 s minimum only when the call is under 10 s and the agent speaks first.
    params = {
        "rules": [
            {
                "name": "opener",
                "when": {"attr.agent_first": "true", "attr.dynamic_opener": "on"},
                "set": {"minimum_seconds": 10},
            },
        ],
    }
    both = {"ended_at": at(4), "attr.agent_first": "true", "attr.dynamic_opener": "on"}
    assert billable(both, params) == 10
    assert billable({"ended_at": at(4), "attr.agent_first": "true"}, params) == 4
    assert billable({**both, "ended_at": at(25)}, params) == 25


# --- segments, factor, multiplier ---------------------------------------------------------------------------


def test_segment_billed_at_its_own_factor() -> None:
    # ElevenLabs Agents: silence beyond 10 s at 5%. 100 s with 40 s of such silence: 60 + 40 x 0.05 = 62.
    params = {"segments": [{"name": "silence", "field": "attr.long_silence_seconds", "factor": "0.05"}]}
    assert billable({"ended_at": at(100), "attr.long_silence_seconds": "40"}, params) == 62
    assert billable({"ended_at": at(100)}, params) == 100


def test_segment_longer_than_the_basis_is_an_error() -> None:
    params = {"segments": [{"name": "silence", "field": "attr.long_silence_seconds", "factor": "0.05"}]}
    with pytest.raises(RecordError) as caught:
        billable({"ended_at": at(10), "attr.long_silence_seconds": "40"}, params)
    assert caught.value.field == "attr.long_silence_seconds"
    assert caught.value.record_id == "r1"


FACTOR_CASES = [
    pytest.param({"factor": "0.5"}, "50", id="test calls at half"),
    pytest.param({"factor": "2"}, "200", id="burst at 2x"),
    pytest.param({"factor": "0"}, "0", id="free"),
]


@pytest.mark.parametrize(("params", "expected"), FACTOR_CASES)
def test_factor(params: dict[str, Any], expected: str) -> None:
    check({"ended_at": at(100)}, params, expected)


RETELL_TOKENS = {
    **ab(60, 60),
    "multiplier": {"field": "input_tokens", "per": 3500, "above": 3500, "round_to_seconds": 60},
}
MULTIPLIER_CASES = [
    pytest.param("3500", "120", id="at the threshold: no change"),
    pytest.param("7000", "240", id="twice the threshold: twice the minutes"),
    pytest.param("5250", "180", id="1.5x: 3 minutes"),
    pytest.param("4000", "180", id="120 x 4000/3500 = 137.1 s -> rounded up to 3 minutes"),
]


@pytest.mark.parametrize(("tokens", "expected"), MULTIPLIER_CASES)
def test_multiplier(tokens: str, expected: str) -> None:
    check({"ended_at": at(90), "input_tokens": tokens}, RETELL_TOKENS, expected)


def test_multiplier_without_the_quantity_leaves_billable_alone() -> None:
    check({"ended_at": at(90)}, RETELL_TOKENS, "120")


# --- effective-dated versions -------------------------------------------------------------------------------

TELNYX_LIKE = [
    {"effective_from": "2024-01-01", "rounding": "up", "increment_seconds": 6},
    {"effective_from": "2024-06-01", "increment_seconds": 60},
]


@pytest.mark.parametrize(
    ("started_at", "expected", "version"),
    [
        pytest.param("2024-05-31T23:59:59+00:00", "12", "2024-01-01", id="last second of v1: 6/6"),
        pytest.param("2024-06-01T00:00:00+00:00", "60", "2024-06-01", id="v2 from midnight UTC: 60/60"),
        pytest.param(
            "2024-06-01T01:00:00+02:00",
            "12",
            "2024-01-01",
            id="01:00 in Paris is still 31 May in UTC: v1",
        ),
        pytest.param("2024-01-01T00:00:00+00:00", "12", "2024-01-01", id="first instant of v1"),
    ],
)
def test_record_is_metered_by_the_version_in_force_when_it_started(
    started_at: str, expected: str, version: str
) -> None:
    start = datetime.fromisoformat(started_at)
    metered = meter_record(record(started_at=started_at, ended_at=at(7, start)), policy(*TELNYX_LIKE))
    assert metered.billable_seconds == Decimal(expected)
    assert metered.version == version


def test_later_version_inherits_what_it_does_not_change() -> None:
    built = policy(*TELNYX_LIKE)
    assert built.versions[1].params.rounding == "up"


def test_record_starting_across_a_version_change_keeps_its_start_version() -> None:
    metered = meter_record(
        record(started_at="2024-05-31T23:59:00+00:00", ended_at="2024-06-01T00:00:07+00:00"),
        policy(*TELNYX_LIKE),
    )
    assert metered.billable_seconds == 72  # 67 s under 6/6 up


def test_record_before_the_first_version_is_an_error() -> None:
    with pytest.raises(MeteringError) as caught:
        meter_record(
            record(id="early", started_at="2023-12-31T23:59:59+00:00", ended_at="2024-01-01T00:00:10+00:00"),
            policy(*TELNYX_LIKE),
        )
    message = str(caught.value)
    assert "'early'" in message
    assert "started_at" in message
    assert "2024-01-01" in message
    assert isinstance(caught.value, ValueError)


# --- the seeds' examples ------------------------------------------------------------------------------------


def test_seed_100k_calls_of_45s_per_minute_vs_per_second() -> None:
    # 100,000 calls of 45 s: per-minute rounding bills 100,000 minutes, per-second 75,000.
    start = T0
    calls = [
        UsageRecord(id=f"c{i}", started_at=start, ended_at=start + timedelta(seconds=45))
        for i in range(100_000)
    ]
    per_minute = summarize(calls, policy(ab(60, 60), unit="minute"))
    per_second = summarize(calls, policy(ab(1, 1), unit="minute"))
    assert per_minute.quantity(per_minute.all) == 100_000
    assert per_second.quantity(per_second.all) == 75_000
    assert per_minute.all.actual_seconds == per_second.all.actual_seconds == 4_500_000


def test_issue_example_trail() -> None:
    # "answered 47.3 s -> 6/6 up -> 48 s -> x2 channels -> 96 s"
    metered = meter_record(
        record(answered_at=at(5), ended_at=at("52.3"), channels="2"),
        policy({"basis": "answered", **ab(6, 6), "channels": "per_channel"}),
    )
    assert [(s.step, s.input_seconds, s.output_seconds) for s in metered.explain] == [
        ("basis", None, Decimal("47.3")),
        ("rounding", Decimal("47.3"), Decimal(48)),
        ("channels", Decimal(48), Decimal(96)),
    ]
    trail = metered.trail()
    assert trail.startswith("answered")
    assert "47.3 s -> 6/6 up -> 48 s -> x2 channels -> 96 s" in trail
    assert metered.billable_seconds == 96


# --- bad input found while metering -------------------------------------------------------------------------


def test_duplicate_record_ids_are_an_error_naming_the_id() -> None:
    records = [
        record(id="dup", ended_at=at(5)),
        record(id="ok", ended_at=at(5)),
        record(id="dup", ended_at=at(9)),
    ]
    for run in (meter_records, summarize):
        with pytest.raises(RecordError) as caught:
            run(records, policy({}))
        assert caught.value.field == "id"
        assert caught.value.record_id == "dup"
        assert "records 1 and 3" in str(caught.value)
        assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    ("basis", "fields", "missing"),
    [
        pytest.param("audio_sent", {}, "audio_seconds", id="audio_sent without audio_seconds"),
        pytest.param("speech", {}, "speech_seconds", id="speech without speech_seconds"),
        pytest.param("provider_reported", {}, "provider_reported_seconds", id="provider_reported without it"),
        pytest.param("audio_span", {"first_audio_at": at(1)}, "last_audio_at", id="audio_span without last"),
        pytest.param("audio_span", {}, "first_audio_at", id="audio_span without first"),
        pytest.param("answered", {}, "answered_at", id="completed call without answered_at"),
        pytest.param(
            ["connection", "audio_sent"], {}, "audio_seconds", id="larger-of with a measure missing"
        ),
    ],
)
def test_basis_whose_field_is_missing_names_record_and_field(
    basis: Any, fields: dict[str, Any], missing: str
) -> None:
    with pytest.raises(RecordError) as caught:
        meter_record(record(id="call-7", ended_at=at(30), **fields), policy({"basis": basis}))
    assert caught.value.field == missing
    assert caught.value.record_id == "call-7"
    assert "'call-7'" in str(caught.value)
    assert repr(missing) in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_segment_attribute_that_is_not_a_number_names_record_and_field() -> None:
    params = {"segments": [{"name": "silence", "field": "attr.silence", "factor": "0.05"}]}
    with pytest.raises(RecordError) as caught:
        billable({"ended_at": at(52), "attr.silence": "lots"}, params)
    assert caught.value.field == "attr.silence"
    assert caught.value.record_id == "r1"


def test_multiplier_attribute_that_is_not_a_number_names_record_and_field() -> None:
    params = {"multiplier": {"field": "attr.tokens", "per": "3500", "above": "3500"}}
    with pytest.raises(RecordError) as caught:
        billable({"ended_at": at(52), "attr.tokens": "lots"}, params)
    assert caught.value.field == "attr.tokens"
    assert caught.value.record_id == "r1"
