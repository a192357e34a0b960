"""The dashboard served by ``talktime serve --costs --prices`` in a real browser: a real server on loopback
over a DuckDB store holding a tenant's calls of last month and this one, Debian's chromium.

Sign-in takes the key in a form and leaves only an HttpOnly, SameSite=Strict session cookie (the key is in
no URL, cookie or log line); every operator page loads without console errors and says as of when; a filter
changes the calls table; a customer key sees its own usage, calls, invoices and methodology, never a cost,
a margin or another customer, and gets 403 from the operator's pages; a revoked key is signed out at once.
"""

from __future__ import annotations

import dataclasses
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest

from support.stored import store_records
from talktime.app.keys import create_key
from talktime.core.invoicing.periods import period_label
from talktime.core.records import UsageRecord
from talktime.io.ratecards import load_price_card
from talktime.store import open_store
from talktime.synth import synthetic_month
from web.kit import PRICES, sign_in, start_serve

TENANT = "acme-platform"
CUSTOMER = "blue-bank"
OTHERS = ("acme-health", "cobalt-retail")
READY = 180_000  # ms: the first snapshot and its invoices, on 2 shared cores
_TIMES = ("started_at", "ended_at", "answered_at", "first_audio_at", "last_audio_at")


@dataclass(frozen=True)
class Served:
    url: str
    log: Path
    tenant_key: str
    customer_key: str
    admin_key: str
    period: str  # the customer's billing month now, in its time zone (YYYY-MM), as its page and invoice


def _moved(record: UsageRecord, by: timedelta) -> UsageRecord:
    changes = {name: getattr(record, name) + by for name in _TIMES if getattr(record, name) is not None}
    return dataclasses.replace(record, **changes)


def _calls(now: datetime) -> list[UsageRecord]:
    """Last month's calls, and this month's squeezed into the part of it that has passed (each call moved
    as a whole, so none ends after now)."""
    this = datetime(now.year, now.month, 1, tzinfo=UTC)
    last = (this - timedelta(days=1)).replace(day=1)
    before = [r for r in synthetic_month(150, seed=7, month=last, whole_call=True) if r.started_at < this]
    current = list(synthetic_month(60, seed=9, month=this, whole_call=True))
    span = max(now - timedelta(hours=2) - this, timedelta(0)) / timedelta(days=31)
    starts: dict[str, datetime] = {}
    for record in current:
        key = record.session or record.id
        starts[key] = min(starts.get(key, record.started_at), record.started_at)
    moved = []
    for record in current:
        first = starts[record.session or record.id]
        moved.append(_moved(record, (this + (first - this) * span) - first))
    return before + [dataclasses.replace(r, id=f"now-{r.id}", session=f"now-{r.session}") for r in moved]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    now = datetime.now(UTC)
    store = str(tmp_path_factory.mktemp("served") / "events.duckdb")
    store_records(store, TENANT, _calls(now))
    opened = open_store(store)
    try:
        keys = (
            create_key(opened, TENANT).key,
            create_key(opened, TENANT, customer=CUSTOMER).key,
            create_key(opened, None, admin=True).key,
        )
    finally:
        opened.close()
    server, url, log = start_serve(store, "--dashboard-refresh", "1")
    try:
        card = load_price_card(Path(str(files("talktime.ratecards").joinpath(PRICES))))
        zone = card.customer(CUSTOMER).timezone  # the page and the invoice count the month in it
        yield Served(url, log, *keys, period_label(now, zone))
    finally:
        server.terminate()
        server.wait(timeout=20)


def _sign_in(page: Any, served: Served, key: str) -> None:
    page.goto(served.url + "/")
    assert page.url.endswith("/signin"), "a visitor without a session is sent to the sign-in form"
    sign_in(page, served.url, key, READY)


