"""Totals and the rows a totals table shows: records a policy does not count are listed, never measured,
and a record metered under several parts counts once.

Numbers are worked out by hand from the records below.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from talktime.core.metering.meter import NOT_COUNTED, Totals, meter_iter, summarize
from talktime.core.metering.summary import summary_rows
from talktime.core.records import UsageRecord, parse_record
from talktime.engine.backends import DuckDBEngine
from talktime.io.records_io import write_records
from talktime.providers import builtin


def record(id: str, kind: str, reported: str = "", **fields: str) -> UsageRecord:
    row: dict[str, Any] = {
        "id": id,
        "kind": kind,
        "status": "completed",
        "started_at": "2026-10-01T09:00:00Z",
        "answered_at": "2026-10-01T09:00:05Z",
        "ended_at": "2026-10-01T09:00:50Z",
        "provider_reported_seconds": reported,
        **fields,
    }
    return parse_record(row)


# twilio-voice bills legs, 60/60 up from answer. leg-a: 45 s answered -> 60 s, the carrier says 46 s.
# leg-b: 45 s -> 60 s, no provider figure. stream-c: not a leg, not counted, though it carries 999 s.
LEGS = [
    record("leg-a", "leg", reported="46"),
    record("leg-b", "leg"),
    record("stream-c", "stream", reported="999"),
]
# openai-chat meters three parts of each llm record; the leg is not counted.
LLM = [
    record("llm-1", "llm", input_tokens="1000", cached_input_tokens="200", output_tokens="50"),
    record("llm-2", "llm", input_tokens="10", output_tokens="5"),
    record("leg-x", "leg", reported="30"),
]


def added(records: list[UsageRecord], policy_id: str) -> Totals:
    """Totals as `talktime meter` builds them: one metered row after another."""
    policy = builtin(policy_id)
    totals = Totals.for_policy(policy)
    for metered in meter_iter(records, policy):
        totals.add(metered)
    return totals


def cells(totals: Totals) -> dict[str, tuple[str, ...]]:
    return {row.meter: row.cells()[1:] for row in summary_rows(totals)}


def test_records_not_counted_are_listed_not_measured() -> None:
    rows = cells(added(LEGS, "twilio-voice"))
    # records, actual, provider-reported, billable s, billable minutes
    assert rows[NOT_COUNTED] == ("1", "-", "-", "0", "0")
    assert rows["twilio-voice-minutes"] == ("2", "90", "46 (1 of 2 records)", "120", "2")
    # every record read; the stream's 999 s are in no sum
    assert rows["all"] == ("3", "90", "46 (1 of 2 records)", "120", "2")


def test_no_provider_figure_is_a_dash_not_zero() -> None:
    rows = cells(added([record("leg-b", "leg")], "twilio-voice"))
    assert rows["all"][2] == "-"


def test_every_record_with_a_figure_shows_the_plain_sum() -> None:
    rows = cells(added([record("leg-a", "leg", reported="46")], "twilio-voice"))
    assert rows["all"][2] == "46"


def test_a_record_under_several_parts_counts_once() -> None:
    totals = added(LLM, "openai-chat")
    assert totals.all.records == 3, "3 records, not 3 x 3 part rows"
    assert totals.meters[NOT_COUNTED].records == 1, "the leg once, not once per part"
    assert totals.meters["openai-chat-tokens-input"].records == 2
    # 800 + 10 uncached input, 200 cached, 55 output
    assert totals.all.billable_seconds == Decimal(800 + 10 + 200 + 55)
    assert totals.all.provider_reported_records == 0, "the leg's figure is not this product's"


def test_rows_added_one_by_one_are_the_streamed_summary() -> None:
    for records, policy_id in ((LLM, "openai-chat"), (LEGS, "twilio-voice")):
        assert cells(added(records, policy_id)) == cells(summarize(records, builtin(policy_id)))


def test_the_engine_totals_are_the_reference_rows(tmp_path: Path) -> None:
    path = tmp_path / "records.parquet"
    write_records(path, LLM + LEGS[:2])
    engine = DuckDBEngine()
    try:
        for policy_id in ("openai-chat", "twilio-voice"):
            reference = added(LLM + LEGS[:2], policy_id)
            assert cells(engine.totals(path, builtin(policy_id))) == cells(reference), policy_id
    finally:
        engine.close()
