"""The customer's calls page names the month it was asked for, or says why it cannot show it: a period
that is not YYYY-MM answers 400 naming the parameter and the form, a month with no invoice a page saying
so (it showed the current month before, under a 200, as if that was what had been asked for).

The server is test_customer_zone's (a real server on loopback over DuckDB, Debian's chromium): its
customer has invoices for 2026-10 and 2026-11 (its current month, in Pacific/Auckland)."""

from __future__ import annotations

from typing import Any

from web.kit import sign_in
from web.test_customer_zone import READY, Zoned, zoned  # noqa: F401  (the module's server, started here)


def test_a_malformed_period_is_refused_naming_the_parameter_and_the_form(
    page: Any,
    zoned: Zoned,  # noqa: F811
    expected_errors: list[str],
) -> None:
    expected_errors.append("Failed to load resource: the server responded with a status of 400 (Bad Request)")
    sign_in(page, zoned.url, zoned.customer_key, READY)
    page.wait_for_selector("dl.totals", timeout=READY)
    for period in ("garbage", "2026-13", "2026-1"):
        answer = page.goto(f"{zoned.url}/calls?period={period}")
        assert answer.status == 400, period
        said = page.locator("main").inner_text()
        assert f"period='{period}' is not a month: give it as YYYY-MM" in said, said
        assert "Your calls in" not in said, "no other month shown in its place"


def test_a_month_without_an_invoice_says_so(
    page: Any,
    zoned: Zoned,  # noqa: F811
    expected_errors: list[str],
) -> None:
    expected_errors.append("Failed to load resource: the server responded with a status of 404 (Not Found)")
    sign_in(page, zoned.url, zoned.customer_key, READY)
    page.wait_for_selector("dl.totals", timeout=READY)
    answer = page.goto(f"{zoned.url}/calls?period=1999-01")
    assert answer.status == 404
    said = page.locator("main").inner_text()
    assert "You have no invoice for 1999-01: your months here are 2026-10, 2026-11." in said, said
    assert "Your calls in" not in said
    shown = page.goto(f"{zoned.url}/calls?period=2026-10")
    assert shown.status == 200 and page.locator("h1").inner_text() == "Your calls in 2026-10"
