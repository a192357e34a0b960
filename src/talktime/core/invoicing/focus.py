"""FOCUS 1.2 rows (FinOps Open Cost and Usage Specification) for both sides of a month: what providers
charge the platform (cost side, from a cost card) and what customers are charged (price side, the invoices).

Owns: which FOCUS column each number goes to, as plain values (Decimal, datetime in UTC, str, int, None).
Does not own: files (``talktime.io.exports`` writes CSV and Parquet) or rating (``talktime.core.rating``).

* **Price side**: one row per invoice line. BilledCost is the line's rounded amount, so BilledCost summed per
  InvoiceId is the invoice's total (the spec's rule). InvoiceId is the invoice number once finalised, and the
  draft's reference (``customer-YYYY-MM``) before: a provisional invoice id, as FOCUS allows.
  Usage lines are ChargeCategory ``Usage``; fees ``Purchase`` (recurring); a minimum-commitment true-up
  ``Adjustment``; a late-usage adjustment for an invoiced month is ``Usage`` with ChargeClass
  ``Correction`` and that month as its charge period.
* **Cost side**: one row per cost entry, meter, charge version and customer in the providers' month (the
  cost card's ``period_timezone``). BilledCost is the exact cost (providers' invoices are not ours to round).
* ConsumedQuantity is the actual quantity and PricingQuantity the billable one, in the priced unit.
* ListUnitPrice and ContractedUnitPrice (one price: the card's) are set where one unit price applies to the
  whole row, and ListCost = ContractedCost = that price x PricingQuantity (as written, 12 places); where no
  single price applies (tiers across bands, packages, free quotas, per-attempt fees) both are null and the
  costs equal BilledCost.
* Columns talktime adds start with ``x_``, as the spec asks of custom columns.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Final

from talktime.core.decimals import quantize
from talktime.core.invoicing.invoice import (
    Invoice,
    InvoiceLine,
    build_invoice,
    check_known_customer,
    guarded_invoice,
)
from talktime.core.invoicing.periods import Period, month_period, period_label
from talktime.core.metering.describe import one_line
from talktime.core.plausibility import Limits
from talktime.core.rating.cards import CostCard, Entry, PriceCard
from talktime.core.rating.rate import RatedGroup, rate_entry
from talktime.core.records import UsageRecord

ZERO = Decimal(0)
FOCUS_VERSION: Final = "1.2"
#: Decimal places written for FOCUS decimals (exact for amounts at a minor unit and for unit prices).
PLACES: Final = 12
Row = dict[str, object]

#: FOCUS columns in the order written, then talktime's own (x_).
COLUMNS: Final = (
    "BilledCost",
    "BillingAccountId",
    "BillingAccountName",
    "BillingCurrency",
    "BillingPeriodEnd",
    "BillingPeriodStart",
    "ChargeCategory",
    "ChargeClass",
    "ChargeDescription",
    "ChargeFrequency",
    "ChargePeriodEnd",
    "ChargePeriodStart",
    "ConsumedQuantity",
    "ConsumedUnit",
    "ContractedCost",
    "ContractedUnitPrice",
    "EffectiveCost",
    "InvoiceId",
    "InvoiceIssuerName",
    "ListCost",
    "ListUnitPrice",
    "PricingCategory",
    "PricingQuantity",
    "PricingUnit",
    "ProviderName",
    "PublisherName",
    "ServiceCategory",
    "ServiceName",
    "ServiceSubcategory",
    "SkuId",
    "x_Side",
    "x_Customer",
    "x_InvoiceStatus",
    "x_InvoiceReference",
    "x_LineKind",
    "x_PreciseCost",
    "x_Policy",
    "x_Records",
    "x_CorrectsPeriod",
)
DECIMAL_COLUMNS: Final = frozenset(
    {
        "BilledCost",
        "ConsumedQuantity",
        "ContractedCost",
        "ContractedUnitPrice",
        "EffectiveCost",
        "ListCost",
        "ListUnitPrice",
        "PricingQuantity",
        "x_PreciseCost",
    }
)
DATETIME_COLUMNS: Final = frozenset(
    {"BillingPeriodEnd", "BillingPeriodStart", "ChargePeriodEnd", "ChargePeriodStart"}
)
INTEGER_COLUMNS: Final = frozenset({"x_Records"})

#: FOCUS units (UnitFormat) for talktime's card units.
UNITS: Final[dict[str, str]] = {
    "second": "Seconds",
    "minute": "Minutes",
    "hour": "Hours",
    "token": "Tokens",
    "thousand_tokens": "1000 Tokens",
    "million_tokens": "1000000 Tokens",
    "character": "Characters",
    "thousand_characters": "1000 Characters",
    "million_characters": "1000000 Characters",
    "request": "Requests",
    "thousand_requests": "1000 Requests",
    "credit": "Credits",
    "thousand_credits": "1000 Credits",
    "period": "Months",
}
#: ServiceCategory and ServiceSubcategory (FOCUS 1.2 allowed values) by a profile's modality.
SERVICES: Final[dict[str, tuple[str, str]]] = {
    "telephony": ("Networking", "Network Connectivity"),
    "stt": ("AI and Machine Learning", "Natural Language Processing"),
    "tts": ("AI and Machine Learning", "Natural Language Processing"),
    "llm": ("AI and Machine Learning", "Generative AI"),
    "platform": ("Media", "Media Streaming"),
}
#: A plan's own minutes (a voice agent's calls, sold whole) and anything else.
SOLD_CALLS: Final = ("AI and Machine Learning", "Bots")
OTHER: Final = ("Other", "Other (Other)")


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


def _written(value: Decimal) -> Decimal:
    return quantize(value, PLACES)


def _prices(unit_price: Decimal | None, quantity: Decimal | None, billed: Decimal) -> Row:
    """List and contracted unit prices and costs: the one price x the quantity as written, or, without a
    single price, null prices and costs equal to what is billed."""
    if unit_price is None or quantity is None:
        return {
            "ListUnitPrice": None,
            "ContractedUnitPrice": None,
            "ListCost": billed,
            "ContractedCost": billed,
        }
    cost = unit_price * _written(quantity)
    return {
        "ListUnitPrice": unit_price,
        "ContractedUnitPrice": unit_price,
        "ListCost": cost,
        "ContractedCost": cost,
    }


def _service(modality: str, default: tuple[str, str]) -> tuple[str, str]:
    return SERVICES.get(modality, default)


# --- price side ---------------------------------------------------------------------------------------------


def period_invoices(
    records: Iterable[UsageRecord],
    card: PriceCard,
    period: str,
    ledger: Sequence[Invoice] = (),
    customers: Sequence[str] = (),
    limits: Limits | None = None,
    now: datetime | None = None,
) -> list[Invoice]:
    """The month's invoice of every customer (or of ``customers``): the finalised one from ``ledger`` when
    there is one, else a draft. A customer is in the month when a record of theirs started in it (in their
    zone) or the ledger holds their invoice for it; a customer named in ``customers`` that neither the card
    nor a record knows is refused (naming the closest ids), as ``invoice finalize`` refuses it.

    ``limits``: the plausibility guards. A draft then leaves out the records they flag and names them (its
    INCOMPLETE note, ``held``), exactly as ``talktime invoice`` does, judged as of the end of the customer's
    month (or ``now``, if earlier), so the exported lines are the draft's lines and add up to its total.
    """
    records = list(records)
    for name in customers:
        check_known_customer(records, card, name)
    wanted = set(customers)
    found = {inv.customer for inv in ledger if inv.period.label == period}
    for record in records:
        if record.customer is None:
            continue
        if period_label(record.started_at, card.customer(record.customer).timezone) == period:
            found.add(record.customer)
    invoices = []
    for customer in sorted(wanted or found):
        billed = [inv for inv in ledger if inv.customer == customer]
        if limits is None:
            invoices.append(build_invoice(records, card, customer, period, billed))
        else:
            invoices.append(guarded_invoice(records, card, customer, period, billed, limits, now))
    return invoices


def _component(card: PriceCard, meter: str) -> Entry | None:
    return next((c for c in card.components if meter in (c.id, c.group)), None)


def _line_row(invoice: Invoice, line: InvoiceLine, card: PriceCard) -> Row:
    seller = invoice.seller.name if invoice.seller is not None else invoice.plan
    invoice_key = invoice.number or invoice.id
    billed = line.amount.amount
    correction = line.kind == "adjustment"
    charged: Period = invoice.period
    if correction and line.adjusts_period is not None:
        charged = month_period(line.adjusts_period, invoice.period.timezone)
    component = _component(card, line.meter)
    category, subcategory = _service(component.modality, SOLD_CALLS) if component else SOLD_CALLS
    if line.kind == "usage":
        charge, frequency = "Usage", "Usage-Based"
    elif line.kind == "fee":
        charge, frequency = "Purchase", "Recurring"
    elif line.kind == "commitment":
        charge, frequency = "Adjustment", "Recurring"
    else:
        charge, frequency = "Usage", "Usage-Based"
    quantity = None if correction or line.kind == "commitment" else line.billable_quantity
    consumed = line.actual_quantity if charge == "Usage" and not correction else None
    unit = UNITS.get(line.unit, line.unit)
    single = line.unit_price
    if single is not None and quantity is not None and single * quantity != line.amount.precise.amount:
        single = None  # the line's amount is not one price x its quantity (a quota, a tier fee)
    return {
        "BilledCost": billed,
        "BillingAccountId": invoice.customer,
        "BillingAccountName": invoice.customer_name,
        "BillingCurrency": invoice.currency,
        "BillingPeriodEnd": _utc(invoice.period.end),
        "BillingPeriodStart": _utc(invoice.period.start),
        "ChargeCategory": charge,
        "ChargeClass": "Correction" if correction else None,
        "ChargeDescription": line.description,
        "ChargeFrequency": frequency,
        "ChargePeriodEnd": _utc(charged.end),
        "ChargePeriodStart": _utc(charged.start),
        "ConsumedQuantity": consumed,
        "ConsumedUnit": unit if consumed is not None else None,
        **_prices(single if quantity is not None else None, quantity, billed),
        "EffectiveCost": billed,
        "InvoiceId": invoice_key,
        "InvoiceIssuerName": seller,
        "PricingCategory": "Standard" if charge in ("Usage", "Purchase") and not correction else None,
        "PricingQuantity": quantity,
        "PricingUnit": unit if quantity is not None else None,
        "ProviderName": seller,
        "PublisherName": seller,
        "ServiceCategory": category,
        "ServiceName": component.description if component else line.description,
        "ServiceSubcategory": subcategory,
        "SkuId": None if correction else line.meter,
        "x_Side": "price",
        "x_Customer": invoice.customer,
        "x_InvoiceStatus": invoice.status,
        "x_InvoiceReference": invoice.id,
        "x_LineKind": line.kind,
        "x_PreciseCost": line.amount.precise.amount,
        "x_Policy": line.policy or None,
        "x_Records": line.records,
        "x_CorrectsPeriod": line.adjusts_period,
    }


def price_rows(invoices: Iterable[Invoice], card: PriceCard) -> list[Row]:
    """One FOCUS row per line of each invoice (what customers are charged)."""
    return [_line_row(invoice, line, card) for invoice in invoices for line in invoice.lines]


# --- cost side ----------------------------------------------------------------------------------------------


def _cost_row(group: RatedGroup, customer: str, card: CostCard, month: Period) -> Row:
    entry = group.entry
    items = [i for i in group.items if (i.metered.customer or "") == customer]
    billed = sum((i.amount for i in items), ZERO)
    quantity = sum((i.quantity for i in items), ZERO)
    actual = sum((i.actual_quantity for i in items), ZERO)
    provider = entry.policy.provider or entry.group or entry.id
    single = group.charge.unit_price
    if single is not None and single * quantity != billed:
        single = None
    category, subcategory = _service(entry.modality, OTHER)
    version = entry.policy.version_at(items[0].metered.started_at)
    unit = UNITS.get(entry.unit, entry.unit)
    description = entry.description + (f" ({group.version.note})" if group.version.note else "")
    if entry.placeholder and "placeholder" not in description.lower():  # the row says its price is made up
        description += " (price: placeholder)"
    return {
        "BilledCost": billed,
        "BillingAccountId": card.name,
        "BillingAccountName": card.name,
        "BillingCurrency": card.currency,
        "BillingPeriodEnd": _utc(month.end),
        "BillingPeriodStart": _utc(month.start),
        "ChargeCategory": "Usage",
        "ChargeClass": None,
        "ChargeDescription": description,
        "ChargeFrequency": "Usage-Based",
        "ChargePeriodEnd": _utc(month.end),
        "ChargePeriodStart": _utc(month.start),
        "ConsumedQuantity": actual,
        "ConsumedUnit": unit,
        **_prices(single, quantity, billed),
        "EffectiveCost": billed,
        "InvoiceId": None,
        "InvoiceIssuerName": provider,
        "PricingCategory": "Standard",
        "PricingQuantity": quantity,
        "PricingUnit": unit,
        "ProviderName": provider,
        "PublisherName": provider,
        "ServiceCategory": category,
        "ServiceName": entry.policy.name or entry.description,
        "ServiceSubcategory": subcategory,
        "SkuId": entry.id if group.meter == entry.policy.default_meter else f"{entry.id}.{group.meter}",
        "x_Side": "cost",
        "x_Customer": customer or None,
        "x_InvoiceStatus": None,
        "x_InvoiceReference": None,
        "x_LineKind": "usage",
        "x_PreciseCost": billed,
        "x_Policy": f"{entry.policy.id}: {one_line(version.params)}",
        "x_Records": len(items),
        "x_CorrectsPeriod": None,
    }


def cost_rows(records: Iterable[UsageRecord], card: CostCard, period: str) -> tuple[list[Row], list[str]]:
    """One FOCUS row per cost entry, meter, charge version and customer in the providers' month ``period``
    (what providers charge), and the ids of the month's records no entry prices (unknown, not free)."""
    month = month_period(period, card.period_timezone)
    in_month = [r for r in records if month.contains(r.started_at)]
    assigned: dict[str, list[UsageRecord]] = defaultdict(list)
    costed: set[str] = set()
    for record in in_month:
        for entry in card.entries_for(record):
            assigned[entry.id].append(record)
            costed.add(record.id)
    rows: list[Row] = []
    for entry in card.entries:
        for group in rate_entry(entry, assigned.get(entry.id, [])):
            customers = sorted({i.metered.customer or "" for i in group.items})
            rows.extend(_cost_row(group, customer, card, month) for customer in customers)
    return rows, [r.id for r in in_month if r.id not in costed]
