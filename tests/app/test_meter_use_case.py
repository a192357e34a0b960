"""``talktime.app.meter`` and ``talktime.app.explain`` called directly, as any face calls them: the engine
and the reference give the same totals, a summary needs no records, and the explain lines are the README's.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from talktime.app.explain import explain
from talktime.app.meter import metering
from talktime.errors import InputError, RecordError
from talktime.io.results import totals_dict

EXAMPLE = Path(__file__).parents[2] / "examples" / "records.csv"


def _run(
    policy: str, engine: str | None, summary: bool = False
) -> tuple[list[tuple[str, str]], dict[str, object]]:
    with metering(EXAMPLE, policy, engine=engine, summary=summary) as run:
        billed = [(m.id, str(m.billable_seconds)) for m in run.records]
        return billed, totals_dict(run.totals)


@pytest.mark.parametrize("policy", ["twilio-voice", "deepgram-streaming", "openai-chat"])
def test_duckdb_bills_what_the_reference_bills(policy: str) -> None:
    engine_records, engine_totals = _run(policy, None)
    reference_records, reference_totals = _run(policy, "reference")
    assert engine_records == reference_records and engine_records
    assert engine_totals == reference_totals


def test_a_summary_gives_the_totals_without_records() -> None:
    records, totals = _run("twilio-voice", "duckdb", summary=True)
    assert records == []
    assert totals == _run("twilio-voice", "reference")[1]


def test_engine_records_carry_the_reference_trail() -> None:
    with metering(EXAMPLE, "twilio-voice") as run:
        leg = next(m for m in run.records if m.id == "leg-1")
    assert leg.trail() == "answered 47.3 s -> 60/60 up -> 60 s"


def test_explain_reads_as_the_readme_shows() -> None:
    found = explain(EXAMPLE, "twilio-voice", "leg-1")
    assert found.lines() == [
        "record leg-1 under twilio-voice (version 2021-07-08), meter twilio-voice-minutes",
        "  1. basis      answered: 47.3 s",
        "  2. rounding   60/60 up: 47.3 s -> 60 s",
        "actual 47.3 s, provider-reported 48 s, billable 60 s = 1 minute(s)",
        "answered 47.3 s -> 60/60 up -> 60 s",
    ]


def test_explain_gives_one_item_per_part() -> None:
    found = explain(EXAMPLE, "openai-chat", "llm-1")
    assert [item.meter for item in found.items] == [
        "openai-chat-tokens-input",
        "openai-chat-tokens-cached-input",
        "openai-chat-tokens-output",
    ]


def test_an_unknown_record_is_named() -> None:
    with pytest.raises(InputError, match="no record with id 'nope'"):
        explain(EXAMPLE, "twilio-voice", "nope")


def test_a_bad_record_names_its_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    row = lines[1].split(",")
    row[header.index("started_at")] = "yesterday"
    bad.write_text("\n".join([lines[0], ",".join(row)]) + "\n", encoding="utf-8")
    with (
        pytest.raises(RecordError, match=r"bad\.csv.*line 2"),
        metering(bad, "twilio-voice", engine="reference") as run,
    ):
        list(run.records)
