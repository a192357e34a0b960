"""Synthetic calls at volume: a Parquet file in the canonical record layout, written by DuckDB from a seed.

Exact by construction: each duration is a whole number of milliseconds (an empirical draw keeps its
history's microseconds), and the record's times and seconds are computed from that integer. A float exists
only inside the sampler, before ``round``/``floor`` turns it into that integer.

Randomness is DuckDB's 64-bit hash of one integer made from the seed, the call number and the stream (one
stream per draw: duration, channels, participants), so the same seed gives the same calls whatever the
number of threads, and a call's duration does not depend on how many calls are generated. (Hashing the
three as separate arguments correlates the streams; one mixed integer does not.)
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Final

import duckdb

from talktime.core.simulate.spec import Distribution, Empirical, Fixed, LogNormal, Mix, SpecError, Uniform
from talktime.engine.sources import canonical_parquet

#: Calls start spread over 28 days from the anchor, so a month-scoped policy sees one period.
SPREAD_SECONDS: Final = 28 * 24 * 3600
_TWO_53: Final = "9007199254740992.0"
_STREAMS: Final = {"u": 1, "n1": 2, "n2": 3, "e": 4, "ch": 5, "pa": 6}
_GOLDEN: Final = 0x9E3779B97F4A7C15
#: Histogram bin widths in seconds: the smallest that gives at most the asked number of bins.
_NICE_SECONDS: Final = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600)


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _uniform(seed: int, stream: str, open_zero: bool = False) -> str:
    """A uniform in [0, 1) (or (0, 1] with ``open_zero``) from the call number ``i``."""
    offset = (int(seed) * _GOLDEN) % (1 << 62)
    bits = f"(hash({offset} + i * 16 + {_STREAMS[stream]}) >> 11)"
    return f"(({bits} + 1)::DOUBLE / {_TWO_53})" if open_zero else f"({bits}::DOUBLE / {_TWO_53})"


def _ms(value: Decimal) -> int:
    return int(value.scaleb(3))


def _duration_us(spec: Distribution, seed: int) -> str:
    """SQL for the call's duration in microseconds (an integer)."""
    if isinstance(spec, Fixed):
        return f"CAST({_ms(spec.seconds)} AS BIGINT) * 1000"
    if isinstance(spec, Uniform):
        low, high = _ms(spec.low), _ms(spec.high)
        draw = f"CAST(floor({_uniform(seed, 'u')} * {high - low + 1}) AS BIGINT)"
        return f"(CAST({low} AS BIGINT) + {draw}) * 1000"
    if isinstance(spec, LogNormal):
        normal = (
            f"sqrt(-2 * ln({_uniform(seed, 'n1', open_zero=True)})) * cos(2 * pi() * {_uniform(seed, 'n2')})"
        )
        mean, sigma = float(spec.mean), float(spec.sigma)  # sampler parameters only
        mu = f"(ln({mean!r}) - {sigma!r} * {sigma!r} / 2)"
        return f"CAST(round(exp({mu} + {sigma!r} * {normal}) * 1000) AS BIGINT) * 1000"
    return f"(SELECT us FROM _pool WHERE k = CAST(floor({_uniform(seed, 'e')} * _n) AS BIGINT))"


def _pick(mix: Mix, seed: int, stream: str) -> str:
    """SQL choosing a count from a mix by its shares."""
    if len(mix) == 1:
        return str(mix[0][0])
    draw = _uniform(seed, stream)
    cases, cumulative = [], Decimal(0)
    for count, share in mix[:-1]:
        cumulative += share
        cases.append(f"WHEN {draw} < {cumulative} THEN {count}")
    return f"CASE {' '.join(cases)} ELSE {mix[-1][0]} END"


def _pool(connection: duckdb.DuckDBPyConnection, history: Path) -> int:
    """Load the completed calls' durations of a history file; returns how many there are."""
    with canonical_parquet(history, [], numbers=False) as source:  # durations: times alone
        connection.execute(
            "CREATE TEMPORARY TABLE _pool AS SELECT row_number() OVER (ORDER BY us, id) - 1 AS k, us FROM ("
            "SELECT id, epoch_us(ended_at) - epoch_us(coalesce(answered_at, started_at)) AS us "
            f"FROM read_parquet({_lit(str(source.path))}) "
            "WHERE status = 'completed' AND ended_at IS NOT NULL)"
        )
    found = connection.execute("SELECT count(*) FROM _pool").fetchone()
    count = int(found[0]) if found else 0
    if count == 0:
        raise SpecError(f"--distribution 'empirical:{history}': the file has no completed calls to draw from")
    return count


