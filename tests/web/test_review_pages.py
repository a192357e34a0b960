"""The reconciliation and flagged-records pages in a real browser: they load without console errors and fill
in by themselves; a Twilio statement with an overcharged line and a line billed a minute too many shows both
lines FLAGGED, in words, with the money beside the seconds and a link to each call; without a statement the
page says how to give one; a caller "ending" in 2035 and a stream with more speech than audio are listed as
HELD with their reasons, what they would bill, the month's totals ``talktime invoice`` gives with and without
them, and the command that bills them; served by ``talktime serve``, the flagged page reads the tenant's
stored records and reviews them: a held record accepted from the page leaves the list and the month's draft
total moves to ``GET /v1/invoices``'; a correction with a bad time or a negative count shows the form again
with the field named, then a good one counts; a POST without the session's form token, or from a customer
key, is a 403 page and changes nothing."""

from __future__ import annotations

import dataclasses
import html
import json
import shlex
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from support.statements import near_a_minute, twilio_console
from support.stored import store_records
from talktime.app.keys import create_key
from talktime.io.records_io import read_records, write_records
from talktime.store import open_store
from talktime.synth import synthetic_month
from web.kit import HELD_CALL, PRICES, sign_in, start_dashboard, start_serve

READY = 180_000  # ms: the pages' background work, on 2 shared cores
OVERCHARGED = "call-000010-leg1"  # blue-bank's (customers take calls in turn)
RUNAWAY = "call-000002-caller"  # cobalt-retail's


@dataclasses.dataclass(frozen=True)
class Review:
    url: str
    records: Path
    long_leg: str  # the leg billed a minute more than it lasted


@pytest.fixture(scope="module")
def review(month: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Review]:
    """The web tests' month with call 2's caller ending in 2035, and a dashboard over it given a Twilio
    statement of its legs: one line overcharged 0.05 USD, one billed 4 s (a minute) more."""
    folder = tmp_path_factory.mktemp("review")
    records = list(read_records(month))
    for i, record in enumerate(records):
        if record.id == RUNAWAY:
            assert record.ended_at is not None
            records[i] = dataclasses.replace(record, ended_at=record.ended_at.replace(year=2035))
    assert any(r.id == RUNAWAY for r in records)
    path = folder / "month.parquet"
    write_records(path, records)
    long_leg = near_a_minute(records).id
    statement = folder / "twilio-console.csv"
    twilio_console(statement, records, overcharge={OVERCHARGED: Decimal("0.05")}, extra_seconds={long_leg: 4})
    server, url = start_dashboard(path, "--statement", f"twilio-voice={statement}")
    try:
        yield Review(url, path, long_leg)
    finally:
        server.terminate()
        server.wait(timeout=10)


def _ready(page: Any, section: str) -> None:
    page.wait_for_selector(f"#{section}")
    page.wait_for_function(f"() => !document.querySelector('#{section} .pending')", timeout=READY)


def test_the_reconciliation_page_flags_the_planted_lines(page: Any, review: Review, shots: Path) -> None:
    response = page.goto(review.url + "/reconcile")
    assert response is not None and response.status == 200
    _ready(page, "reconcile")
    article = page.locator("article.statement")
    assert article.count() == 1
    assert article.locator("[data-col=flagged]").inner_text() == "2 FLAGGED"
    price = page.locator(f"tr.flagged[data-record='{OVERCHARGED}']")
    assert "FLAGGED PRICE" in price.inner_text() and "charged 0.06700, due 0.01700" in price.inner_text()
    assert price.locator("[data-col=over]").inner_text() == "+0.05000"
    seconds = page.locator(f"tr.flagged[data-record='{review.long_leg}']")
    assert "FLAGGED SECONDS" in seconds.inner_text() and "unexplained 60 s" in seconds.inner_text()
    assert page.locator("tr.flagged").count() == 2
    assert page.locator("table.gap tr[data-row=UNEXPLAINED] td").first.inner_text() == "60"
    page.wait_for_selector("#st-1 .plot .main-svg")  # the gap-by-cause chart is drawn
    page.screenshot(path=str(shots / "dashboard-reconcile.png"), full_page=True)
    price.get_by_role("link", name=OVERCHARGED).click()
    page.wait_for_load_state()
    assert page.locator("h1").inner_text().startswith("Call call-000010")
    assert page.locator(f"text={OVERCHARGED}").count() >= 1


