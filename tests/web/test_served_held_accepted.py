"""The served overview and calls pages read a person's acceptances (issue #15): a real ``talktime serve`` on
loopback over a DuckDB store holding last month's calls, one caller's leg ending nine years late (held back
by the guards), Debian's chromium. Before the acceptance the leg's call is marked HELD on /calls and its
customer's month on the overview, and the invoice holds it back; the leg is accepted through ``POST
/v1/reviews/ID``; once the next snapshot is served (its invoices page gives ``GET /v1/invoices``'s new
total), neither page marks it HELD any more, and the invoice counts it: the same records give the same
answer on every page."""

from __future__ import annotations

import dataclasses
import json
import os
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from support.stored import store_records
from talktime.app.cards import price_card
from talktime.app.keys import create_key
from talktime.core.invoicing.periods import period_label
from talktime.store import open_store
from talktime.synth import synthetic_month
from web.kit import PRICES, READY, api_json, served_invoice_total, sign_in, start_serve

TENANT = "acme-platform"


def _call_flag(page: Any, url: str, customer: str, session: str) -> str:
    page.goto(f"{url}/calls?customer={customer}")
    row = page.locator(f"tr[data-session='{session}'][data-customer='{customer}']")
    assert row.count() == 1, "the call is listed"
    return str(row.locator("td.flag").inner_text())


def _month_row(page: Any, url: str, customer: str, period: str) -> str:
    page.goto(url + "/")
    month = page.locator("tr", has=page.locator(f"th a:text-is('{customer}')")).filter(has_text=period)
    assert month.count() == 1, "the customer's month is on the overview"
    return str(month.inner_text())


def _shot(page: Any, name: str) -> None:
    folder = os.environ.get("TALKTIME_SCREENSHOTS")
    if folder:
        page.screenshot(path=str(Path(folder) / name), full_page=True)


def test_an_accepted_record_is_not_marked_held_on_the_overview_and_calls(page: Any, tmp_path: Path) -> None:
    this = datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    last = (this - timedelta(days=1)).replace(day=1)  # a month that has ended: every call of it is closed
    records = list(synthetic_month(30, seed=11, month=last, whole_call=True))
    i, caller = next((i, r) for i, r in enumerate(records) if r.id.endswith("-caller"))
    assert caller.ended_at is not None and caller.customer is not None and caller.session is not None
    records[i] = dataclasses.replace(caller, ended_at=caller.ended_at.replace(year=caller.ended_at.year + 9))
    store = str(tmp_path / "events.duckdb")
    store_records(store, TENANT, records)
    opened = open_store(store)
    try:
        key = create_key(opened, TENANT).key
    finally:
        opened.close()
    card = price_card(Path(PRICES))
    assert card is not None
    customer, session = caller.customer, caller.session
    zone = card.customer(customer).timezone
    invoice_period = period_label(caller.started_at, zone)
    call_period = period_label(min(r.started_at for r in records if r.session == session), zone)
    invoice_path = f"/v1/invoices?customer={customer}&period={invoice_period}"
    server, url, _ = start_serve(store, "--dashboard-refresh", "1")
    try:
        sign_in(page, url, key, READY)
        before = served_invoice_total(page, url, customer, invoice_period)
        assert caller.id in json.dumps(api_json(url, invoice_path, key)["held"]), (
            "the invoice holds the leg back"
        )
        assert "HELD" in _call_flag(page, url, customer, session) and "call-too-long" in page.content()
        assert "HELD" in _month_row(page, url, customer, call_period)
        assert page.locator(".held-note").count() == 1
        _shot(page, "served-overview-held.png")
        answer = api_json(
            url, f"/v1/reviews/{caller.id}", key, {"action": "accept", "note": "a real marathon"}
        )
        assert answer["held"] is False
        api_after = Decimal(api_json(url, invoice_path, key)["total"])
        assert api_after > before, "GET /v1/invoices counts it at once"
        deadline = datetime.now(UTC) + timedelta(milliseconds=READY)
        while served_invoice_total(page, url, customer, invoice_period) != api_after:  # the next snapshot
            assert datetime.now(UTC) < deadline, "no newer snapshot counting the acceptance in 3 minutes"
            page.wait_for_timeout(1000)
        assert caller.id not in page.locator(f"article#inv-{customer}-{invoice_period}").inner_text()
        flag = _call_flag(page, url, customer, session)
        assert "HELD" not in flag, "the calls page no longer marks the accepted call HELD"
        assert page.locator("table.calls tbody td.flag", has_text="HELD").count() == 0
        _shot(page, "served-calls-accepted.png")
        month = _month_row(page, url, customer, call_period)
        assert "HELD" not in month, "nor does the overview mark its month"
        assert page.locator(".held-note").count() == 0, "and no call is said to be held"
        _shot(page, "served-overview-accepted.png")
    finally:
        server.terminate()
        server.wait(timeout=20)
