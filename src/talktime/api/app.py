"""The FastAPI app: ``POST /v1/events``, ``GET /v1/usage``, ``GET /v1/records/{id}``, /openapi.json.

Every route needs ``Authorization: Bearer KEY``; the key's tenant is the only one the request sees. Blocking
work (validation, the store, metering) runs in the thread pool, so the event loop keeps accepting.
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
from typing import Annotated, Any, Final

from fastapi import Depends, FastAPI, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from talktime.api import service
from talktime.api.errors import install, json_response
from talktime.api.invoices import add_invoice_routes
from talktime.api.webhooks import add_webhook_routes
from talktime.core.rating.cards import PriceCard
from talktime.errors import (
    AuthError,
    InputError,
    PayloadTooLargeError,
)
from talktime.ingest.batch import BATCH_TYPE, prepare_body
from talktime.ingest.events import parse_time
from talktime.ingest.sessionize import DEFAULT_IDLE_TIMEOUT
from talktime.store.base import EventStore, hash_key

MAX_EVENTS: Final = 10_000
MAX_BODY_BYTES: Final = 32 * 1024 * 1024


async def _body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(f"the body is {declared} bytes; the limit is {limit}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLargeError(f"the body is over the {limit}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


def _moment(name: str, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_time(value)
    except ValueError as error:
        raise InputError(f"query parameter {name!r}: {error}") from None


def tenant(request: Request) -> str:
    """The tenant of the request's Bearer key (cached by hash after the first look-up), or AuthError."""
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise AuthError("send Authorization: Bearer KEY (make one with `talktime keys create TENANT`)")
    digest = hash_key(key.strip())
    cache: dict[str, str] = request.app.state.key_cache
    found = cache.get(digest) or request.app.state.store.tenant_of(digest)
    if found is None:
        raise AuthError("the API key is not known")
    cache[digest] = found
    return str(found)


Tenant = Annotated[str, Depends(tenant)]


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
) -> FastAPI:
    """An app serving one store. ``clock`` is "now" for the idle timeout (tests pass a fixed one).

    ``workers`` > 0: that many processes decode and check event batches (:func:`prepare_body`) while this
    process, the store's only writer, stores them; 0: all in this process's thread pool.
    """
    pool = _worker_pool(workers) if workers > 0 else None

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    app = FastAPI(
        title="talktime ingestion API",
        version="1",
        description="Usage events in (CloudEvents 1.0), metered usage out, each number explained.",
        lifespan=lifespan,
    )
    install(app)
    app.state.store = store
    app.state.key_cache = {}

    @app.post(
        "/v1/events",
        summary="Store a batch of CloudEvents (up to 10,000); per event: accepted, duplicate or rejected",
        responses={
            200: {"description": "at least one event accepted or duplicate; per-event results"},
            400: {"description": "malformed JSON or a body that is not an event or an array of events"},
            401: {"description": "no API key or an unknown one"},
            413: {"description": "body over the size limit, or more than 10,000 events"},
            415: {"description": "a content type other than CloudEvents JSON"},
            422: {"description": "every event was rejected; per-event results say why"},
        },
    )
    async def post_events(request: Request, who: Tenant) -> Response:
        body = await _body(request, max_body_bytes)
        content_type = request.headers.get("content-type", "")
        if pool is None:
            prepared = await run_in_threadpool(prepare_body, content_type, body, max_events)
        else:  # decode and check in a worker process: this process keeps the GIL for the store
            prepared = await asyncio.get_running_loop().run_in_executor(
                pool, prepare_body, content_type, body, max_events
            )
        result = await run_in_threadpool(service.ingest_prepared, store, who, prepared)
        status = 422 if result.rejected == prepared.count else 200
        return json_response(result.as_dict(), status)

    @app.get("/v1/usage", summary="Metered usage: actual, provider-reported and billable totals")
    async def get_usage(
        who: Tenant,
        policy: Annotated[str, Query(description="a built-in profile id, e.g. twilio-voice")],
        customer: Annotated[str | None, Query()] = None,
        start: Annotated[
            str | None, Query(alias="from", description="ISO 8601 with offset, inclusive")
        ] = None,
        end: Annotated[str | None, Query(alias="to", description="ISO 8601 with offset, exclusive")] = None,
    ) -> Response:
        chosen = service.policy_by_id(policy)
        begin, finish = _moment("from", start), _moment("to", end)

        def run() -> dict[str, Any]:
            sessions = service.session_records(store, who, clock(), idle_timeout)
            return service.usage(sessions, chosen, customer, begin, finish)

        return json_response(await run_in_threadpool(run))

    @app.get("/v1/records/{record_id:path}", summary="One record, metered, with its explain trail and flags")
    async def get_record(
        who: Tenant,
        record_id: str,
        policy: Annotated[str, Query(description="a built-in profile id")],
    ) -> Response:
        chosen = service.policy_by_id(policy)

        def run() -> dict[str, Any]:
            sessions = service.session_records(store, who, clock(), idle_timeout)
            return service.explain_record(sessions, chosen, record_id)

        return json_response(await run_in_threadpool(run))

    add_invoice_routes(
        app, store, tenant, prices=prices, ledger=ledger, clock=clock, idle_timeout=idle_timeout
    )
    add_webhook_routes(app, store, clock=clock)
    return app
