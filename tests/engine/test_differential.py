"""One differential suite over every engine: vectorised engines agree exactly with the scalar reference.

Per record (billable seconds, actual seconds, quantity, meter) and the totals, for Hypothesis-drawn records
and policies and for every built-in provider profile over a fixed synthetic file. A record the reference
refuses
must be refused by the engine too. An engine whose library (or server) is missing skips with the reason; a
declared gap is a strict xfail.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strategies import policies, records
from support.fixtures import postgres_server  # noqa: F401  (fixture)
from support.postgres import PostgresServer
from talktime.core.metering.meter import meter_records, summarize
from talktime.core.metering.policy import Policy
from talktime.core.records import UsageRecord
from talktime.engine.backends import DuckDBEngine, Engine
from talktime.engine.urls import connect
from talktime.errors import InputError, TalktimeError
from talktime.io.records_io import read_records, records_table, write_records
from talktime.providers import builtin, builtin_ids

ENGINES = ["duckdb", "chdb", "postgresql", "spark"]
#: Set to a number of examples to draw fresh random cases instead of CI's fixed ones.
EXPLORE = "TALKTIME_EXPLORE"
EXAMPLES = {"duckdb": 40, "chdb": 15, "postgresql": 15, "spark": 4}
_LIBRARY = {"chdb": "chdb", "postgresql": "psycopg", "spark": "pyspark"}


@pytest.fixture(scope="session")
def engines(request: pytest.FixtureRequest) -> Iterator[dict[str, Engine]]:
    made: dict[str, Engine] = {}
    yield made
    for engine in made.values():
        engine.close()


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest, engines: dict[str, Engine]) -> Engine:
    name: str = request.param
    if name in engines:
        return engines[name]
    library = _LIBRARY.get(name)
    if library:
        pytest.importorskip(
            library, reason=f"{library} is not installed (pip install 'talktime[...]' extras)"
        )
    if name == "postgresql":
        server: PostgresServer = request.getfixturevalue("postgres_server")
        url = server.create_database()
    elif name == "spark":
        url = "spark"
    else:
        url = name
    try:
        engines[name] = connect(url)
    except InputError as error:
        pytest.skip(f"{name}: {error}")
    return engines[name]


def _reference(path: Path, policy: Policy) -> tuple[dict[str, Any], Any] | Exception:
    try:
        metered = meter_records(read_records(path), policy)
        return {m.id: m for m in metered}, summarize(read_records(path), policy)
    except (TalktimeError, InvalidOperation) as error:
        return error


def _key(metered: Any) -> tuple[Any, ...]:
    return (
        metered.billable_seconds,
        metered.actual_seconds,
        metered.billable_quantity,
        metered.meter,
        metered.provider_reported_seconds,
        metered.version,
    )


def assert_same(engine: Engine, path: Path, policy: Policy) -> None:
    expected = _reference(path, policy)
    if isinstance(expected, Exception):
        with pytest.raises(TalktimeError):
            list(engine.meter(path, policy))
        with pytest.raises(TalktimeError):
            engine.totals(path, policy)
        return
    by_id, totals = expected
    got = {m.id: m for m in engine.meter(path, policy)}
    assert sorted(got) == sorted(by_id)
    wrong = {i: (_key(by_id[i]), _key(got[i])) for i in by_id if _key(by_id[i]) != _key(got[i])}
    assert not wrong, f"{len(wrong)} records differ, e.g. {next(iter(wrong.items()))}"
    assert engine.totals(path, policy) == totals


def test_drawn_records_and_policies_meter_exactly_as_the_reference(
    engine: Engine, tmp_path_factory: pytest.TempPathFactory
) -> None:
    folder = tmp_path_factory.mktemp("drawn")

    @settings(
        max_examples=int(os.environ.get(EXPLORE, "0"))
        or EXAMPLES[engine.name if engine.name != "clickhouse" else "chdb"],
        deadline=None,
        # CI replays the same drawn cases every run, so a landing never hangs on a new draw; set
        # TALKTIME_EXPLORE=N to draw N fresh cases per engine (how the 18 GB case and the 2 x block
        # overflow below were found).
        derandomize=EXPLORE not in os.environ,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(items=records(), policy=policies(), fmt=st.sampled_from([".parquet", ".parquet", ".csv"]))
    def check(items: list[UsageRecord], policy: Policy, fmt: str) -> None:
        path = folder / f"records{fmt}"
        write_records(path, items)
        assert_same(engine, path, policy)

    check()


def synthetic(count: int, seed: int = 11) -> list[UsageRecord]:
    """A fixed month of varied records that every built-in profile can meter."""
    rng = random.Random(seed)
    made = []
    for i in range(count):
        start = datetime(2025, 3, 1, tzinfo=UTC) + timedelta(microseconds=rng.randint(0, 30 * 86400 * 10**6))
        duration = rng.choice([rng.randint(0, 2 * 10**6), rng.randint(0, 900 * 10**6)])
        status = rng.choice(["completed"] * 6 + ["failed", "unanswered"])
        audio = rng.randint(0, duration)
        made.append(
            UsageRecord(
                id=f"c{i}",
                started_at=start,
                ended_at=start + timedelta(microseconds=duration),
                status=status,
                answered_at=start + timedelta(microseconds=rng.randint(0, duration))
                if status == "completed"
                else None,
                first_audio_at=start,
                last_audio_at=start + timedelta(microseconds=duration),
                kind=rng.choice(["leg", "sip", "agent", "participant", "stream", "batch", "tts", "llm"]),
                channels=rng.choice([1, 1, 2]),
                session=f"s{rng.randint(0, 60)}",
                customer=f"cust{rng.randint(0, 4)}",
                audio_seconds=Decimal(audio).scaleb(-6),
                speech_seconds=Decimal(rng.randint(0, audio)).scaleb(-6),
                provider_reported_seconds=Decimal(rng.randint(0, 10**9)).scaleb(-6),
                characters=rng.randint(0, 5000),
                input_tokens=rng.randint(0, 9000),
                output_tokens=rng.randint(0, 900),
                attrs={
                    "destination_country": rng.choice(["US", "MX", "GB"]),
                    "international": rng.choice(["true", "false"]),
                    "silence_seconds": str(Decimal(rng.randint(0, audio // 4)).scaleb(-6)),
                },
            )
        )
    return made


@pytest.fixture(scope="module")
def synthetic_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("synthetic") / "month.parquet"
    write_records(path, synthetic(400))
    return path


@pytest.mark.parametrize("profile", builtin_ids())
def test_builtin_profiles_meter_exactly_as_the_reference(
    engine: Engine, profile: str, synthetic_file: Path
) -> None:
    assert_same(engine, synthetic_file, builtin(profile))


def one_version(policy_id: str, params: dict[str, Any]) -> Policy:
    """A policy of one version, in effect since 2020, with these parameters."""
    version = {"effective_from": datetime(2020, 1, 1, tzinfo=UTC), "params": params}
    return Policy.model_validate({"id": policy_id, "name": policy_id, "versions": [version]})


def test_a_deep_policy_meters_without_blowing_up(engine: Engine, synthetic_file: Path) -> None:
    """Each layer names the one below several times; an engine that substitutes layers into each other
    (DuckDB's partial aggregate pushdown under the totals, Spark's filter pushdown under the validation)
    planned an expression exponential in the depth: 12 segments took all memory."""
    params = {
        "rounding": "up",
        "initial_seconds": "60",
        "increment_seconds": "6",
        "minimum_seconds": "15",
        "segments": [{"name": f"s{i}", "field": "attr.silence_seconds", "factor": "0.9"} for i in range(12)],
        "multiplier": {"field": "input_tokens", "per": "1000", "above": "3500", "round_to_seconds": "1"},
    }
    assert_same(engine, synthetic_file, one_version("deep", params))


def test_nearest_rounding_of_a_large_block_does_not_overflow(engine: Engine, synthetic_file: Path) -> None:
    """``2 x block`` of two literals: DuckDB types small literals as 32-bit and overflowed on 1.25 s
    blocks at microsecond scale (2 x 1,250,000,000), found by a randomly drawn policy."""
    # a factor with 3 decimals puts the session total at scale 9: the block is 1,250,000,000
    params = {"rounding": "nearest", "increment_seconds": "1.25", "scope": "session", "factor": "0.999"}
    assert_same(engine, synthetic_file, one_version("near", params))


def test_bad_rows_fail_alike_on_every_engine(engine: Engine, tmp_path: Path) -> None:
    """A duplicate id, and a billed record missing its basis, name the record and field on every engine."""
    good = synthetic(3)
    path = tmp_path / "dup.parquet"
    write_records(path, [*good, good[1]])
    policy = builtin("twilio-voice")
    with pytest.raises(TalktimeError, match=r"row 4.*'c1'.*'id'"):
        engine.totals(path, policy)
    missing = UsageRecord(
        id="late", started_at=good[0].started_at, ended_at=None, status="failed", kind="leg"
    )
    path = tmp_path / "missing.parquet"
    write_records(path, [*good, missing])
    generic = one_version("p", {"billed_statuses": ["completed", "failed"]})
    with pytest.raises(TalktimeError, match=r"'late'.*'ended_at'"):
        engine.totals(path, generic)


@pytest.mark.parametrize(
    ("ids", "expected"),
    [
        (["c0", None, "c2"], r"row 2: field 'id': is required"),
        (["c0", "c1", "   "], r"row 3: field 'id': is required"),
        (["c0", " c1", "c1  "], r"'c1'.*'id'.*appears twice"),
        (["c0", "c1", "\u3000c1\u00a0"], r"'c1'.*'id'.*appears twice"),
        (["c0", "c1", "\tc1\n"], r"'c1'.*'id'.*appears twice"),
    ],
    ids=["null", "blank", "equal-once-trimmed", "unicode-spaces", "tab-newline"],
)
def test_a_missing_or_repeated_id_fails_the_totals_on_every_engine(
    engine: Engine, tmp_path: Path, ids: list[str | None], expected: str, request: pytest.FixtureRequest
) -> None:
    """The totals' id screen (a hash sort on DuckDB, a distinct count elsewhere) catches what the reference
    refuses: an id that is missing or blank, and two ids that are the same once trimmed."""
    padding = "".join(i or "" for i in ids)
    gap = (
        "declared gap: TRIM strips spaces only (DuckDB: and Unicode space separators), where the reference "
        "strips all white space, tabs and newlines included"
    )
    if "\t" in padding or ("\u3000" in padding and engine.name != "duckdb"):
        request.applymarker(pytest.mark.xfail(strict=True, reason=gap))
    table = records_table(synthetic(3))
    table = table.set_column(table.column_names.index("id"), "id", pa.array(ids, pa.string()))
    path = tmp_path / "ids.parquet"
    pq.write_table(table, path)
    with pytest.raises(TalktimeError, match=expected):
        summarize(read_records(path), builtin("twilio-voice"))
    with pytest.raises(TalktimeError, match=expected):
        engine.totals(path, builtin("twilio-voice"))
    if isinstance(engine, DuckDBEngine):  # past its sort limit, DuckDB counts distinct ids like the others
        engine.sort_screen_rows = 2
        try:
            with pytest.raises(TalktimeError, match=expected):
                engine.totals(path, builtin("twilio-voice"))
        finally:
            engine.sort_screen_rows = DuckDBEngine.sort_screen_rows
