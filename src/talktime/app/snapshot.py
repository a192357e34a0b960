"""``snapshot``: a tenant's recent usage records read from the event store into one Parquet record file, for
a face that rates them the way it rates a record file (the served dashboard, ``talktime serve --costs
--prices``), and a cheap mark that changes whenever a batch changes those records.

The records are the ones the store keeps (ADR 0006) as of a moment: the idle timeout closes a session whose
last event is old enough, exactly as ``GET /v1/records`` and ``GET /v1/usage`` close it. Records still open
at that moment have no end yet and cannot be rated: they are left out of the file and counted
(:attr:`Snapshot.still_open`), so a face can say how many calls are not shown yet. The snapshot also holds
the acceptances of its records (read in the same transaction), so that its invoices count a flagged record
a person accepted exactly as ``GET /v1/invoices`` counts it, and when the store first received each record
whose time-worded guards turn on it (:class:`~talktime.core.plausibility.Kept`), judged as there.

The window is the last ``months`` months as the operator counts them (UTC months, this one included), opened
early enough that each customer's billing months in it are whole: it starts at the earliest local midnight,
among the price card's zones (:func:`card_zones`: every customer's and the card's default), of the first day
of its oldest month (:func:`window_start`). A record belongs to it when it started at or after that moment.
So a customer east of UTC has its oldest month from its first local hour; a customer west of UTC also gets
the last hours of the month before, which no page lists as a month (:func:`whole_months`).

The records still open are kept too, each one's id, call, customer, kind, provider, product and start
(:attr:`Snapshot.open_records`, read in the same transaction as the file): the alerts checked over the
snapshot see a call left open as a record file holding it shows it
(:func:`talktime.app.alerts.send_new_alerts`).

The records are written by the store's own SQL (:mod:`talktime.store.record_files`), so taking a snapshot
makes no Python value per record in the process that asks for it (a server answering pages meanwhile);
:func:`customer_invoices_of_file` is the invoices' use case over a snapshot's file, for a worker process.

Owns: which records a snapshot holds and the mark. Does not own: the rating (``talktime.app.calls``,
``usage_series``, ``month_invoices``, over the file), the store's tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from talktime.core.invoicing.periods import month_period, period_label
from talktime.engine.dialects import DUCKDB_WIDE, POSTGRES
from talktime.errors import InputError
from talktime.store.base import EventStore
from talktime.store.held import LOOSEST
from talktime.store.record_files import write_record_file
from talktime.store.usage import RecordStore, Scope

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from talktime.core.invoicing.invoice import Invoice
    from talktime.core.plausibility import Accepted, Kept, Limits
    from talktime.core.rating.cards import PriceCard
    from talktime.store.record_files import OpenRecord

__all__ = [
    "Snapshot",
    "acceptances_mark",
    "card_zones",
    "customer_invoices_of_file",
    "records_mark",
    "take_snapshot",
    "tenants_with_records",
    "whole_months",
    "window_start",
]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A tenant's records started at or after ``since``, as of ``as_of``, written to ``path`` (Parquet)."""

    tenant: str
    path: Path
    since: datetime  # the moment the window opens (UTC): :func:`window_start`
    as_of: datetime
    records: int  # written to the file
    still_open: int  # started in the window, still open at ``as_of``: not in the file
    mark: tuple[int, str]  # :func:`records_mark` when the records were read
    accepted: Kept  # the store's word on the written records: acceptances, first receipts (by id)
    accepted_mark: tuple[int, str]  # :func:`acceptances_mark` when they were read
    open_records: tuple[OpenRecord, ...] = ()  # every record still open, by id, whenever it started


def window_start(as_of: datetime, months: int, zones: Iterable[str] = ("UTC",)) -> datetime:
    """When the window of the last ``months`` months as of ``as_of`` opens (1: this month only), in UTC: the
    earliest local midnight, among ``zones`` (and UTC), of the first day of the oldest month, counted both
    as the operator counts months (in UTC) and as each zone counts its own (a zone west of UTC is still in
    its previous month for hours after UTC's has begun). Every zone's last ``months`` months, and the last
    ``months`` UTC months, are then whole in the window.

    >>> window_start(datetime(2026, 3, 15, tzinfo=UTC), 3)
    datetime.datetime(2026, 1, 1, 0, 0, tzinfo=datetime.timezone.utc)
    >>> window_start(datetime(2026, 1, 31, 23, tzinfo=UTC), 2)
    datetime.datetime(2025, 12, 1, 0, 0, tzinfo=datetime.timezone.utc)
    >>> str(window_start(datetime(2026, 11, 30, 12, tzinfo=UTC), 2, ["Etc/GMT+11", "Pacific/Kiritimati"]))
    '2026-09-30 10:00:00+00:00'

    At 00:30 UTC on 1 December with one month, New York is still in November: its November is in.

    >>> str(window_start(datetime(2026, 12, 1, 0, 30, tzinfo=UTC), 1, ["America/New_York", "Asia/Tokyo"]))
    '2026-11-01 04:00:00+00:00'
    """
    if months < 1:
        raise InputError(f"the dashboard's window must be at least 1 month (got {months})")

    def oldest(current: str) -> str:
        index = int(current[:4]) * 12 + int(current[5:7]) - 1 - (months - 1)
        return f"{index // 12:04d}-{index % 12 + 1:02d}"

    operators = oldest(period_label(as_of, "UTC"))
    return min(
        month_period(first, zone).start
        for zone in {"UTC", *zones}
        for first in (operators, oldest(period_label(as_of, zone)))
    ).astimezone(UTC)


