"""Usage read from the stored records: filtered and metered in SQL by the compiled policy, in milliseconds.

A read names a tenant, optionally a customer and a start interval, and "now". The records it sees are the
stored rows (as of never: open sessions open) with the idle timeout applied in SQL: a row still ``open``
whose last event (``idle_from``) is ``idle`` or more before now is ``completed`` and ends at that event,
exactly as :func:`~talktime.ingest.sessionize.sessionize` closes it. The policy's query is the engine's
(:func:`~talktime.engine.compile.compile_policy`), compiled once per policy and store dialect and kept,
over a relation that is this filter; the totals are the engine's, read back by the engine's code.

The scalar reference meter takes over, from each record's exact JSON, when SQL cannot give the reference's
answer: a record the typed columns cannot hold (more than 6 decimals, a count past 64 bits), a record the
policy cannot meter (the reference's own error is the answer), a policy the engine cannot compile, or an
open record before the policy's first version.

Owns: the relation SQL and the compiled-query cache. Does not own: the queries (``talktime.engine``), the
rows (``records.py``), HTTP (``talktime.api``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Protocol

from talktime.core.metering.meter import Totals, summarize
from talktime.core.metering.policy import Policy
from talktime.core.plausibility import Limits
from talktime.core.records import COUNT_FIELDS, UsageRecord
from talktime.engine.compile import (
    Compiled,
    CompiledParts,
    UnsupportedPolicy,
    attr_columns,
    compile_parts,
    compile_policy,
)
from talktime.engine.dialects import DUCKDB_FAST, DUCKDB_WIDE, POSTGRES, Dialect
from talktime.engine.results import totals as engine_totals
from talktime.ingest.sessionize import close_idle, idle_closed
from talktime.store.held import any_reason
from talktime.store.records import Stored, StoredRecord, exact_doc, record_doc, record_from_doc
from talktime.store.reviews import Judged, acceptances, judge

#: Stands for the records relation in a cached query until a read fills in its filter.
_RELATION: Final = "__talktime_stored_records__"
_TEXTS: Final = ("id", "customer", "provider", "product", "session", "kind")
_COLUMNS: Final = (
    "started_at",
    "answered_at",
    "first_audio_at",
    "last_audio_at",
    "audio_seconds",
    "speech_seconds",
    "channels",
    "provider_reported_seconds",
    *COUNT_FIELDS,
)


class RecordStore(Protocol):
    """What a store offers for reading its records (both stores implement it)."""

    @property
    def records_dialect(self) -> str: ...

    def read(self, sql: str) -> list[tuple[Any, ...]]: ...

    def read_stream(self, sql: str) -> Iterator[list[tuple[Any, ...]]]: ...

    def stored_record(self, tenant: str, rid: str) -> StoredRecord | None: ...

    def record_events(self, tenant: str, rid: str) -> list[Stored]: ...


@dataclass(frozen=True, slots=True)
class Scope:
    """Which records a read sees: a tenant's, optionally one customer's, started in [start, end)."""

    tenant: str
    customer: str | None = None
    start: datetime | None = None
    end: datetime | None = None


@dataclass(frozen=True, slots=True)
class Current:
    """A stored record as of a moment (closed by the idle timeout if it is due), and whether it is
    flagged (sessionize found a contradiction, or the idle timeout closed it)."""

    record: UsageRecord
    flagged: bool


@dataclass(frozen=True, slots=True)
class Hold:
    """Records a read leaves out as implausible: those the limits flag (in SQL), but for ``counted``, the
    flagged ones a person accepted; ``held`` names them for a read the reference meter answers."""

    limits: Limits
    as_of: datetime
    counted: frozenset[str]
    held: frozenset[str]


def _dialects(store: RecordStore) -> tuple[Dialect, ...]:
    """The dialects to try in turn: DuckDB's 64-bit one first (a value that does not fit raises)."""
    return (DUCKDB_FAST, DUCKDB_WIDE) if store.records_dialect == "duckdb" else (POSTGRES,)


