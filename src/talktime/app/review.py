"""``review``: the records a tenant's plausibility guards flag in the store, and a person's review of them.

* :func:`flagged`: the records the limits flag, ``held`` (out of usage and the invoices) or ``accepted``
  (a person accepted every present reason), each with its reasons.
* :func:`review`: accept a flagged record's present reasons, word for word, or correct its fields with a
  correction event (the record is derived again and checked again at once); ``talktime.store.reviews``
  says how both are kept.
* :func:`held_months`: each customer month whose draft holds records back, read live from the store, with
  the draft's total without them and with them billed as they are: the draft is ``GET /v1/invoices``'
  (the same records, holds and acceptances as of the same moment), so the dashboard's review page moves
  the moment a review is kept. :func:`review_mark` changes whenever what it reads may have.

Faces: ``POST /v1/reviews/{id}`` and ``GET /v1/flagged`` (``api/review.py``), ``talktime records
flagged|accept|correct`` (``cli/records.py``) and the served dashboard's ``/flagged`` page
(``web/review_pages.py``). They parse and render; the answers' JSON shape is :meth:`Flagged.as_dict` and
:meth:`Reviewed.as_dict`, the same for the API and the CLI.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import orjson

from talktime.app.held_records import HeldMonth, HeldRecord, WouldBill
from talktime.core.plausibility import Guards, Limits, check
from talktime.core.records import UsageRecord, record_to_row
from talktime.errors import ConflictError, InputError, NotFoundError, RecordError
from talktime.ingest.sessionize import DEFAULT_IDLE_TIMEOUT, close_idle
from talktime.store import usage as stored_usage
from talktime.store.base import EventStore, RawEvent
from talktime.store.reviews import (
    CORRECTION,
    SOURCE,
    Judged,
    accept,
    acceptances,
    apply_fields,
    correction_data,
    correction_event_id,
)
from talktime.store.usage import RecordStore, Scope

if TYPE_CHECKING:
    from talktime.core.invoicing.invoice import Invoice
    from talktime.core.rating.cards import PriceCard

__all__ = [
    "ACTIONS",
    "CustomerMonths",
    "Flagged",
    "HeldNow",
    "Reviewed",
    "changed_fields",
    "correction_fields",
    "customer_mark",
    "customer_months",
    "fields_to_correct",
    "flagged",
    "held_months",
    "held_now",
    "moment",
    "review",
    "review_mark",
]

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
#: What a review does: accept the record as it is, or correct its fields.
ACTIONS: Final = ("accept", "correct")


def _records(store: EventStore) -> RecordStore:
    if not hasattr(store, "records_dialect"):
        raise TypeError(f"{type(store).__name__} keeps no records table")
    return store  # type: ignore[return-value]  # both stores implement RecordStore


def _limits(guards: Guards | Path | None, tenant: str) -> Limits:
    """The tenant's limits from a Guards value, a ``--guards`` file, or the safe defaults (None)."""
    if isinstance(guards, Path):
        from talktime.io.guards import load_guards

        guards = load_guards(guards)
    return (Guards() if guards is None else guards).limits_for(tenant)


def _judged_dict(item: Judged) -> dict[str, Any]:
    made = item.acceptance
    return {
        "id": item.record.id,
        "customer": item.record.customer,
        "started_at": item.record.started_at.isoformat(),
        "ended_at": None if item.record.ended_at is None else item.record.ended_at.isoformat(),
        "reasons": list(item.reasons),
        "accepted": None
        if made is None
        else {"at": made.at.isoformat(), "reasons": list(made.reasons), "note": made.note},
    }


@dataclass(frozen=True, slots=True)
class Flagged:
    """A tenant's flagged records: ``held`` (not counted until reviewed) and ``accepted``, by id."""

    tenant: str
    held: tuple[Judged, ...]
    accepted: tuple[Judged, ...]

    def as_dict(self) -> dict[str, Any]:
        """``GET /v1/flagged``'s answer (and ``talktime records flagged --format json``'s)."""
        return {
            "tenant": self.tenant,
            "held": [_judged_dict(j) for j in self.held],
            "accepted": [_judged_dict(j) for j in self.accepted],
        }


@dataclass(frozen=True, slots=True)
class Reviewed:
    """A record after a review: its reasons now and whether it is still held back."""

    id: str
    action: str
    held: bool
    reasons: tuple[str, ...]
    record: UsageRecord

    def as_dict(self) -> dict[str, Any]:
        """``POST /v1/reviews/{id}``'s answer: the record's fields as records files write them."""
        return {
            "id": self.id,
            "action": self.action,
            "held": self.held,
            "reasons": list(self.reasons),
            "fields": record_to_row(self.record),
        }


