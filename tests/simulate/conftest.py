"""Shared helpers for the what-if tests: a tiny hand-checkable history of Twilio legs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from talktime.core.records import UsageRecord
from talktime.io.records_io import write_records

START = datetime(2026, 12, 1, 9, tzinfo=UTC)


def leg(record_id: str, customer: str, seconds: int, minute: int) -> UsageRecord:
    began = START + timedelta(minutes=minute)
    return UsageRecord(
        id=record_id,
        customer=customer,
        session=record_id,
        provider="twilio",
        product="voice",
        kind="leg",
        started_at=began,
        answered_at=began,
        ended_at=began + timedelta(seconds=seconds),
    )


@pytest.fixture
def history() -> list[UsageRecord]:
    """Customer a: one 45 s call. Customer b: a 61 s call and a 10 s call."""
    return [leg("a-1", "a", 45, 0), leg("b-1", "b", 61, 5), leg("b-2", "b", 10, 10)]


@pytest.fixture
def history_file(tmp_path: Path, history: list[UsageRecord]) -> Path:
    path = tmp_path / "history.csv"
    write_records(path, history)
    return path


PRICE_CARD = """
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


@pytest.fixture
def price_file(tmp_path: Path) -> Path:
    path = tmp_path / "prices.toml"
    path.write_text(PRICE_CARD, encoding="utf-8")
    return path
