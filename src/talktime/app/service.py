"""The use cases behind the routes: take a batch of events in, read usage, explain one record. No HTTP here.

Reads use the records the store keeps current as events arrive (``talktime.store.records``): usage is one
compiled query over them (``talktime.store.usage``), a record one indexed look-up. :func:`session_records`,
:func:`usage` and :func:`explain_record` are the same answers made the slow way, by sessionizing every
event of the tenant: the reference the stored reads are tested against.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pyarrow as pa

from talktime.core.metering.meter import meter_records, summarize
from talktime.core.metering.policy import Policy
from talktime.core.plausibility import Guards
from talktime.core.records import UsageRecord, record_to_row
from talktime.errors import InputError, NotFoundError
from talktime.ingest.batch import Prepared, prepare_items
from talktime.ingest.events import Event, Issue, validate_event
from talktime.ingest.sessionize import DEFAULT_IDLE_TIMEOUT, SessionRecord, idle_closed, sessionize
from talktime.io.results import record_dict, totals_dict
from talktime.providers import builtin, builtin_ids
from talktime.store import usage as stored_usage
from talktime.store.base import EventStore, RawEvent
from talktime.store.records import typed_event
from talktime.store.reviews import CORRECTION, corrected
from talktime.store.usage import Current, RecordStore, Scope


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


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def ingest(store: EventStore, tenant: str, items: Sequence[Any]) -> BatchResult:
    """Validate every event, store the valid ones in one transaction, and say per event what happened."""
    return ingest_prepared(store, tenant, prepare_items(items))


def _store_rows(store: EventStore, tenant: str, rows: pa.Table) -> list[bool]:
    append_rows = getattr(store, "append_rows", None)
    if append_rows is not None:  # the embedded store takes the Arrow rows as they are
        fresh: list[bool] = append_rows(tenant, rows)
        return fresh
    micros = rows.column("time").cast(pa.int64()).to_pylist()
    raws = [
        RawEvent(
            source, id_, type_, subject, None if us is None else _EPOCH + timedelta(microseconds=us), data
        )
        for source, id_, type_, subject, us, data in zip(
            rows.column("source").to_pylist(),
            rows.column("id").to_pylist(),
            rows.column("type").to_pylist(),
            rows.column("subject").to_pylist(),
            micros,
            rows.column("data").to_pylist(),
            strict=True,
        )
    ]
    return store.append(tenant, raws)


def ingest_prepared(store: EventStore, tenant: str, prepared: Prepared) -> BatchResult:
    """Store a checked batch (:func:`talktime.ingest.batch.prepare_body`) in one transaction and say per
    event what happened: accepted, duplicate (stored before, or earlier in the batch) or rejected."""
    rows = prepared.rows
    fresh = _store_rows(store, tenant, rows) if rows.num_rows else []
    accepted = sum(fresh)
    count = prepared.count
    status: list[str] = ["rejected"] * count
    ids: list[Any] = [None] * count
    sources: list[Any] = [None] * count
    positions: list[int] = rows.column("pos").to_pylist()  # type: ignore[assignment]
    for index, source, id_, new in zip(
        positions,
        rows.column("source").to_pylist(),
        rows.column("id").to_pylist(),
        fresh,
        strict=True,
    ):
        status[index] = "accepted" if new else "duplicate"
        ids[index] = id_
        sources[index] = source
    for index, source, id_ in prepared.repeats:
        status[index] = "duplicate"
        ids[index] = id_
        sources[index] = source
    results = [
        {"index": index, "status": state, "id": ids[index], "source": sources[index]}
        for index, state in enumerate(status)
    ]
    for rejected in prepared.rejected:
        entry = results[rejected.index]
        if rejected.is_object:
            entry["id"] = rejected.id
            entry["source"] = rejected.source
        else:
            del entry["id"], entry["source"]
        entry["errors"] = rejected.errors
    return BatchResult(results, accepted, count - accepted - len(prepared.rejected), len(prepared.rejected))


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
    """Every usage record of the tenant, sessionized from all of its events as of ``as_of`` (the reference
    for the stored records: :func:`current_records` must give the same records)."""
    raws = store.events(tenant)
    sessions = sessionize(
        (_event(raw) for raw in raws if raw.type != CORRECTION), as_of=as_of, idle_timeout=idle_timeout
    )
    fixes: dict[str, list[tuple[datetime | None, str, str]]] = {}
    for raw in raws:
        if raw.type == CORRECTION and raw.subject is not None:
            fixes.setdefault(raw.subject, []).append((raw.time, raw.id, raw.data))
    return [corrected(s, fixes[s.record.id]) if s.record.id in fixes else s for s in sessions]


def policy_by_id(policy_id: str) -> Policy:
    """A built-in profile (the API never reads policy files from the server's disk); an unknown id is
    refused naming the query parameter and the ids there are (never "a .toml file": none is read)."""
    known = builtin_ids()
    if policy_id not in known:
        raise InputError(
            f"query parameter 'policy': {policy_id!r} is not a built-in policy id; known: {', '.join(known)}"
        )
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
        "with_flags": [s.record.id for s in chosen if s.flags],
        "held": [],  # the reference applies no guards: read_usage without guards, the same answer
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


# --- reads from the stored records ------------------------------------------------------------------------


def current_records(
    store: EventStore, tenant: str, as_of: datetime, idle_timeout: timedelta = DEFAULT_IDLE_TIMEOUT
) -> list[Current]:
    """Every usage record of the tenant as of ``as_of``, by id, from the records the store keeps."""
    return stored_usage.current_records(_records_of(store), Scope(tenant), as_of, idle_timeout)


def _records_of(store: EventStore) -> RecordStore:
    if not hasattr(store, "records_dialect"):
        raise TypeError(f"{type(store).__name__} keeps no records table")
    return store  # type: ignore[return-value]  # both stores implement RecordStore


def read_usage(
    store: EventStore,
    tenant: str,
    policy: Policy,
    customer: str | None,
    start: datetime | None,
    end: datetime | None,
    as_of: datetime,
    idle_timeout: timedelta = DEFAULT_IDLE_TIMEOUT,
    guards: Guards | None = None,
) -> dict[str, Any]:
    """:func:`usage` over the stored records: the same answer, from one compiled query. With ``guards``,
    the records the tenant's limits flag are left out of the totals (unless a person accepted them) and
    listed under ``held`` with their reasons."""
    records, scope = _records_of(store), Scope(tenant, customer, start, end)
    held: list[dict[str, Any]] = []
    hold = None
    if guards is not None:
        limits = guards.limits_for(tenant)
        judged = stored_usage.judged(records, scope, as_of, idle_timeout, limits)
        hold = stored_usage.hold_of(judged, limits, as_of)
        held = [{"id": j.record.id, "reasons": list(j.reasons)} for j in judged if j.held]
    found = stored_usage.usage(records, policy, scope, as_of, idle_timeout, hold)
    return {
        "policy": policy.id,
        "customer": customer,
        "from": None if start is None else start.isoformat(),
        "to": None if end is None else end.isoformat(),
        "totals": totals_dict(found.totals),
        "open": found.open,
        "with_flags": found.flagged,
        "held": held,
    }


def _record_scoped(policy: Policy) -> bool:
    """True when every version (and rule) rounds each record on its own: a record is then metered alone."""
    return all(
        version.params.scope == "record" and not any("scope" in rule.set for rule in version.params.rules)
        for component in policy.components()
        for version in component.versions
    )


def read_record(
    store: EventStore,
    tenant: str,
    policy: Policy,
    record_id: str,
    as_of: datetime,
    idle_timeout: timedelta = DEFAULT_IDLE_TIMEOUT,
    guards: Guards | None = None,
) -> dict[str, Any]:
    """:func:`explain_record` from the stored record: its row, and its events only when the idle timeout
    closes it now (the flag then names the timeout, which only a read knows). With ``guards``, ``held``
    says whether the tenant's limits keep it out of usage and invoices and ``reasons`` lists every limit it
    breaks (an accepted record breaks them and is not held); without, nothing is held, as in read_usage."""
    records = _records_of(store)
    stored = records.stored_record(tenant, record_id)
    if stored is None:
        raise NotFoundError(f"no record {record_id!r}")
    found = stored.session
    if stored.record.status == "open" and idle_closed(stored.idle_from, as_of, idle_timeout):
        stored_events = records.record_events(tenant, record_id)
        events = [
            typed_event(e.source, e.id, e.type, e.subject, e.time, e.data)
            for e in stored_events
            if e.type != CORRECTION  # a person's corrections apply after the fold (store.reviews)
        ]
        folded = sessionize(events, as_of=as_of, idle_timeout=idle_timeout)
        found = next(s for s in folded if s.record.id == record_id)
        fixes = [(e.time, e.id, e.data) for e in stored_events if e.type == CORRECTION]
        if fixes:
            found = corrected(found, fixes)
    if not _closable(found.record, policy):
        raise InputError(
            f"record {record_id!r} is still open and policy {policy.id!r} has no open_cap_seconds to close it"
        )
    company = [found.record]
    if not _record_scoped(policy):  # the records it may be rounded with (its customer's), as explain_record
        everyone = stored_usage.current_records(records, Scope(tenant), as_of, idle_timeout)
        company = [
            c.record
            for c in everyone
            if c.record.customer == found.record.customer and _closable(c.record, policy)
        ]
    metered = next(m for m in meter_records(company, policy) if m.id == record_id)
    mine = None
    if guards is not None:  # as read_usage: without guards nothing is held
        limits = guards.limits_for(tenant)
        mine = stored_usage.judged_record(records, tenant, found.record, stored.first_received, as_of, limits)
    return {
        **record_dict(metered),
        "status": found.record.status,
        "flags": list(found.flags),
        "held": mine is not None and mine.held,
        "reasons": [] if mine is None else list(mine.reasons),
        "events": found.events,
        "fields": record_to_row(found.record),
    }
