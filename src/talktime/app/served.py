"""Reading a DuckDB store that ``talktime serve`` holds: through that server's ``GET /v1/records`` (and
``GET /v1/acceptances``, ``GET /v1/receipts``).

DuckDB lets one process open a database file for writing and then no other process open it at all, not
even to read. So ``talktime serve`` leaves a note beside the file, ``STORE.serve.json`` (its URL and
process id), for as long as it runs; a command given ``--store`` that finds the note of a live server
reads the tenant's records from it, with the tenant's API key from ``TALKTIME_KEY`` (the server answers only
for the key's tenant, as every route does), and beside them the tenant's acceptances of its flagged records
(``GET /v1/acceptances``) and the first receipts their time-worded limits are judged by (``GET
/v1/receipts``), so the command's guards count what the server's invoices count. PostgreSQL
stores need none of this: any number of processes read and write them at once.

Owns: the note and the client side of the routes. Does not own: the routes (``talktime.api.records_export``,
``talktime.api.review``).
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from talktime.core.plausibility import Accepted
from talktime.core.records import UsageRecord
from talktime.errors import InputError
from talktime.store.base import is_postgres_url
from talktime.store.records import record_from_doc

KEY_VARIABLE: Final = "TALKTIME_KEY"
_TENANT_HEADER: Final = "X-Talktime-Tenant"
_TIMEOUT: Final = 600.0


def note_path(store: str) -> Path:
    """Where a server holding the DuckDB file ``store`` leaves its note."""
    return Path(f"{store}.serve.json")


@contextmanager
def announce(store: str, host: str, port: int) -> Iterator[None]:
    """Leave the note for as long as the block runs (the server's life); nothing for PostgreSQL."""
    if is_postgres_url(store):
        yield
        return
    reachable = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host
    if ":" in reachable:
        reachable = f"[{reachable}]"
    path = note_path(store)
    path.write_text(json.dumps({"url": f"http://{reachable}:{port}", "pid": os.getpid()}), encoding="utf-8")
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def held_by_server(store: str) -> str | None:
    """The URL of the live ``talktime serve`` holding the DuckDB file ``store``, or None (no note, a note
    left by a server that is gone, or a PostgreSQL store)."""
    if is_postgres_url(store):
        return None
    path = note_path(store)
    try:
        note = json.loads(path.read_text(encoding="utf-8"))
        url, pid = str(note["url"]), int(note["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return url if _alive(pid) else None


def records_from_server(url: str, store: str, tenant: str) -> list[UsageRecord]:
    """The tenant's records as of now, read through the server at ``url`` with the key in TALKTIME_KEY
    (the standard library's HTTP client: the CLI needs no HTTP package of its own)."""
    found: list[UsageRecord] = []
    with _answer(url, store, tenant, "/v1/records", "list the records") as answer:
        for line in answer:
            if line.strip():
                found.append(record_from_doc(line.decode("utf-8")))
    return found


def acceptances_from_server(url: str, store: str, tenant: str) -> dict[str, Accepted]:
    """The latest acceptance of each of the tenant's records a person accepted, as the server at ``url``
    judges them now (``GET /v1/acceptances``), with the key in TALKTIME_KEY."""
    with _answer(url, store, tenant, "/v1/acceptances", "list the acceptances") as answer:
        body = json.loads(answer.read())
    return {
        str(item["id"]): Accepted(frozenset(item["reasons"]), datetime.fromisoformat(item["judged_at"]))
        for item in body["accepted"]
    }


def receipts_from_server(url: str, store: str, tenant: str) -> dict[str, datetime]:
    """The moment each of the tenant's records received far from its start is judged as of, as the server at
    ``url`` judges it (``GET /v1/receipts``), with the key in TALKTIME_KEY."""
    with _answer(url, store, tenant, "/v1/receipts", "list the receipts") as answer:
        body = json.loads(answer.read())
    return {str(item["id"]): datetime.fromisoformat(item["judged_at"]) for item in body["received"]}


@contextmanager
def _answer(url: str, store: str, tenant: str, route: str, what: str) -> Iterator[Any]:
    """The server's answer to GET ``route`` with the tenant's key, once it says the key is ``tenant``'s;
    InputError naming the store, the server and what went wrong."""
    key = os.environ.get(KEY_VARIABLE, "").strip()
    where = f"--store {store!r} is held by talktime serve at {url}"
    if not key:
        raise InputError(
            f"{where}; to read tenant {tenant!r}'s records through it, put that tenant's API key in "
            f"{KEY_VARIABLE} (or stop the server)"
        )
    request = urllib.request.Request(url + route, headers={"Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(request, timeout=_TIMEOUT) as answer:
            owner = answer.headers.get(_TENANT_HEADER)
            if owner != tenant:
                raise InputError(
                    f"{where}; the key in {KEY_VARIABLE} is tenant {owner!r}'s, not --tenant {tenant!r}'s"
                )
            yield answer
    except urllib.error.HTTPError as error:
        message = _message(error.read())
        raise InputError(f"{where}; it refused to {what} ({error.code}): {message}") from None
    except (urllib.error.URLError, OSError) as error:
        raise InputError(f"{where}; it could not be read: {error}") from None


def _message(body: bytes) -> str:
    try:
        return str(json.loads(body)["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return body.decode("utf-8", "replace")[:200]
