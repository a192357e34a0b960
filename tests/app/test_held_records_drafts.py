"""``held_records`` given the months' drafts made already (the dashboard's invoices job) lists exactly what it
lists without them, and reads the records only for a customer whose draft holds some back, once."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import pytest

from talktime.app.held_records import held_records
from talktime.app.month_invoices import customer_invoices
from talktime.core.records import UsageRecord
from talktime.synth import synthetic_month

PRICES = Path("plan-call-minute.toml")
NOW = datetime(2026, 11, 30, tzinfo=UTC)
PERIODS = ["2026-09", "2026-10"]


@pytest.fixture(scope="module")
def records() -> list[UsageRecord]:
    """90 calls of October 2026; call 1's caller (blue-bank's) "ends" in 2035: held back."""
    found = list(synthetic_month(90, seed=7, whole_call=True))
    for i, record in enumerate(found):
        if record.session == "call-000001" and record.id.endswith("-caller"):
            assert record.ended_at is not None
            found[i] = dataclasses.replace(record, ended_at=record.ended_at.replace(year=2035))
    return found


@pytest.mark.parametrize(("customer", "reads"), [("blue-bank", 1), ("cobalt-retail", 0)])
def test_the_drafts_made_already_give_the_same_held_months(
    records: list[UsageRecord], customer: str, reads: int
) -> None:
    drafts = customer_invoices(records, PRICES, customer, PERIODS, now=NOW)
    read: list[int] = []

    def reader() -> list[UsageRecord]:
        read.append(1)
        return records

    reused = held_records(reader, PRICES, customer, PERIODS, now=NOW, drafts=drafts)
    assert reused == held_records(records, PRICES, customer, PERIODS, now=NOW)
    assert len(read) == reads, "records read once for a month holding some back, never otherwise"
    assert [m.period for m in reused] == (["2026-10"] if reads else [])


def test_a_month_without_a_draft_is_rated_here(records: list[UsageRecord]) -> None:
    drafts = customer_invoices(records, PRICES, "blue-bank", ["2026-09"], now=NOW)  # October's missing
    reused = held_records(lambda: records, PRICES, "blue-bank", PERIODS, now=NOW, drafts=drafts)
    assert reused == held_records(records, PRICES, "blue-bank", PERIODS, now=NOW) != []
