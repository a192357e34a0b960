"""Vectorised reconciliation on DuckDB: match statement lines to records and attribute every difference.

Owns: the SQL. Our records are re-metered under the provider's profile with the layers of
``compile.py`` (so the numbers are the reference meter's), keeping each step's output as a column: basis,
after gates, after segments, rounded, with minimum, with channels, final. A line's causes are differences
between consecutive columns (see ``talktime.core.reconcile``). Statement lines without a billed quantity
are metered under the same profile with ``provider_reported`` as the basis (their own duration).
Every value is an integer count of ``10**-scale`` seconds: nothing is a float.

Declared gap: profiles that round per session or per period are refused (no built-in profile does).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

import duckdb
import pyarrow as pa

from talktime.core.metering.meter import NOT_COUNTED
from talktime.core.metering.policy import Policy
from talktime.core.reconcile.model import CAUSES, REPORT_COLUMNS, Options, Summary
from talktime.core.reconcile.money import given_rate
from talktime.core.records import COUNT_FIELDS, RECORD_FIELDS
from talktime.engine.compile import UnsupportedPolicy, _Builder, attr_columns
from talktime.engine.dialects import DUCKDB, DUCKDB_FAST, DUCKDB_WIDE, Dialect
from talktime.engine.reconcile_money import (
    MoneyPlan,
    check_currency,
    check_priceable,
    infer,
    money_select,
    money_summary,
    no_money_select,
    statement_facts,
)
from talktime.engine.results import engine_error
from talktime.errors import PolicyError

PROVIDER_ID: Final = "attr.provider_id"
#: Per-line cause columns, in CAUSES order.
CAUSE_COLUMNS: Final = tuple(CAUSES)
#: The causes a record's own trail explains (the rest are about lines: missing, unbilled, ...).
_RECORD_CAUSES: Final = (
    "time_basis",
    "connection_overhead",
    "lifecycle",
    "participants",
    "rounding",
    "minimum",
    "channels",
    "multiplier",
)


@dataclass(frozen=True, slots=True)
class Result:
    """A reconciliation: the summary and one row per line (integers at ``scale``; see ``line_dicts``)."""

    summary: Summary
    lines: pa.Table
    scale: int


def _steps(policy: Policy, relation: str, dialect: Dialect = DUCKDB) -> tuple[str, int]:
    """SQL with each step's output per record (integers at the returned scale) and the error column."""
    b = _Builder(policy, dialect, relation)
    for v in b.variants:
        if v.params.scope != "record":
            raise UnsupportedPolicy(
                f"policy {policy.id!r} rounds per {v.params.scope}; reconcile supports per-record rounding"
            )
    b.layers = [f"SELECT *, {b.format_errors()} AS _err_fmt FROM ({b.source()}) AS _s0"]
    b.errors = ["_err_fmt"]
    b.layer({"_v": b.variant_expr()})
    b.layer({"_err_version": "(CASE WHEN _v IS NULL THEN 'before_policy' END)"})
    b.errors.append("_err_version")
    s_t0 = b.basis_layer()
    seg, s_seg = b.segment_layers(s_t0, "_t0")
    only: dict[int, str] = {}
    s_only: dict[int, int] = {}
    for v in b.variants:
        plain = v.params.model_copy(update={"minimum_seconds": Decimal(0)})
        only[v.index], s_only[v.index] = b.round_expr(seg, s_seg[v.index], plain)
    b.layer({"_ro": b.per_variant(only)})
    rnd, s_rnd = b.record_rounding_layer(s_seg, seg)
    chan: dict[int, str] = {}
    s_ch: dict[int, int] = {}
    for v in b.variants:
        p, s = v.params, s_rnd[v.index]
        if p.channels == "per_channel" and p.extra_channel_factor == 1:
            chan[v.index], s_ch[v.index] = f"{rnd} * channels", s
        elif p.channels == "per_channel":
            ep, ek = _fixed(p.extra_channel_factor)
            chan[v.index] = f"{rnd} * ({10**ek} + (channels - 1) * {ep})"
            s_ch[v.index] = s + ek
        else:
            chan[v.index], s_ch[v.index] = rnd, s
    b.layer({"_ch": b.per_variant(chan)})
    scaled, s_sc = b.scale_layer(s_rnd, rnd)
    final, s_c = b.multiplier_layers(s_sc, scaled)
    steps = {"_t0": s_t0, seg: s_seg, "_ro": s_only, rnd: s_rnd, "_ch": s_ch, final: s_c}
    scale = max(6, *(max(s.values()) for s in steps.values()))
    out = {"T0": "_t0", "SEG": seg, "RO": "_ro", "RND": rnd, "CH": "_ch", "C": final}
    columns = {
        name: b.per_variant({v.index: b.up(col, steps[col][v.index], scale) for v in b.variants}, "0")
        for name, col in out.items()
    }
    conn = {v.index: "1" if v.params.bases == ("connection",) else "0" for v in b.variants}
    columns["_pconn"] = b.per_variant(conn, "0")
    columns["_error"] = f"COALESCE({', '.join(b.errors)})"
    b.layer(columns)
    return f"{b.ctes()} SELECT * FROM {b.last()}", scale


