"""Each alert rule on its own (pure, no files): a planted anomaly fires with the value and threshold a reader
needs, a normal month does not, and the parameters move the line where docs/alerts.md says."""

from __future__ import annotations

import dataclasses
import doctest
from datetime import timedelta
from decimal import Decimal

import pytest

from alerts.planted import (
    LONG_CALL,
    LONG_CUSTOMER,
    MONTH_END,
    OPEN_CALL,
    OPEN_CUSTOMER,
    TOKENS_CALL,
    TOKENS_CUSTOMER,
    facts,
    normal_month,
    planted_month,
)
from talktime.app import alert_delivery
from talktime.core.alerts import robust, usage
from talktime.core.alerts.config import AlertConfig, CustomerRules, LongCall, StuckCall, TokensPerMinute
from talktime.core.alerts.long_call import long_call_alerts
from talktime.core.alerts.model import PeriodUsage, RecordSpan, Rule
from talktime.core.alerts.robust import norm
from talktime.core.alerts.stuck_call import stuck_call_alerts
from talktime.core.alerts.tokens_rate import tokens_per_minute_alerts
from talktime.core.alerts.window import recent

DEFAULTS = AlertConfig()
FOUR_HOURS = timedelta(minutes=240)


def test_the_doctests_hold() -> None:
    for module in (robust, usage, alert_delivery):
        assert doctest.testmod(module).failed == 0


@pytest.mark.parametrize("seed", [1, 2, 3, 7])
def test_a_normal_month_raises_no_anomaly(seed: int) -> None:
    """3,000 synthetic calls (lognormal lengths up to 30 min, a share of very short calls, tokens growing
    with the conversation): with the default parameters, nothing stands out."""
    calls, spans = facts(normal_month(3000, seed), FOUR_HOURS)
    assert list(long_call_alerts(calls, DEFAULTS, MONTH_END)) == []
    assert list(tokens_per_minute_alerts(calls, DEFAULTS, MONTH_END)) == []
    assert list(stuck_call_alerts(spans, DEFAULTS, MONTH_END)) == []


def test_a_call_far_longer_than_usual_fires() -> None:
    calls, _ = facts(planted_month(), FOUR_HOURS)
    found = list(long_call_alerts(calls, DEFAULTS, MONTH_END))
    assert [(a.customer, a.subject) for a in found] == [(LONG_CUSTOMER, LONG_CALL)]
    alert = found[0]
    assert alert.rule is Rule.long_call and alert.unit == "s"
    assert alert.value == Decimal(6000)  # first start to last end: 100 minutes
    assert Decimal(300) < alert.threshold < Decimal(6000)
    assert "lasted 100.0 min" in alert.message and "the alert is set above" in alert.message
    assert alert.id == f"long-call/{LONG_CUSTOMER}/{LONG_CALL}"


def test_the_long_call_rule_needs_its_minimum_sample() -> None:
    calls, _ = facts(planted_month(), FOUR_HOURS)
    own = len(recent([c for c in calls if c.customer == LONG_CUSTOMER], MONTH_END, 30))
    strict = AlertConfig(CustomerRules(long_call=LongCall(min_calls=own + 1)))
    assert list(long_call_alerts(calls, strict, MONTH_END)) == []
    enough = AlertConfig(CustomerRules(long_call=LongCall(min_calls=own)))
    assert [a.subject for a in long_call_alerts(calls, enough, MONTH_END)] == [LONG_CALL]


def test_the_long_call_window_leaves_older_calls_out() -> None:
    calls, _ = facts(planted_month(), FOUR_HOURS)
    later = MONTH_END + timedelta(days=14)  # the call (14 October) is 31 days before: outside 30 days
    assert [a.subject for a in long_call_alerts(calls, DEFAULTS, later)] == []


def test_the_floor_keeps_uniform_calls_quiet() -> None:
    """Calls that all last about the same have a MAD near zero: the threshold is still min_factor x the
    median, and min_minutes at least."""
    calls, _ = facts(planted_month(), FOUR_HOURS)
    same = [dataclasses.replace(c, duration_us=60_000_000) for c in calls if c.customer == LONG_CUSTOMER]
    bit_longer = dataclasses.replace(same[0], session="call-a-bit-longer", duration_us=150_000_000)
    assert list(long_call_alerts([*same, bit_longer], DEFAULTS, MONTH_END)) == []
    far = dataclasses.replace(same[0], session="call-far", duration_us=400_000_000)
    found = list(long_call_alerts([*same, far], DEFAULTS, MONTH_END))
    assert [(a.subject, a.threshold) for a in found] == [("call-far", Decimal(300))]  # min_minutes = 5