def test_without_a_statement_the_page_says_how_to_give_one(page: Any, dashboard: str) -> None:
    response = page.goto(dashboard + "/reconcile")
    assert response is not None and response.status == 200
    how = page.locator(".how-to")
    assert "No statement given" in how.inner_text()
    assert "--statement twilio-voice=twilio-console.csv" in how.locator("pre").inner_text()
    assert page.locator("article.statement").count() == 0


def _invoice_total(records: Path, customer: str, *extra: str) -> Decimal:
    command = [sys.executable, "-m", "talktime", "invoice", "--customer", customer, "--period", "2026-10"]
    command += ["--records", str(records), "--prices", PRICES, "--format", "json", *extra]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return Decimal(json.loads(done.stdout)["total"])


def test_the_flagged_page_lists_the_held_records(page: Any, review: Review, shots: Path) -> None:
    response = page.goto(review.url + "/flagged")
    assert response is not None and response.status == 200
    _ready(page, "flagged")
    month = page.locator("article.held-month[data-customer=cobalt-retail][data-period='2026-10']")
    assert month.count() == 1
    runaway = month.locator(f"tr[data-record='{RUNAWAY}']")
    assert "HELD" in runaway.inner_text() and "call-too-long" in runaway.inner_text()
    assert "over the 24 h limit" in runaway.inner_text()
    assert Decimal(runaway.locator("[data-col=amount]").get_attribute("data-exact") or "0") > 100_000
    echo = month.locator(f"tr[data-record='{HELD_CALL}-stt-echo']")
    assert (
        "speech-longer-than-audio" in echo.inner_text()
        and "no line of the plan prices it" in echo.inner_text()
    )
    total = month.locator("[data-col=total]").get_attribute("data-exact")
    with_held = month.locator("[data-col=total-with-held]").get_attribute("data-exact")
    assert Decimal(total or "NaN") == _invoice_total(review.records, "cobalt-retail")
    assert Decimal(with_held or "NaN") == _invoice_total(review.records, "cobalt-retail", "--allow-flagged")
    command = month.locator("pre.command").first.inner_text()
    assert command.startswith("talktime invoice --customer cobalt-retail --period 2026-10 --records ")
    assert command.endswith("--allow-flagged")
    assert f"--prices {PRICES} " in command  # the card as the dashboard was given it: a command to paste
    assert page.locator("[data-col=held]").inner_text() == "2 HELD"
    page.screenshot(path=str(shots / "dashboard-flagged.png"), full_page=True)
    runaway.get_by_role("link", name="call-000002").click()
    page.wait_for_load_state()
    assert page.locator("h1").inner_text().startswith("Call call-000002")


def test_served_the_flagged_page_reads_the_store_and_reviews_a_stored_record(
    page: Any, tmp_path_factory: pytest.TempPathFactory, shots: Path
) -> None:
    this = datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    last = (this - timedelta(days=1)).replace(day=1)  # a month that has ended: every call of it is closed
    records = list(synthetic_month(30, seed=11, month=last, whole_call=True))
    i, caller = next((i, r) for i, r in enumerate(records) if r.id.endswith("-caller"))
    assert caller.ended_at is not None
    records[i] = dataclasses.replace(caller, ended_at=caller.ended_at.replace(year=caller.ended_at.year + 9))
    store = str(tmp_path_factory.mktemp("served-review") / "events.duckdb")
    store_records(store, "acme-platform", records)
    opened = open_store(store)
    try:
        key = create_key(opened, "acme-platform").key
    finally:
        opened.close()
    server, url, _ = start_serve(store)
    try:
        sign_in(page, url, key, READY)
        response = page.goto(url + "/flagged")
        assert response is not None and response.status == 200
        _ready(page, "flagged")
        row = page.locator(f"tr[data-record='{caller.id}']")
        assert "HELD" in row.inner_text() and "call-too-long" in row.inner_text()
        block = page.locator(f".review-record[data-record='{caller.id}']")
        assert block.get_by_role("button", name="Accept as it is").count() == 1
        assert block.get_by_label("ended_at").input_value() == records[i].ended_at.isoformat()  # type: ignore[union-attr]
        commands = [shlex.split(c) for c in block.locator("pre.command").text_content().splitlines()]  # type: ignore[union-attr]
        where = ["--store", store, "--tenant", "acme-platform"]
        assert ["talktime", "records", "accept", caller.id, *where] == commands[0][:8]
        assert ["talktime", "records", "correct", caller.id, *where, "--set", "ended_at=VALUE"] == commands[1]
        assert "Tenant acme-platform" in page.locator("header .source").inner_text()
        page.screenshot(path=str(shots / "dashboard-flagged-served.png"), full_page=True)
        page.goto(url + "/reconcile")
        how = shlex.split(page.locator(".how-to pre").inner_text())
        assert how[:2] == ["talktime", "reconcile"] and how[-4:] == where
    finally:
        server.terminate()
        server.wait(timeout=20)


