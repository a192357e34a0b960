"""Engines behind one small interface, chosen by URL: DuckDB (default), PostgreSQL, ClickHouse, Spark, and the
scalar reference meter.

Owns: connecting, putting a record file where the engine can scan it, running the compiled queries, and
turning error codes into the reference meter's errors. Does not own: SQL (``compile.py``, ``dialects.py``).

Per-record metering first runs the validation queries (duplicate ids, then the first row that breaks the
format or cannot be metered) and only then the metering query. Totals run one query that also counts bad
rows, and an id screen (missing and repeated ids; on DuckDB at the same time, on a second cursor); only when
either finds something do the validation queries name the first. So a bad file fails the same way on every
engine, and a clean one is read once for the totals and once for its ids.

A policy with parts (input, cached and output tokens of one request) compiles each part over one relation,
and one query (``UNION ALL``) runs them all, combined as the reference combines them: per-record rows by
record, then by part; totals merged per meter; errors in the reference's order (the record format and
repeated ids first, then each part over every record).
"""

from __future__ import annotations

import json
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import pyarrow.parquet as pq

from talktime.core.metering.meter import MeteredRecord, Totals, meter_iter, summarize
from talktime.core.metering.policy import Policy
from talktime.core.records import ATTR_PREFIX, RECORD_FIELDS
from talktime.engine.compile import Compiled, CompiledParts, attr_columns, compile_parts, compile_policy
from talktime.engine.dialects import CLICKHOUSE, DUCKDB, DUCKDB_FAST, DUCKDB_WIDE, POSTGRES, SPARK, Dialect
from talktime.engine.results import engine_error, metered_record, totals
from talktime.engine.sources import Scannable, canonical_parquet
from talktime.io.records_io import _ARROW_TYPES, read_records

#: Up to this many records DuckDB's id screen sorts 8-byte hashes in memory (800 MB at the limit).
SORT_SCREEN_ROWS: Final = 100_000_000

_SQL_TYPES: Final = {
    "string": "VARCHAR",
    "timestamp": "TIMESTAMPTZ",
    "decimal": "DECIMAL(18,6)",
    "int": "BIGINT",
}


def _type_word(name: str) -> str:
    if name.startswith(ATTR_PREFIX):
        return "string"
    kind = str(_ARROW_TYPES[name])
    if kind.startswith("timestamp"):
        return "timestamp"
    if kind.startswith("decimal"):
        return "decimal"
    return "int" if kind == "int64" else "string"


