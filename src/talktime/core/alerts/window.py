"""The calls an anomaly rule looks at: each customer's calls that started in the trailing window before the
check's time, with a known, positive duration. The same calls make the customer's norm and are checked
against it (the norm is robust: a few runaway calls barely move it)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from talktime.core.alerts.model import CallFacts


def by_customer(calls: Iterable[CallFacts]) -> dict[str, list[CallFacts]]:
    found: dict[str, list[CallFacts]] = defaultdict(list)
    for call in calls:
        found[call.customer].append(call)
    return dict(found)


def recent(calls: Iterable[CallFacts], now: datetime, days: int) -> list[CallFacts]:
    """The calls that started in the ``days`` before ``now`` (``now`` included) and have ended."""
    start = now - timedelta(days=days)
    return [c for c in calls if start <= c.started_at <= now and c.duration_us]


def when(now: datetime) -> str:
    """A time in words, in UTC."""
    return f"{now.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