def _fixed(value: Decimal) -> tuple[int, int]:
    sign, digits, exponent = value.normalize().as_tuple()
    assert isinstance(exponent, int)
    number = int("".join(map(str, digits)) or "0") * (-1 if sign else 1)
    return (number, -exponent) if exponent < 0 else (number * 10**exponent, 0)


def _provider_reported(policy: Policy) -> Policy:
    """The profile measuring each line on its own duration (``provider_reported_seconds``)."""
    versions = tuple(
        v.model_copy(update={"params": v.params.model_copy(update={"basis": "provider_reported"})})
        for v in policy.versions
    )
    return policy.model_copy(update={"versions": versions})


def _line_records(policy: Policy, attrs: list[str]) -> str:
    """Statement lines as records (the ``lines`` table), for metering the lines' own durations."""
    kinds = policy.current.params.kinds
    kind = DUCKDB.str_lit(kinds[0]) if kinds else "NULL"
    seconds = (
        "CAST(CAST(duration_us // 1000000 AS VARCHAR) || '.' || "
        "lpad(CAST(duration_us % 1000000 AS VARCHAR), 6, '0') AS DECIMAL(18, 6))"
    )
    values = {
        "id": "COALESCE(id, 'line-' || CAST(line AS VARCHAR))",
        "kind": kind,
        "status": "status",
        "started_at": "started_at",
        "ended_at": "started_at + to_microseconds(duration_us)",
        "channels": "CAST(channels AS INTEGER)",
        "provider_reported_seconds": seconds,
    }
    cols = ["line AS _row"]
    for name in RECORD_FIELDS:
        null = f"CAST(NULL AS {_NULL_TYPES.get(name, 'VARCHAR')})"
        cols.append(f"{values.get(name, null)} AS {DUCKDB.ident(name)}")
    cols += [f"CAST(NULL AS VARCHAR) AS {DUCKDB.ident(a)}" for a in attrs]
    return f"(SELECT {', '.join(cols)} FROM lines) AS _lr"


_NULL_TYPES: Final = {
    **dict.fromkeys(("answered_at", "first_audio_at", "last_audio_at"), "TIMESTAMPTZ"),
    **dict.fromkeys(("audio_seconds", "speech_seconds"), "DECIMAL(18, 6)"),
    **dict.fromkeys(COUNT_FIELDS, "BIGINT"),
}


def _us(seconds: Decimal) -> int:
    return int(seconds.scaleb(6).to_integral_value())


def reconcile(
    records: pa.Table,
    statement: pa.Table,
    policy: Policy,
    options: Options,
    where: Any = None,
) -> Result:
    """Reconcile ``statement`` (importer lines) against ``records`` (the canonical record table).

    ``records`` needs a ``_row`` column (1-based) or gets one; ``where(row)`` names a record row in errors.
    Statements are call-shaped (durations per line): a policy that counts tokens or characters is refused.
    """
    if policy.is_count:
        raise PolicyError(
            f"policy {policy.id!r} bills {policy.unit}s; reconciliation compares statement durations with "
            "metered time, so it takes a time policy (second, minute or hour)"
        )
    attrs = sorted({*attr_columns(policy), PROVIDER_ID})
    for name in attrs:
        if name not in records.column_names:
            records = records.append_column(name, pa.nulls(records.num_rows, pa.string()))
    if "_row" not in records.column_names:
        records = records.append_column("_row", pa.array(range(1, records.num_rows + 1), pa.int64()))
    # Records without a provider id of their own (the usual case) need no join to read it.
    has_pid = records.column(PROVIDER_ID).null_count < records.num_rows
    con = duckdb.connect()
    try:
        con.register("recs", records)
        con.register("lines", statement)

        def statements(dialect: Dialect, num: str) -> _Sql:
            rec_sql, rs = _steps(policy, "recs", dialect)
            line_sql, ls = _steps(_provider_reported(policy), _line_records(policy, attrs), dialect)
            return _Sql(policy, options, rec_sql, line_sql, rs, ls, has_pid, num)

        try:
            return _run(con, statements(DUCKDB_FAST, "BIGINT"), policy, options, where)
        except (duckdb.OutOfRangeException, duckdb.ConversionException):
            # A value does not fit 64 bits: the same exact arithmetic on 128 bits (as the engine's totals).
            return _run(con, statements(DUCKDB_WIDE, "HUGEINT"), policy, options, where)
    finally:
        con.close()


