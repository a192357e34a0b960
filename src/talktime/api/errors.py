"""Error categories -> HTTP status codes, in exactly one place, and the JSON shape of every error answer.

An error answer is ``{"error": {"category": "...", "message": "..."}}``; a 401 also says
``WWW-Authenticate: Bearer``. Anything not listed is a bug and answers 500 (and is logged).
"""

from __future__ import annotations

from typing import Final

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response

from talktime.errors import (
    AuthError,
    InputError,
    MeteringError,
    NotFoundError,
    PayloadTooLargeError,
    RequestError,
    StoreError,
    TalktimeError,
    UnsupportedMediaError,
)

#: Most specific first: the first class an error is an instance of gives its status and category.
STATUS: Final[tuple[tuple[type[Exception], int, str], ...]] = (
    (AuthError, 401, "unauthenticated"),
    (NotFoundError, 404, "not_found"),
    (PayloadTooLargeError, 413, "too_large"),
    (UnsupportedMediaError, 415, "unsupported_media_type"),
    (RequestError, 400, "bad_request"),
    (InputError, 422, "invalid"),
    (MeteringError, 422, "cannot_meter"),
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


def install(app: FastAPI) -> None:
    """Answer talktime's errors and FastAPI's parameter errors through :data:`STATUS`."""
    app.add_exception_handler(TalktimeError, _talktime_error)
    app.add_exception_handler(RequestValidationError, _query_error)
