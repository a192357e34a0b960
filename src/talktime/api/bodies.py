"""Reading a request's body without holding more than a limit: the JSON API's batches, the providers'
webhooks and the dashboard's forms each stop reading once the body passes their limit (a body is never
read whole first and measured after)."""

from __future__ import annotations

from starlette.requests import Request

from talktime.errors import PayloadTooLargeError


async def limited_body(
    request: Request, limit: int, what: str = "the body", *, declared: bool = True
) -> bytes:
    """The body, read chunk by chunk; PayloadTooLargeError naming ``what`` as soon as it passes ``limit``
    bytes (``declared``: or at once when its Content-Length says so)."""
    length = request.headers.get("content-length")
    if declared and length is not None and length.isdigit() and int(length) > limit:
        raise PayloadTooLargeError(f"{what} is {length} bytes; the limit is {limit}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLargeError(f"{what} is over the {limit}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)
