"""Customer-scoped API keys in every EventStore adapter (embedded DuckDB file and PostgreSQL): the customer is
kept, listed, carried over by a rotation, and stores made before the column keep their keys as tenant keys."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from support.fixtures import postgres_server, postgres_url  # noqa: F401  (fixtures)
from talktime.app.keys import create_key, key_dict
from talktime.errors import InputError
from talktime.store import EventStore, hash_key, open_store

T0 = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)


@pytest.fixture(params=["duckdb", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EventStore]:
    target = str(tmp_path / "events.duckdb")
    if request.param == "postgres":
        target = request.getfixturevalue("postgres_url")
    opened = open_store(target)
    yield opened
    opened.close()


def test_a_customer_key_is_kept_listed_and_rotated_with_its_customer(store: EventStore) -> None:
    made = create_key(store, "acme-platform", customer="blue-bank", label="portal")
    tenant = create_key(store, "acme-platform")
    found = store.key_of(hash_key(made.key))
    assert found is not None and (found.tenant, found.customer, found.admin) == (
        "acme-platform",
        "blue-bank",
        False,
    )
    assert store.key_of(hash_key(tenant.key)).customer is None  # type: ignore[union-attr]
    listed = {k.id: k.customer for k in store.list_keys("acme-platform")}
    assert listed == {made.info.id: "blue-bank", tenant.info.id: None}
    assert key_dict(made.info)["customer"] == "blue-bank"
    rotated = store.rotate_key(made.info.id, hash_key("new"), T0)
    assert rotated is not None and (rotated.customer, rotated.label) == ("blue-bank", "portal")


def test_a_customer_key_needs_a_tenant_and_is_no_admin_key(store: EventStore) -> None:
    with pytest.raises(InputError, match="TENANT"):
        create_key(store, None, customer="blue-bank")
    with pytest.raises(InputError, match="--admin or --customer"):
        create_key(store, None, admin=True, customer="blue-bank")
    with pytest.raises(InputError, match="customer 'a\\\\nb'"):
        create_key(store, "acme-platform", customer="a\nb")
    assert store.list_keys() == [], "nothing was made"


def _old_duckdb(path: Path) -> None:
    """A store file as it was before customer keys: keys with ids, labels, roles and revocation."""
    con = duckdb.connect(str(path))
    con.execute(
        "CREATE TABLE api_keys (key_hash VARCHAR PRIMARY KEY, tenant VARCHAR NOT NULL, "
        "created_at TIMESTAMPTZ NOT NULL, id VARCHAR, label VARCHAR, admin BOOLEAN NOT NULL DEFAULT false, "
        "revoked_at TIMESTAMPTZ)"
    )
    con.execute(
        "INSERT INTO api_keys VALUES "
        "(?, 'acme', TIMESTAMPTZ '2025-01-01 00:00:00+00', 'k_old', 'pbx', false, NULL)",
        [hash_key("k")],
    )
    con.close()


def test_a_duckdb_file_from_before_customer_keys_keeps_its_keys_as_tenant_keys(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    _old_duckdb(path)
    opened = open_store(str(path))
    try:
        found = opened.key_of(hash_key("k"))
        assert found is not None and (found.tenant, found.label, found.customer) == ("acme", "pbx", None)
        made = create_key(opened, "acme", customer="blue-bank")
        assert opened.key_of(hash_key(made.key)).customer == "blue-bank"  # type: ignore[union-attr]
    finally:
        opened.close()


def test_a_postgres_database_from_before_customer_keys_keeps_its_keys(postgres_url: str) -> None:  # noqa: F811
    import psycopg

    with psycopg.connect(postgres_url, autocommit=True) as con:
        con.execute("DROP TABLE IF EXISTS api_keys")
        con.execute(
            "CREATE TABLE api_keys (key_hash TEXT PRIMARY KEY, tenant TEXT NOT NULL, created_at TIMESTAMPTZ "
            "NOT NULL DEFAULT now(), id TEXT, label TEXT, admin BOOLEAN NOT NULL DEFAULT false, "
            "revoked_at TIMESTAMPTZ)"
        )
        con.execute(
            "INSERT INTO api_keys (key_hash, tenant, id) VALUES (%s, 'acme', 'k_old')", [hash_key("k")]
        )
    opened = open_store(postgres_url)
    try:
        found = opened.key_of(hash_key("k"))
        assert found is not None and (found.tenant, found.customer) == ("acme", None)
        made = create_key(opened, "acme", customer="blue-bank")
        assert opened.key_of(hash_key(made.key)).customer == "blue-bank"  # type: ignore[union-attr]
    finally:
        opened.close()
