"""Every rule over one check's inputs: the alerts that are open at ``now``, in a stable order (by customer,
then rule, then when the call or period began)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from talktime.core.alerts.config import AlertConfig
from talktime.core.alerts.long_call import long_call_alerts
from talktime.core.alerts.model import Alert, CallFacts, PeriodUsage, RecordSpan, Rule
from talktime.core.alerts.stuck_call import stuck_call_alerts
from talktime.core.alerts.tokens_rate import tokens_per_minute_alerts
from talktime.core.alerts.usage import usage_alerts

_ORDER = {rule: i for i, rule in enumerate(Rule)}


def open_alerts(
    config: AlertConfig,
    periods: Iterable[PeriodUsage],
    calls: Iterable[CallFacts],
    records: Iterable[RecordSpan],
    currency: str,
    now: datetime,
) -> tuple[Alert, ...]:
    """The alerts every rule raises at ``now``."""
    calls = list(calls)
    found = [
        *usage_alerts(periods, config, currency),
        *long_call_alerts(calls, config, now),
        *tokens_per_minute_alerts(calls, config, now),
        *stuck_call_alerts(records, config, now),
    ]
    return tuple(sorted(found, key=lambda a: (a.customer, _ORDER[a.rule], a.started_at or now, a.subject)))
