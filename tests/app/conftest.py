"""The small hand-checked Twilio history of tests/simulate (customer a: 45 s; b: 61 s and 10 s)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from talktime.core.records import UsageRecord

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
def legs() -> list[UsageRecord]:
    return [leg("a-1", "a", 45, 0), leg("b-1", "b", 61, 5), leg("b-2", "b", 10, 10)]
