"""Engines behind one small interface, chosen by URL: DuckDB (default), PostgreSQL, ClickHouse, Spark, and the
scalar reference meter.

Owns: connecting, putting a record file where the engine can scan it, running the compiled queries, and
turning error codes into the reference meter's errors. Does not own: SQL (``compile.py``, ``dialects.py``).

Every engine first runs the validation queries (duplicate ids, then the first row that breaks the format or
cannot be metered) and only then the metering query, so a bad file fails the same way on every engine.
"""

from __future__ import annotations

import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Final

import pyarrow.parquet as pq

from talktime.core.metering.meter import MeteredRecord, Totals, meter_iter, summarize
from talktime.core.metering.policy import Policy
from talktime.core.records import ATTR_PREFIX, RECORD_FIELDS
from talktime.engine.compile import Compiled, attr_columns, compile_policy
from talktime.engine.dialects import CLICKHOUSE, DUCKDB, POSTGRES, SPARK, Dialect
from talktime.engine.results import engine_error, metered_record, totals
from talktime.engine.sources import canonical_parquet
from talktime.errors import InputError, RecordError
from talktime.io.records_io import _ARROW_TYPES, read_records

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
        with ExitStack() as stack:
            compiled, noun = self._prepare(stack, path, policy)
            for row in self._rows(compiled.records):
                yield metered_record(row, policy, compiled, self.name)
            del noun

    def totals(self, path: Path, policy: Policy) -> Totals:
        with ExitStack() as stack:
            compiled, _ = self._prepare(stack, path, policy)
            return totals(self._fetch(compiled.totals), policy, compiled)

    def close(self) -> None:  # noqa: B027 - engines without resources need nothing
        """Release connections and sessions."""

    def _prepare(self, stack: ExitStack, path: Path, policy: Policy) -> tuple[Compiled, str]:
        attrs = attr_columns(policy)
        file, noun = stack.enter_context(canonical_parquet(path, attrs))
        relation = self._relation(stack, file, attrs)
        compiled = compile_policy(policy, self.dialect, relation)
        self._validate(compiled, path, noun, policy)
        return compiled, noun

    def _validate(self, compiled: Compiled, path: Path, noun: str, policy: Policy) -> None:
        found: list[tuple[int, int, str, str | None]] = []
        for row, rid, code in self._fetch(compiled.validation):
            found.append((int(row), 0 if str(code).startswith("fmt:") else 2, str(code), rid))
        for row, rid in self._fetch(compiled.duplicates):
            found.append((int(row), 1, "dup", rid))
        if found:
            row, _, code, rid = min(found)
            raise engine_error(code, rid, f"{path} {noun} {row}", policy)

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

    def __init__(self, database: str = ":memory:") -> None:
        import duckdb

        self.connection = duckdb.connect(database)

    @property
    def dialect(self) -> Dialect:
        return DUCKDB

    def _relation(self, stack: ExitStack, file: Path, attrs: list[str]) -> str:
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


def _spool_dir(stack: ExitStack) -> Path:
    return Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="talktime-")))


__all__ = [
    "CLICKHOUSE",
    "POSTGRES",
    "SPARK",
    "DuckDBEngine",
    "Engine",
    "InputError",
    "RecordError",
    "ReferenceEngine",
]
