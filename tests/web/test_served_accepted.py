"""A person's acceptance of a flagged record reaches the served dashboard's snapshot pages: a real ``talktime
serve`` on loopback over a DuckDB store holding last month's calls, one caller's leg ending nine years late
(held back by the guards), Debian's chromium. Before the acceptance the served invoices page's total for that
customer-month is ``GET /v1/invoices``'s (the leg held back); the leg is accepted through ``POST
/v1/reviews/ID``; the next snapshot (an acceptance makes one due) shows the total ``GET /v1/invoices`` now
gives, the leg billed, on the operator's invoices page and on the customer's own."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from importlib.resources import files
from pathlib import Path
from typing import Any

from support.stored import store_records
from talktime.app.keys import create_key
from talktime.core.invoicing.periods import period_label
from talktime.io.ratecards import load_price_card
from talktime.store import open_store
from talktime.synth import synthetic_month
from web.kit import PRICES, READY, api_json, served_invoice_total, sign_in, start_serve

TENANT = "acme-platform"


def test_an_accepted_record_counts_on_the_snapshots_invoices_as_on_the_api(
    page: Any, tmp_path: Path, browser: Any
) -> None:
    this = datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    last = (this - timedelta(days=1)).replace(day=1)  # a month that has ended: every call of it is closed
    records = list(synthetic_month(30, seed=11, month=last, whole_call=True))
    i, caller = next((i, r) for i, r in enumerate(records) if r.id.endswith("-caller"))
    assert caller.ended_at is not None and caller.customer is not None
    records[i] = dataclasses.replace(caller, ended_at=caller.ended_at.replace(year=caller.ended_at.year + 9))
    store = str(tmp_path / "events.duckdb")
    store_records(store, TENANT, records)
    opened = open_store(store)
    try:
        key = create_key(opened, TENANT).key
        customer_key = create_key(opened, TENANT, customer=caller.customer).key
    finally:
        opened.close()
    card = load_price_card(Path(str(files("talktime.ratecards").joinpath(PRICES))))
    customer = caller.customer
    period = period_label(caller.started_at, card.customer(customer).timezone)
    invoice_path = f"/v1/invoices?customer={customer}&period={period}"
    server, url, _ = start_serve(store, "--dashboard-refresh", "1")
    try:
        sign_in(page, url, key, READY)
        before = served_invoice_total(page, url, customer, period)
        api_before = api_json(url, invoice_path, key)
        assert before == Decimal(api_before["total"]), "the page's total is GET /v1/invoices's"
        assert caller.id in json.dumps(api_before["held"]), "the leg is held back on both"
        answer = api_json(
            url, f"/v1/reviews/{caller.id}", key, {"action": "accept", "note": "a real marathon"}
        )
        assert answer["held"] is False
        api_after = Decimal(api_json(url, invoice_path, key)["total"])
        assert api_after > before, "GET /v1/invoices counts it at once"
        deadline = datetime.now(UTC) + timedelta(milliseconds=READY)
        while (shown := served_invoice_total(page, url, customer, period)) == before:
            assert datetime.now(UTC) < deadline, "no newer snapshot counting the acceptance in 3 minutes"
            page.wait_for_timeout(1000)
        assert shown == api_after, "the next snapshot counts the accepted leg as GET /v1/invoices does"
        invoice = page.locator(f"article#inv-{customer}-{period}").inner_text()
        assert caller.id not in invoice, "and no longer names it as held back"
        theirs = browser.new_context().new_page()  # the customer's own pages read the same snapshot
        try:
            sign_in(theirs, url, customer_key, READY)
            assert served_invoice_total(theirs, url, customer, period) == api_after
        finally:
            theirs.context.close()
    finally:
        server.terminate()
        server.wait(timeout=20)
