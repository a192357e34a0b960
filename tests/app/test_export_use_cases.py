"""``talktime.app.exports`` called directly: a month's invoice lines and FOCUS rows are ``talktime invoice``'s
drafts line for line, with the same guards (a flagged record held back unless ``allow_flagged``), the same
refusal of an unknown customer, and the same checks before any record is read.

History: the hand-checked Twilio legs of tests/simulate (customer a: 45 s; b: 61 s and 10 s), sold at
$0.10 per Twilio minute; b also has a call of 30 hours, which the default guards (24 h) flag."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from app.test_billing_use_cases import PRICES  # the same plan: $0.10 per Twilio minute
from talktime.app.exports import focus, invoice_lines
from talktime.app.history import HistorySource
from talktime.app.invoice import invoice
from talktime.core.records import UsageRecord
from talktime.errors import InputError
from talktime.io.records_io import write_records

COSTS = Path("costs-informative.toml")
NOW = datetime(2027, 1, 15, tzinfo=UTC)


@pytest.fixture
def prices(tmp_path: Path) -> Path:
    path = tmp_path / "prices.toml"
    path.write_text(PRICES, encoding="utf-8")
    return path


@pytest.fixture
def history(tmp_path: Path, legs: list[UsageRecord]) -> HistorySource:
    path = tmp_path / "history.csv"
    long = replace(legs[1], id="b-long", session="b-long", ended_at=legs[1].started_at + timedelta(hours=30))
    write_records(path, [*legs, long])
    return HistorySource(records=path)


def _totals(rows: list[dict[str, object]]) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = {}
    for row in rows:
        customer = str(row["customer"])
        amount = row["amount"]
        assert isinstance(amount, Decimal)
        totals[customer] = totals.get(customer, Decimal(0)) + amount
    return totals


def _billed(rows: list[dict[str, object]], side: str) -> list[Decimal]:
    found = [row["BilledCost"] for row in rows if row["x_Side"] == side]
    assert all(isinstance(cost, Decimal) for cost in found)
    return sorted(cost for cost in found if isinstance(cost, Decimal))


def test_invoice_lines_are_the_invoices_drafts_with_the_flagged_call_held_back(
    history: HistorySource, prices: Path
) -> None:
    made = invoice_lines("2026-12", history, prices, now=NOW)

    assert _totals(made.rows) == {"a": Decimal("0.10"), "b": Decimal("0.30")}
    for customer, total in _totals(made.rows).items():
        assert invoice(history, prices, customer, "2026-12", now=NOW).total.amount == total
    assert [(i.customer, [rid for rid, _ in i.held]) for i in made.held] == [("b", ["b-long"])]


def test_allow_flagged_bills_the_flagged_call_as_invoice_does(history: HistorySource, prices: Path) -> None:
    made = invoice_lines("2026-12", history, prices, allow_flagged=True, now=NOW)

    billed = invoice(history, prices, "b", "2026-12", allow_flagged=True, now=NOW).total.amount
    assert _totals(made.rows)["b"] == billed == Decimal("0.30") + Decimal("180.00")  # 1,800 more minutes
    assert made.held == []


def test_focus_price_side_adds_up_to_the_drafts_and_the_cost_side_bills_every_call(
    history: HistorySource, prices: Path
) -> None:
    made = focus("2026-12", history, costs=COSTS, prices=prices, customers=["b"], now=NOW)

    assert _billed(made.rows, "price") == [Decimal("0.30")]
    assert [i.customer for i in made.invoices] == ["b"]
    # the cost side is every call's (guards hold back from invoices, not from what providers charge)
    assert _billed(made.rows, "cost") == [Decimal("0.0085"), 1803 * Decimal("0.0085")]
    assert made.uncosted == []


def test_refusals_come_before_any_record_is_read(tmp_path: Path, prices: Path) -> None:
    nowhere = HistorySource(records=tmp_path / "missing.csv")
    with pytest.raises(InputError, match=r"needs --costs .* --prices .* or both"):
        focus("2026-12", nowhere, now=NOW)
    with pytest.raises(InputError, match="2026-13"):
        invoice_lines("2026-13", nowhere, prices, now=NOW)
    with pytest.raises(InputError, match="exactly one of --records FILE or --store URL"):
        invoice_lines("2026-12", HistorySource(), prices, now=NOW)


def test_an_unknown_customer_is_refused_as_invoice_refuses_it(history: HistorySource, prices: Path) -> None:
    with pytest.raises(InputError, match=r"customer 'bb' is in neither.*did you mean 'b'"):
        invoice_lines("2026-12", history, prices, customers=["bb"], now=NOW)