class Engine(ABC):
    """Meters record files under a policy. ``meter`` streams per-record results; ``totals`` only sums."""

    name: str = "engine"

    def meter(self, path: Path, policy: Policy) -> Iterator[MeteredRecord]:
        if policy.parts:
            yield from self._meter_parts(path, policy)
            return
        with ExitStack() as stack:
            compiled = self._prepare(stack, path, policy)
            for row in self._rows(compiled.records):
                yield metered_record(row, policy, compiled, self.name)

    def totals(self, path: Path, policy: Policy) -> Totals:
        if policy.parts:
            return self._totals_parts(path, policy)
        with ExitStack() as stack:
            compiled, source = self._compile(stack, path, policy)
            try:
                rows, suspect_ids = self._checked_totals(compiled)
            except Exception:
                self._validate(compiled, source, policy)  # a bad row is the better message, if there is one
                raise
            if suspect_ids or any(int(row[6]) for row in rows):
                self._validate(compiled, source, policy)  # names the first bad row (a hash collision passes)
            return totals([row[:6] for row in rows], policy, compiled)

    def close(self) -> None:  # noqa: B027 - engines without resources need nothing
        """Release connections and sessions."""

    # --- a policy with parts: every part over one relation, combined like the reference -----------------

    def _meter_parts(self, path: Path, policy: Policy) -> Iterator[MeteredRecord]:
        """Each record's row under each part in turn (the reference's order), from one query."""
        components = policy.components()
        with ExitStack() as stack:
            compiled, source = self._compile_parts(stack, path, policy)
            self._validate_parts(compiled, source, components)
            for row in self._rows(compiled.records):
                part = int(row[0])
                yield metered_record(row[1:], components[part], compiled.parts[part], self.name)

    def _totals_parts(self, path: Path, policy: Policy) -> Totals:
        """Every part's totals from one query (and the id screen), merged like ``Totals.merge``."""
        components = policy.components()
        with ExitStack() as stack:
            compiled, source = self._compile_parts(stack, path, policy)
            first = replace(compiled.parts[0], checked_totals=compiled.checked_totals)
            try:
                rows, suspect_ids = self._checked_totals(first)
            except Exception:
                self._validate_parts(compiled, source, components)
                raise
            if suspect_ids or any(int(row[7]) for row in rows):
                self._validate_parts(compiled, source, components)
        merged = Totals.for_policy(policy)
        for part, (component, each) in enumerate(zip(components, compiled.parts, strict=True)):
            mine = [row[1:7] for row in rows if int(row[0]) == part]
            merged.merge(totals(mine, component, each))
        return merged

    def _compile_parts(self, stack: ExitStack, path: Path, policy: Policy) -> tuple[CompiledParts, Scannable]:
        """Every part compiled over one relation (the file staged once, with every part's attrs)."""
        attrs = attr_columns(policy)
        source = stack.enter_context(canonical_parquet(path, attrs))
        relation = self._relation(stack, source.path, attrs)
        return compile_parts(policy, self.dialect, relation), source

    def _validate_parts(
        self, compiled: CompiledParts, source: Scannable, components: Sequence[Policy]
    ) -> None:
        """The reference reads every record (the format, repeated ids) before it meters any part, then meters
        each part over every record: the first format or id error wins, then the first part's first error.
        (Parts share the policy's id and versions, all an error message names.)"""
        first = compiled.parts[0]
        self._validate(replace(first, validation=first.formats), source, components[0])
        metering = replace(first, validation=compiled.validation, any_duplicate="")  # ids screened above
        self._validate(metering, source, components[0])

    def _checked_totals(self, compiled: Compiled) -> tuple[Sequence[Sequence[Any]], bool]:
        """Rows of :attr:`Compiled.checked_totals`, and whether any id may be missing or repeated."""
        rows = self._fetch(compiled.checked_totals)
        missing, repeats = self._fetch(compiled.id_screen)[0]
        return rows, bool(int(missing) or int(repeats))

    def _prepare(self, stack: ExitStack, path: Path, policy: Policy) -> Compiled:
        compiled, source = self._compile(stack, path, policy)
        self._validate(compiled, source, policy)
        return compiled

    def _compile(self, stack: ExitStack, path: Path, policy: Policy) -> tuple[Compiled, Scannable]:
        attrs = attr_columns(policy)
        source = stack.enter_context(canonical_parquet(path, attrs))
        relation = self._relation(stack, source.path, attrs)
        return compile_policy(policy, self.dialect, relation), source

    def _validate(self, compiled: Compiled, source: Scannable, policy: Policy) -> None:
        found: list[tuple[int, int, str, str | None]] = []
        for row, rid, code in self._fetch(compiled.validation):
            if code is None:  # no bad row: the query gives the first row, whose error is NULL
                continue
            found.append((int(row), 0 if str(code).startswith("fmt:") else 2, str(code), rid))
        # cheap test first; the window finds the row. (Empty when the ids were screened already.)
        if compiled.any_duplicate and self._fetch(compiled.any_duplicate):
            for row, rid in self._fetch(compiled.duplicates):
                found.append((int(row), 1, "dup", rid))
        if found:
            row, _, code, rid = min(found)
            raise engine_error(code, rid, source.where(row), policy)

    @property
    @abstractmethod
    def dialect(self) -> Dialect: ...

    @abstractmethod
    def _relation(self, stack: ExitStack, file: Path, attrs: list[str]) -> str:
        """SQL naming a relation with every record column, the policy's attrs and ``_row`` (1-based)."""

    @abstractmethod
    def _fetch(self, sql: str) -> Sequence[Sequence[Any]]: ...

    def _rows(self, sql: str) -> Iterator[Sequence[Any]]:
        yield from self._fetch(sql)


