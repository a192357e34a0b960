"""``invoice``: a customer's invoice for a month, the finalised one from a ledger or else a draft; and
finalising it into the ledger.

Records the plausibility guards flag are held back (named on the invoice) unless ``allow_flagged``, or a
person accepted them in the store the records come from (its acceptances are read with them). The limits
worded in time judge a record of a store as of when the store first received it, as ``GET /v1/invoices``
does (the store's word read with the records: :class:`~talktime.core.plausibility.Kept`), and a record of a
file as of the month's end, or now if it has not ended.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from talktime.app.cards import required_price_card
from talktime.app.guards import limits_of
from talktime.app.history import HistorySource, history_of

if TYPE_CHECKING:
    from talktime.core.invoicing.invoice import Invoice
    from talktime.core.plausibility import Accepted
    from talktime.core.rating.cards import PriceCard
    from talktime.core.records import UsageRecord


@dataclass(frozen=True, slots=True)
class Finalised:
    """A finalised invoice, the draft it was made from, and the ledger file that now holds it."""

    draft: Invoice
    final: Invoice
    path: Path


def invoice(
    history: HistorySource,
    prices: Path | PriceCard,
    customer: str,
    period: str,
    *,
    ledger: Path | None = None,
    guards: Path | None = None,
    allow_flagged: bool = False,
    now: datetime,
) -> Invoice:
    """The invoice of ``customer`` for ``period`` (YYYY-MM) as of ``now``; ``guards`` names the limits file
    (None: the safe defaults), read for the history's tenant. A store's acceptances count a flagged record
    a person accepted, as ``GET /v1/invoices`` counts it."""
    read = history_of(history)
    return invoice_of_records(
        read.records,
        prices,
        customer,
        period,
        tenant=history.tenant,
        ledger=ledger,
        guards=guards,
        allow_flagged=allow_flagged,
        now=now,
        accepted=read.accepted,
    )


def finalize(
    history: HistorySource,
    prices: Path | PriceCard,
    customer: str,
    period: str,
    *,
    ledger: Path,
    guards: Path | None = None,
    allow_flagged: bool = False,
    at: datetime,
) -> Finalised:
    """Finalise the month's invoice into ``ledger`` at ``at``: the next number of its seller's sequence, its
    issue and due dates; refused for a month with flagged records (a person did not accept) unless
    ``allow_flagged``."""
    from talktime.core.invoicing.invoice import finalise
    from talktime.io.invoices import store_finalised

    draft = invoice(
        history, prices, customer, period, ledger=ledger, guards=guards, allow_flagged=allow_flagged, now=at
    )
    path, final = store_finalised(ledger, finalise(draft, at))
    return Finalised(draft, final, path)


def invoice_of_records(
    usage: list[UsageRecord],
    prices: Path | PriceCard,
    customer: str,
    period: str,
    *,
    tenant: str | None = None,
    ledger: Path | None = None,
    guards: Path | None = None,
    allow_flagged: bool = False,
    now: datetime,
    accepted: Mapping[str, Accepted] | None = None,
) -> Invoice:
    """:func:`invoice` over records already read (the customer's own are enough: every rule of an invoice
    looks at one customer's records, one record at a time), for a face that keeps them; ``tenant`` picks
    the guards' limits; ``accepted``: the latest acceptance of each record a person accepted (a store's),
    counted beside the limits."""
    from talktime.core.invoicing.invoice import build_invoice, check_known_customer, guarded_invoice
    from talktime.io.invoices import read_ledger

    card = required_price_card(prices)
    check_known_customer(usage, card, customer)
    billed = read_ledger(ledger, customer) if ledger is not None else []
    limits = limits_of(guards, tenant, allow_flagged=allow_flagged, accepted=accepted)
    if limits is None:
        return build_invoice(usage, card, customer, period, billed)
    return guarded_invoice(usage, card, customer, period, billed, limits, now)
