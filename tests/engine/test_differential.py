"""One differential suite over every engine: vectorised engines agree exactly with the scalar reference.

Per record (billable seconds, actual seconds, quantity, meter, ...) in the reference's order, and the totals,
for Hypothesis-drawn records and policies (time, and counts: tokens, characters, weighted tables, parts) and
for every built-in provider profile over a fixed synthetic file. A record the reference refuses must be
refused by the engine too, naming the same field. An engine whose library (or server) is missing skips with
the reason; a declared gap is a strict xfail.
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

from strategies import count_policies, count_records, policies, records
from support.fixtures import postgres_server  # noqa: F401  (fixture)
from support.postgres import PostgresServer
from talktime.core.metering.meter import MeteredRecord, Totals, meter_records, summarize
from talktime.core.metering.policy import Policy, policy_from_dict
from talktime.core.records import UsageRecord
from talktime.engine.backends import DuckDBEngine, Engine
from talktime.engine.urls import connect
from talktime.errors import InputError, RecordError, TalktimeError
from talktime.io.records_io import read_records, records_table, write_records
from talktime.providers import builtin, builtin_ids

ENGINES = ["duckdb", "chdb", "postgresql", "spark"]
#: Set to a number of examples to draw fresh random cases instead of CI's fixed ones.
EXPLORE = "TALKTIME_EXPLORE"
EXAMPLES = {"duckdb": 40, "chdb": 15, "postgresql": 15, "spark": 4}
COUNT_EXAMPLES = {"duckdb": 40, "chdb": 6, "postgresql": 15, "spark": 2}
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


def _reference(path: Path, policy: Policy) -> tuple[list[MeteredRecord], Totals] | Exception:
    try:
        return meter_records(read_records(path), policy), summarize(read_records(path), policy)
    except (TalktimeError, InvalidOperation) as error:
        return error


def _key(metered: MeteredRecord) -> tuple[Any, ...]:
    return (
        metered.id,
        metered.billable_seconds,
        metered.actual_seconds,
        metered.billable_quantity,
        metered.meter,
        metered.provider_reported_seconds,
        metered.version,
        metered.symbol,
    )


def assert_same(engine: Engine, path: Path, policy: Policy) -> None:
    expected = _reference(path, policy)
    if isinstance(expected, Exception):
        for run in (lambda: list(engine.meter(path, policy)), lambda: engine.totals(path, policy)):
            with pytest.raises(TalktimeError) as refused:
                run()
            if isinstance(expected, TalktimeError):  # the same field (a decimal error names none)
                field = getattr(expected, "field", None)
                assert getattr(refused.value, "field", None) == field, (expected, refused.value)
        return
    metered, totals = expected
    got = [_key(m) for m in engine.meter(path, policy)]  # in the reference's order: file, then part
    want = [_key(m) for m in metered]
    assert len(got) == len(want)
    wrong = [(w, g) for w, g in zip(want, got, strict=True) if w != g]
    assert not wrong, f"{len(wrong)} records differ, e.g. {wrong[0]}"
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


def test_drawn_counts_meter_exactly_as_the_reference(
    engine: Engine, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Token, character and request counts: count fields and weighted tables (parts subtracted from their
    totals, sometimes below zero, which both refuse), rounding to blocks, minimums, scopes, factor rules on
    attr.model, and policies with parts."""
    folder = tmp_path_factory.mktemp("counts")

    @settings(
        max_examples=int(os.environ.get(EXPLORE, "0"))
        or COUNT_EXAMPLES[engine.name if engine.name != "clickhouse" else "chdb"],
        deadline=None,
        derandomize=EXPLORE not in os.environ,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(items=count_records(), policy=count_policies(), fmt=st.sampled_from([".parquet", ".csv"]))
    def check(items: list[UsageRecord], policy: Policy, fmt: str) -> None:
        path = folder / f"records{fmt}"
        write_records(path, items)
        assert_same(engine, path, policy)

    check()


#: Models on the synthetic records (``attr.model``), for profiles whose rules price or weight by model.
MODELS = (
    "eleven_multilingual_v2",
    "eleven_flash_v2_5",
    "eleven_turbo_v2_5",
    "eleven_v3",
    "gpt-4o",
    "gpt-4o-mini",
    "gpt-realtime",
)


def synthetic(count: int, seed: int = 11) -> list[UsageRecord]:
    """A fixed month of varied records that every built-in profile can meter: times, and token and
    character counts with their parts (some missing, which counts 0 beside their total)."""
    rng = random.Random(seed)
    made = []
    for i in range(count):
        start = datetime(2025, 3, 1, tzinfo=UTC) + timedelta(microseconds=rng.randint(0, 30 * 86400 * 10**6))
        duration = rng.choice([rng.randint(0, 2 * 10**6), rng.randint(0, 900 * 10**6)])
        status = rng.choice(["completed"] * 6 + ["failed", "unanswered"])
        audio = rng.randint(0, duration)
        characters, input_tokens = rng.randint(0, 5000), rng.randint(0, 9000)
        output_tokens = rng.randint(0, 900)
        # the input's parts (cached, cache-written, audio) never overlap, so every subtraction stays >= 0
        cuts = sorted(rng.randint(0, input_tokens) for _ in range(3))
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
                characters=characters,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                cached_input_tokens=rng.choice([cuts[0], cuts[0], None]),  # missing: 0, its total is there
                cache_write_tokens=rng.choice([cuts[1] - cuts[0], None]),
                audio_input_tokens=cuts[2] - cuts[1],
                audio_output_tokens=rng.choice([rng.randint(0, output_tokens), None]),
                ssml_characters=rng.choice([rng.randint(0, characters // 4), None]),
                cjk_characters=rng.choice([rng.randint(0, characters // 2), 0, None]),
                attrs={
                    "destination_country": rng.choice(["US", "MX", "GB"]),
                    "international": rng.choice(["true", "false"]),
                    "silence_seconds": str(Decimal(rng.randint(0, audio // 4)).scaleb(-6)),
                    "model": rng.choice(MODELS),
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


#: Count policies beside the built-in ones: blocks of characters by session, parts with their own rounding
#: and minimum by period, seconds weighted into tokens per channel plus 100 tokens a request.
COUNT_CASES: dict[str, dict[str, Any]] = {
    "character-blocks": {
        "unit": "character",
        "versions": [
            {
                "effective_from": "2020-01-01",
                "basis": {"characters": 1, "cjk_characters": 1, "ssml_characters": -1},
                "rounding": "up",
                "increment": "1000",
                "minimum": "100",
                "scope": "session",
                "kinds": ["tts", "llm"],
                "rules": [{"name": "mini", "when": {"attr.model": "gpt-4o-mini"}, "set": {"factor": "0.5"}}],
            }
        ],
    },
    "token-parts": {
        "unit": "token",
        "parts": [
            {
                "name": "input",
                "basis": {"input_tokens": 1, "cached_input_tokens": -1, "cache_write_tokens": -1},
                "minimum": "0",
            },
            {"name": "cached", "basis": "cached_input_tokens", "rounding": "up", "increment": "1000"},
            {"name": "output", "basis": "output_tokens", "minimum": "50"},
        ],
        "versions": [
            {
                "effective_from": "2020-01-01",
                "basis": "input_tokens",
                "scope": "period",
                "period_timezone": "America/New_York",
                "rules": [{"name": "4o", "when": {"attr.model": "gpt-4o"}, "set": {"factor": "3"}}],
            },
            {"effective_from": "2025-03-15", "basis": "input_tokens", "factor": "1.05"},
        ],
    },
    "audio-seconds-as-tokens": {
        "unit": "token",
        "versions": [
            {
                "effective_from": "2020-01-01",
                "billed_statuses": ["completed", "failed"],
                "basis": {"audio_seconds": 10, "audio_input_tokens": 1, "request": 100},
                "rounding": "nearest",
                "increment": "3",
                "free_below": "10",
                "channels": "per_channel",
                "extra_channel_factor": "0.5",
            }
        ],
    },
}


@pytest.mark.parametrize("case", sorted(COUNT_CASES))
def test_count_policies_meter_exactly_as_the_reference(
    engine: Engine, case: str, synthetic_file: Path
) -> None:
    policy = policy_from_dict({"id": case, "name": case, **COUNT_CASES[case]})
    assert_same(engine, synthetic_file, policy)


def _counted(record_id: str, fields: dict[str, Any]) -> UsageRecord:
    start = datetime(2025, 3, 1, tzinfo=UTC)
    fields = {"id": record_id, **fields}
    return UsageRecord(started_at=start, ended_at=start + timedelta(seconds=2), kind="llm", **fields)


#: Records a count policy refuses: (each record's counts, cached input tokens written straight into the
#: Parquet file by row, larger than their total as no record can hold them, the basis or the parts' bases).
REFUSED: dict[str, tuple[list[dict[str, Any]], dict[int, int], Any]] = {
    "negative": (
        [
            {"input_tokens": 10, "cached_input_tokens": 6},
            {"input_tokens": 10, "cached_input_tokens": 6, "cache_write_tokens": 6},
        ],
        {},
        {"input_tokens": 1, "cached_input_tokens": -1, "cache_write_tokens": -1, "audio_input_tokens": -1},
    ),
    "twice-the-markup": (
        [{"characters": 9, "ssml_characters": 5}],
        {},
        {"characters": 1, "ssml_characters": -2},
    ),
    "missing-total": ([{"output_tokens": 5}, {"input_tokens": None}], {}, "input_tokens"),
    "missing-part-and-total": ([{"input_tokens": 5}, {"output_tokens": 1}], {}, "cached_input_tokens"),
    "part-over-total": ([{"input_tokens": 5}, {"input_tokens": 10}], {1: 20}, "input_tokens"),
    # the reference meters the first part over every record before the second: row 2 fails part one
    "first-part-first": ([{"characters": 3}, {"output_tokens": 1}], {}, ["characters", "output_tokens"]),
    # and reads every record before metering any part: a repeated id or a format error comes first
    "repeated-id-first": (
        [{"output_tokens": 1}, {"characters": 1}, {"id": "n1", "characters": 2}],
        {},
        ["characters"] * 2,
    ),
    "format-first": (
        [{"output_tokens": 1}, {"input_tokens": 1}],
        {1: 5},
        ["characters", "input_tokens"],
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_counts_that_cannot_be_metered_fail_alike_on_every_engine(
    engine: Engine, case: str, tmp_path: Path
) -> None:
    """A billed record missing what it is counted on, a sum below zero and a part larger than its total
    are refused naming the field the reference names, and (for the counts) saying what it says."""
    rows, cached_over, basis = REFUSED[case]
    made = [_counted(f"n{i}", counts) for i, counts in enumerate(rows)]
    table = records_table(made)
    if cached_over:
        values = [cached_over.get(i) for i in range(len(made))]
        column = table.column_names.index("cached_input_tokens")
        table = table.set_column(column, "cached_input_tokens", pa.array(values, pa.int64()))
    path = tmp_path / "counts.parquet"
    pq.write_table(table, path)
    version = {"effective_from": "2020-01-01", "basis": basis if not isinstance(basis, list) else "request"}
    spec: dict[str, Any] = {"id": "c", "name": "c", "unit": "token", "versions": [version]}
    if isinstance(basis, list):
        spec["parts"] = [{"name": f"p{i}", "basis": b} for i, b in enumerate(basis)]
    policy = policy_from_dict(spec)
    with pytest.raises(RecordError) as expected:
        meter_records(read_records(path), policy)
    for run in (lambda: list(engine.meter(path, policy)), lambda: engine.totals(path, policy)):
        with pytest.raises(RecordError) as refused:
            run()
        assert refused.value.field == expected.value.field
        assert refused.value.record_id == expected.value.record_id
        if expected.value.why.startswith(("is needed to count", "leaves a negative count")):
            assert refused.value.why == expected.value.why
