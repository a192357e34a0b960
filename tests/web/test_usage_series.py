"""The usage series the dashboard draws: DuckDB's equals the per-record reference's, point for point, and
its billable minutes are the minutes ``margin`` sells."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from pathlib import Path

from talktime.app.calls import added_up, call_margins
from talktime.app.usage_series import usage_series, usage_series_reference
from talktime.io.records_io import read_records, write_records
from talktime.synth import synthetic_month

COSTS = Path("costs-informative.toml")
PRICES = Path("plan-call-minute.toml")


def test_duckdb_and_the_reference_agree(tmp_path: Path) -> None:
    records = list(synthetic_month(120, seed=11, whole_call=True))
    leg = next(r for r in records if r.kind == "leg")
    records.append(dataclasses.replace(leg, id="uncosted-leg", provider="acme-carrier"))
    path = tmp_path / "month.parquet"
    write_records(path, records)
    fast = usage_series(path, COSTS, PRICES)
    slow = usage_series_reference(read_records(path), COSTS, PRICES)
    assert fast == slow
    meters = {p.meter for p in fast.by_provider}
    # every part of a priced LLM call has its own points, in tokens
    assert {"openai-chat-tokens-input", "openai-chat-tokens-output"} <= meters
    assert {p.unit for p in fast.by_provider if p.meter.startswith("openai")} == {"token"}
    # the billable minutes per customer are the minutes the margin report sells
    sold: dict[str, Decimal] = {}
    for row in added_up(call_margins(path, COSTS, PRICES), "customer").rows:  # a row per customer month
        minutes = row["minutes"]
        assert isinstance(minutes, Decimal)
        sold[str(row["customer"])] = sold.get(str(row["customer"]), Decimal(0)) + minutes
    billable: dict[str, Decimal] = {}
    for p in fast.by_customer:
        billable[p.key] = billable.get(p.key, Decimal(0)) + p.billable / 60
    assert billable == sold
    assert all(p.billable >= p.actual for p in fast.by_customer)  # the plan rounds up: the uplift shows
