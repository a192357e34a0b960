"""An invoice as a customer reads it: numbers at the precision the reader needs, dates and the period in
words, the seller's block, the calls behind each line. Pure formatting: the files (JSON, CSV) stay exact.

* Quantities print at a precision that fits their unit: minutes to 2 decimals, seconds to 1, hours to 3,
  whole counts (tokens, characters, requests, credits) with none, thousands to 3 and millions to 6.
* Amounts print at the currency's minor unit with thousands separators; a call's share of a line at two more
  places (a share is not rounded on the invoice, so cents would not add up).
* Dates are written with the month in words (``5 October 2026``) so no reader takes 10/05 for 5 October.

>>> paper_quantity(Decimal("40.551883333"), "minute")
'40.55'
>>> paper_quantity(Decimal("1648"), "token")
'1,648'
>>> paper_amount(Decimal("1234.5"), "USD")
'1,234.50'
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Final
from zoneinfo import ZoneInfo

from talktime.core.decimals import plain, quantize
from talktime.core.invoicing.invoice import Invoice, InvoiceLine
from talktime.core.invoicing.periods import date_in_words
from talktime.core.rating.money import minor_units

#: Decimal places a quantity prints with, by the unit of its line.
PAPER_PLACES: Final[dict[str, int]] = {
    "second": 1,
    "minute": 2,
    "hour": 3,
    "thousand_tokens": 3,
    "thousand_characters": 3,
    "thousand_requests": 3,
    "thousand_credits": 3,
    "million_tokens": 6,
    "million_characters": 6,
    "period": 0,
}
COUNT_UNITS: Final = frozenset({"token", "character", "request", "credit"})
UNIT_WORDS: Final[dict[str, str]] = {
    "second": "seconds",
    "minute": "minutes",
    "hour": "hours",
    "token": "tokens",
    "character": "characters",
    "request": "requests",
    "credit": "credits",
    "thousand_tokens": "thousand tokens",
    "thousand_characters": "thousand characters",
    "thousand_requests": "thousand requests",
    "thousand_credits": "thousand credits",
    "million_tokens": "million tokens",
    "million_characters": "million characters",
    "period": "month",
}
DEFAULT_PLACES: Final = 2


def quantity_places(unit: str) -> int:
    return 0 if unit in COUNT_UNITS else PAPER_PLACES.get(unit, DEFAULT_PLACES)


def paper_quantity(value: Decimal | None, unit: str) -> str:
    """A quantity at its unit's paper precision, half-even, with thousands separators; ``""`` for none."""
    if value is None:
        return ""
    places = quantity_places(unit)
    return f"{quantize(value, places):,.{places}f}"


def paper_amount(value: Decimal, currency: str, extra_places: int = 0) -> str:
    """An amount at the currency's minor unit (plus ``extra_places``), half-even, thousands separated."""
    places = minor_units(currency) + extra_places
    return f"{quantize(value, places):,.{places}f}"


def paper_price(value: Decimal | None, currency: str) -> str:
    """A unit price as the card states it, never rounded, with at least the currency's minor unit
    (``0.0085``, ``0.12``, ``49.00``)."""
    if value is None:
        return ""
    places = max(minor_units(currency), -plain(value).as_tuple().exponent)  # type: ignore[operator]
    return f"{value:,.{places}f}"


def local_time(moment: datetime, timezone: str) -> str:
    """``2026-10-05 16:00:00`` in the customer's zone (the zone is named once, in the appendix's title)."""
    return moment.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M:%S")


@dataclass(frozen=True, slots=True)
class PaperCall:
    number: int
    started: str
    session: str
    record: str
    actual: str
    billable: str
    amount: str


@dataclass(frozen=True, slots=True)
class PaperSection:
    """The calls behind one usage line, in start order."""

    line: int
    meter: str
    description: str
    unit: str
    calls: tuple[PaperCall, ...]


def appendix(invoice: Invoice) -> tuple[PaperSection, ...]:
    """One section per usage line that has calls: each call's start, actual, billable and amount."""
    sections = []
    zone = invoice.period.timezone
    for index, line in enumerate(invoice.lines, start=1):
        if not line.calls:
            continue
        ordered = sorted(line.calls, key=lambda c: (c.started_at, c.record))
        calls = tuple(
            PaperCall(
                number=number,
                started=local_time(call.started_at, zone),
                session=call.session,
                record=call.record,
                actual=paper_quantity(call.actual_quantity, line.unit),
                billable=paper_quantity(call.billable_quantity, line.unit),
                amount=paper_amount(call.amount, invoice.currency, extra_places=2),
            )
            for number, call in enumerate(ordered, start=1)
        )
        sections.append(PaperSection(index, line.meter, line.description, unit_words(line.unit), calls))
    return tuple(sections)


def unit_words(unit: str) -> str:
    return UNIT_WORDS.get(unit, unit)


def methodology_links(invoice: Invoice) -> tuple[tuple[str, str], ...]:
    """(policy id, URL) for each policy on the invoice, from the seller's ``methodology_url`` (``{policy}``
    in it becomes the policy id); none without a URL."""
    url = invoice.seller.methodology_url if invoice.seller is not None else ""
    if not url:
        return ()
    policies = sorted({line.policy_id for line in invoice.lines if line.policy_id})
    if "{policy}" not in url:
        return (("", url),)
    return tuple((policy, url.replace("{policy}", policy)) for policy in policies)


def terms_words(invoice: Invoice) -> str:
    days = invoice.payment_terms_days
    return "due on receipt" if days == 0 else f"due {days} day{'s' if days != 1 else ''} after the issue date"


def issue_words(invoice: Invoice) -> tuple[str, str]:
    """The issue and due dates as printed: dates in words when finalised; what will happen on a draft."""
    if invoice.issued_on is None or invoice.due_on is None:
        if invoice.status == "draft":
            return "on finalisation", terms_words(invoice)
        return "not recorded (finalised before issue dates)", "-"
    return date_in_words(invoice.issued_on), date_in_words(invoice.due_on)


def number_words(invoice: Invoice) -> str:
    if invoice.number is not None:
        return invoice.number
    if invoice.status == "draft":
        return "draft, no number"
    return "none (finalised before invoice numbers)"


def line_quantity(line: InvoiceLine, which: str) -> str:
    value = line.actual_quantity if which == "actual" else line.billable_quantity
    return paper_quantity(value, line.unit)
