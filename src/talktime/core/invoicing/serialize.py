"""An invoice as plain data (JSON-ready) and back. Amounts are decimal strings at the currency's minor unit,
precise amounts and quantities are exact decimal strings: no float on the way out or in.

Quantities in a line's unit are written to 6 places (``actual_quantity``, ``billable_quantity``), and
exactly in the policy's base unit (``actual_base``, ``billable_base``: seconds, or the count), for the line
and for each call behind it. Keys added after ``talktime.invoice/1`` was first written are optional on the
way in, so ledger files finalised before them still read.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import date, datetime
from decimal import Decimal
from typing import Any, cast

from talktime.core.decimals import quantize, text
from talktime.core.invoicing.invoice import Invoice, InvoiceLine, LineCall, LineKind, Status
from talktime.core.invoicing.periods import Period
from talktime.core.metering.policy import QUANTITY_PLACES
from talktime.core.rating.cards import Seller
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


def call_dict(call: LineCall) -> dict[str, Any]:
    return {
        "record": call.record,
        "session": call.session,
        "started_at": call.started_at.isoformat(),
        "actual_quantity": _quantity(call.actual_quantity),
        "billable_quantity": _quantity(call.billable_quantity),
        "actual_base": text(call.actual_base),
        "billable_base": text(call.billable_base),
        "amount": _precise(call.amount),
    }


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
        "policy_id": line.policy_id,
        "base_unit": line.base_unit,
        "actual_base": _opt(line.actual_base),
        "billable_base": _opt(line.billable_base),
        "calls": [call_dict(call) for call in line.calls],
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
        "number": invoice.number,
        "issued_on": _day(invoice.issued_on),
        "due_on": _day(invoice.due_on),
        "payment_terms_days": invoice.payment_terms_days,
        "period_words": invoice.period.in_words(),
        "seller": None if invoice.seller is None else _seller_dict(invoice.seller),
        "held": [{"id": record_id, "reasons": list(reasons)} for record_id, reasons in invoice.held],
    }


def _day(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


def _seller_dict(seller: Seller) -> dict[str, Any]:
    data = asdict(seller)
    data["address"] = list(seller.address)
    return data


def _seller_from(data: object) -> Seller | None:
    if not isinstance(data, dict):
        return None
    return Seller(**{**data, "address": tuple(data.get("address", ()))})


def _call_from(data: dict[str, Any]) -> LineCall:
    return LineCall(
        record=data["record"],
        session=data["session"],
        started_at=datetime.fromisoformat(data["started_at"]),
        actual_quantity=exact(data["actual_quantity"]),
        billable_quantity=exact(data["billable_quantity"]),
        actual_base=exact(data["actual_base"]),
        billable_base=exact(data["billable_base"]),
        amount=exact(data["amount"]),
    )


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
            policy_id=line.get("policy_id", ""),
            base_unit=line.get("base_unit", ""),
            calls=tuple(_call_from(call) for call in line.get("calls", [])),
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
        seller=_seller_from(data.get("seller")),
        payment_terms_days=int(data.get("payment_terms_days", 0)),
        number=data.get("number"),
        issued_on=None if data.get("issued_on") is None else date.fromisoformat(data["issued_on"]),
        due_on=None if data.get("due_on") is None else date.fromisoformat(data["due_on"]),
    )
