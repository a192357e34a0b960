"""API keys in every EventStore adapter (embedded DuckDB file and PostgreSQL): listed by id without the key,
revoked at once for every connection to the store, rotated in one step, and files from before key ids
migrated on open."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from support.fixtures import postgres_server, postgres_url  # noqa: F401  (fixtures)
from talktime.store import EventStore, hash_key, open_store
from talktime.store.base import ADMIN_TENANT, key_id_of

T0 = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)


@pytest.fixture(params=["duckdb", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "duckdb":
        return str(tmp_path / "events.duckdb")
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def store(target: str) -> Iterator[EventStore]:
    opened = open_store(target)
    yield opened
    opened.close()


def test_keys_are_listed_by_id_and_label_never_by_key_or_hash(store: EventStore) -> None:
    first = store.add_key("t1", hash_key("secret-1"), label="pbx")
    store.add_key("t2", hash_key("secret-2"))
    admin = store.add_key(ADMIN_TENANT, hash_key("secret-3"), admin=True)
    assert first.id == key_id_of(hash_key("secret-1")) and first.id.startswith("k_") and len(first.id) == 14
    assert (first.tenant, first.label, first.admin, first.revoked_at) == ("t1", "pbx", False, None)
    assert [k.id for k in store.list_keys("t1")] == [first.id]
    assert {k.tenant for k in store.list_keys()} == {"t1", "t2", ADMIN_TENANT}
    assert admin.admin and store.key_of(hash_key("secret-3")) == admin
    listed = repr(store.list_keys())
    for secret in ("secret-1", "secret-2", "secret-3"):
        assert secret not in listed and hash_key(secret) not in listed


def test_a_revoked_key_has_no_tenant_and_keeps_its_first_revocation(store: EventStore) -> None:
    key = store.add_key("t1", hash_key("k"))
    assert store.tenant_of(hash_key("k")) == "t1"
    revoked = store.revoke_key(key.id, T0)
    assert revoked is not None and revoked.revoked_at == T0
    assert store.tenant_of(hash_key("k")) is None
    found = store.key_of(hash_key("k"))
    assert found is not None and found.revoked_at == T0 and not found.active
    again = store.revoke_key(key.id, T0 + timedelta(hours=1))
    assert again is not None and again.revoked_at == T0
    assert store.revoke_key("k_000000000000", T0) is None


def test_an_admin_key_is_no_tenant_key(store: EventStore) -> None:
    store.add_key(ADMIN_TENANT, hash_key("adm"), admin=True)
    assert store.tenant_of(hash_key("adm")) is None


def test_rotation_makes_a_key_like_the_old_one_and_revokes_the_old(store: EventStore) -> None:
    old = store.add_key("t1", hash_key("old"), label="agents")
    new = store.rotate_key(old.id, hash_key("new"), T0)
    assert new is not None and (new.tenant, new.label, new.admin) == ("t1", "agents", False)
    assert store.tenant_of(hash_key("new")) == "t1" and store.tenant_of(hash_key("old")) is None
    assert store.rotate_key(old.id, hash_key("newer"), T0) is None, "a revoked key is not rotated"
    assert store.key_of(hash_key("newer")) is None, "and nothing was made"
    assert store.rotate_key("k_000000000000", hash_key("x"), T0) is None


def test_a_revocation_counts_at_once_for_another_connection_to_the_store(postgres_url: str) -> None:  # noqa: F811
    """Two stores on one database, as two servers (or a server and the CLI) have. A DuckDB file has one
    process, its server: revocations go through that server (tests/api/test_keys.py)."""
    server, cli = open_store(postgres_url), open_store(postgres_url)
    try:
        key = server.add_key("t1", hash_key("k"))
        assert server.tenant_of(hash_key("k")) == "t1"
        cli.revoke_key(key.id, T0)
        assert server.tenant_of(hash_key("k")) is None
    finally:
        server.close()
        cli.close()


def test_a_duckdb_file_from_before_key_ids_is_migrated_on_open(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute(
        "CREATE TABLE api_keys (key_hash VARCHAR PRIMARY KEY, tenant VARCHAR NOT NULL, "
        "created_at TIMESTAMPTZ NOT NULL)"
    )
    con.execute(
        "INSERT INTO api_keys VALUES (?, 'acme', TIMESTAMPTZ '2025-01-01 00:00:00+00')", [hash_key("k")]
    )
    con.close()
    store = open_store(str(path))
    try:
        assert store.tenant_of(hash_key("k")) == "acme"
        (listed,) = store.list_keys("acme")
        assert (listed.id, listed.label, listed.admin, listed.revoked_at) == (
            key_id_of(hash_key("k")),
            None,
            False,
            None,
        )
        assert store.revoke_key(listed.id, T0) is not None
        assert store.tenant_of(hash_key("k")) is None
    finally:
        store.close()


def test_a_postgres_database_from_before_key_ids_is_migrated_on_open(postgres_url: str) -> None:  # noqa: F811
    import psycopg

    with psycopg.connect(postgres_url, autocommit=True) as con:
        con.execute(
            "CREATE TABLE api_keys (key_hash TEXT PRIMARY KEY, tenant TEXT NOT NULL, "
            "created_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        con.execute("INSERT INTO api_keys (key_hash, tenant) VALUES (%s, 'acme')", [hash_key("k")])
    store = open_store(postgres_url)
    try:
        (listed,) = store.list_keys("acme")
        assert listed.id == key_id_of(hash_key("k")) and listed.active
        assert store.tenant_of(hash_key("k")) == "acme"
    finally:
        store.close()
