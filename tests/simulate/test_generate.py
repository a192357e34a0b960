"""Generated calls: the same seed gives the same calls, durations are whole milliseconds, mixes hold."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq

from talktime.core.records import UsageRecord, seconds_between
from talktime.core.simulate.spec import parse_distribution, parse_mix
from talktime.io.records_io import read_records, write_records
from talktime.simulate.generate import write_calls

AT = datetime(2026, 12, 1, tzinfo=UTC)


def _calls(path: Path, spec: str, seed: int, **mixes: str) -> list[dict[str, object]]:
    parsed = {name: parse_mix(value, name) for name, value in mixes.items()}
    write_calls(path, parse_distribution(spec), 2_000, seed=seed, anchor=AT, **parsed)
    return sorted(pq.read_table(path).to_pylist(), key=lambda row: str(row["id"]))


def test_same_seed_same_calls_other_seed_other_calls(tmp_path: Path) -> None:
    spec = "lognormal:mean=90,sigma=0.8"
    first = _calls(tmp_path / "a.parquet", spec, 11, channels="1:0.7,2:0.3")
    again = _calls(tmp_path / "b.parquet", spec, 11, channels="1:0.7,2:0.3")
    other = _calls(tmp_path / "c.parquet", spec, 12, channels="1:0.7,2:0.3")
    assert first == again
    assert [r["audio_seconds"] for r in first] != [r["audio_seconds"] for r in other]


def test_durations_are_whole_milliseconds_and_consistent(tmp_path: Path) -> None:
    path = tmp_path / "calls.parquet"
    _calls(path, "lognormal:mean=60,sigma=1.2", 3)
    for record in read_records(path):  # the reference reader validates every record
        audio = record.audio_seconds
        assert audio is not None and audio == audio.quantize(Decimal("0.001"))
        assert record.ended_at is not None
        assert seconds_between(record.started_at, record.ended_at) == audio


def test_uniform_stays_in_range_and_mean_is_near(tmp_path: Path) -> None:
    rows = _calls(tmp_path / "u.parquet", "uniform:5,15", 1)
    seconds = [Decimal(str(r["audio_seconds"])) for r in rows]
    assert min(seconds) >= 5 and max(seconds) <= 15
    assert abs(sum(seconds, Decimal(0)) / len(seconds) - 10) < Decimal("0.5")
    rows = _calls(tmp_path / "l.parquet", "lognormal:mean=90,sigma=0.8", 1)
    mean = sum((Decimal(str(r["audio_seconds"])) for r in rows), Decimal(0)) / len(rows)
    assert 80 < mean < 100


def test_mixes_give_channels_and_participants(tmp_path: Path) -> None:
    rows = _calls(tmp_path / "m.parquet", "fixed:30", 5, channels="1:0.5,2:0.5", participants="1:0.5,2:0.5")
    stereo = sum(1 for r in rows if r["channels"] == 2) / len(rows)
    assert 0.4 < stereo < 0.6
    sessions = {str(r["session"]) for r in rows}
    assert len(sessions) == 2_000 and 2_600 < len(rows) < 3_400  # about half the calls have 2 records


def test_empirical_draws_only_durations_of_the_history(tmp_path: Path, history: list[UsageRecord]) -> None:
    source = tmp_path / "history.csv"
    write_records(source, history)
    rows = _calls(tmp_path / "e.parquet", f"empirical:{source}", 4)
    assert {Decimal(str(r["audio_seconds"])) for r in rows} == {Decimal(45), Decimal(61), Decimal(10)}
