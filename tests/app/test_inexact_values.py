"""A record with a value the engines' typed columns cannot hold (seconds with more than 6 decimals, as a
Python SDK's float ``0.1 + 0.2`` arrives as ``0.30000000000000004``; a count past 64 bits) is metered exactly
by every command that meters, and blocks nothing: the default engine (``auto``) falls back to the reference,
an explicit ``--engine duckdb`` refuses it naming the file, line, record and field (exit 2, no traceback),
and a Parquet record file keeps it whole (its ``_exact`` column). Until this change each of these crashed
with Arrow's "Rescaling Decimal value would cause data loss".

History: two Deepgram streams of customer acme in October 2026, one of 61.30000000000000004 s of audio (a
float sent as is) and one of 30.5 s, beside a Twilio leg. deepgram-streaming bills audio seconds exactly (1
s minimum), so the streams bill 91.80000000000000004 s: a total that keeps the 17th decimal.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from support.fixtures import postgres_server, postgres_url  # noqa: F401  (fixtures)
from support.stored import store_records
from talktime.app.history import HistorySource
from talktime.app.margin import MarginBy, margin
from talktime.cli.main import app
from talktime.core.records import UsageRecord, parse_record
from talktime.engine.sources import canonical_parquet
from talktime.io.records_io import BeyondTypedLayout, read_records, write_records

COSTS = "src/talktime/ratecards/costs-informative.toml"
PRICES = """
kind = "price"
name = "stt minutes (tests)"
currency = "USD"
timezone = "UTC"
[components.stt]
policy = "deepgram-streaming"
match = { kind = ["stream"] }
[[components.stt.versions]]
effective_from = 2020-01-01
model = "per_unit"
unit_price = "0.60"
"""
FLOAT = "61.30000000000000004"  # more than 6 decimals: past the engines' microseconds
EXACT_TOTAL = "91.80000000000000004"  # 61.30000000000000004 + 30.5, every digit kept
ROWS = [
    {
        "id": "leg-1",
        "customer": "acme",
        "provider": "twilio",
        "product": "voice",
        "session": "call-1",
        "kind": "leg",
        "started_at": "2026-10-01T10:00:00Z",
        "answered_at": "2026-10-01T10:00:05Z",
        "ended_at": "2026-10-01T10:02:00Z",
    },
    {
        "id": "stt-1",
        "customer": "acme",
        "provider": "deepgram",
        "product": "streaming",
        "session": "call-1",
        "kind": "stream",
        "started_at": "2026-10-01T10:00:05Z",
        "ended_at": "2026-10-01T10:02:00Z",
        "audio_seconds": FLOAT,
    },
    {
        "id": "stt-2",
        "customer": "acme",
        "provider": "deepgram",
        "product": "streaming",
        "session": "call-2",
        "kind": "stream",
        "started_at": "2026-10-02T10:00:05Z",
        "ended_at": "2026-10-02T10:01:00Z",
        "audio_seconds": "30.5",
    },
]
NAMED = "line 2, record 'stt-1': field 'audio_seconds': 61.30000000000000004 has more than 6 decimals"

runner = CliRunner()


@pytest.fixture
def history(tmp_path: Path) -> Path:
    """The history as JSON Lines with the float written as a JSON number, as an SDK sends it."""
    path = tmp_path / "calls.jsonl"
    lines = [json.dumps(row).replace(f'"{FLOAT}"', FLOAT) for row in ROWS]
    assert FLOAT in lines[1] and f'"{FLOAT}"' not in lines[1]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def prices(tmp_path: Path) -> Path:
    path = tmp_path / "prices.toml"
    path.write_text(PRICES)
    return path


def talktime(*args: str | Path) -> Any:
    result = runner.invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output, result.output
    return result


def written_json(out: Path, *args: str | Path) -> Any:
    """The command's JSON, written to ``out`` (exit 0 asserted)."""
    result = talktime(*args, "--format", "json", "--out", out)
    assert result.exit_code == 0, result.output
    return json.loads(out.read_text())


def test_meter_bills_every_digit_by_default_and_duckdb_names_the_record(
    history: Path, tmp_path: Path
) -> None:
    default = written_json(tmp_path / "a.json", "meter", history, "--policy", "deepgram-streaming")
    reference = written_json(
        tmp_path / "b.json", "meter", history, "--policy", "deepgram-streaming", "--engine", "reference"
    )
    assert default == reference
    totals = default["totals"]["meters"]["deepgram-streaming-minutes"]
    assert (totals["actual_seconds"], totals["billable_seconds"]) == (EXACT_TOTAL, EXACT_TOTAL)
    assert [r["billable_seconds"] for r in default["records"] if r["id"] == "stt-1"] == [FLOAT]
    summary = written_json(
        tmp_path / "c.json", "meter", history, "--policy", "deepgram-streaming", "--summary"
    )
    assert summary["totals"] == default["totals"]
    refused = talktime("meter", history, "--policy", "deepgram-streaming", "--engine", "duckdb", "--summary")
    assert refused.exit_code == 2
    assert f"{history} {NAMED}" in " ".join(refused.output.split()), refused.output


