"""Invoice routes: ``GET /v1/invoices?customer=C&period=YYYY-MM`` (JSON) and ``GET /v1/invoices/{id}.pdf``.
A customer-scoped key may leave ``customer`` out (its own); a tenant key must name one (422 naming the field).

Same authentication and tenant rules as every route: the Bearer key's tenant is the only one whose records
(and ledger, ``LEDGER/<tenant>/``) the request sees, and a customer-scoped key's customer the only
customer whose invoices it sees (``talktime.api.scope``). The server's price card and ledger are configured
when the app is made (``create_app(..., prices=..., ledger=...)``); without a price card the routes
answer 404.
The invoice is :func:`talktime.app.stored.stored_invoice`'s: records still open are left out until they
close (the invoice notes how many); records the tenant's guards flag are held back, as from
``GET /v1/usage``, until a person accepts or corrects them (``api/review.py``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, FastAPI, Query, Response
from fastapi import Path as InPath
from starlette.concurrency import run_in_threadpool

from talktime.api import schemas
from talktime.api.errors import json_response
from talktime.api.scope import Reader
from talktime.app.stored import stored_invoice
from talktime.core.invoicing.serialize import invoice_dict
from talktime.errors import InputError
from talktime.io.invoices import to_pdf

if TYPE_CHECKING:
    from talktime.core.invoicing.invoice import Invoice
    from talktime.core.plausibility import Guards
    from talktime.core.rating.cards import PriceCard
    from talktime.store.base import EventStore

_ID = re.compile(r"^(?P<customer>.+)-(?P<period>\d{4}-\d{2})$")
#: A billing month the contract (and the calendar code) takes: YYYY-MM, years 1900-2999.
PERIOD = r"^(19|2[0-9])[0-9]{2}-(0[1-9]|1[0-2])$"


def add_invoice_routes(
    app: FastAPI,
    store: EventStore,
    reader: Callable[..., Reader],
    *,
    prices: PriceCard | None,
    ledger: Path | None,
    clock: Callable[[], datetime],
    idle_timeout: timedelta,
    guards: Guards | None = None,
) -> None:
    """Register the invoice routes on ``app``; ``reader`` is the app's authentication dependency; records
    ``guards`` flag (default: the safe defaults) are held back, named on the draft."""
    authenticated = Depends(reader)

    def invoice_for(scoped: Reader, asked: str | None, period: str) -> Invoice:
        # a customer-scoped key: its own customer's invoices only (403), its own when none is asked for
        customer = scoped.customer_asked(asked)
        if customer is None:
            raise InputError(
                "query.customer: required with a tenant key (it reads every customer of tenant "
                f"{scoped.tenant!r}): name one, customer=C"
            )
        return stored_invoice(
            store,
            scoped.tenant,
            customer,
            period,
            prices=prices,
            ledger=ledger,
            guards=guards,
            now=clock(),
            idle_timeout=idle_timeout,
        )

    @app.get(
        "/v1/invoices",
        summary="A customer's invoice for a month: finalised if it is, else a draft",
        responses={
            **schemas.ok("the invoice", schemas.INVOICE),
            **schemas.errors(
                401,
                403,
                404,
                409,
                422,
                _404="no price card on this server, or no records for the customer",
                _409=schemas.CANNOT_METER,
                _422="a field is invalid (the message names it): period not YYYY-MM, or no customer with a "
                "tenant key",
            ),
        },
    )
    async def get_invoice(
        period: Annotated[
            str,
            Query(
                pattern=PERIOD, description="billing month, YYYY-MM (1900-2999), in the customer's time zone"
            ),
        ],
        customer: Annotated[
            str | None,
            Query(
                description="customer id, as in the records; required with a tenant key (422 naming this "
                "field without it); a customer-scoped key reads its own customer when none is given"
            ),
        ] = None,
        who: Reader = authenticated,
    ) -> Response:
        def run() -> dict[str, Any]:
            return invoice_dict(invoice_for(who, customer, period))

        return json_response(await run_in_threadpool(run))

    @app.get(
        "/v1/invoices/{invoice_id}.pdf",
        summary="The invoice as a PDF; the id is CUSTOMER-YYYY-MM",
        responses={
            200: {
                "description": "the invoice",
                "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
            },
            **schemas.errors(
                401,
                403,
                404,
                409,
                422,
                _404="no price card on this server, or no records for the customer",
                _409=schemas.CANNOT_METER,
            ),
        },
    )
    async def get_invoice_pdf(
        invoice_id: Annotated[str, InPath(pattern="^.+-" + PERIOD[1:], description="CUSTOMER-YYYY-MM")],
        who: Reader = authenticated,
    ) -> Response:
        found = _ID.match(invoice_id)
        if found is None:
            raise InputError(f"invoice id {invoice_id!r} is not CUSTOMER-YYYY-MM")

        def run() -> bytes:
            return to_pdf(invoice_for(who, found.group("customer"), found.group("period")))

        pdf = await run_in_threadpool(run)
        headers = {"Content-Disposition": f'inline; filename="{invoice_id}.pdf"'}
        return Response(pdf, media_type="application/pdf", headers=headers)
