"""Count policies at their edges: what a policy may not say, and records whose parts exceed their totals,
in the reference meter and on the DuckDB engine alike."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from talktime.core.metering.meter import meter_records
from talktime.core.metering.policy import policy_from_dict
from talktime.core.records import parse_record
from talktime.engine.backends import DuckDBEngine
from talktime.errors import PolicyError, RecordError
from talktime.io.records_io import write_records

SUBTRACTING = {
    "id": "tokens",
    "name": "tokens",
    "unit": "token",
    "versions": [
        {
            "effective_from": "2024-01-01",
            "basis": {
                "input_tokens": 1,
                "cached_input_tokens": -1,
                "audio_input_tokens": -1,
                "cache_write_tokens": -1,
            },
        }
    ],
}


def record(status: str = "completed", **counts: int) -> Any:
    return parse_record(
        {
            "id": "r1",
            "kind": "llm",
            "status": status,
            "started_at": "2026-10-01T00:00:00Z",
            "ended_at": "2026-10-01T00:00:01Z",
            **{k: str(v) for k, v in counts.items()},
        }
    )


def test_a_count_policy_may_not_cap_open_sessions() -> None:
    data = {**SUBTRACTING, "versions": [{**SUBTRACTING["versions"][0], "open_cap_seconds": "3600"}]}
    with pytest.raises(PolicyError, match="open_cap_seconds caps time"):
        policy_from_dict(data)


def test_a_rule_may_not_replace_the_bases_of_parts() -> None:
    data = {
        "id": "llm",
        "name": "llm",
        "unit": "token",
        "parts": [{"name": "input", "basis": "input_tokens"}, {"name": "output", "basis": "output_tokens"}],
        "versions": [
            {
                "effective_from": "2024-01-01",
                "basis": "input_tokens",
                "rules": [{"name": "x", "when": {"attr.model": "m"}, "set": {"basis": "characters"}}],
            }
        ],
    }
    with pytest.raises(PolicyError, match="may not set the basis of a policy with parts"):
        policy_from_dict(data)


def _engine_error(tmp_path: Path, rec: Any) -> RecordError:
    path = tmp_path / "r.parquet"
    write_records(path, [rec])
    engine = DuckDBEngine()
    try:
        with pytest.raises(RecordError) as caught:
            list(engine.meter(path, policy_from_dict(SUBTRACTING)))
    finally:
        engine.close()
    return caught.value


def test_a_negative_count_names_a_field_the_record_has(tmp_path: Path) -> None:
    """No cached tokens at all: the audio and cache-write parts are what overflow the input."""
    rec = record(input_tokens=100, audio_input_tokens=80, cache_write_tokens=50)
    with pytest.raises(RecordError) as caught:
        meter_records([rec], policy_from_dict(SUBTRACTING))
    assert caught.value.field == "audio_input_tokens" and "negative count (-30)" in str(caught.value)
    on_engine = _engine_error(tmp_path, rec)
    assert on_engine.field == "audio_input_tokens" and "negative count (-30)" in str(on_engine)


def test_a_record_not_billed_whose_parts_exceed_its_totals_counts_nothing(tmp_path: Path) -> None:
    rec = record(status="failed", cached_input_tokens=50)
    metered = meter_records([rec], policy_from_dict(SUBTRACTING))[0]
    assert (metered.actual_seconds, metered.billable_seconds) == (Decimal(0), Decimal(0))
    assert "not counted" in metered.trail()
    path = tmp_path / "r.parquet"
    write_records(path, [rec])
    engine = DuckDBEngine()
    try:
        (on_engine,) = engine.meter(path, policy_from_dict(SUBTRACTING))
        totals = engine.totals(path, policy_from_dict(SUBTRACTING))
    finally:
        engine.close()
    assert (on_engine.actual_seconds, on_engine.billable_seconds) == (Decimal(0), Decimal(0))
    assert totals.all.actual_seconds == Decimal(0)