def flagged(
    store: EventStore,
    tenant: str,
    guards: Guards | Path | None,
    as_of: datetime,
    idle_timeout: timedelta = DEFAULT_IDLE_TIMEOUT,
    customer: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> Flagged:
    """The tenant's records its limits flag as of ``as_of`` (started in [start, end), of ``customer``)."""
    found = stored_usage.judged(
        _records(store), Scope(tenant, customer, start, end), as_of, idle_timeout, _limits(guards, tenant)
    )
    return Flagged(tenant, tuple(j for j in found if j.held), tuple(j for j in found if not j.held))


def _current(
    store: RecordStore, tenant: str, record_id: str, as_of: datetime, idle: timedelta
) -> tuple[UsageRecord, datetime]:
    """The record as of ``as_of`` and when the store first received it; NotFoundError if there is none."""
    stored = store.stored_record(tenant, record_id)
    if stored is None:
        raise NotFoundError(f"no record {record_id!r}")
    return close_idle(stored.record, stored.idle_from, as_of, idle), stored.first_received


def review(
    store: EventStore,
    tenant: str,
    guards: Guards | Path | None,
    record_id: str,
    action: str,
    *,
    fields: Mapping[str, Any] | None = None,
    note: str | None = None,
    at: datetime,
    idle_timeout: timedelta = DEFAULT_IDLE_TIMEOUT,
    shown_reasons: Sequence[str] | None = None,
) -> Reviewed:
    """Accept a flagged record's present reasons, or correct its fields (a correction event); the record
    as it now stands, its reasons and whether it is still held back.

    Errors name the field: InputError for an unknown action or field, ConflictError for an acceptance of a
    record that breaks no limit or a correction the stored record cannot take (a bad time, a negative
    count, times out of order), NotFoundError for a record the tenant does not have."""
    records = _records(store)
    limits = _limits(guards, tenant)
    record, received = _current(records, tenant, record_id, at, idle_timeout)
    if action == "accept":
        if fields:
            raise InputError("fields: only a correction takes fields; accept takes the record as it is")
        reasons = check(record, limits, min(received, at))
        if not reasons:
            raise ConflictError(f"record {record_id!r} breaks no limit: there is nothing to accept")
        if shown_reasons is not None and set(shown_reasons) != set(reasons):
            raise ConflictError(
                f"record {record_id!r} changed since the page showed it: its reasons are now "
                f"{'; '.join(reasons)}; reload the page and review it again"
            )
        accept(records, tenant, record_id, reasons, note, at)
    elif action == "correct":
        data = correction_data(fields or {}, note)
        stored = records.stored_record(tenant, record_id)
        assert stored is not None
        try:
            apply_fields(stored.record, data["fields"])
        except RecordError as error:  # well formed, but the stored record cannot take it
            raise ConflictError(f"fields: the corrected record would be invalid: {error}") from None
        event = RawEvent(
            SOURCE, correction_event_id(record_id, at), CORRECTION, record_id, at, orjson.dumps(data).decode()
        )
        store.append(tenant, [event])
        record, received = _current(records, tenant, record_id, at, idle_timeout)
    else:
        raise InputError(f"action: {action!r} is not one of {', '.join(ACTIONS)}")
    reasons = check(record, limits, min(received, at))
    made = acceptances(records, tenant, [record_id]).get(record_id)
    held = bool(reasons) and (made is None or not set(reasons) <= set(made.reasons))
    return Reviewed(record_id, action, held, tuple(reasons), record)


def review_mark(store: EventStore, tenant: str) -> tuple[object, ...]:
    """Changes whenever :func:`held_months` may answer differently (but for the clock): a stored batch
    or correction that touches the tenant's records, or a new acceptance."""
    from talktime.app.snapshot import records_mark

    records = _records(store)
    at = "max(accepted_at)" if records.records_dialect == "postgres" else "epoch_us(max(accepted_at))"
    tenant_text = "'" + tenant.replace("'", "''") + "'"
    rows = records.read(f"SELECT count(*), {at} FROM acceptances WHERE tenant = {tenant_text}")
    count, last = rows[0] if rows else (0, None)
    return (*records_mark(store, tenant), int(count or 0), "" if last is None else str(last))


@dataclass(frozen=True, slots=True)
class HeldNow:
    """The tenant's held records as of a moment, by customer (as ``GET /v1/invoices`` holds them: flagged,
    not accepted, closed), and those that name no customer (no invoice takes them)."""

    by_customer: dict[str, tuple[Judged, ...]]
    nobody: tuple[Judged, ...]
    as_of: datetime


def held_now(
    store: EventStore, tenant: str, guards: Guards | Path | None, *, as_of: datetime, idle_timeout: timedelta
) -> HeldNow:
    """Which records are held back now: one SQL read of the flagged records and their acceptances."""
    judged = stored_usage.judged(_records(store), Scope(tenant), as_of, idle_timeout, _limits(guards, tenant))
    held = [j for j in judged if j.held and j.record.status != "open"]  # an open one is not billed yet
    by_customer: dict[str, list[Judged]] = {}
    for j in held:
        if j.record.customer is not None:
            by_customer.setdefault(j.record.customer, []).append(j)
    nobody = tuple(j for j in held if j.record.customer is None)
    return HeldNow({c: tuple(found) for c, found in sorted(by_customer.items())}, nobody, as_of)


def customer_mark(store: EventStore, tenant: str, customer: str) -> tuple[int, str]:
    """Changes whenever a batch or a correction touches the customer's records."""
    records = _records(store)
    postgres = records.records_dialect == "postgres"
    last = "max(last_received)" if postgres else "epoch_us(max(last_received))"
    quoted = ["'" + text.replace("'", "''") + "'" for text in (tenant, customer)]
    rows = records.read(
        f"SELECT count(*), {last} FROM records WHERE tenant = {quoted[0]} AND customer = {quoted[1]}"
    )
    count, moment = rows[0] if rows else (0, None)
    return int(count or 0), "" if moment is None else str(moment)


@dataclass(frozen=True, slots=True)
class CustomerMonths:
    """A customer's months with held records, and how many of its records still open started in each (not
    on the draft until they end, as ``GET /v1/invoices`` notes)."""

    months: list[HeldMonth]
    still_open: dict[str, int]


def customer_months(
    store: EventStore,
    tenant: str,
    prices: Path | PriceCard,
    customer: str,
    held: tuple[Judged, ...],
    *,
    ledger: Path | None,
    as_of: datetime,
    idle_timeout: timedelta,
) -> CustomerMonths:
    """The customer's months whose draft holds ``held`` back (:func:`held_now`'s), each with its total
    without them and with them billed as they are, and what each would bill. The records read are the
    months' own (all of the customer's when the ledger has finalised months, for their adjustments)."""
    from talktime.app.cards import required_price_card
    from talktime.core.invoicing.invoice import build_invoice
    from talktime.core.invoicing.periods import month_period, period_label
    from talktime.io.invoices import read_ledger

    card = required_price_card(prices)
    zone = card.customer(customer).timezone
    periods = sorted({period_label(j.record.started_at, zone) for j in held})
    history = read_ledger(ledger / tenant, customer) if ledger is not None else []
    scope = Scope(tenant, customer)
    if not history and periods:  # no adjustment to work out: the months' records are enough
        scope = Scope(
            tenant, customer, month_period(periods[0], zone).start, month_period(periods[-1], zone).end
        )
    current = stored_usage.current_records(_records(store), scope, as_of, idle_timeout)
    billed = [c.record for c in current if c.record.status != "open"]
    still_open: dict[str, int] = {}
    for c in current:
        if c.record.status == "open":
            period = period_label(c.record.started_at, zone)
            still_open[period] = still_open.get(period, 0) + 1
    ids = {j.record.id for j in held}
    kept = [r for r in billed if r.id not in ids]
    pairs = [(j.record, j.reasons) for j in held]
    months: list[HeldMonth] = []
    for period in periods:
        draft = build_invoice(kept, card, customer, period, history, pairs)
        if not draft.held:
            continue
        whole = build_invoice(billed, card, customer, period, history)
        reasons = dict(draft.held)
        shown = tuple(
            HeldRecord(j.record, reasons[j.record.id], _shares(whole, j.record.id))
            for j in held
            if j.record.id in reasons
        )
        months.append(
            HeldMonth(customer, period, draft.currency, draft.total.amount, whole.total.amount, shown)
        )
    return CustomerMonths(months, {p: n for p, n in still_open.items() if p in periods})


def held_months(
    store: EventStore,
    tenant: str,
    guards: Guards | Path | None,
    prices: Path | PriceCard,
    *,
    ledger: Path | None,
    as_of: datetime,
    idle_timeout: timedelta,
) -> tuple[list[HeldMonth], tuple[Judged, ...]]:
    """Each customer month whose draft (``GET /v1/invoices``' as of ``as_of``) holds records back, with
    what each would bill; and the held records that name no customer (no invoice takes them).

    ``ledger`` is the server's (finalised invoices under ``LEDGER/<tenant>/``): a finalised month holds
    nothing back."""
    now = held_now(store, tenant, guards, as_of=as_of, idle_timeout=idle_timeout)
    months = [
        month
        for customer, held in now.by_customer.items()
        for month in customer_months(
            store, tenant, prices, customer, held, ledger=ledger, as_of=as_of, idle_timeout=idle_timeout
        ).months
    ]
    return months, now.nobody


def _shares(invoice: Invoice, record_id: str) -> tuple[WouldBill, ...]:
    return tuple(
        WouldBill(line.description, line.unit, call.actual_quantity, call.billable_quantity, call.amount)
        for line in invoice.lines
        for call in line.calls
        if call.record == record_id
    )


def correction_fields(typed: Mapping[str, str], record: UsageRecord) -> dict[str, str | None]:
    """The fields a form's values change on ``record``, as the record format reads them (blank: absent);
    a value written as the record already has it is not a change.

    >>> from talktime.core.records import parse_record
    >>> r = parse_record({"id": "r", "started_at": "2025-03-01T10:00:00Z", "ended_at": "2025-03-01T10:01Z"})
    >>> correction_fields({"ended_at": "2025-03-01T10:01:00Z", "answered_at": ""}, r)
    {}
    >>> correction_fields({"ended_at": "2025-03-01T10:02:00Z"}, r)
    {'ended_at': '2025-03-01T10:02:00Z'}
    """
    row = record_to_row(record)
    changed: dict[str, str | None] = {}
    for name, value in typed.items():
        text = value.strip()
        if text == row.get(name, "") or _same_moment(text, row.get(name, "")):
            continue
        changed[name] = text or None
    return changed


def changed_fields(
    store: EventStore, tenant: str, record_id: str, typed: Mapping[str, str]
) -> dict[str, str | None]:
    """:func:`correction_fields` of the stored record (a form shows every field with its value: only
    those typed differently are corrected); InputError when none changed, NotFoundError without it."""
    stored = _records(store).stored_record(tenant, record_id)
    if stored is None:
        raise NotFoundError(f"no record {record_id!r}")
    changed = correction_fields(typed, stored.record)
    if not changed:
        raise InputError("fields: every value is as the record has it; change one to correct it")
    return changed


def fields_to_correct(
    store: EventStore, tenant: str, record_id: str, typed: Mapping[str, str], shown: Mapping[str, str]
) -> dict[str, str | None]:
    """The fields a form corrects: those typed differently from what the page showed (``shown``: each
    field's value the form was drawn with), as the record format reads them. ConflictError naming the
    fields when the stored record no longer has what the page showed (another review or a late event
    changed it since: a correction must never put back a value the person did not type); InputError when
    nothing was changed; NotFoundError without the record."""
    stored = _records(store).stored_record(tenant, record_id)
    if stored is None:
        raise NotFoundError(f"no record {record_id!r}")
    moved = correction_fields(shown, stored.record)
    if moved:
        now = record_to_row(stored.record)
        names = ", ".join(f"{name} is now {now.get(name) or 'absent'!s}" for name in sorted(moved))
        raise ConflictError(
            f"record {record_id!r} changed since the page showed it ({names}); "
            "reload the page and review it again"
        )
    person = {
        name: value
        for name, value in typed.items()
        if name not in shown or not (value.strip() == shown[name].strip() or _same_moment(value, shown[name]))
    }
    changed = correction_fields(person, stored.record)
    if not changed:
        raise InputError("fields: every value is as the page showed it; change one to correct it")
    return changed


def moment(text: str, what: str) -> datetime:
    """A time a person typed (ISO 8601 with an offset); InputError naming ``what`` and why.

    >>> moment("2025-03-01T10:00:00Z", "from").isoformat()
    '2025-03-01T10:00:00+00:00'
    """
    from talktime.ingest.events import parse_time

    try:
        return parse_time(text)
    except ValueError as error:
        raise InputError(f"{what}: {error}") from None


def _same_moment(a: str, b: str) -> bool:
    from talktime.ingest.events import parse_time

    if not a or not b:
        return False
    try:
        return parse_time(a) == parse_time(b)
    except ValueError:
        return False
