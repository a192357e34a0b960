"""The DuckDB adapter's dedup hash and its upgrade path (the shared contract is in test_event_store.py)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from talktime.store import RawEvent, open_store
from talktime.store.duckdb_store import KEY_HASH


def raw(i: int, source: str = "/a") -> RawEvent:
    return RawEvent(
        source, f"e{i}", "talktime.connection.opened", "call-1", datetime(2025, 3, 1, tzinfo=UTC), "{}"
    )


def test_the_key_hash_is_md5_of_the_key_whatever_the_duckdb_version() -> None:
    # Stored hashes must mean the same after a DuckDB upgrade, or a retry would slip past dedup.
    sql = "SELECT " + KEY_HASH.format(tenant="'t1'", source="'/a'", id="'e1'")
    ((got,),) = duckdb.connect().execute(sql).fetchall()
    assert got == int.from_bytes(hashlib.md5(b"t1\x00/a\x00e1").digest(), "little")


def test_a_file_from_before_the_hash_column_keeps_deduplicating(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute(
        "CREATE TABLE events (tenant VARCHAR NOT NULL, source VARCHAR NOT NULL, id VARCHAR NOT NULL, "
        "type VARCHAR NOT NULL, subject VARCHAR, time TIMESTAMPTZ, data VARCHAR NOT NULL, "
        "received_at TIMESTAMPTZ NOT NULL, PRIMARY KEY (tenant, source, id))"
    )
    con.execute(
        "INSERT INTO events VALUES "
        "('t1', '/a', 'e1', 'talktime.connection.opened', 'call-1', NULL, '{}', now())"
    )
    con.close()
    store = open_store(str(path))
    try:
        assert store.append("t1", [raw(1), raw(2)]) == [False, True]
        assert store.count("t1") == 2
    finally:
        store.close()