@dataclass(frozen=True, slots=True)
class _Sql:
    """The statements of one reconciliation; ``num`` is the integer type every quantity is held in."""

    policy: Policy
    options: Options
    rec_sql: str
    line_sql: str
    rs: int
    ls: int
    has_pid: bool
    num: str = "BIGINT"

    @property
    def g(self) -> int:
        """The common scale: every quantity is an integer count of ``10**-g`` seconds."""
        return max(self.rs, self.ls)

    def records(self) -> str:
        """Our records re-metered, one row each, with what matching and attribution read.

        ``_in``: the record is the provider's to bill (counted, and the provider's or no provider);
        ``_key``: the id a statement line names it by; ``_session``: its session (or itself).
        """
        num, g = self.num, self.g
        up_r, up_l = 10 ** (g - self.rs), 10 ** (g - 6)
        provider = self.policy.provider.lower()
        keep = f"AND (provider IS NULL OR LOWER(provider) = {DUCKDB.str_lit(provider)})" if provider else ""
        content = (
            "CASE WHEN status = 'completed' THEN COALESCE(_audio, CASE WHEN _answered IS NOT NULL "
            "THEN _end - _answered END, _end - _start, 0) ELSE 0 END"
        )
        steps = ", ".join(
            f"CAST({c} AS {num}) * {up_r} AS {c}" for c in ("T0", "SEG", "RO", "RND", "CH", "C")
        )
        source = (
            f"(SELECT _q.*, recs.{DUCKDB.ident(PROVIDER_ID)} AS _pid FROM ({self.rec_sql}) AS _q "
            "JOIN recs ON recs._row = _q._row)"
            if self.has_pid
            else f"(SELECT *, CAST(NULL AS VARCHAR) AS _pid FROM ({self.rec_sql}))"
        )
        return f"""
        SELECT _row, id, _error, COALESCE(_meter = {DUCKDB.str_lit(NOT_COUNTED)}, FALSE) AS _nc,
               COALESCE(_meter <> {DUCKDB.str_lit(NOT_COUNTED)} {keep}, FALSE) AS _in,
               COALESCE(session, 'record:' || id) AS _session, CAST(_start AS BIGINT) AS _start,
               COALESCE(NULLIF(TRIM(_pid), ''), id) AS _key, CAST(_actual AS {num}) AS _a_us,
               CAST({content} AS {num}) * {up_l} AS _raw,
               (_audio IS NULL AND _answered IS NULL) AS _tally_conn, _pconn,
               CAST(_actual AS {num}) * {up_l} AS A, {steps}
        FROM {source} AS _q"""

    def lines(self) -> str:
        """Statement lines with the provider's quantity ``P``; ``_dup``: its id was on an earlier line."""
        num, g = self.num, self.g
        billed = f"CAST(l.billed_us AS {num}) * {10 ** (g - 6)}"
        metered = f"CAST(lp.C AS {num}) * {10 ** (g - self.ls)}"
        return f"""
        SELECT l.line, l.id AS lid, epoch_us(l.started_at) AS lstart, l.duration_us AS ldur, l.amount,
               COALESCE({billed}, {metered}) AS P, l.line IN (SELECT line FROM ldup) AS _dup
        FROM lines l JOIN lp ON lp.line = l.line"""


