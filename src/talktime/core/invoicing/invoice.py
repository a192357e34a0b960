"""Invoices: lines with actual and billable quantities, rounded amounts with their precise amounts, and
adjustments for late events.

Rules (docs/pricing.md):

* A record is on the invoice of the period in which it started, in the customer's time zone.
* Each line's amount is rounded to the currency's minor unit (half-even); subtotal and total are the sums of
  the rounded lines, so the paper adds up; the precise sums are kept beside them.
* A minimum commitment tops up the rounded usage lines to the minimum (fees do not count towards it).
* Finalising gives the invoice its issue date (the finalisation day in the customer's zone) and due date
  (issue + payment terms); its number comes from the seller's sequence in the ledger (``talktime.io``), and a
  number, like every other field, is part of the finalised record.
* A finalised invoice never changes. When events for a finalised period arrive later, the next invoice gets
  an adjustment line for that period: the period re-rated now minus everything already billed for it (its
  invoice's subtotal plus earlier adjustments). Positive is a debit, negative a credit.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from difflib import get_close_matches
from typing import Literal
from zoneinfo import ZoneInfo

from talktime.core.decimals import text
from talktime.core.invoicing.periods import Period, month_period
from talktime.core.metering.describe import one_line
from talktime.core.plausibility import Limits, hold_back, reason_code
from talktime.core.rating.cards import PriceCard, Seller
from talktime.core.rating.charges import ChargeStep
from talktime.core.rating.money import Money, Rounded, total
from talktime.core.rating.rate import RatedGroup, rate_entry
from talktime.core.records import UsageRecord
from talktime.errors import InputError

ZERO = Decimal(0)
LineKind = Literal["usage", "fee", "commitment", "adjustment"]
Status = Literal["draft", "finalised"]


@dataclass(frozen=True, slots=True)
class LineCall:
    """One record behind a usage line (the invoice's appendix): when it started, its actual and billable
    quantity in the line's unit and in the policy's base unit (exact: seconds or a count), and its share of
    the line's precise amount."""

    record: str
    session: str
    started_at: datetime
    actual_quantity: Decimal
    billable_quantity: Decimal
    actual_base: Decimal
    billable_base: Decimal
    amount: Decimal


@dataclass(frozen=True, slots=True)
class InvoiceLine:
    kind: LineKind
    meter: str
    description: str
    actual_quantity: Decimal | None
    billable_quantity: Decimal | None
    unit: str
    unit_price: Decimal | None
    amount: Rounded
    policy: str = ""
    breakdown: tuple[ChargeStep, ...] = ()
    adjusts_period: str | None = None
    records: int = 0
    #: The metering policy's id (the methodology page to link), and the policy's base unit (``s`` for time,
    #: else the count) in which ``calls`` and the exact line totals are written.
    policy_id: str = ""
    base_unit: str = ""
    calls: tuple[LineCall, ...] = ()

    @property
    def actual_base(self) -> Decimal | None:
        return sum((c.actual_base for c in self.calls), ZERO) if self.calls else None

    @property
    def billable_base(self) -> Decimal | None:
        return sum((c.billable_base for c in self.calls), ZERO) if self.calls else None


@dataclass(frozen=True, slots=True)
class Invoice:
    id: str
    customer: str
    customer_name: str
    plan: str
    period: Period
    currency: str
    status: Status
    lines: tuple[InvoiceLine, ...]
    subtotal: Rounded
    adjustments: Rounded
    total: Rounded
    notes: tuple[str, ...] = ()
    finalised_at: datetime | None = None
    informative: bool = False
    seller: Seller | None = None
    payment_terms_days: int = 0
    #: Given at finalisation from the seller's sequence; a draft has none.
    number: str | None = None
    issued_on: date | None = None
    due_on: date | None = None
    #: Records of the period held back as implausible (id, reasons): not on the invoice until a person
    #: accepts or corrects them; a draft with any cannot be finalised.
    held: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def sequence_id(self) -> str:
        """The number sequence this invoice draws from: its seller's id (``default`` without a seller)."""
        return self.seller.id if self.seller is not None else DEFAULT_SEQUENCE

    @property
    def number_prefix(self) -> str:
        return self.seller.invoice_prefix if self.seller is not None else "INV-"


DEFAULT_SEQUENCE = "default"
NUMBER_DIGITS = 6


def invoice_id(customer: str, period: str) -> str:
    return f"{customer}-{period}"


def _policy_words(group: RatedGroup) -> str:
    policy = group.entry.policy
    version = policy.version_at(group.items[0].metered.started_at) if group.items else policy.current
    since = group.policy_version or version.effective_from.date().isoformat()
    return f"{policy.id} (from {since}): {one_line(version.params)}"


def _usage_line(group: RatedGroup, currency: str, several_versions: bool) -> InvoiceLine:
    entry = group.entry
    meter = entry.id if group.meter == entry.policy.default_meter else group.meter
    calls = tuple(
        LineCall(
            record=item.record_id,
            session=item.metered.session,
            started_at=item.metered.started_at,
            actual_quantity=item.actual_quantity,
            billable_quantity=item.quantity,
            actual_base=item.metered.actual_seconds,
            billable_base=item.metered.billable_seconds,
            amount=item.amount,
        )
        for item in group.items
    )
    symbol = group.items[0].metered.symbol if group.items else ""
    description = entry.description
    if several_versions:
        description += f" (prices from {group.version.label})"
    return InvoiceLine(
        kind="usage",
        meter=meter,
        description=description,
        actual_quantity=group.actual_quantity,
        billable_quantity=group.billable_quantity,
        unit=entry.unit,
        unit_price=group.charge.unit_price,
        amount=Money(group.charge.amount, currency).rounded(),
        policy=_policy_words(group),
        breakdown=group.charge.steps,
        records=len(group.items),
        policy_id=entry.policy.id,
        base_unit=symbol,
        calls=calls,
    )


def period_lines(records: Iterable[UsageRecord], card: PriceCard) -> list[InvoiceLine]:
    """The period's own lines: usage per component (and meter, charge version), fees, minimum true-up."""
    records = list(records)
    lines: list[InvoiceLine] = []
    for component in card.components:
        groups = rate_entry(component, records)
        several = len({g.version.effective_from for g in groups}) > 1
        lines.extend(_usage_line(g, card.currency, several) for g in groups)
    for fee in card.fees:
        charge = fee.charge.rate([])
        lines.append(
            InvoiceLine(
                "fee",
                fee.id,
                fee.description,
                None,
                Decimal(1),
                "period",
                charge.unit_price,
                Money(charge.amount, card.currency).rounded(),
                breakdown=charge.steps,
            )
        )
    if card.minimum is not None:
        usage = sum((line.amount.amount for line in lines if line.kind == "usage"), ZERO)
        charge = card.minimum.true_up(usage)
        if charge.amount:
            lines.append(
                InvoiceLine(
                    "commitment",
                    "minimum-commitment",
                    f"minimum commitment {text(card.minimum.minimum)} {card.currency}: true-up",
                    None,
                    Decimal(1),
                    "period",
                    charge.amount,
                    Money(charge.amount, card.currency).rounded(),
                    breakdown=charge.steps,
                )
            )
    return lines


def _in_period(records: Iterable[UsageRecord], customer: str, period: Period) -> list[UsageRecord]:
    return [r for r in records if r.customer == customer and period.contains(r.started_at)]


def already_billed(ledger: Sequence[Invoice], period: str) -> Decimal | None:
    """What finalised invoices billed for ``period``: its own subtotal plus later adjustment lines for it."""
    own = [inv for inv in ledger if inv.period.label == period and inv.status == "finalised"]
    if not own:
        return None
    billed = own[0].subtotal.amount
    for inv in ledger:
        if inv.status != "finalised":
            continue
        billed += sum((line.amount.amount for line in inv.lines if line.adjusts_period == period), ZERO)
    return billed


def build_invoice(
    records: Iterable[UsageRecord],
    card: PriceCard,
    customer: str,
    period: str,
    ledger: Sequence[Invoice] = (),
    held: Sequence[tuple[UsageRecord, tuple[str, ...]]] = (),
) -> Invoice:
    """The invoice of ``customer`` for month ``period`` (YYYY-MM): the finalised one from ``ledger`` if there
    is one (it never changes), else a draft with adjustments for earlier finalised periods.

    ``held``: records flagged implausible (with their reasons), kept off the invoice; those of this
    customer and period are named on the draft, which then cannot be finalised."""
    ledger = [inv for inv in ledger if inv.customer == customer]
    for inv in ledger:
        if inv.period.label == period and inv.status == "finalised":
            return inv
    who = card.customer(customer)
    this = month_period(period, who.timezone)
    records = list(records)
    lines = period_lines(_in_period(records, customer, this), card)
    notes: list[str] = []
    if not any(line.kind == "usage" for line in lines):
        notes.append(f"no usage for {customer} in {period}")
    kept_back = tuple(
        (record.id, reasons)
        for record, reasons in held
        if record.customer == customer and this.contains(record.started_at)
    )
    if kept_back:
        notes.insert(0, held_note(kept_back))
    adjustments: list[InvoiceLine] = []
    for earlier in sorted({inv.period.label for inv in ledger if inv.period.label < period}):
        billed = already_billed(ledger, earlier)
        if billed is None:
            continue
        earlier_period = month_period(earlier, who.timezone)
        earlier_records = _in_period(records, customer, earlier_period)
        if not earlier_records:
            notes.append(f"{earlier}: no records in the input, not re-rated (no adjustment)")
            continue
        rerated = total([line.amount for line in period_lines(earlier_records, card)], card.currency)
        difference = rerated.amount - billed
        if difference:
            kind = "debit" if difference > 0 else "credit"
            adjustments.append(
                InvoiceLine(
                    "adjustment",
                    "adjustment",
                    f"adjustment for {earlier} ({kind}): re-rated {rerated.amount} - billed {billed}",
                    None,
                    None,
                    "period",
                    None,
                    Rounded(Money(difference, card.currency), Money(difference, card.currency)),
                    adjusts_period=earlier,
                    records=len(earlier_records),
                )
            )
    subtotal = total([line.amount for line in lines], card.currency)
    adjusted = total([line.amount for line in adjustments], card.currency)
    return Invoice(
        id=invoice_id(customer, period),
        customer=customer,
        customer_name=who.name,
        plan=card.plan,
        period=this,
        currency=card.currency,
        status="draft",
        lines=(*lines, *adjustments),
        subtotal=subtotal,
        adjustments=adjusted,
        total=total([subtotal, adjusted], card.currency),
        notes=tuple(notes),
        held=kept_back,
        informative=card.informative,
        seller=card.seller,
        payment_terms_days=card.terms_days(customer),
    )


def guarded_invoice(
    records: Iterable[UsageRecord],
    card: PriceCard,
    customer: str,
    period: str,
    ledger: Sequence[Invoice],
    limits: Limits,
    now: datetime | None = None,
) -> Invoice:
    """:func:`build_invoice` with the records the plausibility ``limits`` flag held back and named.

    A month being billed is judged as of its end, or ``now`` if it has not ended: a record of the month can
    then be "ahead" only in the month still running, and billing an old month is not "long ago"."""
    end = month_period(period, card.customer(customer).timezone).end
    mine = [r for r in records if r.customer == customer]
    kept, held = hold_back(mine, limits, end if now is None else min(now, end))
    return build_invoice(kept, card, customer, period, ledger, held)


def check_known_customer(records: Iterable[UsageRecord], card: PriceCard, customer: str) -> None:
    """Refuse a customer that neither the price card nor any record knows (a typo would otherwise give a
    zero invoice that, once finalised, never changes), naming the closest known ids."""
    if customer in card.customers:
        return
    known = {r.customer for r in records if r.customer is not None}
    if customer in known:
        return
    close = get_close_matches(customer, sorted(known | set(card.customers)), n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise InputError(f"customer {customer!r} is in neither the price card's [customers] nor any record{hint}")


def held_note(held: Sequence[tuple[str, tuple[str, ...]]]) -> str:
    """Says, on the invoice, that its total leaves out records held back as implausible, and which."""
    shown = "; ".join(
        f"{record_id} ({', '.join(reason_code(r) for r in reasons)})" for record_id, reasons in held[:5]
    )
    more = f" and {len(held) - 5} more" if len(held) > 5 else ""
    return (
        f"INCOMPLETE: {len(held)} record(s) of this period are held back as implausible and not billed until "
        f"a person accepts or corrects them: {shown}{more}"
    )


def finalise(invoice: Invoice, at: datetime) -> Invoice:
    """The invoice, finalised at ``at``. Finalising a finalised invoice is an error: it never changes."""
    if invoice.status == "finalised":
        raise InputError(f"invoice {invoice.id} is already finalised; it never changes")
    if invoice.held:
        raise InputError(
            f"invoice {invoice.id} is not finalised: {held_note(invoice.held)}; correct them, or pass "
            "--allow-flagged to bill them as they are"
        )
    if at.utcoffset() is None:
        raise InputError("finalised_at needs a UTC offset")
    issued = at.astimezone(ZoneInfo(invoice.period.timezone)).date()
    due = issued + timedelta(days=invoice.payment_terms_days)
    return replace(invoice, status="finalised", finalised_at=at, issued_on=issued, due_on=due)


def format_number(prefix: str, sequence: int) -> str:
    """An invoice number: the seller's prefix and the sequence number in six digits.

    >>> format_number("INV-", 42)
    'INV-000042'
    """
    return f"{prefix}{sequence:0{NUMBER_DIGITS}d}"


def next_sequence(taken: Iterable[int], seller: str) -> int:
    """The next number of a seller's sequence after the numbers ``taken``, which must run 1, 2, ... n with
    nothing missing or repeated (a gap or a repeat means a finalised invoice went missing or was copied).

    >>> next_sequence([2, 1, 3], "acme")
    4
    """
    numbers = sorted(taken)
    expected = list(range(1, len(numbers) + 1))
    if numbers != expected:
        missing = sorted(set(expected) - set(numbers))
        repeated = sorted({n for n in numbers if numbers.count(n) > 1})
        raise InputError(
            f"invoice numbers of seller {seller!r} are not 1..{len(numbers)} without gaps: "
            + (f"missing {missing}" if missing else f"repeated {repeated}")
            + "; restore the ledger from backup before finalising (numbers are never reused)"
        )
    return len(numbers) + 1


def with_number(invoice: Invoice, number: str) -> Invoice:
    """A finalised invoice with its number (given once, when it enters the ledger)."""
    if invoice.status != "finalised":
        raise InputError(f"invoice {invoice.id} is a draft: a draft has no number")
    if invoice.number is not None:
        raise InputError(f"invoice {invoice.id} already has number {invoice.number}; numbers never change")
    return replace(invoice, number=number)