# --- reviewing from the served page ---------------------------------------------------------------------

TENANT = "acme-platform"


@dataclasses.dataclass(frozen=True)
class Served:
    url: str
    key: str  # the operator's (tenant) key
    customer_key: str  # a customer's key of the same tenant
    customer: str
    accept: str  # held records of the customer, in one month: accepted from the page
    correct: str  # corrected from the page
    forged: str  # the target of the refused POSTs: held until the end
    started: dict[str, datetime]


def _api(served: Served, route: str) -> Any:
    request = urllib.request.Request(served.url + route, headers={"Authorization": f"Bearer {served.key}"})
    with urllib.request.urlopen(request, timeout=120) as answer:
        return json.loads(answer.read())


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """``talktime serve`` over last month's calls with three callers of one customer ending nine years
    late: held back from its invoice until a person reviews them."""
    this = datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    last = (this - timedelta(days=1)).replace(day=1)
    records = list(synthetic_month(40, seed=5, month=last, whole_call=True))
    callers = [(i, r) for i, r in enumerate(records) if r.id.endswith("-caller")]
    customer = str(callers[0][1].customer)
    mine = [(i, r) for i, r in callers if r.customer == customer][:3]
    assert len(mine) == 3
    for i, record in mine:
        assert record.ended_at is not None
        records[i] = dataclasses.replace(
            record, ended_at=record.ended_at.replace(year=record.ended_at.year + 9)
        )
    store = str(tmp_path_factory.mktemp("served-forms") / "events.duckdb")
    store_records(store, TENANT, records)
    opened = open_store(store)
    try:
        key = create_key(opened, TENANT).key
        customer_key = create_key(opened, TENANT, customer=customer).key
    finally:
        opened.close()
    server, url, _ = start_serve(store)
    ids = [r.id for _, r in mine]
    try:
        yield Served(url, key, customer_key, customer, *ids, {r.id: r.started_at for _, r in mine})
    finally:
        server.terminate()
        server.wait(timeout=20)


def _month(page: Any, served: Served) -> Any:
    return page.locator(f"article.held-month[data-customer='{served.customer}']")


def _total(page: Any, served: Served) -> tuple[Decimal, Decimal]:
    """The page's draft total of the customer's month and ``GET /v1/invoices``' total of the same month."""
    month = _month(page, served)
    period = month.get_attribute("data-period")
    shown = Decimal(month.locator("[data-col=total]").get_attribute("data-exact") or "NaN")
    api = _api(served, f"/v1/invoices?customer={served.customer}&period={period}")
    return shown, Decimal(api["total"])


def _held_ids(served: Served) -> list[str]:
    return [item["id"] for item in _api(served, "/v1/flagged")["held"]]


def test_a_post_without_the_form_token_or_from_a_customer_key_changes_nothing(
    page: Any, browser: Any, served: Served
) -> None:
    sign_in(page, served.url, served.key, READY)
    page.goto(served.url + "/flagged")
    token = page.locator("form.accept input[name=form_token]").first.input_value()
    assert len(token) == 64
    for form in ({"record": served.forged}, {"record": served.forged, "form_token": "0" * 64}):
        refused = page.request.post(served.url + "/flagged/accept", form=form, max_redirects=0)
        assert refused.status == 403
        assert "the form's token is missing or is not this session's" in html.unescape(refused.text())
    correct = {"record": served.forged, "set.ended_at": "", "form_token": "x"}
    assert page.request.post(served.url + "/flagged/correct", form=correct, max_redirects=0).status == 403
    # With the token, a record the tenant does not have: the page again, saying so.
    unknown = page.request.post(served.url + "/flagged/accept", form={"record": "nope", "form_token": token})
    assert unknown.status == 200 and "no record 'nope'" in html.unescape(unknown.text())
    # A customer signed in, even with a valid form token of the operator's session, cannot review.
    customer = browser.new_context()
    try:
        theirs = customer.new_page()
        sign_in(theirs, served.url, served.customer_key, READY)
        form = {"record": served.forged, "form_token": token}
        refused = theirs.request.post(served.url + "/flagged/accept", form=form, max_redirects=0)
        assert refused.status == 403
        assert f"This key belongs to customer '{served.customer}'" in html.unescape(refused.text())
    finally:
        customer.close()
    assert served.forged in _held_ids(served), "nothing refused was kept"


