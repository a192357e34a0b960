"""A 10,000-event batch's hashes (both halves of the dedup hash ``h`` and the record hash ``rh``: two MD5s per
event) three ways, in this process: DuckDB's SQL (the query the store ran per batch before the hashes moved
to Python), hashlib's MD5 (OpenSSL) and talktime.store.key_hashes (CPython's own MD5). Prints process CPU
milliseconds per batch, best of ``--repeat``, and checks that all three agree.

    .venv/bin/python benchmarks/bench_key_hashes.py --repeat 20
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from collections.abc import Callable

import duckdb
import numpy as np
import pyarrow as pa

from talktime.store.duckdb_records import RECORD_HASH
from talktime.store.duckdb_store import KEY_HASH
from talktime.store.key_hashes import key_hashes, record_hashes

Triple = tuple[np.ndarray, np.ndarray, np.ndarray]

SQL = (
    "SELECT (h >> 64)::UBIGINT AS k, (h & 18446744073709551615)::UBIGINT AS k2, "
    f"{RECORD_HASH.format(tenant='$tenant', rid='rid')} AS rh "
    f"FROM (SELECT {KEY_HASH.format(tenant='$tenant', source='source', id='id')} AS h, rid FROM batch)"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    tenant = "acme-platform"
    sources = ["/bench/platform"] * args.events
    ids = [f"ev-{n}" for n in range(args.events)]
    rids = [f"leg-{n}" for n in range(args.events)]
    con = duckdb.connect()
    batch = pa.table({"source": sources, "id": ids, "rid": rids})

    def in_duckdb() -> Triple:
        con.register("batch", batch)
        found = con.execute(SQL, {"tenant": tenant}).fetchnumpy()
        con.unregister("batch")
        return tuple(np.asarray(found[name], dtype=np.uint64) for name in ("k", "k2", "rh"))  # type: ignore[return-value]

    def with_hashlib() -> Triple:
        prefix = tenant + "\0"
        keys = b"".join(
            hashlib.md5(f"{prefix}{s}\0{i}".encode(), usedforsecurity=False).digest()
            for s, i in zip(sources, ids, strict=True)
        )
        records = b"".join(hashlib.md5((prefix + r).encode(), usedforsecurity=False).digest() for r in rids)
        k = np.frombuffer(keys, "<u8").reshape(-1, 2)
        return k[:, 1].copy(), k[:, 0].copy(), np.frombuffer(records, "<u8").reshape(-1, 2)[:, 1].copy()

    def key_hashes_module() -> Triple:
        k, k2 = key_hashes(tenant, sources, ids)
        return k, k2, record_hashes(tenant, rids)

    ways: dict[str, Callable[[], Triple]] = {
        "duckdb_sql": in_duckdb,
        "hashlib_openssl": with_hashlib,
        "key_hashes_cpython_md5": key_hashes_module,
    }
    answers = {name: way() for name, way in ways.items()}
    reference = answers["duckdb_sql"]
    for name, answer in answers.items():
        assert all(np.array_equal(a, b) for a, b in zip(answer, reference, strict=True)), name
    best = dict.fromkeys(ways, float("inf"))
    for _ in range(args.repeat):
        for name, way in ways.items():  # alternated, so drift on a shared machine hits each alike
            began = time.process_time()
            way()
            best[name] = min(best[name], time.process_time() - began)
    per = args.events / 10_000
    print(
        json.dumps({f"{name}_cpu_ms_per_10k": round(s * 1000 / per, 2) for name, s in best.items()}, indent=2)
    )


if __name__ == "__main__":
    main()
