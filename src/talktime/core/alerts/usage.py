"""Thresholds on a customer's billing period: its spend (what the period's calls are priced at on the price
card, in its currency) and its billable minutes (the minutes the price card sells). An alert fires once
the period passes the threshold, strictly above it; one alert per customer period, however far past."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from talktime.core.alerts.config import AlertConfig
from talktime.core.alerts.model import Alert, PeriodUsage, Rule, shown


def usage_alerts(periods: Iterable[PeriodUsage], config: AlertConfig, currency: str) -> Iterator[Alert]:
    """A spend alert and a minutes alert for each customer period above its customer's thresholds.

    >>> from decimal import Decimal as D
    >>> from talktime.core.alerts.config import CustomerRules
    >>> config = AlertConfig(CustomerRules(spend=D(100)))
    >>> [a.id for a in usage_alerts([PeriodUsage("acme", "2026-10", D("100.01"), D(900), 12)], config, "USD")]
    ['spend/acme/2026-10']
    """
    for usage in periods:
        rules = config.rules_for(usage.customer)
        calls = f"{usage.calls:,} call{'s' if usage.calls != 1 else ''}"
        if rules.spend is not None and usage.spend > rules.spend:
            yield Alert(
                Rule.spend,
                usage.customer,
                usage.period,
                usage.spend,
                rules.spend,
                currency,
                f"{usage.customer} spent {shown(usage.spend)} {currency} in {usage.period} ({calls}, usage "
                f"charges before period fees); the alert is set above {shown(rules.spend)} {currency}",
            )
        if rules.minutes is not None and usage.minutes > rules.minutes:
            yield Alert(
                Rule.minutes,
                usage.customer,
                usage.period,
                usage.minutes,
                rules.minutes,
                "min",
                f"{usage.customer} used {shown(usage.minutes, 1)} billable minutes in {usage.period} "
                f"({calls}); the alert is set above {shown(rules.minutes, 1)} min",
            )
