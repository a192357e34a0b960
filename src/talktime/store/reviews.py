"""A person's review of records the plausibility guards flag: accepted as they are, or corrected.

* **A correction is an event** (:data:`CORRECTION`, subject the record id, ``data`` ``{"fields", "note"}``)
  stored through the store's ordinary batch path, so the record is re-derived in the same transaction and
  a rebuild derives it again: :func:`~talktime.store.records.derive` applies a record's corrections, in
  order, after ``sessionize``. The events stay (append-only, auditable); the record carries a ``corrected:``
  flag saying what changed, when and why. A correction that no longer fits the record (later events moved
  it) is not applied and flagged ``correction-not-applied:``; nothing fails. ``/v1/events`` never takes this
  type: only the review route (and ``talktime records correct``) makes one.
* **An acceptance is a row** of ``acceptances`` (tenant, record, when, the reasons accepted, note): it
  accepts those reasons, word for word, not the record forever. A record stays accepted while every reason
  :func:`~talktime.core.plausibility.check` gives is among the reasons of its latest acceptance; a change
  that breaks another limit, or the same limit by another amount, holds it back again.

Owns: the correction events and their application, the acceptances table, which records are held back.
Does not own: the limits and their check (``core.plausibility``), the SQL predicates (``held.py``).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import orjson

from talktime.core.plausibility import Accepted, Kept, Limits, check, receipt_moment
from talktime.core.records import ATTR_PREFIX, RECORD_FIELDS, UsageRecord, parse_record, record_to_row
from talktime.engine.dialects import DUCKDB_WIDE, POSTGRES
from talktime.errors import InputError
from talktime.ingest.sessionize import SessionRecord
from talktime.store.held import LOOSEST, receipt_matters

#: The event type of a correction (made by the review route only; ingest refuses it).
CORRECTION: Final = "talktime.record.corrected"
#: The ``source`` of correction events.
SOURCE: Final = "/talktime/review"

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)

ACCEPTANCES_DUCKDB: Final = """
CREATE TABLE IF NOT EXISTS acceptances (
    tenant VARCHAR NOT NULL, rid VARCHAR NOT NULL, accepted_at TIMESTAMPTZ NOT NULL, reasons VARCHAR NOT NULL,
    note VARCHAR
);
"""
ACCEPTANCES_POSTGRES: Final = """
CREATE TABLE IF NOT EXISTS acceptances (
    tenant TEXT NOT NULL, rid TEXT NOT NULL, accepted_at TIMESTAMPTZ NOT NULL, reasons TEXT NOT NULL,
    note TEXT
);
CREATE INDEX IF NOT EXISTS acceptances_rid ON acceptances (tenant, rid);
"""


# --- corrections (pure) -------------------------------------------------------------------------------------


def correction_data(fields: Mapping[str, Any], note: str | None) -> dict[str, Any]:
    """The ``data`` of a correction event; refuses a field that is not a record field or the id."""
    problems = []
    for name, value in fields.items():
        if name == "id":
            problems.append("fields.id: a record's id cannot be corrected")
        elif name not in RECORD_FIELDS and not name.startswith(ATTR_PREFIX):
            problems.append(f"fields.{name}: is not a record field ({', '.join(RECORD_FIELDS[1:])})")
        elif isinstance(value, dict | list | bool):
            problems.append(f"fields.{name}: must be text, a number or null")
    if not fields:
        problems.append("fields: name at least one field to correct")
    if problems:
        raise InputError("; ".join(problems))
    return {"fields": dict(fields), "note": note}


def apply_fields(record: UsageRecord, fields: Mapping[str, Any]) -> UsageRecord:
    """The record with ``fields`` set as the record format reads them (null or blank: absent). A record
    still open that is given an end is completed, unless the fields set a status."""
    row: dict[str, Any] = record_to_row(record)
    for name, value in fields.items():
        row[name] = "" if value is None else value
    if record.status == "open" and fields.get("ended_at") and "status" not in fields:
        row["status"] = "completed"
    return parse_record(row)


def _change(before: UsageRecord, after: UsageRecord, fields: Iterable[str]) -> str:
    parts = []
    for name in fields:
        old, new = before.value_of(name), after.value_of(name)
        shown = [
            v.isoformat() if isinstance(v, datetime) else ("-" if v is None else str(v)) for v in (old, new)
        ]
        parts.append(f"{name} {shown[0]} -> {shown[1]}")
    return ", ".join(parts)


def corrected(
    session: SessionRecord, corrections: Sequence[tuple[datetime | None, str, str]]
) -> SessionRecord:
    """The record with its corrections (time, event id, data text) applied in order of time, then id."""
    record, flags = session.record, list(session.flags)
    for moment, event_id, data in sorted(corrections, key=lambda c: (c[0] or _EPOCH, c[1])):
        payload = orjson.loads(data)
        fields: dict[str, Any] = payload.get("fields", {})
        when = "" if moment is None else f" at {moment.isoformat()}"
        try:
            fixed = apply_fields(record, fields)
        except (InputError, ValueError, TypeError) as error:
            flags.append(f"correction-not-applied: {event_id}{when}: {error}")
            continue
        note = payload.get("note")
        flags.append(f"corrected: {_change(record, fixed, fields)}{when}" + (f" ({note})" if note else ""))
        record = fixed
    idle_from = session.idle_from if record.status == "open" else None
    return SessionRecord(record, tuple(flags), session.events, idle_from)


def correction_event_id(record_id: str, at: datetime) -> str:
    """A fresh id for a correction event, in the order they are made (corrections of one moment apply in
    the order of their ids)."""
    return f"{record_id}@{at.isoformat()}#{time.time_ns():020d}{secrets.token_hex(2)}"


# --- acceptances -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Acceptance:
    record_id: str
    at: datetime
    reasons: tuple[str, ...]
    note: str | None


def _lit(text: str | None) -> str:
    return "NULL" if text is None else "'" + text.replace("'", "''") + "'"


def _moment(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return _EPOCH + timedelta(microseconds=int(value))


def accept(
    store: Any, tenant: str, record_id: str, reasons: Sequence[str], note: str | None, at: datetime
) -> None:
    """Keep an acceptance of ``reasons`` for the record (one statement: it is there or not)."""
    moment = at.astimezone(UTC).isoformat(sep=" ", timespec="microseconds")
    store.read(
        "INSERT INTO acceptances (tenant, rid, accepted_at, reasons, note) VALUES "
        f"({_lit(tenant)}, {_lit(record_id)}, CAST({_lit(moment)} AS TIMESTAMPTZ), "
        f"{_lit(orjson.dumps(list(reasons)).decode())}, {_lit(note)}) RETURNING rid"
    )


def acceptances(store: Any, tenant: str, record_ids: Iterable[str]) -> dict[str, Acceptance]:
    """The latest acceptance of each of the records that has one."""
    wanted = sorted(set(record_ids))
    if not wanted:
        return {}
    at = "epoch_us(accepted_at)" if store.records_dialect == "duckdb" else "accepted_at"
    found: dict[str, Acceptance] = {}
    for start in range(0, len(wanted), 1000):
        ids = ", ".join(_lit(r) for r in wanted[start : start + 1000])
        rows = store.read(
            f"SELECT rid, {at}, reasons, note FROM acceptances "
            f"WHERE tenant = {_lit(tenant)} AND rid IN ({ids})"
        )
        for rid, moment, reasons, note in rows:
            made = Acceptance(str(rid), _moment(moment), tuple(orjson.loads(reasons)), note)
            if rid not in found or made.at >= found[rid].at:
                found[rid] = made
    return found


def acceptances_mark(store: Any, tenant: str) -> tuple[int, str]:
    """How many acceptances the tenant has and when the last was made: a new one changes it."""
    at = "max(accepted_at)" if store.records_dialect == "postgres" else "epoch_us(max(accepted_at))"
    rows = store.read(f"SELECT count(*), {at} FROM acceptances WHERE tenant = {_lit(tenant)}")
    count, last = rows[0] if rows else (0, None)
    return int(count or 0), "" if last is None else str(last)


def accepted_in(
    read: Callable[[str], Sequence[tuple[Any, ...]]],
    postgres: bool,
    tenant: str,
    records: str,
    as_of: datetime,
) -> dict[str, Accepted]:
    """The latest acceptance of each record of ``records`` (SQL: a query of the records table giving ``id``
    and ``first_received``) that has one, each judged as of its first receipt (or ``as_of`` if that is
    earlier), as :func:`judge` judges it; ``read`` runs SQL (in the caller's transaction)."""
    at, first = (
        ("accepted_at", "r.first_received")
        if postgres
        else ("epoch_us(accepted_at)", "epoch_us(r.first_received)")
    )
    rows = read(
        f"SELECT a.rid, {at}, a.reasons, {first} FROM acceptances a JOIN ({records}) r ON r.id = a.rid "
        f"WHERE a.tenant = {_lit(tenant)}"
    )
    latest: dict[str, tuple[datetime, Accepted]] = {}
    for rid, moment, reasons, received in rows:
        made = _moment(moment)
        if rid not in latest or made >= latest[rid][0]:
            judged = receipt_moment(_moment(received), as_of)
            latest[str(rid)] = (made, Accepted(frozenset(orjson.loads(reasons)), judged))
    return {rid: accepted for rid, (_, accepted) in latest.items()}


def tenant_accepted(store: Any, tenant: str, customer: str | None, as_of: datetime) -> dict[str, Accepted]:
    """The latest acceptance of each of the tenant's records (or one customer's) that has one, as
    :func:`accepted_in` gives it: judged as of the record's first receipt, or ``as_of`` if that is earlier."""
    records = f"SELECT id, first_received FROM records WHERE {_tenant_where(tenant, customer)}"
    return accepted_in(store.read, store.records_dialect == "postgres", tenant, records, as_of)


def _tenant_where(tenant: str, customer: str | None) -> str:
    return f"tenant = {_lit(tenant)}" + ("" if customer is None else f" AND customer = {_lit(customer)}")


def receipts_in(
    read: Callable[[str], Sequence[tuple[Any, ...]]],
    postgres: bool,
    where: str,
    as_of: datetime,
    limits: Limits = LOOSEST,
) -> dict[str, datetime]:
    """The moment each record of the records table matching ``where`` (SQL) is judged as of (its first
    receipt, or ``as_of`` if that is earlier), for the records received more than
    :data:`~talktime.core.plausibility.RECEIPT_BOUNDS` before their start or after it: the only ones a
    time-worded limit can flag (:func:`~talktime.store.held.receipt_matters`); given the ``limits`` the face
    judges by, only those they flag in time as of it."""
    d = POSTGRES if postgres else DUCKDB_WIDE
    first = "first_received" if postgres else "epoch_us(first_received)"
    rows = read(f"SELECT id, {first} FROM records WHERE ({where}) AND {receipt_matters(d, as_of, limits)}")
    return {str(rid): receipt_moment(_moment(received), as_of) for rid, received in rows}


def kept_in(
    read: Callable[[str], Sequence[tuple[Any, ...]]],
    postgres: bool,
    tenant: str,
    where: str,
    as_of: datetime,
    limits: Limits = LOOSEST,
) -> Kept:
    """The store's word on the records of the records table matching ``where`` (SQL), for a face that judges
    them apart (:class:`~talktime.core.plausibility.Kept`): the latest acceptance of each a person accepted
    (:func:`accepted_in`) and the moment of each whose receipt a time-worded limit could turn on
    (:func:`receipts_in`: any limit, or the ``limits`` the face judges by, which keeps it to the few they
    flag)."""
    records = f"SELECT id, first_received FROM records WHERE {where}"
    accepted = accepted_in(read, postgres, tenant, records, as_of)
    return Kept(accepted, receipts_in(read, postgres, where, as_of, limits))


def tenant_receipts(store: Any, tenant: str, customer: str | None, as_of: datetime) -> dict[str, datetime]:
    """:func:`receipts_in` over the tenant's records (or one customer's), as of ``as_of``."""
    return receipts_in(
        store.read, store.records_dialect == "postgres", _tenant_where(tenant, customer), as_of
    )


def tenant_kept(
    store: Any, tenant: str, customer: str | None, as_of: datetime, limits: Limits = LOOSEST
) -> Kept:
    """:func:`kept_in` over the tenant's records (or one customer's), as of ``as_of``."""
    postgres = store.records_dialect == "postgres"
    return kept_in(store.read, postgres, tenant, _tenant_where(tenant, customer), as_of, limits)


# --- what is held back --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Judged:
    """A record some limit flags: its reasons now, and the acceptance that lets it count (if any)."""

    record: UsageRecord
    reasons: tuple[str, ...]
    acceptance: Acceptance | None

    @property
    def held(self) -> bool:
        return self.acceptance is None or not set(self.reasons) <= set(self.acceptance.reasons)


def judge(
    found: Iterable[tuple[UsageRecord, datetime]],
    limits: Limits,
    as_of: datetime,
    lookup: Callable[[list[str]], Mapping[str, Acceptance]],
) -> list[Judged]:
    """The records (each with its first received time) that break a limit, judged as of their first
    receipt (or ``as_of`` if that is earlier), with their latest acceptance (``lookup`` by ids)."""
    flagged = []
    for record, first_received in found:
        reasons = check(record, limits, receipt_moment(first_received, as_of))
        if reasons:
            flagged.append((record, reasons))
    accepted = lookup([record.id for record, _ in flagged])
    return [Judged(record, reasons, accepted.get(record.id)) for record, reasons in flagged]
