"""Invoices: lines with actual and billable quantities, rounded amounts with their precise amounts, and
adjustments for late events.

Rules (docs/pricing.md):

* A record is on the invoice of the period in which it started, in the customer's time zone.
* Each line's amount is rounded to the currency's minor unit (half-even); subtotal and total are the sums of
  the rounded lines, so the paper adds up; the precise sums are kept beside them.
* A minimum commitment tops up the rounded usage lines to the minimum (fees do not count towards it).
* A finalised invoice never changes. When events for a finalised period arrive later, the next invoice gets
  an adjustment line for that period: the period re-rated now minus everything already billed for it (its
  invoice's subtotal plus earlier adjustments). Positive is a debit, negative a credit.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Literal

from talktime.core.decimals import text
from talktime.core.invoicing.periods import Period, month_period
from talktime.core.metering.describe import one_line
from talktime.core.rating.cards import PriceCard
from talktime.core.rating.charges import ChargeStep
from talktime.core.rating.money import Money, Rounded, total
from talktime.core.rating.rate import RatedGroup, rate_entry
from talktime.core.records import UsageRecord
from talktime.errors import InputError

ZERO = Decimal(0)
LineKind = Literal["usage", "fee", "commitment", "adjustment"]
Status = Literal["draft", "finalised"]


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
) -> Invoice:
    """The invoice of ``customer`` for month ``period`` (YYYY-MM): the finalised one from ``ledger`` if there
    is one (it never changes), else a draft with adjustments for earlier finalised periods."""
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
        informative=card.informative,
    )


def finalise(invoice: Invoice, at: datetime) -> Invoice:
    """The invoice, finalised at ``at``. Finalising a finalised invoice is an error: it never changes."""
    if invoice.status == "finalised":
        raise InputError(f"invoice {invoice.id} is already finalised; it never changes")
    if at.utcoffset() is None:
        raise InputError("finalised_at needs a UTC offset")
    return replace(invoice, status="finalised", finalised_at=at)
