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
from talktime.core.reconcile.model import CAUSES, Options, Summary
from talktime.core.records import RECORD_FIELDS
from talktime.engine.compile import UnsupportedPolicy, _Builder, attr_columns
from talktime.engine.dialects import DUCKDB
from talktime.engine.results import engine_error

PROVIDER_ID: Final = "attr.provider_id"
#: Per-line cause columns, in CAUSES order.
CAUSE_COLUMNS: Final = tuple(CAUSES)


@dataclass(frozen=True, slots=True)
class Result:
    """A reconciliation: the summary and one row per line (integers at ``scale``; see ``line_dicts``)."""

    summary: Summary
    lines: pa.Table
    scale: int


def _steps(policy: Policy, relation: str) -> tuple[str, int]:
    """SQL with each step's output per record (integers at the returned scale) and the error column."""
    b = _Builder(policy, DUCKDB, relation)
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
    **dict.fromkeys(("characters", "input_tokens", "output_tokens"), "BIGINT"),
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
    """
    attrs = sorted({*attr_columns(policy), PROVIDER_ID})
    for name in attrs:
        if name not in records.column_names:
            records = records.append_column(name, pa.nulls(records.num_rows, pa.string()))
    if "_row" not in records.column_names:
        records = records.append_column("_row", pa.array(range(1, records.num_rows + 1), pa.int64()))
    con = duckdb.connect()
    try:
        con.register("recs", records)
        con.register("lines", statement)
        rec_sql, rs = _steps(policy, "recs")
        line_sql, ls = _steps(_provider_reported(policy), _line_records(policy, attrs))
        con.execute(f"CREATE TEMP TABLE r AS {rec_sql}")
        bad = con.execute(
            "SELECT _row, id, _error FROM r WHERE _error IS NOT NULL ORDER BY _row LIMIT 1"
        ).fetchall()
        if bad:
            row, rid, code = bad[0]
            raise engine_error(str(code), rid, where(int(row)) if where else f"record row {row}", policy)
        con.execute(f"CREATE TEMP TABLE lp AS SELECT _row AS line, C FROM ({line_sql})")
        return _attribute(con, policy, options, rs, ls, attrs)
    finally:
        con.close()


def _attribute(
    con: duckdb.DuckDBPyConnection, policy: Policy, options: Options, rs: int, ls: int, attrs: list[str]
) -> Result:
    g = max(rs, ls)
    up_r, up_l = 10 ** (g - rs), 10 ** (g - 6)
    pid = "NULLIF(TRIM(_pid), '')"
    provider = policy.provider.lower()
    keep = f"AND (provider IS NULL OR LOWER(provider) = {DUCKDB.str_lit(provider)})" if provider else ""
    window, tol = _us(options.window_seconds), _us(options.tolerance_seconds) * up_l
    delay = _us(options.delay_seconds)
    tally_mode = options.tally == "tally"
    content = (
        "CASE WHEN status = 'completed' THEN COALESCE(_audio, CASE WHEN _answered IS NOT NULL "
        "THEN _end - _answered END, _end - _start, 0) ELSE 0 END"
    )

    def s(col: str) -> str:
        """A record step column at scale g."""
        return f"CAST({col} AS HUGEINT) * {up_r}"

    on = "TRUE" if tally_mode else "FALSE"
    off = "FALSE" if tally_mode else "TRUE"
    sql = f"""
    WITH rk AS (
        SELECT _row, id, COALESCE(session, 'record:' || id) AS _session, _start,
               COALESCE({pid}, id) AS _key, _actual AS _a_us,
               ROW_NUMBER() OVER (PARTITION BY COALESCE({pid}, id) ORDER BY _row) AS _kn,
               ROW_NUMBER() OVER (PARTITION BY COALESCE(session, 'record:' || id) ORDER BY _start, id) = 1
                   AS _primary,
               CAST({content} AS HUGEINT) * {up_l} AS _raw,
               (_audio IS NULL AND _answered IS NULL) AS _tally_conn, _pconn,
               CAST(_actual AS HUGEINT) * {up_l} AS A, {s("T0")} AS T0, {s("SEG")} AS SEG, {s("RO")} AS RO,
               {s("RND")} AS RND, {s("CH")} AS CH, {s("C")} AS C
        FROM r JOIN (SELECT _row, {DUCKDB.ident(PROVIDER_ID)} AS _pid FROM recs) USING (_row)
        WHERE _meter <> {DUCKDB.str_lit(NOT_COUNTED)} {keep}
    ),
    ln AS (
        SELECT l.line, l.id AS lid, epoch_us(l.started_at) AS lstart, l.duration_us AS ldur, l.amount,
               COALESCE(CAST(l.billed_us AS HUGEINT) * {up_l}, CAST(lp.C AS HUGEINT) * {10 ** (g - ls)}) AS P,
               ROW_NUMBER() OVER (PARTITION BY l.id ORDER BY l.line) AS _n
        FROM lines l JOIN lp ON lp.line = l.line
    ),
    ul AS (SELECT * FROM ln WHERE lid IS NULL OR _n = 1),
    idm AS (SELECT ul.line, rk._row FROM ul JOIN rk ON ul.lid = rk._key AND rk._kn = 1),
    l2 AS (SELECT * FROM ul WHERE line NOT IN (SELECT line FROM idm)),
    r2 AS (SELECT * FROM rk WHERE _row NOT IN (SELECT _row FROM idm)),
    cand AS (
        SELECT l2.line, r2._row, ABS(l2.lstart - r2._start) AS ds, ABS(l2.ldur - r2._a_us) AS dd
        FROM l2 JOIN r2 ON r2._start BETWEEN l2.lstart - {window} AND l2.lstart + {window}
        WHERE ABS(l2.ldur - r2._a_us) <= {window}
    ),
    ranked AS (
        SELECT line, _row,
               ROW_NUMBER() OVER (PARTITION BY line ORDER BY ds, dd, _row) AS bl,
               ROW_NUMBER() OVER (PARTITION BY _row ORDER BY ds, dd, line) AS br
        FROM cand
    ),
    pairs AS (SELECT line, _row FROM idm UNION ALL SELECT line, _row FROM ranked WHERE bl = 1 AND br = 1),
    edge AS (SELECT COALESCE(MAX(lstart), 0) - {delay} AS e FROM ln),
    walked AS (
        SELECT rk.*,
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
        FROM rk
    ),
    causes AS (
        SELECT *,
               CASE WHEN _pconn = 1 AND NOT _tally_conn THEN 0 ELSE _basis END AS time_basis,
               CASE WHEN _pconn = 1 AND NOT _tally_conn THEN _basis ELSE 0 END AS connection_overhead
        FROM walked
    )
    SELECT 'pair' AS _kind, ln.line, ln.lid, c.id AS record_id, c._session, c._primary, ln.amount,
           c.T, c.C AS E, ln.P, c.time_basis, c.connection_overhead, c.lifecycle, c.participants, c.rounding,
           c.minimum, c.channels, c.multiplier, 0 AS missing, 0 AS unbilled, 0 AS billing_delay,
           0 AS duplicated, ln.P - c.C AS unexplained
    FROM pairs p JOIN ln ON ln.line = p.line JOIN causes c ON c._row = p._row
    UNION ALL
    SELECT 'provider_only', ln.line, ln.lid, NULL, NULL, NULL, ln.amount, 0, 0, ln.P, 0, 0, 0, 0, 0, 0, 0, 0,
           ln.P, 0, 0, 0, 0
    FROM ul ln WHERE ln.line NOT IN (SELECT line FROM pairs)
    UNION ALL
    SELECT 'duplicate', ln.line, ln.lid, NULL, NULL, NULL, ln.amount, 0, 0, ln.P, 0, 0, 0, 0, 0, 0, 0, 0,
           0, 0, 0, ln.P, 0
    FROM ln WHERE ln.lid IS NOT NULL AND ln._n > 1
    UNION ALL
    SELECT 'internal_only', NULL, NULL, c.id, c._session, c._primary, NULL, c.T, c.C, 0, c.time_basis,
           c.connection_overhead, c.lifecycle, c.participants, c.rounding, c.minimum, c.channels,
           c.multiplier, 0,
           CASE WHEN c._start >= (SELECT e FROM edge) THEN 0 ELSE -c.C END,
           CASE WHEN c._start >= (SELECT e FROM edge) THEN -c.C ELSE 0 END, 0, 0
    FROM causes c WHERE c._row NOT IN (SELECT _row FROM pairs)
    """
    con.execute(f"CREATE TEMP TABLE out AS {sql}")
    con.execute(
        f"""CREATE TEMP TABLE classed AS SELECT *,
            CASE WHEN _kind <> 'pair' THEN _kind
                 WHEN ABS(unexplained) > {tol} THEN 'mismatched' ELSE 'matched' END AS class,
            ABS(unexplained) > {tol} AS flagged FROM out"""
    )
    return _summarize(con, policy, options, g)


def _summarize(con: duckdb.DuckDBPyConnection, policy: Policy, options: Options, g: int) -> Result:
    def dec(value: object) -> Decimal:
        return Decimal(int(value or 0)).scaleb(-g) if value else Decimal(0)  # type: ignore[call-overload]

    sums = ", ".join(f"SUM({c})" for c in ("T", "E", "P", *CAUSE_COLUMNS, "unexplained"))
    totals = con.execute(f"SELECT {sums}, COUNT(*) FILTER (flagged) FROM classed").fetchall()[0]
    t, e, p = (dec(v) for v in totals[:3])
    causes = {c: dec(v) for c, v in zip(CAUSE_COLUMNS, totals[3:-2], strict=True)}
    unexplained = dec(totals[-2])
    counts = {
        str(k): int(n) for k, n in con.execute("SELECT class, COUNT(*) FROM classed GROUP BY 1").fetchall()
    }
    details = _details(con)
    money = _money(con, options, policy, causes, unexplained, t, p, g)
    label = policy.current.params.rounding_label()
    lines = con.sql(
        "SELECT class, line, lid AS provider_id, record_id, CAST(T AS BIGINT) AS internal, "
        "CAST(E AS BIGINT) AS expected, CAST(P AS BIGINT) AS provider, "
        + ", ".join(f"CAST({c} AS BIGINT) AS {c}" for c in CAUSE_COLUMNS)
        + ", CAST(unexplained AS BIGINT) AS unexplained, flagged, amount "
        "FROM classed ORDER BY line NULLS LAST, record_id"
    ).to_arrow_table()
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
        not_counted_records=int(
            con.execute(f"SELECT COUNT(*) FROM r WHERE _meter = {DUCKDB.str_lit(NOT_COUNTED)}").fetchall()[0][
                0
            ]
        ),
        details=details,
        money=money,
        rounding_label=label,
    )
    return Result(summary, lines, g)


def _details(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    row = con.execute(
        """SELECT COUNT(*) FILTER (rounding <> 0), COUNT(*) FILTER (minimum <> 0),
                  COUNT(*) FILTER (channels <> 0), COUNT(*) FILTER (_kind = 'provider_only'),
                  COUNT(*) FILTER (unbilled <> 0), COUNT(*) FILTER (_kind = 'duplicate')
           FROM classed"""
    ).fetchall()[0]
    sessions = con.execute(
        """WITH s AS (SELECT _session FROM classed WHERE participants <> 0 GROUP BY 1)
           SELECT COUNT(DISTINCT c._session), COUNT(*) FROM classed c JOIN s ON s._session = c._session
           WHERE c.record_id IS NOT NULL"""
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


def _money(
    con: duckdb.DuckDBPyConnection,
    options: Options,
    policy: Policy,
    causes: dict[str, Decimal],
    unexplained: Decimal,
    internal: Decimal,
    provider: Decimal,
    g: int,
) -> dict[str, object] | None:
    from talktime.core.decimals import text
    from talktime.core.reconcile.model import money_split

    row = con.execute(
        "SELECT SUM(c.amount), SUM(c.P) FILTER (c.amount IS NOT NULL), "
        "COUNT(*) FILTER (c.amount IS NULL AND c.P <> 0), MIN(l.currency), COUNT(DISTINCT l.currency) "
        "FROM classed c LEFT JOIN lines l ON l.line = c.line"
    ).fetchall()[0]
    amount, priced, unpriced, currency, currencies = row
    if options.rate_per_unit is not None:
        rate = options.rate_per_unit / policy.unit_seconds
        source = "given"
    elif amount is not None and priced:
        rate = (Decimal(amount) / Decimal(int(priced)).scaleb(-g)).quantize(Decimal("1e-12"))
        source = "inferred from the statement (amount / billed seconds)"
    else:
        return None
    # Lines without an amount are valued at the rate, so "rate" covers only priced lines.
    provider_amount = Decimal(amount or 0) + (provider - Decimal(int(priced or 0)).scaleb(-g)) * rate
    parts = money_split(causes, unexplained, internal, provider, provider_amount, rate)
    return {
        "currency": currency if currencies == 1 else None,
        "rate_per_second": text(rate),
        "rate_source": source,
        "unpriced_lines": int(unpriced or 0),
        "internal_amount": text(parts.pop("internal")),
        "provider_amount": text(provider_amount),
        "gap_amount": text(provider_amount - internal * rate),
        "causes": {k: text(v) for k, v in parts.items() if k not in ("unexplained",)},
        "unexplained_amount": text(parts["unexplained"]),
    }
