"""A batch's dedup and record hashes computed in Python, equal to the embedded store's SQL.

The embedded store (:mod:`talktime.store.duckdb_store`) keys each event row by ``h``, DuckDB's
``md5_number`` of ``tenant NUL source NUL id``, kept as its two 64-bit halves ``k`` (``h >> 64``, the half
held in memory) and ``k2``, and each event's record by ``rh``, ``md5_number_lower`` of ``tenant NUL rid``
(of the tenant alone where ``rid`` is null: ``concat_ws`` skips a NULL). DuckDB's ``md5_number`` is the
MD5 digest of the UTF-8 text read as a little-endian 128-bit number, so ``k`` is the digest's last eight
bytes and ``k2`` its first eight, each little-endian; ``md5_number_lower`` is ``k``.

:func:`with_hashes` computes them where a batch is decoded (in a ``serve --workers`` process, which knows
the tenant from the request), or in the store for rows that come without them. The SQL stays the
definition wherever the stored rows are compared (the exact dedup, a record's look-up), so these must
equal it bit for bit: ``tests/store/test_key_hashes.py`` holds them to DuckDB's on edge strings.
Rows carry the tenant they were hashed for in their schema's metadata, and a store uses the columns only
for that tenant (rows hashed for another are hashed again).

Per 10,000 events (two MD5s each, one process): about 4 ms here, 8.5 ms in DuckDB's query.

>>> rows = pa.table({"source": ["/pbx"], "id": ["e1"], "rid": ["call-1"]})
>>> hashed = with_hashes("acme", rows)
>>> hashed.column_names, carries_hashes(hashed, "acme"), carries_hashes(hashed, "other")
(['source', 'id', 'rid', 'k', 'k2', 'rh'], True, False)
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Callable, Sequence
from typing import Final, Protocol

import numpy as np
import numpy.typing as npt
import pyarrow as pa


class _Digest(Protocol):
    def digest(self) -> bytes: ...


def _openssl_md5(data: bytes) -> _Digest:
    return hashlib.md5(data, usedforsecurity=False)


def _fastest_md5() -> Callable[[bytes], _Digest]:
    """CPython's own MD5 (the ``_md5`` module behind :mod:`hashlib`'s fallback): for keys this short it
    costs about half as much per call as hashlib's OpenSSL object; the digest is MD5's either way."""
    try:
        module = importlib.import_module("_md5")
    except ImportError:  # pragma: no cover - a Python built without it
        return _openssl_md5
    md5: Callable[[bytes], _Digest] = module.md5
    return md5


_md5: Final = _fastest_md5()

#: The hash columns a batch's rows carry into the store, all ``uint64``.
HASHES: Final = ("k", "k2", "rh")
#: The schema metadata key naming the tenant the hash columns were computed for.
HASHED_FOR: Final = b"talktime.hashed_for"

Hashes = npt.NDArray[np.uint64]


def _halves(digests: list[bytes]) -> npt.NDArray[np.uint64]:
    """Each digest's two little-endian 64-bit words: column 0 the first eight bytes, column 1 the last."""
    return np.frombuffer(b"".join(digests), dtype="<u8").reshape(-1, 2).astype(np.uint64)


def key_hashes(tenant: str, sources: Sequence[str], ids: Sequence[str]) -> tuple[Hashes, Hashes]:
    """``k`` and ``k2`` of each (source, id): the upper and lower halves of the dedup hash ``h``."""
    prefix = tenant + "\0"
    md5 = _md5
    texts = [f"{prefix}{source}\0{id_}" for source, id_ in zip(sources, ids, strict=True)]
    halves = _halves([md5(text.encode()).digest() for text in texts])
    return np.ascontiguousarray(halves[:, 1]), np.ascontiguousarray(halves[:, 0])


def record_hashes(tenant: str, rids: Sequence[str | None]) -> Hashes:
    """``rh`` of each record id (of the tenant alone where it is None)."""
    prefix = tenant + "\0"
    md5 = _md5
    alone = md5(tenant.encode()).digest()
    halves = _halves([alone if rid is None else md5((prefix + rid).encode()).digest() for rid in rids])
    return np.ascontiguousarray(halves[:, 1])


def record_hash(tenant: str, rid: str) -> int:
    """One record's ``rh``, for a point look-up that can use the index."""
    return int(record_hashes(tenant, [rid])[0])


def carries_hashes(rows: pa.Table, tenant: str) -> bool:
    """Whether ``rows`` carry the hash columns, computed for ``tenant``."""
    metadata = rows.schema.metadata or {}
    return metadata.get(HASHED_FOR) == tenant.encode() and all(name in rows.column_names for name in HASHES)


def with_hashes(
    tenant: str, rows: pa.Table, sources: Sequence[str] | None = None, ids: Sequence[str] | None = None
) -> pa.Table:
    """``rows`` (columns ``source``, ``id`` and ``rid``) with ``k``, ``k2`` and ``rh`` for ``tenant``, and
    the tenant in the schema's metadata; as they are if they carry them for this tenant already.
    ``sources`` and ``ids``: the rows' columns as Python lists, when the caller has them."""
    if carries_hashes(rows, tenant):
        return rows
    rows = rows.drop_columns([name for name in HASHES if name in rows.column_names])
    if sources is None or ids is None:
        sources = rows.column("source").to_pylist()  # type: ignore[assignment]
        ids = rows.column("id").to_pylist()  # type: ignore[assignment]
    assert sources is not None and ids is not None
    k, k2 = key_hashes(tenant, sources, ids)
    rh = record_hashes(tenant, rows.column("rid").to_pylist())
    for name, values in zip(HASHES, (k, k2, rh), strict=True):
        rows = rows.append_column(pa.field(name, pa.uint64()), pa.array(values, pa.uint64()))
    metadata = dict(rows.schema.metadata or {})
    metadata[HASHED_FOR] = tenant.encode()
    return rows.replace_schema_metadata(metadata)
