"""Invoices: periods in the customer's zone, lines with actual and billable quantities and the policy, JSON
shape, minor-unit rounding, minimum true-up, finalised invoices that never change, and adjustments."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from talktime.core.invoicing.invoice import build_invoice, finalise
from talktime.core.invoicing.periods import month_period, period_label
from talktime.core.rating.cards import PriceCard, price_card_from_dict
from talktime.core.records import UsageRecord, parse_record
from talktime.io.invoices import LedgerError, read_ledger, to_csv, to_json, write_finalised
from talktime.providers import load_policy

D = Decimal
CALL_MINUTE = {
    "id": "call-minute",
    "name": "call minute",
    "unit": "minute",
    "versions": [{"effective_from": "2020-01-01", "rounding": "up", "increment_seconds": 60}],
}


def resolve(spec: object, where: str) -> Any:
    if isinstance(spec, dict):
        from talktime.core.metering.policy import policy_from_dict

        return policy_from_dict(spec, where=where)
    return load_policy(str(spec))


def card(currency: str = "USD", price: str = "0.10", tz: str = "Europe/Berlin", **extra: Any) -> PriceCard:
    data: dict[str, Any] = {
        "kind": "price",
        "currency": currency,
        "timezone": tz,
        "components": {
            "call-minutes": {
                "description": "call minutes",
                "policy": CALL_MINUTE,
                "versions": [{"effective_from": "2020-01-01", "model": "per_unit", "unit_price": price}],
            }
        },
        **extra,
    }
    return price_card_from_dict(data, resolve, where="plan")


def call(record_id: str, start: str, seconds: str, customer: str = "acme") -> UsageRecord:
    began = datetime.fromisoformat(start)
    ended = began + timedelta(microseconds=int(D(seconds).scaleb(6)))
    return parse_record(
        {"id": record_id, "started_at": start, "ended_at": ended.isoformat(), "customer": customer}
    )


def test_a_call_spanning_the_boundary_belongs_to_the_period_it_started_in() -> None:
    # 23:58 on 31 October in Berlin (CET, +01:00) is 22:58 UTC; the call ends in November
    late = call("late", "2026-10-31T22:58:00+00:00", "300")
    first_of_november = call("nov", "2026-10-31T23:00:00+00:00", "60")  # 00:00 on 1 Nov in Berlin
    october = build_invoice([late, first_of_november], card(), "acme", "2026-10")
    november = build_invoice([late, first_of_november], card(), "acme", "2026-11")
    assert october.lines[0].records == 1 and october.lines[0].billable_quantity == 5
    assert november.lines[0].records == 1, "the period is half-open: local midnight on the 1st is November"


def test_periods_are_half_open_in_the_customer_zone() -> None:
    p = month_period("2026-03", "America/New_York")
    assert p.start == datetime(2026, 3, 1, 5, tzinfo=UTC)
    assert p.end == datetime(2026, 4, 1, 4, tzinfo=UTC), "DST started in March: the end is at 04:00 UTC"
    assert p.contains(p.start) and not p.contains(p.end)
    assert period_label(datetime(2026, 4, 1, 3, 59, tzinfo=UTC), "America/New_York") == "2026-03"


def test_invoice_json_carries_the_required_fields_and_both_quantities() -> None:
    invoice = build_invoice([call("a", "2026-10-05T10:00:00+00:00", "134")], card(), "acme", "2026-10")
    data = json.loads(to_json(invoice))
    for key in ("customer", "period_start", "period_end", "currency", "status", "lines", "subtotal", "total"):
        assert key in data
    line = data["lines"][0]
    for key in (
        "meter",
        "description",
        "actual_quantity",
        "billable_quantity",
        "unit",
        "unit_price",
        "amount",
    ):
        assert key in line
    assert line["actual_quantity"] == "2.233333", "2:14 measured"
    assert line["billable_quantity"] == "3", "became 3:00 under 60/60 up"
    assert line["unit_price"] == "0.1" and line["amount"] == "0.30"
    assert "60/60 up" in line["policy"], "the line names the policy that made the minute"
    assert data["status"] == "draft" and data["total"] == "0.30"
    assert data["period_start"] == "2026-10-01T00:00:00+02:00"


def test_csv_has_one_row_per_line_and_totals() -> None:
    invoice = build_invoice([call("a", "2026-10-05T10:00:00+00:00", "60")], card(), "acme", "2026-10")
    rows = to_csv(invoice).strip().splitlines()
    assert rows[0].startswith("invoice,customer,period_start")
    assert rows[-1].endswith("TOTAL,,,,,,,0.10,,,")


@pytest.mark.parametrize(
    ("currency", "price", "seconds", "amount"),
    [
        ("JPY", "15.5", "60", "16"),  # 15.5 yen, half-even -> 16
        ("JPY", "14.5", "60", "14"),  # half-even -> 14
        ("KWD", "0.0125", "60", "0.012"),  # 3 decimals, half-even
        ("USD", "0.005", "60", "0.00"),
    ],
)
def test_lines_round_to_the_currency_minor_unit(currency: str, price: str, seconds: str, amount: str) -> None:
    invoice = build_invoice(
        [call("a", "2026-10-05T10:00:00+00:00", seconds)], card(currency, price), "acme", "2026-10"
    )
    data = json.loads(to_json(invoice))
    assert data["lines"][0]["amount"] == amount
    assert data["lines"][0]["precise_amount"] == price, "the unrounded amount is kept beside it"
    assert data["total"] == amount


def test_minimum_commitment_tops_the_rounded_usage_up_to_the_minimum() -> None:
    plan = card(price="0.105", commitment={"minimum": "1"}, fees={"platform": {"amount": "5"}})
    invoice = build_invoice([call("a", "2026-10-05T10:00:00+00:00", "180")], plan, "acme", "2026-10")
    kinds = [(line.kind, str(line.amount.amount)) for line in invoice.lines]
    assert kinds == [("usage", "0.32"), ("fee", "5.00"), ("commitment", "0.68")], (
        "3 x 0.105 = 0.315 -> 0.32 (half-even); the fee does not count towards the minimum"
    )
    assert invoice.total.amount == D("6.00")


def test_finalised_invoices_never_change(tmp_path: Path) -> None:
    records = [call("a", "2026-10-05T10:00:00+00:00", "60")]
    at = datetime(2026, 11, 2, tzinfo=UTC)
    final = finalise(build_invoice(records, card(), "acme", "2026-10"), at)
    path = write_finalised(tmp_path, final)
    with pytest.raises(LedgerError, match="already finalised"):
        write_finalised(tmp_path, final)
    more = [*records, call("b", "2026-10-06T10:00:00+00:00", "60")]
    again = build_invoice(more, card(), "acme", "2026-10", read_ledger(tmp_path))
    assert again.status == "finalised" and again.total.amount == D("0.10"), "late events do not touch it"
    path.write_text(path.read_text().replace('"0.10"', '"0.01"'))
    with pytest.raises(LedgerError, match="does not match"):
        read_ledger(tmp_path)


def test_late_events_become_an_adjustment_on_the_next_invoice(tmp_path: Path) -> None:
    early = [call("a", "2026-10-05T10:00:00+00:00", "60")]
    write_finalised(tmp_path, finalise(build_invoice(early, card(), "acme", "2026-10"), datetime.now(UTC)))
    late = call("b", "2026-10-30T10:00:00+00:00", "125")  # 3 minutes, arrived after finalisation
    november = build_invoice([*early, late], card(), "acme", "2026-11", read_ledger(tmp_path))
    adjustment = [line for line in november.lines if line.kind == "adjustment"]
    assert len(adjustment) == 1 and adjustment[0].adjusts_period == "2026-10"
    assert adjustment[0].amount.amount == D("0.30"), "re-rated 0.40 minus billed 0.10: a debit"
    assert november.total.amount == D("0.30")
    write_finalised(tmp_path, finalise(november, datetime.now(UTC)))
    december = build_invoice([*early, late], card(), "acme", "2026-12", read_ledger(tmp_path))
    assert not [line for line in december.lines if line.kind == "adjustment"], "already adjusted: no repeat"


def test_a_credit_when_a_record_is_corrected_downwards(tmp_path: Path) -> None:
    first = [call("a", "2026-10-05T10:00:00+00:00", "600")]
    write_finalised(tmp_path, finalise(build_invoice(first, card(), "acme", "2026-10"), datetime.now(UTC)))
    corrected = [call("a", "2026-10-05T10:00:00+00:00", "60")]
    november = build_invoice(corrected, card(), "acme", "2026-11", read_ledger(tmp_path))
    assert november.adjustments.amount == D("-0.90"), "1.00 billed, 0.10 re-rated: a credit"


CALLS = st.lists(
    st.tuples(
        st.integers(0, 30 * 24 * 3600 - 1),  # start, seconds into October (UTC)
        st.integers(0, 3600 * 10**3).map(lambda ms: str(D(ms).scaleb(-3))),  # duration
        st.booleans(),  # arrives late (after the first finalisation)
    ),
    max_size=25,
)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(CALLS, st.sampled_from(["0.10", "0.0137", "7"]), st.sampled_from(["USD", "JPY", "KWD"]))
def test_billing_a_period_in_two_parts_plus_the_adjustment_equals_billing_it_whole(
    tmp_path_factory: pytest.TempPathFactory, calls: list[tuple[int, str, bool]], price: str, currency: str
) -> None:
    ledger = tmp_path_factory.mktemp("ledger")
    plan = card(currency, price, tz="UTC", commitment={"minimum": "1"})
    start = datetime(2026, 10, 1, tzinfo=UTC)
    records = [
        call(f"c{i}", (start + timedelta(seconds=s)).isoformat(), d) for i, (s, d, _) in enumerate(calls)
    ]
    on_time = [r for r, (_, _, late) in zip(records, calls, strict=True) if not late]
    first = finalise(build_invoice(on_time, plan, "acme", "2026-10"), datetime.now(UTC))
    write_finalised(ledger, first)
    november = build_invoice(records, plan, "acme", "2026-11", read_ledger(ledger))
    whole = build_invoice(records, plan, "acme", "2026-10")
    adjusted = first.subtotal.amount + november.adjustments.amount
    if records:
        assert adjusted == whole.subtotal.amount
    else:
        assert november.adjustments.amount == 0