def _api(served: Served, path: str, key: str) -> tuple[int, Any]:
    request = urllib.request.Request(served.url + path, headers={"Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_sign_in_leaves_only_an_httponly_strict_session_cookie(page: Any, served: Served) -> None:
    visited: list[str] = []
    page.on("request", lambda r: visited.append(r.url))
    page.goto(served.url + "/signin")
    page.fill("#key", "tt_not-a-key")
    page.click("button[type=submit]")
    assert "not known" in page.locator("p.error").inner_text()
    assert page.context.cookies() == [], "no session for an unknown key"
    _sign_in(page, served, served.tenant_key)
    (cookie,) = page.context.cookies()
    assert cookie["name"] == "talktime_session" and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert served.tenant_key not in cookie["value"]
    assert page.evaluate("document.cookie") == "", "scripts cannot read the session"
    assert not [u for u in visited if served.tenant_key in u], "the key is in no URL"
    assert served.tenant_key not in served.log.read_text(), "nor in the server's log"


OPERATOR_PAGES = ("/", "/calls", "/invoices", "/whatif", "/methodology", "/methodology/twilio-voice")


def test_every_operator_page_loads_and_says_as_of_when(page: Any, served: Served, shots: Path) -> None:
    _sign_in(page, served, served.tenant_key)
    nav = page.eval_on_selector_all("header nav a", "links => links.map(a => a.getAttribute('href'))")
    assert set(OPERATOR_PAGES[:5]) <= set(nav)
    for path in dict.fromkeys([*nav, *OPERATOR_PAGES]):  # every page of the menu, whoever added it
        response = page.goto(served.url + path)
        assert response is not None and response.status == 200, path
        header = page.locator("header .source").inner_text()
        assert f"Tenant {TENANT}" in header and "as of" in header, (path, header)
        if path == "/":
            page.wait_for_selector(".plot .main-svg")  # the charts drew
            page.screenshot(path=str(shots / "dashboard-served-overview.png"), full_page=False)
    page.goto(served.url + "/calls")
    first = page.locator("#calls tbody th a").first.get_attribute("href")
    assert page.goto(served.url + first).status == 200, "one call's page"
    assert "billable" in page.locator("pre").first.inner_text(), "with each record's explain trail"


def test_a_filter_changes_the_served_calls_table(page: Any, served: Served) -> None:
    _sign_in(page, served, served.tenant_key)
    page.goto(served.url + "/calls")
    owners = "() => [...document.querySelectorAll('#calls tbody tr')].map(r => r.dataset.customer)"
    before = set(page.evaluate(owners))
    assert CUSTOMER in before and len(before) > 1, "every customer's calls, unfiltered"
    page.select_option("select[name=customer]", CUSTOMER)
    page.wait_for_url(f"**customer={CUSTOMER}**")
    page.wait_for_function(f"() => ({owners})().every(c => c === '{CUSTOMER}')")
    assert set(page.evaluate(owners)) == {CUSTOMER}


def test_the_customer_sees_its_usage_calls_invoices_and_methodology(
    page: Any, served: Served, shots: Path
) -> None:
    _sign_in(page, served, served.customer_key)
    page.wait_for_selector("dl.totals", timeout=READY)  # its invoice for this month is ready
    assert page.locator("h1").inner_text() == f"Your usage in {served.period}"
    status, invoice = _api(
        served, f"/v1/invoices?customer={CUSTOMER}&period={served.period}", served.tenant_key
    )
    assert status == 200
    shown = page.locator("dl.totals dd").nth(3).get_attribute("data-exact")
    assert Decimal(shown or "NaN") == Decimal(invoice["total"]), "the page's total is GET /v1/invoices's"
    actual, billable = (
        Decimal(page.locator("dl.totals dd").nth(i).get_attribute("data-exact") or "0") for i in (0, 1)
    )
    assert 0 < actual <= billable, "billable minutes are the actual ones rounded up"
    page.wait_for_selector(".plot .main-svg")
    page.screenshot(path=str(shots / "dashboard-customer.png"), full_page=True)
    for path in ("/", "/calls", "/invoices", "/methodology", "/methodology/call-minute"):
        response = page.goto(served.url + path)
        assert response is not None and response.status == 200, path
        text = page.locator("body").inner_text()
        assert "margin" not in text.lower() and "cost" not in text.lower(), path
        assert not any(other in text for other in OTHERS), path
        assert f"Customer {CUSTOMER}" in page.locator("header").inner_text()
    page.goto(served.url + "/calls")
    rows = page.locator("#customer-calls tbody tr")
    assert rows.count() > 0
    first = rows.first
    call_actual = Decimal(first.locator("td[data-col=actual]").first.get_attribute("data-exact") or "0")
    call_billable = Decimal(first.locator("td[data-col=billable]").first.get_attribute("data-exact") or "0")
    assert 0 < call_actual <= call_billable
    page.screenshot(path=str(shots / "dashboard-customer-calls.png"), full_page=False)


def test_a_customer_cannot_reach_the_operator_pages_or_another_customer(
    page: Any, served: Served, expected_errors: list[str]
) -> None:
    expected_errors.append("Failed to load resource: the server responded with a status of 403 (Forbidden)")
    _sign_in(page, served, served.customer_key)
    last = (datetime.now(UTC).replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
    refused = (
        "/whatif",
        "/jobs",
        f"/call?customer={OTHERS[0]}&session=call-000001",
        f"/call?customer={CUSTOMER}&session=call-000001",
        f"/invoices/{OTHERS[0]}/{last}.pdf",
        f"/invoices/{OTHERS[0]}/{served.period}.calls.csv",
    )
    for path in refused:
        response = page.goto(served.url + path)
        assert response is not None and response.status == 403, path
        assert "Not yours to see" in page.locator("h1").inner_text(), path
    page.goto(served.url + f"/calls?customer={OTHERS[0]}")
    assert OTHERS[0] not in page.locator("body").inner_text(), "a customer parameter changes nothing"
    status, body = _api(served, f"/v1/usage?policy=twilio-voice&customer={OTHERS[0]}", served.customer_key)
    assert status == 403 and CUSTOMER in body["error"]["message"]
    status, body = _api(served, "/v1/usage?policy=twilio-voice", served.customer_key)
    assert status == 200 and body["customer"] == CUSTOMER


def test_the_rating_jobs_end_done_in_their_worker_processes(page: Any, served: Served) -> None:
    """The invoices and the what-if runs are worked out in worker processes: each ends done (a result
    that could not come back from its process would fail its job) and the what-if page shows them."""
    _sign_in(page, served, served.tenant_key)
    deadline = datetime.now(UTC) + timedelta(milliseconds=READY)
    while True:
        states = page.request.get(served.url + "/jobs").json()
        if all(state in ("done", "failed") for state in states.values()):
            break
        assert datetime.now(UTC) < deadline, states
        page.wait_for_timeout(1000)
    assert {key.split(":")[0] for key in states} >= {"invoices", "customer-calls", "rounding", "switch"}
    assert set(states.values()) == {"done"}, states
    page.goto(served.url + "/whatif")
    page.wait_for_selector(".plot .main-svg")


def test_a_revoked_key_is_signed_out_at_once(page: Any, served: Served) -> None:
    body = json.dumps({"tenant": TENANT, "customer": CUSTOMER, "label": "to revoke"}).encode()
    request = urllib.request.Request(
        served.url + "/v1/admin/keys",
        data=body,
        headers={"Authorization": f"Bearer {served.admin_key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        made = json.loads(answer.read())
    _sign_in(page, served, made["key"])
    assert page.goto(served.url + "/calls").status == 200
    revoke = urllib.request.Request(
        served.url + f"/v1/admin/keys/{made['info']['id']}/revoke",
        method="POST",
        headers={"Authorization": f"Bearer {served.admin_key}"},
    )
    urllib.request.urlopen(revoke, timeout=30).close()
    page.goto(served.url + "/calls")
    assert page.url.endswith("/signin"), "the session's key is looked up on every request"


def test_a_page_answers_from_its_snapshot_and_a_new_batch_makes_a_newer_one(
    page: Any, served: Served
) -> None:
    """Runs last: it stores a call. The page answers at once from the snapshot it has (as of before the
    batch); a newer snapshot with the call replaces it by itself."""
    _sign_in(page, served, served.customer_key)
    page.goto(served.url + "/calls")
    before = page.locator("header .source p").inner_text()
    now = datetime.now(UTC)
    call = {
        "id": "late-call-caller",
        "customer": CUSTOMER,
        "provider": "livekit",
        "kind": "participant",
        "session": "late-call",
        "started_at": (now - timedelta(minutes=30)).isoformat(),
        "ended_at": (now - timedelta(minutes=27, seconds=50)).isoformat(),
    }
    event = {"specversion": "1.0", "id": "late-1", "source": "/test", "type": "talktime.record", "data": call}
    request = urllib.request.Request(
        served.url + "/v1/events",
        data=json.dumps([event]).encode(),
        headers={"Authorization": f"Bearer {served.tenant_key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert json.loads(answer.read())["accepted"] == 1
    page.goto(served.url + "/calls")
    assert "late-call" not in page.locator("#customer-calls").inner_text(), "answered from the old snapshot"
    deadline = datetime.now(UTC) + timedelta(seconds=120)
    while "late-call" not in page.locator("body").inner_text():
        assert datetime.now(UTC) < deadline, "no newer snapshot in 2 minutes"
        page.wait_for_timeout(1000)
        page.goto(served.url + "/calls")
    row = page.locator("#customer-calls tbody tr", has_text="late-call")
    assert row.locator("td[data-col=billable]").first.get_attribute("data-exact") == "3", (
        "2 min 10 s -> 3 min"
    )
    assert page.locator("header .source p").inner_text() != before, "and the header says as of when"


def test_a_sign_in_body_over_the_form_limit_is_refused_without_being_read_whole(served: Served) -> None:
    body = b"key=" + b"x" * 200_000  # far over the form's 4 KiB: refused once the limit is passed
    request = urllib.request.Request(
        served.url + "/signin", data=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        page = answer.read().decode()
    assert "That is not an API key (too long)." in page
    assert "talktime_session" not in (answer.headers.get("set-cookie") or "")
