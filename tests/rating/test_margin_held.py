"""``talktime margin`` marks the records the plausibility guards hold back, as ``talktime invoice`` does.

History: ``synthetic_month`` (whole calls, three customers in their own time zones) from 20 October, with
planted records: a 30 h call, a call whose audio is longer than the call, an LLM request over the token
limit. "Now" is 10 November, so the calls after 11 November start "in the future", and a customer's
October is judged as of its end (per customer zone). Limits: the safe defaults, and tenant limits tight
enough to hold hundreds of records (tokens, call length).
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from talktime.cli.main import app
from talktime.core.invoicing.invoice import guarded_invoice
from talktime.core.invoicing.periods import period_label
from talktime.core.plausibility import Limits, reason_code
from talktime.core.rating.margin import Guard, MarginReport, margin_view, session_margins
from talktime.core.records import UsageRecord
from talktime.io.ratecards import load_cost_card, load_price_card
from talktime.io.records_io import read_records, write_records
from talktime.simulate.margin_grouped import GROUPED_BY, grouped_view
from talktime.simulate.margin_run import margin_vectorised
from talktime.synth import synthetic_month

runner = CliRunner()
NOW = datetime(2026, 11, 10, 12, tzinfo=UTC)
COSTS, PRICES = Path("costs-informative.toml"), Path("plan-call-minute.toml")
LIMITS = [Limits(), Limits(max_call_hours=1, max_tokens=1500, max_future_hours=1)]


def _planted(records: list[UsageRecord]) -> list[UsageRecord]:
    """A 30 h call, audio longer than its call and an LLM request over the token limit, each in a call."""
    out = list(records)
    leg = next(i for i, r in enumerate(out) if r.kind == "leg" and r.ended_at is not None)
    r = out[leg]
    out[leg] = replace(r, ended_at=r.started_at + timedelta(hours=30))
    stream = next(i for i, r in enumerate(out) if r.kind == "stream" and r.ended_at is not None)
    r = out[stream]
    out[stream] = replace(r, audio_seconds=Decimal(3600 * 5))
    llm = next(i for i, r in enumerate(out) if r.kind == "llm")
    out[llm] = replace(out[llm], input_tokens=20_000_000)
    return out


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("held")
    history = _planted(
        list(synthetic_month(400, seed=5, month=datetime(2026, 10, 20, tzinfo=UTC), whole_call=True))
    )
    write_records(path / "history.parquet", history)
    write_records(path / "newest-first.csv", list(reversed(history)))
    return path


def _held(report: MarginReport) -> dict[tuple[str, str], tuple[list[str], set[str]]]:
    return {(s.customer, s.session): (s.held, s.held_reasons) for s in report.sessions if s.held}


@pytest.mark.parametrize("limits", LIMITS)
@pytest.mark.parametrize("history", ["history.parquet", "newest-first.csv"])
def test_both_engines_mark_the_same_held_records(folder: Path, history: str, limits: Limits) -> None:
    costs, prices = load_cost_card(COSTS), load_price_card(PRICES)
    guard = Guard(limits, NOW)
    path = folder / history
    reference = session_margins(read_records(path), costs, prices, guard)
    vectorised = margin_vectorised(path, costs, prices, guard=guard)
    assert vectorised.held_records == reference.held_records
    assert _held(vectorised) == _held(reference)
    assert len(reference.held_records) >= 3
    # the mark changes no amount
    plain = session_margins(read_records(path), costs, prices)
    assert [(s.price, s.cost) for s in plain.sessions] == [(s.price, s.cost) for s in reference.sessions]
    for by in GROUPED_BY:
        want = margin_view(reference, by)
        got = grouped_view(path, costs, prices, by, guard=guard)
        assert got.held_records == want.held_records
        fields = ("held_sessions", "held", "held_reasons")
        assert [tuple(r[f] for f in fields) for r in got.rows] == [
            tuple(r[f] for f in fields) for r in want.rows
        ], by
        assert sum(int(r["held"]) for r in got.rows) >= len(reference.held_records)  # type: ignore[call-overload]


@pytest.mark.parametrize("limits", LIMITS)
def test_the_marked_records_are_those_the_invoices_hold_back(folder: Path, limits: Limits) -> None:
    prices = load_price_card(PRICES)
    records = list(read_records(folder / "history.parquet"))
    report = session_margins(records, load_cost_card(COSTS), prices, Guard(limits, NOW))
    months = {
        (r.customer, period_label(r.started_at, prices.customer(r.customer).timezone))
        for r in records
        if r.customer
    }
    held_back: dict[str, tuple[str, ...]] = {}
    for customer, period in sorted(months):
        invoice = guarded_invoice(records, prices, customer, period, [], limits, NOW)
        for record_id, reasons in invoice.held:
            held_back[record_id] = tuple(dict.fromkeys(reason_code(r) for r in reasons))
    marked = {i for s in report.sessions for i in s.held}
    assert marked == set(held_back) and held_back
    reasons = {r for s in report.sessions for r in s.held_reasons}
    assert reasons == {r for codes in held_back.values() for r in codes}
    assert "starts-in-future" in reasons if limits.max_future_hours == 1 else "call-too-long" in reasons


def _margin(*args: str) -> str:
    result = runner.invoke(
        app, ["margin", "--costs", str(COSTS), "--prices", str(PRICES), *args], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    return result.stdout


def _long_call(path: Path, hours: int) -> None:
    """Two calls of blue-bank in October 2026 (LiveKit rooms, priced per call minute): one of ``hours``
    hours, one of two minutes."""
    end = datetime(2026, 10, 10, 8, tzinfo=UTC) + timedelta(hours=hours)
    lines = [
        "id,customer,provider,product,kind,session,started_at,ended_at,channels",
        f"long,blue-bank,livekit,rooms,participant,long,2026-10-10T08:00:00Z,{end.isoformat()},1",
        "short,blue-bank,livekit,rooms,participant,short,2026-10-11T08:00:00Z,2026-10-11T08:02:00Z,1",
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_a_30_hour_call_is_marked_held_on_every_view(tmp_path: Path) -> None:
    path = tmp_path / "calls.csv"
    _long_call(path, 30)
    rows = _margin("--records", str(path), "--by", "session", "-f", "csv").splitlines()
    assert rows[0].endswith(",held,held_reasons")
    by_call = {row.split(",")[1]: row for row in rows[1:]}
    assert by_call["long"].endswith(",1,call-too-long") and by_call["short"].endswith(",0,")
    body = json.loads(_margin("--records", str(path), "--by", "customer", "-f", "json"))
    assert body["held_records"] == ["long"]
    (row,) = body["rows"]
    assert (row["held_sessions"], row["held"], row["held_reasons"]) == (1, 1, ["call-too-long"])
    assert Decimal(row["price"]) > 0  # the price still counts the call: the mark says it is not invoiced
    table = _margin("--records", str(path), "--by", "customer")
    assert "HELD 1 call (call-too-long)" in table
    table = _margin("--records", str(path), "--by", "session", "--engine", "reference")
    assert "HELD (call-too-long)" in table


def test_limits_from_a_guards_file_decide_what_is_held(tmp_path: Path) -> None:
    path = tmp_path / "calls.csv"
    _long_call(path, 30)
    guards = tmp_path / "guards.toml"
    guards.write_text("max_call_hours = 48\n", encoding="utf-8")
    body = json.loads(_margin("--records", str(path), "--guards", str(guards), "-f", "json"))
    assert "held_records" not in body and "held" not in body["rows"][0]


def test_without_held_records_the_output_has_no_held_fields(tmp_path: Path) -> None:
    path = tmp_path / "calls.csv"
    _long_call(path, 2)
    for by in ("session", "customer", "provider"):
        body = json.loads(_margin("--records", str(path), "--by", by, "-f", "json"))
        assert "held_records" not in body
        assert all(not any(k.startswith("held") for k in row) for row in body["rows"])
        header = _margin("--records", str(path), "--by", by, "-f", "csv").splitlines()[0]
        assert "held" not in header


def test_an_accepted_record_is_not_marked_and_the_reference_judges_it(tmp_path: Path) -> None:
    """A face that passes a store's acceptances gets them judged per record, as the invoices judge them."""
    from talktime.app.history import HistorySource
    from talktime.app.margin import session_report
    from talktime.core.plausibility import Accepted, check

    path = tmp_path / "calls.csv"
    _long_call(path, 30)
    long = next(r for r in read_records(path) if r.id == "long")
    costs, prices = load_cost_card(COSTS), load_price_card(PRICES)
    held, note = session_report(HistorySource(path), costs, prices, guard=Guard(Limits(), NOW))
    assert held.held_records == ("long",) and note == ""
    accepted = Accepted(frozenset(check(long, Limits(), NOW)), NOW)
    guard = Guard(replace(Limits(), accepted={"long": accepted}), NOW)
    report, note = session_report(HistorySource(path), costs, prices, guard=guard)
    assert report.held_records == () and note == ""  # judged on DuckDB too (margin_held.covered_rows)
