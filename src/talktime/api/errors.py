"""Error categories -> HTTP status codes, in exactly one place, and the JSON shape of every error answer.

An error answer is ``{"error": {"category": "...", "message": "..."}}``; a 401 also says
``WWW-Authenticate: Bearer``, a 405 ``Allow`` with every method of the path. Anything not listed is a bug
and answers 500 (and is logged).

A record that cannot be metered (``RecordError``, ``MeteringError``) is 409, not 422: on the HTTP API the
records come from the tenant's stored events, so the request is well formed and it is what is stored
that conflicts with the policy asked for; the message names the record and the field.
"""

from __future__ import annotations

from typing import Final

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Route

from talktime.errors import (
    AuthError,
    ConflictError,
    ForbiddenError,
    InputError,
    MeteringError,
    NotFoundError,
    PayloadTooLargeError,
    RecordError,
    RequestError,
    StoreError,
    TalktimeError,
    UnsupportedMediaError,
)

#: Most specific first: the first class an error is an instance of gives its status and category.
STATUS: Final[tuple[tuple[type[Exception], int, str], ...]] = (
    (ForbiddenError, 403, "forbidden"),
    (AuthError, 401, "unauthenticated"),
    (NotFoundError, 404, "not_found"),
    (ConflictError, 409, "conflict"),
    (RecordError, 409, "cannot_meter"),
    (MeteringError, 409, "cannot_meter"),
    (PayloadTooLargeError, 413, "too_large"),
    (UnsupportedMediaError, 415, "unsupported_media_type"),
    (RequestError, 400, "bad_request"),
    (InputError, 422, "invalid"),
    (StoreError, 503, "store_unavailable"),
    (TalktimeError, 500, "internal"),
)


def status_of(error: Exception) -> tuple[int, str]:
    """The HTTP status and category of an error."""
    for kind, status, category in STATUS:
        if isinstance(error, kind):
            return status, category
    return 500, "internal"


def json_response(body: object, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON answer serialised with orjson (decimals are already strings)."""
    return Response(orjson.dumps(body), status_code=status, headers=headers, media_type="application/json")


def error_response(error: Exception, message: str | None = None) -> Response:
    status, category = status_of(error)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    body = {"error": {"category": category, "message": message or str(error)}}
    return json_response(body, status, headers)


async def _talktime_error(request: Request, error: Exception) -> Response:
    return error_response(error)


async def _query_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    parts = [
        f"{'.'.join(str(p) for p in item['loc'])}: {item['msg']}" for item in error.errors() if "loc" in item
    ]
    return error_response(InputError("; ".join(parts) or "invalid request"))


async def _http_error(request: Request, error: Exception) -> Response:
    """Starlette's own answers (no such path, a method the path does not take) in talktime's shape."""
    assert isinstance(error, StarletteHTTPException)
    headers = dict(error.headers or {})
    category = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "bad_request")
    if error.status_code == 405:  # every method of the path, not only the first route's
        methods: set[str] = set()
        for route in request.app.router.routes:
            if isinstance(route, Route) and route.methods and route.matches(request.scope)[0] != Match.NONE:
                methods |= route.methods
        headers["Allow"] = ", ".join(sorted(methods))
    body = {"error": {"category": category, "message": str(error.detail)}}
    return json_response(body, error.status_code, headers)


def install(app: FastAPI) -> None:
    """Answer talktime's errors and FastAPI's parameter errors through :data:`STATUS`."""
    app.add_exception_handler(TalktimeError, _talktime_error)
    app.add_exception_handler(RequestValidationError, _query_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
