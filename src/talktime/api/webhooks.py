"""``POST /v1/webhooks/{provider}/{tenant}``: provider callbacks (Twilio, Telnyx, Vapi, Retell) in.

A provider cannot send talktime's API key, so the tenant is in the path and the callback proves itself with
the provider's own signature, checked against the tenant's secret (``talktime webhooks set-secret``). In
order, each step refusing the whole callback with nothing stored:

1. the body, at most :data:`MAX_WEBHOOK_BYTES` (413);
2. the signature or shared secret, with the tenant's secret for that provider (401, also when none is set);
3. the payload, mapped by the provider's module (422 naming the field, 400 for a body that is not JSON);
4. the events it maps to, validated like ``POST /v1/events`` (422 naming the field).

Then the events are stored in one transaction; dedup on their ids makes retries and repeats count once.
The answer is 200 ``{"provider", "accepted", "duplicate", "records", "ignored"}``: providers send every
event type to one URL, and one that carries nothing to meter is acknowledged with ``ignored`` saying why.
``?customer=C`` on the URL sets the records' customer.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Final

from fastapi import FastAPI, Path, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from talktime.api import schemas
from talktime.api.bodies import limited_body
from talktime.api.errors import json_response
from talktime.app import service
from talktime.errors import InputError, NotFoundError
from talktime.ingest.batch import prepare_items
from talktime.ingest.webhooks import PROVIDERS, Provider, SignatureError, SignedRequest
from talktime.ingest.webhooks.secrets import SecretCache
from talktime.store.base import EventStore

MAX_WEBHOOK_BYTES: Final = 8 * 1024 * 1024
#: How long a server trusts the secrets it read before reading them again.
SECRET_TTL_SECONDS: Final = 10.0


def _called_url(request: Request, public_url: str | None) -> str:
    """The URL the provider called: the public base URL set for the tenant, else the one this server saw."""
    if public_url is None:
        return str(request.url)
    query = request.url.query
    return public_url + request.url.path + (f"?{query}" if query else "")


def receive(
    store: EventStore,
    provider: Provider,
    tenant: str,
    request: SignedRequest,
    secret: str | None,
    customer: str | None,
    now: datetime,
) -> dict[str, Any]:
    """Verify, map, validate and store one callback (the steps of the module's docstring)."""
    if secret is None:
        raise SignatureError(
            f"no {provider.name} webhook secret is set for this tenant (talktime webhooks set-secret)"
        )
    provider.verify(request, secret, now)
    mapped = provider.to_events(request.body, customer)
    answer: dict[str, Any] = {"provider": provider.name, "accepted": 0, "duplicate": 0, "records": []}
    if mapped.ignored is not None:
        return {**answer, "ignored": mapped.ignored}
    prepared = prepare_items(mapped.events)
    if prepared.rejected:
        problems = "; ".join(
            f"event {mapped.events[r.index]['id']}: {e['field']}: {e['reason']}"
            for r in prepared.rejected
            for e in r.errors
        )
        raise InputError(f"{provider.name} webhook maps to events talktime refuses: {problems}")
    result = service.ingest_prepared(store, tenant, prepared)
    records = sorted({_record_id(event) for event in mapped.events})
    return {
        **answer,
        "accepted": result.accepted,
        "duplicate": result.duplicate,
        "records": records,
        "ignored": None,
    }


def _record_id(event: dict[str, Any]) -> str:
    leg = event["data"].get("leg")
    return str(event["subject"]) if leg is None else f"{event['subject']}/{leg}"


def add_webhook_routes(
    app: FastAPI,
    store: EventStore,
    *,
    clock: Callable[[], datetime],
    max_body_bytes: int = MAX_WEBHOOK_BYTES,
    monotonic: Callable[[], float] = time.monotonic,
) -> None:
    """Mount ``POST /v1/webhooks/{provider}/{tenant}`` for every provider of :data:`PROVIDERS`."""
    secrets = SecretCache(store, SECRET_TTL_SECONDS, monotonic)
    names = ", ".join(sorted(PROVIDERS))

    @app.post(
        "/v1/webhooks/{provider}/{tenant}",
        summary=f"A provider's call webhook ({names}), verified with the tenant's secret",
        openapi_extra={"requestBody": schemas.WEBHOOK_BODY},
        responses={
            **schemas.ok(
                "stored (accepted or duplicate), or acknowledged with the reason it is ignored",
                schemas.WEBHOOK_ANSWER,
            ),
            **schemas.errors(
                400,
                401,
                404,
                413,
                422,
                _400="a JSON provider's body is not JSON",
                _401="the signature or secret does not verify, or no secret is set: nothing stored",
                _404="no such provider",
                _413="body over the size limit",
            ),
        },
    )
    async def post_webhook(
        provider: Annotated[str, Path(json_schema_extra={"enum": sorted(PROVIDERS)})],
        tenant: Annotated[str, Path(description="the tenant whose secret signs the callback")],
        request: Request,
        customer: Annotated[str | None, Query(description="the customer the call is billed to")] = None,
    ) -> Response:
        chosen = PROVIDERS.get(provider)
        if chosen is None:
            raise NotFoundError(f"no webhook for provider {provider!r}; known: {names}")
        body = await limited_body(request, max_body_bytes, "the webhook body", declared=False)
        headers = {name.lower(): value for name, value in request.headers.items()}

        def run() -> dict[str, Any]:
            secret = secrets.get(tenant, chosen.name)
            url = _called_url(request, secret.public_url if secret else None)
            signed = SignedRequest(url, headers, body)
            return receive(store, chosen, tenant, signed, secret.value if secret else None, customer, clock())

        return json_response(await run_in_threadpool(run))