def _later(column: str, table: str, key: str, order: str, where: str) -> str:
    """Rows of ``table`` after the first of their ``key`` group (by ``order``).

    Only groups of more than one row are ranked: a cheap pass over a hash of the key finds the candidate
    keys (a collision only adds a candidate, ranked exactly on the key itself), so the window runs over
    the few repeated keys, not over every row.
    """
    return f"""
        SELECT {column} FROM (
            SELECT {column}, ROW_NUMBER() OVER (PARTITION BY {key} ORDER BY {order}) AS _n FROM {table}
            WHERE {where} AND hash({key}) IN (
                SELECT hash({key}) FROM {table} WHERE {where} GROUP BY 1 HAVING COUNT(*) > 1
            )
        ) WHERE _n > 1"""


def _window_join(window: int) -> str:
    """Candidate (line, record) pairs whose starts and durations are at most ``window`` us apart.

    An equi-join on time buckets at least ``window`` wide (a start within ``window`` of another is in the
    same bucket or a neighbouring one), then the exact test: the same pairs a range join finds, in linear
    time for spread-out starts.
    """
    if window == 0:
        return (
            "SELECT l2.line, r2._row, 0 AS ds, 0 AS dd "
            "FROM l2 JOIN r2 ON r2._start = l2.lstart WHERE l2.ldur = r2._a_us"
        )
    return f"""
        SELECT l2.line, r2._row, ABS(l2.lstart - r2._start) AS ds, ABS(l2.ldur - r2._a_us) AS dd
        FROM (SELECT *, lstart // {window} + _d AS _b FROM l2, (VALUES (-1), (0), (1)) AS _n(_d)) AS l2
        JOIN (SELECT *, _start // {window} AS _b FROM r2) AS r2 ON r2._b = l2._b
        WHERE r2._start BETWEEN l2.lstart - {window} AND l2.lstart + {window}
          AND ABS(l2.ldur - r2._a_us) <= {window}"""


