"""The FastAPI app: ``POST /v1/events``, ``GET /v1/usage``, ``GET /v1/records/{id}``, /openapi.json.

Every route needs ``Authorization: Bearer KEY``; the key's tenant is the only one the request sees, and a
customer-scoped key's customer the only customer (``talktime.api.scope``, ADR 0008). The key
is looked up in the store on every request (no cache), so a revoked key is refused at once, whichever
process revoked it (``talktime.app.keys``). Blocking work (validation, the store, metering) runs in the
thread pool, so the event loop keeps accepting. The OpenAPI document states every body, parameter and
answer (``talktime.api.schemas``); one access line per request is logged (``talktime.api.access_log``).
"""

from __future__ import annotations

import asyncio
import gc
import multiprocessing
import os
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ProcessPoolExecutor
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final

from fastapi import Depends, FastAPI, Query, Request, Response, Security
from fastapi import Path as InPath
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from talktime.api import schemas
from talktime.api.access_log import AccessLog
from talktime.api.admin import add_admin_routes
from talktime.api.bodies import limited_body
from talktime.api.errors import install, json_response
from talktime.api.invoices import add_invoice_routes
from talktime.api.records_export import add_export_routes
from talktime.api.review import add_review_routes
from talktime.api.scope import Reader
from talktime.api.webhooks import add_webhook_routes
from talktime.app import service
from talktime.core.plausibility import Guards
from talktime.core.rating.cards import PriceCard
from talktime.errors import (
    AuthError,
    ForbiddenError,
    InputError,
    NotFoundError,
)
from talktime.ingest.batch import BATCH_TYPE, prepare_body
from talktime.ingest.events import parse_time
from talktime.ingest.sessionize import DEFAULT_IDLE_TIMEOUT
from talktime.store.base import ApiKey, EventStore, hash_key

if TYPE_CHECKING:
    from talktime.web.served import ServedDashboard

MAX_EVENTS: Final = 10_000
MAX_BODY_BYTES: Final = 32 * 1024 * 1024


def _moment(name: str, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_time(value)
    except ValueError as error:
        raise InputError(f"query parameter {name!r}: {error}") from None


#: Declares Bearer authentication in the OpenAPI document; the dependencies below do the checking.
BEARER: Final = HTTPBearer(auto_error=False, description="an API key: `talktime keys create TENANT`")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)]


def api_key(request: Request, credentials: Credentials) -> ApiKey:
    """The request's Bearer key as the store knows it now (never cached: a revocation counts at once)."""
    if credentials is None or not credentials.credentials.strip():
        raise AuthError("send Authorization: Bearer KEY (make one with `talktime keys create TENANT`)")
    found: ApiKey | None = request.app.state.store.key_of(hash_key(credentials.credentials.strip()))
    if found is None:
        raise AuthError("the API key is not known")
    if found.revoked_at is not None:
        raise AuthError(f"the API key {found.id} was revoked at {found.revoked_at.isoformat()}")
    request.state.tenant = found.tenant
    return found


def reader(request: Request, credentials: Credentials) -> Reader:
    """Whose usage the request's Bearer key reads: its tenant, and its customer for a customer-scoped key;
    AuthError (401) without a key; an admin key here is ForbiddenError (403)."""
    found = api_key(request, credentials)
    if found.admin:
        raise ForbiddenError("an admin key manages keys (/v1/admin/keys) and reads no tenant's usage")
    return Reader(found.tenant, found.customer)


def tenant(request: Request, credentials: Credentials) -> str:
    """The tenant of the request's Bearer key, for the routes only a tenant key may use (sending events,
    reviews): AuthError (401) without a key; an admin or a customer-scoped key is ForbiddenError (403)."""
    found = reader(request, credentials)
    if found.customer is not None:
        raise ForbiddenError(
            f"this key belongs to customer {found.customer!r}: it reads that customer's usage, records "
            "and invoices only (GET /v1/usage, /v1/records, /v1/invoices)"
        )
    return found.tenant


