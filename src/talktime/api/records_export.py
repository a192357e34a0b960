"""``GET /v1/records``: every usage record of the key's tenant as of now, as JSON Lines, streamed.

Each line is one record exactly as the store keeps it (times with their offsets, decimals as written, free
attributes under ``attrs``), in the record format (``docs/records.md``), so the answer is a ``.jsonl``
file ``talktime meter`` reads. Records still open are included with status ``open``; the idle timeout
closes them as it does for ``/v1/usage``. ``customer`` narrows the answer to one customer; a
customer-scoped key reads its own customer's only (``talktime.api.scope``).

The CLI reads a DuckDB store through this route while ``talktime serve`` holds the file
(:mod:`talktime.app.served`); the ``X-Talktime-Tenant`` header says whose records they are.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Final

from fastapi import Depends, FastAPI, Query
from fastapi.responses import StreamingResponse

from talktime.api import schemas
from talktime.api.scope import Reader
from talktime.app.stored import record_docs

if TYPE_CHECKING:
    from talktime.store.base import EventStore

MEDIA: Final = "application/x-ndjson"
TENANT_HEADER: Final = "X-Talktime-Tenant"
_LINE: Final[schemas.Schema] = {
    "type": "string",
    "description": "JSON Lines: one usage record per line, in the record format (docs/records.md)",
}


def add_export_routes(
    app: FastAPI,
    store: EventStore,
    reader: Callable[..., Reader],
    *,
    clock: Callable[[], datetime],
    idle_timeout: timedelta,
) -> None:
    """Register ``GET /v1/records`` on ``app``; ``reader`` is the app's authentication dependency."""
    authenticated = Depends(reader)

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
