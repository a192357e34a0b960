"""The hashes a batch carries into the embedded store, computed in Python (talktime.store.key_hashes), must
equal DuckDB's SQL bit for bit: the exact dedup and every record look-up recompute them in SQL, so one
differing bit would let a resent event in twice or lose a record's earlier events."""

from __future__ import annotations

from pathlib import Path

import duckdb
import orjson
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from talktime.app import service
from talktime.ingest.batch import prepare_items
from talktime.store.duckdb_records import RECORD_HASH
from talktime.store.duckdb_store import KEY_HASH, DuckDBStore
from talktime.store.key_hashes import key_hashes, record_hash, record_hashes

#: Text at the edges of the hashed form: empty, NUL (the separator itself) inside a value, non-ASCII of
#: two, three and four UTF-8 bytes, a JSON escape's text, a long value.
EDGES = ["", "\0", "a\0b", "\0\0", "é", "€uro", "😀", "日本語/通話", "\\u0000", "x" * 1000, " ", "t\0"]


def duckdb_hashes(
    tenant: str, sources: list[str], ids: list[str], rids: list[str | None]
) -> list[tuple[int, int, int]]:
    """(k, k2, rh) per row, as the store's SQL computes them over Arrow rows."""
    con = duckdb.connect()
    con.register("rows", pa.table({"source": sources, "id": ids, "rid": pa.array(rids, pa.string())}))
    key = KEY_HASH.format(tenant="$tenant", source="source", id="id")
    rh = RECORD_HASH.format(tenant="$tenant", rid="rid")
    found = con.execute(  # a scan of one small table keeps the rows' order
        f"SELECT ({key} >> 64)::UBIGINT, ({key} & 18446744073709551615)::UBIGINT, {rh} FROM rows",
        {"tenant": tenant},
    ).fetchall()
    return [(int(k), int(k2), int(rh)) for k, k2, rh in found]


def python_hashes(
    tenant: str, sources: list[str], ids: list[str], rids: list[str | None]
) -> list[tuple[int, int, int]]:
    k, k2 = key_hashes(tenant, sources, ids)
    rh = record_hashes(tenant, rids)
    return [(int(a), int(b), int(c)) for a, b, c in zip(k, k2, rh, strict=True)]


def test_python_halves_equal_duckdb_md5_on_edge_strings() -> None:
    for tenant in EDGES:
        sources = [s for s in EDGES for _ in EDGES]
        ids = [i for _ in EDGES for i in EDGES]
        rids: list[str | None] = [*EDGES, None] * len(EDGES)
        rids = rids[: len(ids)]
        assert python_hashes(tenant, sources, ids, rids) == duckdb_hashes(tenant, sources, ids, rids), tenant


@settings(max_examples=60, deadline=None)
@given(
    tenant=st.text(),
    rows=st.lists(st.tuples(st.text(), st.text(), st.none() | st.text()), min_size=1, max_size=20),
)
def test_python_hashes_equal_duckdb_on_drawn_text(
    tenant: str, rows: list[tuple[str, str, str | None]]
) -> None:
    sources, ids, rids = (list(column) for column in zip(*rows, strict=True))
    assert python_hashes(tenant, sources, ids, rids) == duckdb_hashes(tenant, sources, ids, rids)


def test_the_halves_are_the_md5_digest_duckdb_prints() -> None:
    # md5_number is DuckDB's md5 digest read little-endian: k2 its first eight bytes, k its last eight
    con = duckdb.connect()
    for text in EDGES:
        ((hex_digest,),) = con.execute("SELECT md5($t)", {"t": "t\0/a\0" + text}).fetchall()
        ((k, k2),) = zip(*key_hashes("t", ["/a"], [text]), strict=True)
        digest = bytes.fromhex(hex_digest)
        assert (int(k), int(k2)) == (
            int.from_bytes(digest[8:], "little"),
            int.from_bytes(digest[:8], "little"),
        )


def test_one_record_hash_is_duckdbs_md5_number_lower() -> None:
    ((expected,),) = (
        duckdb.connect().execute("SELECT md5_number_lower('t' || chr(0) || 'café/😀')").fetchall()
    )
    assert record_hash("t", "café/😀") == expected


def event(i: int, source: str = "/pbx\0ü") -> dict[str, object]:
    return {
        "specversion": "1.0",
        "id": f"é-{i}",
        "source": source,
        "type": "talktime.connection.opened",
        "subject": f"call-{i // 2}",
        "time": f"2025-03-01T10:00:{i:02d}Z",
        "data": {"customer": "acme"},
    }


def test_stored_rows_hold_the_sql_hashes_and_resends_count_once(tmp_path: Path) -> None:
    # Rows hashed by ingest (the worker's way) and rows the store hashes itself (service.ingest) store the
    # hashes the SQL computes, so the exact dedup finds them: a resend, either way, is all duplicates.
    store = DuckDBStore(tmp_path / "s.duckdb")
    items = [event(i) for i in range(6)]
    try:
        assert service.ingest_prepared(store, "tenant-ñ", prepare_items(items, "tenant-ñ")).accepted == 6
        again = service.ingest(store, "tenant-ñ", orjson.loads(orjson.dumps(items)))
        assert (again.accepted, again.duplicate) == (0, 6)
        twice = service.ingest_prepared(store, "tenant-ñ", prepare_items(items, "tenant-ñ"))
        assert (twice.accepted, twice.duplicate) == (0, 6)
        key = KEY_HASH.format(tenant="tenant", source="source", id="id")
        rh = RECORD_HASH.format(tenant="tenant", rid="rid")
        assert store.read(f"SELECT count(*), count(*) FILTER (h = {key} AND rh = {rh}) FROM events") == [
            (6, 6)
        ]
        record = store.stored_record("tenant-ñ", "call-1")  # found by its Python hash in the index
        assert record is not None and record.events == 2
    finally:
        store.close()


def test_rows_hashed_for_another_tenant_are_hashed_again(tmp_path: Path) -> None:
    # The hashes travel with the tenant they were made for; a store given them for another tenant must not
    # trust them (the event would be keyed under the wrong tenant and a resend let in twice).
    store = DuckDBStore(tmp_path / "s.duckdb")
    items = [event(i) for i in range(4)]
    try:
        assert service.ingest_prepared(store, "b", prepare_items(items, "a")).accepted == 4
        again = service.ingest_prepared(store, "b", prepare_items(items, "b"))
        assert (again.accepted, again.duplicate) == (0, 4)
        other = service.ingest_prepared(store, "a", prepare_items(items, "a"))
        assert (other.accepted, other.duplicate) == (4, 0)
        assert store.count("a") == 4 and store.count("b") == 4
    finally:
        store.close()
