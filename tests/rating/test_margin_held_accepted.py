"""``talktime margin``'s HELD marks read a person's acceptances as the invoices do (issue #15): given a
store's acceptances (``Limits.accepted``, as the served dashboard's snapshot carries them), both engines and
every grouped view mark exactly the records ``guarded_invoice`` holds back, with and without acceptances.

History: ``synthetic_month`` (whole calls, three customers in their own time zones) from 20 October with a
30 h leg, a stream whose audio is longer than its call and an LLM request over the token limit; limits tight
enough to hold hundreds of records. Acceptances: every other held record's present reasons, word for word
(counted); one held record accepted with reasons worded for another figure (a record whose reasons changed
since its acceptance: still held); one accepted for only some of its reasons (still held).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from talktime.app.history import HistorySource
from talktime.app.margin import MarginBy, MarginEngine, margin, session_report
from talktime.core.invoicing.invoice import guarded_invoice
from talktime.core.invoicing.periods import period_label
from talktime.core.plausibility import Accepted, Guards, Limits, check
from talktime.core.rating.cards import PriceCard
from talktime.core.rating.margin import Guard, MarginReport, margin_view, session_margins
from talktime.core.records import UsageRecord
from talktime.io.ratecards import load_cost_card, load_price_card
from talktime.io.records_io import read_records, write_records
from talktime.simulate.margin_grouped import GROUPED_BY, grouped_view
from talktime.simulate.margin_run import margin_vectorised
from talktime.synth import synthetic_month

NOW = datetime(2026, 11, 10, 12, tzinfo=UTC)
COSTS, PRICES = Path("costs-informative.toml"), Path("plan-call-minute.toml")
TIGHT = Limits(max_call_hours=1, max_tokens=1500, max_future_hours=1)


def _planted(records: list[UsageRecord]) -> list[UsageRecord]:
    out = list(records)
    leg = next(i for i, r in enumerate(out) if r.kind == "leg" and r.ended_at is not None)
    out[leg] = replace(out[leg], ended_at=out[leg].started_at + timedelta(hours=30))
    stream = next(i for i, r in enumerate(out) if r.kind == "stream" and r.ended_at is not None)
    out[stream] = replace(out[stream], audio_seconds=Decimal(3600 * 5))
    llm = next(i for i, r in enumerate(out) if r.kind == "llm")
    out[llm] = replace(out[llm], input_tokens=20_000_000)
    return out


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("held-accepted") / "history.parquet"
    month = datetime(2026, 10, 20, tzinfo=UTC)
    write_records(path, _planted(list(synthetic_month(400, seed=5, month=month, whole_call=True))))
    return path


def _moment(record: UsageRecord, prices: PriceCard) -> datetime:
    return Guard(TIGHT, NOW).moment(record, prices)


def _invoices_hold(records: list[UsageRecord], prices: PriceCard, limits: Limits) -> set[str]:
    """Every record some customer month's draft holds back (``guarded_invoice``, as ``GET /v1/invoices``)."""
    months = {
        (r.customer, period_label(r.started_at, prices.customer(r.customer).timezone))
        for r in records
        if r.customer
    }
    held: set[str] = set()
    for customer, period in sorted(months):
        held.update(i for i, _ in guarded_invoice(records, prices, customer, period, [], limits, NOW).held)
    return held


def _acceptances(records: list[UsageRecord], prices: PriceCard) -> tuple[dict[str, Accepted], set[str]]:
    """Acceptances of held records (see the module's docstring), and the ids they must leave held."""
    held = [r for r in records if r.customer and check(r, TIGHT, _moment(r, prices))]
    assert len(held) > 20
    accepted: dict[str, Accepted] = {}
    for record in held[::2]:  # the present reasons, word for word: counted
        moment = _moment(record, prices)
        accepted[record.id] = Accepted(frozenset(check(record, TIGHT, moment)), moment)
    stale = held[1]  # accepted for the same limit by another figure: its reasons changed since
    moment = _moment(stale, prices)
    accepted[stale.id] = Accepted(
        frozenset(r.replace("s ", "0 s ", 1) for r in check(stale, TIGHT, moment)), moment
    )
    several = next(r for r in held[3::2] if len(check(r, TIGHT, _moment(r, prices))) > 1)
    moment = _moment(several, prices)
    accepted[several.id] = Accepted(frozenset(check(several, TIGHT, moment)[:1]), moment)  # some reasons
    return accepted, {stale.id, several.id}


def _held(report: MarginReport) -> dict[tuple[str, str], tuple[Sequence[str], frozenset[str]]]:
    return {(s.customer, s.session): (s.held, s.held_reasons) for s in report.sessions if s.held}


def test_the_held_marks_are_the_invoices_held_records_with_and_without_acceptances(history: Path) -> None:
    costs, prices = load_cost_card(COSTS), load_price_card(PRICES)
    records = list(read_records(history))
    accepted, still = _acceptances(records, prices)
    with_them = replace(TIGHT, accepted=accepted)
    without, counted = _invoices_hold(records, prices, TIGHT), _invoices_hold(records, prices, with_them)
    assert still <= counted < without, "the acceptances count some held records, not the stale ones"
    assert len(without - counted) > 10
    for limits, invoices in ((TIGHT, without), (with_them, counted)):
        guard = Guard(limits, NOW)
        reference = session_margins(records, costs, prices, guard)
        vectorised = margin_vectorised(history, costs, prices, guard=guard)
        assert set(reference.held_records) == invoices, "the reference marks what the invoices hold back"
        assert set(vectorised.held_records) == invoices, "so does DuckDB"
        assert vectorised.held_records == reference.held_records  # in file order
        assert _held(vectorised) == _held(reference)
        for by in GROUPED_BY:
            want = margin_view(reference, by)
            got = grouped_view(history, costs, prices, by, guard=guard)
            assert got.held_records == want.held_records, by
            fields = ("held_sessions", "held", "held_reasons")
            assert [tuple(r[f] for f in fields) for r in got.rows] == [
                tuple(r[f] for f in fields) for r in want.rows
            ], by


def test_the_use_case_judges_acceptances_on_duckdb_not_the_reference(history: Path) -> None:
    """``margin`` with a store's acceptances stays on DuckDB (no note of a fallback) and marks the same rows
    as the reference."""
    prices = load_price_card(PRICES)
    records = list(read_records(history))
    accepted, _ = _acceptances(records, prices)
    guards = replace(TIGHT, accepted=accepted)

    notes: list[str] = []
    for by in (MarginBy.customer, MarginBy.session):
        views = [
            margin(
                HistorySource(history),
                COSTS,
                PRICES,
                by=by,
                engine=engine,
                guards=Guards(guards),
                now=NOW,
                note=notes.append,
            ).view
            for engine in (MarginEngine.auto, MarginEngine.reference)
        ]
        assert views[0].held_records == views[1].held_records
        assert set(views[0].held_records) == _invoices_hold(records, prices, guards)
    assert notes == []
    report, note = session_report(
        HistorySource(history), load_cost_card(COSTS), prices, guard=Guard(guards, NOW)
    )
    assert note == "" and set(report.held_records) == _invoices_hold(records, prices, guards)
