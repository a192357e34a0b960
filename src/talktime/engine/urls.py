"""Choosing an engine from a URL: ``duckdb`` (default), ``duckdb:///file.db``, ``postgresql://...``,
``clickhouse://...``, ``chdb`` (ClickHouse in process), ``spark``, ``spark://host:port`` or ``reference``.

Owns: parsing the URL, checking a server answers (a few seconds at most, never a hang) and a missing optional
library, each as one :class:`~talktime.errors.InputError` line. Does not own: the engines themselves.
"""

from __future__ import annotations

import socket
from typing import Final
from urllib.parse import urlsplit

from talktime.engine.backends import (
    ChdbEngine,
    ClickHouseEngine,
    DuckDBEngine,
    Engine,
    PostgresEngine,
    ReferenceEngine,
    SparkEngine,
)
from talktime.errors import InputError

DEFAULT: Final = "duckdb"
CONNECT_SECONDS: Final = 5
_KNOWN: Final = (
    "duckdb, duckdb:///file.db, postgresql://..., clickhouse://..., chdb, spark, spark://host:port, reference"
)
_EXTRA: Final = {
    "psycopg": "postgres",
    "chdb": "clickhouse",
    "clickhouse_connect": "clickhouse",
    "pyspark": "spark",
}


def _reachable(url: str, host: str | None, port: int | None, default_port: int) -> None:
    address = (host or "localhost", port or default_port)
    try:
        with socket.create_connection(address, timeout=CONNECT_SECONDS):
            pass
    except OSError as error:
        raise InputError(f"engine {url!r}: cannot reach {address[0]}:{address[1]} ({error})") from None


def connect(url: str | None) -> Engine:
    """The engine a URL names, connected. Bad URL, unreachable server or missing extra: one InputError."""
    text = (url or DEFAULT).strip()
    try:
        return _connect(text)
    except ModuleNotFoundError as error:
        extra = _EXTRA.get((error.name or "").split(".")[0], "")
        hint = f"pip install 'talktime[{extra}]'" if extra else "install its Python library"
        raise InputError(f"engine {text!r} needs {error.name}: {hint}") from None
    except InputError:
        raise
    except Exception as error:  # a driver's own error on connect: still one line
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InputError(f"engine {text!r}: cannot connect: {first}") from None


def _connect(text: str) -> Engine:
    if text == "reference":
        return ReferenceEngine()
    if text == "duckdb":
        return DuckDBEngine()
    if text == "chdb":
        return ChdbEngine()
    if text == "spark":
        return SparkEngine("local[*]")
    parts = urlsplit(text)
    try:
        port = parts.port
    except ValueError:
        raise InputError(f"engine {text!r}: the port is not a number") from None
    if parts.scheme == "duckdb":
        if parts.netloc:
            raise InputError(f"engine {text!r}: write a database file as duckdb:///path/to/file.db")
        return DuckDBEngine(parts.path or ":memory:")
    if parts.scheme in ("postgresql", "postgres"):
        if parts.hostname and not parts.hostname.startswith("/"):
            _reachable(text, parts.hostname, port, 5432)
        return PostgresEngine(text)
    if parts.scheme == "clickhouse":
        _reachable(text, parts.hostname, port, 8123)
        return ClickHouseEngine(text)
    if parts.scheme == "spark":
        _reachable(text, parts.hostname, port, 7077)
        return SparkEngine(text)
    raise InputError(f"engine {text!r}: not an engine URL; use one of {_KNOWN}")