def admin(request: Request, credentials: Credentials) -> ApiKey:
    """The request's admin key, or AuthError (401); a tenant key here is ForbiddenError (403)."""
    found = api_key(request, credentials)
    if not found.admin:
        raise ForbiddenError("the admin routes need an admin key (talktime keys create --admin)")
    return found


Tenant = Annotated[str, Depends(tenant)]
Scoped = Annotated[Reader, Depends(reader)]
PolicyId = Annotated[
    str,
    Query(
        description="a built-in profile id (`talktime policies`)",
        json_schema_extra={"enum": list(schemas.POLICY_IDS)},
    ),
]


def tune_gc_for_serving() -> None:
    """Make the cyclic garbage collector cheap for a server that decodes 10,000-event batches.

    Decoded events are plain dicts, freed by reference counting; but each batch allocates tens of
    thousands of containers, which with the default thresholds (700, 10, 10) starts dozens of collections
    per batch, the full ones walking every live object: about a sixth of the server's time under load.
    Freeze what is alive after start-up (modules, the app) out of every collection, and collect the
    youngest generation every 100,000 allocations instead of 700. Cycles are still collected, later.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(100_000, 20, 100)


def _start_worker(server: int) -> None:
    """In a worker process: tune the GC like the server, and exit as soon as the server is gone (after a
    ``kill -9`` nobody would shut the pool down, and a worker blocked on its queue would live forever)."""
    tune_gc_for_serving()

    def watch() -> None:
        while os.getppid() == server:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, name="watch-server", daemon=True).start()


def _worker_pool(workers: int) -> ProcessPoolExecutor:
    """Worker processes for :func:`prepare_body`, started (spawn: never a fork of a process holding a
    DuckDB connection) and warmed up before the first request."""
    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start_worker,
        initargs=(os.getpid(),),
    )
    for future in [pool.submit(prepare_body, BATCH_TYPE, b"[{}]", 1) for _ in range(workers)]:
        future.result()
    return pool


def create_app(
    store: EventStore,
    *,
    max_events: int = MAX_EVENTS,
    max_body_bytes: int = MAX_BODY_BYTES,
    idle_timeout: timedelta = DEFAULT_IDLE_TIMEOUT,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    prices: PriceCard | None = None,
    ledger: Path | None = None,
    workers: int = 0,
    guards: Guards | None = None,
    dashboard: ServedDashboard | None = None,
) -> FastAPI:
    """An app serving one store. ``clock`` is "now" for the idle timeout (tests pass a fixed one).

    ``workers`` > 0: that many processes decode and check event batches (:func:`prepare_body`) while this
    process, the store's only writer, stores them; 0: all in this process's thread pool. ``dashboard``:
    the browser pages (:mod:`talktime.web.served`), answering every path outside the API's own.
    """
    pool = _worker_pool(workers) if workers > 0 else None
    row_hashes = getattr(store, "row_hashes", False)  # only a store that keys rows by them wants them
    limits = Guards() if guards is None else guards  # plausibility guards: safe defaults unless given

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        if dashboard is not None:
            dashboard.shutdown()

    app = FastAPI(
        title="talktime ingestion API",
        version="1",
        description="Usage events in (CloudEvents 1.0), metered usage out, each number explained.",
        lifespan=lifespan,
    )
    install(app)
    app.add_middleware(AccessLog)
    app.state.store = store

    @app.post(
        "/v1/events",
        summary="Store a batch of CloudEvents (up to 10,000); per event: accepted, duplicate or rejected",
        openapi_extra={"requestBody": schemas.events_body()},
        responses={
            **schemas.ok("at least one event accepted or duplicate; per-event results", schemas.BATCH_RESULT),
            **schemas.errors(
                400,
                401,
                403,
                413,
                415,
                _400="malformed JSON, or a body that is not an event or an array of events, or an empty one",
                _413=f"body over {max_body_bytes} bytes, or more than {max_events} events",
                _415="a content type other than CloudEvents JSON or application/json",
            ),
            422: {
                "description": "every event was rejected; per-event results say why",
                "content": {"application/json": {"schema": schemas.BATCH_RESULT}},
            },
        },
    )
    async def post_events(request: Request, who: Tenant) -> Response:
        body = await limited_body(request, max_body_bytes)
        content_type = request.headers.get("content-type", "")
        hashed_for = who if row_hashes else None  # the rows then carry the store's hashes (store.key_hashes)
        if pool is None:
            prepared = await run_in_threadpool(prepare_body, content_type, body, max_events, hashed_for)
        else:  # decode, check and hash in a worker process: this process keeps the GIL for the store
            prepared = await asyncio.get_running_loop().run_in_executor(
                pool, prepare_body, content_type, body, max_events, hashed_for
            )
        result = await run_in_threadpool(service.ingest_prepared, store, who, prepared)
        status = 422 if result.rejected == prepared.count else 200
        return json_response(result.as_dict(), status)

    @app.get(
        "/v1/usage",
        summary="Metered usage: actual, provider-reported and billable totals",
        responses={
            **schemas.ok("totals over the records that started in [from, to)", schemas.USAGE),
            **schemas.errors(
                401, 403, 409, 422, _409=schemas.CANNOT_METER, _422="an unknown policy or a bad time"
            ),
        },
    )
    async def get_usage(
        who: Scoped,
        policy: PolicyId,
        customer: Annotated[str | None, Query(description="only this customer's records")] = None,
        start: Annotated[
            str | None,
            Query(
                alias="from", description="ISO 8601 with offset, inclusive", json_schema_extra=schemas.TIME
            ),
        ] = None,
        end: Annotated[
            str | None,
            Query(alias="to", description="ISO 8601 with offset, exclusive", json_schema_extra=schemas.TIME),
        ] = None,
    ) -> Response:
        chosen = service.policy_by_id(policy)
        begin, finish = _moment("from", start), _moment("to", end)
        narrowed = who.customer_asked(customer)

        def run() -> dict[str, Any]:
            return service.read_usage(
                store, who.tenant, chosen, narrowed, begin, finish, clock(), idle_timeout, limits
            )

        return json_response(await run_in_threadpool(run))

    @app.get(
        "/v1/records/{record_id:path}",
        summary="One record, metered, with its explain trail and flags",
        responses={
            **schemas.ok(
                "the record metered, its explain trail, flags, events and fields", schemas.RECORD_ANSWER
            ),
            **schemas.errors(
                401,
                403,
                404,
                409,
                422,
                _404="no such record for this tenant (another tenant's included)",
                _409=schemas.CANNOT_METER,
            ),
        },
    )
    async def get_record(
        who: Scoped,
        record_id: Annotated[str, InPath(min_length=1, description="the record's id; may contain /")],
        policy: PolicyId,
    ) -> Response:
        chosen = service.policy_by_id(policy)

        def run() -> dict[str, Any]:
            if who.customer is not None:  # another customer's record is as unknown as another tenant's
                found = store.stored_record(who.tenant, record_id)  # type: ignore[attr-defined]
                if found is None or not who.sees(found.record.customer):
                    raise NotFoundError(f"no record {record_id!r}")
            return service.read_record(store, who.tenant, chosen, record_id, clock(), idle_timeout, limits)

        return json_response(await run_in_threadpool(run))

    add_invoice_routes(
        app,
        store,
        reader,
        prices=prices,
        ledger=ledger,
        clock=clock,
        idle_timeout=idle_timeout,
        guards=limits,
    )
    add_review_routes(app, store, tenant, reader, guards=limits, clock=clock, idle_timeout=idle_timeout)
    add_webhook_routes(app, store, clock=clock)
    add_export_routes(app, store, reader, clock=clock, idle_timeout=idle_timeout)
    add_admin_routes(app, store, admin, clock)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = schemas.tidy(FastAPI.openapi(app))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    if dashboard is not None:  # last: the API's routes (and /openapi.json, /docs) are matched first
        app.mount("/", dashboard, name="dashboard")
    return app
