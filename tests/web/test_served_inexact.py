"""One SDK float no longer takes a tenant's served dashboard down: a real ``talktime serve`` on loopback over
a DuckDB store holding last month's calls, one speech-to-text stream's audio sent as a float with 17
decimals (``0.1 + 0.2`` style), which the engines' typed columns (microseconds) cannot hold, and Debian's
chromium. Until this change the snapshot was refused ("correct the record to see this tenant's
dashboard"). Now the snapshot carries the record exactly: the operator's pages show the tenant, the
stream's trail on its call's page bills every digit of its audio, and the invoices page's total for that
customer-month is ``GET /v1/invoices``'s, on the operator's page and on the customer's own."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import quote

from support.stored import store_records
from talktime.app.keys import create_key
from talktime.core.invoicing.periods import period_label
from talktime.io.ratecards import load_price_card
from talktime.store import open_store
from talktime.synth import synthetic_month
from web.kit import PRICES, READY, api_json, served_invoice_total, sign_in, start_serve

TENANT = "acme-float"
EXTRA = Decimal("0.30000000000000004")  # what 0.1 + 0.2 is as a float, written as its shortest text


def test_a_float_with_17_decimals_is_served_exactly_and_its_invoice_equals_the_api(
    page: Any, tmp_path: Path, browser: Any
) -> None:
    this = datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    last = (this - timedelta(days=1)).replace(day=1)  # a month that has ended: every call of it is closed
    records = list(synthetic_month(30, seed=11, month=last, whole_call=True))
    i, stream = next(
        (i, r) for i, r in enumerate(records) if r.kind == "stream" and r.audio_seconds and r.customer
    )
    assert stream.audio_seconds is not None and stream.customer is not None and stream.session is not None
    audio = stream.audio_seconds + EXTRA
    assert audio.as_tuple().exponent == -17  # past DECIMAL(18,6)
    records[i] = dataclasses.replace(stream, audio_seconds=audio)
    store = str(tmp_path / "events.duckdb")
    store_records(store, TENANT, records)
    opened = open_store(store)
    try:
        key = create_key(opened, TENANT).key
        customer_key = create_key(opened, TENANT, customer=stream.customer).key
    finally:
        opened.close()
    card = load_price_card(Path(str(files("talktime.ratecards").joinpath(PRICES))))
    customer = stream.customer
    period = period_label(stream.started_at, card.customer(customer).timezone)
    server, url, log = start_serve(store)
    try:
        sign_in(page, url, key, READY)
        overview = page.locator("body").inner_text()
        assert f"Tenant {TENANT}" in overview, overview[:500]
        assert "correct the record" not in overview
        assert "audio_seconds" in overview and "more than 6 decimals" in overview, "the note says why"
        assert "records.parquet" not in overview, "the note names the store, not the snapshot's own file"
        page.goto(url + f"/call?customer={quote(customer)}&session={quote(stream.session)}")
        assert str(audio) in page.locator("body").inner_text(), "the stream's trail keeps every digit"
        api = api_json(url, f"/v1/invoices?customer={customer}&period={period}", key)
        shown = served_invoice_total(page, url, customer, period)
        assert shown == Decimal(api["total"]), "the page's total is GET /v1/invoices's"
        deadline = datetime.now(UTC) + timedelta(milliseconds=READY)
        while "more than 6 decimals" not in (whatif := _text(page, url + "/whatif")):  # DuckDB alone: named
            assert datetime.now(UTC) < deadline, whatif[:2000]
            page.wait_for_timeout(1000)
        theirs = browser.new_context().new_page()  # the customer's own pages read the same snapshot
        try:
            sign_in(theirs, url, customer_key, READY)
            assert served_invoice_total(theirs, url, customer, period) == Decimal(api["total"])
        finally:
            theirs.context.close()
    finally:
        server.terminate()
        server.wait(timeout=20)
    assert "failed" not in log.read_text(), "no snapshot of the tenant failed"


def _text(page: Any, address: str) -> str:
    page.goto(address)
    return str(page.locator("body").inner_text())