def card_zones(prices: PriceCard) -> tuple[str, ...]:
    """Every time zone the price card bills a month in: its default (a customer it does not name) and each
    customer's, each once."""
    return tuple(dict.fromkeys([prices.timezone, *(c.timezone for c in prices.customers.values())]))


def whole_months(
    months: Iterable[tuple[str, str]], prices: PriceCard, since: datetime
) -> list[tuple[str, str]]:
    """The (customer, YYYY-MM) billing months of ``months`` that begin, in the customer's zone on the card,
    at or after ``since``: the ones a window opened then holds whole. A month that began before (west of
    UTC, the last local hours before the window's oldest month) would be a stub of an invoice: left out.

    >>> from talktime.core.rating.cards import Customer, PriceCard
    >>> ny = Customer("ny", "New York customer", "America/New_York")
    >>> card = PriceCard("plan", "plan", "USD", "UTC", (), customers={"ny": ny})
    >>> opens = datetime(2026, 10, 1, tzinfo=UTC)
    >>> whole_months([("ny", "2026-09"), ("ny", "2026-10"), ("other", "2026-10")], card, opens)
    [('ny', '2026-10'), ('other', '2026-10')]
    """
    opens: dict[tuple[str, str], bool] = {}  # (period, zone) -> whether it begins in the window: few of them

    def whole(customer: str, period: str) -> bool:
        named = prices.customers.get(customer)
        zone = prices.timezone if named is None else named.timezone
        if (period, zone) not in opens:
            opens[period, zone] = month_period(period, zone).start >= since
        return opens[period, zone]

    return [(customer, period) for customer, period in months if whole(customer, period)]


def _records(store: EventStore) -> RecordStore:
    if not hasattr(store, "records_dialect"):
        raise TypeError(f"{type(store).__name__} keeps no records table")
    return store  # type: ignore[return-value]  # both stores implement RecordStore


def records_mark(store: EventStore, tenant: str) -> tuple[int, str]:
    """How many records the tenant has and when the last event reached one: any stored batch that touches
    the tenant's records changes it (a new record, or an event received later than any before)."""
    kept = _records(store)
    dialect = POSTGRES if kept.records_dialect == "postgres" else DUCKDB_WIDE
    last = "max(last_received)" if dialect is POSTGRES else "epoch_us(max(last_received))"
    rows = kept.read(f"SELECT count(*), {last} FROM records WHERE tenant = {dialect.str_lit(tenant)}")
    count, last = rows[0] if rows else (0, None)
    return int(count or 0), "" if last is None else str(last)


def tenants_with_records(store: EventStore) -> list[str]:
    """Every tenant the store keeps records of, by name (what a server with ``--alerts`` watches); a store
    without a records table: none."""
    if not hasattr(store, "records_dialect"):
        return []
    return sorted(str(row[0]) for row in _records(store).read("SELECT DISTINCT tenant FROM records"))


def take_snapshot(
    store: EventStore,
    tenant: str,
    target: Path,
    *,
    as_of: datetime,
    months: int,
    idle_timeout: timedelta,
    zones: Iterable[str] = ("UTC",),
    limits: Limits | None = None,
) -> Snapshot:
    """The tenant's records of the window (the last ``months`` UTC months as of ``as_of``, opened at the
    earliest local midnight of its oldest month among ``zones``: :func:`window_start`; give the price card's,
    :func:`card_zones`) written to ``target`` by the store's SQL
    (:func:`~talktime.store.record_files.write_record_file`: no record becomes a Python value in this
    process); the records still open are counted, not written. ``limits``: the guards' limits the snapshot's
    pages judge the tenant's records by; its word on them then carries the first receipts of only the
    records those flag in time (without, of every record any limit could: a backfill's every record)."""
    since = window_start(as_of, months, zones)
    mark = records_mark(store, tenant)  # before the read: a batch between the two makes the next mark differ
    accepted_mark = acceptances_mark(store, tenant)  # likewise for an acceptance
    written = write_record_file(
        _records(store), Scope(tenant, None, since), as_of, idle_timeout, target, limits or LOOSEST
    )
    return Snapshot(
        tenant,
        target,
        since,
        as_of,
        written.records,
        written.still_open,
        mark,
        written.accepted,
        accepted_mark,
        written.open_records,
    )


def acceptances_mark(store: EventStore, tenant: str) -> tuple[int, str]:
    """Changes whenever a person accepts one of the tenant's flagged records (which changes no record, so
    :func:`records_mark` stays): a snapshot's invoices count accepted records."""
    from talktime.store.reviews import acceptances_mark as mark

    return mark(_records(store), tenant)


def customer_invoices_of_file(
    path: Path,
    prices: PriceCard,
    customer: str,
    periods: list[str],
    *,
    ledger: Path | None,
    guards: Path | None,
    now: datetime,
    tenant: str | None = None,
    accepted: Mapping[str, Accepted] | None = None,
) -> dict[str, Invoice]:
    """The customer's invoice of each month in ``periods`` over the snapshot file ``path``: the dashboard's
    invoices job (:func:`talktime.app.month_invoices.customer_invoices` over the customer's records, in file
    order), reading the file itself, so that a worker process can run it given the path alone; ``tenant``
    picks the guards' limits, and a flagged record in ``accepted`` (:attr:`Snapshot.accepted`) counts while
    its acceptance covers its reasons."""
    from talktime.app.calls import CallRecords
    from talktime.app.month_invoices import customer_invoices

    records = CallRecords(path).of_customer(customer)
    return customer_invoices(
        records,
        prices,
        customer,
        periods,
        ledger=ledger,
        guards=guards,
        now=now,
        tenant=tenant,
        accepted=accepted,
    )
