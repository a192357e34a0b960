"""How a use case reports progress without knowing who watches: a face passes callables, or nothing.

* :data:`Progress` opens a counter for ``total`` steps and gives back ``step(label)``, called as each step
  starts (the CLI draws a bar on a terminal; the API passes :func:`no_progress`).
* :data:`Ticker` wraps an iterable of ``total`` items (None: unknown) labelled ``label``, yielding them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

Step = Callable[[str], None]
Progress = Callable[[int], AbstractContextManager[Step]]
Ticker = Callable[[Iterable[Any], int | None, str], Iterator[Any]]


@contextmanager
def no_progress(total: int) -> Iterator[Step]:
    """A counter nobody watches."""
    yield lambda _: None


def no_ticks(items: Iterable[Any], total: int | None, label: str) -> Iterator[Any]:
    """The items, unwatched."""
    yield from items
