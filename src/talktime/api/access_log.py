"""What ``talktime serve`` logs: one start-up line, then one access line per request. Never a secret.

An access line is ``METHOD PATH STATUS DURATIONms tenant=T``: no query string, no header, no body, so
neither an API key (sent as a header) nor a key the admin routes answer with can reach the log; a path
segment that looks like a key (``tt_...``) is masked too, in case one is pasted where an id goes. The
tenant is the one the request's key authenticated (``-`` when none did; ``talktime:admin`` for an admin
key). Loggers: ``talktime.serve`` and ``talktime.access``, to standard error.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from typing import Final
from urllib.parse import urlsplit, urlunsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from talktime.store.base import is_postgres_url

ACCESS: Final = logging.getLogger("talktime.access")
SERVE: Final = logging.getLogger("talktime.serve")
_KEYLIKE: Final = re.compile(r"tt_[A-Za-z0-9_-]{8,}")


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes each line to ``sys.stderr`` as it is then, not as it was when the handler was made: a caller
    that swaps standard error for a while (a test runner invoking ``serve``) never leaves the log writing to
    a closed stream."""

    @property
    def stream(self) -> object:
        return sys.stderr

    @stream.setter
    def stream(self, _value: object) -> None:
        pass


def configure() -> None:
    """Send talktime's server logs to standard error, one line each, with the time (``serve`` calls it)."""
    handler = _Stderr()
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s"))
    for logger in (ACCESS, SERVE):
        logger.setLevel(logging.INFO)
        if not logger.handlers:
            logger.addHandler(handler)


def store_label(target: str) -> str:
    """A store as the log may show it: a PostgreSQL URL without its password or query, else the path."""
    if not is_postgres_url(target):
        return target
    parts = urlsplit(target)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit((parts.scheme, user + host, parts.path, "", ""))


def log_start(store: str, host: str, port: int, workers: int) -> None:
    SERVE.info(
        "serving store %s on http://%s:%d with %d worker process(es)", store_label(store), host, port, workers
    )


def log_hashes(known: dict[str, int]) -> None:
    """The start-up line after the store's in-memory hashes are loaded (how many, how much memory)."""
    SERVE.info(
        "holding %d event and %d record hashes in memory (%.1f MiB)",
        known["events"],
        known["records"],
        known["bytes"] / 2**20,
    )


def _printable_path(path: str) -> str:
    masked = _KEYLIKE.sub("tt_***", path)
    return masked if masked.isprintable() else masked.encode("unicode_escape").decode("ascii")


class AccessLog:
    """ASGI middleware writing one access line per HTTP request, after its answer (or its failure)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless an answer starts: an exception becomes a 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            if ACCESS.isEnabledFor(logging.INFO):
                tenant = _printable_path(str(scope.get("state", {}).get("tenant") or "-"))
                ACCESS.info(
                    "%s %s %d %.1fms tenant=%s",
                    scope["method"],
                    _printable_path(scope["path"]),
                    status,
                    (time.perf_counter() - started) * 1000,
                    tenant,
                )
