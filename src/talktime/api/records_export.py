"""``GET /v1/records``: every usage record of the key's tenant as of now, as JSON Lines, streamed.

Each line is one record exactly as the store keeps it (times with their offsets, decimals as written, free
attributes under ``attrs``), in the record format (``docs/records.md``), so the answer is a ``.jsonl``
file ``talktime meter`` reads. Records still open are included with status ``open``; the idle timeout
closes them as it does for ``/v1/usage``. ``customer`` narrows the answer to one customer; a
customer-scoped key reads its own customer's only (``talktime.api.scope``).

The CLI reads a DuckDB store through this route while ``talktime serve`` holds the file
(:mod:`talktime.app.served`); the ``X-Talktime-Tenant`` header says whose records they are.

``GET /v1/receipts``: beside them, the records whose time-worded guards (``max_future_hours``,
``max_past_days``) turn on when the store first received them (more than an hour before their start or more
than a day after it), each with the moment the API's invoices judge it as of, so that the CLI judges them
as the server does (docs/guards.md). The lines of ``/v1/records`` stay the record format, which has no
such field (``talktime meter`` reads the answer as a records file).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, Final

from fastapi import Depends, FastAPI, Query
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from talktime.api import schemas
from talktime.api.errors import json_response
from talktime.api.scope import Reader
from talktime.app.history import stored_receipts
from talktime.app.stored import record_docs

if TYPE_CHECKING:
    from talktime.store.base import EventStore

MEDIA: Final = "application/x-ndjson"
TENANT_HEADER: Final = "X-Talktime-Tenant"
_LINE: Final[schemas.Schema] = {
    "type": "string",
    "description": "JSON Lines: one usage record per line, in the record format (docs/records.md)",
}
RECEIPTS: Final[schemas.Schema] = {
    "type": "object",
    "required": ["tenant", "received"],
    "properties": {
        "tenant": {"type": "string", "description": "the key's tenant"},
        "received": {
            "type": "array",
            "description": "by id: each record the store first received more than an hour before its start "
            "or more than a day after it, the only ones `max_future_hours` or `max_past_days` can flag as of "
            "that moment; every other record is judged as of its receipt too, where they flag none",
            "items": {
                "type": "object",
                "required": ["id", "judged_at"],
                "properties": {
                    "id": {"type": "string"},
                    "judged_at": {
                        "type": "string",
                        "format": "date-time",
                        "description": "the moment the record's time checks are judged as of: when the "
                        "store first received it, or now if that is earlier",
                    },
                },
            },
        },
    },
}


def add_export_routes(
    app: FastAPI,
    store: EventStore,
    reader: Callable[..., Reader],
    *,
    clock: Callable[[], datetime],
    idle_timeout: timedelta,
) -> None:
    """Register ``GET /v1/records`` and ``GET /v1/receipts`` on ``app``; ``reader`` is the app's
    authentication dependency."""
    authenticated = Depends(reader)

    @app.get(
        "/v1/receipts",
        summary="The records whose time checks turn on when the store first received them, with that moment",
        responses={
            **schemas.ok("each record received far from its start, by id", RECEIPTS),
            **schemas.errors(401, 403, 422),
        },
    )
    async def get_receipts(
        customer: Annotated[str | None, Query(description="only this customer's records")] = None,
        who: Reader = authenticated,
    ) -> Response:
        asked = who.customer_asked(customer)

        def run() -> dict[str, Any]:
            found = stored_receipts(store, who.tenant, asked, clock())
            return {
                "tenant": who.tenant,
                "received": [{"id": rid, "judged_at": at.isoformat()} for rid, at in sorted(found.items())],
            }

        return json_response(await run_in_threadpool(run), headers={TENANT_HEADER: who.tenant})

    @app.get(
        "/v1/records",
        summary="Every usage record of the tenant as of now, as JSON Lines (a records file)",
        responses={
            **schemas.ok("one record per line, by id", _LINE, media=MEDIA),
            **schemas.errors(401, 403, 422),
        },
        response_class=StreamingResponse,
    )
    def export_records(
        customer: Annotated[str | None, Query(description="only this customer's records")] = None,
        who: Reader = authenticated,
    ) -> StreamingResponse:
        lines = record_docs(store, who.tenant, who.customer_asked(customer), clock(), idle_timeout)

        def body() -> Iterator[bytes]:
            for chunk in lines:
                yield "".join(doc + "\n" for doc in chunk).encode()

        return StreamingResponse(body(), media_type=MEDIA, headers={TENANT_HEADER: who.tenant})