def test_tokens_per_minute_far_above_normal_fires() -> None:
    calls, _ = facts(planted_month(), FOUR_HOURS)
    found = list(tokens_per_minute_alerts(calls, DEFAULTS, MONTH_END))
    assert [(a.customer, a.subject) for a in found] == [(TOKENS_CUSTOMER, TOKENS_CALL)]
    alert = found[0]
    assert alert.unit == "tokens/min"
    assert alert.value == Decimal(70_000)  # 210,000 tokens over the call's 3 minutes
    assert "210,000 tokens over 3.0 min" in alert.message


def test_short_calls_are_left_out_of_the_token_rate() -> None:
    calls, _ = facts(planted_month(), FOUR_HOURS)
    longer = AlertConfig(CustomerRules(tokens_per_minute=TokensPerMinute(min_call_seconds=Decimal(181))))
    assert [a.subject for a in tokens_per_minute_alerts(calls, longer, MONTH_END)] == []


def test_a_call_left_open_fires_once_past_its_limit() -> None:
    _, spans = facts(planted_month(), FOUR_HOURS)
    found = list(stuck_call_alerts(spans, DEFAULTS, MONTH_END))
    assert [(a.customer, a.subject) for a in found] == [(OPEN_CUSTOMER, OPEN_CALL)]
    alert = found[0]
    assert alert.value == Decimal(5 * 3600 - 4) and alert.threshold == Decimal(3600)
    assert "still open 5.0 h after it started" in alert.message
    early = MONTH_END - timedelta(hours=4, minutes=1)  # open 59 minutes then: not yet
    assert list(stuck_call_alerts(spans, DEFAULTS, early)) == []
    off = AlertConfig(customers={OPEN_CUSTOMER: CustomerRules(stuck_call=StuckCall(enabled=False))})
    assert list(stuck_call_alerts(spans, off, MONTH_END)) == []


def test_a_record_that_ran_for_hours_fires_one_alert_per_call() -> None:
    start = MONTH_END - timedelta(hours=10)
    spans = [
        RecordSpan("leg", "acme", "call-9", "leg", "twilio", "completed", start, start + timedelta(hours=6)),
        RecordSpan("sip", "acme", "call-9", "sip", "livekit", "completed", start, start + timedelta(hours=5)),
        RecordSpan("ok", "acme", "call-8", "leg", "twilio", "completed", start, start + timedelta(hours=3)),
    ]
    found = list(stuck_call_alerts(spans, DEFAULTS, MONTH_END))
    assert [(a.subject, a.value, a.threshold) for a in found] == [("call-9", Decimal(21600), Decimal(14400))]
    assert "record leg (leg, twilio) of call call-9 lasted 6.0 h" in found[0].message
    assert "1 more of its records too" in found[0].message


def test_spend_and_minutes_thresholds_per_customer() -> None:
    periods = [
        PeriodUsage("acme", "2026-10", Decimal("100.00"), Decimal(900), 80),
        PeriodUsage("acme", "2026-11", Decimal("100.01"), Decimal(901), 81),
        PeriodUsage("blue", "2026-10", Decimal("20"), Decimal(100), 9),
    ]
    config = AlertConfig(
        CustomerRules(spend=Decimal(100), minutes=Decimal(900)),
        {"blue": CustomerRules(spend=Decimal(10))},
    )
    found = list(usage.usage_alerts(periods, config, "USD"))
    assert [a.id for a in found] == ["spend/acme/2026-11", "minutes/acme/2026-11", "spend/blue/2026-10"]
    assert found[0].message.startswith("acme spent 100.01 USD in 2026-11 (81 calls")
    assert found[2].threshold == Decimal(10) and found[2].unit == "USD"


def test_one_runaway_value_barely_moves_the_norm() -> None:
    values = [Decimal(60 + i) for i in range(40)]
    quiet = norm(values, Decimal(4), Decimal(1))
    loud = norm([*values[:-1], Decimal(10**9)], Decimal(4), Decimal(1))
    assert loud.median == quiet.median
    assert loud.threshold == quiet.threshold


def test_the_norm_is_the_formula_on_logarithms() -> None:
    """The ratio shortcut gives what the formula says, worked out on the logarithms with floats."""
    import math
    import random
    import statistics

    rng = random.Random(5)
    for size in (30, 31, 200):
        values = [Decimal(round(rng.lognormvariate(4, 0.8), 3)) for _ in range(size)]
        logs = [math.log(v) for v in values]
        centre = statistics.median(logs)
        mad = statistics.median([abs(x - centre) for x in logs])
        expected = math.exp(centre + 4 * 1.4826 * mad)
        found = norm(values, Decimal(4), Decimal(1))
        assert math.isclose(float(found.threshold), expected, rel_tol=1e-9), size
        assert found.median == statistics.median(values)