def _time(dialect: Dialect, moment: datetime) -> str:
    text = moment.astimezone(UTC).isoformat(sep=" ", timespec="microseconds")
    return f"CAST({dialect.str_lit(text)} AS TIMESTAMPTZ)"


class _Filter:
    """The SQL of a scope as of a moment: the WHERE clause and the columns the idle timeout changes."""

    def __init__(self, dialect: Dialect, scope: Scope, as_of: datetime, idle: timedelta) -> None:
        d = self.d = dialect
        conditions = [f"tenant = {d.str_lit(scope.tenant)}"]
        if scope.customer is not None:
            conditions.append(f"customer = {d.str_lit(scope.customer)}")
        if scope.start is not None:
            conditions.append(f"started_at >= {_time(d, scope.start)}")
        if scope.end is not None:
            conditions.append(f"started_at < {_time(d, scope.end)}")
        self.where = " AND ".join(conditions)
        cutoff = _time(d, as_of - idle)
        self.closed_now = f"(status = 'open' AND idle_from IS NOT NULL AND idle_from <= {cutoff})"
        self.status = f"(CASE WHEN {self.closed_now} THEN 'completed' ELSE status END)"
        self.ended = f"(CASE WHEN {self.closed_now} THEN idle_from ELSE ended_at END)"

    def closable(self, policy: Policy) -> str:
        """SQL true when a record can be metered: closed now, or started under a version with a cap."""
        versions = policy.versions
        spans = []
        for number, version in enumerate(versions):
            if version.params.open_cap_seconds is None:
                continue
            span = f"started_at >= {_time(self.d, version.effective_from)}"
            if number + 1 < len(versions):
                span += f" AND started_at < {_time(self.d, versions[number + 1].effective_from)}"
            spans.append(f"({span})")
        return "(" + " OR ".join([f"{self.status} <> 'open'", *spans]) + ")"

    def attr(self, name: str) -> str:
        key = self.d.str_lit(name.removeprefix("attr."))
        if self.d is POSTGRES:
            return f"(CAST(attrs AS json) ->> {key})"
        return f"attrs[{key}]"

    def held(self, hold: Hold) -> str:
        """SQL true for a record the hold leaves out."""
        flagged = any_reason(self.d, self.ended, hold.as_of, hold.limits)
        if not hold.counted:
            return flagged
        ids = ", ".join(self.d.str_lit(i) for i in sorted(hold.counted))
        return f"({flagged} AND id NOT IN ({ids}))"

    def relation(self, policy: Policy, attrs: Sequence[str], hold: Hold | None = None) -> str:
        d = self.d
        columns = [
            "0 AS _row",
            *(d.ident(name) for name in _TEXTS),
            f"{self.status} AS status",
            f"{self.ended} AS ended_at",
            *(d.ident(name) for name in _COLUMNS),
            *(f"{self.attr(name)} AS {d.ident(name)}" for name in attrs),
        ]
        held = "" if hold is None else f" AND NOT {self.held(hold)}"
        return (
            f"(SELECT {', '.join(columns)} FROM records "
            f"WHERE {self.where} AND {self.closable(policy)}{held}) AS _stored"
        )


@dataclass(frozen=True, slots=True)
class _Entry:
    policy: Policy
    compiled: Compiled | CompiledParts | None  # None: the engine cannot compile it
    attrs: list[str]


