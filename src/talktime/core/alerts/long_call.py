"""A call far longer than its customer's usual: its duration (first start to last end of its records) above
the customer's norm (:mod:`.robust`) over the calls of the trailing ``window_days``, once the window holds
at least ``min_calls`` calls, and never for a call under ``min_minutes``."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from decimal import Decimal

from talktime.core.alerts.config import AlertConfig
from talktime.core.alerts.model import Alert, CallFacts, Rule, shown
from talktime.core.alerts.robust import norm
from talktime.core.alerts.window import by_customer, recent, when

MS = Decimal("0.001")


def long_call_alerts(calls: Iterable[CallFacts], config: AlertConfig, now: datetime) -> Iterator[Alert]:
    """An alert for each call longer than its customer's norm; value and threshold in seconds."""
    for customer, own in by_customer(calls).items():
        rule = config.rules_for(customer).long_call
        if not rule.enabled:
            continue
        window = recent(own, now, rule.window_days)
        if len(window) < rule.min_calls:
            continue
        seconds = [Decimal(c.duration_us or 0).scaleb(-6) for c in window]
        usual = norm(seconds, rule.spread, rule.min_factor)
        threshold = max(usual.threshold, rule.min_minutes * 60).quantize(MS)
        for call, length in zip(window, seconds, strict=True):
            if length <= threshold:
                continue
            yield Alert(
                Rule.long_call,
                customer,
                call.session,
                length,
                threshold,
                "s",
                f"call {call.session} lasted {shown(length / 60, 1)} min; {customer}'s usual call lasts "
                f"{shown(usual.median / 60, 1)} min (the median of {usual.sample:,} calls in the "
                f"{rule.window_days} days to {when(now)}); the alert is set above "
                f"{shown(threshold / 60, 1)} min",
                call.started_at,
            )
