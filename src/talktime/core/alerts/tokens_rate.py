"""LLM tokens per minute far above normal: a call's LLM tokens (input and output, of its records) divided by
its minutes (first start to last end), above the customer's norm (:mod:`.robust`) over the trailing
``window_days``' calls that used tokens, once there are ``min_calls`` of them. Calls shorter than
``min_call_seconds`` are left out (their rate is mostly the agent's fixed prompt); rates are rounded to
0.1 token a minute."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from decimal import Decimal

from talktime.core.alerts.config import AlertConfig
from talktime.core.alerts.model import Alert, CallFacts, Rule, shown
from talktime.core.alerts.robust import norm
from talktime.core.alerts.window import by_customer, recent, when

TENTH = Decimal("0.1")


def rate(call: CallFacts) -> Decimal:
    """Tokens a minute of ``call`` (its duration must be known and positive)."""
    assert call.duration_us
    return (Decimal(call.tokens) * 60_000_000 / call.duration_us).quantize(TENTH)


def tokens_per_minute_alerts(
    calls: Iterable[CallFacts], config: AlertConfig, now: datetime
) -> Iterator[Alert]:
    """An alert for each call whose tokens per minute pass its customer's norm; unit tokens/min."""
    for customer, own in by_customer(calls).items():
        rule = config.rules_for(customer).tokens_per_minute
        if not rule.enabled:
            continue
        shortest = rule.min_call_seconds * 1_000_000
        window = [
            c for c in recent(own, now, rule.window_days) if c.tokens > 0 and (c.duration_us or 0) >= shortest
        ]
        if len(window) < rule.min_calls:
            continue
        rates = [rate(c) for c in window]
        usual = norm(rates, rule.spread, rule.min_factor)
        threshold = usual.threshold.quantize(TENTH)
        for call, value in zip(window, rates, strict=True):
            if value <= threshold:
                continue
            minutes = Decimal(call.duration_us or 0) / 60_000_000
            yield Alert(
                Rule.tokens_per_minute,
                customer,
                call.session,
                value,
                threshold,
                "tokens/min",
                f"call {call.session} used {shown(value, 0)} LLM tokens a minute ({call.tokens:,} tokens "
                f"over {shown(minutes, 1)} min); {customer}'s usual is {shown(usual.median, 0)} tokens/min "
                f"(the median of {usual.sample:,} calls in the {rule.window_days} days to {when(now)}); the "
                f"alert is set above {shown(threshold, 0)} tokens/min",
                call.started_at,
            )