def _run(con: duckdb.DuckDBPyConnection, q: _Sql, policy: Policy, options: Options, where: Any) -> Result:
    con.execute(f"CREATE OR REPLACE TEMP TABLE r AS {q.records()}")
    bad = con.execute(
        "SELECT _row, id, _error FROM r WHERE _error IS NOT NULL ORDER BY _row LIMIT 1"
    ).fetchall()
    if bad:
        row, rid, code = bad[0]
        raise engine_error(str(code), rid, where(int(row)) if where else f"record row {row}", policy)
    con.execute(f"CREATE TEMP TABLE IF NOT EXISTS lp AS SELECT _row AS line, C FROM ({q.line_sql})")
    # Matching by id: a provider id billed again after its first line is a duplicate; of our records
    # sharing a key, the first (lowest row) takes the line.
    con.execute(
        "CREATE OR REPLACE TEMP TABLE ldup AS " + _later("line", "lines", "id", "line", "id IS NOT NULL")
    )
    con.execute(f"CREATE OR REPLACE TEMP TABLE ln AS {q.lines()}")
    con.execute("CREATE OR REPLACE TEMP TABLE knot AS " + _later("_row", "r", "_key", "_row", "_in"))
    con.execute(
        """CREATE OR REPLACE TEMP TABLE idm AS
           SELECT ln.line, r._row FROM ln JOIN r ON ln.lid = r._key
           WHERE r._in AND NOT ln._dup AND r._row NOT IN (SELECT _row FROM knot)"""
    )
    # Then by time window among the rest: each line's best record and each record's best line, when the
    # two agree (nearest start, then nearest duration).
    window = _us(options.window_seconds)
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE pairs AS
        WITH l2 AS (SELECT line, lstart, ldur FROM ln WHERE NOT _dup AND line NOT IN (SELECT line FROM idm)),
        r2 AS (SELECT _row, _start, _a_us FROM r WHERE _in AND _row NOT IN (SELECT _row FROM idm)),
        cand AS ({_window_join(window)}),
        ranked AS (
            SELECT line, _row,
                   ROW_NUMBER() OVER (PARTITION BY line ORDER BY ds, dd, _row) AS bl,
                   ROW_NUMBER() OVER (PARTITION BY _row ORDER BY ds, dd, line) AS br
            FROM cand
        )
        SELECT line, _row FROM idm UNION ALL SELECT line, _row FROM ranked WHERE bl = 1 AND br = 1"""
    )
    # The first record of each session (earliest start, then id) is its primary: the one a tally counts.
    con.execute(
        "CREATE OR REPLACE TEMP TABLE snot AS " + _later("_row", "r", "_session", "_start, id, _row", "_in")
    )
    plan, currency = _money_plan(con, policy, options, q.g)
    classed = con.sql(_lines_sql(q, options, plan)).to_arrow_table()
    return _summarize(con, classed, policy, plan, currency, q.g)


def _money_plan(
    con: duckdb.DuckDBPyConnection, policy: Policy, options: Options, g: int
) -> tuple[MoneyPlan | None, str | None]:
    """The rate lines are checked against (the card's, the given one, else the statement's most common
    one) and the money tolerance (given, else one unit of the statement's last written place)."""
    places, currencies = statement_facts(con)
    pricing = options.pricing
    if pricing is None and options.rate_per_unit is not None:
        pricing = given_rate(options.rate_per_unit, policy.unit, policy.unit_seconds)
    check_currency(pricing, currencies)
    if pricing is None and places is not None:
        pricing = infer(con, g, policy.unit, int(policy.unit_seconds), places)
    if pricing is None:
        return None, None
    tolerance = options.money_tolerance
    if tolerance is None:
        tolerance = Decimal(1).scaleb(-places) if places is not None else Decimal(0)
    return MoneyPlan(pricing, g, tolerance, places), (currencies[0] if currencies else None)


def _lines_sql(q: _Sql, options: Options, plan: MoneyPlan | None) -> str:
    """One row per statement line and per unmatched record, every difference on a cause.

    Statement lines (each with its matched record, if any) full-outer-joined to our records: a line with a
    record is a pair, a line without is missing (or a duplicate), a record without a line is ours only.
    """
    g = q.g
    tol = _us(options.tolerance_seconds) * 10 ** (g - 6)
    delay = _us(options.delay_seconds)
    on = "TRUE" if options.tally == "tally" else "FALSE"
    off = "FALSE" if options.tally == "tally" else "TRUE"
    kind = (
        "CASE WHEN l.line IS NULL THEN 'internal_only' WHEN l._dup THEN 'duplicate' "
        "WHEN c._row IS NULL THEN 'provider_only' ELSE 'pair' END"
    )
    causes = ", ".join(f"COALESCE(c.{name}, 0) AS {name}" for name in _RECORD_CAUSES)
    seconds = f"""
    WITH edge AS (SELECT COALESCE(MAX(lstart), 0) - {delay} AS e FROM ln),
    rp AS (SELECT *, _row NOT IN (SELECT _row FROM snot) AS _primary FROM r WHERE _in),
    walked AS (
        SELECT rp.*,
               CASE WHEN {on} THEN
                    (CASE WHEN _primary THEN _raw ELSE 0 END) ELSE C END AS T,
               (CASE WHEN {off} OR NOT _primary OR (_raw = 0 AND T0 = 0)
                     THEN 0 ELSE A - _raw END) AS _basis,
               (CASE WHEN {off} OR NOT _primary OR (_raw = 0 AND T0 = 0)
                     THEN 0 ELSE T0 - A END) AS lifecycle,
               (CASE WHEN {on} AND NOT _primary THEN RND ELSE 0 END)
                   AS participants,
               (CASE WHEN {on} AND _primary THEN RO - SEG ELSE 0 END) AS rounding,
               (CASE WHEN {on} AND _primary THEN RND - RO ELSE 0 END) AS minimum,
               (CASE WHEN {on} THEN CH - RND ELSE 0 END) AS channels,
               (CASE WHEN {on} THEN C - CH +
                    (CASE WHEN _primary THEN SEG - T0 ELSE 0 END) ELSE 0 END) AS multiplier
        FROM rp
    ),
    causes AS (
        SELECT *,
               CASE WHEN _pconn = 1 AND NOT _tally_conn THEN 0 ELSE _basis END AS time_basis,
               CASE WHEN _pconn = 1 AND NOT _tally_conn THEN _basis ELSE 0 END AS connection_overhead
        FROM walked
    ),
    lm AS (SELECT ln.*, pairs._row FROM ln LEFT JOIN pairs USING (line)),
    joined AS (
        SELECT {kind} AS _kind, l.line, l.lid, c.id AS record_id, c._row AS _rec, l.amount,
               COALESCE(l.lstart, c._start) AS _when,
               COALESCE(c.T, 0) AS T, COALESCE(c.C, 0) AS E, COALESCE(l.P, 0) AS P, {causes},
               CASE WHEN {kind} = 'provider_only' THEN l.P ELSE 0 END AS missing,
               CASE WHEN l.line IS NULL AND c._start < (SELECT e FROM edge) THEN -c.C ELSE 0 END AS unbilled,
               CASE WHEN l.line IS NULL AND c._start >= (SELECT e FROM edge) THEN -c.C ELSE 0 END
                   AS billing_delay,
               CASE WHEN l._dup THEN l.P ELSE 0 END AS duplicated,
               CASE WHEN {kind} = 'pair' THEN l.P - c.C ELSE 0 END AS unexplained
        FROM lm AS l FULL OUTER JOIN causes AS c ON c._row = l._row
    )
    SELECT CASE WHEN _kind <> 'pair' THEN _kind
                WHEN ABS(unexplained) > {tol} THEN 'mismatched' ELSE 'matched' END AS class,
           line, lid AS provider_id, record_id,
           CAST(T AS BIGINT) AS internal, CAST(E AS BIGINT) AS expected, CAST(P AS BIGINT) AS provider,
           {", ".join(f"CAST({c} AS BIGINT) AS {c}" for c in CAUSE_COLUMNS)},
           CAST(unexplained AS BIGINT) AS unexplained, ABS(unexplained) > {tol} AS flagged, amount,
           _rec, _when
    FROM joined"""
    report = no_money_select(seconds) if plan is None else money_select(plan, seconds)
    return f"{report} ORDER BY line NULLS LAST, record_id"


def _summarize(
    con: duckdb.DuckDBPyConnection,
    classed: pa.Table,
    policy: Policy,
    plan: MoneyPlan | None,
    currency: str | None,
    g: int,
) -> Result:
    con.register("classed", classed)
    if plan is not None:
        check_priceable(con, plan)

    def dec(value: object) -> Decimal:
        return Decimal(int(value or 0)).scaleb(-g) if value else Decimal(0)  # type: ignore[call-overload]

    sums = ", ".join(f"SUM({c})" for c in ("internal", "expected", "provider", *CAUSE_COLUMNS, "unexplained"))
    totals = con.execute(
        f"SELECT {sums}, COUNT(*) FILTER (flags LIKE '%seconds%'), COUNT(*) FILTER (flagged) FROM classed"
    ).fetchall()[0]
    t, e, p = (dec(v) for v in totals[:3])
    causes = {c: dec(v) for c, v in zip(CAUSE_COLUMNS, totals[3:-3], strict=True)}
    unexplained = dec(totals[-3])
    counts = {
        str(k): int(n) for k, n in con.execute("SELECT class, COUNT(*) FROM classed GROUP BY 1").fetchall()
    }
    details = _details(con)
    money = None if plan is None else money_summary(con, plan, currency)
    label = policy.current.params.rounding_label()
    not_counted = con.execute("SELECT COUNT(*) FILTER (_nc) FROM r").fetchall()[0][0]
    summary = Summary(
        policy=policy.id,
        unit=policy.unit,
        unit_seconds=policy.unit_seconds,
        counts=counts,
        internal_billable_seconds=t,
        expected_seconds=e,
        provider_billable_seconds=p,
        causes=causes,
        unexplained_seconds=unexplained,
        flagged_lines=int(totals[-1] or 0),
        not_counted_records=int(not_counted or 0),
        details=details,
        money=money,
        rounding_label=label,
        seconds_flagged_lines=int(totals[-2] or 0),
    )
    keep = [c for c in classed.column_names if c in REPORT_COLUMNS]
    return Result(summary, classed.select(keep), g)


def _details(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    row = con.execute(
        """SELECT COUNT(*) FILTER (rounding <> 0), COUNT(*) FILTER (minimum <> 0),
                  COUNT(*) FILTER (channels <> 0), COUNT(*) FILTER (class = 'provider_only'),
                  COUNT(*) FILTER (unbilled <> 0), COUNT(*) FILTER (class = 'duplicate')
           FROM classed"""
    ).fetchall()[0]
    sessions = con.execute(
        """WITH c AS (SELECT r._session, c.participants FROM classed c JOIN r ON r._row = c._rec),
           s AS (SELECT _session FROM c WHERE participants <> 0 GROUP BY 1)
           SELECT COUNT(DISTINCT c._session), COUNT(*) FROM c JOIN s ON s._session = c._session"""
    ).fetchall()[0]
    names = (
        "rounded_records",
        "minimum_records",
        "channel_records",
        "missing_lines",
        "unbilled_records",
        "duplicate_lines",
    )
    found = {n: int(v) for n, v in zip(names, row, strict=True)}
    found["participant_sessions"], found["participant_session_records"] = int(sessions[0]), int(sessions[1])
    return found