def _columns(file: Path, attrs: list[str], dialect: Dialect, cast: bool) -> str:
    """Select list giving every canonical column (typed NULL when the file lacks it)."""
    present = set(pq.ParquetFile(file).schema_arrow.names)
    parts = []
    for name in [*RECORD_FIELDS, *attrs]:
        word = _type_word(name)
        sql_type = _SQL_TYPES[word]
        if name in present:
            expr = dialect.ident(name)
            parts.append(f"CAST({expr} AS {sql_type}) AS {expr}" if cast and word != "string" else expr)
        else:
            parts.append(f"CAST(NULL AS {sql_type}) AS {dialect.ident(name)}")
    return ", ".join(parts)


class DuckDBEngine(Engine):
    """DuckDB in process: scans Parquet where it lies, in memory or in a database file."""

    name = "duckdb"
    #: Most records the id screen sorts in memory (see :meth:`_checked_totals`).
    sort_screen_rows = SORT_SCREEN_ROWS

    def __init__(self, database: str = ":memory:") -> None:
        import duckdb

        self.connection = duckdb.connect(database)
        self.connection.execute("SET enable_progress_bar = false")  # a terminal bar would mix into output
        # DuckDB's partial aggregate pushdown first inlines every projection between an aggregate and a join
        # below it into the aggregate, copying an expression at each mention, and keeps that even when it then
        # pushes nothing. The compiled layers name earlier columns several times, so with a join under the
        # totals (IN lists of 5+ constants were joins, before they became OR chains) the sums grew
        # exponentially with the layers: a drawn policy took all memory while planning. Nothing here gains
        # from the pushdown.
        names = self.connection.execute("SELECT name FROM duckdb_optimizers()").fetchall()
        optimizers = {row[0] for row in names}
        if "partial_aggregate_pushdown" in optimizers:
            self.connection.execute("SET disabled_optimizers = 'partial_aggregate_pushdown'")
        self.fast = False

    @property
    def dialect(self) -> Dialect:
        return DUCKDB_FAST if self.fast else DUCKDB_WIDE

    def totals(self, path: Path, policy: Policy) -> Totals:
        """Sums with 64-bit integers first; if any value does not fit (DuckDB raises), again with 128 bits."""
        import duckdb

        self.fast = True
        try:
            return super().totals(path, policy)
        except (duckdb.OutOfRangeException, duckdb.ConversionException):
            self.fast = False
            return super().totals(path, policy)
        finally:
            self.fast = False

    def _relation(self, stack: ExitStack, file: Path, attrs: list[str]) -> str:
        return self._relation_of(file, attrs)

    def _checked_totals(self, compiled: Compiled) -> tuple[Sequence[Sequence[Any]], bool]:
        """The totals and the id screen at once, on two cursors: each leaves the other's idle moments to it.

        The screen sorts the ids' 64-bit hashes in NumPy (a vectorised sort, several times cheaper than the
        engine's distinct-count hash table) and looks for two equal neighbours or the hash of a missing id.
        Either only sends the engine to the exact validation queries. Beyond :attr:`sort_screen_rows`
        records the hashes would take too much memory, and the engine counts distinct ids itself (spilling
        to disk if it must).
        """
        with ThreadPoolExecutor(max_workers=1) as pool, self.connection.cursor() as cursor:
            screen = pool.submit(self._screen_ids, compiled)
            rows = cursor.execute(compiled.checked_totals).fetchall()
            return rows, screen.result()

    def _screen_ids(self, compiled: Compiled) -> bool:
        import numpy as np

        with self.connection.cursor() as cursor:
            count = int(cursor.execute(compiled.id_count).fetchall()[0][0])
            if count > self.sort_screen_rows:
                missing, repeats = cursor.execute(compiled.id_screen).fetchall()[0]
                return bool(int(missing) or int(repeats))
            null_id = f"SELECT {DUCKDB.id_hash.format(x='CAST(NULL AS VARCHAR)')}"
            missing_hash = cursor.execute(null_id).fetchall()
            hashes = cursor.execute(compiled.id_hashes).fetchnumpy()["_h"]
        hashes.sort()
        if bool((hashes == np.uint64(missing_hash[0][0])).any()):
            return True
        return bool((hashes[1:] == hashes[:-1]).any())

    @staticmethod
    def _relation_of(file: Path, attrs: list[str]) -> str:
        literal = DUCKDB.str_lit(str(file))
        return (
            f"(SELECT file_row_number + 1 AS _row, {_columns(file, attrs, DUCKDB, cast=True)} "
            f"FROM read_parquet({literal}, file_row_number = true)) AS _records"
        )

    def _fetch(self, sql: str) -> Sequence[Sequence[Any]]:
        return self.connection.execute(sql).fetchall()

    def _rows(self, sql: str) -> Iterator[Sequence[Any]]:
        cursor = self.connection.execute(sql)
        while batch := cursor.fetchmany(10_000):
            yield from batch

    def close(self) -> None:
        self.connection.close()