@pytest.fixture
def no_script(browser: Any) -> Iterator[Any]:
    """A page of a browser with JavaScript off: the forms are plain HTML."""
    context = browser.new_context(java_script_enabled=False, viewport={"width": 1440, "height": 900})
    try:
        yield context.new_page()
    finally:
        context.close()


def test_accept_and_correct_from_the_page_without_javascript(
    no_script: Any, served: Served, shots: Path
) -> None:
    page = no_script
    sign_in(page, served.url, served.key, READY)
    page.goto(served.url + "/flagged")
    month = _month(page, served)
    for record in (served.accept, served.correct, served.forged):
        assert "HELD" in month.locator(f"tr[data-record='{record}']").first.inner_text()
    before, api = _total(page, served)
    assert before == api
    # Accept one: it leaves the list at once, and the draft's total moves to the API's.
    block = page.locator(f".review-record[data-record='{served.accept}']")
    block.get_by_label("Why it is right").fill("a conference bridge, really")
    with page.expect_navigation():
        block.get_by_role("button", name="Accept as it is").click()
    assert "accepted: it counts now" in page.locator("[data-col=reviewed]").inner_text()
    assert page.locator(f"tr[data-record='{served.accept}']").count() == 0
    after, api = _total(page, served)
    assert after == api and after > before, (before, after)
    assert served.accept not in _held_ids(served)
    # Correct one with a bad time, then a negative count: the page again, the error naming the field.
    block = page.locator(f".review-record[data-record='{served.correct}']")
    stored_end = block.get_by_label("ended_at").input_value()
    block.get_by_label("ended_at").fill("yesterday evening")
    with page.expect_navigation():
        block.get_by_role("button", name="Correct").click()
    block = page.locator(f".review-record[data-record='{served.correct}']")
    error = block.locator("[data-col=error]")
    assert "ended_at" in error.inner_text() and "Not corrected" in error.inner_text()
    assert block.get_by_label("ended_at").input_value() == "yesterday evening", "the value as typed"
    assert block.get_by_label("ended_at").get_attribute("aria-invalid") == "true"
    page.screenshot(path=str(shots / "dashboard-flagged-review.png"), full_page=True)
    block.get_by_label("ended_at").fill(stored_end)  # as stored: not a change
    block.locator("input[name=other]").fill("input_tokens")
    block.locator("input[name=other_value]").fill("-5")
    with page.expect_navigation():
        block.get_by_role("button", name="Correct").click()
    block = page.locator(f".review-record[data-record='{served.correct}']")
    assert "field 'input_tokens': -5 is negative" in block.locator("[data-col=error]").inner_text()
    assert block.locator("input[name=other]").input_value() == "input_tokens"
    assert block.locator("input[name=other_value]").get_attribute("aria-invalid") == "true"
    assert served.correct in _held_ids(served), "nothing refused was kept"
    # A good end: corrected, checked again, counted.
    end = served.started[served.correct] + timedelta(seconds=95)
    block.get_by_label("ended_at").fill(end.isoformat())
    block.locator("input[name=other]").fill("")
    block.locator("input[name=other_value]").fill("")
    with page.expect_navigation():
        block.get_by_role("button", name="Correct").click()
    assert "corrected: it counts now" in page.locator("[data-col=reviewed]").inner_text()
    assert page.locator(f"tr[data-record='{served.correct}']").count() == 0
    corrected, api = _total(page, served)
    assert corrected == api and corrected > after, (after, corrected)
    assert _held_ids(served) == [served.forged]
    page.screenshot(path=str(shots / "dashboard-flagged-reviewed.png"), full_page=True)
