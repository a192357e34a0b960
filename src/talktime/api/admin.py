"""Admin routes: a tenant's API keys listed, made, revoked and rotated over HTTP (``/v1/admin/keys``).

Authenticated by an admin key (``talktime keys create --admin``), sent like any key as
``Authorization: Bearer KEY``. An admin key manages every tenant's keys and reads no tenant's usage; a
tenant key here is 403, as an admin key is on the usage routes. Why a key in the store and not a token in
the server's configuration: it is revocable and rotatable like any key, it works the same for every server
sharing a store, and the server keeps no secret of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from enum import Enum
from typing import Annotated, Any

import orjson
from fastapi import Depends, FastAPI, Path, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from talktime.api import schemas
from talktime.api.errors import json_response
from talktime.app import keys
from talktime.errors import InputError, RequestError, UnsupportedMediaError
from talktime.store.base import ApiKey, EventStore

MAX_ADMIN_BODY: int = 4096

_NEW_KEY_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["tenant"],
                "additionalProperties": False,
                "properties": {
                    "tenant": {"type": "string", "pattern": keys.TENANT_PATTERN},
                    "label": {
                        "type": ["string", "null"],
                        "maxLength": keys.LABEL_MAX,
                        "pattern": r"^[^\n]*$",
                        "description": "what the key is for, shown when keys are listed",
                    },
                    "customer": {
                        "type": ["string", "null"],
                        "pattern": keys.CUSTOMER_PATTERN,
                        "description": "a customer-scoped key: reads only this customer's usage, records "
                        "and invoices (the customer's own view)",
                    },
                },
            }
        }
    },
}


def _new_key_request(content_type: str, body: bytes) -> tuple[str, str | None, str | None]:
    if content_type.split(";", 1)[0].strip().lower() != "application/json":
        raise UnsupportedMediaError(f"content type {content_type or '(none)'!r}: send application/json")
    if len(body) > MAX_ADMIN_BODY:
        raise RequestError(f"the body is over {MAX_ADMIN_BODY} bytes")
    try:
        decoded = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise RequestError(f"the body is not valid JSON: {error}") from None
    if not isinstance(decoded, dict):
        raise RequestError('the body must be one JSON object: {"tenant": "...", "label": "..."}')
    extra = sorted(set(decoded) - {"tenant", "label", "customer"})
    if extra:
        raise InputError(f"{extra[0]}: is not a field of a key request (tenant, label, customer)")
    tenant, label, customer = decoded.get("tenant"), decoded.get("label"), decoded.get("customer")
    if not isinstance(tenant, str):
        raise InputError(f"tenant: is required, a string (got {tenant!r})")
    if label is not None and not isinstance(label, str):
        raise InputError(f"label: must be a string (got {label!r})")
    if customer is not None and not isinstance(customer, str):
        raise InputError(f"customer: must be a string (got {customer!r})")
    scoped = None if customer is None else keys.check_customer(customer)
    return keys.check_tenant(tenant), keys.check_label(label), scoped


KeyId = Annotated[
    str,
    Path(pattern=schemas.KEY_ID["pattern"], description="the key's id, as listed (never the key)"),
]


def add_admin_routes(
    app: FastAPI, store: EventStore, admin: Callable[..., ApiKey], clock: Callable[[], datetime]
) -> None:
    """Register ``/v1/admin/keys`` on ``app``; ``admin`` is the app's admin authentication dependency."""
    authorised = Depends(admin)
    tags: list[str | Enum] = ["admin"]

    @app.get(
        "/v1/admin/keys",
        tags=tags,
        summary="Every key of a tenant (every tenant's when none is given), revoked ones included",
        responses={**schemas.ok("the keys, oldest first", schemas.KEY_LIST), **schemas.errors(401, 403, 422)},
    )
    async def get_keys(
        tenant: Annotated[
            str | None,
            Query(
                description="only this tenant's keys",
                json_schema_extra={"pattern": keys.TENANT_PATTERN},  # checked by keys.check_tenant
            ),
        ] = None,
        _admin: ApiKey = authorised,
    ) -> Response:
        listed = await run_in_threadpool(keys.list_keys, store, tenant)
        return json_response({"keys": [keys.key_dict(k) for k in listed]})

    @app.post(
        "/v1/admin/keys",
        tags=tags,
        status_code=201,
        summary="A new key for a tenant: the key is in this answer only, stored hashed",
        openapi_extra={"requestBody": _NEW_KEY_BODY},
        responses={
            201: {"description": "made", "content": {"application/json": {"schema": schemas.NEW_KEY}}},
            **schemas.errors(400, 401, 403, 415, 422),
        },
    )
    async def post_key(request: Request, _admin: ApiKey = authorised) -> Response:
        tenant, label, customer = _new_key_request(
            request.headers.get("content-type", ""), await request.body()
        )
        made = await run_in_threadpool(lambda: keys.create_key(store, tenant, label=label, customer=customer))
        return json_response(made.as_dict(), 201)

    @app.post(
        "/v1/admin/keys/{key_id}/revoke",
        tags=tags,
        summary="Revoke a key: refused (401) from the next request on, by every server sharing the store",
        responses={
            **schemas.ok("the key, revoked", schemas.KEY_INFO),
            **schemas.errors(401, 403, 404, 422, _404="no key with that id"),
        },
    )
    async def revoke(key_id: KeyId, _admin: ApiKey = authorised) -> Response:
        revoked = await run_in_threadpool(keys.revoke_key, store, key_id, clock())
        return json_response(keys.key_dict(revoked))

    @app.post(
        "/v1/admin/keys/{key_id}/rotate",
        tags=tags,
        status_code=201,
        summary="A new key for the same tenant, label and role; the old one revoked at once",
        responses={
            201: {"description": "the new key", "content": {"application/json": {"schema": schemas.NEW_KEY}}},
            **schemas.errors(401, 403, 404, 409, 422, _404="no key with that id", _409="the key is revoked"),
        },
    )
    async def rotate(key_id: KeyId, _admin: ApiKey = authorised) -> Response:
        made = await run_in_threadpool(keys.rotate_key, store, key_id, clock())
        return json_response(made.as_dict(), 201)