class ReferenceEngine(Engine):
    """The scalar reference meter behind the same interface (records one at a time, with full trails)."""

    name = "reference"

    @property
    def dialect(self) -> Dialect:
        raise NotImplementedError

    def meter(self, path: Path, policy: Policy) -> Iterator[MeteredRecord]:
        return meter_iter(read_records(path), policy)

    def totals(self, path: Path, policy: Policy) -> Totals:
        return summarize(read_records(path), policy)

    def _relation(self, stack: ExitStack, file: Path, attrs: list[str]) -> str:
        raise NotImplementedError

    def _fetch(self, sql: str) -> Sequence[Sequence[Any]]:
        raise NotImplementedError


def _staged(stack: ExitStack, file: Path, attrs: list[str]) -> Path:
    """The canonical Parquet with an explicit ``_row`` column, written by DuckDB, for engines that load it."""
    import duckdb

    target = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="talktime-"))) / "records.parquet"
    connection = duckdb.connect()
    try:
        relation = DuckDBEngine._relation_of(file, attrs)
        connection.execute(
            f"COPY (SELECT * FROM {relation} ORDER BY _row) TO {DUCKDB.str_lit(str(target))} (FORMAT parquet)"
        )
    finally:
        connection.close()
    return target


class PostgresEngine(Engine):
    """PostgreSQL through psycopg: records are copied into a temporary table, then metered there."""

    name = "postgresql"

    def __init__(self, url: str) -> None:
        import psycopg

        self.connection = psycopg.connect(url, connect_timeout=5, autocommit=True)
        self._tables = 0

    @property
    def dialect(self) -> Dialect:
        return POSTGRES

    def _relation(self, stack: ExitStack, file: Path, attrs: list[str]) -> str:
        staged = pq.ParquetFile(_staged(stack, file, attrs))
        names = staged.schema_arrow.names
        self._tables += 1
        table = f"talktime_records_{self._tables}"
        types = {"string": "TEXT", "timestamp": "TIMESTAMPTZ", "decimal": "NUMERIC(18,6)", "int": "BIGINT"}
        columns = ", ".join(
            f"{POSTGRES.ident(n)} {'BIGINT' if n == '_row' else types[_type_word(n)]}" for n in names
        )
        with self.connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {table}")
            cursor.execute(f"CREATE TEMPORARY TABLE {table} ({columns})")
            quoted = ", ".join(POSTGRES.ident(n) for n in names)
            with cursor.copy(f"COPY {table} ({quoted}) FROM STDIN") as copy:
                for batch in staged.iter_batches(batch_size=10_000):
                    for row in zip(*(c.to_pylist() for c in batch.columns), strict=True):
                        copy.write_row(row)
        stack.callback(self._drop, table)
        return table

    def _drop(self, table: str) -> None:
        with self.connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {table}")

    def _fetch(self, sql: str) -> Sequence[Sequence[Any]]:
        with self.connection.cursor() as cursor:
            cursor.execute(sql.encode())
            return cursor.fetchall()

    def close(self) -> None:
        self.connection.close()