class QueryCache:
    """Compiled queries per (policy, dialect), made once: compiling a policy takes milliseconds, longer
    than the query itself on a customer-month."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str, str], _Entry] = {}
        self._lock = threading.Lock()

    def get(self, policy: Policy, dialect: Dialect) -> _Entry:
        key = (policy.id, dialect.name, dialect.big)
        with self._lock:
            found = self._entries.get(key)
        if found is not None and (found.policy is policy or found.policy == policy):
            return found
        try:
            attrs = attr_columns(policy)
            compiled: Compiled | CompiledParts | None
            if policy.parts:
                compiled = compile_parts(policy, dialect, _RELATION)
            else:
                compiled = compile_policy(policy, dialect, _RELATION)
        except UnsupportedPolicy:
            compiled, attrs = None, []
        entry = _Entry(policy, compiled, attrs)
        with self._lock:
            self._entries[key] = entry
        return entry


CACHE: Final = QueryCache()


def _engine_totals(
    store: RecordStore, policy: Policy, scope: Scope, as_of: datetime, idle: timedelta, hold: Hold | None
) -> Totals | None:
    """The totals through the compiled query, or None when the reference meter must answer."""
    for dialect in _dialects(store):
        entry = CACHE.get(policy, dialect)
        if entry.compiled is None:
            return None
        relation = _Filter(dialect, scope, as_of, idle).relation(policy, entry.attrs, hold)
        compiled = entry.compiled
        try:
            rows = store.read(compiled.checked_totals.replace(_RELATION, relation))
        except Exception as error:  # DuckDB's 64-bit query raises when a value does not fit: go wide
            if dialect is DUCKDB_FAST and type(error).__name__ in (
                "OutOfRangeException",
                "ConversionException",
            ):
                continue
            raise
        if isinstance(compiled, CompiledParts):
            if any(int(row[7]) for row in rows):
                return None
            merged = Totals.for_policy(policy)
            for part, (component, each) in enumerate(zip(policy.components(), compiled.parts, strict=True)):
                merged.merge(
                    engine_totals([row[1:7] for row in rows if int(row[0]) == part], component, each)
                )
            return merged
        if any(int(row[6]) for row in rows):
            return None
        return engine_totals([row[:6] for row in rows], policy, compiled)
    return None


def _lists(
    store: RecordStore, policy: Policy, scope: Scope, as_of: datetime, idle: timedelta
) -> tuple[list[str], list[str], bool]:
    """The open and the flagged record ids (by id), and whether the reference meter must answer."""
    f = _Filter(POSTGRES if store.records_dialect == "postgres" else DUCKDB_WIDE, scope, as_of, idle)
    closable = f.closable(policy)
    first = _time(f.d, policy.versions[0].effective_from)
    early_open = f"({f.status} = 'open' AND started_at < {first})"
    flagged = f"(flagged OR {f.closed_now})"
    order = f.d.order_text.format(x="id")
    rows = store.read(
        f"SELECT id, {closable}, {flagged}, exact, {early_open} FROM records WHERE {f.where} "
        f"AND (NOT {closable} OR {flagged} OR NOT exact OR {early_open}) ORDER BY {order}"
    )
    still_open = [str(row[0]) for row in rows if not row[1]]
    marked = [str(row[0]) for row in rows if row[2]]
    fallback = any(not row[3] or row[4] for row in rows)
    return still_open, marked, fallback


def current_records(store: RecordStore, scope: Scope, as_of: datetime, idle: timedelta) -> list[Current]:
    """The records of a scope as of ``as_of``, by id, from their exact JSON."""
    f = _Filter(POSTGRES if store.records_dialect == "postgres" else DUCKDB_WIDE, scope, as_of, idle)
    epoch = "epoch_us(idle_from)" if f.d is not POSTGRES else "idle_from"
    rows = store.read(
        f"SELECT doc, flagged, {epoch} FROM records WHERE {f.where} ORDER BY {f.d.order_text.format(x='id')}"
    )
    found = []
    for doc, flagged, idle_from in rows:
        moment = _moment(idle_from)
        record = record_from_doc(doc)
        closed = record.status == "open" and idle_closed(moment, as_of, idle)
        found.append(Current(close_idle(record, moment, as_of, idle), bool(flagged) or closed))
    return found


def _moment(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(value))


@dataclass(frozen=True, slots=True)
class Usage:
    totals: Totals
    open: list[str]
    flagged: list[str]
    engine: bool


def _meterable(record: UsageRecord, policy: Policy) -> bool:
    if record.status != "open":
        return True
    return policy.version_at(record.started_at, record.id).params.open_cap_seconds is not None


def usage(
    store: RecordStore,
    policy: Policy,
    scope: Scope,
    as_of: datetime,
    idle: timedelta,
    hold: Hold | None = None,
) -> Usage:
    """Metered totals of the scope's meterable records, the ids left open and the ids flagged; ``hold``
    leaves out the records the guards flag (None: none are)."""
    still_open, flagged, fallback = _lists(store, policy, scope, as_of, idle)
    totals = None if fallback else _engine_totals(store, policy, scope, as_of, idle, hold)
    if totals is not None:
        return Usage(totals, still_open, flagged, engine=True)
    current = current_records(store, scope, as_of, idle)
    held = frozenset() if hold is None else hold.held
    meterable = [c.record for c in current if _meterable(c.record, policy) and c.record.id not in held]
    return Usage(summarize(meterable, policy), still_open, flagged, engine=False)


def judged(
    store: RecordStore, scope: Scope, as_of: datetime, idle: timedelta, limits: Limits
) -> list[Judged]:
    """The scope's records (as of ``as_of``) that break a limit, by id, with their reasons and their
    latest acceptance: SQL finds them (:mod:`~talktime.store.held`), ``check`` words the reasons."""
    f = _Filter(POSTGRES if store.records_dialect == "postgres" else DUCKDB_WIDE, scope, as_of, idle)
    if f.d is POSTGRES:
        idle_from, first = "idle_from", "first_received"
    else:
        idle_from, first = "epoch_us(idle_from)", "epoch_us(first_received)"
    rows = store.read(
        f"SELECT doc, {idle_from}, {first} FROM records WHERE {f.where} "
        f"AND (NOT exact OR {any_reason(f.d, f.ended, as_of, limits)}) "
        f"ORDER BY {f.d.order_text.format(x='id')}"
    )
    found = []
    for doc, idle_moment, first_received in rows:
        record = close_idle(record_from_doc(doc), _moment(idle_moment), as_of, idle)
        received = _moment(first_received)
        assert received is not None
        found.append((record, received))
    return judge(found, limits, as_of, lambda ids: acceptances(store, scope.tenant, ids))


def judged_record(
    store: RecordStore,
    tenant: str,
    record: UsageRecord,
    first_received: datetime,
    as_of: datetime,
    limits: Limits,
) -> Judged | None:
    """One record (as of ``as_of``), first received at ``first_received``, judged as :func:`judged` judges
    a scope's: None when it breaks no limit. No scan of its customer's records: the record route's read."""
    found = judge([(record, first_received)], limits, as_of, lambda ids: acceptances(store, tenant, ids))
    return found[0] if found else None


