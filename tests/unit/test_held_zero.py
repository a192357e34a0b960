"""A held record that would bill 0.00 still marks its draft INCOMPLETE (docs/guards.md, "On invoices"): its
quantity as it is is the implausible one, so "+0.00" is what it bills unreviewed, not what the month owes.
Here an LLM request over the token limit, which the per-call-minute plan prices at nothing: the draft's total
is the same with it billed, and the draft still says it is incomplete until a person accepts it."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from talktime.core.invoicing.invoice import build_invoice, guarded_invoice
from talktime.core.plausibility import Accepted, Limits, check
from talktime.core.records import UsageRecord
from talktime.io.ratecards import load_price_card

NOW = datetime(2026, 11, 10, tzinfo=UTC)


def _records() -> list[UsageRecord]:
    start = datetime(2026, 10, 10, 8, tzinfo=UTC)
    call = UsageRecord(
        id="caller",
        customer="blue-bank",
        provider="livekit",
        product="rooms",
        kind="participant",
        session="c1",
        started_at=start,
        ended_at=start.replace(minute=3),
    )
    llm = UsageRecord(
        id="runaway-llm",
        customer="blue-bank",
        provider="openai",
        product="gpt-4o-mini",
        kind="llm",
        session="c1",
        started_at=start,
        ended_at=start.replace(minute=1),
        input_tokens=20_000_000,
    )
    return [call, llm]


def test_a_held_record_that_bills_nothing_still_marks_the_draft_incomplete() -> None:
    card = load_price_card(Path("plan-call-minute.toml"))
    records = _records()
    draft = guarded_invoice(records, card, "blue-bank", "2026-10", [], Limits(), NOW)
    billed = build_invoice(records, card, "blue-bank", "2026-10")
    assert [i for i, _ in draft.held] == ["runaway-llm"]
    assert draft.total.amount == billed.total.amount, "as it is, it would add 0.00"
    assert draft.notes[0].startswith("INCOMPLETE: 1 record(s)"), "the total is still not known to be whole"
    llm = records[1]
    accepted = {llm.id: Accepted(frozenset(check(llm, Limits(), NOW)), NOW)}
    reviewed = guarded_invoice(
        records, card, "blue-bank", "2026-10", [], replace(Limits(), accepted=accepted), NOW
    )
    assert not reviewed.held and not any(n.startswith("INCOMPLETE") for n in reviewed.notes)
    assert reviewed.total.amount == draft.total.amount