def test_margin_rates_it_on_the_reference_by_default_and_duckdb_refuses_by_name(
    history: Path, prices: Path, tmp_path: Path
) -> None:
    for by in ("customer", "provider", "session"):
        auto = written_json(
            tmp_path / f"auto-{by}.json", "margin", "--records", history, "--costs", COSTS,
            "--prices", prices, "--by", by,
        )  # fmt: skip
        reference = written_json(
            tmp_path / f"ref-{by}.json", "margin", "--records", history, "--costs", COSTS,
            "--prices", prices, "--by", by, "--engine", "reference",
        )  # fmt: skip
        assert auto == reference, by
    notes: list[str] = []
    report = margin(HistorySource(history), Path(COSTS), prices, by=MarginBy.provider, note=notes.append)
    deepgram = next(r for r in report.view.rows if r["provider"] == "deepgram-streaming")
    # minutes (JSON shows 12 decimals): 91.80000000000000004 s / 60, not the 1.53 of 91.8 s
    assert str(deepgram["quantity"]).startswith("1.5300000000000000006666"), deepgram["quantity"]
    assert len(notes) == 1 and NAMED in notes[0], notes
    refused = talktime(
        "margin", "--records", history, "--costs", COSTS, "--prices", prices, "--engine", "duckdb"
    )
    assert refused.exit_code == 2
    assert NAMED in " ".join(refused.output.split()), refused.output


def test_compare_meters_it_exactly(history: Path, tmp_path: Path) -> None:
    args: list[str | Path] = [
        "compare",
        "--from",
        "deepgram-streaming",
        "--to",
        "assemblyai-streaming",
        "--records",
        history,
    ]
    for folder, engine in (("a", "auto"), ("b", "reference")):
        done = talktime(
            *args, "--costs", COSTS, "--engine", engine, "--format", "json", "--out", tmp_path / folder
        )
        assert done.exit_code == 0, done.output
    auto, reference = (json.loads((tmp_path / f / "compare.json").read_text()) for f in "ab")
    notes = auto.pop("notes")
    reference.pop("notes")
    assert auto == reference
    assert any(NAMED in n for n in notes), notes
    assert FLOAT in json.dumps(auto)
    refused = talktime(*args, "--costs", COSTS, "--engine", "duckdb")
    assert refused.exit_code == 2 and NAMED in " ".join(refused.output.split()), refused.output


def test_simulate_refuses_it_by_name_instead_of_a_traceback(history: Path) -> None:
    refused = talktime("simulate", "--policies", "deepgram-streaming", "--records", history, "--costs", COSTS)
    assert refused.exit_code == 2
    assert NAMED in " ".join(refused.output.split()), refused.output


def _invoice(out: Path, *source: str | Path, prices: Path) -> Any:
    invoice = written_json(
        out, "invoice", *source, "--customer", "acme", "--period", "2026-10", "--prices", prices
    )
    (line,) = [x for x in invoice["lines"] if x["meter"] == "stt"]
    return line


@pytest.fixture(params=["duckdb", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "duckdb":
        return str(tmp_path / "events.duckdb")
    return str(request.getfixturevalue("postgres_url"))


def test_a_store_holding_it_gives_the_files_numbers(
    history: Path, prices: Path, store: str, tmp_path: Path
) -> None:
    store_records(store, "t1", read_records(history))
    source = ["--store", store, "--tenant", "t1"]
    line = _invoice(tmp_path / "i.json", *source, prices=prices)
    assert (line["actual_base"], line["billable_base"]) == (EXACT_TOTAL, EXACT_TOTAL)
    assert line == _invoice(tmp_path / "f.json", "--records", history, prices=prices)
    for by in ("customer", "provider"):
        stored = written_json(
            tmp_path / f"s-{by}.json", "margin", *source, "--costs", COSTS, "--prices", prices, "--by", by
        )
        from_file = written_json(
            tmp_path / f"r-{by}.json", "margin", "--records", history, "--costs", COSTS, "--prices", prices,
            "--by", by, "--engine", "reference",
        )  # fmt: skip
        assert stored["rows"] == from_file["rows"], by
    # The engines' refusal names the store the user gave, not the temporary file its records went to.
    refused = talktime("margin", *source, "--costs", COSTS, "--prices", prices, "--engine", "duckdb")
    assert refused.exit_code == 2
    said = " ".join(refused.output.split())
    assert f"--store {store} (tenant t1)" in said and "history.parquet" not in said, said


def _record(**values: Any) -> UsageRecord:
    return parse_record(
        {"id": "r", "started_at": "2026-10-01T10:00:00Z", "ended_at": "2026-10-01T10:01:00Z", **values}
    )


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"audio_seconds": "0.30000000000000004"}, "audio_seconds"),
        ({"speech_seconds": "1000000000000"}, "speech_seconds"),  # 10^12 s: past DECIMAL(18,6)
        ({"input_tokens": str(2**70)}, "input_tokens"),  # past 64 bits
    ],
)
def test_a_parquet_record_file_keeps_it_whole_and_the_engines_name_it(
    values: dict[str, str], field: str, tmp_path: Path
) -> None:
    records = [_record(id="fine", audio_seconds="2.5"), _record(**values)]
    path = tmp_path / "r.parquet"
    write_records(path, records)
    assert list(read_records(path)) == records
    with (
        pytest.raises(BeyondTypedLayout, match=rf"r.parquet row 2, record 'r': field '{field}'"),
        canonical_parquet(path, []),
    ):
        pass
    with canonical_parquet(path, [], numbers=False) as scanned:  # times alone: scanned as it is
        assert scanned.path == path
