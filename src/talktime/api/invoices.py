"""Invoice routes: ``GET /v1/invoices?customer=C&period=YYYY-MM`` (JSON) and ``GET /v1/invoices/{id}.pdf``.

Same authentication and tenant rules as every route: the Bearer key's tenant is the only one whose records
(and ledger, ``LEDGER/<tenant>/``) the request sees. The server's price card and ledger are configured when
the app is made (``create_app(..., prices=..., ledger=...)``); without a price card the routes answer 404.
Records still open are left out until they close (the invoice notes how many).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Response
from starlette.concurrency import run_in_threadpool

from talktime.api import service
from talktime.api.errors import json_response
from talktime.core.invoicing.invoice import Invoice, build_invoice
from talktime.core.invoicing.serialize import invoice_dict
from talktime.core.rating.cards import PriceCard
from talktime.errors import InputError, NotFoundError
from talktime.io.invoices import read_ledger, to_pdf
from talktime.store.base import EventStore

_ID = re.compile(r"^(?P<customer>.+)-(?P<period>\d{4}-\d{2})$")


def add_invoice_routes(
    app: FastAPI,
    store: EventStore,
    tenant: Callable[..., str],
    *,
    prices: PriceCard | None,
    ledger: Path | None,
    clock: Callable[[], datetime],
    idle_timeout: timedelta,
) -> None:
    """Register the invoice routes on ``app``; ``tenant`` is the app's authentication dependency."""
    authenticated = Depends(tenant)

    def invoice_for(who: str, customer: str, period: str) -> Invoice:
        if prices is None:
            raise NotFoundError("this server has no price card; start it with one to serve invoices")
        sessions = service.session_records(store, who, clock(), idle_timeout)
        records = [s.record for s in sessions if s.record.status != "open"]
        still_open = sum(1 for s in sessions if s.record.status == "open" and s.record.customer == customer)
        if not any(r.customer == customer for r in records) and not still_open:
            raise NotFoundError(f"no records for customer {customer!r}")
        history = read_ledger(ledger / who, customer) if ledger is not None else []
        invoice = build_invoice(records, prices, customer, period, history)
        if still_open and invoice.status == "draft":
            note = f"{still_open} record(s) still open are not on this draft yet"
            invoice = replace(invoice, notes=(*invoice.notes, note))
        return invoice

    @app.get("/v1/invoices", summary="A customer's invoice for a month: finalised if it is, else a draft")
    async def get_invoice(
        customer: Annotated[str, Query(description="customer id, as in the records")],
        period: Annotated[str, Query(description="billing month, YYYY-MM, in the customer's time zone")],
        who: str = authenticated,
    ) -> Response:
        def run() -> dict[str, Any]:
            return invoice_dict(invoice_for(who, customer, period))

        return json_response(await run_in_threadpool(run))

    @app.get("/v1/invoices/{invoice_id}.pdf", summary="The invoice as a PDF; the id is CUSTOMER-YYYY-MM")
    async def get_invoice_pdf(invoice_id: str, who: str = authenticated) -> Response:
        found = _ID.match(invoice_id)
        if found is None:
            raise InputError(f"invoice id {invoice_id!r} is not CUSTOMER-YYYY-MM")

        def run() -> bytes:
            return to_pdf(invoice_for(who, found.group("customer"), found.group("period")))

        pdf = await run_in_threadpool(run)
        headers = {"Content-Disposition": f'inline; filename="{invoice_id}.pdf"'}
        return Response(pdf, media_type="application/pdf", headers=headers)