class ChdbEngine(Engine):
    """ClickHouse SQL in process (chdb), scanning the staged Parquet file."""

    name = "clickhouse"

    def __init__(self) -> None:
        import chdb

        # Stateless queries: a chdb Session can hand back an earlier query's empty result with the next one.
        self._query = chdb.query

    @property
    def dialect(self) -> Dialect:
        return CLICKHOUSE

    def _relation(self, stack: ExitStack, file: Path, attrs: list[str]) -> str:
        staged = _staged(stack, file, attrs)
        return f"file({CLICKHOUSE.str_lit(str(staged))}, Parquet)"

    def _fetch(self, sql: str) -> Sequence[Sequence[Any]]:
        result = self._query(sql, "JSONCompact")  # type: ignore[no-untyped-call]
        text = result.bytes().decode() if hasattr(result, "bytes") else str(result)
        if not text.strip():
            return []
        data: list[list[Any]] = json.loads(text, parse_float=Decimal)["data"]
        return data

    def close(self) -> None:
        """Nothing to release: each query stands alone."""


class ClickHouseEngine(ChdbEngine):
    """A ClickHouse server through clickhouse-connect: records are inserted into a temporary table."""

    def __init__(self, url: str) -> None:
        import clickhouse_connect

        parts = urlsplit(url)
        self.client = clickhouse_connect.get_client(
            host=parts.hostname or "localhost",
            port=parts.port or 8123,
            username=parts.username or "default",
            password=parts.password or "",
            database=parts.path.strip("/") or "default",
            connect_timeout=5,
        )
        self._tables = 0

    def _relation(self, stack: ExitStack, file: Path, attrs: list[str]) -> str:
        self._tables += 1
        table = f"talktime_records_{self._tables}"
        data = pq.read_table(_staged(stack, file, attrs))
        self.client.command(f"DROP TABLE IF EXISTS {table}")
        types = {
            "string": "Nullable(String)",
            "timestamp": "Nullable(DateTime64(6, 'UTC'))",
            "decimal": "Nullable(Decimal(18, 6))",
            "int": "Nullable(Int64)",
        }
        columns = ", ".join(
            f"{CLICKHOUSE.ident(n)} {'Int64' if n == '_row' else types[_type_word(n)]}"
            for n in data.column_names
        )
        self.client.command(f"CREATE TABLE {table} ({columns}) ENGINE = Memory")
        self.client.insert_arrow(table, data)
        stack.callback(self.client.command, f"DROP TABLE IF EXISTS {table}")
        return table

    def _fetch(self, sql: str) -> Sequence[Sequence[Any]]:
        return [list(row) for row in self.client.query(sql).result_rows]

    def close(self) -> None:
        self.client.close()


class SparkEngine(Engine):
    """Apache Spark SQL: ``local[2]`` (or a cluster), scanning the staged Parquet file."""

    name = "spark"

    def __init__(self, master: str = "local[*]") -> None:
        from pyspark.sql import SparkSession

        self.spark = (
            SparkSession.builder.master(master)
            .appName("talktime")
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.ui.enabled", "false")
            .config("spark.sql.shuffle.partitions", "4")
            .getOrCreate()
        )
        self._views = 0

    @property
    def dialect(self) -> Dialect:
        return SPARK

    def _relation(self, stack: ExitStack, file: Path, attrs: list[str]) -> str:
        self._views += 1
        view = f"talktime_records_{self._views}"
        self.spark.read.parquet(str(_staged(stack, file, attrs))).createOrReplaceTempView(view)
        stack.callback(self.spark.catalog.dropTempView, view)
        return view

    def _fetch(self, sql: str) -> Sequence[Sequence[Any]]:
        return [tuple(row) for row in self.spark.sql(sql).collect()]

    def _rows(self, sql: str) -> Iterator[Sequence[Any]]:
        for row in self.spark.sql(sql).toLocalIterator():
            yield tuple(row)

    def close(self) -> None:
        """Keep the session: starting one takes seconds, and Spark allows one per process."""
