"""SQL dialects the policy compiler writes: data, merged over one base, in the spirit of sqlglot's dialects.

Owns: the handful of expressions that differ between engines (the exact integer type, integer division,
microseconds since the epoch, a calendar month in a time zone, a guarded text-to-number cast). Does not own:
what is computed (``compile.py``) or how a query reaches an engine (``backends.py``).

Every number on the money/time path is an integer count of 10^-scale seconds in :attr:`Dialect.big`:
DuckDB HUGEINT, PostgreSQL NUMERIC (integral values), ClickHouse Int128, Spark DECIMAL(38,0). No DOUBLE.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Final

#: An attribute used as a number must look like this (at most 6 decimal places: microsecond seconds).
NUMBER_PATTERN: Final = "^[+-]?([0-9]+([.][0-9]{0,6})?|[.][0-9]{1,6})$"


@dataclass(frozen=True, slots=True)
class Dialect:
    """How one engine spells the few things standard SQL leaves open. ``{x}``-style templates."""

    name: str
    big: str
    text: str
    epoch_us: str
    seconds_us: str
    parse_us: str
    matches: str
    month: str
    floor_div: str
    quote: str = '"'
    trim: str = "NULLIF(TRIM({x}), '')"
    order_text: str = "{x}"
    backslash_escapes: bool = False
    to_big: str = "CAST({x} AS {big})"
    #: Appended to each layer of the compiled query. PostgreSQL pulls a single-use CTE up into the next
    #: one and substitutes each column by its expression: the layers reference earlier columns several
    #: times, so the expression tree, and the planner's memory, grow exponentially with the layers (a
    #: drawn policy made a backend use all memory and be killed). ``OFFSET 0`` keeps each layer a subquery.
    layer_fence: str = ""
    #: What the duplicate-id screen counts distinct: the id itself, or (DuckDB) a 64-bit hash of it, much
    #: cheaper to aggregate; equal counts prove the ids distinct, unequal ones send to the exact query.
    id_hash: str = "{x}"
    #: The id screen's hash of a raw id, equal to ``id_hash`` of its trimmed form (DuckDB only: other
    #: engines count distinct trimmed ids in SQL).
    screen_hash: str = "{x}"
    #: Write ``x IN ('a', 'b')`` as ``(x = 'a' OR x = 'b')``. DuckDB turns an IN list into a hash join
    #: against a constant table (its ``in_clause`` rewrite), which costs more than the comparisons on a
    #: scan: on 10M records, about a third of the whole metering query.
    or_chains: bool = False

    def ident(self, name: str) -> str:
        return f"{self.quote}{name}{self.quote}"

    def int_lit(self, value: int) -> str:
        """An integer literal that the engine reads as :attr:`big`, however large."""
        if -(2**31) < value < 2**31:
            return str(value)
        return f"CAST('{value}' AS {self.big})"

    def str_lit(self, value: str) -> str:
        if self.backslash_escapes:
            value = value.replace("\\", "\\\\")
        return "'" + value.replace("'", "''") + "'"

    def one_of(self, column: str, values: list[str]) -> str:
        """``column`` equals one of ``values`` (text), as a parenthesised condition; false for none."""
        return self.in_list(column, [self.str_lit(v) for v in values])

    def in_list(self, column: str, literals: list[str]) -> str:
        """``column`` equals one of the SQL ``literals``, as a parenthesised condition; false for none."""
        if not literals:
            return "(1 = 0)"
        if self.or_chains or len(literals) == 1:
            return "(" + " OR ".join(f"{column} = {lit}" for lit in literals) + ")"
        return f"({column} IN ({', '.join(literals)}))"

    def div(self, a: str, b: str) -> str:
        """Floor division of a non-negative integer by a positive one."""
        return self.floor_div.format(a=a, b=b)


#: DuckDB's spellings, the base the other dialects change; DuckDB's own tunings are on :data:`DUCKDB` alone.
_SPELLINGS: Final = Dialect(
    name="duckdb",
    big="HUGEINT",
    text="VARCHAR",
    epoch_us="CAST(epoch_us({x}) AS HUGEINT)",
    seconds_us="CAST({x} * 1000000 AS HUGEINT)",
    parse_us="CAST(TRY_CAST({x} AS DECIMAL(38,6)) * 1000000 AS HUGEINT)",
    matches="regexp_full_match({x}, {p})",
    month="strftime(timezone({tz}, {x}), '%Y-%m')",
    floor_div="(({a}) // ({b}))",
)

DUCKDB: Final = replace(
    _SPELLINGS,
    id_hash="hash({x})",
    # Trimming every id cost as much as hashing and sorting them: an id that is pure ASCII (as many bytes
    # as characters), starts with a printable character and does not end in a space is its own trimmed
    # form (TRIM strips spaces and Unicode space separators, none other in ASCII), so only others are
    # trimmed.
    screen_hash=(
        "hash(CASE WHEN {x} >= '!' AND {x} < chr(127) AND {x} NOT LIKE '% ' AND strlen({x}) = length({x}) "
        "THEN {x} ELSE NULLIF(TRIM({x}), '') END)"
    ),
    or_chains=True,
)

#: DuckDB with 64-bit integers: several times faster; a value that does not fit raises, never wraps, and
#: the engine then reruns the query on :data:`DUCKDB_WIDE`.
DUCKDB_FAST: Final = replace(
    DUCKDB,
    big="BIGINT",
    epoch_us="epoch_us({x})",
    seconds_us="CAST({x} * 1000000 AS BIGINT)",
    parse_us="CAST(TRY_CAST({x} AS DECIMAL(18,6)) * 1000000 AS BIGINT)",
)
DUCKDB_WIDE: Final = DUCKDB

POSTGRES: Final = replace(
    _SPELLINGS,
    name="postgres",
    big="NUMERIC",
    text="TEXT",
    epoch_us="TRUNC(EXTRACT(EPOCH FROM {x}) * 1000000)",
    seconds_us="TRUNC({x} * 1000000)",
    parse_us="(CASE WHEN {x} ~ '"
    + NUMBER_PATTERN.replace("{", "{{").replace("}", "}}")
    + "' THEN TRUNC(CAST({x} AS NUMERIC) * 1000000) END)",
    matches="({x} ~ {p})",
    month="to_char({x} AT TIME ZONE {tz}, 'YYYY-MM')",
    floor_div="div({a}, {b})",
    order_text='{x} COLLATE "C"',
    layer_fence=" OFFSET 0",
)

CLICKHOUSE: Final = replace(
    _SPELLINGS,
    name="clickhouse",
    big="Int128",
    text="String",
    epoch_us="toInt128(toUnixTimestamp64Micro({x}))",
    seconds_us="toInt128(toDecimal128({x}, 6) * 1000000)",
    parse_us="toInt128(toDecimal128OrNull({x}, 6) * 1000000)",
    matches="match({x}, {p})",
    month="formatDateTime({x}, '%Y-%m', {tz})",
    floor_div="intDiv({a}, {b})",
    trim="nullIf(trimBoth({x}), '')",
    to_big="toInt128({x})",
    backslash_escapes=True,
)

SPARK: Final = replace(
    _SPELLINGS,
    name="spark",
    big="DECIMAL(38,0)",
    text="STRING",
    quote="`",
    backslash_escapes=True,
    epoch_us="CAST(unix_micros({x}) AS DECIMAL(38,0))",
    seconds_us="CAST({x} * 1000000 AS DECIMAL(38,0))",
    parse_us="CAST(try_cast({x} AS DECIMAL(38,6)) * 1000000 AS DECIMAL(38,0))",
    matches="({x} RLIKE {p})",
    month="date_format(from_utc_timestamp({x}, {tz}), 'yyyy-MM')",
    floor_div="CAST((({a}) - pmod({a}, {b})) / ({b}) AS DECIMAL(38,0))",
)

DIALECTS: Final = {d.name: d for d in (DUCKDB, POSTGRES, CLICKHOUSE, SPARK)}