def write_calls(
    target: Path,
    spec: Distribution,
    calls: int,
    *,
    seed: int,
    channels: Mix = ((1, Decimal(1)),),
    participants: Mix = ((1, Decimal(1)),),
    anchor: datetime,
) -> int:
    """Write ``calls`` synthetic calls to ``target`` (Parquet); returns the number of records written.

    A call with N participants leaves N records (one per participant, same session, same times).
    """
    if calls < 1:
        raise SpecError(f"--calls {calls}: generate at least one call")
    start = anchor.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00")
    connection = duckdb.connect()
    try:
        connection.execute("SET TimeZone = 'UTC'")
        size = _pool(connection, spec.path) if isinstance(spec, Empirical) else 0
        most = max(count for count, _ in participants)
        query = f"""
        WITH draws AS (
          SELECT i, {_duration_us(spec, seed)} AS us, {_pick(channels, seed, "ch")} AS ch,
                 {_pick(participants, seed, "pa")} AS np,
                 TIMESTAMPTZ {_lit(start)} + to_microseconds(((i * 7919) % {SPREAD_SECONDS}) * 1000000) AS t0
          FROM (SELECT i, {size} AS _n FROM range({int(calls)}) r(i))
        ), calls AS (
          SELECT *, CAST(CAST(us AS DECIMAL(18,0)) * 0.000001 AS DECIMAL(18,6)) AS sec FROM draws
        )
        -- the record fields left out (provider, kind, tokens, ...) read as NULL in every engine
        SELECT CASE WHEN {most} = 1 THEN 'call-' || i ELSE 'call-' || i || '-p' || (p + 1) END AS id,
               'sim' AS customer, 'call-' || i AS session, 'completed' AS status,
               t0 AS started_at, t0 + to_microseconds(us) AS ended_at, t0 AS answered_at,
               t0 AS first_audio_at, t0 + to_microseconds(us) AS last_audio_at,
               sec AS audio_seconds, sec AS speech_seconds, CAST(ch AS BIGINT) AS channels,
               sec AS provider_reported_seconds
        FROM calls, range({most}) q(p) WHERE p < np
        """
        target.parent.mkdir(parents=True, exist_ok=True)
        connection.execute(f"COPY ({query}) TO {_lit(str(target))} (FORMAT parquet)")
        written = connection.execute(f"SELECT count(*) FROM read_parquet({_lit(str(target))})").fetchone()
        return int(written[0]) if written else 0
    finally:
        connection.close()


def duration_histogram(path: Path, bins: int = 60) -> tuple[list[tuple[Decimal, int]], Decimal, Decimal]:
    """Completed calls' answered durations (connection when not answered) as ``bins`` bins up to the 99.5th
    percentile: ``([(bin start s, calls)], bin width s, longest shown s)``. Counted in SQL, not in Python.
    """
    with canonical_parquet(path, [], numbers=False) as source:  # durations: times alone
        connection = duckdb.connect()
        try:
            durations = (
                "SELECT epoch_us(ended_at) - epoch_us(coalesce(answered_at, started_at)) AS us "
                f"FROM read_parquet({_lit(str(source.path))}) "
                "WHERE status = 'completed' AND ended_at IS NOT NULL"
            )
            top = connection.execute(f"SELECT quantile_disc(us, 0.995) FROM ({durations})").fetchone()
            longest = int(top[0]) if top and top[0] is not None else 0
            step = next((s for s in _NICE_SECONDS if s * 1_000_000 * bins >= longest), _NICE_SECONDS[-1])
            width = step * 1_000_000
            rows = connection.execute(
                f"SELECT us // {width} AS b, count(*) FROM ({durations}) WHERE us <= {longest} "
                "GROUP BY b ORDER BY b"
            ).fetchall()
        finally:
            connection.close()
    micro = Decimal("0.000001")
    return (
        [(Decimal(int(b) * width) * micro, int(n)) for b, n in rows],
        Decimal(width) * micro,
        Decimal(longest) * micro,
    )
