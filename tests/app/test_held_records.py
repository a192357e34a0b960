"""``talktime.app.held_records``: the records the guards hold back are those ``talktime invoice`` names, month
by month, each with what it would bill; the month's totals are the draft's and ``--allow-flagged``'s."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from talktime.app.held_records import FIXES, HeldMonth, fields_to_check, held_records
from talktime.app.invoice import invoice_of_records
from talktime.core.plausibility import REASONS
from talktime.core.records import UsageRecord
from talktime.synth import synthetic_month

PRICES = Path("plan-call-minute.toml")
NOW = datetime(2026, 11, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def records() -> list[UsageRecord]:
    """90 calls of October 2026; call 1's caller "ends" in 2035, call 3's stream has more speech than audio
    (both held back)."""
    found = list(synthetic_month(90, seed=7, whole_call=True))
    for i, record in enumerate(found):
        if record.session == "call-000001" and record.id.endswith("-caller"):
            assert record.ended_at is not None
            found[i] = dataclasses.replace(record, ended_at=record.ended_at.replace(year=2035))
        if record.session == "call-000003" and record.kind == "stream":
            assert record.audio_seconds is not None
            found[i] = dataclasses.replace(record, speech_seconds=record.audio_seconds + 30)
    return found


def test_each_held_record_with_its_reasons_and_what_it_would_bill(records: list[UsageRecord]) -> None:
    months = {m.customer: m for c in ("acme-health", "blue-bank") for m in _held(records, c)}
    runaway = months["blue-bank"].records  # call 1 is blue-bank's, call 3 acme-health's (customers in turn)
    assert [h.record.id for h in runaway] == ["call-000001-caller"]
    (held,) = runaway
    assert held.codes == ("call-too-long",) and "over the 24 h limit" in held.reasons[0]
    (share,) = held.would_bill
    assert share.unit == "minute" and share.billable > Decimal(4_000_000)  # nine years of minutes
    assert share.amount == held.amount > 0
    draft = invoice_of_records(records, PRICES, "blue-bank", "2026-10", now=NOW)
    whole = invoice_of_records(records, PRICES, "blue-bank", "2026-10", allow_flagged=True, now=NOW)
    month = months["blue-bank"]
    assert (month.total, month.total_with_held) == (draft.total.amount, whole.total.amount)
    assert month.left_out == whole.total.amount - draft.total.amount > 0
    assert [h.record.id for h in months["acme-health"].records] == ["call-000003-stt"]
    assert months["acme-health"].records[0].would_bill == ()  # no line of the plan prices a stream
    assert months["acme-health"].left_out == 0


def test_a_customer_with_nothing_held_has_no_month(records: list[UsageRecord]) -> None:
    assert _held(records, "cobalt-retail") == []


def test_the_guards_file_decides_what_is_held(records: list[UsageRecord], tmp_path: Path) -> None:
    guards = tmp_path / "guards.toml"
    guards.write_text("max_call_hours = 100000\n")
    assert _held(records, "blue-bank", guards=guards) == []


def test_a_month_finalised_in_the_ledger_holds_nothing_back(
    records: list[UsageRecord], tmp_path: Path
) -> None:
    from talktime.core.invoicing.invoice import finalise
    from talktime.io.invoices import store_finalised

    ledger = tmp_path / "ledger"
    whole = invoice_of_records(records, PRICES, "blue-bank", "2026-10", allow_flagged=True, now=NOW)
    store_finalised(ledger, finalise(whole, NOW))
    assert _held(records, "blue-bank", ledger=ledger) == []


def test_every_reason_names_the_fields_to_check() -> None:
    assert set(FIXES) == set(REASONS)
    assert fields_to_check(["speech-longer-than-audio", "audio-longer-than-call"]) == (
        "speech_seconds",
        "audio_seconds",
        "ended_at",
    )


def _held(
    records: list[UsageRecord], customer: str, *, guards: Path | None = None, ledger: Path | None = None
) -> list[HeldMonth]:
    return held_records(records, PRICES, customer, ["2026-10"], guards=guards, ledger=ledger, now=NOW)
