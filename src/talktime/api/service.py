"""The use cases behind the routes: take a batch of events in, read usage, explain one record. No HTTP here.

Reading sessionizes all of a tenant's events on each request (clear before fast; the event count a
tenant can have before this needs an incremental view is a known limit, see ``docs/ingest.md``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson

from talktime.core.metering.meter import meter_records, summarize
from talktime.core.metering.policy import Policy
from talktime.core.records import UsageRecord, record_to_row
from talktime.errors import InputError, NotFoundError
from talktime.ingest.events import Event, Issue, validate_event
from talktime.ingest.fastpath import Envelope, quick_check
from talktime.ingest.sessionize import DEFAULT_IDLE_TIMEOUT, SessionRecord, sessionize
from talktime.io.results import record_dict, totals_dict
from talktime.providers import builtin
from talktime.store.base import EventStore, RawEvent


@dataclass(frozen=True, slots=True)
class BatchResult:
    """What became of each event of a batch, in order."""

    results: list[dict[str, Any]]
    accepted: int
    duplicate: int
    rejected: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "duplicate": self.duplicate,
            "rejected": self.rejected,
            "results": self.results,
        }


_dumps = orjson.dumps


def ingest(store: EventStore, tenant: str, items: Sequence[Any]) -> BatchResult:
    """Validate every event, store the valid ones in one transaction, and say per event what happened.

    Each event gets the fast check first (:mod:`talktime.ingest.fastpath`); only those it cannot vouch
    for, the rejected ones among them, go through :func:`validate_event`, which names field and reason.
    """
    valid: list[int] = []
    raws: list[RawEvent] = []
    issues: dict[int, tuple[Issue, ...]] = {}
    for index, item in enumerate(items):
        envelope = quick_check(item)
        if envelope is None:
            checked = validate_event(item)
            event = checked.event
            if event is None:
                issues[index] = checked.issues
                continue
            envelope = Envelope(event.source, event.id, event.type, event.subject, event.time)
        valid.append(index)
        raws.append(RawEvent(*envelope, _dumps(item.get("data")).decode()))
    fresh = store.append(tenant, raws) if raws else []
    accepted = sum(fresh)
    duplicate = len(fresh) - accepted
    status = ["rejected"] * len(items)
    for index, new in zip(valid, fresh, strict=True):
        status[index] = "accepted" if new else "duplicate"
    results: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        entry: dict[str, Any] = {"index": index, "status": status[index]}
        if isinstance(item, dict):
            entry["id"] = item.get("id")
            entry["source"] = item.get("source")
        if index in issues:
            entry["errors"] = [issue.as_dict() for issue in issues[index]]
        results.append(entry)
    return BatchResult(results, accepted, duplicate, len(issues))


def _event(raw: RawEvent) -> Event:
    item = {
        "specversion": "1.0",
        "id": raw.id,
        "source": raw.source,
        "type": raw.type,
        "subject": raw.subject,
        "time": None if raw.time is None else raw.time.isoformat(),
        "data": orjson.loads(raw.data),
    }
    checked = validate_event(item)
    if checked.event is None:  # stored events were valid when they came; a rule may have tightened since
        issues = "; ".join(f"{i.field}: {i.reason}" for i in checked.issues)
        raise InputError(f"stored event {raw.source}/{raw.id} no longer validates: {issues}")
    return checked.event


def session_records(
    store: EventStore, tenant: str, as_of: datetime, idle_timeout: timedelta = DEFAULT_IDLE_TIMEOUT
) -> list[SessionRecord]:
    """Every usage record of the tenant, sessionized as of ``as_of``."""
    return sessionize((_event(raw) for raw in store.events(tenant)), as_of=as_of, idle_timeout=idle_timeout)


def policy_by_id(policy_id: str) -> Policy:
    """A built-in profile (the API never reads policy files from the server's disk)."""
    return builtin(policy_id)


def _closable(record: UsageRecord, policy: Policy) -> bool:
    if record.status != "open":
        return True
    return policy.version_at(record.started_at, record.id).params.open_cap_seconds is not None


def usage(
    sessions: Sequence[SessionRecord],
    policy: Policy,
    customer: str | None,
    start: datetime | None,
    end: datetime | None,
) -> dict[str, Any]:
    """Metered totals over the records that started in [start, end) for the customer (all when None).

    Records still open under a policy without ``open_cap_seconds`` cannot be metered yet: they are listed
    under ``open`` and left out of the totals until they close (or the idle timeout closes them).
    """
    chosen = [
        s
        for s in sessions
        if (customer is None or s.record.customer == customer)
        and (start is None or s.record.started_at >= start)
        and (end is None or s.record.started_at < end)
    ]
    meterable = [s.record for s in chosen if _closable(s.record, policy)]
    totals = summarize(meterable, policy)
    return {
        "policy": policy.id,
        "customer": customer,
        "from": None if start is None else start.isoformat(),
        "to": None if end is None else end.isoformat(),
        "totals": totals_dict(totals),
        "open": [s.record.id for s in chosen if not _closable(s.record, policy)],
        "flagged": [s.record.id for s in chosen if s.flags],
    }


def explain_record(sessions: Sequence[SessionRecord], policy: Policy, record_id: str) -> dict[str, Any]:
    """One record metered with its explain trail, its sessionization flags and its fields."""
    found = next((s for s in sessions if s.record.id == record_id), None)
    if found is None:
        raise NotFoundError(f"no record {record_id!r}")
    if not _closable(found.record, policy):
        raise InputError(
            f"record {record_id!r} is still open and policy {policy.id!r} has no open_cap_seconds to close it"
        )
    # Meter the records it may be rounded with (its customer's), so session and period scopes come out right.
    company = [
        s.record
        for s in sessions
        if s.record.customer == found.record.customer and _closable(s.record, policy)
    ]
    metered = next(m for m in meter_records(company, policy) if m.id == record_id)
    return {
        **record_dict(metered),
        "status": found.record.status,
        "flags": list(found.flags),
        "events": found.events,
        "fields": record_to_row(found.record),
    }


def issues_text(issues: Sequence[Issue]) -> str:
    return "; ".join(f"{i.field or 'event'}: {i.reason}" for i in issues)
