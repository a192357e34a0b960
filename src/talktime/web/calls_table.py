"""The calls table's query: filter by customer, provider, loss and incomplete, sort by any column, one page
of rows at a time. Pure functions over the margin rows (the rows of ``talktime margin --by session``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

PAGE_SIZE = 100

#: Columns a reader can sort by (the modality columns are added from the view).
TEXT_COLUMNS = ("customer", "session", "started_at")
NUMBER_COLUMNS = ("minutes", "cost", "price", "margin", "margin_percent", "cost_per_minute")


@dataclass(frozen=True, slots=True)
class CallsQuery:
    customer: str = ""
    provider: str = ""
    loss: bool = False
    incomplete: bool = False
    sort: str = "started_at"
    descending: bool = False
    page: int = 1

    def params(self, **changes: object) -> str:
        """This query's parameters as a query string, with ``changes`` applied (empty values left out)."""
        values: dict[str, object] = {
            "customer": self.customer,
            "provider": self.provider,
            "loss": "1" if self.loss else "",
            "incomplete": "1" if self.incomplete else "",
            "sort": self.sort,
            "dir": "desc" if self.descending else "asc",
            "page": self.page,
        }
        values.update(changes)
        kept = {k: v for k, v in values.items() if v not in ("", None, False)}
        if kept.get("page") == 1:
            del kept["page"]
        if kept.get("sort") == "started_at" and kept.get("dir") == "asc":
            del kept["sort"], kept["dir"]
        return urlencode(kept)

    def sorted_by(self, column: str) -> str:
        """The query string of a click on ``column``'s header: ascending, or the other way when it is the
        column already sorted by; back to the first page."""
        turn = column == self.sort and not self.descending
        return self.params(sort=column, dir="desc" if turn else "asc", page=1)


@dataclass(frozen=True, slots=True)
class CallsPage:
    rows: tuple[dict[str, object], ...]
    matched: int
    page: int
    pages: int


def _sort_key(column: str) -> Callable[[dict[str, object]], tuple[int, Any]]:
    def key(row: dict[str, object]) -> tuple[int, Any]:
        value = row.get(column)
        if value is None:
            return (1, Decimal(0))  # no value (a margin % without a price) sorts last either way
        if isinstance(value, datetime):
            return (0, value.timestamp())
        return (0, value)

    return key


def select(
    rows: Sequence[dict[str, object]], query: CallsQuery, sortable: Sequence[str], size: int = PAGE_SIZE
) -> CallsPage:
    """The rows the query keeps, in its order, and the page it asks for (the last one if past the end)."""
    kept = [
        row
        for row in rows
        if (not query.customer or row["customer"] == query.customer)
        and (not query.provider or query.provider in _providers(row))
        and (not query.loss or row["loss"])
        and (not query.incomplete or row["incomplete"])
    ]
    column = query.sort if query.sort in sortable else "started_at"
    present = [r for r in kept if r.get(column) is not None]
    missing = [r for r in kept if r.get(column) is None]
    present.sort(key=_sort_key(column), reverse=query.descending)
    ordered = present + missing
    pages = max(1, -(-len(ordered) // size))
    page = min(max(1, query.page), pages)
    return CallsPage(tuple(ordered[(page - 1) * size : page * size]), len(ordered), page, pages)


def _providers(row: dict[str, object]) -> dict[str, object]:
    found = row.get("providers")
    return found if isinstance(found, dict) else {}


def providers_of(rows: Sequence[dict[str, object]]) -> list[str]:
    return sorted({name for row in rows for name in _providers(row)})


def customers_of(rows: Sequence[dict[str, object]]) -> list[str]:
    return sorted({str(row["customer"]) for row in rows})
