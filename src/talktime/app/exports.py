"""``export``: a month's charges for finance and FinOps tools, as rows a face writes as CSV or Parquet
(:mod:`talktime.io.exports`).

FOCUS 1.2 rows for the cost side (a cost card: what providers charge) and the price side (a price card: what
customers are charged, one row per invoice line), or the plain invoice lines. The price side's drafts are
``talktime invoice``'s: the finalised invoice from a ledger, else a draft with the records the plausibility
guards flag held back and named (unless ``allow_flagged``, or a person accepted them in the store the records
come from), so the exported lines add up to its total.
See docs/exports.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from talktime.app.cards import cost_card, required_price_card
from talktime.app.guards import guards_of, limits_of
from talktime.app.history import HistorySource, history_of
from talktime.errors import InputError

if TYPE_CHECKING:
    from talktime.core.invoicing.focus import Row
    from talktime.core.invoicing.invoice import Invoice
    from talktime.core.plausibility import Guards
    from talktime.core.rating.cards import CostCard, PriceCard

__all__ = ["Export", "focus", "invoice_lines"]


@dataclass(frozen=True, slots=True)
class Export:
    """The rows to write; the records of the month no cost entry prices (cost unknown, not zero: no row);
    the invoices the price side was made of (a draft's ``held`` names what it left out)."""

    rows: list[Row]
    uncosted: list[str] = field(default_factory=list)
    invoices: list[Invoice] = field(default_factory=list)

    @property
    def held(self) -> list[Invoice]:
        """The drafts whose records were held back (their totals leave them out)."""
        return [invoice for invoice in self.invoices if invoice.held]


def focus(
    period: str,
    history: HistorySource,
    *,
    costs: Path | CostCard | None = None,
    prices: Path | PriceCard | None = None,
    ledger: Path | None = None,
    customers: Sequence[str] = (),
    guards: Path | Guards | None = None,
    allow_flagged: bool = False,
    now: datetime,
) -> Export:
    """FOCUS 1.2 rows of ``period`` (YYYY-MM): the cost side (``costs``), the price side (``prices``, as of
    ``now``), or both; ``customers`` narrows the price side (an unknown one is refused)."""
    from talktime.core.invoicing.focus import cost_rows, period_invoices, price_rows

    if costs is None and prices is None:
        raise InputError("export focus needs --costs (cost side), --prices (price side) or both")
    _check_period(period)  # a bad --period fails before the records are read
    read = history_of(history)
    rows: list[Row] = []
    uncosted: list[str] = []
    if costs is not None:
        side, uncosted = cost_rows(read.records, cost_card(costs), period)
        rows += side
    invoices: list[Invoice] = []
    if prices is not None:
        card, billed = _price_side(prices, ledger)
        limits = limits_of(guards, history.tenant, allow_flagged=allow_flagged, accepted=read.accepted)
        invoices = period_invoices(read.records, card, period, billed, customers, limits, now)
        rows += price_rows(invoices, card)
    return Export(rows, uncosted, invoices)


def invoice_lines(
    period: str,
    history: HistorySource,
    prices: Path | PriceCard,
    *,
    ledger: Path | None = None,
    customers: Sequence[str] = (),
    guards: Path | Guards | None = None,
    allow_flagged: bool = False,
    now: datetime,
) -> Export:
    """Every line of every customer's invoice for ``period`` (YYYY-MM) as of ``now``, one row each: the
    invoice's number, status and dates, and the line's quantities, unit price and amounts."""
    from talktime.core.invoicing.focus import period_invoices
    from talktime.io.exports import invoice_line_rows

    _check_period(period)
    card, billed = _price_side(prices, ledger)
    rules = None if allow_flagged else guards_of(guards)  # the guards file read before the records, as ever
    read = history_of(history)
    limits = limits_of(rules, history.tenant, allow_flagged=allow_flagged, accepted=read.accepted)
    invoices = period_invoices(read.records, card, period, billed, customers, limits, now)
    return Export(invoice_line_rows(invoices), invoices=invoices)


def _check_period(period: str) -> None:
    from talktime.core.invoicing.periods import month_period

    month_period(period, "UTC")


def _price_side(prices: Path | PriceCard, ledger: Path | None) -> tuple[PriceCard, list[Invoice]]:
    """The price card and every invoice the ledger holds (finalised lines as they were, and the base of
    late-usage adjustments), read in that order."""
    from talktime.io.invoices import read_ledger

    card = required_price_card(prices)
    return card, read_ledger(ledger) if ledger is not None else []
