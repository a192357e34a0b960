"""An invoice as plain data (JSON-ready) and back. Amounts are decimal strings at the currency's minor unit,
precise amounts and quantities are exact decimal strings: no float on the way out or in.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, cast

from talktime.core.decimals import quantize, text
from talktime.core.invoicing.invoice import Invoice, InvoiceLine, LineKind, Status
from talktime.core.invoicing.periods import Period
from talktime.core.metering.policy import QUANTITY_PLACES
from talktime.core.rating.charges import ChargeStep
from talktime.core.rating.money import Money, Rounded, exact

SCHEMA = "talktime.invoice/1"
PRECISE_PLACES = 12


def _quantity(value: Decimal | None) -> str | None:
    return None if value is None else text(quantize(value, QUANTITY_PLACES))


def _amount(value: Rounded) -> str:
    """A rounded amount written at exactly the currency's minor unit (``0.00`` USD, ``0`` JPY)."""
    return str(value.money.rounded().amount)


def _precise(value: Decimal) -> str:
    """A precise (unrounded) amount as written to files: exact to 12 decimal places."""
    return text(quantize(value, PRECISE_PLACES))


def _opt(value: Decimal | None) -> str | None:
    return None if value is None else text(value)


def line_dict(line: InvoiceLine) -> dict[str, Any]:
    return {
        "meter": line.meter,
        "description": line.description,
        "actual_quantity": _quantity(line.actual_quantity),
        "billable_quantity": _quantity(line.billable_quantity),
        "unit": line.unit,
        "unit_price": _opt(line.unit_price),
        "amount": _amount(line.amount),
        "precise_amount": _precise(line.amount.precise.amount),
        "kind": line.kind,
        "policy": line.policy,
        "records": line.records,
        "adjusts_period": line.adjusts_period,
        "breakdown": [step.as_dict() for step in line.breakdown],
    }


def invoice_dict(invoice: Invoice) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "id": invoice.id,
        "customer": invoice.customer,
        "customer_name": invoice.customer_name,
        "plan": invoice.plan,
        "period": invoice.period.label,
        "period_start": invoice.period.start.isoformat(),
        "period_end": invoice.period.end.isoformat(),
        "timezone": invoice.period.timezone,
        "currency": invoice.currency,
        "status": invoice.status,
        "finalised_at": None if invoice.finalised_at is None else invoice.finalised_at.isoformat(),
        "lines": [line_dict(line) for line in invoice.lines],
        "subtotal": _amount(invoice.subtotal),
        "adjustments": _amount(invoice.adjustments),
        "total": _amount(invoice.total),
        "precise_subtotal": _precise(invoice.subtotal.precise.amount),
        "precise_total": _precise(invoice.total.precise.amount),
        "notes": list(invoice.notes),
        "informative": invoice.informative,
    }


def _rounded(amount: object, precise: object, currency: str) -> Rounded:
    return Rounded(Money(exact(amount), currency), Money(exact(precise), currency))


def _maybe(value: object) -> Decimal | None:
    return None if value is None else exact(value)


def _moment(value: object) -> datetime | None:
    return None if value is None else datetime.fromisoformat(str(value))


def invoice_from_dict(data: dict[str, Any]) -> Invoice:
    """The inverse of :func:`invoice_dict` (used to read finalised invoices back from the ledger)."""
    currency = str(data["currency"])
    lines = tuple(
        InvoiceLine(
            kind=cast(LineKind, line["kind"]),
            meter=line["meter"],
            description=line["description"],
            actual_quantity=_maybe(line["actual_quantity"]),
            billable_quantity=_maybe(line["billable_quantity"]),
            unit=line["unit"],
            unit_price=_maybe(line["unit_price"]),
            amount=_rounded(line["amount"], line["precise_amount"], currency),
            policy=line.get("policy", ""),
            breakdown=tuple(
                ChargeStep(
                    s["description"], exact(s["quantity"]), _maybe(s["unit_price"]), exact(s["amount"])
                )
                for s in line.get("breakdown", [])
            ),
            adjusts_period=line.get("adjusts_period"),
            records=int(line.get("records", 0)),
        )
        for line in data["lines"]
    )
    adjustments = exact(data["adjustments"])
    subtotal = _rounded(data["subtotal"], data["precise_subtotal"], currency)
    return Invoice(
        id=data["id"],
        customer=data["customer"],
        customer_name=data.get("customer_name", data["customer"]),
        plan=data.get("plan", ""),
        period=Period(
            data["period"],
            data["timezone"],
            datetime.fromisoformat(data["period_start"]),
            datetime.fromisoformat(data["period_end"]),
        ),
        currency=currency,
        status=cast(Status, data["status"]),
        lines=lines,
        subtotal=subtotal,
        adjustments=Rounded(Money(adjustments, currency), Money(adjustments, currency)),
        total=_rounded(data["total"], data["precise_total"], currency),
        notes=tuple(data.get("notes", [])),
        finalised_at=None
        if data.get("finalised_at") is None
        else datetime.fromisoformat(data["finalised_at"]),
        informative=bool(data.get("informative", False)),
    )
