"""Keys listed, revoked and rotated (``talktime keys``, ``/v1/admin/keys``): a revoked key is refused at
once, by the server that revoked it and by every other process on the store; and the server's log
names method, path, status, duration and tenant, and never a key."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.served import make_key, serve, talktime
from support.events import record_event
from support.fixtures import postgres_server, postgres_url  # noqa: F401  (fixtures)
from talktime.api import create_app
from talktime.app.keys import create_key
from talktime.cli.main import app as cli
from talktime.store import EventStore, hash_key, open_store

NOW = datetime(2025, 3, 2, tzinfo=UTC)
BATCH = "application/cloudevents-batch+json"
KEY_SHAPE = re.compile(r"tt_[A-Za-z0-9_-]{40,}")


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EventStore]:
    opened = open_store(str(tmp_path / "events.duckdb"))
    yield opened
    opened.close()


@pytest.fixture
def client(store: EventStore) -> TestClient:
    return TestClient(create_app(store, clock=lambda: NOW))


def usage(client: TestClient, key: str) -> int:
    return client.get("/v1/usage", params={"policy": "twilio-voice"}, headers=bearer(key)).status_code


def test_a_key_revoked_through_the_admin_route_is_refused_at_once(
    client: TestClient, store: EventStore
) -> None:
    tenant = create_key(store, "acme", label="pbx")
    admin = create_key(store, None, admin=True)
    assert usage(client, tenant.key) == 200  # known, and (before this change) cached
    listed = client.get("/v1/admin/keys", params={"tenant": "acme"}, headers=bearer(admin.key))
    assert listed.status_code == 200
    (entry,) = listed.json()["keys"]
    assert entry == {
        "id": tenant.info.id,
        "tenant": "acme",
        "label": "pbx",
        "admin": False,
        "created_at": entry["created_at"],
        "revoked_at": None,
        "customer": None,
    }
    assert tenant.key not in listed.text
    revoked = client.post(f"/v1/admin/keys/{tenant.info.id}/revoke", headers=bearer(admin.key))
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] == NOW.isoformat()
    answer = client.get("/v1/usage", params={"policy": "twilio-voice"}, headers=bearer(tenant.key))
    assert answer.status_code == 401 and answer.headers["WWW-Authenticate"] == "Bearer"
    assert "revoked" in answer.json()["error"]["message"]


def test_rotation_answers_a_new_key_once_and_the_old_one_stops(client: TestClient, store: EventStore) -> None:
    old = create_key(store, "acme", label="agents")
    admin = create_key(store, None, admin=True)
    answer = client.post(f"/v1/admin/keys/{old.info.id}/rotate", headers=bearer(admin.key))
    assert answer.status_code == 201
    body = answer.json()
    assert body["info"]["tenant"] == "acme" and body["info"]["label"] == "agents"
    assert body["replaces"]["id"] == old.info.id and body["replaces"]["revoked_at"] is not None
    assert usage(client, body["key"]) == 200 and usage(client, old.key) == 401
    again = client.post(f"/v1/admin/keys/{old.info.id}/rotate", headers=bearer(admin.key))
    assert again.status_code == 409 and again.json()["error"]["category"] == "conflict"
    missing = client.post("/v1/admin/keys/k_000000000000/revoke", headers=bearer(admin.key))
    assert missing.status_code == 404


def test_the_admin_route_makes_keys_and_refuses_bad_requests_naming_the_field(
    client: TestClient, store: EventStore
) -> None:
    admin = create_key(store, None, admin=True)
    made = client.post("/v1/admin/keys", json={"tenant": "globex", "label": "ci"}, headers=bearer(admin.key))
    assert made.status_code == 201
    assert usage(client, made.json()["key"]) == 200
    cases: list[tuple[Any, str, int, str]] = [
        ({"label": "x"}, "application/json", 422, "tenant"),
        ({"tenant": "talktime:admin"}, "application/json", 422, "tenant"),
        ({"tenant": " acme"}, "application/json", 422, "tenant"),
        ({"tenant": "acme", "colour": "red"}, "application/json", 422, "colour"),
        ({"tenant": "acme", "label": 7}, "application/json", 422, "label"),
        ([1], "application/json", 400, "object"),
        (b"{nope", "application/json", 400, "JSON"),
        ({"tenant": "acme"}, "text/plain", 415, "application/json"),
    ]
    for body, content_type, status, named in cases:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        answer = client.post(
            "/v1/admin/keys", content=raw, headers={**bearer(admin.key), "Content-Type": content_type}
        )
        assert answer.status_code == status, (body, answer.text)
        assert named in answer.json()["error"]["message"], (body, answer.text)
    bad_id = client.post("/v1/admin/keys/not-an-id/revoke", headers=bearer(admin.key))
    assert bad_id.status_code == 422 and "key_id" in bad_id.json()["error"]["message"]


def test_roles_do_not_mix(client: TestClient, store: EventStore) -> None:
    tenant = create_key(store, "acme")
    admin = create_key(store, None, admin=True)
    assert client.get("/v1/admin/keys", headers=bearer(tenant.key)).status_code == 403
    refused = client.get("/v1/usage", params={"policy": "twilio-voice"}, headers=bearer(admin.key))
    assert refused.status_code == 403 and refused.json()["error"]["category"] == "forbidden"
    assert client.get("/v1/admin/keys").status_code == 401
    assert client.get("/v1/admin/keys", headers=bearer("tt_nope")).status_code == 401


def test_the_keys_command_lists_revokes_and_rotates(tmp_path: Path) -> None:
    store = str(tmp_path / "keys.duckdb")
    runner = CliRunner()
    made = runner.invoke(cli, ["keys", "create", "acme", "--label", "pbx", "--store", store])
    assert made.exit_code == 0, made.output
    key = made.output.strip().splitlines()[-1]
    assert key.startswith("tt_")
    listed = runner.invoke(cli, ["keys", "list", "--store", store, "--format", "json"])
    (entry,) = json.loads(listed.output)["keys"]
    assert (entry["tenant"], entry["label"], entry["admin"], entry["revoked_at"]) == (
        "acme",
        "pbx",
        False,
        None,
    )
    assert key not in listed.output
    table = runner.invoke(cli, ["keys", "list", "acme", "--store", store])
    assert entry["id"] in table.output and "pbx" in table.output and key not in table.output
    rotated = runner.invoke(cli, ["keys", "rotate", entry["id"], "--store", store])
    assert rotated.exit_code == 0, rotated.output
    new_key = rotated.output.strip().splitlines()[-1]
    assert new_key.startswith("tt_") and new_key != key
    revoked = runner.invoke(cli, ["keys", "revoke", entry["id"], "--store", store])
    assert revoked.exit_code == 0 and "revoked at" in revoked.output  # again: keeps its first time
    unknown = runner.invoke(cli, ["keys", "revoke", "k_000000000000", "--store", store])
    assert unknown.exit_code == 2 and "k_000000000000" in unknown.output
    both = runner.invoke(cli, ["keys", "create", "acme", "--admin", "--store", store])
    assert both.exit_code == 2 and "--admin" in both.output
    rows = json.loads(runner.invoke(cli, ["keys", "list", "--store", store, "--format", "json"]).output)[
        "keys"
    ]
    assert [(r["label"], r["revoked_at"] is None) for r in rows] == [("pbx", False), ("pbx", True)]
    opened = open_store(store)
    try:
        assert opened.tenant_of(hash_key(new_key)) == "acme" and opened.tenant_of(hash_key(key)) is None
    finally:
        opened.close()


def test_the_keys_command_on_a_store_a_server_holds_names_the_admin_route(tmp_path: Path) -> None:
    """A DuckDB file a running server holds cannot be opened (DuckDB's error says only "lock"): the
    keys commands say which server holds it and how to manage keys through it."""
    store = tmp_path / "held.duckdb"
    note = tmp_path / "held.duckdb.serve.json"
    note.write_text(json.dumps({"url": "http://127.0.0.1:9", "pid": os.getpid()}), encoding="utf-8")
    runner = CliRunner()
    for args in (["create", "acme"], ["list"], ["revoke", "k_000000000000"], ["rotate", "k_000000000000"]):
        refused = runner.invoke(cli, ["keys", *args, "--store", str(store)])
        assert refused.exit_code == 2, (args, refused.output)
        said = " ".join(refused.output.split())
        assert "held by talktime serve at http://127.0.0.1:9" in said, said
        assert "/v1/admin/keys" in said and "keys create --admin" in said
    assert not store.exists()  # nothing opened


def test_a_server_stopped_by_sigterm_removes_its_note_and_exits_0(tmp_path: Path) -> None:
    """uvicorn raises SIGTERM again after its graceful stop: under the default handler the process died
    there (exit -15), leaving ``STORE.serve.json`` behind and the store unclosed."""
    store = tmp_path / "events.duckdb"
    note = tmp_path / "events.duckdb.serve.json"
    with serve(str(store), tmp_path / "serve.log") as served:
        assert note.exists()
        served.process.terminate()  # SIGTERM: systemd, docker stop, kill PID
        assert served.process.wait(30) == 0, served.log()
    assert not note.exists()
    talktime("keys", "list", "--store", str(store))  # the file is free again


@pytest.mark.slow
def test_a_key_revoked_by_another_process_is_refused_by_a_running_server(
    tmp_path: Path,
    postgres_url: str,  # noqa: F811
) -> None:
    key = make_key(postgres_url, "acme")
    key_id = json.loads(talktime("keys", "list", "acme", "--store", postgres_url, "--format", "json"))[
        "keys"
    ][0]["id"]
    with serve(postgres_url, tmp_path / "serve.log") as served:
        url = f"{served.url}/v1/usage"
        assert httpx.get(url, params={"policy": "twilio-voice"}, headers=bearer(key)).status_code == 200
        talktime("keys", "revoke", key_id, "--store", postgres_url)  # another process
        assert httpx.get(url, params={"policy": "twilio-voice"}, headers=bearer(key)).status_code == 401


@pytest.mark.slow
def test_the_server_log_has_start_up_and_access_lines_and_never_a_key(
    tmp_path: Path,
    postgres_url: str,  # noqa: F811
) -> None:
    with_password = postgres_url.replace("postgres@", "postgres:pw-s3cret@")
    key = make_key(with_password, "acme-platform")
    admin = make_key(with_password, "--admin")
    with serve(with_password, tmp_path / "serve.log", "--workers", "1") as served:
        events = json.dumps([record_event("r1")])
        headers = {**bearer(key), "Content-Type": BATCH}
        assert httpx.post(f"{served.url}/v1/events", content=events, headers=headers).status_code == 200
        assert (
            httpx.get(
                f"{served.url}/v1/records/{key}", params={"policy": "twilio-voice"}, headers=bearer(key)
            ).status_code
            == 404
        )
        assert (
            httpx.get(
                f"{served.url}/v1/usage", params={"policy": "twilio-voice", "k": key}, headers=bearer(admin)
            ).status_code
            == 403
        )
        assert httpx.get(f"{served.url}/v1/usage", headers=bearer(key + "x")).status_code == 401
        made = httpx.post(
            f"{served.url}/v1/admin/keys", json={"tenant": "acme-platform"}, headers=bearer(admin)
        )
        assert made.status_code == 201
        fresh = made.json()["key"]
        assert (
            httpx.get(
                f"{served.url}/v1/usage", params={"policy": "twilio-voice"}, headers=bearer(fresh)
            ).status_code
            == 200
        )
    log = served.log()
    start = next(line for line in log.splitlines() if "talktime.serve" in line)
    assert "127.0.0.1" in start and "1 worker" in start and "postgresql://postgres@127.0.0.1" in start
    access = [
        line.split(" talktime.access ", 1)[1] for line in log.splitlines() if " talktime.access " in line
    ]
    assert access[0].startswith("GET /openapi.json 200 "), "the start-up probe's"
    access = [line for line in access if not line.startswith("GET /openapi.json ")]
    assert re.fullmatch(r"POST /v1/events 200 \d+\.\dms tenant=acme-platform", access[0]), access[0]
    assert access[1].startswith("GET /v1/records/tt_*** 404 ")
    assert access[2].startswith("GET /v1/usage 403 ") and access[2].endswith("tenant=talktime:admin")
    assert access[3].startswith("GET /v1/usage 401 ") and access[3].endswith("tenant=-")
    assert access[4].startswith("POST /v1/admin/keys 201 ")
    for secret in (key, admin, fresh, "pw-s3cret", "Bearer"):
        assert secret not in log
    assert not KEY_SHAPE.search(log)