def hold_of(found: Sequence[Judged], limits: Limits, as_of: datetime) -> Hold:
    """The :class:`Hold` of judged records: the accepted ones count, the rest are held."""
    counted = frozenset(j.record.id for j in found if not j.held)
    return Hold(limits, as_of, counted, frozenset(j.record.id for j in found if j.held))


def current_docs(store: RecordStore, scope: Scope, as_of: datetime, idle: timedelta) -> Iterator[list[str]]:
    """The scope's records as of ``as_of`` as their exact JSON, by id, in chunks (streamed from the store:
    a tenant's records need not fit in memory)."""
    f = _Filter(POSTGRES if store.records_dialect == "postgres" else DUCKDB_WIDE, scope, as_of, idle)
    epoch = "epoch_us(idle_from)" if f.d is not POSTGRES else "idle_from"
    sql = f"SELECT doc, {epoch} FROM records WHERE {f.where} ORDER BY {f.d.order_text.format(x='id')}"
    for chunk in store.read_stream(sql):
        docs = []
        for doc, idle_from in chunk:
            moment = _moment(idle_from)
            if moment is not None and idle_closed(moment, as_of, idle):
                record = record_from_doc(doc)
                doc = record_doc(close_idle(record, moment, as_of, idle))
            docs.append(exact_doc(doc))
        yield docs
