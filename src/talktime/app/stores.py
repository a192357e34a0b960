"""An event store a use case opens itself (``keys``, ``webhooks``, ``serve``), by the path or URL a user
named: closed when the use case is done, whatever happens."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from talktime.store.base import EventStore


@contextmanager
def opened_store(target: str) -> Iterator[EventStore]:
    """The store ``target`` names (an embedded DuckDB file, made if new, or a ``postgresql://`` URL)."""
    from talktime.store import open_store

    opened = open_store(target)
    try:
        yield opened
    finally:
        opened.close()
