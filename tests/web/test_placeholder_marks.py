"""Costs priced by placeholder prices are marked on the dashboard where the numbers are shown: a real
``talktime dashboard`` (file mode, the informative cost card whose LiveKit prices are placeholders) over a
LiveKit call and a Twilio call. The overview's totals, the customer's month and the LiveKit cost entries
carry the mark and the note names the entries; the calls table marks the LiveKit call, not the Twilio one;
the LiveKit call's own page marks its cost stack and names the entries, the Twilio call's page does not.
The pages are server-rendered: read as a browser receives them, with no script needed."""

from __future__ import annotations

import html
import json
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from web.kit import start_dashboard

CUSTOMER = "acme-health"
LIVEKIT = ("livekit-agent", "livekit-participant", "livekit-sip")


def _write(path: Path) -> Path:
    def record(id: str, session: str, kind: str, provider: str, hour: int) -> str:
        start, end = f"2026-10-05T{hour}:00:00+00:00", f"2026-10-05T{hour}:03:00+00:00"
        line = {"id": id, "customer": CUSTOMER, "session": session, "kind": kind, "provider": provider}
        line |= {"started_at": start, "ended_at": end}
        if kind == "leg":
            line["answered_at"] = start
        return json.dumps(line)

    lines = [
        record("lk-sip", "lk-call", "sip", "livekit", 10),
        record("lk-agent", "lk-call", "agent", "livekit", 10),
        record("tw-leg", "tw-call", "leg", "twilio", 11),
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    records = _write(tmp_path_factory.mktemp("placeholder") / "calls.jsonl")
    server, url = start_dashboard(records)
    try:
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=60) as answer:
        return str(answer.read().decode())


def _text(fragment: str) -> str:
    """What a reader sees of an HTML fragment: its text, tags dropped, spaces collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def _element(page: str, start: str, tag: str) -> str:
    """The element that opens with ``start`` (up to its closing ``tag``)."""
    begin = page.index(start)
    return page[begin : page.index(f"</{tag}>", begin)]


def test_the_overview_marks_the_totals_the_month_and_the_entries(dashboard: str) -> None:
    page = _get(dashboard + "/")
    assert _text(_element(page, '<dd data-col="cost"', "dd")).startswith("* ")  # the total cost
    assert _text(_element(page, '<dd data-col="margin"', "dd")).startswith("* ")
    assert _text(_element(page, '<dd data-col="placeholder-calls"', "dd")) == "1 PLACEHOLDER"
    note = _text(_element(page, '<p class="note placeholder-note"', "p"))
    assert "the cost of 1 call includes prices that are placeholders" in note
    assert all(entry in note for entry in LIVEKIT) and "not real" in note
    month = _text(_element(page, f'<tr data-customer="{CUSTOMER}"', "tr"))
    assert re.search(r"PLACEHOLDER ?: 1 call at placeholder prices", month), month
    cost = _text(_element(page, f'<tr data-customer="{CUSTOMER}"', "tr").split('data-col="cost"')[1])
    assert cost.split()[1] == "*"  # the month's cost, marked beside the number
    entries = _element(page, "<caption>Cost by cost entry", "table")
    for row in re.findall(r"<tr>.*?</tr>", entries, re.S):
        shown = _text(row)
        assert ("PLACEHOLDER" in shown) == shown.startswith(LIVEKIT), shown


def test_the_calls_table_marks_the_livekit_call_only(dashboard: str) -> None:
    page = _get(dashboard + f"/calls?customer={CUSTOMER}")
    livekit = _element(page, '<tr data-session="lk-call"', "tr")
    twilio = _element(page, '<tr data-session="tw-call"', "tr")
    assert "PLACEHOLDER" in _text(livekit) and "PLACEHOLDER" not in _text(twilio)
    assert _text(livekit.split('data-col="cost"')[1]).split()[1] == "*"
    assert "*" not in _text(twilio)
    only = _get(dashboard + f"/calls?customer={CUSTOMER}&placeholder=1")
    assert 'data-session="lk-call"' in only and 'data-session="tw-call"' not in only


def test_the_call_page_marks_its_cost_stack_and_names_the_entries(dashboard: str) -> None:
    page = _get(dashboard + f"/call?customer={CUSTOMER}&session=lk-call")
    said = _text(_element(page, '<span class="placeholder-note"', "span"))
    assert "this call's cost includes prices that are placeholders" in said
    assert all(entry in said for entry in LIVEKIT)
    assert "(price: placeholder)" in said  # each entry's own description, from the card
    stack = _element(page, '<table class="stack"', "table")
    for column in ("cost_platform", "cost", "margin"):
        cell = _text(_element(stack, f'data-col="{column}"', "td").split(">", 1)[1])
        assert cell.startswith("* "), (column, cell)
    assert "PLACEHOLDER price" in _text(page.split("Records and how each was metered")[1])

    twilio = _get(dashboard + f"/call?customer={CUSTOMER}&session=tw-call")
    assert "PLACEHOLDER" not in _text(twilio)
    assert not _text(_element(twilio, 'data-col="cost"', "td").split(">", 1)[1]).startswith("*")
