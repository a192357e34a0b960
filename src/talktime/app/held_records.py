"""``held_records``: the records the plausibility guards hold back from a customer's invoices, month by
month, each with its reasons and what it would bill if a person accepted it as it is.

"Held back" is exactly the invoice's: each month's draft is :func:`talktime.app.invoice.invoice_of_records`
(``talktime invoice``: the month judged as of its end, or ``now`` while it runs; a month finalised in the
ledger holds nothing back), and the records it names are the ones listed. What a record would bill is its
share of the same month's invoice made with the held records in (``talktime invoice --allow-flagged``): each
invoice line it lands on, with its actual and billable quantity and its share of the line's exact amount;
the month's totals with and without them say what the draft leaves out.

A face that keeps records in a store passes the customer's current records the same way. A face that has
made the months' drafts already (the dashboard's invoices job: the same function, arguments and ``now``)
passes them as ``drafts``, and the records as a function that reads them: a month is then rated again only
when its draft holds records back (with them in), and the records are read only for such a month.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Final

from talktime.app.invoice import invoice_of_records

if TYPE_CHECKING:
    from talktime.core.invoicing.invoice import Invoice
    from talktime.core.rating.cards import PriceCard
    from talktime.core.records import UsageRecord

__all__ = ["FIXES", "HeldMonth", "HeldRecord", "WouldBill", "fields_to_check", "held_records"]

#: The record fields a person checks (and corrects) for each reason the guards give.
FIXES: Final[Mapping[str, tuple[str, ...]]] = {
    "call-too-long": ("ended_at", "started_at"),
    "audio-longer-than-call": ("audio_seconds", "speech_seconds", "ended_at"),
    "speech-longer-than-audio": ("speech_seconds", "audio_seconds"),
    "reported-longer-than-limit": ("provider_reported_seconds",),
    "tokens-over-limit": (
        "input_tokens",
        "output_tokens",
        "cached_input_tokens",
        "cache_write_tokens",
        "audio_input_tokens",
        "audio_output_tokens",
    ),
    "characters-over-limit": ("characters", "ssml_characters", "cjk_characters"),
    "starts-in-future": ("started_at",),
    "starts-long-ago": ("started_at",),
}


@dataclass(frozen=True, slots=True)
class WouldBill:
    """A held record's part of one invoice line, were it billed: quantities in the line's unit, the amount its
    exact share of the line's."""

    line: str
    unit: str
    actual: Decimal
    billable: Decimal
    amount: Decimal


@dataclass(frozen=True, slots=True)
class HeldRecord:
    record: UsageRecord
    reasons: tuple[str, ...]  # ``code: what was found and the limit``, as the invoice names them
    would_bill: tuple[WouldBill, ...]  # empty: no line of the plan prices it

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(reason.partition(":")[0] for reason in self.reasons)

    @property
    def amount(self) -> Decimal:
        """What it would add to the month's lines, exactly (before the month's rounding to the cent)."""
        return sum((w.amount for w in self.would_bill), Decimal(0))


@dataclass(frozen=True, slots=True)
class HeldMonth:
    """One customer month's draft with records held back: its total, and its total with them billed."""

    customer: str
    period: str
    currency: str
    total: Decimal  # the draft's, without the held records
    total_with_held: Decimal  # ``talktime invoice --allow-flagged``'s
    records: tuple[HeldRecord, ...]

    @property
    def left_out(self) -> Decimal:
        return self.total_with_held - self.total


def fields_to_check(codes: Iterable[str]) -> tuple[str, ...]:
    """The fields behind the reasons ``codes``, each once, in the reasons' order.

    >>> fields_to_check(["call-too-long", "starts-in-future"])
    ('ended_at', 'started_at')
    """
    return tuple(dict.fromkeys(field for code in codes for field in FIXES.get(code, ())))


Records = list["UsageRecord"] | Callable[[], list["UsageRecord"]]


def held_records(
    records: Records,
    prices: Path | PriceCard,
    customer: str,
    periods: Iterable[str],
    *,
    ledger: Path | None = None,
    guards: Path | None = None,
    tenant: str | None = None,
    now: datetime,
    drafts: Mapping[str, Invoice] | None = None,
) -> list[HeldMonth]:
    """Each month of ``periods`` (YYYY-MM) whose draft for ``customer`` holds records back, as of ``now``,
    from ``records`` (the customer's own, or more; or a function that reads them, called at most once and
    only when needed). ``drafts``: months' drafts made already with the same arguments, by period."""
    from talktime.app.cards import required_price_card

    card = required_price_card(prices)
    read = _once(records)
    by_id: dict[str, UsageRecord] = {}
    months = []
    for period in periods:

        def month(allow_flagged: bool = False, period: str = period) -> Invoice:
            return invoice_of_records(
                read(),
                card,
                customer,
                period,
                tenant=tenant,
                ledger=ledger,
                guards=guards,
                allow_flagged=allow_flagged,
                now=now,
            )

        draft = drafts.get(period) if drafts is not None else None
        if draft is None:
            draft = month()
        if not draft.held:
            continue
        whole = month(allow_flagged=True)  # talktime invoice --allow-flagged: the held records billed
        by_id = by_id or _by_id(read(), customer)
        held = tuple(
            HeldRecord(by_id[record_id], reasons, _shares(whole, record_id))
            for record_id, reasons in draft.held
        )
        total, with_held = draft.total.amount, whole.total.amount
        months.append(HeldMonth(customer, period, draft.currency, total, with_held, held))
    return months


def _once(records: Records) -> Callable[[], list[UsageRecord]]:
    """The records, read at the first call only."""
    if not callable(records):
        return lambda: records
    return functools.cache(records)


def _by_id(records: list[UsageRecord], customer: str) -> dict[str, UsageRecord]:
    found: dict[str, UsageRecord] = {}
    for record in records:
        if record.customer == customer:
            found.setdefault(record.id, record)
    return found


def _shares(invoice: Invoice, record_id: str) -> tuple[WouldBill, ...]:
    return tuple(
        WouldBill(line.description, line.unit, call.actual_quantity, call.billable_quantity, call.amount)
        for line in invoice.lines
        for call in line.calls
        if call.record == record_id
    )
