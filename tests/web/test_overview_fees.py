"""The overview names its figures for what they are (issue #15, a new user's trial): its price is the calls'
usage price and says so beside the figure, with the plan's fees it leaves out, so that usage price plus fees
is what the month's invoices total; and its call counts say they count every call, beside the calls page's.

A real ``talktime dashboard`` over a synthetic October (whole calls, three customers in their own time zones,
some calls spilling into a neighbouring customer month), Debian's chromium; the invoices are the use case's
(``customer_invoices``, as ``talktime invoice`` and the invoices page make them)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from talktime.app.cards import price_card
from talktime.app.month_invoices import customer_invoices
from talktime.core.invoicing.periods import period_label
from talktime.core.records import UsageRecord
from talktime.io.records_io import write_records
from talktime.synth import synthetic_month
from web.kit import PRICES, start_dashboard

NOW = datetime(2027, 1, 15, tzinfo=UTC)  # every month of the file has ended


@pytest.fixture(scope="module")
def records() -> list[UsageRecord]:
    return list(synthetic_month(200, seed=9, whole_call=True))


@pytest.fixture(scope="module")
def served(records: list[UsageRecord], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    path = tmp_path_factory.mktemp("overview-fees") / "month.parquet"
    write_records(path, records)
    server, url = start_dashboard(path)
    try:
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


def _exact(page: Any, column: str) -> Decimal:
    return Decimal(page.locator(f"[data-col={column}]").first.get_attribute("data-exact") or "NaN")


def test_usage_price_plus_the_fees_it_names_is_the_invoices_total(
    page: Any, served: str, records: list[UsageRecord]
) -> None:
    card = price_card(Path(PRICES))
    assert card is not None and card.fees and card.minimum is None
    months: dict[str, set[str]] = {}
    for r in records:
        if r.customer:
            months.setdefault(r.customer, set()).add(
                period_label(r.started_at, card.customer(r.customer).timezone)
            )
    invoices = [
        invoice
        for customer, periods in months.items()
        for invoice in customer_invoices(records, card, customer, sorted(periods), now=NOW).values()
    ]
    assert not any(inv.held for inv in invoices), "nothing held: the invoices bill every record"
    total = sum((inv.total.amount for inv in invoices), Decimal(0))
    lines = sum(1 for inv in invoices for line in inv.lines if line.kind == "usage")
    page.goto(served + "/")
    price, fees = _exact(page, "usage-price"), _exact(page, "fees")
    assert fees == Decimal(49) * sum(len(p) for p in months.values()), (
        "the plan's fee in every customer month"
    )
    # the invoice rounds each usage line to the cent; the overview adds the calls' exact prices
    assert abs(price + fees - total) <= Decimal("0.005") * lines
    assert _exact(page, "price-with-fees") == price + fees
    figure = page.locator(".totals div", has=page.locator("[data-col=usage-price]")).inner_text()
    assert "Usage price, excl. fees" in figure, "the figure says what it leaves out where it is shown"
    note = page.locator(".counts-note").inner_text()
    assert f"excluding the plan's fees of {fees:.2f} USD" in note
    assert f"{price + fees:,.2f} USD with them" in note
    header = page.locator("table", has_text="margin on usage").locator("thead").inner_text()
    assert "usage price, excl. fees (USD)" in header and "calls (all)" in header


def test_the_call_counts_say_what_they_count(page: Any, served: str, records: list[UsageRecord]) -> None:
    calls = {(r.customer, r.session or f"record:{r.id}") for r in records}
    page.goto(served + "/")
    shown = int(page.locator("[data-col=calls]").inner_text().replace(",", ""))
    assert shown == len(calls), "the overview's calls are every call of the file"
    assert "every call with a record in these months, whether a line of the plan prices it or not" in (
        page.locator(".counts-note").inner_text()
    )
    page.goto(served + "/calls")
    count = page.locator("p.count").inner_text()
    assert count.startswith(f"{len(calls):,} calls match (every call with a record, priced or not)")
