"""What a server answers from the records its store keeps for a tenant: a customer's invoice for a month
(``GET /v1/invoices``, and its PDF), and every record as its exact JSON (``GET /v1/records``).

An invoice here is a draft over the records closed as of now, or the finalised one from the tenant's
ledger (``LEDGER/<tenant>/``). Records still open are left out until they close (the draft notes how many);
records the tenant's guards flag are held back, as from ``GET /v1/usage``, until a person accepts or
corrects them, and named on the draft. A customer with no record, open or closed, has no invoice here
(:class:`~talktime.errors.NotFoundError`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from talktime.app.guards import guards_of
from talktime.app.service import current_records
from talktime.errors import NotFoundError

if TYPE_CHECKING:
    from talktime.core.invoicing.invoice import Invoice
    from talktime.core.plausibility import Guards
    from talktime.core.rating.cards import PriceCard
    from talktime.store.base import EventStore
    from talktime.store.usage import RecordStore

__all__ = ["record_docs", "stored_invoice"]


def stored_invoice(
    store: EventStore,
    tenant: str,
    customer: str,
    period: str,
    *,
    prices: PriceCard | None,
    ledger: Path | None,
    guards: Guards | None,
    now: datetime,
    idle_timeout: timedelta,
) -> Invoice:
    """``customer``'s invoice of ``tenant`` for ``period`` (YYYY-MM) as of ``now``; ``guards``: None for the
    safe defaults."""
    from talktime.core.invoicing.invoice import build_invoice
    from talktime.io.invoices import read_ledger
    from talktime.store import usage as stored_usage
    from talktime.store.usage import Scope

    if prices is None:
        raise NotFoundError("this server has no price card; start it with one to serve invoices")
    current = current_records(store, tenant, now, idle_timeout)  # the records the store keeps
    records = [c.record for c in current if c.record.status != "open"]
    still_open = sum(1 for c in current if c.record.status == "open" and c.record.customer == customer)
    if not any(r.customer == customer for r in records) and not still_open:
        raise NotFoundError(f"no records for customer {customer!r}")
    history = read_ledger(ledger / tenant, customer) if ledger is not None else []
    # Held back as /v1/usage holds them back: flagged by the tenant's guards, not accepted by a person.
    judged = stored_usage.judged(
        _records(store), Scope(tenant, customer), now, idle_timeout, guards_of(guards).limits_for(tenant)
    )
    held = {j.record.id: j for j in judged if j.held and j.record.status != "open"}
    kept = [r for r in records if r.id not in held]
    invoice = build_invoice(
        kept, prices, customer, period, history, [(j.record, j.reasons) for j in held.values()]
    )
    if still_open and invoice.status == "draft":
        note = f"{still_open} record(s) still open are not on this draft yet"
        invoice = replace(invoice, notes=(*invoice.notes, note))
    return invoice


def record_docs(
    store: EventStore, tenant: str, customer: str | None, as_of: datetime, idle_timeout: timedelta
) -> Iterator[list[str]]:
    """The tenant's records (or one customer's) as of ``as_of``, each as its exact JSON in the record format
    (docs/records.md), by id, in chunks streamed from the store (they need not fit in memory); records the
    idle timeout closes are closed."""
    from talktime.store.usage import Scope, current_docs

    return current_docs(_records(store), Scope(tenant, customer), as_of, idle_timeout)


def _records(store: EventStore) -> RecordStore:
    return store  # type: ignore[return-value]  # both stores keep records
