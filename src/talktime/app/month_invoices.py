"""``month_invoices``: every invoice of one customer for the months a face lists (the dashboard's invoices
page), each exactly what ``talktime invoice --customer C --period M`` gives: the finalised one from the
ledger, or else a draft with the records the plausibility guards flag held back and named.

The customer's records are read once for all its months (:func:`talktime.app.invoice.invoice_of_records`
needs no one else's); the finalised invoices of a ledger are listed as they are. Given the acceptances a
store keeps (the served dashboard's snapshot), a flagged record a person accepted counts while its
acceptance covers its reasons, as ``GET /v1/invoices`` counts it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from talktime.app.invoice import invoice_of_records

if TYPE_CHECKING:
    from talktime.core.invoicing.invoice import Invoice
    from talktime.core.plausibility import Accepted
    from talktime.core.rating.cards import PriceCard
    from talktime.core.records import UsageRecord

__all__ = ["customer_invoices", "finalised_invoices"]


def customer_invoices(
    records: list[UsageRecord],
    prices: Path | PriceCard,
    customer: str,
    periods: Iterable[str],
    *,
    ledger: Path | None = None,
    guards: Path | None = None,
    now: datetime,
    tenant: str | None = None,
    accepted: Mapping[str, Accepted] | None = None,
) -> dict[str, Invoice]:
    """The customer's invoice of each month in ``periods`` (YYYY-MM) as of ``now``, from ``records`` (the
    customer's own, or more); ``tenant`` picks the guards' limits; ``accepted``: the latest acceptance of
    each record a person accepted."""
    return {
        period: invoice_of_records(
            records,
            prices,
            customer,
            period,
            tenant=tenant,
            ledger=ledger,
            guards=guards,
            now=now,
            accepted=accepted,
        )
        for period in periods
    }


def finalised_invoices(ledger: Path) -> list[Invoice]:
    """Every finalised invoice the ledger holds, by customer and month."""
    from talktime.io.invoices import read_ledger

    found = [inv for inv in read_ledger(ledger) if inv.status == "finalised"]
    return sorted(found, key=lambda inv: (inv.customer, inv.period.label))
