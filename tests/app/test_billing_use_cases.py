"""``talktime.app.margin``, ``talktime.app.invoice`` and ``talktime.app.reconcile`` called directly: what
each use case decides (the engine and why it fell back, what to do with records no cost entry takes, the
ledger a finalised invoice goes to, the options a reconciliation refuses) without a command line.

History: the hand-checked Twilio legs of tests/simulate (customer a: 45 s; b: 61 s and 10 s), sold at
$0.10 per Twilio minute and costing $0.0085: a sells 1 minute, b 3 minutes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from talktime.app.history import HistorySource
from talktime.app.invoice import finalize, invoice
from talktime.app.margin import MarginBy, MarginEngine, margin
from talktime.app.reconcile import reconcile
from talktime.core.rating.margin import MarginView
from talktime.core.records import UsageRecord
from talktime.errors import InputError
from talktime.io.records_io import write_records

COSTS = Path("costs-informative.toml")
PRICES = """
kind = "price"
name = "test plan"
currency = "USD"
timezone = "UTC"
[components.minutes]
policy = "twilio-voice"
match = { kind = ["leg"] }
[[components.minutes.versions]]
effective_from = 2020-01-01
model = "per_unit"
unit_price = "0.10"
"""
STATEMENT = Path(__file__).parents[1] / "fixtures" / "statements" / "twilio-console.csv"


@pytest.fixture
def prices(tmp_path: Path) -> Path:
    path = tmp_path / "prices.toml"
    path.write_text(PRICES, encoding="utf-8")
    return path


@pytest.fixture
def history(tmp_path: Path, legs: list[UsageRecord]) -> HistorySource:
    path = tmp_path / "history.csv"
    write_records(path, legs)
    return HistorySource(records=path)


def _rows(view: MarginView) -> dict[str, tuple[object, object]]:
    return {str(r["customer"]): (r["price"], r["cost"]) for r in view.rows}


def test_margin_by_customer(history: HistorySource, prices: Path) -> None:
    report = margin(history, COSTS, prices)
    assert _rows(report.view) == {
        "a": (Decimal("0.10"), Decimal("0.0085")),
        "b": (Decimal("0.30"), Decimal("0.0255")),
    }
    assert report.miss == "" and report.view.uncosted_records == ()


def test_both_engines_give_the_same_margin(history: HistorySource, prices: Path) -> None:
    for by in MarginBy:
        duckdb = margin(history, COSTS, prices, by=by, engine=MarginEngine.duckdb).view
        reference = margin(history, COSTS, prices, by=by, engine=MarginEngine.reference).view
        assert duckdb.rows == reference.rows, by


def test_auto_says_why_it_used_the_reference(
    history: HistorySource, prices: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from talktime.simulate import margin_run

    monkeypatch.setattr(margin_run, "margin_supported", lambda costs, prices: "minutes: a model (test)")
    heard: list[str] = []
    report = margin(history, COSTS, prices, note=heard.append)
    assert heard == ["used the reference: minutes: a model (test)"]
    assert _rows(report.view)["a"] == (Decimal("0.10"), Decimal("0.0085"))
    with pytest.raises(InputError, match="--engine duckdb cannot rate these cards: minutes: a model"):
        margin(history, COSTS, prices, engine=MarginEngine.duckdb)


def test_a_record_no_cost_entry_takes_is_named_and_refused_when_strict(
    tmp_path: Path, legs: list[UsageRecord], prices: Path
) -> None:
    odd = UsageRecord(
        id="x-1",
        customer="a",
        session="x-1",
        provider="acme",
        product="voice",
        kind="leg",
        started_at=legs[0].started_at,
        answered_at=legs[0].started_at,
        ended_at=legs[0].started_at + timedelta(seconds=30),
    )
    path = tmp_path / "odd.csv"
    write_records(path, [*legs, odd])
    source = HistorySource(records=path)
    report = margin(source, COSTS, prices)
    assert report.view.uncosted_records == ("x-1",) and report.miss
    with pytest.raises(InputError, match=r"1 record\(s\) matched no cost entry .*: x-1; .*drop --strict"):
        margin(source, COSTS, prices, strict=True)


def test_costs_per_minute_need_rows_that_sell_minutes(history: HistorySource, prices: Path) -> None:
    assert margin(history, COSTS, prices, per_minute=True).view.rows
    with pytest.raises(InputError, match="--per-minute needs rows that sell minutes"):
        margin(history, COSTS, prices, by=MarginBy.provider, per_minute=True)


def test_an_invoice_and_its_finalisation(history: HistorySource, prices: Path, tmp_path: Path) -> None:
    now = datetime(2027, 1, 15, tzinfo=UTC)
    draft = invoice(history, prices, "b", "2026-12", now=now)
    assert draft.total.amount == Decimal("0.30") and draft.number is None
    ledger = tmp_path / "ledger"
    done = finalize(history, prices, "b", "2026-12", ledger=ledger, at=now)
    assert (done.path.is_file() and done.path.parent.parent == ledger.parent) or ledger in done.path.parents
    assert done.final.number and done.final.total.amount == Decimal("0.30")
    again = invoice(history, prices, "b", "2026-12", ledger=ledger, now=now)
    assert again.number == done.final.number  # the ledger's invoice, as it was finalised
    with pytest.raises(InputError, match="customer 'bb' is in neither"):
        invoice(history, prices, "bb", "2026-12", now=now)


def _statement_legs(tmp_path: Path) -> HistorySource:
    """Our legs for the Twilio console export (tests/reconcile/test_money.py): one billed 0.05 for 0.0255."""
    day = datetime(2026, 10, 14, tzinfo=UTC)
    records = [
        UsageRecord(
            id=f"CA1000000000000000000000000000000{n}",
            kind="leg",
            provider="twilio",
            started_at=day + timedelta(hours=h, minutes=m, seconds=3),
            answered_at=day + timedelta(hours=h, minutes=m, seconds=5),
            ended_at=day + timedelta(hours=h, minutes=m, seconds=5 + talk),
        )
        for n, h, m, talk in [(1, 9, 0, 150), (2, 9, 10, 80), (3, 10, 0, 150), (5, 12, 0, 150)]
    ]
    records.append(
        UsageRecord(
            id="CA10000000000000000000000000000004",
            kind="leg",
            provider="twilio",
            status="unanswered",
            started_at=day + timedelta(hours=11),
            ended_at=day + timedelta(hours=11, seconds=20),
        )
    )
    path = tmp_path / "legs.csv"
    write_records(path, records)
    return HistorySource(records=path)


def test_reconcile_flags_the_overcharged_line(tmp_path: Path) -> None:
    result = reconcile("twilio-voice", STATEMENT, _statement_legs(tmp_path), costs=COSTS)
    assert result.summary.flagged_lines == 1 and result.summary.seconds_flagged_lines == 0
    assert result.summary.money is not None and result.summary.money["price_flagged_lines"] == 1
    assert (
        reconcile(
            "twilio-voice", STATEMENT, _statement_legs(tmp_path), money_tolerance=Decimal("0.05")
        ).summary.seconds_flagged_lines
        == 0
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"tolerance": "soon"}, "--tolerance 'soon': not a number of seconds"),
        ({"window": "-1"}, "--window '-1': must be a non-negative number of seconds"),
        ({"tally": "ours"}, "--tally 'ours': must be tally or profile"),
        ({"costs": COSTS, "rate": "0.01"}, "give --costs CARD or --rate PRICE, not both"),
        ({"cost_entry": "twilio-voice"}, "--cost-entry names an entry of --costs CARD"),
        ({"rate": "cheap"}, "--rate 'cheap': not a price"),
    ],
)
def test_reconcile_refuses_bad_options(tmp_path: Path, options: dict[str, object], message: str) -> None:
    with pytest.raises(InputError, match=message):
        reconcile("twilio-voice", STATEMENT, _statement_legs(tmp_path), **options)  # type: ignore[arg-type]


def test_reconcile_needs_exactly_one_history() -> None:
    with pytest.raises(InputError, match="give exactly one of --records FILE or --store URL"):
        reconcile("twilio-voice", STATEMENT, HistorySource())
