"""A call left open, billing by the hour: a record of the call still open (status ``open`` or no end) for
longer than ``open_after_minutes`` at the check's time, or one that ran longer than ``max_minutes``.
One alert per call, on its longest such record; value and threshold in seconds."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import datetime
from decimal import Decimal

from talktime.core.alerts.config import AlertConfig, StuckCall
from talktime.core.alerts.model import Alert, RecordSpan, Rule, shown
from talktime.core.alerts.window import when

MS = Decimal("0.001")


def _open(record: RecordSpan) -> bool:
    return record.status == "open" or record.ended_at is None


def _seconds(record: RecordSpan, now: datetime) -> Decimal:
    end = now if _open(record) or record.ended_at is None else record.ended_at
    return Decimal((end - record.started_at).total_seconds()).quantize(MS)


def _limit(record: RecordSpan, rule: StuckCall) -> Decimal:
    return (rule.open_after_minutes if _open(record) else rule.max_minutes) * 60


def _hours(seconds: Decimal) -> str:
    return f"{shown(seconds / 3600, 1)} h" if seconds >= 3600 else f"{shown(seconds / 60, 1)} min"


def stuck_call_alerts(records: Iterable[RecordSpan], config: AlertConfig, now: datetime) -> Iterator[Alert]:
    """An alert for each call with a record open past ``open_after_minutes`` or longer than
    ``max_minutes`` (records that started after ``now`` are not judged)."""
    calls: dict[tuple[str, str], list[tuple[Decimal, Decimal, RecordSpan]]] = defaultdict(list)
    for record in records:
        rule = config.rules_for(record.customer).stuck_call
        if not rule.enabled or record.started_at > now:
            continue
        seconds, limit = _seconds(record, now), _limit(record, rule)
        if seconds > limit:
            calls[(record.customer, record.session)].append((seconds, limit, record))
    for (customer, session), found in calls.items():
        seconds, limit, record = max(found, key=lambda f: (f[0], f[2].record_id))
        what = f"record {record.record_id} ({record.kind or 'record'}, {record.provider or 'no provider'})"
        others = f"; {len(found) - 1} more of its records too" if len(found) > 1 else ""
        if _open(record):
            said = (
                f"{what} of call {session} is still open {_hours(seconds)} after it started (no end as of "
                f"{when(now)}), billing until it is closed or its policy's cap{others}; the alert is set at "
                f"{shown(limit / 60, 0)} min open"
            )
        else:
            said = (
                f"{what} of call {session} lasted {_hours(seconds)}, longer than any call should{others}; "
                f"the alert is set above {shown(limit / 60, 0)} min"
            )
        yield Alert(Rule.stuck_call, customer, session, seconds, limit, "s", said, record.started_at)
